"""The study pipeline after issue 20: trial plans beside trial.config, one settings parser,
canonical scheduler names everywhere, a quiet command line, and cached metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ohgw_bench import folder as study_folder
from ohgw_bench import results
from ohgw_bench.errors import UserError
from ohgw_bench.study import StudySpec, run_study
from ohgw_bench.warmstart import WarmStartSettings

SEEN_CONFIGS: list[dict[str, Any]] = []


def build_spy(ctx: Any) -> Any:
    """Syne Tune's ASHA, recording every trial.config its on_trial_add and on_trial_result see."""
    from ohgw_bench.baselines.synetune import build_asha

    base = build_asha(ctx)
    add, result = base.on_trial_add, base.on_trial_result

    def on_trial_add(trial: Any) -> None:
        SEEN_CONFIGS.append(dict(trial.config))
        add(trial)

    def on_trial_result(trial: Any, res: dict[str, Any]) -> str:
        SEEN_CONFIGS.append(dict(trial.config))
        return result(trial, res)

    base.on_trial_add, base.on_trial_result = on_trial_add, on_trial_result
    return base


def test_schedulers_see_only_hyperparameters_and_the_fidelity(tmp_path: Path) -> None:
    SEEN_CONFIGS.clear()
    spec = StudySpec(task="digits", scheduler="test_study_pipeline:build_spy", budget=1.0, n_workers=2,
                     warm_start=WarmStartSettings("ohgw", step_rule="normalized"), results_dir=str(tmp_path))
    summary = run_study(spec, progress=False)
    assert summary["warm_start"]["trials_nudged"] > 0 and SEEN_CONFIGS
    from ohgw_bench import tasks

    task = tasks.make("digits")
    allowed = {*task.space.names, task.fidelity.name}
    assert all(set(c) <= allowed for c in SEEN_CONFIGS), sorted(set().union(*SEEN_CONFIGS) - allowed)
    rows = list(results.iter_reports(Path(summary["folder"])))
    assert all(r["ohgw_warm_start"] and r["ohgw_proposed"] for r in rows)  # the recorder reads the plans
    assert any(r["ohgw_proposed"] != r["ohgw_config"] for r in rows)


def test_alias_is_the_canonical_scheduler_everywhere(tmp_path: Path) -> None:
    spec = StudySpec(task="table", scheduler="hyperband-bo", budget=20.0, n_workers=2, results_dir=str(tmp_path))
    summary = run_study(spec, progress=False)
    folder = Path(summary["folder"])
    assert folder.parts[-3] == "bohb" and summary["scheduler"] == "bohb" and "/bohb/" in summary["study_id"]
    saved = json.loads((folder / results.STUDY_FILE).read_text())
    assert saved["resolved"]["scheduler"] == "bohb" and "/bohb/" in saved["study_id"]
    assert saved["spec"]["scheduler"] == "hyperband-bo"  # the request, as asked
    assert set(results.load_results(tmp_path)["scheduler"]) == {"bohb"}
    again = run_study(StudySpec(task="table", scheduler="bohb", budget=20.0, n_workers=2, results_dir=str(tmp_path)),
                      progress=False)
    assert again.get("skipped") and Path(again["folder"]) == folder  # one study, not "a different spec"


def test_module_class_study_is_labelled_by_the_class_id(tmp_path: Path) -> None:
    spec = StudySpec(task="faulty_tasks:NaNDigits", budget=0.5, n_workers=2, results_dir=str(tmp_path),
                     task_options={"fail_above": 10.0})
    summary = run_study(spec, progress=False)
    folder = Path(summary["folder"])
    assert ":" not in folder.parts[-4] and folder.parts[-4] == summary["task"]
    assert set(results.load_results(tmp_path)["task"]) == {summary["task"]}


def test_ignored_settings_are_reset_and_used_ones_keep_their_labels() -> None:
    assert WarmStartSettings("ohgw", step_rule="normalized", eta_h=0.01).label() == "ohgw-normalized"
    assert WarmStartSettings("ohgw", step_rule="sign", eta_h=0.01) == WarmStartSettings("ohgw", step_rule="sign")
    assert WarmStartSettings("ohgw", rho=0.2).label() == "ohgw"  # raw ignores rho
    # settings a rule uses keep the labels existing result folders have
    assert WarmStartSettings("ohgw", eta_h=0.01).label() == "ohgw-eta0.01"
    assert WarmStartSettings("ohgw", step_rule="normalized", rho=0.1).label() == "ohgw-normalized-rho0.1"
    assert WarmStartSettings("random", step_rule="sign", rho=0.02).label() == "random-sign-rho0.02"
    assert WarmStartSettings("ohgw", horizon=2, mode="first-order", split_batch=True).label() == "ohgw-k2-fo-split"
    for bad in ({"rho": 1.5}, {"eta_h": float("inf")}, {"eta_h": -1.0}):
        with pytest.raises(ValueError):
            WarmStartSettings("ohgw", step_rule="normalized" if "rho" in bad else "raw", **bad)


def test_command_line_and_experiment_file_parse_settings_alike(tmp_path: Path) -> None:
    from ohgw_bench import experiment
    from ohgw_bench.run import build_parser, warm_start_settings

    args = build_parser().parse_args(["--warm-start", "ohgw-k2", "--step-rule", "sign", "--rho", "0.1"])
    cli = warm_start_settings(args)
    f = tmp_path / "e.yaml"
    f.write_text("tasks: [digits]\nschedulers: [asha]\nvariants: [{variant: ohgw-k2, step_rule: sign, rho: 0.1}]\n")
    _, specs = experiment.load(f, tmp_path)
    assert specs[0].warm_start == cli == WarmStartSettings.parse("ohgw-k2-sign-rho0.1")
    f.write_text("tasks: [digits]\nschedulers: [asha]\nvariants: [{variant: ohgw-k2, horizon: 3}]\n")
    with pytest.raises(UserError, match="horizon"):
        experiment.load(f, tmp_path)
    args = build_parser().parse_args(["--ohgw", "--rho", "2"])
    with pytest.raises(UserError, match="rho"):
        warm_start_settings(args)


def test_list_schedulers_has_the_backends_column() -> None:
    from ohgw_bench import backends, baselines
    from ohgw_bench.run import list_schedulers

    assert baselines.ALL_BACKENDS == backends.BACKENDS

    lines = list_schedulers().splitlines()
    assert lines[0].split()[:2] == ["name", "backends"]
    pasha = next(line for line in lines if line.startswith("pasha "))
    assert "simulated, local" in pasha


def test_versions_and_git_revision_are_looked_up_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    study_folder._versions()
    study_folder._git_revision()
    calls: list[Any] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    assert study_folder._versions() == study_folder._versions() and "python" in study_folder._versions()
    study_folder._git_revision()
    assert calls == []


def test_default_run_stderr_is_quiet_and_the_bar_counts_reported_trials(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # bytes, not text=True: universal newlines would turn each of the bar's \r redraws into a line
    out = subprocess.run([sys.executable, "-m", "ohgw_bench.run", "--results-dir", str(tmp_path), "--budget", "3"],
                         capture_output=True, timeout=300, env=env)
    err = out.stderr.decode()
    assert out.returncode == 0, err[-2000:]
    assert "Resource summary" not in err and "StoreResultsCallback" not in err
    assert err.count("\n") <= 40
    summary = json.loads(out.stdout.decode().strip().splitlines()[-1])
    last_bar = err.replace("\r", "\n").strip().splitlines()[-1]
    assert f"trials={summary['trials']} " in last_bar


def test_verbose_brings_syne_tunes_output_back(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "ohgw_bench.run", "--results-dir", str(tmp_path), "--budget", "1",
                          "--quiet", "--verbose"], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Resource summary" in out.stderr


def test_the_recorder_is_a_syne_tune_callback() -> None:
    """It subclasses TunerCallback (issue 27 item 4): a hook Syne Tune adds is inherited, not missing."""
    from syne_tune.tuner_callback import TunerCallback

    from ohgw_bench.recorder import StudyRecorder, status_of

    assert issubclass(StudyRecorder, TunerCallback)
    assert "on_start_trial" not in vars(StudyRecorder)  # the base class's no-op, not a copy
    assert [status_of(v, f, 9, d) for v, f, d in ((float("nan"), 3, None), (0.1, 3, "STOP"), (0.1, 3, "PAUSE"),
                                                  (0.1, 9, "CONTINUE"), (0.1, 3, "CONTINUE"))] == \
        ["nan", "stopped", "paused", "completed", "ok"]
