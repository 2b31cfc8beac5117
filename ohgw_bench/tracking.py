"""Optional experiment tracking: each finished study logged as one MLflow run.

``python -m ohgw_bench.run --track mlflow`` (or ``track: mlflow`` in an experiment file) logs a
study once its folder is complete, from the folder's own files, so a study runs exactly as it
does untracked and the tracker costs one short write at the end. One run per study:

- **params**: the frozen spec of ``study.json`` (nested keys dotted: ``warm_start.variant``), and
  what the study resolved: ``study.budget``, ``study.tau``, ``study.clock``,
  ``study.git_revision``, ``study.study_id``;
- **metric history** ``best_<metric>`` (e.g. ``best_val_error``): the best-so-far validation
  metric at every report within the budget. ``step`` is the study clock in integer
  milliseconds (simulated or wall seconds x 1000, as ``ohgw_time``), ``timestamp`` the wall time
  of the report; its latest value is the study's best;
- **final metrics**: ``time_to_tau`` (T@tau, seconds on the study clock; absent when tau was not
  reached), ``reached_tau`` (1 or 0), ``overhead_share`` (the warm-start's share of worker time),
  the incumbent's test metric and the counts of the summary;
- **artifacts**: ``summary.json`` and ``study.json``.

The default store is ``sqlite:///<results-dir>/mlflow.db`` with artifacts under
``<results-dir>/mlartifacts``: no server, works offline, nothing written outside the results
folder. ``--track-uri URI`` names another store (a tracking server ``http://host:5000``, another
database). The MLflow experiment is the study's experiment name (``default`` unless set).

A tracker failure (an unreachable server, an unwritable store, MLflow missing at log time)
never costs the study: it is one warning line on stderr and the study's files stay complete.
A study already logged (same ``summary.json``, tag ``ohgw.summary_sha256``) is not logged twice,
so re-running a finished study with ``--track mlflow`` logs it only if it was not tracked yet.

MLflow is imported only here, and only when a study is logged: importing ``ohgw_bench`` never
imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ohgw_bench import results
from ohgw_bench.errors import UserError

TRACKERS = ("mlflow",)
EXTRA = "ohgw_bench[tracking]"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
SUMMARY_TAG = "ohgw.summary_sha256"

# While logging, unless the user set them: no retry storm against an unreachable server (MLflow's
# default is 7 retries with exponential back-off, minutes of waiting) and no usage telemetry
# (a benchmark measures CPU time; offline, the telemetry thread only fails).
ENV_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
_BAD_KEY = re.compile(r"[^\w.\- /:]")
_MAX_PARAM = 6000  # MLflow's limit on a param value
_BATCH = 1000  # MLflow's limit of metrics per log_batch


@dataclass(frozen=True)
class Tracking:
    """Where finished studies are logged: the tracker and its URI (None: the results folder's store)."""

    kind: str = "mlflow"
    uri: str | None = None

    def uri_for(self, results_dir: str | os.PathLike[str]) -> str:
        return self.uri or default_uri(results_dir)


def default_uri(results_dir: str | os.PathLike[str]) -> str:
    """The local SQLite store inside the results folder (absolute, so any cwd finds the same one)."""
    return f"sqlite:///{Path(results_dir).resolve() / DB_FILE}"


def check(kind: str | None, uri: str | None = None, keys: tuple[str, str] = ("--track", "--track-uri")
          ) -> Tracking | None:
    """The tracking a user asked for (``keys``: the flags or file keys that asked), checked before
    any work: an unknown tracker, a URI without a tracker, or MLflow (or, for a SQLite store,
    SQLAlchemy and alembic) not installed is a UserError naming the extra to install."""
    track, track_uri = keys
    if kind in (None, "none"):
        if uri is not None:
            raise UserError(f"{track_uri} needs {track} mlflow")
        return None
    if kind not in TRACKERS:
        raise UserError(f"{track} must be one of {', '.join(TRACKERS)}, got {kind!r}")
    if uri is not None and (not isinstance(uri, str) or not uri.strip()):
        raise UserError(f"{track_uri} must be a non-empty URI, got {uri!r}")
    needed = ["mlflow"] + (["sqlalchemy", "alembic"] if uri is None or uri.startswith("sqlite:") else [])
    missing = [m for m in needed if not _installed(m)]
    if missing:
        raise UserError(f"{track} mlflow needs {', '.join(missing)}, not installed: pip install '{EXTRA}'")
    return Tracking(kind, uri)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (blocked) or without a spec
        return False


def log_studies(tracking: Tracking, results_dir: str | os.PathLike[str], folders: Iterable[str | os.PathLike[str]],
                stream: TextIO | None = None) -> list[str | None]:
    """Log each complete study folder; returns the run ids (None where logging failed).

    A failure is one ``warning:`` line on ``stream`` (stderr), never an exception: the studies'
    own files are already complete. After the first failure the remaining studies are not tried
    against the same store (the line says how many were left untracked).
    """
    stream = stream if stream is not None else sys.stderr
    uri = tracking.uri_for(results_dir)
    ids: list[str | None] = []
    folders = list(folders)
    for i, folder in enumerate(folders):
        try:
            with _quiet_mlflow():
                ids.append(_log_one(uri, Path(results_dir), Path(folder)))
        except Exception as e:  # noqa: BLE001 - any tracker error: the study is complete on disk
            message = " ".join(str(e).split())[:240] + (f" (pip install '{EXTRA}')" if isinstance(e, ImportError) else "")
            rest = len(folders) - i - 1
            print(f"warning: MLflow tracking to {uri} failed: {type(e).__name__}: {message}; the study's files "
                  f"are complete in {folder}" + (f" ({rest} more studies not tracked)" if rest else ""),
                  file=stream, flush=True)
            return ids + [None] * (rest + 1)
    return ids


def log_study(tracking: Tracking, results_dir: str | os.PathLike[str], folder: str | os.PathLike[str],
              stream: TextIO | None = None) -> str | None:
    """Log one complete study folder; its run id, or None after one warning line (see :func:`log_studies`)."""
    return log_studies(tracking, results_dir, [folder], stream)[0]


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's, alembic's and urllib3's logging below errors (a new store's "Creating initial MLflow
    database tables", a retry's warning) and MLflow's warnings held back, and :data:`ENV_DEFAULTS`
    set, while studies are logged: the one line a failure prints is the study's own."""
    added = {k: v for k, v in ENV_DEFAULTS.items() if k not in os.environ}
    os.environ.update(added)
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic", "urllib3")]
    levels: list[int] = []
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="mlflow")
            warnings.filterwarnings("ignore", module="alembic")
            import mlflow  # noqa: F401 - first, since its import sets the level of its own logger

            levels = [lg.level for lg in loggers]
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        for k in added:
            os.environ.pop(k, None)


def _log_one(uri: str, results_dir: Path, folder: Path) -> str:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    study, rows, summary = results.load_study(folder)
    if summary is None:
        raise UserError(f"{folder} has no {results.SUMMARY_FILE}: only complete studies are tracked")
    digest = hashlib.sha256((folder / results.SUMMARY_FILE).read_bytes()).hexdigest()
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _experiment(client, uri, results_dir, str(study["spec"].get("experiment", "default")))
    done = client.search_runs([experiment_id], max_results=1,
                              filter_string=f"tags.`{SUMMARY_TAG}` = '{digest}' and attributes.status = 'FINISHED'")
    if done:
        return done[0].info.run_id
    start_ms = _started_ms(study, summary)
    run = client.create_run(experiment_id, start_time=start_ms, run_name=str(summary.get("study_id", folder.name)),
                            tags={SUMMARY_TAG: digest, "ohgw.study_id": str(summary.get("study_id")),
                                  "ohgw.folder": str(folder.resolve()), "ohgw.clock": str(study.get("clock"))})
    run_id = run.info.run_id
    end_ms = start_ms + int(1000 * float(summary.get("wall_seconds") or 0.0))
    params = [Param(k, v) for k, v in params_of(study).items()]
    metrics = [Metric(k, v, end_ms, 0) for k, v in final_metrics(summary).items()]
    metrics += [Metric(f"best_{summary.get('metric', 'metric')}", value, start_ms + wall_ms, step)
                for step, wall_ms, value in best_so_far(rows, summary)]
    try:
        for i in range(0, len(params), 100):  # MLflow's limit of params per batch
            client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[i:i + _BATCH])
        for name in (results.SUMMARY_FILE, results.STUDY_FILE):
            client.log_artifact(run_id, str(folder / name))
    except Exception:
        with contextlib.suppress(Exception):  # a half-logged run says so, and a later try logs it again
            client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED", end_time=end_ms)
    return run_id


def _experiment(client: Any, uri: str, results_dir: Path, name: str) -> str:
    """The MLflow experiment named after the study's experiment; a new one on a local database keeps
    its artifacts inside the results folder (MLflow's default would be ./mlruns in the cwd)."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if uri.startswith("sqlite:"):
        location = (results_dir.resolve() / ARTIFACTS_DIR).as_uri()
    return client.create_experiment(name, artifact_location=location)


def _started_ms(study: Mapping[str, Any], summary: Mapping[str, Any]) -> int:
    """The study's start in epoch milliseconds (study.json's ``started``), else now minus its wall time."""
    try:
        return int(1000 * time.mktime(time.strptime(str(study["started"]), "%Y-%m-%dT%H:%M:%S%z")))
    except (KeyError, ValueError, OverflowError):
        return int(1000 * (time.time() - float(summary.get("wall_seconds") or 0.0)))


def params_of(study: Mapping[str, Any]) -> dict[str, str]:
    """The frozen spec and the resolved budget, tau, clock and revision as MLflow params (strings)."""
    flat: dict[str, Any] = {}
    for key, value in dict(study.get("spec") or {}).items():
        results.flatten(key, value, flat)
    for key in ("budget", "tau", "clock", "git_revision", "study_id"):  # what the study resolved
        if key in study:
            flat[f"study.{key}"] = study[key]
    out: dict[str, str] = {}
    for key, value in flat.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out[_BAD_KEY.sub("_", key)[:250]] = text[:_MAX_PARAM]
    return out


def final_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """T@tau, the overhead share and the summary's counts, as MLflow metrics (finite numbers only)."""
    ws = summary.get("warm_start") or {}
    candidates = {
        "time_to_tau": summary.get("time_to_tau"),
        "reached_tau": 1.0 if summary.get("reached_tau") else 0.0,
        "overhead_share": ws.get("share_of_worker_time"),
        f"incumbent_{summary.get('test_metric', 'test_metric')}": summary.get("best_test_metric"),
        "trials": summary.get("trials"),
        "reports": summary.get("reports"),
        "failed_trials": summary.get("failed_trials"),
        "trials_nudged": ws.get("trials_nudged"),
        "budget_used_fraction": summary.get("budget_used_fraction"),
        "wall_seconds": summary.get("wall_seconds"),
    }
    return {_BAD_KEY.sub("_", k): float(v) for k, v in candidates.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")}


def best_so_far(rows: list[Mapping[str, Any]], summary: Mapping[str, Any]) -> list[tuple[int, int, float]]:
    """(step = study clock in ms, wall ms since the start, best value so far) at every report within the budget.

    The incumbent curve is :func:`ohgw_bench.metrics.best_so_far` of the rows, the one
    definition the analysis uses too.
    """
    from ohgw_bench import metrics

    budget = summary.get("budget")
    keep = [r for r in rows if isinstance(r.get("ohgw_time"), int | float)
            and (budget is None or r["ohgw_time"] <= budget) and isinstance(r.get("ohgw_metric"), int | float)]
    if not keep:
        return []
    times, curve = metrics.best_so_far([r["ohgw_time"] for r in keep], [r["ohgw_metric"] for r in keep],
                                       summary.get("mode", "min"))
    # best_so_far sorts the (all finite) reports by clock, stably: the same order gives their wall times
    order = sorted(range(len(keep)), key=lambda i: float(keep[i]["ohgw_time"]))
    walls = [float(keep[i].get("ohgw_time_wall") or 0.0) for i in order]
    return [(int(round(1000 * float(t))), int(round(1000 * w)), float(v)) for t, v, w in zip(times, curve, walls)]
