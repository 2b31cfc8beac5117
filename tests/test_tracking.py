"""MLflow tracking (issue 26 item 3), against a real local MLflow SQLite store read back with MLflow.

Each study logged is one run: the frozen spec as params, the best-so-far metric against the
study clock as a metric history, T@tau and the overhead share as final metrics, summary.json
and study.json as artifacts. A tracker failure never costs the study; MLflow missing is one
line and exit code 2 before any work; importing the package does not import MLflow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ohgw_bench import results, run, tracking
from ohgw_bench.errors import UserError
from ohgw_bench.experiment import load
from ohgw_bench.experiment import main as experiment_main

ROOT = Path(__file__).resolve().parents[1]
STUDY = ["--budget", "2", "--workers", "2", "--quiet"]
FOLDER = ("default", "digits-mlp-v1", "asha", "none", "seed-0")


def runs_of(uri: str, experiment: str = "default"):
    """The runs of ``experiment`` in the store at ``uri``, through mlflow.search_runs (a DataFrame);
    the URI is given the way a user would, through MLFLOW_TRACKING_URI, and put back after."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        return mlflow.search_runs(experiment_names=[experiment])
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI")
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One digits study run with --track mlflow from a scratch cwd, into its own results folder."""
    base = tmp_path_factory.mktemp("tracked")
    cwd = base / "cwd"
    cwd.mkdir()
    out_dir = base / "results"
    here = os.getcwd()
    os.chdir(cwd)
    try:
        code = run.main([*STUDY, "--results-dir", str(out_dir), "--track", "mlflow"])
    finally:
        os.chdir(here)
    assert code == 0
    folder = out_dir.joinpath(*FOLDER)
    return {"results": out_dir, "cwd": cwd, "folder": folder,
            "summary": json.loads((folder / results.SUMMARY_FILE).read_text())}


def test_a_tracked_study_is_one_mlflow_run_with_spec_metrics_and_artifacts(tracked: dict) -> None:
    from mlflow.tracking import MlflowClient

    uri = tracking.default_uri(tracked["results"])
    assert uri == f"sqlite:///{tracked['results'].resolve() / 'mlflow.db'}"
    df = runs_of(uri)
    assert len(df) == 1
    row = df.iloc[0]
    summary = tracked["summary"]
    study = json.loads((tracked["folder"] / results.STUDY_FILE).read_text())
    assert row["status"] == "FINISHED" and row["tags.mlflow.runName"] == summary["study_id"]
    # the frozen spec, flattened, and what the study resolved
    assert row["params.scheduler"] == "asha" and row["params.task"] == "digits"
    assert row["params.warm_start.variant"] == "none" and row["params.seed"] == "0"
    assert row["params.n_workers"] == "2" and row["params.study.budget"] == "2.0"
    assert row["params.study.tau"] == json.dumps(study["tau"])
    # final metrics
    assert row["metrics.reached_tau"] == float(summary["reached_tau"])
    assert row["metrics.overhead_share"] == pytest.approx(summary["warm_start"]["share_of_worker_time"], abs=1e-12)
    assert row["metrics.trials"] == summary["trials"] and row["metrics.reports"] == summary["reports"]
    if summary["reached_tau"]:
        assert row["metrics.time_to_tau"] == pytest.approx(summary["time_to_tau"], rel=1e-9)
    else:
        assert "metrics.time_to_tau" not in df.columns or row.isna()["metrics.time_to_tau"]
    # the best-so-far history against the study clock: integer ms steps, never worse, ends at the best
    client = MlflowClient(uri)
    run_id = row["run_id"]
    history = client.get_metric_history(run_id, "best_val_error")
    rows = list(results.iter_reports(tracked["folder"]))
    within = [r for r in rows if r["ohgw_time"] <= summary["budget"] and r["ohgw_metric"] is not None]
    assert len(history) == len(within) > 1
    steps = [m.step for m in history]
    values = [m.value for m in history]
    assert all(isinstance(s, int) for s in steps) and steps == sorted(steps)
    assert steps[-1] == round(1000 * max(r["ohgw_time"] for r in within))
    assert all(b <= a for a, b in zip(values, values[1:]))  # val_error is minimised
    assert values[-1] == pytest.approx(summary["best_metric"], abs=1e-12)
    assert row["metrics.best_val_error"] == pytest.approx(summary["best_metric"], abs=1e-12)
    # the artifacts, kept inside the results folder
    assert {a.path for a in client.list_artifacts(run_id)} == {"summary.json", "study.json"}
    artifact_dir = Path(row["artifact_uri"].removeprefix("file://"))
    assert artifact_dir.is_relative_to(tracked["results"].resolve() / tracking.ARTIFACTS_DIR)
    assert json.loads((artifact_dir / "summary.json").read_text()) == summary
    # nothing written in the cwd (MLflow's own default would be ./mlruns or ./mlflow.db)
    assert list(tracked["cwd"].iterdir()) == []


def test_rerunning_a_tracked_finished_study_does_not_log_it_twice(tracked: dict, capsys) -> None:
    code = run.main([*STUDY, "--results-dir", str(tracked["results"]), "--track", "mlflow"])
    assert code == 0 and "Study already complete" in capsys.readouterr().out
    assert len(runs_of(tracking.default_uri(tracked["results"]))) == 1


def test_an_unwritable_store_is_one_warning_and_the_study_is_complete(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out_dir = tmp_path / "results"
    code = run.main([*STUDY, "--results-dir", str(out_dir), "--track", "mlflow",
                     "--track-uri", f"sqlite:///{blocker}/mlflow.db"])
    captured = capsys.readouterr()
    assert code == 0
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: MLflow tracking to sqlite:///") and "complete" in lines[0]
    folder = out_dir.joinpath(*FOLDER)
    assert results.is_complete(folder) and not (folder / results.PARTIAL_FILE).exists()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["reports"] == len(list(results.iter_reports(folder))) > 0


def test_an_unreachable_server_is_one_warning_and_no_exception(tracked: dict, capsys) -> None:
    ids = tracking.log_studies(tracking.Tracking("mlflow", "http://127.0.0.1:9"), tracked["results"],
                               [tracked["folder"], tracked["folder"]])
    assert ids == [None, None]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "http://127.0.0.1:9" in lines[0] and "1 more studies not tracked" in lines[0]


def test_a_half_logged_run_is_marked_failed_and_a_later_try_logs_the_study(tracked: dict, tmp_path: Path,
                                                                              capsys) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / tracking.ARTIFACTS_DIR).write_text("a file where the artifacts should go")
    assert tracking.log_study(tracking.Tracking(), store, tracked["folder"]) is None
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: MLflow tracking")
    assert list(runs_of(tracking.default_uri(store))["status"]) == ["FAILED"]
    (store / tracking.ARTIFACTS_DIR).unlink()
    run_id = tracking.log_study(tracking.Tracking(), store, tracked["folder"])
    df = runs_of(tracking.default_uri(store))
    assert run_id is not None and sorted(df["status"]) == ["FAILED", "FINISHED"]
    assert df.set_index("run_id").loc[run_id, "status"] == "FINISHED"


def test_mlflow_missing_is_one_line_and_exit_2_before_any_work(tmp_path: Path, capsys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the tracking extra were not installed
    out_dir = tmp_path / "results"
    code = run.main([*STUDY, "--results-dir", str(out_dir), "--track", "mlflow"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "ohgw_bench[tracking]" in err and "--track mlflow" in err
    assert not out_dir.exists()


def test_mlflow_missing_at_log_time_is_one_warning(tracked: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert tracking.log_study(tracking.Tracking(), tracked["results"], tracked["folder"]) is None
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "ModuleNotFoundError" in lines[0] and "ohgw_bench[tracking]" in lines[0]


@pytest.mark.parametrize("args, needle", [
    (["--track", "wandb"], "invalid choice"),
    (["--track-uri", "sqlite:///x.db"], "--track-uri needs --track mlflow"),
])
def test_bad_tracking_flags_are_one_line_and_exit_2(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusal (one line, OneLineParser)
        code = run.main([*STUDY, "--results-dir", str(tmp_path / "r"), *args])
        raise SystemExit(code)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and needle in err and "\n" not in err
    assert not (tmp_path / "r").exists()


EXPERIMENT = """
name: tracked-exp
budget: 2
workers: 2
tasks: [digits]
schedulers: [asha]
variants: [none]
{extra}
"""


@pytest.mark.parametrize("extra, needle", [
    ("track: wandb", "track must be one of mlflow"),
    ("track_uri: sqlite:///x.db", "track_uri needs track mlflow"),
    ("track: mlflow\ntrack_uri: ''", "track_uri must be a non-empty URI"),
    ("grids: [{track: mlflow}]", "grids[0].track"),
])
def test_experiment_tracking_keys_are_validated(tmp_path: Path, extra: str, needle: str) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT.format(extra=extra))
    with pytest.raises(UserError) as err:
        load(path, tmp_path / "r")
    assert str(path) in str(err.value) and needle in str(err.value) and "\n" not in str(err.value)


def test_an_experiment_with_track_mlflow_logs_each_study(tmp_path: Path, capsys) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT.format(extra="track: mlflow\nseeds: 2"))
    out_dir = tmp_path / "results"
    assert experiment_main([str(path), "--results-dir", str(out_dir)]) == 0
    assert f"Tracked: 2 studies in {tracking.default_uri(out_dir)}" in capsys.readouterr().out
    df = runs_of(tracking.default_uri(out_dir), "tracked-exp")
    assert sorted(df["params.seed"]) == ["0", "1"] and set(df["status"]) == {"FINISHED"}


def test_best_so_far_is_the_incumbent_curve_within_the_budget() -> None:
    rows = [{"ohgw_time": 2.0, "ohgw_time_wall": 0.5, "ohgw_metric": 0.5},
            {"ohgw_time": 1.0, "ohgw_time_wall": 0.7, "ohgw_metric": 0.3},
            {"ohgw_time": 1.5, "ohgw_time_wall": 0.9, "ohgw_metric": None},
            {"ohgw_time": 3.0, "ohgw_time_wall": 1.0, "ohgw_metric": 0.9},
            {"ohgw_time": 9.0, "ohgw_time_wall": 2.0, "ohgw_metric": 1.0}]  # beyond the budget
    curve = tracking.best_so_far(rows, {"budget": 4.0, "mode": "max"})
    assert curve == [(1000, 700, 0.3), (2000, 500, 0.5), (3000, 1000, 0.9)]
    assert tracking.best_so_far(rows, {"budget": 4.0, "mode": "min"})[-1] == (3000, 1000, 0.3)


def test_params_are_mlflow_safe() -> None:
    study = {"spec": {"task": "x", "task_options": {"bad key!": "v" * 7000, "n": 3}, "budget": None}, "tau": 0.1}
    params = tracking.params_of(study)
    assert params["task_options.bad key_"] == "v" * 6000 and params["task_options.n"] == "3"
    assert params["budget"] == "null" and params["study.tau"] == "0.1"


def test_importing_the_package_does_not_import_mlflow() -> None:
    code = "import ohgw_bench, ohgw_bench.run, ohgw_bench.study, ohgw_bench.experiment, ohgw_bench.tracking"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "ohgw_bench.tracking" in imported
    assert not [m for m in imported if m.split(".")[0] in ("mlflow", "sqlalchemy", "alembic")]
