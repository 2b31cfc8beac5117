"""The end-to-end path: search space, registry, result folders, CLI, both backends, pairing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ohgw_bench import results, tasks
from ohgw_bench.errors import UserError
from ohgw_bench.space import Hyperparameter, SearchSpace, SpaceError
from ohgw_bench.study import StudySpec, run_study
from ohgw_bench.warmstart import WarmStartSettings

WALL_FIELDS = {"ohgw_time_wall"}


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ohgw_bench.run", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# -- search space -------------------------------------------------------------------------------

def test_space_unit_cube_round_trip_and_chain_rule() -> None:
    space = SearchSpace([Hyperparameter("lr", 1e-4, 1.0, 1e-2, log=True),
                         Hyperparameter("m", 0.0, 0.9, 0.5),
                         Hyperparameter("depth", 2, 10, 4, integer=True)])
    cfg = {"lr": 1e-2, "m": 0.45, "depth": 6}
    z = space.to_unit(cfg)
    assert z["lr"] == pytest.approx(0.5)
    assert z["m"] == pytest.approx(0.5)
    back = space.from_unit(z)
    assert back["lr"] == pytest.approx(1e-2) and back["m"] == pytest.approx(0.45) and back["depth"] == 6
    assert space.movable() == ["lr", "m"]
    eps = 1e-6
    lr = space["lr"]
    numeric = (lr.from_unit(0.5 + eps) - lr.from_unit(0.5 - eps)) / (2 * eps)
    assert lr.dnative_dunit(1e-2) == pytest.approx(numeric, rel=1e-5)


def test_space_converts_to_syne_tune_and_configspace() -> None:
    space = tasks.make("digits").space
    st = space.to_syne_tune()
    cs = space.to_configspace(seed=1)
    for p in space:
        assert st[p.name].lower == pytest.approx(p.low) and st[p.name].upper == pytest.approx(p.high)
        hp = cs[p.name]
        assert hp.lower == pytest.approx(p.low) and hp.upper == pytest.approx(p.high) and hp.log == p.log


def test_space_rejects_bad_bounds_and_configs() -> None:
    with pytest.raises(SpaceError, match="low"):
        Hyperparameter("x", 1.0, 0.5, 0.7)
    with pytest.raises(SpaceError, match="log scale"):
        Hyperparameter("x", 0.0, 1.0, 0.5, log=True)
    space = tasks.make("digits").space
    bad = {**space.default_config(), "lr": 5.0}
    with pytest.raises(SpaceError, match="outside"):
        space.validate(bad)


# -- registry -----------------------------------------------------------------------------------

def test_registry_aliases_patterns_and_unknown_ids() -> None:
    assert tasks.resolve("digits")[0] == "digits-mlp-v1"
    assert tasks.resolve("uci-mydata-xgb")[0:2] == ("uci-mydata-xgb-v1", "ohgw_bench.tasks.uci_xgb:UCIXGBTask")
    assert tasks.resolve("atari-space_invaders")[2] == {"game": "space_invaders"}
    with pytest.raises(UserError) as err:
        tasks.make("no-such-task")
    msg = str(err.value)
    assert "\n" not in msg and "digits-mlp-v1" in msg and "cifar10-resnet20-v1" in msg


def test_user_adapter_by_module_path() -> None:
    task = tasks.make("ohgw_bench.tasks.digits:DigitsTask", hidden=16)
    assert task.hidden == 16 and task.id == "digits-mlp-v1"


# -- result folders -----------------------------------------------------------------------------

def test_writer_reader_and_torn_last_line(tmp_path: Path) -> None:
    folder = results.study_dir(tmp_path, "e", "t", "s", "v", 0)
    w = results.StudyWriter(folder, {"task": "t"}, {"study_id": "x", "task": {"metric": "m", "mode": "min"}})
    w.append({"ohgw_trial_id": 0, "ohgw_time": 1.0, "ohgw_metric": 0.5, "ohgw_config": {"a": 1}})
    w.append({"ohgw_trial_id": 1, "ohgw_time": 2.0, "ohgw_metric": float("nan")})
    w.close()
    with open(folder / results.REPORTS_FILE, "a") as f:
        f.write('{"ohgw_trial_id": 2, "ohgw_ti')
    rows = list(results.iter_reports(folder))
    assert [r["ohgw_trial_id"] for r in rows] == [0, 1] and rows[1]["ohgw_metric"] is None
    assert results.load_results(tmp_path).empty
    results.StudyWriter.__new__(results.StudyWriter)
    results.write_json_atomic(folder / results.SUMMARY_FILE, {"status": "complete"})
    df = results.load_results(tmp_path)
    assert list(df["config.a"].dropna()) == [1] and len(df) == 2
    assert not list(folder.glob(".summary.json.*"))


# -- studies ------------------------------------------------------------------------------------

def small_spec(tmp_path: Path, **kw: object) -> StudySpec:
    base = dict(task="digits", scheduler="asha", seed=3, budget=3.0, n_workers=4, results_dir=str(tmp_path),
                task_options={})
    base.update(kw)
    return StudySpec(**base)  # type: ignore[arg-type]


def _rows(folder: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in WALL_FIELDS and not k.startswith("ohgw_warm_start")}
            for r in results.iter_reports(folder)]


def test_simulated_study_is_deterministic(tmp_path: Path) -> None:
    a = run_study(small_spec(tmp_path / "a"), progress=False)
    b = run_study(small_spec(tmp_path / "b"), progress=False)
    assert a["reports"] > 10 and a["trials"] > 3
    assert _rows(a["folder"]) == _rows(b["folder"])
    folder = Path(a["folder"])
    assert (folder / "study.json").exists() and (folder / "summary.json").exists()
    study = json.loads((folder / "study.json").read_text())
    assert study["spec"]["task"] == "digits" and study["task"]["metric"] == "val_error"
    times = [r["ohgw_time"] for r in results.iter_reports(folder)]
    assert times == sorted(times) and times[-1] <= 4.0


def test_rerun_skips_complete_study_and_refuses_other_spec(tmp_path: Path) -> None:
    first = run_study(small_spec(tmp_path, budget=2.0), progress=False)
    again = run_study(small_spec(tmp_path, budget=2.0), progress=False)
    assert again.get("skipped") and again["reports"] == first["reports"]
    with pytest.raises(UserError, match="different spec"):
        run_study(small_spec(tmp_path, budget=3.0), progress=False)


def test_warm_start_arms_see_the_same_base_proposals(tmp_path: Path) -> None:
    vanilla = run_study(small_spec(tmp_path), progress=False)
    nudged = run_study(small_spec(tmp_path, warm_start=WarmStartSettings("ohgw", step_rule="normalized")),
                       progress=False)

    def proposals(folder: str) -> dict[int, dict]:
        return {r["ohgw_trial_id"]: r["ohgw_proposed"] for r in results.iter_reports(folder)}

    pv, pn = proposals(vanilla["folder"]), proposals(nudged["folder"])
    common = sorted(set(pv) & set(pn))
    assert len(common) >= 4
    assert all(pv[t] == pn[t] for t in common)
    moved = [r for r in results.iter_reports(nudged["folder"]) if r["ohgw_config"] != r["ohgw_proposed"]]
    assert moved, "the OHGW arm must evaluate nudged configs"
    for r in moved:
        dz = [abs(v) for v in r["ohgw_warm_start"]["step_unit"].values()]
        assert math.sqrt(sum(d * d for d in dz)) <= 0.05 + 1e-9


def test_cli_default_study_prints_summary_and_json(tmp_path: Path) -> None:
    out = cli("--results-dir", str(tmp_path), "--budget", "2", "--quiet")
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["study_id"].startswith("default/digits-mlp-v1/asha/none/seed-0")
    assert Path(last["folder"], "summary.json").exists()
    assert "best val_error" in out.stdout


@pytest.mark.parametrize("args, needle", [
    (["--task", "nope"], "unknown task"),
    (["--scheduler", "nope"], "unknown scheduler"),
    (["--budget", "-5"], "--budget"),
    (["--workers", "0"], "--workers"),
    (["--warm-start", "sideways"], "--warm-start"),
    (["--task-option", "novalue"], "KEY=VALUE"),
    (["--seed", "-1"], "--seed"),
    (["--tau", "nan"], "--tau"),
    (["--step-rule", "sign"], "no warm-start"),
    (["--rho", "0.1"], "no warm-start"),
    (["--eta-h", "0.01"], "no warm-start"),
    (["--horizon", "2"], "no warm-start"),
    (["--hg-mode", "mixed"], "no warm-start"),
    (["--split-batch"], "no warm-start"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    out = cli("--results-dir", str(tmp_path), "--quiet", *args, timeout=120)
    assert out.returncode == 2
    err = out.stderr.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_unwritable_results_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = cli("--results-dir", str(blocker / "sub"), "--quiet", "--budget", "1", timeout=120)
    assert out.returncode == 2 and "not writable" in out.stderr and "Traceback" not in out.stderr


def test_list_tasks_and_schedulers() -> None:
    out = cli("--list-tasks", timeout=60)
    assert out.returncode == 0 and "digits-mlp-v1" in out.stdout and "wikitext103-gpt2-v1" in out.stdout
    out = cli("--list-schedulers", timeout=60)
    assert out.returncode == 0
    for name in ("asha", "asha-promotion", "pasha", "dyhpo", "bohb", "hyperband-bo", "smac-hyperband", "smac-bohb",
                 "random"):
        assert name in out.stdout


def test_local_backend_runs_real_processes(tmp_path: Path) -> None:
    out = cli("--results-dir", str(tmp_path), "--backend", "local", "--workers", "2", "--budget", "30", "--quiet",
              timeout=240)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    folder = Path(summary["folder"])
    rows = list(results.iter_reports(folder))
    assert rows and summary["reports"] == len(rows)
    logs = sorted((folder / "trials").glob("*/std.out"))
    assert len(logs) >= 2 and any("tune-metric" in p.read_text() for p in logs)
    study = json.loads((folder / "study.json").read_text())
    assert study["clock"] == "wall"
    assert np.all(np.diff([r["ohgw_time"] for r in rows]) >= 0)


# -- how a study ended ----------------------------------------------------------------------------

def test_summary_says_how_the_study_ended_and_how_much_budget_it_used(tmp_path: Path) -> None:
    s = run_study(small_spec(tmp_path), progress=False)
    assert s["ended"] == "budget spent"
    assert 0.5 < s["budget_used_fraction"] <= 1.0 + 1e-9
    assert s["budget_used_fraction"] == pytest.approx(s["worker_time"] / (3.0 * 4))
    on_disk = json.loads(Path(s["folder"], "summary.json").read_text())
    assert on_disk["ended"] == "budget spent" and on_disk["budget_used_fraction"] == s["budget_used_fraction"]


def test_budget_below_one_fidelity_unit_is_refused_before_any_work(tmp_path: Path) -> None:
    out = cli("--results-dir", str(tmp_path), "--quiet", "--budget", "1e-9", timeout=120)
    assert out.returncode == 2
    err = out.stderr.strip()
    assert "below the cost of one fidelity unit" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.rglob("study.json")) and not list(tmp_path.rglob("summary.json"))


def test_local_study_with_no_report_is_not_complete(tmp_path: Path) -> None:
    """No trial process can import torch and train a unit in 0.3 s: exit 2, partial.json, no summary."""
    out = cli("--results-dir", str(tmp_path), "--backend", "local", "--workers", "1", "--budget", "0.3",
              "--quiet", timeout=240)
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip()
    assert "0 reports" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.rglob("summary.json"))
    partial = json.loads(next(tmp_path.rglob("partial.json")).read_text())
    assert partial["ended"] == "budget spent" and partial["reports"] == 0


@pytest.mark.parametrize("source, needle", [
    ("from ohgw_bench.tasks.digits import DigitsTask\n\nclass Adapter(DigitsTask):\n"
     "    def __init__(self, *a, **k):\n        raise RuntimeError('no such device')\n", "no such device"),
    ("def broken(:\n    pass\n", "does not parse"),
])
def test_broken_user_adapter_is_one_line_exit_2(tmp_path: Path, source: str, needle: str) -> None:
    (tmp_path / "my_adapter.py").write_text(source)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-m", "ohgw_bench.run", "--task", "my_adapter:Adapter", "--quiet",
                          "--results-dir", str(tmp_path / "r")], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2
    err = out.stderr.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """``python -m ohgw_bench.run | head``: the reader is gone before the summary is printed."""
    proc = subprocess.Popen([sys.executable, "-m", "ohgw_bench.run", "--results-dir", str(tmp_path), "--budget", "1",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=240) == 0, err
    assert "BrokenPipeError" not in err and "Traceback" not in err
    assert list(tmp_path.rglob("summary.json"))


def test_tau_never_reaches_the_last_line_as_a_bare_nan(tmp_path: Path) -> None:
    out = cli("--results-dir", str(tmp_path), "--budget", "1", "--quiet", "--tau", "inf", timeout=120)
    assert out.returncode == 2 and "--tau" in out.stderr


def test_warm_start_warms_up_once_before_its_first_measured_call(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """One-time costs (first autograd/FLOP-counter use, lazy loads) must not land in the first
    trial's cost.seconds/ratio_time: the warm-up runs, unrecorded, before any measured call."""
    import ohgw_bench.study as study_mod
    import ohgw_bench.warmstart as ws_mod

    log: list[str] = []
    real_measure, real_warm_up = ws_mod.measure, study_mod.warm_up

    def measured(fn, **kw):  # noqa: ANN001, ANN202
        log.append("measured")
        return real_measure(fn, **kw)

    def warm_up(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        out = real_warm_up(*a, **kw)
        log.append("warm-up")
        return out

    monkeypatch.setattr(ws_mod, "measure", measured)
    monkeypatch.setattr(study_mod, "warm_up", warm_up)
    s = run_study(small_spec(tmp_path, warm_start=WarmStartSettings(variant="ohgw"), budget=2.0), progress=False)
    assert log[0] == "warm-up" and log.count("warm-up") == 1 and log.count("measured") >= 2
    study = json.loads(Path(s["folder"], "study.json").read_text())
    assert study["warm_start_warmup"]["seconds"] > 0 and "error" not in study["warm_start_warmup"]
    none = run_study(small_spec(tmp_path / "none", budget=2.0), progress=False)
    assert json.loads(Path(none["folder"], "study.json").read_text())["warm_start_warmup"] is None
