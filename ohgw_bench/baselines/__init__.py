"""Scheduler registry: names mapped to lazy ``"module:build"`` factories, one file per family.

Every factory takes a :class:`SchedulerContext` and returns a Syne Tune ``TrialScheduler``
(deciding), which the Tuner drives against a backend (executing). A scheduler that applies the
warm-start itself, where its own model records configs (SMAC's config selector), sets the
class attribute ``applies_warm_start = True``; every other scheduler is wrapped by
:class:`ohgw_bench.baselines.warmstarted.WarmStarted`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ohgw_bench.errors import UserError
from ohgw_bench.space import SearchSpace


@dataclass
class SchedulerContext:
    """Everything a scheduler factory may need, in one object.

    ``config_space`` is the Syne Tune config space (domains for the search space plus constants
    such as the fidelity key); ``resource_attr`` names both the config key that tells a trial
    how far to train and the result key that says how far it got.
    """

    space: SearchSpace
    config_space: dict[str, Any]
    metric: str
    mode: str
    resource_attr: str
    min_resource: int
    max_resource: int
    seed: int
    n_workers: int = 1
    output_dir: Path | None = None
    warm_start: Any = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SchedulerSpec:
    name: str
    entry_point: str
    description: str
    backends: tuple[str, ...] = ("simulated", "local")
    kwargs: dict[str, Any] = field(default_factory=dict)


schedulers: dict[str, SchedulerSpec] = {}


def register(name: str, entry_point: str, description: str, backends: tuple[str, ...] = ("simulated", "local"),
             **kwargs: Any) -> None:
    if name in schedulers:
        raise ValueError(f"scheduler {name!r} is already registered")
    schedulers[name] = SchedulerSpec(name, entry_point, description, backends, kwargs)


def spec(name: str) -> SchedulerSpec:
    if name not in schedulers:
        raise UserError(f"unknown scheduler {name!r}; known schedulers: {', '.join(schedulers)}")
    return schedulers[name]


def build(name: str, ctx: SchedulerContext, backend: str | None = None) -> Any:
    """Instantiate scheduler ``name`` for ``ctx``; refuses a backend it does not support."""
    s = spec(name)
    if backend is not None and backend not in s.backends:
        raise UserError(f"scheduler {name!r} does not support --backend {backend}; it supports: {', '.join(s.backends)}")
    module_name, _, attr = s.entry_point.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("ohgw_bench"):
            raise UserError(f"scheduler {name!r}: its module {e.name!r} is missing from this installation") from None
        raise UserError(f"scheduler {name!r} needs the package {e.name!r}: pip install -e '.[all]'") from None
    factory: Callable[..., Any] = getattr(module, attr)
    return factory(ctx, **s.kwargs)


register("asha", "ohgw_bench.baselines.synetune:build_asha",
         "Syne Tune's asynchronous successive halving, stopping type (Li et al. 2020)")
register("asha-promotion", "ohgw_bench.baselines.asha_promotion:build",
         "asynchronous successive halving, promotion type: pauses and resumes trials (Li et al. 2020)")
register("pasha", "ohgw_bench.baselines.pasha:build",
         "PASHA: promotion ASHA that grows the maximum resource while the top ranking is unstable (Bohdal et al. 2023)")
register("dyhpo", "ohgw_bench.baselines.dyhpo:build",
         "DyHPO: deep-kernel GP over config, budget and curve; EI one budget step ahead (Wistuba et al. 2022)")
register("bohb", "ohgw_bench.baselines.synetune:build_bohb",
         "Syne Tune's BOHB: ASHA with a KDE model-based searcher (Falkner et al. 2018)")
register("hyperband-bo", "ohgw_bench.baselines.synetune:build_bohb",
         "alias of bohb: model-based Hyperband (Syne Tune's BOHB)")
register("smac-hyperband", "ohgw_bench.baselines.smac:build_hyperband",
         "SMAC 2.4 Hyperband facade (random configs, Hyperband intensifier) through ask/tell")
register("smac-bohb", "ohgw_bench.baselines.smac:build_multi_fidelity",
         "SMAC 2.4 multi-fidelity facade (random forest + Hyperband, BOHB-like) through ask/tell")
register("random", "ohgw_bench.baselines.synetune:build_random",
         "random search, every trial trained to the maximum fidelity (the floor)")
