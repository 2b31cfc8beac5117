"""Turn a results directory into the paper's tables, figures and summary (docs/design.md section 7).

    python -m analysis.report RESULTS_DIR --out OUT

Writes ``OUT/tables/*.tex`` (booktabs) and ``*.md``, ``OUT/figures/*.pdf`` and
``OUT/summary.json`` (every number in the tables, the definitions used, and the warnings).
Reads study folders only through :mod:`ohgw_bench.results`; the maths is in
:mod:`ohgw_bench.metrics`.

A tuple is (experiment, task, scheduler); a method is a variant label; every variant is
compared with vanilla (``none``) of the same tuple on the seeds both have.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ohgw_bench import metrics, results

VANILLA = "none"
GRID_POINTS = 200
EXCLUDED_STATUS = {"failed", "nan"}
STUDY_KEYS = ("experiment", "task", "scheduler", "variant", "seed")
COMPARED = ("t_tau", "auc", "final", "final_test")

DEFINITIONS = {
    "tuple": "(experiment, task, scheduler); methods are variant labels; 'none' is vanilla",
    "best_so_far": "best finite validation metric reported so far (mode-aware), failed/nan reports ignored",
    "t_tau": "first study-clock time the best-so-far reaches tau within the budget; otherwise censored at the budget",
    "t_tau_median": "median over seeds with censored studies as +inf: 'not reached' unless more than half the seeds reach tau",
    "t_tau_tests": "Wilcoxon and std of T@tau use censored studies at the budget (a lower bound of their true time)",
    "auc": "(1/B) * integral_0^B s(t) dt, s = normalised best-so-far: 0 at the worst first value and 1 at the best value of the task (experiment, task) over all studies; 0 before the first report",
    "final": "best validation metric within the budget; final_test: test metric of that incumbent report",
    "overhead": "extra_compute = warm-start seconds charged to the study clock / (busy worker seconds - those); *_per_step = median over trials of warm-start cost / plain training step; extra_peak_memory = max(warm-start peak, step peak) / step peak - 1",
    "kl": "per hyperparameter, KL(variant || vanilla) between Gaussians fitted (mean, unbiased variance floored at 1e-6 range^2) in the unconstrained space (log for log-scale hps); chosen = each seed's final incumbent config, all = every evaluated trial's config; mean_shift in unit-cube units (fraction of the range)",
    "wilcoxon": "two-sided signed-rank (scipy, zero differences dropped) over seeds present in both arms; Holm over tuples per (variant, metric)",
    "criteria": "per tuple: median T@tau reduction >= 15% with Holm-adjusted p < 0.05; relative drop of the median final validation score <= 0.2%; median extra compute <= 5%; median extra peak memory <= 10%; std of T@tau inflated by <= 10%; comparisons on paired seeds",
    "verdict": "criteria hold in >= 75% of the tuples, per variant",
    "benefit": "a trial's metric at its highest fidelity ranked among the trials of the same study with a report at that fidelity, mapped to [0, 1] with 1 = best",
    "survival": "fraction of a study's trials whose highest reported fidelity reaches each level; median over seeds",
}


@dataclass
class Study:
    """One complete study: its identity, reports, and the per-study metrics derived from them."""

    path: str
    experiment: str
    task: str
    scheduler: str
    variant: str
    seed: int
    mode: str
    tau: float
    budget: float
    clock: str
    space: list[dict[str, Any]]
    warm_start: dict[str, Any]
    rows: pd.DataFrame
    valid: pd.DataFrame = field(default_factory=pd.DataFrame)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    m: dict[str, Any] = field(default_factory=dict)

    @property
    def tuple_key(self) -> tuple[str, str, str]:
        return (self.experiment, self.task, self.scheduler)

    @property
    def eta_h(self) -> float:
        return _float(self.warm_start.get("eta_h"))


def _float(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column, or NaN where the column is absent or not a number."""
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def _nanmax(x: np.ndarray) -> float:
    return float(np.nanmax(x)) if np.isfinite(x).any() else math.nan


class NoResults(Exception):
    """No complete study below the results directory."""


def load_studies(results_dir: str | Path) -> list[Study]:
    """Every complete study below ``results_dir``, with its reports (possibly none)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise NoResults(f"{root} is not a directory")
    df = results.load_results(root)
    by_path = {p: g for p, g in df.groupby("path")} if "path" in df.columns else {}
    out: list[Study] = []
    for folder in results.find_studies(root):
        study, _, summary = results.load_study(folder)
        if summary is None:
            continue
        spec = study.get("spec", {}) or {}
        task = study.get("task", {}) or {}
        ws = dict(spec.get("warm_start") or {})
        rows = by_path.get(str(folder), pd.DataFrame())
        if "seq" in rows.columns:
            rows = rows.sort_values("seq", kind="stable")
        rows = rows.reset_index(drop=True)
        variant = spec.get("variant_label") or ws.get("variant") or VANILLA
        tau = spec.get("tau") if spec.get("tau") is not None else task.get("tau")
        out.append(Study(
            path=str(folder), experiment=str(spec.get("experiment", "")), task=str(spec.get("task", "")),
            scheduler=str(spec.get("scheduler", "")), variant=str(variant), seed=int(spec["seed"]) if spec.get("seed") is not None else -1,
            mode=str(task.get("mode", "min")), tau=_float(tau), budget=_float(spec.get("budget")),
            clock=str(study.get("clock", "")), space=list(task.get("space") or []), warm_start=ws,
            rows=rows, valid=_valid(rows),
        ))
    if not out:
        raise NoResults(f"no complete studies under {root}")
    return out


def _valid(rows: pd.DataFrame) -> pd.DataFrame:
    """Reports that carry a usable validation metric."""
    if rows.empty:
        return rows
    ok = np.isfinite(_col(rows, "metric")) & np.isfinite(_col(rows, "time"))
    if "status" in rows.columns:
        ok &= ~rows["status"].astype(str).isin(EXCLUDED_STATUS).to_numpy()
    return rows[ok]


def _trials(s: Study) -> pd.DataFrame:
    """One row per trial: its first report (config and warm-start record), reach and end metric."""
    rows = s.rows
    if rows.empty or "trial_id" not in rows.columns:
        return pd.DataFrame()
    valid = s.valid
    firsts = rows.groupby("trial_id", sort=True).head(1).set_index("trial_id")
    fid = pd.Series(_col(rows, "fidelity"), index=rows.index)
    max_fid = fid.groupby(rows["trial_id"]).max()
    out = firsts.copy()
    out["max_fidelity"] = max_fid
    out["final_metric"] = np.nan
    out["final_fidelity"] = np.nan
    if not valid.empty:
        last = valid.groupby("trial_id").tail(1).set_index("trial_id")
        out.loc[last.index, "final_metric"] = _col(last, "metric")
        out.loc[last.index, "final_fidelity"] = _col(last, "fidelity")
    return out


def _benefit(s: Study, trials: pd.DataFrame) -> np.ndarray:
    """Each trial's end metric ranked among the study's trials reporting at that fidelity."""
    valid = s.valid
    if trials.empty or valid.empty:
        return np.full(len(trials), np.nan)
    at = valid.assign(_f=_col(valid, "fidelity"), _m=_col(valid, "metric"))
    at = at.groupby(["_f", "trial_id"])["_m"].last()
    out = np.full(len(trials), np.nan)
    for f, peers in at.groupby(level=0):
        ranks = pd.Series(metrics.rung_rank(peers.to_numpy(), s.mode), index=peers.index.get_level_values(1))
        for i, (tid, tf) in enumerate(zip(trials.index, trials["final_fidelity"])):
            if tf == f and tid in ranks.index:
                out[i] = ranks[tid]
    return out


def study_metrics(s: Study) -> None:
    """Fill ``s.m`` (scalars) and ``s.trials`` (one row per trial) from the study's reports."""
    valid = s.valid
    t, v = _col(valid, "time"), _col(valid, "metric")
    t_tau, reached = metrics.time_to_target(t, v, s.tau, s.mode, s.budget)
    fin = metrics.final_best(t, v, _col(valid, "test_metric"), s.mode, s.budget)
    within = t <= s.budget if np.isfinite(s.budget) else np.ones(t.size, bool)
    order = np.argsort(t, kind="stable")
    first = v[order][within[order]][:1]
    trials = _trials(s)
    if not trials.empty:
        trials["benefit"] = _benefit(s, trials)
    s.trials = trials
    m: dict[str, Any] = {
        "t_tau": t_tau, "reached": reached, "final": fin["best"], "final_test": fin["test"],
        "first_value": float(first[0]) if first.size else math.nan,
        "n_reports": len(s.rows), "n_trials": len(trials),
    }
    inc_cfg: dict[str, float] = {}
    if np.isfinite(fin["best"]):
        ts, inc = metrics.incumbent_indices(t, np.where(within, v, np.nan), s.mode)
        row = valid.iloc[int(inc[-1])]
        inc_cfg = {hp["name"]: _float(row.get(f"config.{hp['name']}")) for hp in s.space}
    m["incumbent_config"] = inc_cfg
    charged_col = "ws.sim_seconds" if s.clock == "simulated" and "ws.sim_seconds" in trials.columns else "ws.cost.seconds"
    m["overhead"] = metrics.overhead(
        _col(trials, "ws.cost.seconds"), _col(trials, "ws.cost.flops"), _col(trials, "ws.cost.peak_bytes"),
        _col(trials, "ws.step_cost.seconds"), _col(trials, "ws.step_cost.flops"),
        _col(trials, "ws.step_cost.peak_bytes"), _col(trials, charged_col), _nanmax(_col(s.rows, "worker_time")))
    if s.variant != VANILLA and m["overhead"]["n_warm_starts"] == 0:
        m["overhead"]["extra_compute"] = math.nan
    if s.variant == VANILLA:
        m["overhead"]["extra_compute"] = 0.0
        m["overhead"]["extra_peak_memory"] = 0.0
    s.m = m


def _auc_refs(studies: list[Study]) -> dict[tuple[str, str], tuple[float, float]]:
    """Best value and worst first value per (experiment, task), over every study of that task."""
    refs: dict[tuple[str, str], tuple[float, float]] = {}
    groups: dict[tuple[str, str], list[Study]] = {}
    for s in studies:
        groups.setdefault((s.experiment, s.task), []).append(s)
    for key, ss in groups.items():
        firsts = [s.m["first_value"] for s in ss]
        alls = np.concatenate([_col(s.valid, "metric")[_col(s.valid, "time") <= s.budget]
                               if np.isfinite(s.budget) else _col(s.valid, "metric")
                               for s in ss] or [np.array([])])
        refs[key] = metrics.auc_references(firsts, alls, ss[0].mode)
    return refs


def _curve(s: Study, axis: str, grid: np.ndarray, what: str = "metric") -> np.ndarray:
    valid = s.valid
    if valid.empty:
        return np.full(grid.shape, np.nan)
    x = _col(valid, axis)
    if axis == "worker_time":
        x = x / 3600.0
    v = _col(valid, "metric")
    if what == "test":
        ts, inc = metrics.incumbent_indices(x, v, s.mode)
        return metrics.step_at(ts, _col(valid, "test_metric")[inc], grid)
    ts, b = metrics.best_so_far(x, v, s.mode)
    return metrics.step_at(ts, b, grid)


AXES = {"time": "study clock (s)", "time_wall": "wall clock (s)", "worker_time": "worker-hours"}


def _band(curves: np.ndarray) -> dict[str, list[float]]:
    """Median and IQR across seeds at each grid point; NaN where fewer than half the seeds have a value.

    Vectorised nan-quantile (numpy's linear rule over the finite values of each column):
    ``np.nanpercentile`` loops over columns in Python.
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    n, width = curves.shape
    have = np.isfinite(curves).sum(axis=0)
    srt = np.sort(curves, axis=0)
    out: dict[str, list[float]] = {}
    cols = np.arange(width)
    for name, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75)):
        h = np.maximum(have - 1, 0) * q
        lo = np.floor(h).astype(int)
        hi = np.ceil(h).astype(int)
        with np.errstate(invalid="ignore"):
            val = srt[lo, cols] + (h - lo) * (srt[hi, cols] - srt[lo, cols])
        val[have * 2 <= n] = np.nan
        out[name] = val.tolist()
    return out


def curves_for_tuple(ss: list[Study]) -> dict[str, Any]:
    """Best-so-far median/IQR per method on shared grids for every time axis."""
    out: dict[str, Any] = {}
    budget = max((s.budget for s in ss if np.isfinite(s.budget)), default=math.nan)
    for axis in AXES:
        if axis == "time" and np.isfinite(budget):
            hi = budget
        else:
            vals = [np.nanmax(_col(s.rows, axis)) for s in ss if len(s.rows) and np.isfinite(_col(s.rows, axis)).any()]
            hi = max(vals, default=math.nan)
            if axis == "worker_time":
                hi = hi / 3600.0
        if not (np.isfinite(hi) and hi > 0):
            continue
        grid = np.linspace(0.0, hi, GRID_POINTS)
        per: dict[str, Any] = {}
        for variant in sorted({s.variant for s in ss}):
            cs = np.array([_curve(s, axis, grid) for s in ss if s.variant == variant])
            per[variant] = _band(cs)
            if axis == "time":
                ct = np.array([_curve(s, axis, grid, "test") for s in ss if s.variant == variant])
                per[variant]["test"] = _band(ct)
        out[axis] = {"grid": grid.tolist(), "methods": per}
    return out


def hp_values(group: list[Study], name: str, chosen: bool) -> np.ndarray:
    """Native values of one hyperparameter: each study's final incumbent, or every evaluated trial."""
    if chosen:
        return np.array([s.m["incumbent_config"].get(name, math.nan) for s in group], dtype=float)
    vals = [_col(s.trials, f"config.{name}") for s in group if not s.trials.empty]
    return np.concatenate(vals) if vals else np.array([])


def _kl_rows(ss: list[Study], variant: str) -> list[dict[str, Any]]:
    base = [s for s in ss if s.variant == VANILLA]
    var = [s for s in ss if s.variant == variant]
    rows = []
    for hp in ss[0].space:
        name = hp.get("name")
        if name is None or hp.get("low") is None or hp.get("high") is None:
            continue
        log = bool(hp.get("log"))
        lo, hi = float(hp["low"]), float(hp["high"])
        c = metrics.kl_shift(hp_values(var, name, True), hp_values(base, name, True), log, lo, hi)
        a = metrics.kl_shift(hp_values(var, name, False), hp_values(base, name, False), log, lo, hi)
        rows.append({"hp": name, "log": log, "kl_chosen": c["kl"], "mean_shift_chosen": c["mean_shift"],
                     "n_chosen": c["n_variant"], "kl_all": a["kl"], "mean_shift_all": a["mean_shift"],
                     "n_all": a["n_variant"], "n_all_vanilla": a["n_vanilla"]})
    return rows


def _seed_warnings(key: tuple[str, str, str], ss: list[Study]) -> list[str]:
    seeds: dict[str, set[int]] = {}
    for s in ss:
        seeds.setdefault(s.variant, set()).add(s.seed)
    warns = []
    label = "/".join(key)
    most = max(len(v) for v in seeds.values())
    for variant, sd in sorted(seeds.items()):
        if len(sd) < most:
            warns.append(f"{label}: method {variant} has {len(sd)} seeds, others up to {most}")
    if VANILLA not in seeds:
        warns.append(f"{label}: no vanilla ('{VANILLA}') studies; variants are not compared")
        return warns
    for variant, sd in sorted(seeds.items()):
        if variant == VANILLA:
            continue
        only_v = sorted(sd - seeds[VANILLA])
        only_0 = sorted(seeds[VANILLA] - sd)
        if only_v:
            warns.append(f"{label}: {variant} seeds {only_v} have no vanilla pair")
        if only_0:
            warns.append(f"{label}: {variant} lacks seeds {only_0} that vanilla has")
    return warns


def _method_summary(ss: list[Study]) -> dict[str, Any]:
    t = [s.m["t_tau"] for s in ss]
    r = [s.m["reached"] for s in ss]
    out = {
        "n_seeds": len(ss),
        "seeds": sorted(s.seed for s in ss),
        "t_tau": metrics.censored_summary(t, r),
        "auc": metrics.median_iqr([s.m["auc"] for s in ss]),
        "final": metrics.median_iqr([s.m["final"] for s in ss]),
        "final_test": metrics.median_iqr([s.m["final_test"] for s in ss]),
    }
    for k in ("extra_compute", "seconds_per_step", "flops_per_step", "peak_per_step", "extra_peak_memory"):
        out[k] = metrics.median_iqr([s.m["overhead"][k] for s in ss])
    return out


def _compare(base: list[Study], var: list[Study]) -> dict[str, Any]:
    """Paired comparison of a variant with vanilla on the seeds both have."""
    b = {s.seed: s for s in base}
    v = {s.seed: s for s in var}
    seeds = sorted(set(b) & set(v))
    pb, pv = [b[k] for k in seeds], [v[k] for k in seeds]
    budget = pb[0].budget if pb else math.nan

    def censored_at_budget(group: list[Study]) -> np.ndarray:
        return np.array([s.m["t_tau"] if s.m["reached"] else s.budget for s in group], dtype=float)

    values = {
        "t_tau": (censored_at_budget(pv), censored_at_budget(pb)),
        "auc": (np.array([s.m["auc"] for s in pv]), np.array([s.m["auc"] for s in pb])),
        "final": (np.array([s.m["final"] for s in pv]), np.array([s.m["final"] for s in pb])),
        "final_test": (np.array([s.m["final_test"] for s in pv]), np.array([s.m["final_test"] for s in pb])),
    }
    tests = {k: metrics.paired_wilcoxon(x, y) for k, (x, y) in values.items()}
    tb = metrics.censored_summary([s.m["t_tau"] for s in pb], [s.m["reached"] for s in pb])
    tv = metrics.censored_summary([s.m["t_tau"] for s in pv], [s.m["reached"] for s in pv])
    mode = pb[0].mode if pb else "min"
    fb = metrics.median_iqr(values["final"][1])["median"]
    fv = metrics.median_iqr(values["final"][0])["median"]
    return {
        "paired_seeds": seeds,
        "t_tau_vanilla": tb, "t_tau_variant": tv,
        "t_tau_reduction": metrics.t_tau_reduction(tb["median"], tv["median"]),
        "std_vanilla": metrics.std_censored_at_budget([s.m["t_tau"] for s in pb], [s.m["reached"] for s in pb], budget),
        "std_variant": metrics.std_censored_at_budget([s.m["t_tau"] for s in pv], [s.m["reached"] for s in pv], budget),
        "final_drop": metrics.relative_drop(fb, fv, mode),
        "extra_compute": metrics.median_iqr([s.m["overhead"]["extra_compute"] for s in pv])["median"],
        "extra_peak_memory": metrics.median_iqr([s.m["overhead"]["extra_peak_memory"] for s in pv])["median"],
        "auc_gain": metrics.median_iqr(values["auc"][0] - values["auc"][1]),
        "tests": tests,
    }


def _survival(ss: list[Study]) -> dict[str, Any]:
    levels = sorted({float(f) for s in ss if not s.trials.empty for f in _col(s.trials, "max_fidelity") if np.isfinite(f)})
    per: dict[str, Any] = {}
    for variant in sorted({s.variant for s in ss}):
        rows = [metrics.survival_per_rung(_col(s.trials, "max_fidelity"), levels)
                for s in ss if s.variant == variant and not s.trials.empty]
        if rows:
            per[variant] = _band(np.array(rows))
    return {"levels": levels, "methods": per}


def analyse(results_dir: str | Path) -> dict[str, Any]:
    """Every number of the report, as plain data (what summary.json holds) plus the studies."""
    studies = load_studies(results_dir)
    for s in studies:
        study_metrics(s)
    refs = _auc_refs(studies)
    for s in studies:
        best_ref, worst_ref = refs[(s.experiment, s.task)]
        valid = s.valid
        s.m["auc"] = metrics.normalized_auc(_col(valid, "time"), _col(valid, "metric"), s.mode, s.budget,
                                            best_ref, worst_ref)
    groups: dict[tuple[str, str, str], list[Study]] = {}
    for s in studies:
        groups.setdefault(s.tuple_key, []).append(s)
    warns: list[str] = []
    tuples: list[dict[str, Any]] = []
    for key in sorted(groups):
        ss = groups[key]
        warns += _seed_warnings(key, ss)
        variants = sorted({s.variant for s in ss}, key=lambda v: (v != VANILLA, v))
        entry: dict[str, Any] = {
            "experiment": key[0], "task": key[1], "scheduler": key[2], "mode": ss[0].mode,
            "tau": ss[0].tau, "budget": ss[0].budget, "clock": ss[0].clock,
            "auc_refs": {"best": refs[(key[0], key[1])][0], "worst_first": refs[(key[0], key[1])][1]},
            "methods": {v: _method_summary([s for s in ss if s.variant == v]) for v in variants},
            "comparisons": {}, "kl": {},
        }
        base = [s for s in ss if s.variant == VANILLA]
        if base:
            for v in variants:
                if v == VANILLA:
                    continue
                var = [s for s in ss if s.variant == v]
                cmp_ = _compare(base, var)
                if not cmp_["paired_seeds"]:
                    continue
                entry["comparisons"][v] = cmp_
                entry["kl"][v] = _kl_rows(ss, v)
        entry["curves"] = curves_for_tuple(ss)
        entry["survival"] = _survival(ss)
        tuples.append(entry)
    _holm_and_criteria(tuples)
    few = [f"{t['task']}/{t['scheduler']}/{v}" for t in tuples for v, c in t["comparisons"].items()
           if c["tests"]["t_tau"]["n_nonzero"] < 6]
    if few:
        warns.append(f"{len(few)} comparisons have fewer than 6 informative seed pairs, so their two-sided "
                     f"Wilcoxon p cannot fall below 0.05 (smallest possible: 2/2^n): {', '.join(few[:6])}"
                     + (" ..." if len(few) > 6 else ""))
    return {"results_dir": str(results_dir), "n_studies": len(studies), "definitions": DEFINITIONS,
            "thresholds": dict(metrics.CRITERIA), "tuples": tuples, "verdicts": _verdicts(tuples),
            "warnings": warns, "studies": studies}


def _holm_and_criteria(tuples: list[dict[str, Any]]) -> None:
    """Holm-adjust each (variant, metric) family over tuples, then evaluate the criteria."""
    families: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in tuples:
        for v, c in t["comparisons"].items():
            for k in COMPARED:
                families.setdefault((v, k), []).append(c["tests"][k])
    for fam in families.values():
        adj = metrics.holm([x["p"] for x in fam])
        for x, a in zip(fam, adj):
            x["p_holm"] = float(a)
    for t in tuples:
        for c in t["comparisons"].values():
            c["criteria"] = metrics.success_criteria(
                t_tau_vanilla=c["t_tau_vanilla"], t_tau_variant=c["t_tau_variant"],
                p_t_tau=c["tests"]["t_tau"]["p_holm"], final_drop=c["final_drop"],
                extra_compute=c["extra_compute"], extra_peak_memory=c["extra_peak_memory"],
                std_vanilla=c["std_vanilla"], std_variant=c["std_variant"])


def _verdicts(tuples: list[dict[str, Any]]) -> dict[str, Any]:
    holds: dict[str, list[bool]] = {}
    for t in tuples:
        for v, c in t["comparisons"].items():
            holds.setdefault(v, []).append(c["criteria"]["holds"])
    return {v: metrics.verdict(h) for v, h in sorted(holds.items())}


def eta_sweeps(studies: list[Study]) -> list[dict[str, Any]]:
    """Lines of (eta_h -> AUC, T@tau) for warm-start settings run with several eta_h values."""
    lines: dict[tuple[Any, ...], dict[float, list[Study]]] = {}
    for s in studies:
        if s.variant == VANILLA or not np.isfinite(s.eta_h):
            continue
        ws = s.warm_start
        key = (*s.tuple_key, str(ws.get("variant", s.variant)), str(ws.get("step_rule", "")), str(ws.get("horizon", "")))
        lines.setdefault(key, {}).setdefault(s.eta_h, []).append(s)
    out = []
    for key, by_eta in sorted(lines.items()):
        if len(by_eta) < 2:
            continue
        etas = sorted(by_eta)
        vanilla = [s for s in studies if s.tuple_key == key[:3] and s.variant == VANILLA]
        out.append({
            "experiment": key[0], "task": key[1], "scheduler": key[2], "ws_variant": key[3],
            "step_rule": key[4], "horizon": key[5], "eta_h": etas,
            "auc": [metrics.median_iqr([s.m["auc"] for s in by_eta[e]]) for e in etas],
            "t_tau": [metrics.censored_summary([s.m["t_tau"] for s in by_eta[e]], [s.m["reached"] for s in by_eta[e]]) for e in etas],
            "vanilla_auc": metrics.median_iqr([s.m["auc"] for s in vanilla]),
        })
    return out


def transfer(analysis: dict[str, Any]) -> dict[str, Any]:
    """The default OHGW arm's eta_h held fixed across tasks: paired AUC gain and T@tau reduction."""
    studies: list[Study] = analysis["studies"]
    arm = [s for s in studies if s.variant == "ohgw" and np.isfinite(s.eta_h)]
    if not arm:
        arm = [s for s in studies if str(s.warm_start.get("variant")) == "ohgw" and np.isfinite(s.eta_h)]
    if not arm:
        return {"eta_h": None, "rows": []}
    eta = Counter(s.eta_h for s in arm).most_common(1)[0][0]
    labels = {s.variant for s in arm if s.eta_h == eta}
    rows = []
    for t in analysis["tuples"]:
        for v, c in t["comparisons"].items():
            if v not in labels:
                continue
            rows.append({"experiment": t["experiment"], "task": t["task"], "family": family(t["task"]),
                         "scheduler": t["scheduler"], "variant": v, "auc_gain": c["auc_gain"],
                         "t_tau_reduction": c["t_tau_reduction"], "holds": c["criteria"]["holds"]})
    return {"eta_h": eta, "rows": rows}


def family(task: str) -> str:
    """Task family: the dataset part of a task id (``cifar10-resnet20-v1`` -> ``cifar10``)."""
    return task.split("-")[0] if task else task


def write_report(analysis: dict[str, Any], out: Path, with_figures: bool = True) -> dict[str, Any]:
    """Write tables, figures (unless ``with_figures`` is false) and summary.json; return the summary."""
    from analysis import figures, tables

    out.mkdir(parents=True, exist_ok=True)
    analysis["eta_sweeps"] = eta_sweeps(analysis["studies"])
    analysis["transfer"] = transfer(analysis)
    table_files = tables.write_all(analysis, out / "tables")
    figure_files = figures.write_all(analysis, out / "figures") if with_figures else []
    summary = {k: v for k, v in analysis.items() if k != "studies"}
    summary["tables"] = {name: recs for name, recs in analysis["table_records"].items()}
    summary.pop("table_records", None)
    for t in summary["tuples"]:
        t.pop("curves", None)
    summary["files"] = {"tables": [str(p.relative_to(out)) for p in table_files],
                        "figures": [str(p.relative_to(out)) for p in figure_files]}
    results.write_json_atomic(out / "summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.splitlines()[0])
    parser.add_argument("results_dir")
    parser.add_argument("--out", required=True, help="output folder for tables/, figures/ and summary.json")
    parser.add_argument("--no-figures", action="store_true", help="write tables and summary.json only")
    args = parser.parse_args(argv)
    try:
        analysis = analyse(args.results_dir)
    except NoResults as e:
        print(f"analysis.report: {e}", file=sys.stderr)
        return 2
    for w in analysis["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    out = Path(args.out)
    summary = write_report(analysis, out, with_figures=not args.no_figures)
    print(f"{summary['n_studies']} studies in {len(summary['tuples'])} (experiment, task, scheduler) tuples")
    for v, vd in summary["verdicts"].items():
        word = "HOLDS" if vd["holds"] else "does not hold"
        print(f"  {v}: criteria hold in {vd['n_hold']}/{vd['n_tuples']} tuples -> {word}")
    print(f"tables:  {out / 'tables'} ({len(summary['files']['tables'])} files)")
    print(f"figures: {out / 'figures'} ({len(summary['files']['figures'])} files)")
    print(f"summary: {out / 'summary.json'}")
    if summary["warnings"]:
        print(f"{len(summary['warnings'])} warnings (stderr, and summary.json 'warnings')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
