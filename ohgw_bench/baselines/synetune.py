"""Schedulers Syne Tune 0.16 ships: ASHA (stopping type), BOHB and random search.

The fidelity key is a constant of the config space (its maximum), so a trial started by
these schedulers trains to the maximum unless the scheduler stops it.

BOHB's kernel-density searcher takes the settings of the BOHB paper (Falkner et al. 2018,
section 4 and its defaults): ``min_bandwidth`` 1e-3, ``top_n_percent`` 15, ``num_candidates``
64 (the paper's ``num_samples``), ``random_fraction`` 1/3 and ``bandwidth_factor`` 3;
``num_min_data_points`` None keeps Syne Tune's default, the number d of hyperparameters (the
paper's is d + 1; Syne Tune refuses fewer than d). Each is a validated scheduler option,
so a study can use, e.g., the legacy reference's wider ``min_bandwidth=0.1`` where
near-identical configs give identical curves and the KDE would otherwise collapse onto them.
"""

from __future__ import annotations

from typing import Any

from ohgw_bench.baselines import SchedulerContext
from ohgw_bench.errors import UserError
from ohgw_bench.options import Option, declares

ETA = Option("eta", int, 3, "reduction factor: rungs r_min * eta**k, continue the top 1/eta", low=2,
             aliases=("reduction_factor",))
GRACE_PERIOD = Option("grace_period", int, None, "lowest rung (default: the task's minimum fidelity)",
                      low=1, nullable=True)
KDE_OPTIONS = (
    Option("min_bandwidth", float, 1e-3, "smallest KDE bandwidth (BOHB paper: 1e-3)", low=1e-12),
    Option("top_n_percent", int, 15, "percent of observations modelled as good (BOHB paper: 15)", low=1, high=99),
    Option("num_candidates", int, 64, "candidates drawn from the good KDE per proposal (BOHB paper: 64)", low=1),
    Option("random_fraction", float, 1 / 3, "fraction of proposals drawn at random (BOHB paper: 1/3)",
           low=0.0, high=1.0),
    Option("bandwidth_factor", float, 3.0, "widening of the KDE when sampling candidates (BOHB paper: 3)",
           low=1e-12),
    Option("num_min_data_points", int, None,
           "observations needed before the KDE is used, at least d (default: d, the number of hyperparameters)",
           low=1, nullable=True),
)


def _space_with_max(ctx: SchedulerContext) -> dict[str, Any]:
    return {**ctx.config_space, ctx.resource_attr: ctx.max_resource}


def _successive_halving(cls: Any, ctx: SchedulerContext, **kwargs: Any) -> Any:
    grace = ctx.options.get("grace_period")
    if grace is not None and not ctx.min_resource <= grace <= ctx.max_resource:
        raise UserError(f"option 'grace_period' must lie in the task's fidelity range "
                        f"[{ctx.min_resource}, {ctx.max_resource}], got {grace}")
    return cls(
        config_space=_space_with_max(ctx),
        metric=ctx.metric,
        time_attr=ctx.resource_attr,
        max_t=ctx.max_resource,
        grace_period=ctx.min_resource if grace is None else int(grace),
        reduction_factor=int(ctx.options.get("eta", 3)),
        do_minimize=ctx.mode == "min",
        random_seed=ctx.seed,
        **kwargs,
    )


@declares(ETA, GRACE_PERIOD)
def build_asha(ctx: SchedulerContext, **kwargs: Any) -> Any:
    """Stopping-type ASHA: a trial continues past a rung only if it is in the rung's top 1/eta."""
    from syne_tune.optimizer.baselines import ASHA

    return _successive_halving(ASHA, ctx, **kwargs)


@declares(ETA, GRACE_PERIOD, *KDE_OPTIONS)
def build_bohb(ctx: SchedulerContext, **kwargs: Any) -> Any:
    """ASHA with a kernel-density (TPE-like) model-based searcher; KDE settings from the options."""
    from syne_tune.config_space import Domain
    from syne_tune.optimizer.baselines import BOHB

    kde = {o.name: ctx.options.get(o.name, o.default) for o in KDE_OPTIONS}
    d = sum(isinstance(v, Domain) for v in ctx.config_space.values())
    if kde["num_min_data_points"] is not None and kde["num_min_data_points"] < d:
        raise UserError(f"scheduler bohb: option 'num_min_data_points' must be at least {d} (the number of "
                        f"hyperparameters), got {kde['num_min_data_points']}")
    return _successive_halving(BOHB, ctx, **{**kde, **kwargs})


@declares()
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
