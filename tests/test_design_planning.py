"""The design tools: tau chosen on held-out seeds (analysis/tau.py) and seeds from a pilot's spread (analysis/power.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis import power, tau
from ohgw_bench import metrics
from ohgw_bench.errors import UserError


def _task(reach_times: list[float], final: float = 0.1, mode: str = "min") -> dict:
    """Seeds whose best-so-far drops from 1.0 to ``final`` at their reach time (inf: never below 0.5)."""
    curves = {}
    for seed, t in enumerate(reach_times):
        if math.isinf(t):
            curves[seed] = (np.array([0.1, 1.0]), np.array([1.0, 0.6]))
        else:
            curves[seed] = (np.array([0.1, t]), np.array([1.0, final]))
    if mode == "max":
        curves = {k: (t, -v) for k, (t, v) in curves.items()}
    return {"task": "t", "curves": curves, "mode": mode, "scheduler": "asha", "budgets": {4.0}}


def test_tau_rule_reach_window_and_fraction() -> None:
    # 9 of 10 seeds reach 0.1 at 1.0; one never does. At budget 2 the median reach fraction is 0.5.
    c = tau.choose(_task([1.0] * 9 + [math.inf]), budget_step=0.5, digits=3, reach=(0.85, 0.95), frac=(0.3, 0.7),
                   budget=2.0)
    assert c["chosen"]["tau"] == pytest.approx(0.1)
    assert c["chosen"]["reached"] == 9 and c["chosen"]["frac_median"] == pytest.approx(0.5)
    # the smallest-budget rule: at 1.0 the fraction is 1.0 (too late), at 1.5 it is 0.67: chosen
    c = tau.choose(_task([1.0] * 9 + [math.inf]), budget_step=0.5, digits=3, reach=(0.85, 0.95), frac=(0.3, 0.7))
    assert c["chosen"]["budget"] == 1.5


def test_tau_rule_mode_max_rounds_towards_easier() -> None:
    c = tau.choose(_task([1.0] * 9 + [math.inf], final=0.12345, mode="max"), budget_step=0.5, digits=3,
                   reach=(0.85, 0.95), frac=(0.3, 0.7), budget=2.0)
    assert c["chosen"]["tau"] == pytest.approx(-0.124)  # max mode: rounded down, i.e. easier
    assert tau._round_easier(0.12345, 3, "min") == pytest.approx(0.124)


def test_tau_rule_refuses_when_nothing_is_feasible() -> None:
    with pytest.raises(UserError, match="no \\(budget, tau\\)"):
        tau.choose(_task([1.0] * 5 + [math.inf] * 5), budget_step=0.5, digits=3, reach=(0.85, 0.95),
                   frac=(0.3, 0.7), budget=2.0)


def test_power_grows_with_seeds_and_planning_finds_the_smallest() -> None:
    rng = np.random.default_rng(0)
    pilot = list(rng.normal(0.0, 0.3, size=20))
    p = [metrics.t_tau_power(pilot, 14, effect=0.10, target=None, n=n) for n in (20, 80, 200)]
    assert p[0] < p[1] < p[2] and p[2] > 0.8
    n, curve = power.seeds_needed_for_power(pilot, 14, 0.10, 0.8, 0.05)
    assert n is not None and curve[n] >= 0.8 and all(v < 0.8 for k, v in curve.items() if k < n)
    # a tighter pilot needs fewer seeds
    n_tight, _ = power.seeds_needed_for_power([x / 3 for x in pilot], 14, 0.10, 0.8, 0.05)
    assert n_tight is not None and n_tight < n


def test_power_cli_reads_a_summary(tmp_path, capsys) -> None:
    lr = list(np.random.default_rng(1).normal(0.0, 0.2, size=20))
    summary = {"tuples": [{"task": "t", "scheduler": "asha",
                           "comparisons": {"ohgw vs none": {"t_tau_log_ratios": lr}, "ohgw vs sham": {"t_tau_log_ratios": lr}}}]}
    f = tmp_path / "summary.json"
    f.write_text(json.dumps(summary))
    assert power.main([str(f), "--m", "4", "--out", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    assert "ohgw vs none" in out and "ohgw vs sham" not in out
    assert json.loads((tmp_path / "plan.json").read_text())["rows"][0]["seeds_needed"] is not None
    assert power.main([str(tmp_path / "missing.json"), "--m", "4"]) == 2
