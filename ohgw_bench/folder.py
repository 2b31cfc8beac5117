"""A study folder's lifecycle: claim it, say what produced it, mark how it ended.

- :func:`check_identity`: a folder holding a different study is refused (``--overwrite``
  removes it); the paired-trial runs (nudge) use it too;
- :func:`claim`: the summary of a finished study with the same identity (the study is skipped)
  or a folder made ready (an unfinished study's reports are kept aside as
  ``reports.interrupted-<n>.jsonl``);
- :func:`provenance`: what study.json records beside the settings (package versions, git
  revision, machine, command line, start time), shared with the paired-trial runs (nudge);
- :func:`open_writer`: the one writer (:class:`ohgw_bench.results.StudyWriter`), with
  partial.json in place until summary.json is written; :func:`mark_ended` for a study that
  did not complete (:data:`ENDED`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ohgw_bench import results
from ohgw_bench.errors import UserError
from ohgw_bench.spec import ResolvedStudy

ENDED = ("budget spent", "scheduler exhausted", "failure limit", "interrupted", "adapter error")
"""How a study ended. Only the first two are complete studies (summary.json); the other two
leave partial.json (with the same ``ended`` key) and the study restarts when run again."""


@functools.lru_cache(maxsize=1)
def _git_revision() -> str | None:
    """The checkout's commit (once per process: a pool worker runs many studies)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def _versions_cached() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("ohgw_bench", "torch", "syne-tune", "numpy", "smac", "optuna", "xgboost", "transformers", "stable-baselines3"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return tuple(out.items())


def _versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the records (looked up once per process)."""
    return dict(_versions_cached())


def _machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def provenance() -> dict[str, Any]:
    """What produced a folder besides its settings: versions, git revision, machine, command, start."""
    return {"versions": _versions(), "git_revision": _git_revision(), "machine": _machine(), "command": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def check_identity(folder: Path, identity: Mapping[str, Any], overwrite: bool, what: str = "a study",
                   legacy: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The folder's study.json, after refusing one that holds a different ``identity`` (``legacy``:
    the identity a study.json without ``resolved`` would hold); ``overwrite`` removes the folder."""
    existing = results.read_json(folder / results.STUDY_FILE)
    if existing is not None and not overwrite:
        old = existing.get("identity")
        mine = identity if legacy is None or "resolved" in existing else legacy
        if old is not None and old != mine:
            raise UserError(f"{folder} holds {what} with a different spec; use another --results-dir or "
                            "--experiment, or pass --overwrite to replace it")
    if overwrite and folder.exists():
        shutil.rmtree(folder)
        return None
    return existing


def claim(folder: Path, spec: ResolvedStudy, overwrite: bool) -> dict[str, Any] | None:
    """Return the existing summary if the same study already finished; refuse a different one.

    An unfinished study restarts: its reports so far are kept aside as ``reports.interrupted-<n>.jsonl``.
    """
    if check_identity(folder, spec.identity(), overwrite, legacy=spec.legacy_identity()) is not None:
        summary = results.read_json(folder / results.SUMMARY_FILE)
        if summary is not None:
            return summary
    reports = folder / results.REPORTS_FILE
    if reports.exists():
        n = len(list(folder.glob("reports.interrupted-*.jsonl")))
        reports.rename(folder / f"reports.interrupted-{n}.jsonl")
    return None


def open_writer(folder: Path, spec: Mapping[str, Any], meta: dict[str, Any]) -> results.StudyWriter:
    """The study's writer (study.json written first), with partial.json in place until summary.json."""
    try:
        writer = results.StudyWriter(folder, spec, meta)
        writer.mark_partial("running (no summary.json yet: a study killed now restarts when run again)")
    except OSError as e:
        raise UserError(f"cannot write results in {folder}: {e.strerror or e}") from None
    return writer


def mark_ended(writer: results.StudyWriter, ended: str, reason: str) -> None:
    """partial.json for a study that is not complete: how it ended, why, and how far it got."""
    results.write_json_atomic(writer.folder / results.PARTIAL_FILE,
                              {"status": "partial", "ended": ended, "reason": reason, "reports": writer.seq})
