"""For tests that interrupt a child process: the child gets SIGINT at its default, as a terminal gives it."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` of a child a test sends SIGINT: a shell's background job (``nohup ... &``, a CI
    runner's) ignores SIGINT and its children inherit that, and Python then installs no handler, so
    the signal would be ignored and the test would time out."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
