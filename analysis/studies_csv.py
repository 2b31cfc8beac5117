"""The rows of ``studies.csv``: one per study, with the command line that reproduces it.

The report writes the file into its bundle; ``python -m analysis.export`` writes it alone (that
module's docstring lists the columns). Kept apart from both so that neither imports the other.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.common import Study
from ohgw_bench import results
from ohgw_bench.errors import UserError
from ohgw_bench.flags import FLAGS, WARM_START_FLAGS

COLUMNS = ("experiment", "task", "scheduler", "variant", "seed", "reached_tau", "t_tau", "auc", "best_metric",
           "best_test_metric", "warm_start_share", "trials", "reports", "budget", "tau", "clock",
           "peak_rss_bytes", "ended", "study", "command", "metric", "test_metric", "mode")
#: columns a studies.csv written before they existed may lack (read from the task registry then)
OPTIONAL = ("metric", "test_metric", "mode")


def _opt(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


#: the spec fields the command line re-states after the warm-start, in this order (flags: ohgw_bench.spec.FLAGS)
_TAIL = ("budget", "tau", "n_workers", "backend", "max_failures", "max_consecutive_failures", "experiment",
         "results_dir", "data_dir")
#: the warm-start settings re-stated with a value (split_batch is a switch; clock only when not the default)
_WS_VALUED = ("eta_h", "step_rule", "rho", "horizon", "mode")


def command(spec: dict[str, Any]) -> str:
    """The ``python -m ohgw_bench.run`` command line that re-runs one study from its frozen spec
    (study.json's ``spec``, the request), its flags from the one field list (:data:`FLAGS`)."""
    args = ["python", "-m", "ohgw_bench.run", FLAGS["task"], str(spec.get("task"))]
    for k, v in sorted((spec.get("task_options") or {}).items()):
        args += [FLAGS["task_options"], f"{k}={_opt(v)}"]
    args += [FLAGS["scheduler"], str(spec.get("scheduler"))]
    for k, v in sorted((spec.get("scheduler_options") or {}).items()):
        args += [FLAGS["scheduler_options"], f"{k}={_opt(v)}"]
    ws = spec.get("warm_start") or {}
    variant = ws.get("variant", "none")
    if variant != "none":
        args += [WARM_START_FLAGS["variant"], str(variant)]
        for key in _WS_VALUED:
            if ws.get(key) is not None:
                args += [WARM_START_FLAGS[key], str(ws[key])]
        if ws.get("split_batch"):
            args.append(WARM_START_FLAGS["split_batch"])
        if ws.get("clock", "flops") != "flops":  # as_dict leaves the default clock out
            args += [WARM_START_FLAGS["clock"], str(ws["clock"])]
    args += [FLAGS["seed"], str(spec.get("seed"))]
    for key in _TAIL:
        if spec.get(key) is not None:
            args += [FLAGS[key], repr(spec[key]) if isinstance(spec[key], float) else str(spec[key])]
    return shlex.join(args)


def _num(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def row(s: Study, root: Path | None = None) -> dict[str, Any]:
    """The studies.csv row of one analysed study (``s.m`` filled by the report)."""
    sm = s.record.summary
    ws = sm.get("warm_start") or {}
    reached = bool(s.m.get("reached"))
    folder = Path(s.path)
    return {
        "experiment": s.experiment, "task": s.task, "scheduler": s.scheduler, "variant": s.variant, "seed": s.seed,
        "reached_tau": reached, "t_tau": _num(s.m.get("t_tau")) if reached else None,
        "auc": _num(s.m.get("auc")), "best_metric": _num(s.m.get("final")), "best_test_metric": _num(s.m.get("final_test")),
        "warm_start_share": _num(s.m.get("overhead", {}).get("overhead_share", ws.get("share_of_worker_time"))),
        "trials": sm.get("trials", s.m.get("n_trials")), "reports": sm.get("reports", s.m.get("n_reports")),
        "budget": _num(s.budget), "tau": _num(s.tau), "clock": s.clock, "peak_rss_bytes": sm.get("peak_rss_bytes"),
        "ended": sm.get("ended"),
        "study": str(folder.relative_to(root)) if root is not None and folder.is_relative_to(root) else str(folder),
        "command": command(s.record.spec),
        "metric": s.record.task_info.get("metric"), "test_metric": s.record.task_info.get("test_metric"),
        "mode": s.mode,
    }


def write_csv(studies: list[Study], path: Path, root: Path | None = None) -> Path:
    """Write studies.csv (sorted by key); empty cells for missing values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted((row(s, root) for s in studies),
                  key=lambda r: (r["experiment"], r["task"], r["scheduler"], r["variant"], r["seed"]))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    return path


#: the warm-start flags :func:`command` writes with a value, read back by :func:`_spec_from_command`
_WS_FLAGS = {WARM_START_FLAGS[key]: key for key in ("variant", *_WS_VALUED, "clock")}


def _spec_from_command(cmd: str) -> dict[str, Any]:
    """The warm-start part of a study's spec, read back from its ``command`` column."""
    args = shlex.split(cmd)
    ws: dict[str, Any] = {}
    spec: dict[str, Any] = {}
    for flag, value in zip(args, args[1:]):
        if flag in _WS_FLAGS:
            key = _WS_FLAGS[flag]
            ws[key] = float(value) if key in ("eta_h", "rho") else value
        elif flag == "--task":
            spec["task"] = value
    spec["warm_start"] = ws or {"variant": "none"}
    return spec


def _task_info(task: str) -> dict[str, Any]:
    """Metric names and mode of a registered task (class attributes; no data is loaded)."""
    from ohgw_bench import tasks

    try:
        tid, entry, _ = tasks.resolve(task)
        cls = tasks._load(entry)
    except Exception as e:  # an unknown task id: the row cannot be analysed
        raise UserError(f"studies.csv: task {task!r} is not registered ({e})") from e
    return {"id": tid, "metric": getattr(cls, "metric", None), "test_metric": getattr(cls, "test_metric", None),
            "mode": getattr(cls, "mode", "min")}


def read_studies(path: Path) -> tuple[list[Study], list[str]]:
    """Studies rebuilt from a ``studies.csv`` (what :func:`write_csv` wrote): each with its
    per-study metrics in ``m`` and no report rows. A file that is missing or lacks a column is
    a user error, raised before anything is analysed."""
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    try:
        df = pd.read_csv(path, dtype={"seed": int}, keep_default_na=True)
    except (ValueError, pd.errors.ParserError) as e:
        raise UserError(f"{path}: not a readable studies.csv ({e})") from e
    missing = [c for c in COLUMNS if c not in df.columns and c not in OPTIONAL]
    if missing:
        raise UserError(f"{path}: missing columns {missing}")
    infos: dict[str, dict[str, Any]] = {}
    studies, warns = [], []
    for r in df.to_dict("records"):
        spec = _spec_from_command(str(r["command"]))
        tid = spec.get("task", r["task"])
        if all(c in df.columns and isinstance(r[c], str) for c in ("metric", "mode")):
            info = {"id": tid, "metric": r["metric"], "mode": r["mode"],
                    "test_metric": r["test_metric"] if isinstance(r.get("test_metric"), str) else None}
        else:
            info = infos.setdefault(tid, _task_info(tid))
        num = (lambda x: float(x) if x == x and x is not None and x != "" else math.nan)  # noqa: E731
        budget, share = num(r["budget"]), num(r["warm_start_share"])
        reached = str(r["reached_tau"]).strip().lower() == "true"
        rec = results.StudyRecord(
            path=str(r["study"]), experiment=str(r["experiment"]), task=str(r["task"]), scheduler=str(r["scheduler"]),
            variant=str(r["variant"]), seed=int(r["seed"]), budget=budget, tau=num(r["tau"]), clock=str(r["clock"]),
            study={"spec": spec, "task": info},
            summary={"peak_rss_bytes": num(r["peak_rss_bytes"]), "ended": r["ended"], "trials": r["trials"],
                     "reports": r["reports"]}, rows=[])
        s = Study(record=rec, rows=pd.DataFrame(), valid=pd.DataFrame())
        nan = math.nan
        s.m = {"t_tau": num(r["t_tau"]) if reached else budget, "reached": reached, "final": num(r["best_metric"]),
               "final_test": num(r["best_test_metric"]), "auc": num(r["auc"]), "first_value": nan,
               "n_reports": int(num(r["reports"])) if num(r["reports"]) == num(r["reports"]) else 0,
               "n_trials": int(num(r["trials"])) if num(r["trials"]) == num(r["trials"]) else 0,
               "incumbent_config": {}, "peak_rss_bytes": num(r["peak_rss_bytes"]),
               "n_warm_starts_ran": int(str(r["variant"]) != "none" and share > 0),
               "overhead": {"overhead_share": share, "n_warm_starts": 0, "seconds_per_step": nan,
                            "flops_per_step": nan, "peak_per_step": nan,
                            "share_flops": nan, "share_calibrated": nan}}  # per-clock shares: not in the CSV
        studies.append(s)
    return studies, warns
