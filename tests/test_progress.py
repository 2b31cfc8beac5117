"""ohgw_bench.progress: with stderr a file or pipe, plain lines, no redraws (issue 28 item 4).

A 30-second study's bar wrote ~620 carriage-return redraws (68 KB) into ``2> log``; now a line
every ``LOG_PROGRESS_SECONDS`` of wall time and one at the end (``--quiet``: nothing).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from ohgw_bench import progress as progress_module
from ohgw_bench.study import StudySpec, run_study


def test_progress_into_a_log_is_a_few_plain_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.time()
    run_study(StudySpec(task="table", scheduler="asha", budget=200.0, seed=0, n_workers=2,
                        results_dir=str(tmp_path)), progress=True)
    wall = time.time() - t0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("table-curves-v1:")]
    assert lines, err
    assert len(lines) <= 2 + math.ceil(wall / progress_module.LOG_PROGRESS_SECONDS)
    assert "study clock" in lines[-1] and "trials=" in lines[-1]


def test_quiet_shows_no_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_study(StudySpec(task="table", scheduler="asha", budget=50.0, seed=0, results_dir=str(tmp_path)),
              progress=False)
    assert "table-curves-v1:" not in capsys.readouterr().err
