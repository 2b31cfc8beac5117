"""Nothing is written outside the study folder (issue 28 item 3).

Syne Tune's LocalBackend counts GPUs by writing ``nvidia-smi``'s output to ``./std.out``, the
working directory; that is how a ``std.out`` got committed at the repository root.
``ohgw_bench.backends.ProcessBackend`` counts them from a pipe instead. The repository-wide
check (the suite leaves ``git status --porcelain`` unchanged) is in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ohgw_bench.backends import count_gpus

ROOT = Path(__file__).resolve().parents[1]


def test_a_local_backend_study_leaves_its_working_directory_empty(tmp_path: Path) -> None:
    cwd, res = tmp_path / "cwd", tmp_path / "res"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    # A short budget: the GPU count (and so the stray file) happens when the first trial is scheduled.
    proc = subprocess.run([sys.executable, "-m", "ohgw_bench.run", "--task", "table", "--scheduler", "asha",
                           "--backend", "local", "--workers", "1", "--budget", "6", "--quiet",
                           "--results-dir", str(res)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode in (0, 2), proc.stderr
    trial_logs = list(res.rglob("trials/*/std.out"))
    assert trial_logs, f"no trial was started, so the check proves nothing: {proc.stderr}"
    assert sorted(p.name for p in cwd.iterdir()) == []


def test_counting_gpus_writes_no_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert count_gpus() >= 0
    assert list(tmp_path.iterdir()) == []
