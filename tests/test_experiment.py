"""Experiments: YAML validation, executors (process pool, real Dask LocalCluster), kill and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ohgw_bench import results
from ohgw_bench.errors import UserError
from ohgw_bench.executors import run_all
from ohgw_bench.experiment import load
from tests.signals import default_sigint

GRID = """
name: t
budget: {budget}
workers: 2
seeds: {seeds}
tasks:
  - digits
schedulers: [asha]
variants: [none]
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, needle", [
    ("tasks: [digits]\nschedulers: [asha]\n", "key 'variants'"),
    ("tasks: [digits]\nschedulers: [nope]\nvariants: [none]\n", "schedulers[0]"),
    ("tasks: [nope]\nschedulers: [asha]\nvariants: [none]\n", "tasks[0]"),
    ("tasks: [digits]\nschedulers: [asha]\nvariants: [sideways]\n", "variants[0]"),
    ("tasks: [digits]\nschedulers: [asha]\nvariants: [none]\nseeds: -1\n", "key 'seeds'"),
    ("tasks: [digits]\nschedulers: [asha]\nvariants: [none]\nseeds: [0, -1]\n", "key 'seeds'"),
    ("tasks: [digits]\nschedulers: [asha]\nvariants: [none]\nbudgett: 3\n", "budgett"),
    ("tasks: [digits, digits]\nschedulers: [asha]\nvariants: [none]\n", "appears twice"),
    ("tasks: [digits\n", "not valid YAML"),
])
def test_yaml_validation_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load(path, tmp_path / "r")
    assert str(path) in str(err.value) and needle in str(err.value) and "\n" not in str(err.value)


def test_every_shipped_experiment_file_validates(tmp_path: Path) -> None:
    files = sorted(Path(__file__).resolve().parents[1].joinpath("experiments").glob("*.yaml"))
    assert {f.stem for f in files} >= {"smoke", "main", "breadth", "ablations", "transfer", "scalability", "cpu"}
    for f in files:
        name, specs = load(f, tmp_path / "r")
        assert specs, f


def test_grid_expands_and_variants_parse(tmp_path: Path) -> None:
    path = write(tmp_path, """
seeds: [3, 4]
tasks: [digits]
schedulers: [asha, {scheduler: random}]
variants: [none, ohgw-k2, {variant: ohgw, step_rule: sign, rho: 0.1}]
""")
    name, specs = load(path, tmp_path / "r")
    assert name == "exp" and len(specs) == 2 * 3 * 2
    labels = {s.warm_start.label() for s in specs}
    assert len(labels) == 3
    assert {s.warm_start.horizon for s in specs} >= {2}


def _folders(root: Path) -> dict[str, list[dict]]:
    out = {}
    for folder in results.find_studies(root):
        rows = [{k: v for k, v in r.items() if k != "ohgw_time_wall"} for r in results.iter_reports(folder)]
        out[str(folder.relative_to(root))] = rows
    return out


def test_process_pool_and_dask_match_inprocess(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    texts = {}
    for executor in ("inprocess", "process", "dask"):
        path = write(tmp_path, GRID.format(budget=1, seeds=2), f"{executor}.yaml")
        _, specs = load(path, tmp_path / executor)
        jobs = [(str(i), s.as_dict()) for i, s in enumerate(specs)]
        kwargs = {"max_parallel": 2}
        if executor == "dask":
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
            kwargs["client"] = Client(cluster)
        try:
            out = run_all(executor, jobs, lambda o: None, **kwargs)
        finally:
            if executor == "dask":
                kwargs["client"].close()
                cluster.close()
        assert [o.status for o in out] == ["complete", "complete"]
        texts[executor] = {k.split("/", 1)[1]: v for k, v in _folders(tmp_path / executor).items()}
    assert texts["inprocess"] == texts["process"] == texts["dask"]


def test_dask_worker_killed_mid_study_every_study_completes_once(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    path = write(tmp_path, GRID.format(budget=2, seeds=4))
    _, specs = load(path, tmp_path / "r")
    jobs = [(str(i), s.as_dict()) for i, s in enumerate(specs)]
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    killed: list[int] = []

    def kill_one(outcome: object) -> None:
        if killed:
            return
        deadline = time.time() + 120
        while time.time() < deadline:
            partial = [f for f in results.find_studies(tmp_path / "r") if not results.is_complete(f)
                       and any(True for _ in results.iter_reports(f))]
            if partial:
                break
            time.sleep(0.2)
        pids = client.run(os.getpid)
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    try:
        out = run_all("dask", jobs, kill_one, client=client, retries=2)
    finally:
        client.close()
        cluster.close()
    assert killed
    assert sorted(o.key for o in out) == sorted(k for k, _ in jobs)
    assert all(o.status == "complete" for o in out), [o.error for o in out]
    folders = results.find_studies(tmp_path / "r")
    assert len(folders) == len(jobs) and all(results.is_complete(f) for f in folders)
    for f in folders:
        rows = list(results.iter_reports(f))
        assert [r["ohgw_seq"] for r in rows] == list(range(len(rows)))


def test_sigkill_then_rerun_finishes_without_redoing_completed_studies(tmp_path: Path) -> None:
    path = write(tmp_path, GRID.format(budget=1.5, seeds=3))
    cmd = [sys.executable, "-m", "ohgw_bench.experiment", str(path), "--results-dir", str(tmp_path / "r")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        done = [f for f in results.find_studies(tmp_path / "r") if results.is_complete(f)]
        if done:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    before = {str(f): (f / results.SUMMARY_FILE).stat().st_mtime_ns for f in results.find_studies(tmp_path / "r")
              if results.is_complete(f)}
    assert before, "no study finished before the kill"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    after = {str(f): (f / results.SUMMARY_FILE).stat().st_mtime_ns for f in results.find_studies(tmp_path / "r")}
    assert all(after[k] == v for k, v in before.items()), "a completed study was run again"
    clean = subprocess.run([sys.executable, "-m", "ohgw_bench.experiment", str(path), "--results-dir",
                            str(tmp_path / "clean")], capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr
    assert _folders(tmp_path / "r") == _folders(tmp_path / "clean")


def _experiment(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ohgw_bench.experiment", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_negative_retries_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GRID.format(budget=1, seeds=1))
    out = _experiment(str(path), "--results-dir", str(tmp_path / "r"), "--retries", "-1")
    assert out.returncode == 2 and "--retries" in out.stderr and "Traceback" not in out.stderr
    assert not results.find_studies(tmp_path / "r")


def test_unreachable_dask_scheduler_is_one_line_and_fails_fast(tmp_path: Path) -> None:
    """distributed waits 30 s by default and then raises a traceback; the subprocess timeout
    below (generous for a loaded machine) would catch that wait."""
    path = write(tmp_path, GRID.format(budget=1, seeds=1))
    out = _experiment(str(path), "--results-dir", str(tmp_path / "r"), "--executor", "dask",
                      "--address", "tcp://127.0.0.1:9", timeout=120)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --address tcp://127.0.0.1:9") and "Traceback" not in out.stderr
    assert not results.find_studies(tmp_path / "r")


LONG = GRID.format(budget=600, seeds=6)


_LONG_RUNS: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _reap_long_runs():
    """Whatever a test ends with (failure, timeout), its long experiment's process group goes down with
    it: an experiment left behind would keep two cores busy under PID 1."""
    yield
    while _LONG_RUNS:
        proc = _LONG_RUNS.pop()
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


def _start_long(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[Path], list[int]]:
    """An experiment on the process pool with two long studies running; their folders and the pool's pids.
    It runs in its own process group (reaped after the test); signals in the tests go to its parent only."""
    import psutil

    path = write(tmp_path, LONG)
    proc = subprocess.Popen([sys.executable, "-m", "ohgw_bench.experiment", str(path), "--results-dir",
                             str(tmp_path / "r"), "--executor", "process", "--max-parallel", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
                            preexec_fn=default_sigint)
    _LONG_RUNS.append(proc)
    deadline = time.time() + 300
    while time.time() < deadline:
        started = [f for f in results.find_studies(tmp_path / "r") if list(results.iter_reports(f))]
        if len(started) == 2:
            break
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("two studies never started reporting")
    pids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    return proc, started, pids


def _gone(pids: list[int], timeout: float = 60) -> list[int]:
    import psutil

    deadline = time.time() + timeout
    alive = pids
    while alive and time.time() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    return alive


def _assert_stopped_and_partial(tmp_path: Path, started: list[Path]) -> None:
    assert sorted(results.find_studies(tmp_path / "r")) == sorted(started), "a study started after the signal"
    for folder in started:
        assert not (folder / results.SUMMARY_FILE).exists()
        partial = results.read_json(folder / results.PARTIAL_FILE)
        assert partial is not None and partial["ended"] == "interrupted", partial


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_on_a_process_pool_experiment_stops_everything(tmp_path: Path, sig: signal.Signals) -> None:
    proc, started, pids = _start_long(tmp_path)
    proc.send_signal(sig)
    rc = proc.wait(timeout=120)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert rc == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert _gone(pids) == [], "pool workers outlived the experiment"
    _assert_stopped_and_partial(tmp_path, started)


def test_sigkilled_parent_takes_its_workers_down(tmp_path: Path) -> None:
    proc, started, pids = _start_long(tmp_path)
    proc.kill()
    proc.wait(timeout=60)
    assert _gone(pids) == [], "pool workers outlived a SIGKILLed experiment"
    _assert_stopped_and_partial(tmp_path, started)
