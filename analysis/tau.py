"""Choose tau and the budget per task from vanilla runs on held-out seeds (issue 23, item 3).

    python -m ohgw_bench.experiment experiments/cpu-tau.yaml --results-dir results
    python -m analysis.tau results/cpu-tau --out results/cpu-tau/tau.json

The runs are vanilla studies (one scheduler, seeds the study itself never uses) at a budget
larger than any candidate. A scheduler's timeline does not depend on the budget until the
budget stops it, so one run per seed gives the best-so-far curve for every smaller budget.
For each candidate budget B (multiples of ``--budget-step`` up to the runs' budget) and each
candidate tau (every seed's best value at B, rounded to ``--digits`` significant figures
towards the easier side), the tool counts the seeds that reach tau within B and the median
reach time as a fraction of B. The rule, fixed before any study result is seen:

1. feasible: reach rate in [``--reach-low``, ``--reach-high``] and median reach fraction in
   [``--frac-low``, ``--frac-high``];
2. the smallest feasible budget (a study's cost grows with its budget), or the budget given
   with ``--budget TASK=B`` (the design's budget, fixed by what the study file may cost: the
   smallest-budget rule alone picks budgets at which a study is over after its first rungs);
3. at that budget, the tau whose reach rate is closest to the middle of the reach window
   (ties: the harder tau).

The output (stdout: a markdown table; ``--out``: JSON) gives the choice per task with its
reach count and quartiles of the reach fraction, and the runner-up at the next harder tau, so
a reader can see how sharp the choice is. Everything is computed from ``reports.jsonl``; a
reviewer re-runs the command on the same folder and gets the same table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from analysis.common import _col, make_study
from ohgw_bench import metrics, results
from ohgw_bench.errors import UserError


def _round_easier(x: float, digits: int, mode: str) -> float:
    """``x`` to ``digits`` significant figures, rounded so the threshold gets no harder."""
    if x == 0 or not math.isfinite(x):
        return x
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(x))))
    f = math.ceil if mode == "min" else math.floor
    return round(f(x * scale) / scale, 12)


def _curves(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Per task: mode, the runs' budget, and each seed's (times, best-so-far) curve."""
    records, warns, _ = results.load_records(results_dir)
    for w in warns:
        print(f"warning: {w}", file=sys.stderr)
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"curves": {}})
    for rec in records:
        s = make_study(rec)
        t, best = metrics.best_so_far(_col(s.valid, "time"), _col(s.valid, "metric"), s.mode)
        entry = out[rec.task]
        entry.update(task=rec.task, mode=s.mode, scheduler=rec.scheduler)
        entry.setdefault("budgets", set()).add(rec.budget)
        entry["curves"][rec.seed] = (t, best)
    return dict(out)


def _reach(curves: dict[int, tuple[np.ndarray, np.ndarray]], budget: float, tau: float, mode: str
           ) -> tuple[int, np.ndarray]:
    """(seeds reaching tau within budget, their reach times / budget)."""
    hits = [metrics.time_to_target(t, best, tau, mode, budget) for t, best in curves.values()]
    return sum(reached for _, reached in hits), np.asarray([t / budget for t, reached in hits if reached], dtype=float)


def choose(task: dict[str, Any], *, budget_step: float, digits: int, reach: tuple[float, float],
           frac: tuple[float, float], budget: float | None = None) -> dict[str, Any]:
    """The (budget, tau) the rule in the module docstring picks for one task, with its evidence."""
    curves, mode = task["curves"], task["mode"]
    n = len(curves)
    top = min(task["budgets"])
    budgets = [round(budget_step * k, 10) for k in range(1, int(math.floor(top / budget_step + 1e-9)) + 1)]
    if budget is not None:
        if budget > top:
            raise UserError(f"budget {budget} is above the held-out runs' budget {top}")
        budgets = [budget]
    middle = (reach[0] + reach[1]) / 2
    tried = 0
    for b in budgets:
        finals = [metrics.step_at(t, best, [b])[0] for t, best in curves.values()]
        taus = sorted({_round_easier(float(v), digits, mode) for v in finals if math.isfinite(v)},
                      reverse=(mode == "max"))  # hardest first
        rows = []
        for tau in taus:
            k, f = _reach(curves, b, tau, mode)
            tried += 1
            med = float(np.median(f)) if f.size else math.nan
            ok = reach[0] <= k / n <= reach[1] and frac[0] <= med <= frac[1]
            rows.append({"budget": b, "tau": tau, "reached": k, "seeds": n, "reach_rate": k / n,
                         "frac_median": med, "frac_q25": float(np.quantile(f, 0.25)) if f.size else math.nan,
                         "frac_q75": float(np.quantile(f, 0.75)) if f.size else math.nan, "feasible": ok})
        feasible = [r for r in rows if r["feasible"]]
        if feasible:
            best = min(feasible, key=lambda r: abs(r["reach_rate"] - middle))  # stable: harder tau wins ties
            i = rows.index(best)
            return {"task": task["task"], "mode": mode, "scheduler": task["scheduler"], "seeds": sorted(curves),
                    "chosen": best, "harder": rows[i - 1] if i > 0 else None,
                    "easier": rows[i + 1] if i + 1 < len(rows) else None, "candidates_tried": tried}
    raise UserError(f"no (budget, tau) meets reach {reach} and reach fraction {frac} with budgets up to {top}; "
                    "run the held-out seeds at a larger budget")


def _fmt(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    return (f"tau {r['tau']:g}: {r['reached']}/{r['seeds']} ({100 * r['reach_rate']:.0f}%), "
            f"{r['frac_median']:.2f} ({r['frac_q25']:.2f}-{r['frac_q75']:.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.tau", description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", type=Path, help="folder of vanilla studies on held-out seeds")
    p.add_argument("--out", type=Path, default=None, help="write the choice as JSON here")
    p.add_argument("--budget-step", type=float, default=0.5)
    p.add_argument("--budget", action="append", default=[], metavar="TASK=B",
                   help="fix a task's budget (choose only tau); repeatable")
    p.add_argument("--digits", type=int, default=3, help="significant figures of tau")
    p.add_argument("--reach-low", type=float, default=0.85)
    p.add_argument("--reach-high", type=float, default=0.95)
    p.add_argument("--frac-low", type=float, default=0.3)
    p.add_argument("--frac-high", type=float, default=0.7)
    a = p.parse_args(argv)
    try:
        if not a.results_dir.is_dir():
            raise UserError(f"{a.results_dir}: not a folder")
        tasks = _curves(a.results_dir)
        if not tasks:
            raise UserError(f"{a.results_dir}: no complete studies")
        fixed: dict[str, float] = {}
        for item in a.budget:
            name, sep, value = item.partition("=")
            try:
                fixed[name] = float(value)
            except ValueError:
                raise UserError(f"--budget {item!r}: expected TASK=<number>") from None
            if not sep or name not in tasks:
                raise UserError(f"--budget {item!r}: expected TASK=B with a task of {sorted(tasks)}")
        out = {}
        for name in sorted(tasks):
            c = choose(tasks[name], budget_step=a.budget_step, digits=a.digits,
                       reach=(a.reach_low, a.reach_high), frac=(a.frac_low, a.frac_high), budget=fixed.get(name))
            out[name] = c
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("| task | seeds | budget | chosen tau: reached, reach time / budget median (quartiles) | next harder tau | next easier tau |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, c in out.items():
        s = c["seeds"]
        print(f"| {name} | {s[0]}-{s[-1]} ({len(s)}) | {c['chosen']['budget']:g} | {_fmt(c['chosen'])} | "
              f"{_fmt(c['harder'])} | {_fmt(c['easier'])} |")
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"rule": {"reach": [a.reach_low, a.reach_high], "frac": [a.frac_low, a.frac_high],
                                             "budget": fixed,
                                             "budget_step": a.budget_step, "digits": a.digits},
                                    "tasks": out}, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
