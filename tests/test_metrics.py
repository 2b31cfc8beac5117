"""ohgw_bench.metrics against closed forms and independent computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from ohgw_bench import metrics


def test_best_so_far_is_mode_aware_and_skips_non_finite() -> None:
    t = [3.0, 1.0, 2.0, 4.0, 5.0]
    v = [0.5, 0.9, float("nan"), 0.7, 0.2]
    ts, b = metrics.best_so_far(t, v, "min")
    assert ts.tolist() == [1.0, 3.0, 4.0, 5.0]
    assert b.tolist() == [0.9, 0.5, 0.5, 0.2]
    _, bmax = metrics.best_so_far(t, v, "max")
    assert bmax.tolist() == [0.9, 0.9, 0.9, 0.9]
    with pytest.raises(ValueError):
        metrics.best_so_far(t, v, "maximise")


def test_incumbent_keeps_earliest_on_ties() -> None:
    ts, inc = metrics.incumbent_indices([1, 2, 3, 4], [0.5, 0.5, 0.4, 0.4], "min")
    assert inc.tolist() == [0, 0, 2, 2]
    out = metrics.final_best([1, 2, 3, 4], [0.5, 0.5, 0.4, 0.4], [10, 20, 30, 40], "min")
    assert out == {"best": 0.4, "test": 30.0, "time": 3.0}


def test_final_best_ignores_reports_after_budget() -> None:
    out = metrics.final_best([1, 2, 9], [0.3, 0.6, 0.9], [1, 2, 3], "max", budget=5)
    assert out == {"best": 0.6, "test": 2.0, "time": 2.0}
    empty = metrics.final_best([], [], [], "min")
    assert math.isnan(empty["best"]) and math.isnan(empty["test"])


def test_step_at_is_right_continuous_and_nan_before_first() -> None:
    out = metrics.step_at([1.0, 3.0], [5.0, 2.0], [0.0, 1.0, 2.9, 3.0, 10.0])
    assert np.isnan(out[0])
    assert out[1:].tolist() == [5.0, 5.0, 2.0, 2.0]


def test_time_to_target() -> None:
    t, v = [1, 2, 3, 4], [0.9, 0.6, 0.45, 0.3]
    assert metrics.time_to_target(t, v, 0.5, "min") == (3.0, True)
    assert metrics.time_to_target(t, v, 0.5, "min", budget=2.5) == (2.5, False)
    assert metrics.time_to_target(t, v, 0.1, "min") == (4.0, False)
    assert metrics.time_to_target(t, [0.1, 0.5, 0.8, 0.2], 0.8, "max") == (3.0, True)
    assert metrics.time_to_target(t, v, 0.9, "min") == (1.0, True)
    t_, r = metrics.time_to_target([], [], 0.5, "min")
    assert math.isnan(t_) and not r


def test_censored_summary_median_rule() -> None:
    # the Kaplan-Meier quantiles (one definition for tables and figures): first event time with
    # survival <= 1 - q; odd n: 2 of 3 reached -> finite median; 1 of 3 -> not reached
    s = metrics.censored_summary([10, 20, 99], [True, True, False])
    assert (s["median"], s["q25"], s["frac_reached"]) == (20.0, 10.0, pytest.approx(2 / 3))
    assert math.isinf(s["q75"])
    assert not s["median_not_reached"]
    nr = metrics.censored_summary([10, 99, 99], [True, False, False])
    assert math.isinf(nr["median"]) and nr["median_not_reached"]
    # even n: exactly half reached -> survival exactly 1/2 at the second event: the median is there
    assert metrics.censored_summary([1, 2, 9, 9], [True, True, False, False])["median"] == 2.0
    s = metrics.censored_summary([1, 2, 3, 9], [True, True, True, False])
    assert s["median"] == 2.0 and s["q25"] == 1.0 and s["q75"] == 3.0
    assert s["n_reached"] == 3 and s["n"] == 4
    assert s["median"] == metrics.km_median([1, 2, 3, 9], [True, True, True, False])


def test_km_median_exact_half_is_not_pushed_to_the_next_event() -> None:
    # issue 23: 30 seeds, 21 reach tau (with ties), 9 censored at the budget. The float product
    # of (1 - d/n) is 0.5000000000000001 after the 15th event (t = 11), so "surv <= 0.5" read
    # the median one event late (t = 12). The digits-loss/asha/none arm of reports/cpu has this
    # tie pattern (its median is 1.47, published as 1.83).
    times = [1, 2, 3, 4, 4, 5, 6, 6, 7, 7, 8, 8, 9, 10, 11, 12, 13, 14, 15, 15, 16] + [30] * 9
    reached = [True] * 21 + [False] * 9
    ev, surv = metrics.km_curve(times, reached)
    assert surv[list(ev).index(11)] == pytest.approx(0.5, abs=1e-12)
    assert metrics.km_median(times, reached) == 11.0
    # every quantile is exact the same way: 10 of 30 events -> survival exactly 2/3 at t = 7 (the
    # 10th event), 3/4 is first crossed at t = 6 (8 events: 22/30 <= 0.75)
    assert metrics.km_quantile(times, reached, 1 / 3) == 7.0
    assert metrics.km_quantile(times, reached, 0.25) == 6.0
    assert math.isinf(metrics.km_quantile(times, reached, 0.75))
    # shuffled input, same answer
    order = np.random.default_rng(1).permutation(len(times))
    assert metrics.km_median(np.array(times)[order], np.array(reached)[order]) == 11.0


def test_normalized_auc_closed_form() -> None:
    # min: w = 1.0, beta = 0.0; b = 0.8 on [2, 5), 0.3 on [5, 10]; budget 10
    t, v = [2.0, 5.0, 7.0, 12.0], [0.8, 0.3, 0.5, 0.0]
    auc = metrics.normalized_auc(t, v, "min", 10.0, best_ref=0.0, worst_ref=1.0)
    assert auc == pytest.approx((3 * 0.2 + 5 * 0.7) / 10)
    # max mode with the mirrored values gives the same number
    mirrored = metrics.normalized_auc(t, [1 - x for x in v], "max", 10.0, best_ref=1.0, worst_ref=0.0)
    assert mirrored == pytest.approx(auc)
    # a curve at the best value from time 0 scores 1; no report scores 0
    assert metrics.normalized_auc([0.0], [0.0], "min", 10.0, 0.0, 1.0) == 1.0
    assert metrics.normalized_auc([], [], "min", 10.0, 0.0, 1.0) == 0.0
    assert math.isnan(metrics.normalized_auc([1.0], [0.5], "min", 0.0, 0.0, 1.0))


def test_auc_references() -> None:
    assert metrics.auc_references([1.0, 1.3, 0.9], [0.2, 0.5, 1.3, np.nan], "min") == (0.2, 1.3)
    assert metrics.auc_references([0.1, 0.3], [0.9, 0.3], "max") == (0.9, 0.1)


def test_relative_drop() -> None:
    assert metrics.relative_drop(0.90, 0.891, "max") == pytest.approx(0.01)
    assert metrics.relative_drop(0.50, 0.51, "min") == pytest.approx(0.02)
    assert metrics.relative_drop(0.50, 0.49, "min") == pytest.approx(-0.02)
    assert math.isnan(metrics.relative_drop(0.0, 0.1, "min"))


def test_overhead() -> None:
    o = metrics.overhead(ws_seconds=[2.0, 4.0], ws_flops=[3e9, 6e9], ws_peak=[1.2e6, 1.5e6],
                         step_seconds=[1.0, 1.0], step_flops=[1e9, 2e9], step_peak=[1e6, 1e6],
                         charged_seconds=[1.0, 3.0], study_worker_seconds=104.0)
    assert o["charged_seconds"] == 4.0
    assert o["overhead_share"] == pytest.approx(4.0 / 104.0)  # S/W: warm-start compute over all compute
    assert o["seconds_per_step"] == pytest.approx(3.0)
    assert o["flops_per_step"] == pytest.approx(3.0)
    assert o["peak_per_step"] == pytest.approx(1.35)
    assert o["extra_peak_memory"] == pytest.approx(0.5)
    low = metrics.overhead([1.0], [1.0], [0.5e6], [1.0], [1.0], [1e6], [1.0], 11.0)
    assert low["extra_peak_memory"] == 0.0 and low["overhead_share"] == pytest.approx(1.0 / 11.0)


def test_gaussian_kl_closed_form() -> None:
    assert metrics.gaussian_kl(0.0, 1.0, 0.0, 1.0) == 0.0
    assert metrics.gaussian_kl(1.0, 1.0, 0.0, 1.0) == pytest.approx(0.5)
    assert metrics.gaussian_kl(0.0, 4.0, 0.0, 1.0) == pytest.approx(0.5 * (math.log(1 / 4) + 4 - 1))
    # against numerical integration of p log(p/q)
    x = np.linspace(-30, 30, 200001)
    p, q = stats.norm(0.3, 1.5), stats.norm(-0.2, 0.8)
    numeric = np.trapezoid(p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), x)
    assert metrics.gaussian_kl(0.3, 1.5**2, -0.2, 0.8**2) == pytest.approx(numeric, rel=1e-6)


def test_kl_shift_in_log_space_and_unit_shift() -> None:
    a = np.array([-1.0, 0.0, 1.0])      # mean 0, var 1
    b = np.array([0.0, 2.0, 4.0])       # mean 2, var 4
    out = metrics.kl_shift(np.exp(b), np.exp(a), log=True, low=math.exp(-5), high=math.exp(5))
    assert out["kl"] == pytest.approx(0.5 * (math.log(1 / 4) + (4 + 4) / 1 - 1))
    assert out["mean_shift"] == pytest.approx(2 / 10)
    lin = metrics.kl_shift(b, a, log=False, low=-5, high=5)
    assert lin["kl"] == pytest.approx(out["kl"])
    # identical constant samples: the variance floor keeps KL finite and zero
    same = metrics.kl_shift([0.1] * 4, [0.1] * 4, log=False, low=0.0, high=1.0)
    assert same["kl"] == 0.0 and same["var_variant"] == pytest.approx(1e-6)
    assert math.isnan(metrics.kl_shift([0.1], [0.1, 0.2], log=False, low=0.0, high=1.0)["kl"])


def exact_two_sided(d: list[float]) -> float:
    d = np.array([x for x in d if x != 0])
    ranks = stats.rankdata(np.abs(d))
    w = ranks[d > 0].sum()
    mean = ranks.sum() / 2
    all_w = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=d.size)]
    return sum(abs(x - mean) >= abs(w - mean) - 1e-12 for x in all_w) / len(all_w)


def test_paired_wilcoxon_exact() -> None:
    base = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    out = metrics.paired_wilcoxon(base - [1, 2, 3, 4, 5], base)
    assert out["p"] == pytest.approx(2 / 32) and out["n_pairs"] == 5
    d = [-1.0, 2.0, -3.0, -4.0, -6.0, 7.5, -9.0]
    out = metrics.paired_wilcoxon(np.array(d), np.zeros(7))
    assert out["p"] == pytest.approx(exact_two_sided(d))
    assert out["statistic"] == pytest.approx(2 + 6)  # the smaller rank sum: ranks of +2 and +7.5
    # zeros are dropped, NaN pairs are left out
    out = metrics.paired_wilcoxon([1.0, 2.0, 3.0, np.nan], [1.0, 1.0, 2.0, 5.0])
    assert out["n_pairs"] == 3 and out["n_nonzero"] == 2 and out["p"] == pytest.approx(exact_two_sided([1, 1]))
    assert metrics.paired_wilcoxon([1.0, 2.0], [1.0, 2.0])["p"] == 1.0
    assert math.isnan(metrics.paired_wilcoxon([np.nan], [1.0])["p"])


def test_holm_by_hand_and_against_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*.005=.02, 3*.01=.03, 2*.03=.06, max(.06, .04)=.06
    assert metrics.holm(p).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(1)
    for _ in range(4):
        q = rng.uniform(0, 0.3, size=rng.integers(3, 12))
        assert metrics.holm(q) == pytest.approx(multipletests(q, method="holm")[1])
    out = metrics.holm([0.02, np.nan, 0.5])
    assert out[0] == pytest.approx(0.04) and np.isnan(out[1]) and out[2] == pytest.approx(0.5)
    assert metrics.holm([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_survival_and_rung_rank() -> None:
    s = metrics.survival_per_rung([1, 1, 3, 9, np.nan], [1, 3, 9])
    assert s.tolist() == [1.0, 0.5, 0.25]
    r = metrics.rung_rank([0.3, 0.1, 0.2, np.nan], "min")
    assert r[:3].tolist() == [0.0, 1.0, 0.5] and np.isnan(r[3])
    assert metrics.rung_rank([0.3, 0.1, 0.3], "max").tolist() == [0.75, 0.0, 0.75]
    assert metrics.rung_rank([0.4], "min").tolist() == [1.0]


def test_std_and_inflation() -> None:
    assert metrics.std_censored_at_budget([10, 20, 99], [True, True, False], 30.0) == pytest.approx(
        np.std([10, 20, 30], ddof=1))
    assert metrics.std_inflation(2.0, 2.2) == pytest.approx(0.1)
    assert metrics.std_inflation(0.0, 0.0) == 0.0
    assert math.isinf(metrics.std_inflation(0.0, 1.0))


def criteria(**over: float) -> dict:
    args = dict(ratio={"median": 0.8, "ci_low": 0.7, "ci_high": 0.9}, p_t_tau=0.01, p_attainable=0.001,
                vanilla_frac_reached=1.0, final_drop=0.001, final_resolution=1e-6, final_vanilla=0.5,
                overhead_share=0.02, extra_peak_memory=0.05, std_vanilla=10.0, std_variant=10.5)
    args.update(over)
    return metrics.success_criteria(**args)


def test_success_criteria_each_threshold() -> None:
    ok = criteria()
    assert ok["holds"] and ok["status"] == "holds" and ok["t_tau_ratio"] == pytest.approx(0.8)
    assert ok["std_inflation"] == pytest.approx(0.05)
    assert not criteria(ratio={"median": 0.86})["ok_t_tau"]
    assert criteria(ratio={"median": 0.85})["ok_t_tau"]
    assert not criteria(p_t_tau=0.05)["holds"]
    # significance attainable but not reached: the interval [0.7, 0.9] still holds a 15% reduction
    assert criteria(p_t_tau=0.05)["status"] == "inconclusive"
    # ... while an interval wholly above 0.85 excludes it
    no_effect = criteria(ratio={"median": 0.98, "ci_low": 0.9, "ci_high": 1.05}, p_t_tau=0.6)
    assert no_effect["t_tau_effect_excluded"] and no_effect["status"] == "does not hold"
    # significantly faster, but by less than claimed (interval above 0.85): does not hold
    assert criteria(ratio={"median": 0.9, "ci_low": 0.87, "ci_high": 0.93})["status"] == "does not hold"
    assert not criteria(final_drop=0.0021)["ok_final"]
    assert criteria(final_drop=-0.01)["ok_final"]
    assert not criteria(overhead_share=0.031)["ok_compute"]  # the claim's 3%
    assert criteria(overhead_share=0.03)["ok_compute"]
    assert not criteria(extra_peak_memory=0.11)["ok_memory"]
    assert not criteria(std_variant=11.1)["ok_std"]
    assert not criteria(overhead_share=float("nan"))["holds"]
    assert not criteria(ratio={"median": math.nan})["ok_t_tau"]


def test_statuses() -> None:
    assert criteria(p_t_tau=0.125, p_attainable=0.125)["status"] == "inconclusive"
    assert criteria(p_t_tau=0.2, vanilla_frac_reached=0.4)["status"] == "inconclusive"
    # too few seeds: the seeds cannot decide, even with a failed cost criterion (issue 23: a one-seed
    # smoke report said "does not hold"); the cost verdict stands apart and says it
    few = criteria(p_attainable=0.125, p_t_tau=0.125, overhead_share=0.2,
                   ratio={"median": 1.2, "ci_low": 1.2, "ci_high": 1.2})
    assert few["status"] == "inconclusive" and few["status_cost"] == "does not hold"
    assert few["status_t_tau"] == "inconclusive" and "compute" in few["failed"]
    assert criteria(overhead_share=0.2)["status"] == "does not hold"
    assert criteria(applicable=False)["status"] == "not applicable" and not criteria(applicable=False)["holds"]
    # peak memory not recorded: "not measured", never listed as failed; the status is inconclusive
    nm = criteria(extra_peak_memory=math.nan)
    assert nm["status"] == "inconclusive" and nm["not_measured"] == ["memory"] and nm["failed"] == []
    assert nm["outcome"]["memory"] == "not measured" and nm["status_cost"] == "inconclusive"
    assert criteria(final_resolution=0.0025, final_vanilla=0.03)["final_below_resolution"]
    assert not criteria(final_resolution=1e-6, final_vanilla=0.03)["final_below_resolution"]


def test_statuses_rest_on_intervals() -> None:
    # issue 23: synth-clf/PASHA/ohgw read "does not hold (fails: std)" from a point estimate while
    # its T@tau interval [0.71, 1.01] still held the claimed 0.85; with the spread's interval
    # straddling its margin, neither settles, and the status is inconclusive
    c = criteria(ratio={"median": 0.86, "ci_low": 0.71, "ci_high": 1.01}, p_t_tau=0.3,
                 std_variant=12.0, std_inflation_ci=[-0.2, 0.5])
    assert c["outcome"]["std"] == "undecided" and c["outcome"]["t_tau"] == "undecided"
    assert c["status"] == "inconclusive" and c["failed"] == []
    # the same spread interval wholly above +10%: a failure
    assert criteria(std_inflation_ci=[0.2, 0.5])["status"] == "does not hold"
    # final score by non-inferiority: interval at or below 0.2% -> met; straddling -> undecided
    assert criteria(final_drop_ci=[-0.01, 0.002])["outcome"]["final"] == "met"
    assert criteria(final_drop_ci=[-0.01, 0.01])["outcome"]["final"] == "undecided"
    assert criteria(final_drop_ci=[0.003, 0.01])["outcome"]["final"] == "failed"
    # underpowered (power computed below 80%): criteria not met read inconclusive ...
    low = criteria(final_drop_ci=[0.003, 0.01], power=0.5)
    assert low["underpowered"] and low["status"] == "inconclusive"
    # ... unless T@tau's interval already excludes the claimed reduction
    excl = criteria(ratio={"median": 1.02, "ci_low": 1.01, "ci_high": 1.03}, p_t_tau=0.01, power=0.5)
    assert excl["status"] == "does not hold" and excl["status_t_tau"] == "does not hold"
    # and a tuple meeting every criterion holds whatever the power
    assert criteria(power=0.5)["status"] == "holds"


def test_t_tau_power() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.05, 30)
    # small spread around the shifted mean: the criterion is met almost always
    assert metrics.t_tau_power(noise, m=7) > 0.95
    # large spread: far less
    wide = metrics.t_tau_power(rng.normal(0.0, 1.0, 30), m=7)
    assert wide < 0.5
    # 5 pairs and 7 tests: p < alpha / 7 is not attainable, power 0
    assert metrics.t_tau_power(noise[:5], m=7) == 0.0
    assert math.isnan(metrics.t_tau_power([], m=1))
    assert metrics.t_tau_power(noise, m=7) == metrics.t_tau_power(noise, m=7)  # fixed seed
    # mostly exact ties (the simulated clock): centred on the median, the ties move together to
    # log 0.8, so the median criterion can be met; centred on the mean they would sit above 0.85
    ties = np.concatenate([np.zeros(18), rng.normal(-0.3, 0.1, 12)])
    assert metrics.t_tau_power(ties, m=7) > 0.9


def test_shift_test() -> None:
    rng = np.random.default_rng(0)
    same = metrics.shift_test(rng.uniform(0.4, 0.6, 40), rng.uniform(0.4, 0.6, 40), False, 0.0, 1.0)
    assert same["outcome"] == "no bias" and same["ci_low"] < same["shift"] < same["ci_high"]
    moved = metrics.shift_test(rng.uniform(0.7, 0.9, 40), rng.uniform(0.2, 0.4, 40), False, 0.0, 1.0)
    assert moved["outcome"] == "biased" and moved["shift"] == pytest.approx(0.5, abs=0.05)
    wide = metrics.shift_test(rng.uniform(0, 1, 4), rng.uniform(0, 1, 4), False, 0.0, 1.0)
    assert wide["outcome"] == "undecided"
    # log scale: the shift is in unit-cube units of log(x)
    lg = metrics.shift_test([1e-3] * 3, [1e-2] * 3, True, 1e-4, 1.0)
    assert lg["shift"] == pytest.approx(-0.25) and lg["outcome"] == "biased"
    assert metrics.shift_test([0.5], [0.5, 0.6], False, 0.0, 1.0)["outcome"] == "not measured"


def test_attainable_p_and_seeds_needed() -> None:
    assert metrics.min_wilcoxon_p(6) == pytest.approx(2 / 64)
    assert metrics.best_holm_p(6, 4) == pytest.approx(0.125)
    assert metrics.seeds_needed(4) == 8 and metrics.best_holm_p(8, 4) < 0.05 <= metrics.best_holm_p(7, 4)
    assert metrics.seeds_needed(1) == 6  # 2/64 < 0.05 <= 2/32
    from scipy.stats import wilcoxon

    assert wilcoxon(-np.arange(1.0, 7.0)).pvalue == pytest.approx(metrics.min_wilcoxon_p(6))


def test_kaplan_meier() -> None:
    # events 10, 20; censored 15 (leaves the risk set), 30 -> S: 0.75 at 10, 0.75 * 1/2 at 20
    ev, surv = metrics.km_curve([10, 15, 20, 30], [True, False, True, False])
    assert ev.tolist() == [10, 20] and surv == pytest.approx([0.75, 0.375])
    assert metrics.km_median([10, 15, 20, 30], [True, False, True, False]) == 20
    assert math.isinf(metrics.km_median([10, 100, 100], [True, False, False]))
    assert math.isnan(metrics.km_median([], []))


def test_paired_ratio_counts_censored_pairs() -> None:
    args = ([50, 80, 100, 100], [True, True, False, False], [100, 40, 50, 100], [True, True, True, False])
    r = metrics.paired_ratio(*args, budget=100.0)
    # the both-censored pair is kept as a tie (ratio 1), not dropped
    assert (r["n_pairs"], r["n_used"], r["n_one_censored"], r["n_both_censored"]) == (4, 4, 1, 1)
    assert (r["n_ties"], r["n_nonzero"]) == (1, 3)
    assert r["median"] == pytest.approx(math.sqrt(2.0))  # ratios 0.5, 1, 2, 2
    assert r["geo_mean"] == pytest.approx(math.exp((math.log(0.5) + 2 * math.log(2)) / 4))
    assert r["ci_low"] <= r["median"] <= r["ci_high"]
    assert r["geo_ci_low"] <= r["geo_mean"] <= r["geo_ci_high"]
    again = metrics.paired_ratio(*args, budget=100.0)
    assert (again["ci_low"], again["ci_high"]) == (r["ci_low"], r["ci_high"])  # fixed bootstrap seed


def test_paired_ratio_ties_do_not_hide_the_geometric_mean() -> None:
    # issue 23: 17 of 20 pairs tie exactly (the simulated clock), 3 are 30% faster: the median
    # ratio is 1.00 [1.00, 1.00], the geometric mean is below 1 and its interval says so
    base = np.linspace(1.0, 2.0, 20)
    var = base.copy()
    var[:3] *= 0.7
    r = metrics.paired_ratio(var, [True] * 20, base, [True] * 20, budget=3.0)
    assert r["n_ties"] == 17 and r["n_nonzero"] == 3
    assert r["median"] == 1.0 and (r["ci_low"], r["ci_high"]) == (1.0, 1.0)
    assert r["geo_mean"] == pytest.approx(0.7 ** (3 / 20))
    assert r["geo_ci_low"] < r["geo_mean"] < r["geo_ci_high"] <= 1.0


def test_metric_resolution() -> None:
    assert metrics.metric_resolution([0.0325, 0.035, 0.0375, 0.0325]) == pytest.approx(0.0025)
    assert math.isnan(metrics.metric_resolution([0.1, 0.1]))


def test_verdict() -> None:
    assert metrics.verdict(["holds"] * 3 + ["does not hold"])["holds"]
    v = metrics.verdict(["holds", "holds", "does not hold", "does not hold"])
    assert not v["holds"] and v["fraction"] == 0.5 and v["n_hold"] == 2 and v["status"] == "does not hold"
    v = metrics.verdict(["holds", "inconclusive", "inconclusive", "does not hold"])
    assert v["status"] == "inconclusive" and v["n_inconclusive"] == 2
    v = metrics.verdict(["holds", "holds", "holds", "not applicable"])
    assert v["status"] == "holds" and v["n_applicable"] == 3
    assert metrics.verdict([])["status"] == "not applicable" and not metrics.verdict([])["holds"]
