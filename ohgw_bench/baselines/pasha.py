"""PASHA (Bohdal et al. 2023, "PASHA: Efficient HPO and NAS with Progressive Resource Allocation").

Promotion-type ASHA whose maximum resource starts at the second rung (``r_min * eta``) and grows
by one rung each time the configurations in the current top rung are ranked differently there
than in the rung below. The comparison is a soft ranking: configurations whose values in the
lower rung differ by at most ``epsilon`` may swap places without counting as a change.

``epsilon`` is estimated from the noise in the learning curves, as in the paper (section 3.2)
and in legacy Syne Tune's ``PASHARungSystem._update_epsilon``: a pair of configurations whose
order at some epoch is reversed at an earlier epoch and then restored at a still earlier one has
crossed twice, which the paper attributes to noise rather than to a real difference.
:func:`noise_epsilon` walks the epochs between the top two rungs from the top down and looks at
each pair once, at the highest epoch both configurations reached; ``epsilon`` is the 90th
percentile of the distances of the pairs that crossed twice, re-estimated whenever the ranking
is checked (it stays at its previous value, initially 0, while no such pair exists).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ohgw_bench.baselines import SchedulerContext
from ohgw_bench.baselines._promotion import PromotionScheduler
from ohgw_bench.options import Option

#: the options ``build`` reads, validated by the registry before any work (ohgw_bench/options.py)
OPTIONS = (
    Option("eta", int, 3, "reduction factor: rungs r_min * eta**k", low=2, aliases=("reduction_factor",)),
    Option("epsilon_percentile", float, 90.0, "percentile of crossing-pair gaps that sets the noise epsilon",
           low=0.0, high=100.0),
)


def soft_ranking_consistent(upper: dict[int, float], lower: dict[int, float], epsilon: float) -> bool:
    """True if ranking by ``upper`` matches ranking by ``lower`` up to ties within ``epsilon``.

    Both map trial ids to values (lower is better); only trials in ``upper`` are ranked. The
    trial in position i of the upper ranking must be one whose lower-rung value is within
    ``epsilon`` of the value in position i of the lower ranking.
    """
    trials = list(upper)
    by_upper = sorted(trials, key=lambda t: (upper[t], t))
    by_lower = sorted(trials, key=lambda t: (lower[t], t))
    return all(abs(lower[a] - lower[b]) <= epsilon for a, b in zip(by_upper, by_lower))


def noise_epsilon(curves: dict[int, dict[int, float]], low: int, high: int,
                  percentile: float = 90.0) -> float | None:
    """``percentile`` of the distances of curve pairs that crossed twice; None if no pair did.

    Epochs ``high, high - 1, ..., low + 1`` are walked top down and each pair of trials is
    judged once, at the first (highest) of these epochs both reached, as the reference does:
    counting a pair again at every lower epoch would weight long-lived pairs by their length
    and inflate epsilon. A pair crossed twice if, walking further down from that epoch, its
    order is first reversed and later restored; its distance is taken at that epoch. Epochs
    where the two values tie (or one is missing) count as neither order; the reference treats
    a tie as "not greater", which only matters for exact ties.
    """
    seen: set[tuple[int, int]] = set()
    distances = []
    for epoch in range(high, low, -1):
        present = [t for t in sorted(curves) if epoch in curves[t]]
        for a, b in itertools.combinations(present, 2):
            if (a, b) in seen:
                continue
            seen.add((a, b))
            ca, cb = curves[a], curves[b]
            order = np.sign(ca[epoch] - cb[epoch])
            if order == 0:
                continue
            reversed_before = False
            for earlier in range(epoch - 1, 0, -1):
                if earlier not in ca or earlier not in cb:
                    continue
                earlier_order = np.sign(ca[earlier] - cb[earlier])
                if earlier_order == -order:
                    reversed_before = True
                elif reversed_before and earlier_order == order:
                    distances.append(abs(ca[epoch] - cb[epoch]))
                    break
    if not distances:
        return None
    return float(np.percentile(distances, percentile))


class PASHA(PromotionScheduler):
    """Promotion ASHA with a maximum resource that grows while the top ranking is unstable."""

    def __init__(self, ctx: SchedulerContext, reduction_factor: int = 3,
                 epsilon_percentile: float = 90.0):
        super().__init__(ctx, reduction_factor)
        self.epsilon_percentile = epsilon_percentile
        self.epsilon = 0.0
        self._top = min(1, len(self.levels) - 1)
        self.curves: dict[int, dict[int, float]] = {}
        self.growth_log: list[dict[str, Any]] = []

    def top_rung(self) -> int:
        return self._top

    @property
    def current_max_resource(self) -> int:
        return self.levels[self._top]

    def observe(self, trial_id: int, resource: int, value: float) -> None:
        self.curves.setdefault(trial_id, {})[resource] = value

    def on_rung_record(self, k: int) -> None:
        if k != self._top or self._top == len(self.levels) - 1:
            return
        upper, lower = self.rungs[k], self.rungs[k - 1]
        estimate = noise_epsilon(self.curves, self.levels[k - 1], self.levels[k],
                                 self.epsilon_percentile)
        if estimate is not None:
            self.epsilon = estimate
        if len(upper) < 2 or soft_ranking_consistent(upper, lower, self.epsilon):
            return
        self.growth_log.append({
            "from": self.levels[k], "to": self.levels[k + 1], "epsilon": self.epsilon,
            "upper": dict(upper), "lower": {t: lower[t] for t in upper},
        })
        self._top += 1

    def metadata(self) -> dict[str, Any]:
        meta = super().metadata()
        meta["scheduler_kwargs"]["epsilon_percentile"] = self.epsilon_percentile
        return meta


def build(ctx: SchedulerContext, **kwargs: Any) -> PASHA:
    """``options``: ``reduction_factor`` (alias ``eta``, default 3), ``epsilon_percentile`` (90)."""
    options = {**ctx.options, **kwargs}
    eta = options.get("reduction_factor", options.get("eta", 3))
    return PASHA(ctx, reduction_factor=int(eta),
                 epsilon_percentile=float(options.get("epsilon_percentile", 90.0)))
