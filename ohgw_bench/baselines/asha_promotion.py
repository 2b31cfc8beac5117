"""Promotion-type asynchronous successive halving (Li et al. 2020), as a Syne Tune scheduler.

Unlike Syne Tune's stopping-type ASHA, a trial that reaches a rung is paused, and resumed from
its checkpoint only if it ranks in the top ``1/eta`` of that rung; it never trains past a rung
it has not been promoted beyond. The rung bookkeeping lives in ``_promotion.py`` because PASHA
shares it.
"""

from __future__ import annotations

from typing import Any

from ohgw_bench.baselines import SchedulerContext
from ohgw_bench.baselines._promotion import PromotionScheduler


class PromotionASHA(PromotionScheduler):
    """Promotion-type ASHA over rungs ``min_resource * eta**k`` up to ``max_resource``."""


def build(ctx: SchedulerContext, **kwargs: Any) -> PromotionASHA:
    """``options``: ``reduction_factor`` (alias ``eta``), default 3."""
    options = {**ctx.options, **kwargs}
    eta = options.get("reduction_factor", options.get("eta", 3))
    return PromotionASHA(ctx, reduction_factor=int(eta))
