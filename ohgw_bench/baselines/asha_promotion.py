"""Promotion-type asynchronous successive halving (Li et al. 2020), as a Syne Tune scheduler.

Unlike Syne Tune's stopping-type ASHA, a trial that reaches a rung is paused, and resumed from
its checkpoint only if the promotion rule admits it: ``paper`` (default), the ASHA paper's top
``floor(n / eta)`` of the rung; or ``quantile``, Syne Tune's reference rule, a value within the
rung's ``1/eta`` quantile (which already promotes from a rung of two). It never trains past a
rung it has not been promoted beyond. The rung bookkeeping lives in ``_promotion.py`` because
PASHA shares it.
"""

from __future__ import annotations

from typing import Any

from ohgw_bench.baselines import SchedulerContext
from ohgw_bench.baselines._promotion import PROMOTION_RULES, PromotionScheduler
from ohgw_bench.options import Option, declares

ETA = Option("eta", int, 3, "reduction factor: rungs r_min * eta**k, promote 1/eta of a rung", low=2,
             aliases=("reduction_factor",))


class PromotionASHA(PromotionScheduler):
    """Promotion-type ASHA over rungs ``min_resource * eta**k`` up to ``max_resource``."""


@declares(
    ETA,
    Option("promotion_rule", str, "paper",
           "paper: top floor(n/eta) of a rung (Li et al. 2020); quantile: within the rung's 1/eta quantile "
           "(Syne Tune's reference)", choices=PROMOTION_RULES),
)
def build(ctx: SchedulerContext, **kwargs: Any) -> PromotionASHA:
    """Options (validated, defaults filled, by the registry): ``eta`` and ``promotion_rule``."""
    options = {**ctx.options, **kwargs}
    return PromotionASHA(ctx, reduction_factor=int(options.get("eta", 3)),
                         promotion_rule=str(options.get("promotion_rule", "paper")))
