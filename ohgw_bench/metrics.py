"""The paper's metrics and statistics (docs/design.md section 7), as pure functions of arrays.

No I/O: ``analysis/report.py`` reads study folders through :mod:`ohgw_bench.results` and
feeds the columns of one study (or of paired studies) to these functions.

Definitions used throughout (each function restates the one it implements):

- best-so-far b(t): the best finite validation metric reported at or before t (mode-aware);
  undefined (NaN) before the first report.
- T@tau: the first report time at which b(t) reaches tau (``<= tau`` for min, ``>= tau`` for
  max) within the budget. A study that never does is right-censored at the budget. Medians
  are Kaplan-Meier medians (:func:`km_median`), reported beside the fraction reaching tau;
  paired comparisons use the median of per-seed ratios (:func:`paired_ratio`).
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
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

Mode = str  # "min" or "max"

CRITERIA = {
    "t_tau_reduction": 0.15,
    "p_value": 0.05,
    "final_drop": 0.002,
    "overhead_share": 0.03,
    "extra_peak_memory": 0.10,
    "std_inflation": 0.10,
    "verdict_fraction": 0.75,
    #: the design's power is computed for this true T@tau reduction, and must reach ``power``
    "power_effect": 0.20,
    "power": 0.80,
    #: two-sided level of the intervals that final score and spread are tested with against their
    #: margins (a one-sided 95% bound each way)
    "margin_level": 0.90,
    #: bias test: the shift of the chosen configs' mean, in unit-cube units (fraction of the range)
    "bias_margin": 0.10,
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
    """n, fraction reaching tau, and the Kaplan-Meier median and quartiles of T@tau.

    The quantiles are :func:`km_quantile` (the one definition of a T@tau quantile: tables and
    figures alike); +inf when the estimate never gets there. JSON has no infinity (results.py
    writes it as null), so ``median_not_reached`` says it in so many words.
    """
    t = np.asarray(times, dtype=float)
    r = np.asarray(reached, dtype=bool)
    n = int(t.size)
    med = km_quantile(t, r, 0.5)
    return {
        "n": n,
        "n_reached": int(r.sum()),
        "frac_reached": float(r.mean()) if n else math.nan,
        "median": med,
        "q25": km_quantile(t, r, 0.25),
        "q75": km_quantile(t, r, 0.75),
        "median_not_reached": bool(n and math.isinf(med)),
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

    - ``overhead_share``: the proposal's overhead, warm-start compute over total compute: S / W
      with S the warm-start seconds charged to the study clock and W the study's busy worker
      seconds (which include S). On the simulated clock time is counted FLOPs over a fixed
      throughput, so this is warm-start FLOPs over total FLOPs. The same definition as
      summary.json's ``warm_start.share_of_worker_time``.
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
    share = (total_charged / study_worker_seconds
             if np.isfinite(study_worker_seconds) and study_worker_seconds > 0 else math.nan)
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
        "overhead_share": share,
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


def shift_test(variant: ArrayLike, vanilla: ArrayLike, log: bool, low: float, high: float,
               margin: float = CRITERIA["bias_margin"], level: float = CRITERIA["margin_level"],
               n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Bias test of one hyperparameter: the shift of the mean (variant - vanilla) in unit-cube
    units with a percentile bootstrap interval (each arm resampled on its own), against an
    equivalence margin.

    ``outcome``: ``no bias`` when the ``level`` interval lies inside [-margin, margin] (an
    equivalence test at (1 - level) / 2 each side), ``biased`` when it lies wholly outside,
    ``undecided`` when it crosses a margin, ``not measured`` with fewer than two values per arm.
    """
    lo, hi = to_unconstrained([low, high], log)
    span = float(hi - lo)
    x = (to_unconstrained(variant, log) - lo) / span if span > 0 else np.array([])
    y = (to_unconstrained(vanilla, log) - lo) / span if span > 0 else np.array([])
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    out: dict[str, Any] = {"shift": math.nan, "ci_low": math.nan, "ci_high": math.nan, "level": level,
                           "margin": margin, "n_variant": int(x.size), "n_vanilla": int(y.size),
                           "outcome": "not measured"}
    if x.size < 2 or y.size < 2:
        return out
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    by = y[rng.integers(0, y.size, size=(n_boot, y.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    c_lo, c_hi = (float(q) for q in np.quantile(bx - by, [a, 1.0 - a]))
    out.update(shift=float(x.mean() - y.mean()), ci_low=c_lo, ci_high=c_hi)
    if -margin <= c_lo and c_hi <= margin:
        out["outcome"] = "no bias"
    elif c_lo > margin or c_hi < -margin:
        out["outcome"] = "biased"
    else:
        out["outcome"] = "undecided"
    return out


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


def _km_steps(times: ArrayLike, reached: ArrayLike) -> tuple[np.ndarray, list[Fraction]]:
    """Event times and the exact Kaplan-Meier survival just after each, as fractions.

    The product of (1 - d/n) factors is kept in exact rational arithmetic: in floating point
    30 studies with 15 events give 0.5000000000000001 where the estimate is exactly 1/2, and a
    quantile read with ``<=`` then jumps to the next event (issue 23).
    """
    t = np.asarray(times, dtype=float)
    r = np.asarray(reached, dtype=bool)
    ok = np.isfinite(t)
    t, r = t[ok], r[ok]
    ev_times = np.unique(t[r]) if t.size else np.array([])
    surv: list[Fraction] = []
    s = Fraction(1)
    for e in ev_times:
        at_risk = int(np.sum(t >= e))
        d = int(np.sum((t == e) & r))
        s *= Fraction(at_risk - d, at_risk)
        surv.append(s)
    return ev_times, surv


def km_curve(times: ArrayLike, reached: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of P(T@tau > t): (event times, survival just after each).

    Censored studies (never reached tau) leave the risk set at their censoring time; on a tie
    the event is counted first (the survival-analysis convention). Computed exactly
    (:func:`_km_steps`) and returned as floats.
    """
    ev, surv = _km_steps(times, reached)
    return ev, np.asarray([float(x) for x in surv], dtype=float)


def km_quantile(times: ArrayLike, reached: ArrayLike, q: float) -> float:
    """The q-quantile of T@tau from the Kaplan-Meier estimate: the first event time at which the
    estimated P(T@tau <= t) reaches q, i.e. survival falls to 1 - q or below.

    The comparison is exact (rational survival against the rational 1 - q), so a survival of
    exactly 1/2 gives the median at that event, not the next one. +inf when the estimate never
    falls that far; NaN with no studies.
    """
    if np.asarray(times).size == 0:
        return math.nan
    ev, surv = _km_steps(times, reached)
    target = 1 - Fraction(str(q))
    for e, s in zip(ev, surv):
        if s <= target:
            return float(e)
    return math.inf


def km_median(times: ArrayLike, reached: ArrayLike) -> float:
    """Kaplan-Meier median of T@tau: the first event time where survival falls to 0.5 or below.

    The one definition of "median T@tau" every table and figure uses. +inf when the estimate
    never falls that far (fewer than half reach tau, in effect); NaN with no studies. With one
    common budget every censoring follows every event and this is the lower median with
    censored studies as +inf (with an even count and exactly half reached below it, the earlier
    of the two middle values, not their mean); with differing budgets it is not.
    """
    return km_quantile(times, reached, 0.5)


def _tie(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact ties of paired times, up to round-off (the simulated clock gives many)."""
    return np.isclose(a, b, rtol=1e-12, atol=0.0)


def paired_ratio(variant_t: ArrayLike, variant_reached: ArrayLike, vanilla_t: ArrayLike,
                 vanilla_reached: ArrayLike, budget: float, n_boot: int = 4000, seed: int = 0,
                 level: float = 0.95) -> dict[str, Any]:
    """Paired per-seed T@tau ratios (variant / baseline): median and geometric mean, each with a
    percentile bootstrap interval, and the count of exact ties.

    Censored pairs: a study that never reached tau counts at the budget (a lower bound of its
    time), so a pair with one censored side gives a bounded ratio (``n_one_censored``); a pair
    censored on both sides is kept as a tie, ratio 1 (``n_both_censored``): neither arm got
    there within the budget, so the pair says "no difference seen", and dropping it would
    change the estimand from one comparison to the next. ``n_ties`` counts the pairs whose
    ratio is exactly 1 (both-censored pairs included); ``n_nonzero`` the informative ones the
    Wilcoxon test uses. The geometric mean (exp of the mean log ratio) does not collapse to 1
    when most pairs tie, as the median does. The intervals resample pairs (``n_boot``
    resamples, fixed ``seed``, so the report is reproducible). ``log_ratios`` are the per-pair
    values of the Wilcoxon test of T@tau.
    """
    vt, vr = np.asarray(variant_t, dtype=float), np.asarray(variant_reached, dtype=bool)
    bt, br = np.asarray(vanilla_t, dtype=float), np.asarray(vanilla_reached, dtype=bool)
    vt = np.where(vr, vt, budget)
    bt = np.where(br, bt, budget)
    both = ~vr & ~br
    use = np.isfinite(vt) & np.isfinite(bt) & (vt > 0) & (bt > 0)
    lr = np.where(both[use] | _tie(vt[use], bt[use]), 0.0, np.log(vt[use] / np.where(bt[use] > 0, bt[use], 1.0)))
    nan = math.nan
    out: dict[str, Any] = {"n_pairs": int(vt.size), "n_used": int(lr.size),
                           "n_one_censored": int(np.sum(use & (vr != br))),
                           "n_both_censored": int(np.sum(use & both)),
                           "n_ties": int(np.sum(lr == 0.0)), "n_nonzero": int(np.count_nonzero(lr)),
                           "median": nan, "ci_low": nan, "ci_high": nan,
                           "geo_mean": nan, "geo_ci_low": nan, "geo_ci_high": nan, "level": level,
                           "log_ratios": lr.tolist()}
    if lr.size == 0:
        return out
    out["median"] = float(np.exp(np.median(lr)))
    out["geo_mean"] = float(np.exp(np.mean(lr)))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, lr.size, size=(n_boot, lr.size))
    a = (1.0 - level) / 2.0
    out["ci_low"], out["ci_high"] = (float(np.exp(q)) for q in np.quantile(np.median(lr[idx], axis=1), [a, 1.0 - a]))
    out["geo_ci_low"], out["geo_ci_high"] = (float(np.exp(q)) for q in np.quantile(np.mean(lr[idx], axis=1), [a, 1.0 - a]))
    return out


def bootstrap_pairs(stat: Any, x: ArrayLike, y: ArrayLike, level: float, n_boot: int = 2000,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(x, y)`` over resampled pairs (rows kept together).

    Pairs with a non-finite side are left out; (NaN, NaN) with fewer than two pairs or when the
    statistic is never finite.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if xa.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, xa.size, size=(n_boot, xa.size))
    vals = np.array([stat(xa[i], ya[i]) for i in idx], dtype=float)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(vals, [a, 1.0 - a])
    return float(lo), float(hi)


def _signed_rank_p(d: np.ndarray) -> np.ndarray:
    """Two-sided signed-rank p per row of ``d`` by the normal approximation with tie correction
    (vectorised for the power simulation; zeros dropped as in :func:`paired_wilcoxon`)."""
    from scipy.stats import norm, rankdata

    out = np.ones(d.shape[0])
    for i, row in enumerate(d):
        row = row[row != 0]
        n = row.size
        if n == 0:
            continue
        r = rankdata(np.abs(row))
        w = float(np.sum(r[row > 0]))
        _, counts = np.unique(r, return_counts=True)
        var = n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(counts**3 - counts)) / 48.0
        if var <= 0:
            continue
        z = (w - n * (n + 1) / 4.0) / math.sqrt(var)
        out[i] = 2.0 * norm.sf(abs(z))
    return out


def t_tau_power(log_ratios: ArrayLike, m: int, effect: float = CRITERIA["power_effect"],
                alpha: float = CRITERIA["p_value"], target: float | None = 1.0 - CRITERIA["t_tau_reduction"],
                n_sim: int = 400, seed: int = 0, n: int | None = None) -> float:
    """Power of the T@tau criterion for a true reduction of ``effect``, by simulation.

    Each simulated study draws as many pairs as observed from the observed log ratios, centred
    on their median and shifted to log(1 - effect) (the seeds' own spread around a true 20%
    reduction of the median ratio, the criterion's estimand; centring on the median keeps the
    tied pairs together at the shifted value), and counts as a success when the median ratio is <= ``target`` and
    the signed-rank p is below alpha / m (the first Holm step, a lower bound of Holm's power).
    Censoring is not re-simulated. 0 when p < alpha / m is not attainable with the pairs at
    hand (exact test); NaN without pairs.

    Planning a design (``n``): the simulated studies draw ``n`` pairs instead of as many as
    observed, so a pilot's log ratios give the power of an ``n``-seed study; ``target=None``
    drops the median condition (power to *detect* the change: the test alone).
    """
    lr = np.asarray(log_ratios, dtype=float)
    lr = lr[np.isfinite(lr)]
    if lr.size == 0:
        return math.nan
    n = int(lr.size) if n is None else int(n)
    if best_holm_p(n, m) >= alpha:
        return 0.0
    resid = lr - np.median(lr)
    rng = np.random.default_rng(seed)
    d = resid[rng.integers(0, lr.size, size=(n_sim, n))] + math.log(1.0 - effect)
    ok = _signed_rank_p(d) < alpha / max(m, 1)
    if target is not None:
        ok &= np.median(d, axis=1) <= math.log(target)
    return float(ok.mean())


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided exact Wilcoxon signed-rank p with ``n`` informative pairs: 2 / 2^n."""
    return min(1.0, 2.0 / 2.0 ** n) if n > 0 else 1.0


def best_holm_p(n: int, m: int) -> float:
    """Best Holm-adjusted p any of ``m`` tests with ``n`` informative (nonzero) pairs each can
    reach: m * 2 / 2^n (ties carry no sign, so they do not count).

    Holm multiplies the smallest p by m and never lowers a larger one below it.
    """
    return min(1.0, max(m, 1) * min_wilcoxon_p(n))


def seeds_needed(m: int, alpha: float = CRITERIA["p_value"]) -> int:
    """Fewest paired seeds for which a Holm-adjusted p below ``alpha`` is attainable with m tests."""
    n = 1
    while best_holm_p(n, m) >= alpha:
        n += 1
    return n


def metric_resolution(values: ArrayLike) -> float:
    """The smallest positive gap between distinct observed values (e.g. 1/400 for an error rate
    on 400 validation examples); NaN with fewer than two distinct values. A continuous metric
    (a loss) gives a tiny gap, so only a grid-valued metric flags a criterion as too fine."""
    x = np.asarray(values, dtype=float)
    x = np.unique(np.round(x[np.isfinite(x)], 12))
    if x.size < 2:
        return math.nan
    return float(np.min(np.diff(x)))


STATUSES = ("holds", "does not hold", "inconclusive", "not applicable")
#: one criterion's outcome: its interval (or value) within the margin, beyond it, straddling it,
#: or no data to evaluate it with
OUTCOMES = ("met", "failed", "undecided", "not measured")
CRITERION_NAMES = ("t_tau", "final", "compute", "memory", "std")


def margin_outcome(ci: Sequence[float], margin: float) -> str:
    """``met`` when the interval lies wholly at or below ``margin``, ``failed`` when wholly
    above, ``undecided`` when it straddles it, ``not measured`` when it is not finite."""
    lo, hi = (_fnum(x) for x in ci)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "not measured"
    if hi <= margin:
        return "met"
    if lo > margin:
        return "failed"
    return "undecided"


def success_criteria(*, ratio: Mapping[str, Any], p_t_tau: float, p_attainable: float,
                     vanilla_frac_reached: float, final_drop: float, final_resolution: float,
                     final_vanilla: float, overhead_share: float, extra_peak_memory: float,
                     std_vanilla: float, std_variant: float, applicable: bool = True,
                     final_drop_ci: Sequence[float] | None = None,
                     std_inflation_ci: Sequence[float] | None = None, power: float = math.nan,
                     thresholds: Mapping[str, float] = CRITERIA) -> dict[str, Any]:
    """The proposal's criteria for one comparison in one tuple: each criterion's outcome and a
    ``status`` (docs/results-format.md, "Statuses", states the same rules).

    Outcomes (``outcome[name]``, one of :data:`OUTCOMES`):

    - t_tau: ``met`` when the paired median ratio is <= 1 - 15% and the Holm-adjusted p < alpha;
      ``failed`` when its 95% interval lies wholly above 0.85 (the seeds exclude the claimed
      reduction); else ``undecided``.
    - final: the relative drop of the median final validation score against its 0.2% margin,
      by its ``margin_level`` (90%) bootstrap interval: non-inferiority ``met`` when the interval
      lies at or below the margin, ``failed`` when above it, else ``undecided``
      (``final_below_resolution`` flags a margin finer than the metric's resolution).
    - std: the inflation of the std of T@tau (censored at the budget) against +10%, the same way.
    - compute: overhead share S/W <= 3% (the claim's threshold); memory: study peak RSS over
      the baseline's <= +10%. Deterministic counts, compared as values.

    An interval not given falls back to the point value (a degenerate interval). A criterion
    without data is ``not measured`` (never ``failed``).

    ``status``, first rule that applies wins:

    1. ``not applicable``: the warm-start never ran (``applicable`` false).
    2. ``inconclusive`` (too few seeds): the best attainable Holm p with the informative pairs
       is >= alpha, or vanilla reaches tau in fewer than half its seeds.
    3. ``holds``: every criterion ``met``.
    4. ``inconclusive`` (underpowered): the computed power for a true 20% reduction is below
       80%, unless T@tau ``failed`` (its interval already excludes the claimed reduction).
    5. ``does not hold``: some criterion ``failed``.
    6. ``inconclusive``: otherwise (a criterion undecided or not measured).

    ``status_t_tau`` applies the same rules to T@tau alone, ``status_cost`` to compute and
    memory alone (``holds`` / ``does not hold`` / ``inconclusive`` when not measured).
    """
    th = thresholds
    alpha = th["p_value"]
    target = 1.0 - th["t_tau_reduction"]
    med = _fnum(ratio.get("median"))
    ci_low, ci_high = _fnum(ratio.get("ci_low")), _fnum(ratio.get("ci_high"))
    p_ok = bool(np.isfinite(p_t_tau) and p_t_tau < alpha)
    excluded = bool(np.isfinite(ci_low) and ci_low > target)
    if not np.isfinite(med):
        o_time = "not measured"
    elif p_ok and med <= target:
        o_time = "met"
    elif excluded:
        o_time = "failed"
    else:
        o_time = "undecided"
    infl = std_inflation(std_vanilla, std_variant)
    fci = list(final_drop_ci) if final_drop_ci is not None else [final_drop, final_drop]
    sci = list(std_inflation_ci) if std_inflation_ci is not None else [infl, infl]
    outcome = {
        "t_tau": o_time,
        "final": margin_outcome(fci, th["final_drop"]),
        "compute": margin_outcome([overhead_share, overhead_share], th["overhead_share"]),
        "memory": margin_outcome([extra_peak_memory, extra_peak_memory], th["extra_peak_memory"]),
        "std": margin_outcome(sci, th["std_inflation"]),
    }
    fine = bool(np.isfinite(final_resolution) and np.isfinite(final_vanilla)
                and th["final_drop"] * abs(final_vanilla) < final_resolution)
    too_few = bool(not (np.isfinite(p_attainable) and p_attainable < alpha)
                   or not (np.isfinite(vanilla_frac_reached) and vanilla_frac_reached >= 0.5))
    low_power = bool(np.isfinite(power) and power < th["power"])
    underpowered = too_few or low_power
    out: dict[str, Any] = {
        "t_tau_ratio": med,
        "t_tau_ratio_ci": [ci_low, ci_high],
        "t_tau_geo_mean": _fnum(ratio.get("geo_mean")),
        "t_tau_geo_mean_ci": [_fnum(ratio.get("geo_ci_low")), _fnum(ratio.get("geo_ci_high"))],
        "p_t_tau": p_t_tau,
        "p_attainable": p_attainable,
        "power": power,
        "final_drop": final_drop,
        "final_drop_ci": [_fnum(x) for x in fci],
        "final_resolution": final_resolution,
        "final_below_resolution": fine,
        "overhead_share": overhead_share,
        "extra_peak_memory": extra_peak_memory,
        "std_inflation": infl,
        "std_inflation_ci": [_fnum(x) for x in sci],
        "outcome": outcome,
        "failed": [k for k in CRITERION_NAMES if outcome[k] == "failed"],
        "not_measured": [k for k in CRITERION_NAMES if outcome[k] == "not measured"],
        "t_tau_effect_excluded": excluded,
        "too_few_seeds": too_few,
        "underpowered": underpowered,
        "memory_measured": outcome["memory"] != "not measured",
    }
    for k in CRITERION_NAMES:
        out[f"ok_{k}"] = outcome[k] == "met"
    out["holds"] = bool(applicable) and all(v == "met" for v in outcome.values())

    def decide(names: Sequence[str]) -> str:
        got = [outcome[k] for k in names]
        if not applicable:
            return "not applicable"
        if too_few:
            return "inconclusive"
        if all(g == "met" for g in got):
            return "holds"
        if low_power and not ("t_tau" in names and outcome["t_tau"] == "failed"):
            return "inconclusive"
        if "failed" in got:
            return "does not hold"
        return "inconclusive"

    out["status"] = decide(CRITERION_NAMES)
    out["status_t_tau"] = decide(("t_tau",))
    cost = [outcome["compute"], outcome["memory"]]
    out["status_cost"] = ("not applicable" if not applicable else "holds" if all(c == "met" for c in cost)
                          else "does not hold" if "failed" in cost else "inconclusive")
    return out


def _fnum(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def std_inflation(std_vanilla: float, std_variant: float) -> float:
    """std_variant / std_vanilla - 1; 0 when both are 0, +inf when only vanilla's is 0."""
    if not (np.isfinite(std_vanilla) and np.isfinite(std_variant)):
        return math.nan
    if std_vanilla > 0:
        return std_variant / std_vanilla - 1.0
    return 0.0 if std_variant == 0 else math.inf


def verdict(statuses: Sequence[str], fraction: float = CRITERIA["verdict_fraction"]) -> dict[str, Any]:
    """Overall verdict of one arm over tuples, from each tuple's status.

    The fraction is over applicable tuples. ``status``: ``holds`` when at least ``fraction``
    hold; ``inconclusive`` when that is still reachable if every inconclusive tuple held;
    ``does not hold`` otherwise; ``not applicable`` when no tuple is.
    """
    st = [str(x) for x in statuses]
    n_hold = st.count("holds")
    n_inc = st.count("inconclusive")
    n_na = st.count("not applicable")
    n_app = len(st) - n_na
    frac = n_hold / n_app if n_app else math.nan
    if n_app == 0:
        status = "not applicable"
    elif frac >= fraction:
        status = "holds"
    elif (n_hold + n_inc) / n_app >= fraction:
        status = "inconclusive"
    else:
        status = "does not hold"
    return {"n_tuples": len(st), "n_applicable": n_app, "n_hold": n_hold, "n_inconclusive": n_inc,
            "n_does_not_hold": st.count("does not hold"), "n_not_applicable": n_na, "fraction": frac,
            "holds": status == "holds", "status": status}


def std_censored_at_budget(times: ArrayLike, reached: ArrayLike, budget: float) -> float:
    """Sample std (ddof=1) of T@tau with censored studies counted at the budget."""
    t = np.asarray(times, dtype=float)
    r = np.asarray(reached, dtype=bool)
    x = np.where(r, t, budget)
    x = x[np.isfinite(x)]
    return float(np.std(x, ddof=1)) if x.size > 1 else math.nan
