"""How many paired seeds a study needs, from a pilot's paired T@tau log ratios (issue 25).

    python -m analysis.report results/lcbench-pilot --out results/lcbench-pilot/report
    python -m analysis.power results/lcbench-pilot/report/summary.json --effect 0.10 --m 14

For each comparison of the pilot report (arm vs baseline, per tuple), the per-seed log ratios
of T@tau (``summary.json`` -> ``tuples[*].comparisons[*].t_tau_log_ratios``) are centred on
their median and shifted to ``log(1 - effect)``; studies of ``n`` seeds are drawn from them
(:func:`ohgw_bench.metrics.t_tau_power` with ``n`` and no median condition), and a study
detects the change when the two-sided signed-rank p is below ``alpha / m``: the first step of
Holm over the ``m`` tuples of one comparison family, so a lower bound of Holm's power. The
smallest ``n`` on the grid with power >= ``--power`` is printed per comparison, with the
pilot's spread (median absolute deviation of the log ratios) and its count of exact ties
(ties carry no sign and make a study need more seeds). Censoring is not re-simulated: a
pilot whose seeds are often censored understates the spread of a longer study.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ohgw_bench import metrics
from ohgw_bench.errors import UserError

GRID = (10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 100, 120, 150, 200)


def seeds_needed_for_power(log_ratios: list[float], m: int, effect: float, power: float, alpha: float,
                           grid: tuple[int, ...] = GRID, n_sim: int = 400) -> tuple[int | None, dict[int, float]]:
    """(smallest n on ``grid`` with simulated power >= ``power`` or None, power at each n tried)."""
    curve: dict[int, float] = {}
    for n in grid:
        curve[n] = metrics.t_tau_power(log_ratios, m, effect=effect, alpha=alpha, target=None, n_sim=n_sim, n=n)
        if curve[n] >= power:
            return n, curve
    return None, curve


def plan(summary: dict[str, Any], *, effect: float, m: int, power: float, alpha: float,
         baseline: str = "none") -> list[dict[str, Any]]:
    """One row per pilot comparison against ``baseline``: spread, ties and seeds needed."""
    rows = []
    for t in summary.get("tuples", []):
        for name, c in sorted((t.get("comparisons") or {}).items()):
            if not name.endswith(f" vs {baseline}"):
                continue
            lr = [x for x in (c.get("t_tau_log_ratios") or []) if x is not None and math.isfinite(x)]
            if not lr:
                continue
            a = np.asarray(lr, dtype=float)
            n, curve = seeds_needed_for_power(lr, m, effect, power, alpha)
            rows.append({"task": t["task"], "scheduler": t["scheduler"], "comparison": name, "pilot_pairs": len(lr),
                         "ties": int(np.sum(a == 0.0)), "mad": float(np.median(np.abs(a - np.median(a)))),
                         "sd": float(np.std(a, ddof=1)) if a.size > 1 else math.nan,
                         "seeds_needed": n, "power_curve": curve})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.power", description=__doc__.split("\n\n")[0])
    p.add_argument("summary", type=Path, help="a pilot report's summary.json")
    p.add_argument("--effect", type=float, default=0.10, help="true relative change of T@tau to detect")
    p.add_argument("--m", type=int, required=True, help="tuples per comparison family in the planned study (Holm)")
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    a = p.parse_args(argv)
    try:
        if not a.summary.is_file():
            raise UserError(f"{a.summary}: no such file (run python -m analysis.report on the pilot first)")
        if not (0 < a.effect < 1) or a.m < 1:
            raise UserError("--effect must be in (0, 1) and --m >= 1")
        rows = plan(json.loads(a.summary.read_text()), effect=a.effect, m=a.m, power=a.power, alpha=a.alpha)
        if not rows:
            raise UserError(f"{a.summary}: no comparison against 'none' with T@tau log ratios")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"effect {a.effect:g}, power {a.power:g}, alpha {a.alpha:g} / m = {a.m} (first Holm step)")
    print("| task | scheduler | comparison | pilot pairs | ties | sd of log ratio | MAD | seeds needed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        need = r["seeds_needed"] if r["seeds_needed"] is not None else f"> {GRID[-1]}"
        print(f"| {r['task']} | {r['scheduler']} | {r['comparison']} | {r['pilot_pairs']} | {r['ties']} | "
              f"{r['sd']:.3f} | {r['mad']:.3f} | {need} |")
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"effect": a.effect, "m": a.m, "power": a.power, "alpha": a.alpha, "rows": rows},
                                    indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
