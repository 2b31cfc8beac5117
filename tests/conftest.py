"""Shared fixtures: one torch thread, headless matplotlib, a loud failure when nothing ran, and a
failure when the suite left files in the repository's working tree (``git status --porcelain``
before and after the session must agree: nothing may be written outside a results folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
_STATUS = pytest.StashKey[object]()


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def git_status() -> str | None:
    """``git status --porcelain`` of the repository (None outside a git checkout or without git)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STATUS] = git_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("\nerror: pytest collected no tests; CI refuses to pass an empty suite", file=sys.stderr)
    before = session.config.stash.get(_STATUS, None)
    after = git_status() if before is not None else None
    if isinstance(before, str) and after is not None and after != before:
        new = sorted(set(after.splitlines()) - set(before.splitlines())) or after.splitlines()
        print("\nerror: the test suite changed the repository's working tree (git status --porcelain):\n  "
              + "\n  ".join(new), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
