"""The paper's metrics and statistics (docs/design.md section 7), as pure functions of arrays.

No I/O: ``analysis/report.py`` reads study folders through :mod:`ohgw_bench.results` and
feeds the columns of one study (or of paired studies) to these functions.

Definitions used throughout (each function restates the one it implements):

- best-so-far b(t): the best finite validation metric reported at or before t (mode-aware);
  undefined (NaN) before the first report.
- T@tau: the first report time at which b(t) reaches tau (``<= tau`` for min, ``>= tau`` for
  max) within the budget. A study that never does is right-censored at the budget. Summaries
  treat a censored study as T = +inf: the median is finite only when more than half of the
  seeds reach tau, otherwise it is "not reached". With one common budget every censoring time
  lies after every event, so this is the empirical median of the complete data.
- normalised AUC: (1/B) * integral over [0, B] of s(t), where s(t) = (w - b(t)) / (w - beta)
  for min and (b(t) - w) / (beta - w) for max, s = 0 before the first report, clipped to
  [0, 1]. beta is the best value and w the worst first-report value of the task over every
  study compared (so every curve of the task lies in [0, 1] and 1 means "the best value
  ever seen, from time 0"). Higher is better for either mode.
- KL shift: per hyperparameter, Gaussians fitted (mean, unbiased variance with a floor) to the
  values in the unconstrained space (log for log-scale hyperparameters), then
  KL(variant || vanilla) in closed form. KL is invariant under the affine map to unit-cube
  coordinates, so the mean shift is reported there, as a fraction of the range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

Mode = str  # "min" or "max"

CRITERIA = {
    "t_tau_reduction": 0.15,
    "p_value": 0.05,
    "final_drop": 0.002,
    "extra_compute": 0.05,
    "extra_peak_memory": 0.10,
    "std_inflation": 0.10,
    "verdict_fraction": 0.75,
}


def _sign(mode: Mode) -> float:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return 1.0 if mode == "min" else -1.0


def _finite_sorted(times: ArrayLike, values: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reports with a finite time and value, in time order (stable, so ties keep report order)."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = np.isfinite(t) & np.isfinite(v)
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(t[idx], kind="stable")]
    return t[order], v[order], order


def best_so_far(times: ArrayLike, values: ArrayLike, mode: Mode) -> tuple[np.ndarray, np.ndarray]:
    """(times, best value so far) at every finite report, time-sorted; the incumbent curve."""
    t, v, _ = _finite_sorted(times, values)
    s = _sign(mode)
    return t, s * np.minimum.accumulate(s * v)


def incumbent_indices(times: ArrayLike, values: ArrayLike, mode: Mode) -> tuple[np.ndarray, np.ndarray]:
    """(sorted times, index into the inputs of the incumbent at each of them).

    The incumbent changes only on a strict improvement, so on ties the earlier report stays
    incumbent: its test metric is what a user holding the best-so-far config would see.
    """
    t, v, order = _finite_sorted(times, values)
    s = _sign(mode)
    inc = np.empty(order.size, dtype=int)
    best = math.inf
    cur = -1
    for i, (o, x) in enumerate(zip(order, s * v)):
        if x < best:
            best, cur = x, o
        inc[i] = cur
    return t, inc


def step_at(times: ArrayLike, curve: ArrayLike, grid: ArrayLike) -> np.ndarray:
    """Right-continuous step function (times, curve) evaluated on ``grid``; NaN before the first time."""
    t = np.asarray(times, dtype=float)
    c = np.asarray(curve, dtype=float)
    g = np.asarray(grid, dtype=float)
    out = np.full(g.shape, np.nan)
    if t.size == 0:
        return out
    pos = np.searchsorted(t, g, side="right") - 1
    ok = pos >= 0
    out[ok] = c[pos[ok]]
    return out


def time_to_target(times: ArrayLike, values: ArrayLike, tau: float, mode: Mode,
                   budget: float | None = None) -> tuple[float, bool]:
    """(T@tau, reached). Unreached studies are censored at the budget (or the last report time).

    Only reports at or before the budget count, so a scheduler that overruns its budget is not
    credited for the overrun.
    """
    t, v, _ = _finite_sorted(times, values)
    has_budget = budget is not None and np.isfinite(budget)
    if has_budget:
        within = t <= budget
        t, v = t[within], v[within]
    s = _sign(mode)
    hit = np.flatnonzero(s * v <= s * tau)
    if hit.size:
        return float(t[hit[0]]), True
    if has_budget:
        return float(budget), False
    return (float(t[-1]) if t.size else math.nan), False


def censored_quantile(values: ArrayLike, q: float) -> float:
    """Linear-interpolation quantile (numpy's default) where +inf marks a censored value.

    numpy turns inf - inf into NaN when both neighbours are censored; here any interpolation
    that touches a censored value is censored.
    """
    x = np.sort(np.asarray(values, dtype=float))
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan
    h = (x.size - 1) * q
    lo, hi = int(math.floor(h)), int(math.ceil(h))
    if math.isinf(x[hi]):
        return math.inf
    return float(x[lo] + (h - lo) * (x[hi] - x[lo]))


def censored_summary(times: ArrayLike, reached: ArrayLike) -> dict[str, float]:
    """n, fraction reaching tau, and median/quartiles of T@tau with censored values as +inf.

    JSON has no infinity (results.py writes it as null), so ``median_not_reached`` says it
    in so many words.
    """
    t = np.asarray(times, dtype=float)
    r = np.asarray(reached, dtype=bool)
    x = np.where(r, t, math.inf)
    n = int(x.size)
    return {
        "n": n,
        "n_reached": int(r.sum()),
        "frac_reached": float(r.mean()) if n else math.nan,
        "median": censored_quantile(x, 0.5),
        "q25": censored_quantile(x, 0.25),
        "q75": censored_quantile(x, 0.75),
        "median_not_reached": bool(n and math.isinf(censored_quantile(x, 0.5))),
    }


def median_iqr(values: ArrayLike) -> dict[str, float]:
    """Median and quartiles of the finite values (NaN when there are none)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"median": math.nan, "q25": math.nan, "q75": math.nan, "n": 0}
    q25, med, q75 = np.percentile(x, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "n": int(x.size)}


def normalized_score(best: ArrayLike, mode: Mode, best_ref: float, worst_ref: float) -> np.ndarray:
    """Map best-so-far values to [0, 1]: 0 at the task's worst first value, 1 at its best value."""
    b = np.asarray(best, dtype=float)
    s = _sign(mode)
    span = s * (worst_ref - best_ref)
    if not np.isfinite(span) or span <= 0:
        return np.where(np.isfinite(b), 1.0, np.nan)
    return np.clip(s * (worst_ref - b) / span, 0.0, 1.0)


def normalized_auc(times: ArrayLike, values: ArrayLike, mode: Mode, budget: float,
                   best_ref: float, worst_ref: float) -> float:
    """Time-average over [0, budget] of the normalised best-so-far score (0 before the first report).

    Rewards reaching good values early, not only the end point; 1 is unattainable unless the
    first report at time 0 already holds the best value of the task.
    """
    if not (np.isfinite(budget) and budget > 0):
        return math.nan
    t, b = best_so_far(times, values, mode)
    keep = t <= budget
    t, b = t[keep], b[keep]
    if t.size == 0:
        return 0.0
    score = normalized_score(b, mode, best_ref, worst_ref)
    edges = np.append(np.maximum(t, 0.0), budget)
    return float(np.sum(score * np.diff(edges)) / budget)


def auc_references(first_values: ArrayLike, all_values: ArrayLike, mode: Mode) -> tuple[float, float]:
    """(best_ref, worst_ref) for :func:`normalized_auc`: best value seen, worst first value seen."""
    f = np.asarray(first_values, dtype=float)
    a = np.asarray(all_values, dtype=float)
    f, a = f[np.isfinite(f)], a[np.isfinite(a)]
    if a.size == 0 or f.size == 0:
        return math.nan, math.nan
    s = _sign(mode)
    return float(s * np.min(s * a)), float(s * np.max(s * f))


def final_best(times: ArrayLike, values: ArrayLike, test_values: ArrayLike, mode: Mode,
               budget: float | None = None) -> dict[str, float]:
    """Best validation value within the budget, its time, and the test metric of that incumbent."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    tv = np.asarray(test_values, dtype=float)
    if budget is not None and np.isfinite(budget):
        v = np.where(t <= budget, v, np.nan)
    ts, inc = incumbent_indices(t, v, mode)
    if inc.size == 0:
        return {"best": math.nan, "test": math.nan, "time": math.nan}
    i = int(inc[-1])
    return {"best": float(v[i]), "test": float(tv[i]), "time": float(t[i])}


def relative_drop(vanilla: float, variant: float, mode: Mode) -> float:
    """Relative loss of score of ``variant`` against ``vanilla``; positive is worse, mode-aware."""
    if not (np.isfinite(vanilla) and np.isfinite(variant)) or vanilla == 0:
        return math.nan
    return float(_sign(mode) * (variant - vanilla) / abs(vanilla))


def overhead(ws_seconds: ArrayLike, ws_flops: ArrayLike, ws_peak: ArrayLike,
             step_seconds: ArrayLike, step_flops: ArrayLike, step_peak: ArrayLike,
             charged_seconds: ArrayLike, study_worker_seconds: float) -> dict[str, float]:
    """Warm-start overhead of one study from one record per trial.

    - ``extra_compute``: warm-start time charged to the study clock over the rest of the busy
      worker time (on the simulated clock time is FLOPs over a fixed throughput, so this is
      also the FLOPs fraction); what the same trials would have cost without warm-starts.
    - ``*_per_step``: median over trials of warm-start cost / one plain training step.
    - ``extra_peak_memory``: the study's peak (max of warm-start and plain-step peaks) over the
      plain-step peak, minus one.
    """
    def arr(x: ArrayLike) -> np.ndarray:
        return np.asarray(x, dtype=float)

    def ratio_median(a: np.ndarray, b: np.ndarray) -> float:
        ok = np.isfinite(a) & np.isfinite(b) & (b > 0)
        return float(np.median(a[ok] / b[ok])) if ok.any() else math.nan

    wsec, wfl, wpk = arr(ws_seconds), arr(ws_flops), arr(ws_peak)
    ssec, sfl, spk = arr(step_seconds), arr(step_flops), arr(step_peak)
    charged = arr(charged_seconds)
    total_charged = float(np.nansum(charged))
    rest = study_worker_seconds - total_charged
    extra = total_charged / rest if np.isfinite(rest) and rest > 0 else math.nan
    step_peak_max = float(np.nanmax(spk)) if np.isfinite(spk).any() else math.nan
    ws_peak_max = float(np.nanmax(wpk)) if np.isfinite(wpk).any() else math.nan
    if np.isfinite(step_peak_max) and step_peak_max > 0:
        peak = max(step_peak_max, ws_peak_max if np.isfinite(ws_peak_max) else 0.0)
        extra_peak = peak / step_peak_max - 1.0
    else:
        extra_peak = math.nan
    return {
        "n_warm_starts": int(np.isfinite(wsec).sum()),
        "ws_seconds": float(np.nansum(wsec)),
        "ws_flops": float(np.nansum(wfl)),
        "ws_peak_bytes": ws_peak_max,
        "charged_seconds": total_charged,
        "worker_seconds": float(study_worker_seconds),
        "extra_compute": extra,
        "seconds_per_step": ratio_median(wsec, ssec),
        "flops_per_step": ratio_median(wfl, sfl),
        "peak_per_step": ratio_median(wpk, spk),
        "extra_peak_memory": extra_peak,
    }


def to_unconstrained(values: ArrayLike, log: bool) -> np.ndarray:
    """The space the warm-start's raw step works in: log for log-scale hyperparameters."""
    x = np.asarray(values, dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
    return x


def fit_gaussian(samples: ArrayLike, var_floor: float = 0.0) -> tuple[float, float, int]:
    """(mean, unbiased variance floored at ``var_floor``, n) of the finite samples.

    The floor keeps KL finite when every sample is identical (a control that never moves).
    """
    x = np.asarray(samples, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, 0
    var = float(np.var(x, ddof=1)) if x.size > 1 else 0.0
    return float(np.mean(x)), max(var, var_floor), int(x.size)


def gaussian_kl(mu_p: float, var_p: float, mu_q: float, var_q: float) -> float:
    """KL(N(mu_p, var_p) || N(mu_q, var_q)) in nats."""
    if not (var_p > 0 and var_q > 0):
        return math.nan
    return float(0.5 * (math.log(var_q / var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q - 1.0))


def kl_shift(variant: ArrayLike, vanilla: ArrayLike, log: bool, low: float, high: float,
             rel_var_floor: float = 1e-6) -> dict[str, float]:
    """KL(variant || vanilla) of per-hp Gaussian fits in the unconstrained space, and mean shift.

    ``mean_shift`` is the difference of the means over the range of the unconstrained space
    (unit-cube units: 0.05 means 5% of the range). The variance floor is ``rel_var_floor``
    times the squared range.
    """
    lo, hi = to_unconstrained([low, high], log)
    span = float(hi - lo)
    floor = rel_var_floor * span**2 if np.isfinite(span) and span > 0 else 0.0
    mp, vp, n_p = fit_gaussian(to_unconstrained(variant, log), floor)
    mq, vq, n_q = fit_gaussian(to_unconstrained(vanilla, log), floor)
    if n_p < 2 or n_q < 2:
        kl = math.nan
    else:
        kl = gaussian_kl(mp, vp, mq, vq)
    shift = (mp - mq) / span if span > 0 else math.nan
    return {"kl": kl, "mean_shift": float(shift), "n_variant": n_p, "n_vanilla": n_q,
            "mean_variant": mp, "mean_vanilla": mq, "var_variant": vp, "var_vanilla": vq}


def paired_wilcoxon(variant: ArrayLike, vanilla: ArrayLike) -> dict[str, float]:
    """Two-sided Wilcoxon signed-rank test of paired seeds (scipy), zero differences dropped.

    With every difference zero there is no evidence either way: p = 1. With fewer than one
    informative pair p is NaN. Note: with 5 pairs the smallest two-sided p is 2/32 = 0.0625.
    """
    from scipy.stats import wilcoxon

    x = np.asarray(variant, dtype=float)
    y = np.asarray(vanilla, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    d = x[ok] - y[ok]
    n = int(d.size)
    nonzero = int(np.count_nonzero(d))
    if n == 0:
        return {"statistic": math.nan, "p": math.nan, "n_pairs": 0, "n_nonzero": 0,
                "median_diff": math.nan}
    if nonzero == 0:
        return {"statistic": 0.0, "p": 1.0, "n_pairs": n, "n_nonzero": 0, "median_diff": 0.0}
    res = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "n_pairs": n,
            "n_nonzero": nonzero, "median_diff": float(np.median(d))}


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count as tests.

    p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j)) over the sorted p-values. Written out
    (and tested against statsmodels' ``multipletests(method="holm")``) because statsmodels
    runs a full ``gc.collect()`` on every Holm call, which dominates the report's run time.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        m = order.size
        adj = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(m, 0, -1)))
        out[order] = adj
    return out


def survival_per_rung(max_fidelity: ArrayLike, levels: Sequence[float]) -> np.ndarray:
    """Fraction of trials whose highest reported fidelity reaches each level."""
    f = np.asarray(max_fidelity, dtype=float)
    f = f[np.isfinite(f)]
    if f.size == 0:
        return np.full(len(levels), np.nan)
    return np.array([(f >= lv).mean() for lv in levels], dtype=float)


def rung_rank(values: ArrayLike, mode: Mode) -> np.ndarray:
    """Rank of each value among its peers mapped to [0, 1] (1 = best, average ranks on ties).

    Used as a trial's "eventual benefit": its final metric relative to the trials that reached
    the same fidelity level in the same study.
    """
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v)
    n = int(ok.sum())
    if n == 0:
        return out
    if n == 1:
        out[ok] = 1.0
        return out
    r = rankdata(-_sign(mode) * v[ok], method="average")  # best gets the highest rank
    out[ok] = (r - 1.0) / (n - 1.0)
    return out


def t_tau_reduction(median_vanilla: float, median_variant: float) -> float:
    """1 - median_variant / median_vanilla; NaN when either median is not reached."""
    if not (np.isfinite(median_vanilla) and np.isfinite(median_variant)) or median_vanilla <= 0:
        return math.nan
    return 1.0 - median_variant / median_vanilla


def success_criteria(*, t_tau_vanilla: Mapping[str, float], t_tau_variant: Mapping[str, float],
                     p_t_tau: float, final_drop: float, extra_compute: float,
                     extra_peak_memory: float, std_vanilla: float, std_variant: float,
                     thresholds: Mapping[str, float] = CRITERIA) -> dict[str, Any]:
    """The proposal's criteria for one (task, scheduler) tuple; each criterion and their AND.

    T@tau: reduction of the median >= 15% with p < 0.05; when vanilla's median is not reached
    but the variant's is, the reduction is NaN and the criterion holds if p < 0.05 (the variant
    reaches tau in most seeds and vanilla does not). Std inflation compares T@tau standard
    deviations with censored values set to the budget (a lower bound of the true time).
    A criterion whose inputs are missing does not hold.
    """
    th = thresholds
    red = t_tau_reduction(t_tau_vanilla["median"], t_tau_variant["median"])
    only_variant = (not np.isfinite(t_tau_vanilla["median"])) and np.isfinite(t_tau_variant["median"])
    p_ok = bool(np.isfinite(p_t_tau) and p_t_tau < th["p_value"])
    c_time = bool(p_ok and ((np.isfinite(red) and red >= th["t_tau_reduction"]) or only_variant))
    c_final = bool(np.isfinite(final_drop) and final_drop <= th["final_drop"])
    c_compute = bool(np.isfinite(extra_compute) and extra_compute <= th["extra_compute"])
    c_mem = bool(np.isfinite(extra_peak_memory) and extra_peak_memory <= th["extra_peak_memory"])
    infl = std_inflation(std_vanilla, std_variant)
    c_std = bool(np.isfinite(infl) and infl <= th["std_inflation"])
    out = {
        "t_tau_reduction": red,
        "p_t_tau": p_t_tau,
        "final_drop": final_drop,
        "extra_compute": extra_compute,
        "extra_peak_memory": extra_peak_memory,
        "std_inflation": infl,
        "ok_t_tau": c_time,
        "ok_final": c_final,
        "ok_compute": c_compute,
        "ok_memory": c_mem,
        "ok_std": c_std,
    }
    out["holds"] = all(out[k] for k in ("ok_t_tau", "ok_final", "ok_compute", "ok_memory", "ok_std"))
    return out


def std_inflation(std_vanilla: float, std_variant: float) -> float:
    """std_variant / std_vanilla - 1; 0 when both are 0, +inf when only vanilla's is 0."""
    if not (np.isfinite(std_vanilla) and np.isfinite(std_variant)):
        return math.nan
    if std_vanilla > 0:
        return std_variant / std_vanilla - 1.0
    return 0.0 if std_variant == 0 else math.inf


def verdict(holds: Sequence[bool], fraction: float = CRITERIA["verdict_fraction"]) -> dict[str, Any]:
    """Overall verdict: the criteria hold in at least ``fraction`` of the tuples."""
    h = [bool(x) for x in holds]
    frac = sum(h) / len(h) if h else math.nan
    return {"n_tuples": len(h), "n_hold": sum(h), "fraction": frac,
            "holds": bool(h) and frac >= fraction}


def std_censored_at_budget(times: ArrayLike, reached: ArrayLike, budget: float) -> float:
    """Sample std (ddof=1) of T@tau with censored studies counted at the budget."""
    t = np.asarray(times, dtype=float)
    r = np.asarray(reached, dtype=bool)
    x = np.where(r, t, budget)
    x = x[np.isfinite(x)]
    return float(np.std(x, ddof=1)) if x.size > 1 else math.nan
