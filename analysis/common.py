"""What the report and the figures share: the per-study view of a results record and column helpers.

Kept apart from :mod:`analysis.report` so that :mod:`analysis.figures` does not import the
report (the two used to import each other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ohgw_bench import results

VANILLA = "none"
EXCLUDED_STATUS = {"failed", "nan"}
AXES = {"time": "study clock (s)", "time_wall": "wall clock (s)", "worker_time": "worker-hours"}


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column, or NaN where the column is absent or not a number."""
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def _first_of_each_trial(rows: list[dict[str, Any]]) -> set[int] | None:
    """Indices of each trial's first report (lowest ``seq``), or None when a row lacks a numeric seq."""
    first: dict[Any, tuple[float, int]] = {}
    for i, r in enumerate(rows):
        seq = r.get(results.PREFIX + "seq")
        if type(seq) not in (int, float):
            return None
        tid = r.get(results.PREFIX + "trial_id")
        if tid not in first or seq < first[tid][0]:
            first[tid] = (seq, i)
    return {i for _, i in first.values()}


def frame(rows: list[dict[str, Any]], warm_start: str = "all") -> pd.DataFrame:
    """Report rows as a DataFrame: ``ohgw_`` prefix dropped, configs and the warm-start record
    flattened (``config.lr``, ``ws.cost.flops``), as :func:`ohgw_bench.results.load_results`.

    Every report of a trial repeats its warm-start record; ``warm_start="first"`` flattens it on
    the trial's first report only (the one the per-trial table reads), NaN elsewhere: most of a
    large study's load time was that repetition."""
    keep = _first_of_each_trial(rows) if warm_start == "first" else None
    out = []
    for i, r in enumerate(rows):
        row: dict[str, Any] = {}
        for k, v in r.items():
            key = k[len(results.PREFIX):] if k.startswith(results.PREFIX) else k
            if key in ("config", "proposed"):
                results.flatten(key, v, row)
            elif key == "warm_start":
                if keep is None or i in keep:
                    results.flatten("ws", v, row)
            else:
                row[key] = v
        out.append(row)
    df = pd.DataFrame(out)
    if "seq" in df.columns:
        df = df.sort_values("seq", kind="stable").reset_index(drop=True)
    return df


@dataclass
class Study:
    """One complete study: its results record, its reports, and the metrics derived from them.

    ``valid`` holds the reports with a usable validation metric made within the budget: tables
    and figures alike ignore reports after the budget.
    """

    record: results.StudyRecord
    rows: pd.DataFrame
    valid: pd.DataFrame = field(default_factory=pd.DataFrame)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    m: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name in ("path", "experiment", "task", "scheduler", "variant", "seed", "budget", "tau", "clock"):
            return getattr(self.record, name)
        raise AttributeError(name)

    @property
    def mode(self) -> str:
        return str(self.record.task_info.get("mode", "min"))

    @property
    def space(self) -> list[dict[str, Any]]:
        return list(self.record.task_info.get("space") or [])

    @property
    def warm_start(self) -> dict[str, Any]:
        return dict(self.record.spec.get("warm_start") or {})

    @property
    def eta_h(self) -> float:
        return _float(self.warm_start.get("eta_h"))

    @property
    def tuple_key(self) -> tuple[str, str, str]:
        return (self.experiment, self.task, self.scheduler)

    @property
    def peak_rss(self) -> float:
        return _float(self.record.summary.get("peak_rss_bytes"))


def valid_rows(rows: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Reports that carry a usable validation metric, made at or before the budget."""
    if rows.empty:
        return rows
    t = _col(rows, "time")
    ok = np.isfinite(_col(rows, "metric")) & np.isfinite(t)
    if np.isfinite(budget):
        ok &= t <= budget
    if "status" in rows.columns:
        ok &= ~rows["status"].astype(str).isin(EXCLUDED_STATUS).to_numpy()
    return rows[ok]


def make_study(rec: results.StudyRecord) -> Study:
    rows = frame(rec.rows, warm_start="first")  # the analysis reads the record per trial (report._trials)
    return Study(record=rec, rows=rows, valid=valid_rows(rows, rec.budget))


def hp_values(group: list[Study], name: str, chosen: bool) -> np.ndarray:
    """Native values of one hyperparameter: each study's final incumbent, or every evaluated trial."""
    if chosen:
        return np.array([s.m["incumbent_config"].get(name, math.nan) for s in group], dtype=float)
    vals = [_col(s.trials, f"config.{name}") for s in group if not s.trials.empty]
    return np.concatenate(vals) if vals else np.array([])


def span(values: list[int]) -> str:
    """``"20"`` or ``"16-20"``: the range of counts (seeds, pairs) in a caption or legend; ``"no"`` if none."""
    values = sorted(set(values))
    if not values:
        return "no"
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def clock_unit(clock: str) -> str:
    """The unit of study-clock times, for headers and captions."""
    return {"simulated": "simulated s", "wall": "wall-clock s"}.get(clock, "s")
