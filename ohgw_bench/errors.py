"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input (flag, file, data directory, task id): shown as one line, exit code 2."""

    exit_code = 2


class DataMissingError(UserError):
    """A task's dataset is not where the adapter looks for it; the message says where to put it."""
