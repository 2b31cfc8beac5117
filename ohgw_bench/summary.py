"""A study's headline numbers (summary.json), from its rows and its resolved settings.

The analysis recomputes every one of them from the rows; the summary is what a finished study
prints and what a reader sees first.
"""

from __future__ import annotations

import math
from typing import Any

from ohgw_bench.spec import ResolvedStudy


def summarize(rows: list[dict[str, Any]], task: Any, spec: ResolvedStudy) -> dict[str, Any]:
    """The study's headline numbers from its rows (the analysis recomputes all of them from rows)."""
    from ohgw_bench import metrics

    budget, tau = spec.budget, spec.tau

    def num(x: Any) -> float:
        return float(x) if isinstance(x, int | float) else math.nan

    times = [num(r["ohgw_time"]) for r in rows]
    values = [num(r.get("ohgw_metric")) for r in rows]
    final = metrics.final_best(times, values, [num(r.get("ohgw_test_metric")) for r in rows], task.mode, budget)
    t_tau, reached = metrics.time_to_target(times, values, tau, task.mode, budget)
    best = None if math.isnan(final["best"]) else final["best"]
    best_test = None if math.isnan(final["test"]) else final["test"]
    ws = [r["ohgw_warm_start"] for r in rows if r.get("ohgw_warm_start")]
    per_trial = {r["ohgw_trial_id"]: r["ohgw_warm_start"] for r in rows if r.get("ohgw_warm_start")}
    ws_sim = sum(float(w.get("sim_seconds") or 0.0) for w in per_trial.values())
    ws_wall = sum(float((w.get("cost") or {}).get("seconds") or 0.0) for w in per_trial.values())
    worker = rows[-1]["ohgw_worker_time"] if rows else 0.0
    charged = ws_sim if spec.backend == "simulated" else ws_wall
    # the warm-start's share on both simulated clocks (FLOPs, calibrated wall ratio), whichever charged the study
    other = worker - charged
    ws_flops = sum(float(w.get("sim_seconds_flops", w.get("sim_seconds")) or 0.0) for w in per_trial.values())
    cal = [w.get("sim_seconds_calibrated") for w in per_trial.values()]
    ws_cal = sum(float(c) for c in cal) if all(isinstance(c, int | float) for c in cal) else None
    return {
        "best_metric": best,
        "best_test_metric": best_test,
        "metric": task.metric,
        "test_metric": task.test_metric,
        "mode": task.mode,
        "tau": tau,
        "time_to_tau": t_tau if reached else None,
        "reached_tau": reached,
        "trials": len({r["ohgw_trial_id"] for r in rows}),
        "reports": len(rows),
        # a diverged trial (status nan) is a failed one, as the failure limits count it
        "failed_trials": len({r["ohgw_trial_id"] for r in rows if r.get("ohgw_status") in ("failed", "nan")}),
        "budget": budget,
        "worker_time": worker,
        # worker-time used / worker budget (budget x workers). On --backend local the worker time
        # is what trials report (st_worker_time), so process start-up is not counted as used.
        "budget_used_fraction": worker / (budget * spec.n_workers) if budget > 0 else 0.0,
        "warm_start": {
            "trials_nudged": sum(1 for w in per_trial.values() if w.get("applied")),
            "sim_seconds": ws_sim,
            "wall_seconds": ws_wall,
            "share_of_worker_time": charged / worker if worker else 0.0,
            "clock": spec.warm_start.clock,
            "share_flops": ws_flops / (other + ws_flops) if other + ws_flops > 0 else 0.0,
            "share_calibrated": None if ws_cal is None else (ws_cal / (other + ws_cal) if other + ws_cal > 0 else 0.0),
            "records": len(ws),
        },
    }
