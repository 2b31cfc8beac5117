"""Schedulers Syne Tune 0.16 ships: ASHA (stopping type), BOHB and random search.

The fidelity key is a constant of the config space (its maximum), so a trial started by
these schedulers trains to the maximum unless the scheduler stops it.
"""

from __future__ import annotations

from typing import Any

from ohgw_bench.baselines import SchedulerContext


def _space_with_max(ctx: SchedulerContext) -> dict[str, Any]:
    return {**ctx.config_space, ctx.resource_attr: ctx.max_resource}


def _successive_halving(cls: Any, ctx: SchedulerContext, **kwargs: Any) -> Any:
    return cls(
        config_space=_space_with_max(ctx),
        metric=ctx.metric,
        time_attr=ctx.resource_attr,
        max_t=ctx.max_resource,
        grace_period=ctx.min_resource,
        reduction_factor=ctx.options.get("eta", 3),
        do_minimize=ctx.mode == "min",
        random_seed=ctx.seed,
        **kwargs,
    )


def build_asha(ctx: SchedulerContext, **kwargs: Any) -> Any:
    """Stopping-type ASHA: a trial continues past a rung only if it is in the rung's top 1/eta."""
    from syne_tune.optimizer.baselines import ASHA

    return _successive_halving(ASHA, ctx, **kwargs)


def build_bohb(ctx: SchedulerContext, **kwargs: Any) -> Any:
    """ASHA with a kernel-density (TPE-like) model-based searcher."""
    from syne_tune.optimizer.baselines import BOHB

    return _successive_halving(BOHB, ctx, **kwargs)


def build_random(ctx: SchedulerContext, **kwargs: Any) -> Any:
    """Random search with every trial trained to the maximum fidelity: the floor."""
    from syne_tune.optimizer.baselines import RandomSearch

    return RandomSearch(
        config_space=_space_with_max(ctx),
        metrics=[ctx.metric],
        do_minimize=ctx.mode == "min",
        random_seed=ctx.seed,
        **kwargs,
    )
