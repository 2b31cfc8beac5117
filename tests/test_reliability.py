"""Fault injection with the real tuner and schedulers: failing, diverging and killed trials, bad disks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ohgw_bench import results
from ohgw_bench.errors import UserError
from ohgw_bench.study import StudySpec, run_study
from ohgw_bench.warmstart import WarmStartSettings
from tests.signals import default_sigint

TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _importable() -> None:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


def spec(tmp_path: Path, task: str, **kw: object) -> StudySpec:
    base = dict(task=task, scheduler="asha", seed=1, budget=2.0, n_workers=2, results_dir=str(tmp_path),
                task_options={}, max_failures=1000, max_consecutive_failures=1000)
    base.update(kw)
    return StudySpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheduler, error", [("asha", "runtime"), ("random", "oom")])
def test_raising_trials_are_recorded_and_ranked_last(tmp_path: Path, scheduler: str, error: str) -> None:
    s = run_study(spec(tmp_path, "faulty_tasks:RaisingDigits", scheduler=scheduler, budget=4.0,
                       task_options={"fail_above": 0.01, "error": error}), progress=False)
    rows = list(results.iter_reports(s["folder"]))
    failed = [r for r in rows if r["ohgw_status"] == "failed"]
    ok = [r for r in rows if r["ohgw_status"] != "failed"]
    assert failed and ok, "some trials must fail and the study must go on"
    assert all(r["ohgw_config"]["lr"] > 0.01 for r in failed) and all(r["ohgw_config"]["lr"] <= 0.01 for r in ok)
    assert all(r["ohgw_reported_to_scheduler"] == 1.0 and r["ohgw_metric"] is None for r in failed)
    assert ("OutOfMemoryError" if error == "oom" else "injected failure") in failed[0]["ohgw_error"]
    assert s["failed_trials"] == len({r["ohgw_trial_id"] for r in failed})
    assert s["best_metric"] is not None and s["best_metric"] < 1.0


def test_nan_metric_is_a_diverged_trial(tmp_path: Path) -> None:
    s = run_study(spec(tmp_path, "faulty_tasks:NaNDigits", budget=4.0, task_options={"fail_above": 0.01}),
                  progress=False)
    rows = list(results.iter_reports(s["folder"]))
    nan = [r for r in rows if r["ohgw_status"] == "nan"]
    assert nan and all("non-finite" in r["ohgw_error"] for r in nan)
    assert all(r["ohgw_config"]["lr"] > 0.01 for r in nan)
    assert s["best_metric"] is not None


def test_study_stops_after_too_many_failures_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="trials failed") as err:
        run_study(spec(tmp_path, "faulty_tasks:RaisingDigits", max_failures=2,
                       task_options={"fail_above": 0.0}), progress=False)
    assert "\n" not in str(err.value)
    folder = results.find_studies(tmp_path)[0]
    assert not results.is_complete(folder)
    marker = json.loads((folder / results.PARTIAL_FILE).read_text())
    assert "stopped" in marker["reason"] and marker["ended"] == "failure limit"


@pytest.mark.parametrize("sources, named", [({}, "max_consecutive_failures 3"),
                                             ({"max_consecutive_failures": "key 'grids[0].max_consecutive_failures'"},
                                              "key 'grids[0].max_consecutive_failures' 3")])
def test_consecutive_failures_stop_the_study(tmp_path: Path, sources: dict[str, str], named: str) -> None:
    """The message names where the limit came from (issue 27): a YAML key is not a --flag."""
    with pytest.raises(UserError, match="in a row") as err:
        run_study(spec(tmp_path, "faulty_tasks:RaisingDigits", max_consecutive_failures=3, sources=sources,
                       task_options={"fail_above": 0.0}), progress=False)
    assert f"3 trials in a row failed ({named})" in str(err.value) and "--max" not in str(err.value)


def test_warm_start_nan_falls_back_and_trial_stays_in_statistics(tmp_path: Path) -> None:
    s = run_study(spec(tmp_path, "faulty_tasks:NaNWarmStartDigits",
                       warm_start=WarmStartSettings("ohgw", step_rule="normalized")), progress=False)
    rows = list(results.iter_reports(s["folder"]))
    assert rows and all(r["ohgw_status"] != "failed" for r in rows)
    records = [r["ohgw_warm_start"] for r in rows]
    assert all(rec is not None and rec.get("reason") for rec in records)
    assert all(r["ohgw_config"] == r["ohgw_proposed"] or rec.get("fallback") for r, rec in zip(rows, records))


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ohgw_bench.run", "--results-dir", str(tmp_path), "--budget", "3", "--quiet",
           *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=default_sigint)


def _wait_rows(tmp_path: Path, n: int, proc: subprocess.Popen[str]) -> Path:
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        found = results.find_studies(tmp_path)
        if found and sum(1 for _ in results.iter_reports(found[0])) >= n:
            return found[0]
        time.sleep(0.1)
    raise AssertionError("the study produced no rows in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_study_restarts_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    proc = _start(tmp_path)
    folder = _wait_rows(tmp_path, 5, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert not results.is_complete(folder)
    marker = json.loads((folder / results.PARTIAL_FILE).read_text())
    if sig != signal.SIGKILL:
        assert proc.returncode == 130 and "partial" in err and "Traceback" not in err
        assert signal.Signals(sig).name in marker["reason"] or "SIGINT" in marker["reason"]
        assert marker["ended"] == "interrupted"
    partial_rows = list(results.iter_reports(folder))
    again = _start(tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    rows = list(results.iter_reports(folder))
    assert summary["reports"] == len(rows) and [r["ohgw_seq"] for r in rows] == list(range(len(rows)))
    assert not (folder / results.PARTIAL_FILE).exists()
    kept = sorted(folder.glob("reports.interrupted-*.jsonl"))
    assert kept and sum(1 for line in kept[0].read_text().splitlines() if line.strip()) >= len(partial_rows)
    assert rows[: len(partial_rows)] == [dict(r, ohgw_time_wall=rows[i]["ohgw_time_wall"])
                                        for i, r in enumerate(partial_rows)]


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("options, needle", [("ro", "not writable"), ("size=64k", "No space left")])
def test_read_only_or_full_results_filesystem(tmp_path: Path, options: str, needle: str) -> None:
    mnt = tmp_path / "mnt"
    if os.geteuid() != 0 or not _mount(mnt, options):
        pytest.skip("needs permission to mount a tmpfs (root in the CI container)")
    try:
        if options == "size=64k":
            (mnt / "filler").write_bytes(b"\0" * 60_000)
        out = subprocess.run([sys.executable, "-m", "ohgw_bench.run", "--results-dir", str(mnt / "r"), "--quiet",
                              "--budget", "3"], capture_output=True, text=True,
                             timeout=300, env=ENV)
        assert out.returncode == 2, out.stderr
        err = out.stderr.strip()
        assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
