"""Turn a results directory into the paper's tables, figures and summary (docs/design.md section 7).

    python -m analysis.report RESULTS_DIR --out OUT

Writes ``OUT/summary.json`` (every number in the tables, the definitions used, warnings,
excluded studies and the ``findings`` a README generator reads; schema in
docs/results-format.md), ``OUT/tables/*.tex`` (complete ``table`` floats: booktabs, graphicx)
and ``*.md``, ``OUT/figures/*.pdf`` (and a ``.png`` of every page) and
``OUT/studies.csv`` (one row per study with the command that reproduces it, see
:mod:`analysis.export`). Studies are read once, one at a time, through :func:`ohgw_bench.results.iter_records`;
each keeps its metrics and a few row columns (memory), and the maths is in :mod:`ohgw_bench.metrics`.

A tuple is (experiment, task level, scheduler): the task level is the folder's (an experiment
file's label, else the task id). Comparisons, each paired by seed (see :func:`comparison_pairs`):
every warm-started arm against vanilla (``none``), and every ohgw-type arm against the
controls with the same step settings (``ohgw-normalized`` vs ``random-normalized``,
``prior-normalized``, ``sham-normalized`` or else ``sham``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.common import AXES, VANILLA, Study, _col, _float, hp_values, make_study
from ohgw_bench import metrics, results
from ohgw_bench.errors import UserError

GRID_POINTS = 200
STUDY_KEYS = ("experiment", "task", "scheduler", "variant", "seed")
COMPARED = ("t_tau", "auc", "final", "final_test")
CONTROLS = ("random", "prior", "sham", "oracle")  # oracle: the upper bound a nudge of the same length can reach

DEFINITIONS = {
    "tuple": "(experiment, task level, scheduler); the task level is the folder's (experiment-file label, else task id); the scheduler its canonical name (aliases resolved); methods are variant labels; 'none' is vanilla",
    "comparisons": "each warm-started arm vs 'none'; each ohgw-type arm 'ohgw<suffix>' also vs 'random<suffix>', 'prior<suffix>' and 'sham<suffix>' (else plain 'sham', which pays the same warm-start cost), where present; always paired by seed",
    "budget": "study.json 'budget': the budget the study used (the task's default when none was given); reports after it are ignored by tables and figures alike",
    "excluded": "a study whose summary 'ended' is neither 'budget spent' nor 'scheduler exhausted' (failure limit, interrupted) stopped early, so its T@tau and final score are not comparable: it is left out and listed",
    "best_so_far": "best finite validation metric reported so far (mode-aware), failed/nan reports ignored",
    "t_tau": "first study-clock time the best-so-far reaches tau within the budget; otherwise right-censored at the budget",
    "t_tau_km_median": "the one 'median T@tau' of every table and figure: the Kaplan-Meier median over seeds, the first event time where the KM survival estimate falls to 0.5 or below, compared in exact rational arithmetic (a survival of exactly 1/2 gives that event); 'not reached' (null) if it never does; quartiles are KM quantiles the same way (survival <= 0.75, <= 0.25); reported beside frac_reached",
    "frac_reached": "fraction of an arm's seeds that reach tau within the budget",
    "t_tau_ratio": "per-seed T@tau(arm) / T@tau(baseline), censored studies at the budget (a lower bound); a pair censored on both sides is kept as a tie (ratio 1, counted in n_both_censored and n_ties); n_ties = pairs with ratio exactly 1 (relative 1e-12); median and geometric mean (exp of the mean log ratio) with 95% percentile bootstrap intervals (4000 resamples of pairs, seed 0); < 1 means the arm is faster",
    "t_tau_tests": "two-sided Wilcoxon signed-rank test of the per-seed log ratios (the same pairs as t_tau_ratio; ties carry no sign and are dropped, n_nonzero pairs remain); std of T@tau uses censored studies at the budget",
    "auc": "(1/B) * integral_0^B s(t) dt, s = normalised best-so-far: 0 at the worst first value and 1 at the best value of the task (experiment, task) over all studies; 0 before the first report",
    "final": "best validation metric within the budget; final_test: test metric of that incumbent report",
    "overhead_share": "warm-start compute over total compute, S/W: warm-start seconds charged to the study clock over the study's busy worker seconds (on the simulated clock, warm-start FLOPs over total FLOPs); the same as summary.json warm_start.share_of_worker_time; overhead_share_flops / overhead_share_calibrated = median over seeds of the study's share on the FLOP clock and on the calibrated clock (summary.json warm_start.share_flops / share_calibrated: both are recorded whichever clock charged the study); the compute criterion tests the larger of the two; *_per_step = median over trials of warm-start cost / one plain training step",
    "extra_peak_memory": "median over seeds of the study's peak resident memory per worker process (summary.json peak_rss_bytes) over the baseline arm's median, minus 1",
    "kl": "per hyperparameter, KL(variant || vanilla) between Gaussians fitted (mean, unbiased variance floored at 1e-6 range^2) in the unconstrained space (log for log-scale hps); chosen = each seed's final incumbent config, all = every evaluated trial's config; mean_shift in unit-cube units (fraction of the range). Bias test (bias): shift of the chosen configs' mean with a 90% bootstrap interval (each arm resampled): 'no bias' when it lies inside +-0.10 of the range, 'biased' when wholly outside, else 'undecided'",
    "wilcoxon": "two-sided signed-rank (scipy, zero differences dropped) over seeds present in both arms; 'better' names the arm the signed median difference favours; Holm over tuples per (arm, baseline, metric)",
    "p_attainable": "the smallest Holm-adjusted p the design allows: m * 2 / 2^n for n informative (nonzero log ratio) pairs and m tests in the Holm family; seeds_needed is the smallest n with m * 2 / 2^n < alpha",
    "criteria": "per comparison, each criterion met / failed / undecided / not measured: T@tau met when the paired median ratio <= 0.85 with Holm p < 0.05, failed when its 95% interval lies wholly above 0.85; final score: relative drop of the median final validation score, its 90% paired bootstrap interval against the 0.2% margin (met wholly at or below, failed wholly above, else undecided; final_below_resolution when 0.2% of the score is finer than the metric's resolution); std of T@tau: inflation's 90% bootstrap interval against +10% the same way; compute: overhead share <= 3%; memory: extra peak memory <= 10%; a criterion without data is not measured, never failed",
    "status": "first rule that applies: not applicable (the warm-start never ran); inconclusive (too few seeds: best attainable Holm p >= 0.05 with the informative pairs, or vanilla reaches tau in fewer than half its seeds); holds (every criterion met); inconclusive (underpowered: computed power < 80% for a true 20% reduction, unless T@tau failed); does not hold (a criterion failed); inconclusive (a criterion undecided or not measured). status_t_tau: the same rules on T@tau alone; status_cost: compute and memory alone",
    "verdict": "per arm vs none, from each tuple's status (verdicts), T@tau alone (verdicts_t_tau) or cost alone (verdicts_cost): holds when >= 75% of the applicable tuples hold; inconclusive when that is still reachable counting inconclusive tuples; does not hold otherwise",
    "power": "per comparison, the probability that the T@tau criterion is met (median ratio <= 0.85 and signed-rank p < alpha/m, the first Holm step) if the true ratio were 0.80, simulated (400 draws, seed 0) from the observed log ratios centred on their median and shifted to log 0.8; 0 when p < alpha/m is not attainable; censoring not re-simulated. power.underpowered: the median power over comparisons vs none < 80% (or significance not attainable)",
    "shared_proposals": "per comparison, the median over seed pairs of the trials (matched by trial id) whose proposed (pre-warm-start) config is the same in both arms, beside the median trial count: where few are shared (DyHPO, BO) the seed pairing is largely nominal",
    "benefit": "a trial's metric at its highest fidelity ranked among the trials of the same study with a report at that fidelity, mapped to [0, 1] with 1 = best",
    "survival": "fraction of a study's trials whose highest reported fidelity reaches each level; median over seeds",
}


def _nanmax(x: np.ndarray) -> float:
    return float(np.nanmax(x)) if np.isfinite(x).any() else math.nan


class NoResults(Exception):
    """No complete study below the results directory."""


def load_studies(results_dir: str | Path) -> tuple[list[Study], list[str], list[dict[str, Any]]]:
    """(studies, warnings, excluded): every complete, comparable study below ``results_dir``."""
    root = Path(results_dir)
    if not root.is_dir():
        raise NoResults(f"{root} is not a directory")
    warns: list[str] = []
    excluded: list[dict[str, Any]] = []
    studies = []
    for rec in results.iter_records(root, warns, excluded):
        s = make_study(rec)
        study_metrics(s)
        studies.append(_slim(s))
    if not studies:
        raise NoResults(f"no complete studies under {root}")
    return studies, warns, excluded


#: the report-row columns the analysis reads once a study's metrics are made (curves, AUC, tau)
ROW_COLUMNS = ("seq", "trial_id", "time", "time_wall", "worker_time", "metric", "test_metric", "fidelity", "status")


def _slim(s: Study) -> Study:
    """The study with its raw rows dropped and its frames cut to :data:`ROW_COLUMNS` (after
    :func:`study_metrics`): what every later step reads, at a small part of the memory."""
    s.record = dataclasses.replace(s.record, rows=[])
    s.rows = s.rows[[c for c in ROW_COLUMNS if c in s.rows.columns]]
    s.valid = s.valid[[c for c in ROW_COLUMNS if c in s.valid.columns]]
    return s


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
    rank: dict[tuple[float, Any], float] = {}
    for f, peers in at.groupby(level=0):
        rank.update(zip(((f, tid) for tid in peers.index.get_level_values(1)),
                        metrics.rung_rank(peers.to_numpy(), s.mode)))
    return np.array([rank.get((tf, tid), np.nan) for tid, tf in zip(trials.index, trials["final_fidelity"])],
                    dtype=float)


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
    ws_sum = s.record.summary.get("warm_start") or {}
    for clock in ("flops", "calibrated"):  # the study's share on each simulated clock, whichever charged it
        m["overhead"][f"share_{clock}"] = _float(ws_sum.get(f"share_{clock}"))
    if s.variant == VANILLA:
        m["overhead"].update(overhead_share=0.0, share_flops=0.0, share_calibrated=0.0)
    applied = trials["ws.applied"].fillna(False).astype(bool).to_numpy() if "ws.applied" in trials.columns \
        else np.zeros(len(trials), bool)
    paid = (np.nan_to_num(_col(trials, "ws.cost.seconds")) > 0) | (np.nan_to_num(_col(trials, "ws.sim_seconds")) > 0)
    m["n_warm_starts_ran"] = int(np.sum(applied | paid))  # nudged, or paid for (sham): the warm-start ran
    m["peak_rss_bytes"] = s.peak_rss
    s.m = m


def _worst_share(c: dict[str, Any]) -> float:
    """The share the compute criterion tests: the larger of the two clocks' (FLOP, calibrated),
    where the study recorded them, else the share on the clock that charged it (issue 23: the 3%
    threshold holds on both clocks)."""
    vals = [c.get(k) for k in ("overhead_share", "overhead_share_flops", "overhead_share_calibrated")]
    finite = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
    return max(finite) if finite else math.nan


def _auc_refs(studies: list[Study]) -> dict[tuple[str, str], tuple[float, float]]:
    """Best value and worst first value per (experiment, task), over every study of that task."""
    refs: dict[tuple[str, str], tuple[float, float]] = {}
    groups: dict[tuple[str, str], list[Study]] = {}
    for s in studies:
        groups.setdefault((s.experiment, s.task), []).append(s)
    for key, ss in groups.items():
        firsts = [s.m["first_value"] for s in ss]
        alls = np.concatenate([_col(s.valid, "metric") for s in ss] or [np.array([])])
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
            vals = [np.nanmax(_col(s.valid, axis)) for s in ss if len(s.valid) and np.isfinite(_col(s.valid, axis)).any()]
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
        bias = metrics.shift_test(hp_values(var, name, True), hp_values(base, name, True), log, lo, hi)
        rows.append({"hp": name, "log": log, "kl_chosen": c["kl"], "mean_shift_chosen": c["mean_shift"],
                     "shift_ci_low": bias["ci_low"], "shift_ci_high": bias["ci_high"], "bias": bias["outcome"],
                     "n_chosen": c["n_variant"], "kl_all": a["kl"], "mean_shift_all": a["mean_shift"],
                     "n_all": a["n_variant"], "n_all_vanilla": a["n_vanilla"]})
    return rows


def comparison_pairs(variants: list[str] | set[str]) -> list[tuple[str, str]]:
    """(arm, baseline) pairs to compare within one tuple.

    Every arm other than ``none`` against ``none``. An ohgw-type arm (``ohgw`` or
    ``ohgw<suffix>``, the suffix encoding its step settings) also against each control with the
    same suffix (``random<suffix>``, ``prior<suffix>``, ``sham<suffix>``), and against plain
    ``sham`` when no ``sham<suffix>`` exists: sham pays the ohgw arm's warm-start cost and never
    moves the config, so its step settings do not matter. Controls absent from the tuple are
    skipped.
    """
    vs = set(variants)
    out: list[tuple[str, str]] = []
    for v in sorted(vs):
        if v == VANILLA:
            continue
        if VANILLA in vs:
            out.append((v, VANILLA))
        if v == "ohgw" or v.startswith("ohgw-"):
            suffix = v[len("ohgw"):]
            for ctrl in CONTROLS:
                if ctrl + suffix in vs:
                    out.append((v, ctrl + suffix))
                elif ctrl == "sham" and "sham" in vs:
                    out.append((v, "sham"))
    return out


def comparison_name(variant: str, baseline: str) -> str:
    return f"{variant} vs {baseline}"


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
        warns.append(f"{label}: no vanilla ('{VANILLA}') studies; arms are not compared with vanilla")
    for variant, base in comparison_pairs(seeds):
        only_v = sorted(seeds[variant] - seeds[base])
        only_0 = sorted(seeds[base] - seeds[variant])
        if only_v:
            warns.append(f"{label}: {variant} seeds {only_v} have no {base} pair")
        if only_0:
            warns.append(f"{label}: {variant} lacks seeds {only_0} that {base} has")
    return warns


def _t_tau_summary(ss: list[Study]) -> dict[str, Any]:
    """n, reach and the Kaplan-Meier median and quartiles of T@tau (``median`` and
    ``km_median`` are the same number: the one median every table and figure shows)."""
    t = [s.m["t_tau"] for s in ss]
    r = [s.m["reached"] for s in ss]
    out = metrics.censored_summary(t, r)
    out["km_median"] = out["median"]
    out["km_median_not_reached"] = out["median_not_reached"]
    return out


def _method_summary(ss: list[Study]) -> dict[str, Any]:
    out = {
        "n_seeds": len(ss),
        "seeds": sorted(s.seed for s in ss),
        "t_tau": _t_tau_summary(ss),
        "auc": metrics.median_iqr([s.m["auc"] for s in ss]),
        "final": metrics.median_iqr([s.m["final"] for s in ss]),
        "final_test": metrics.median_iqr([s.m["final_test"] for s in ss]),
        "peak_rss_bytes": metrics.median_iqr([s.m["peak_rss_bytes"] for s in ss]),
        "n_warm_starts": int(sum(s.m["overhead"]["n_warm_starts"] for s in ss)),
    }
    for k in ("overhead_share", "seconds_per_step", "flops_per_step", "peak_per_step"):
        out[k] = metrics.median_iqr([s.m["overhead"][k] for s in ss])
    return out


def _better(diff: float, higher_is_better: bool, arm: str, base: str) -> str | None:
    """Which arm the signed median difference favours (None without a difference)."""
    if not np.isfinite(diff):
        return None
    if diff == 0:
        return "tie"
    return arm if (diff > 0) == higher_is_better else base


def _shared_proposals(pb: list[Study], pv: list[Study]) -> dict[str, Any]:
    """How many base proposals (the scheduler's config before any warm-start) the two arms share.

    Per seed pair, trials are matched by trial id and a trial counts as shared when every
    proposed hyperparameter agrees (to 1e-9 relative); median over pairs. Under a scheduler
    whose proposals depend on the results (DyHPO, BO) the arms drift apart after the first
    few trials, so most of the "paired" comparison is in effect unpaired.
    """
    shared, totals = [], []
    for b, v in zip(pb, pv):
        tb, tv = b.trials, v.trials
        cols = [c for c in tb.columns if c.startswith("proposed.") and c in tv.columns]
        if tb.empty or tv.empty or not cols:
            continue
        ids = sorted(set(tb.index) & set(tv.index))
        base, arm = (np.column_stack([_col(t.loc[ids], col) for col in cols]) if ids else np.empty((0, len(cols)))
                     for t in (tb, tv))
        same = np.isclose(base, arm, rtol=1e-9, atol=0.0) | (np.isnan(base) & np.isnan(arm))
        shared.append(int(same.all(axis=1).sum()))
        totals.append(min(len(tb), len(tv)))
    if not shared:
        return {"median_shared": math.nan, "median_trials": math.nan, "n_pairs": 0}
    return {"median_shared": float(np.median(shared)), "median_trials": float(np.median(totals)),
            "min_shared": int(min(shared)), "n_pairs": len(shared)}


def _compare(base: list[Study], var: list[Study], resolution: float) -> dict[str, Any]:
    """Paired comparison of an arm with a baseline arm on the seeds both have."""
    b = {s.seed: s for s in base}
    v = {s.seed: s for s in var}
    seeds = sorted(set(b) & set(v))
    pb, pv = [b[k] for k in seeds], [v[k] for k in seeds]
    budget = pb[0].budget if pb else math.nan
    arm, bname = (pv[0].variant, pb[0].variant) if pb else ("", "")
    mode = pb[0].mode if pb else "min"
    ratio = metrics.paired_ratio([s.m["t_tau"] for s in pv], [s.m["reached"] for s in pv],
                                 [s.m["t_tau"] for s in pb], [s.m["reached"] for s in pb], budget)
    lr = np.asarray(ratio.pop("log_ratios"), dtype=float)
    values = {
        "auc": (np.array([s.m["auc"] for s in pv]), np.array([s.m["auc"] for s in pb])),
        "final": (np.array([s.m["final"] for s in pv]), np.array([s.m["final"] for s in pb])),
        "final_test": (np.array([s.m["final_test"] for s in pv]), np.array([s.m["final_test"] for s in pb])),
    }
    tests = {"t_tau": metrics.paired_wilcoxon(lr, np.zeros_like(lr))}
    tests["t_tau"]["better"] = _better(tests["t_tau"]["median_diff"], False, arm, bname)
    tests["t_tau"]["difference"] = "median log ratio of T@tau (arm / baseline)"
    for k, (x, y) in values.items():
        tests[k] = metrics.paired_wilcoxon(x, y)
        higher = k == "auc" or mode == "max"
        tests[k]["better"] = _better(tests[k]["median_diff"], higher, arm, bname)
        tests[k]["difference"] = f"median of {k}(arm) - {k}(baseline)"
    fb = metrics.median_iqr(values["final"][1])["median"]
    fv = metrics.median_iqr(values["final"][0])["median"]
    level = metrics.CRITERIA["margin_level"]
    drop_ci = metrics.bootstrap_pairs(lambda x, y: metrics.relative_drop(float(np.median(y)), float(np.median(x)), mode),
                                      values["final"][0], values["final"][1], level)
    tb = np.where([s.m["reached"] for s in pb], [s.m["t_tau"] for s in pb], budget)
    tv = np.where([s.m["reached"] for s in pv], [s.m["t_tau"] for s in pv], budget)
    std_ci = metrics.bootstrap_pairs(lambda x, y: metrics.std_inflation(float(np.std(y, ddof=1)), float(np.std(x, ddof=1))),
                                     tv, tb, level)
    auc_d = values["auc"][0] - values["auc"][1]
    auc_gain = metrics.median_iqr(auc_d)
    auc_gain["ci_low"], auc_gain["ci_high"] = metrics.bootstrap_pairs(
        lambda x, y: float(np.median(x - y)), values["auc"][0], values["auc"][1], 0.95)
    peak_b = metrics.median_iqr([s.m["peak_rss_bytes"] for s in pb])["median"]
    peak_v = metrics.median_iqr([s.m["peak_rss_bytes"] for s in pv])["median"]
    return {
        "variant": arm, "baseline": bname,
        "paired_seeds": seeds,
        "t_tau_baseline": _t_tau_summary(pb), "t_tau_variant": _t_tau_summary(pv),
        "t_tau_ratio": ratio,
        "t_tau_log_ratios": lr.tolist(),
        "std_baseline": metrics.std_censored_at_budget([s.m["t_tau"] for s in pb], [s.m["reached"] for s in pb], budget),
        "std_variant": metrics.std_censored_at_budget([s.m["t_tau"] for s in pv], [s.m["reached"] for s in pv], budget),
        "std_inflation_ci": list(std_ci),
        "final_baseline": fb, "final_variant": fv,
        "final_drop": metrics.relative_drop(fb, fv, mode),
        "final_drop_ci": list(drop_ci),
        "final_resolution": resolution,
        "overhead_share": metrics.median_iqr([s.m["overhead"]["overhead_share"] for s in pv])["median"],
        "overhead_share_baseline": metrics.median_iqr([s.m["overhead"]["overhead_share"] for s in pb])["median"],
        **{f"overhead_share_{clock}": metrics.median_iqr([s.m["overhead"][f"share_{clock}"] for s in pv])["median"]
           for clock in ("flops", "calibrated")},
        "peak_rss_bytes": peak_v, "peak_rss_bytes_baseline": peak_b,
        "extra_peak_memory": peak_v / peak_b - 1.0 if np.isfinite(peak_v) and np.isfinite(peak_b) and peak_b > 0 else math.nan,
        "applicable": any(s.m["n_warm_starts_ran"] > 0 for s in pv),
        "shared_proposals": _shared_proposals(pb, pv),
        "auc_gain": auc_gain,
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
    studies, warns, excluded = load_studies(results_dir)  # each with its metrics, slimmed
    refs = _auc_refs(studies)
    for s in studies:
        best_ref, worst_ref = refs[(s.experiment, s.task)]
        valid = s.valid
        s.m["auc"] = metrics.normalized_auc(_col(valid, "time"), _col(valid, "metric"), s.mode, s.budget,
                                            best_ref, worst_ref)
    return _analyse_studies(studies, warns, excluded, str(results_dir), refs)


def analyse_csv(csv_path: str | Path) -> dict[str, Any]:
    """The report from a bundle's ``studies.csv`` alone (one row per study, see
    :mod:`analysis.studies_csv`): every per-study number the tables and T@tau figures need,
    without the report rows. What needs the rows is left out and said so (best-so-far curves,
    survival per rung, incumbent configs and so the bias test, hyper-gradient norms); the metric
    resolution comes from the studies' final scores instead of every report."""
    from analysis import studies_csv

    studies, warns = studies_csv.read_studies(Path(csv_path))
    warns.append("analysed from studies.csv alone: no best-so-far curves, survival per rung, bias test "
                 "(incumbent configs) or hyper-gradient norms; metric resolution from the final scores")
    refs = {(s.experiment, s.task): (math.nan, math.nan) for s in studies}
    return _analyse_studies(studies, warns, [], str(csv_path), refs)


def _analyse_studies(studies: list[Study], warns: list[str], excluded: list[dict[str, Any]], source: str,
                     refs: dict[tuple[str, str], tuple[float, float]]) -> dict[str, Any]:
    """The tuples, comparisons, criteria and verdicts of studies whose ``m`` is filled."""
    if not studies:
        raise NoResults(f"no complete studies in {source}")
    groups: dict[tuple[str, str, str], list[Study]] = {}
    for s in studies:
        groups.setdefault(s.tuple_key, []).append(s)
    tuples: list[dict[str, Any]] = []
    for key in sorted(groups):
        ss = groups[key]
        warns += _seed_warnings(key, ss)
        budgets = sorted({s.budget for s in ss})
        if len(budgets) > 1:
            warns.append(f"{'/'.join(key)}: studies used different budgets {budgets}; comparisons censor each pair at its baseline's")
        variants = sorted({s.variant for s in ss}, key=lambda v: (v != VANILLA, v))
        task = ss[0].record.task_info
        resolution = metrics.metric_resolution(np.concatenate([_col(s.valid, "metric") for s in ss])) \
            if any(len(s.rows) for s in ss) else metrics.metric_resolution([s.m["final"] for s in ss])
        entry: dict[str, Any] = {
            "experiment": key[0], "task": key[1], "scheduler": key[2], "task_id": task.get("id"),
            "metric": task.get("metric"), "test_metric": task.get("test_metric"), "mode": ss[0].mode,
            "tau": ss[0].tau, "budget": ss[0].budget, "clock": ss[0].clock,
            "auc_refs": {"best": refs[(key[0], key[1])][0], "worst_first": refs[(key[0], key[1])][1]},
            "methods": {v: _method_summary([s for s in ss if s.variant == v]) for v in variants},
            "comparisons": {}, "kl": {},
        }
        for v, bname in comparison_pairs(variants):
            var = [s for s in ss if s.variant == v]
            base = [s for s in ss if s.variant == bname]
            cmp_ = _compare(base, var, resolution)
            if not cmp_["paired_seeds"]:
                continue
            entry["comparisons"][comparison_name(v, bname)] = cmp_
            if bname == VANILLA:
                entry["kl"][v] = _kl_rows(ss, v)
        entry["curves"] = curves_for_tuple(ss) if any(len(s.valid) for s in ss) else {}
        entry["survival"] = _survival(ss)
        tuples.append(entry)
    power = _holm_and_criteria(tuples)
    for exp, pw in sorted(power.items()):
        if not pw["significance_attainable"]:
            warns.append(f"experiment {exp}: with {pw['min_pairs']}-{pw['max_pairs']} informative seed pairs and up to {pw['tests_per_family']} "
                         f"tuples per Holm family no comparison can reach p < {metrics.CRITERIA['p_value']}: "
                         f"at least {pw['seeds_needed']} informative seed pairs are needed")
        elif pw["underpowered"]:
            warns.append(f"experiment {exp}: median power {pw['power_median']:.0%} (range {pw['power_min']:.0%}-{pw['power_max']:.0%}) "
                         f"to detect a true {pw['effect']:.0%} T@tau reduction against none after Holm; below "
                         f"{metrics.CRITERIA['power']:.0%}, so criteria that are not met read inconclusive")
    verdicts = _verdicts(tuples)
    return {"results_dir": source, "n_studies": len(studies), "definitions": DEFINITIONS,
            "thresholds": dict(metrics.CRITERIA), "tuples": tuples, "verdicts": verdicts,
            "verdicts_t_tau": _verdicts(tuples, "status_t_tau"), "verdicts_cost": _verdicts(tuples, "status_cost"),
            "findings": findings(tuples), "power": power, "warnings": warns, "excluded": excluded,
            "studies": studies}


def _holm_and_criteria(tuples: list[dict[str, Any]]) -> dict[str, Any]:
    """Holm-adjust each (arm, baseline, metric) family over tuples, evaluate the criteria, and
    return per experiment how many seeds significance needs."""
    families: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for t in tuples:
        for c in t["comparisons"].values():
            for k in COMPARED:
                families.setdefault((t["experiment"], c["variant"], c["baseline"], k), []).append(c["tests"][k])
    for fam in families.values():
        adj = metrics.holm([x["p"] for x in fam])
        m = int(np.isfinite([x["p"] for x in fam]).sum())
        for x, a in zip(fam, adj):
            x["p_holm"] = float(a)
            x["holm_family_size"] = m
    power: dict[str, Any] = {}
    for t in tuples:
        for c in t["comparisons"].values():
            tt = c["tests"]["t_tau"]
            m = max(tt["holm_family_size"], 1)
            n = c["t_tau_ratio"]["n_nonzero"]
            attainable = metrics.best_holm_p(n, m)
            pw_c = metrics.t_tau_power(c["t_tau_log_ratios"], m)
            c["criteria"] = metrics.success_criteria(
                ratio=c["t_tau_ratio"], p_t_tau=tt["p_holm"], p_attainable=attainable,
                vanilla_frac_reached=c["t_tau_baseline"]["frac_reached"], final_drop=c["final_drop"],
                final_resolution=c["final_resolution"], final_vanilla=c["final_baseline"],
                overhead_share=_worst_share(c), extra_peak_memory=c["extra_peak_memory"],
                std_vanilla=c["std_baseline"], std_variant=c["std_variant"], applicable=c["applicable"],
                final_drop_ci=c["final_drop_ci"], std_inflation_ci=c["std_inflation_ci"], power=pw_c)
            c["status"] = c["criteria"]["status"]
            c["status_t_tau"] = c["criteria"]["status_t_tau"]
            c["status_cost"] = c["criteria"]["status_cost"]
            pw = power.setdefault(t["experiment"], {"tests_per_family": 0, "min_pairs": None, "max_pairs": 0,
                                                    "powers_vs_none": []})
            pw["tests_per_family"] = max(pw["tests_per_family"], m)
            pw["min_pairs"] = n if pw["min_pairs"] is None else min(pw["min_pairs"], n)
            pw["max_pairs"] = max(pw["max_pairs"], n)
            if c["baseline"] == VANILLA and np.isfinite(pw_c):
                pw["powers_vs_none"].append(pw_c)
    for pw in power.values():
        pw["seeds_needed"] = metrics.seeds_needed(pw["tests_per_family"])
        pw["best_holm_p"] = metrics.best_holm_p(pw["max_pairs"], pw["tests_per_family"])
        pw["significance_attainable"] = pw["best_holm_p"] < metrics.CRITERIA["p_value"]
        ps = pw.pop("powers_vs_none")
        pw["effect"] = metrics.CRITERIA["power_effect"]
        pw["power_median"] = float(np.median(ps)) if ps else math.nan
        pw["power_min"] = float(np.min(ps)) if ps else math.nan
        pw["power_max"] = float(np.max(ps)) if ps else math.nan
        pw["n_powered"] = int(sum(p >= metrics.CRITERIA["power"] for p in ps))
        pw["n_comparisons"] = len(ps)
        pw["underpowered"] = bool(not pw["significance_attainable"] or not ps
                                  or pw["power_median"] < metrics.CRITERIA["power"])
    return power


def _verdicts(tuples: list[dict[str, Any]], key: str = "status") -> dict[str, Any]:
    """Per arm, over the tuples where it is compared with vanilla, from each tuple's ``key``
    (``status``: every criterion; ``status_t_tau``: T@tau alone; ``status_cost``: compute and memory)."""
    st: dict[str, list[str]] = {}
    for t in tuples:
        for c in t["comparisons"].values():
            if c["baseline"] == VANILLA:
                st.setdefault(c["variant"], []).append(c[key])
    return {v: metrics.verdict(h) for v, h in sorted(st.items())}


def findings(tuples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per (experiment, task, scheduler, comparison): what a README table shows.

    ``failed`` lists the criteria whose interval (or value) lies beyond its margin, never one
    that could not be evaluated (those are in ``not_measured``).
    """
    out = []
    for t in tuples:
        for name, c in t["comparisons"].items():
            r, cr = c["t_tau_ratio"], c["criteria"]
            out.append({"experiment": t["experiment"], "task": t["task"], "scheduler": t["scheduler"],
                        "comparison": name, "variant": c["variant"], "baseline": c["baseline"],
                        "n_pairs": r["n_pairs"], "n_used": r["n_used"], "n_ties": r["n_ties"],
                        "n_nonzero": r["n_nonzero"], "n_both_censored": r["n_both_censored"],
                        "t_tau_ratio": r["median"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                        "geo_mean": r["geo_mean"], "geo_ci_low": r["geo_ci_low"], "geo_ci_high": r["geo_ci_high"],
                        "p": c["tests"]["t_tau"]["p"], "p_holm": c["tests"]["t_tau"]["p_holm"],
                        "better": c["tests"]["t_tau"]["better"],
                        "p_attainable": cr["p_attainable"], "power": cr["power"], "status": c["status"],
                        "status_t_tau": c["status_t_tau"], "status_cost": c["status_cost"],
                        "failed": list(cr["failed"]), "not_measured": list(cr["not_measured"]),
                        "overhead_share": c["overhead_share"],
                        "overhead_share_flops": c.get("overhead_share_flops"),
                        "overhead_share_calibrated": c.get("overhead_share_calibrated"),
                        "shared_proposals": c["shared_proposals"].get("median_shared"),
                        "trials_per_study": c["shared_proposals"].get("median_trials"),
                        "frac_reached_variant": c["t_tau_variant"]["frac_reached"],
                        "frac_reached_baseline": c["t_tau_baseline"]["frac_reached"]})
    return out


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


def step_sweeps(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """Lines of (trust-region radius rho -> paired T@tau ratio against none), one per tuple and
    nudge (``ohgw``, ``oracle``, ...) run with the normalized step at two or more radii: the
    step-length sweep, i.e. the largest gain a nudge of each length buys (issue 25). Every point
    is that arm's comparison with none, as in the paired table."""
    settings: dict[tuple[Any, ...], tuple[str, float]] = {}
    for s in analysis["studies"]:
        ws = s.warm_start
        if s.variant != VANILLA and str(ws.get("step_rule")) == "normalized" and _float(ws.get("rho")) > 0:
            settings[(*s.tuple_key, s.variant)] = (str(ws.get("variant", s.variant)), _float(ws.get("rho")))
    out = []
    for t in analysis["tuples"]:
        key = (t["experiment"], t["task"], t["scheduler"])
        lines: dict[str, list[tuple[float, str, dict[str, Any]]]] = {}
        for name, c in t["comparisons"].items():
            st = settings.get((*key, c["variant"]))
            if c["baseline"] == VANILLA and st is not None:
                lines.setdefault(st[0], []).append((st[1], name, c))
        for nudge, points in sorted(lines.items()):
            if len(points) < 2:
                continue
            points.sort(key=lambda p: p[0])
            r = [c["t_tau_ratio"] for _, _, c in points]
            out.append({"experiment": key[0], "task": key[1], "scheduler": key[2], "nudge": nudge,
                        "rho": [p[0] for p in points], "comparison": [p[1] for p in points],
                        "pairs": [x["n_pairs"] for x in r], "ratio": [x["median"] for x in r],
                        "ci_low": [x["ci_low"] for x in r], "ci_high": [x["ci_high"] for x in r],
                        "geo_mean": [x["geo_mean"] for x in r],
                        "p_holm": [c["tests"]["t_tau"]["p_holm"] for _, _, c in points]})
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
        for c in t["comparisons"].values():
            if c["variant"] not in labels or c["baseline"] != VANILLA:
                continue
            rows.append({"experiment": t["experiment"], "task": t["task"], "family": family(t["task"]),
                         "scheduler": t["scheduler"], "variant": c["variant"], "auc_gain": c["auc_gain"],
                         "t_tau_geo_mean": c["t_tau_ratio"]["geo_mean"],
                         "t_tau_geo_mean_ci": [c["t_tau_ratio"]["geo_ci_low"], c["t_tau_ratio"]["geo_ci_high"]],
                         "t_tau_ratio": c["t_tau_ratio"]["median"], "t_tau_ratio_ci":
                         [c["t_tau_ratio"]["ci_low"], c["t_tau_ratio"]["ci_high"]], "status": c["status"]})
    return {"eta_h": eta, "rows": rows}


def family(task: str) -> str:
    """Task family: the dataset part of a task id (``cifar10-resnet20-v1`` -> ``cifar10``)."""
    return task.split("-")[0] if task else task


def write_report(analysis: dict[str, Any], out: Path, with_figures: bool = True) -> dict[str, Any]:
    """Write tables, figures (unless ``with_figures`` is false), studies.csv and summary.json."""
    from analysis import figures, studies_csv, tables

    out.mkdir(parents=True, exist_ok=True)
    analysis["eta_sweeps"] = eta_sweeps(analysis["studies"])
    analysis["step_sweeps"] = step_sweeps(analysis)
    analysis["transfer"] = transfer(analysis)
    table_files = tables.write_all(analysis, out / "tables")
    figure_files = figures.write_all(analysis, out / "figures") if with_figures else []
    src = Path(analysis["results_dir"])
    csv_path = out / "studies.csv"
    if src.is_file():  # rebuilt from a studies.csv: that file is the bundle's, byte for byte
        if src.resolve() != csv_path.resolve():
            shutil.copyfile(src, csv_path)
    else:
        csv_path = studies_csv.write_csv(analysis["studies"], csv_path, src if src.is_dir() else None)
    summary = {k: v for k, v in analysis.items() if k != "studies"}
    summary["tables"] = {name: recs for name, recs in analysis["table_records"].items()}
    summary.pop("table_records", None)
    for t in summary["tuples"]:
        t.pop("curves", None)
    summary["files"] = {"tables": [str(p.relative_to(out)) for p in table_files],
                        "figures": [str(p.relative_to(out)) for p in figure_files],
                        "studies": str(csv_path.relative_to(out))}
    results.write_json_atomic(out / "summary.json", summary)
    return summary


#: what a report folder holds; anything else in --out is someone else's data
REPORT_ENTRIES = {"summary.json", "tables", "figures", "studies.csv", "README.md"}  # README.md: a bundle's notes


def check_out(out: Path, force: bool = False) -> None:
    """Refuse an ``--out`` the report would damage, before any work (one-line UserError).

    ``--out`` must be a new folder, an empty one, or an earlier report (only
    :data:`REPORT_ENTRIES`, and a summary.json that is a report's, not a study's); anything
    else (a study folder, a results directory) needs ``force``. It must also be writable.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    if out.is_dir() and not force:
        foreign = sorted(p.name for p in out.iterdir() if p.name not in REPORT_ENTRIES)
        summary = results.read_json(out / "summary.json")
        if (out / "summary.json").exists() and (summary is None or "n_studies" not in summary):
            foreign.insert(0, "summary.json (not a report's)")
        if foreign:
            raise UserError(f"--out {out} holds files that are not a report's ({', '.join(foreign[:3])}"
                            f"{', ...' if len(foreign) > 3 else ''}); they would be overwritten or mixed in: "
                            "choose a new or empty folder, or pass --force")
    probe = out.absolute()
    while not probe.exists():  # the nearest existing folder must let us create the rest (nothing made yet)
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"--out {out} is not writable ({probe} is {'not a folder' if not probe.is_dir() else 'read-only'})")


def main(argv: list[str] | None = None) -> int:
    from ohgw_bench.run import OneLineParser, prog_name

    parser = OneLineParser(prog=prog_name("ohgw-report", "analysis.report"), description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", help="results folder, or a bundle's studies.csv (with --from-csv)")
    parser.add_argument("--from-csv", action="store_true",
                        help="RESULTS_DIR is a studies.csv: rebuild what its per-study rows allow (no curves, no bias test)")
    parser.add_argument("--out", required=True, help="output folder for summary.json, tables/, figures/, studies.csv")
    parser.add_argument("--no-figures", action="store_true", help="write tables, studies.csv and summary.json only")
    parser.add_argument("--force", action="store_true",
                        help="write into an --out that holds other files (a study folder, a results directory)")
    args = parser.parse_args(argv)
    try:
        check_out(Path(args.out), args.force)
        analysis = analyse_csv(args.results_dir) if args.from_csv else analyse(args.results_dir)
    except (NoResults, UserError) as e:
        print(f"analysis.report: {e}", file=sys.stderr)
        return 2
    for w in analysis["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    out = Path(args.out)
    summary = write_report(analysis, out, with_figures=not args.no_figures)
    print(f"{summary['n_studies']} studies in {len(summary['tuples'])} (experiment, task, scheduler) tuples"
          + (f"; {len(summary['excluded'])} excluded (ended early)" if summary["excluded"] else ""))
    for v, vd in summary["verdicts"].items():
        print(f"  {v} vs none: {vd['status']} ({vd['n_hold']}/{vd['n_applicable']} applicable tuples hold, "
              f"{vd['n_inconclusive']} inconclusive, {vd['n_not_applicable']} not applicable)")
    for exp, pw in sorted(summary["power"].items()):
        print(f"  {exp}: {pw['min_pairs']}-{pw['max_pairs']} informative seed pairs, Holm families of up to "
              f"{pw['tests_per_family']}; significance needs at least {pw['seeds_needed']} seed pairs"
              + (" (NOT attainable here)" if not pw["significance_attainable"] else "")
              + (f"; power for a true {pw['effect']:.0%} reduction vs none: median {pw['power_median']:.0%} "
                 f"({pw['n_powered']}/{pw['n_comparisons']} comparisons at 80% or more)"
                 if pw["n_comparisons"] else ""))
    print(f"tables:  {out / 'tables'} ({len(summary['files']['tables'])} files)")
    print(f"figures: {out / 'figures'} ({len(summary['files']['figures'])} files)")
    print(f"studies: {out / 'studies.csv'}")
    print(f"summary: {out / 'summary.json'}")
    if summary["warnings"]:
        print(f"{len(summary['warnings'])} warnings (stderr, and summary.json 'warnings')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
