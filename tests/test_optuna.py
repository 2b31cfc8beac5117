"""The Optuna schedulers (``ohgw_bench/baselines/optuna.py``) against real Optuna 5: seeded
proposals, pruning by Optuna's own pruners, the sampler's history holding the nudged configs,
option errors, the command line, the local backend, and that importing the package stays
free of Optuna."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402
from syne_tune.backend.trial_status import Trial  # noqa: E402

from ohgw_bench import baselines, results, tasks  # noqa: E402
from ohgw_bench.baselines.optuna import PROPOSED_ATTR, OptunaScheduler  # noqa: E402
from ohgw_bench.study import StudySpec, run_study  # noqa: E402
from ohgw_bench.warmstart import WarmStartSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OPTUNA = ("optuna-tpe-sh", "optuna-tpe-hb", "optuna-random-sh")
TABLE = {"max_epochs": 9}


def context(seed: int, **options) -> baselines.SchedulerContext:
    task = tasks.make("table", **TABLE)
    return baselines.SchedulerContext.for_task(task, seed, options=options)


def proposals(name: str, seed: int, n: int = 12) -> list[dict]:
    scheduler = baselines.build(name, context(seed))
    out = []
    for i in range(n):
        config = scheduler.suggest().config
        scheduler.on_trial_add(Trial(trial_id=i, config=config, creation_time=None))
        out.append(config)
    return out


@pytest.mark.parametrize("name", OPTUNA)
def test_same_seed_same_proposals_other_seed_others(name: str) -> None:
    a, b, c = proposals(name, 0), proposals(name, 0), proposals(name, 1)
    assert a == b
    assert a != c
    assert all(config["epochs"] == 9 for config in a)  # started at the maximum; the pruner stops them


def spec(name: str, root: Path, variant: str = "none", **kw) -> StudySpec:
    ws = WarmStartSettings(variant=variant, step_rule="normalized") if variant != "none" else WarmStartSettings()
    return StudySpec(task="table", scheduler=name, warm_start=ws, seed=0, budget=30.0, n_workers=4,
                     results_dir=str(root), task_options=TABLE, **kw)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list:
    """The warm-started schedulers run_study builds (to read their Optuna study afterwards)."""
    from ohgw_bench import study

    built: list = []
    original = study.build_scheduler

    def build_and_keep(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(study, "build_scheduler", build_and_keep)
    return built


@pytest.mark.parametrize("name", OPTUNA)
def test_the_pruner_stops_trials_at_its_own_rungs(name: str, tmp_path: Path, captured: list) -> None:
    summary = run_study(spec(name, tmp_path), progress=False)
    rows = list(results.iter_reports(summary["folder"]))
    stopped = {r["ohgw_fidelity"] for r in rows if r["ohgw_status"] == "stopped"}
    completed = [r for r in rows if r["ohgw_status"] == "completed"]
    assert stopped and completed
    # eta 3 from the minimum fidelity 1 over 9 epochs: Optuna's rungs are at 1 and 3 epochs
    # (Hyperband's brackets start some at 3); a stop anywhere else would not be the pruner's.
    assert stopped <= {1, 3}, stopped
    states = [t.state for t in captured[0].base.study.get_trials()]
    assert states.count(TrialState.PRUNED) == len({r["ohgw_trial_id"] for r in rows if r["ohgw_status"] == "stopped"})
    assert states.count(TrialState.COMPLETE) == len({r["ohgw_trial_id"] for r in completed})
    if name.endswith("-sh"):  # successive halving whose first rung (1 * 3**2) is the maximum prunes nothing
        late = run_study(spec(name, tmp_path / "late", scheduler_options={"min_early_stopping_rate": 2}),
                         progress=False)
        assert not any(r["ohgw_status"] == "stopped" for r in results.iter_reports(late["folder"]))


@pytest.mark.parametrize("name", ("optuna-tpe-sh", "optuna-random-sh"))
def test_the_sampler_records_the_nudged_config_and_keeps_the_proposal(name: str, tmp_path: Path,
                                                                       captured: list) -> None:
    summary = run_study(spec(name, tmp_path, variant="ohgw"), progress=False)
    scheduler = captured[0]
    study = scheduler.base.study
    rows = list(results.iter_reports(summary["folder"]))
    trained = {r["ohgw_trial_id"]: r["ohgw_config"] for r in rows}
    proposed = {r["ohgw_trial_id"]: r["ohgw_proposed"] for r in rows}
    by_number = {ot.number: tid for tid, ot in scheduler.base.trials.items()}
    moved = 0
    for frozen in study.get_trials():
        tid = by_number[frozen.number]
        if tid not in trained:
            continue  # started but not reported before the budget ran out
        assert frozen.params == pytest.approx(trained[tid], rel=1e-12), "Optuna's trial must hold the trained config"
        assert frozen.user_attrs[PROPOSED_ATTR] == pytest.approx(proposed[tid], rel=1e-12)
        moved += frozen.params != frozen.user_attrs[PROPOSED_ATTR]
    assert moved >= 10, f"only {moved} nudged configs: the test would not tell the two apart"


def test_first_proposal_is_paired_across_arms(tmp_path: Path) -> None:
    first = {}
    for variant in ("none", "ohgw"):
        summary = run_study(spec("optuna-tpe-sh", tmp_path / variant, variant=variant), progress=False)
        first[variant] = next(r["ohgw_proposed"] for r in results.iter_reports(summary["folder"])
                              if r["ohgw_trial_id"] == 0)
    assert first["none"] == first["ohgw"]


def run_cli(*args: str, cwd: Path, extra_code: str = "") -> subprocess.CompletedProcess:
    code = f"{extra_code}\nimport sys\nfrom ohgw_bench.run import main\nsys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("bad, message", [
    ("eta=1", "'eta' expects an integer >= 2"),
    ("n_startup_trials=-1", "'n_startup_trials' expects an integer >= 0"),
    ("grace_period=3", "unknown option 'grace_period'"),
    ("min_resource=50", "option 'min_resource' must lie in the task's fidelity range [1, 9]"),
])
def test_bad_options_are_one_line_and_exit_2(bad: str, message: str, tmp_path: Path) -> None:
    from ohgw_bench.run import main

    out = tmp_path / "r"
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["--task", "table", "--task-option", "max_epochs=9", "--scheduler", "optuna-tpe-sh",
                   "--scheduler-option", bad, "--results-dir", str(out), "--quiet"])
    text = err.getvalue().strip()
    assert rc == 2 and message in text and "\n" not in text, text
    assert not out.exists() or not any(out.rglob("reports.jsonl"))


def test_a_missing_optuna_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    proc = run_cli("--scheduler", "optuna-tpe-sh", "--results-dir", str(tmp_path / "r"), cwd=tmp_path,
                   extra_code="import sys; sys.modules['optuna'] = None  # as if not installed")
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert "\n" not in err and "'optuna'" in err and "pip install -e '.[optuna]'" in err, err
    assert not (tmp_path / "r").exists()


def test_the_command_line_runs_optuna_tpe_sh_with_ohgw(tmp_path: Path) -> None:
    proc = run_cli("--scheduler", "optuna-tpe-sh", "--ohgw", "--budget", "5", "--results-dir", str(tmp_path / "r"),
                   "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = tmp_path / "r" / "default" / "digits-mlp-v1" / "optuna-tpe-sh" / "ohgw" / "seed-0"
    summary = results.read_json(folder / "summary.json")
    assert summary["ended"] == "budget spent" and summary["warm_start"]["trials_nudged"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # nothing written beside the results


def test_runs_on_the_local_backend(tmp_path: Path) -> None:
    """Real trial processes report to the Optuna study in the Tuner's process."""
    summary = run_study(StudySpec(task="table", scheduler="optuna-random-sh", seed=0, budget=20.0, n_workers=2,
                                  backend="local", results_dir=str(tmp_path), task_options=TABLE), progress=False)
    rows = list(results.iter_reports(summary["folder"]))
    assert rows and all(r["ohgw_status"] in ("ok", "stopped", "completed") for r in rows)
    assert summary["ended"] == "budget spent"


def test_importing_the_package_does_not_import_optuna() -> None:
    for statement in ("import ohgw_bench", "import ohgw_bench.baselines", "import ohgw_bench.run"):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr[-1000:]
        modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
        assert "optuna" not in modules and len(modules) > 3, (statement, sorted(m for m in modules if "optuna" in m))


def test_optuna_scheduler_is_the_registered_class() -> None:
    assert all(isinstance(baselines.build(n, context(0)), OptunaScheduler) for n in OPTUNA)
