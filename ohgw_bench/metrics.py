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
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

Mode = str  # "min" or "max"

CRITERIA = {
    "t_tau_reduction": 0.15,
    "p_value": 0.05,
    "final_drop": 0.002,
    "overhead_share": 0.05,
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


def km_curve(times: ArrayLike, reached: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of P(T@tau > t): (event times, survival just after each).

    Censored studies (never reached tau) leave the risk set at their censoring time; on a tie
    the event is counted first (the survival-analysis convention).
    """
    t = np.asarray(times, dtype=float)
    r = np.asarray(reached, dtype=bool)
    ok = np.isfinite(t)
    t, r = t[ok], r[ok]
    if t.size == 0:
        return np.array([]), np.array([])
    ev_times = np.unique(t[r])
    surv = []
    s = 1.0
    for e in ev_times:
        at_risk = int(np.sum(t >= e))
        d = int(np.sum((t == e) & r))
        s *= 1.0 - d / at_risk
        surv.append(s)
    return ev_times, np.asarray(surv, dtype=float)


def km_median(times: ArrayLike, reached: ArrayLike) -> float:
    """Kaplan-Meier median of T@tau: the first event time where survival falls to 0.5 or below.

    +inf when the estimate never falls that far (fewer than half reach tau, in effect); NaN
    with no studies. With one common budget every censoring follows every event and this is
    the plain median with censored studies as +inf; with differing budgets it is not.
    """
    ev, surv = km_curve(times, reached)
    if np.asarray(times).size == 0:
        return math.nan
    below = np.flatnonzero(surv <= 0.5)
    return float(ev[below[0]]) if below.size else math.inf


def paired_ratio(variant_t: ArrayLike, variant_reached: ArrayLike, vanilla_t: ArrayLike,
                 vanilla_reached: ArrayLike, budget: float, n_boot: int = 4000, seed: int = 0,
                 level: float = 0.95) -> dict[str, Any]:
    """Paired median of per-seed T@tau ratios (variant / baseline) with a bootstrap interval.

    Censored pairs: a study that never reached tau counts at the budget (a lower bound of its
    time), so a pair with one censored side gives a bounded ratio (``n_one_censored``); a pair
    censored on both sides carries no information about the ratio and is dropped
    (``n_both_censored``). The interval is the percentile bootstrap of the median over pairs
    (``n_boot`` resamples, fixed ``seed`` so the report is reproducible). ``log_ratios`` are the
    per-pair values the Wilcoxon test of T@tau uses.
    """
    vt, vr = np.asarray(variant_t, dtype=float), np.asarray(variant_reached, dtype=bool)
    bt, br = np.asarray(vanilla_t, dtype=float), np.asarray(vanilla_reached, dtype=bool)
    vt = np.where(vr, vt, budget)
    bt = np.where(br, bt, budget)
    both = ~vr & ~br
    use = ~both & np.isfinite(vt) & np.isfinite(bt) & (vt > 0) & (bt > 0)
    lr = np.log(vt[use] / bt[use])
    out: dict[str, Any] = {"n_pairs": int(vt.size), "n_used": int(lr.size),
                           "n_one_censored": int(np.sum(use & (vr != br))), "n_both_censored": int(both.sum()),
                           "median": math.nan, "ci_low": math.nan, "ci_high": math.nan, "level": level,
                           "log_ratios": lr.tolist()}
    if lr.size == 0:
        return out
    out["median"] = float(np.exp(np.median(lr)))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, lr.size, size=(n_boot, lr.size))
    meds = np.median(lr[idx], axis=1)
    a = (1.0 - level) / 2.0
    out["ci_low"], out["ci_high"] = (float(np.exp(q)) for q in np.quantile(meds, [a, 1.0 - a]))
    return out


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided exact Wilcoxon signed-rank p with ``n`` informative pairs: 2 / 2^n."""
    return min(1.0, 2.0 / 2.0 ** n) if n > 0 else 1.0


def best_holm_p(n: int, m: int) -> float:
    """Best Holm-adjusted p any of ``m`` tests with ``n`` pairs each can reach: m * 2 / 2^n.

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


def success_criteria(*, ratio: Mapping[str, Any], p_t_tau: float, p_attainable: float,
                     vanilla_frac_reached: float, final_drop: float, final_resolution: float,
                     final_vanilla: float, overhead_share: float, extra_peak_memory: float,
                     std_vanilla: float, std_variant: float, applicable: bool = True,
                     thresholds: Mapping[str, float] = CRITERIA) -> dict[str, Any]:
    """The proposal's criteria for one comparison in one tuple, each criterion and a ``status``.

    - T@tau: paired median ratio <= 1 - 15% and Holm-adjusted p < alpha.
    - final: relative drop of the median final validation score <= 0.2%; flagged
      (``final_below_resolution``) when that threshold is finer than the metric's resolution.
    - compute: overhead share (S/W) <= 5%; memory: study peak RSS over the baseline's <= +10%;
      std: std of T@tau (censored at the budget) inflated by <= 10%.

    ``status``: ``not applicable`` when the warm-start never ran (``applicable`` false);
    ``holds`` when every criterion holds; ``does not hold`` when a non-statistical criterion
    fails, or when significance was attainable and the seeds exclude the claimed effect (the 95%
    interval of the paired T@tau ratio lies wholly above ``1 - t_tau_reduction``); ``inconclusive``
    when significance was not attainable (best Holm p >= alpha), the baseline reaches tau in
    fewer than half its seeds (no T@tau to compare), the study peak memory was not recorded
    (folders written before ``peak_rss_bytes``), or T@tau's criterion fails while its interval
    still reaches the claimed reduction (the seeds neither confirm nor exclude it). Any other
    missing input fails its criterion.
    """
    th = thresholds
    alpha = th["p_value"]
    med = _fnum(ratio.get("median"))
    p_ok = bool(np.isfinite(p_t_tau) and p_t_tau < alpha)
    c_time = bool(p_ok and np.isfinite(med) and med <= 1.0 - th["t_tau_reduction"])
    ci_low = _fnum(ratio.get("ci_low"))
    #: the data exclude the claimed reduction: even the interval's low end is above the target ratio
    excluded = bool(np.isfinite(ci_low) and ci_low > 1.0 - th["t_tau_reduction"])
    c_final = bool(np.isfinite(final_drop) and final_drop <= th["final_drop"])
    c_compute = bool(np.isfinite(overhead_share) and overhead_share <= th["overhead_share"])
    c_mem = bool(np.isfinite(extra_peak_memory) and extra_peak_memory <= th["extra_peak_memory"])
    infl = std_inflation(std_vanilla, std_variant)
    c_std = bool(np.isfinite(infl) and infl <= th["std_inflation"])
    fine = bool(np.isfinite(final_resolution) and np.isfinite(final_vanilla)
                and th["final_drop"] * abs(final_vanilla) < final_resolution)
    underpowered = bool(not (np.isfinite(p_attainable) and p_attainable < alpha)
                        or not (np.isfinite(vanilla_frac_reached) and vanilla_frac_reached >= 0.5))
    mem_measured = bool(np.isfinite(extra_peak_memory))
    out: dict[str, Any] = {
        "t_tau_ratio": med,
        "t_tau_ratio_ci": [_fnum(ratio.get("ci_low")), _fnum(ratio.get("ci_high"))],
        "p_t_tau": p_t_tau,
        "p_attainable": p_attainable,
        "final_drop": final_drop,
        "final_resolution": final_resolution,
        "final_below_resolution": fine,
        "overhead_share": overhead_share,
        "extra_peak_memory": extra_peak_memory,
        "std_inflation": infl,
        "ok_t_tau": c_time,
        "t_tau_effect_excluded": excluded,
        "ok_final": c_final,
        "ok_compute": c_compute,
        "ok_memory": c_mem,
        "ok_std": c_std,
        "underpowered": underpowered,
        "memory_measured": mem_measured,
    }
    out["holds"] = bool(applicable) and all(out[k] for k in ("ok_t_tau", "ok_final", "ok_compute", "ok_memory", "ok_std"))
    if not applicable:
        status = "not applicable"
    elif out["holds"]:
        status = "holds"
    elif not (out["ok_final"] and out["ok_compute"] and out["ok_std"] and (c_mem or not mem_measured)):
        status = "does not hold"
    elif underpowered or not mem_measured:
        status = "inconclusive"
    elif out["ok_t_tau"] or excluded:
        status = "does not hold"  # T@tau settled (met, or its claimed reduction excluded); another criterion failed
    else:
        status = "inconclusive"
    out["status"] = status
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
