"""Scheduler registry: names mapped to lazy ``"module:build"`` factories, one file per family.

Every factory takes a :class:`SchedulerContext` and returns a Syne Tune ``TrialScheduler``
(deciding), which the Tuner drives against a backend (executing). A scheduler that applies the
warm-start itself, where its own model records configs (SMAC's config selector), sets the
class attribute ``applies_warm_start = True`` and writes each trial's plan (seed, proposal,
record, charge) to ``ctx.plans`` (:mod:`ohgw_bench.trial_plan`); every other scheduler is
wrapped by :class:`ohgw_bench.baselines.warmstarted.WarmStarted`, which does both.

Options: each factory declares the options it reads, as ``factory.options`` (the
:func:`ohgw_bench.options.declares` decorator), or its module as a module-level ``OPTIONS``
tuple, or the registration as ``register(..., options=...)``. :func:`validate_options` checks a
study's options against them once, when the study is resolved (:mod:`ohgw_bench.spec`), and the
factory gets ``ctx.options`` validated, under canonical names, with every declared default filled
in (:func:`instantiate`; :func:`build` validates first, for callers outside a study). A factory that
declares nothing takes no options.

Your own scheduler: ``--scheduler my.module:build_my_scheduler`` (like ``--task module:Class``)
calls that factory without registering it; it may set ``options`` (see above) and ``backends``
(default: simulated and local) as attributes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ohgw_bench.errors import UserError
from ohgw_bench.options import Option, validate
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
    plans: Any = None  # the study's ohgw_bench.trial_plan.TrialPlans, for a scheduler that warm-starts itself

    @classmethod
    def for_task(cls, task: Any, seed: int, **extra: Any) -> SchedulerContext:
        """The context of a scheduler over ``task``'s space, metric and fidelity (``extra``: the
        other fields), so a study, a user's script and a test build it the same way."""
        f = task.fidelity
        return cls(space=task.space, config_space=task.space.to_syne_tune(), metric=task.metric, mode=task.mode,
                   resource_attr=f.name, min_resource=f.min, max_resource=f.max, seed=seed, **extra)


# Every --backend, as ohgw_bench.backends.BACKENDS (spelled here to keep this registry free of
# Syne Tune imports; tests/test_study_pipeline.py checks that the two agree).
ALL_BACKENDS: tuple[str, ...] = ("simulated", "local")


@dataclass(frozen=True)
class SchedulerSpec:
    name: str
    entry_point: str
    description: str
    backends: tuple[str, ...] = ALL_BACKENDS
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: tuple[Option, ...] | None = None


schedulers: dict[str, SchedulerSpec] = {}


def register(name: str, entry_point: str, description: str, backends: tuple[str, ...] = ALL_BACKENDS,
             options: tuple[Option, ...] | None = None, **kwargs: Any) -> None:
    """Register ``name`` -> ``"module:factory"``; ``options`` overrides what the factory declares."""
    if name in schedulers:
        raise ValueError(f"scheduler {name!r} is already registered")
    schedulers[name] = SchedulerSpec(name, entry_point, description, backends, kwargs, options)


def spec(name: str) -> SchedulerSpec:
    """The registered scheduler ``name``, or a user's ``module:function`` factory (imported now)."""
    if name in schedulers:
        return schedulers[name]
    if ":" in name:
        factory = _factory(name, name)
        backends = tuple(getattr(factory, "backends", ALL_BACKENDS))
        return SchedulerSpec(name, name, (factory.__doc__ or "").strip().split("\n")[0], backends)
    raise UserError(f"unknown scheduler {name!r}; known schedulers: {', '.join(schedulers)} "
                    f"(or module:function for your own)")


# The extra of pyproject.toml that installs each optional package a registered scheduler imports.
_EXTRAS = {"smac": "smac", "ConfigSpace": "smac", "optuna": "optuna"}


def _factory(name: str, entry_point: str) -> Callable[..., Any]:
    module_name, _, attr = entry_point.partition(":")
    if not module_name or not attr:
        raise UserError(f"scheduler entry point {entry_point!r} must look like 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("ohgw_bench") or e.name == module_name:
            raise UserError(f"scheduler {name!r}: its module {e.name!r} cannot be imported") from None
        top = (e.name or "").partition(".")[0]
        extra = _EXTRAS.get(top, "all")
        raise UserError(f"scheduler {name!r} needs the package {top!r} (the {extra!r} extra): "
                        f"pip install -e '.[{extra}]'") from None
    except Exception as e:  # a user's module with a SyntaxError or a failing import-time statement
        raise UserError(f"scheduler {name!r}: importing {module_name!r} failed: {type(e).__name__}: {e}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserError(f"scheduler {name!r}: module {module_name!r} has no function {attr!r}")
    return factory


def declared_options(name: str) -> tuple[Option, ...]:
    """The options scheduler ``name`` takes: registration, else ``factory.options``, else module ``OPTIONS``."""
    s = spec(name)
    if s.options is not None:
        return s.options
    factory = _factory(name, s.entry_point)
    declared = getattr(factory, "options", None)
    if declared is None:
        declared = getattr(importlib.import_module(s.entry_point.partition(":")[0]), "OPTIONS", ())
    return tuple(declared)


def validate_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against scheduler ``name``'s declarations, defaults filled (one-line UserError)."""
    return validate(declared_options(name), given, f"scheduler {name!r}")


def canonical_name(name: str) -> str:
    """The canonical name of a scheduler: an alias (``hyperband-bo``) resolves to the first name
    registered with the same factory and kwargs (``bohb``), so that an alias and its target share
    one folder and one tuple. A user's ``module:function`` is its own name; an unknown name is a
    UserError naming the known ones."""
    target = spec(name)
    for other, s in schedulers.items():  # registration order: the first is canonical
        if s.entry_point == target.entry_point and s.kwargs == target.kwargs:
            return other
    return name


def build(name: str, ctx: SchedulerContext, backend: str | None = None) -> Any:
    """Scheduler ``name`` for ``ctx`` with its options validated (the door for scripts and tests;
    a study's options were validated when it was resolved and go through :func:`instantiate`)."""
    s = spec(name)
    if backend is not None and backend not in s.backends:
        raise UserError(f"scheduler {name!r} does not support --backend {backend}; it supports: {', '.join(s.backends)}")
    ctx.options = validate_options(name, ctx.options)
    return instantiate(name, ctx)


def instantiate(name: str, ctx: SchedulerContext) -> Any:
    """Call scheduler ``name``'s factory on ``ctx``, whose options are already checked and complete."""
    s = spec(name)
    return _factory(name, s.entry_point)(ctx, **s.kwargs)


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
_SMAC_OPTIONS = (
    Option("eta", int, 3, "Hyperband reduction factor", low=2, aliases=("reduction_factor",)),
    Option("min_trials", int, None, "fit the model on the highest budget with at least this many results "
           "(default: SMAC's, 1)", low=1, nullable=True),
    Option("save_every", int, None, "write SMAC's runhistory every n tells (default: smac.py's)", low=1, nullable=True),
)
register("smac-hyperband", "ohgw_bench.baselines.smac:build_hyperband",
         "SMAC 2.4 Hyperband facade (random configs, Hyperband intensifier) through ask/tell",
         options=_SMAC_OPTIONS)
register("smac-bohb", "ohgw_bench.baselines.smac:build_multi_fidelity",
         "SMAC 2.4 multi-fidelity facade (random forest + Hyperband, BOHB-like) through ask/tell",
         options=_SMAC_OPTIONS + (Option("initial_design_size", int, None, "configs in the initial design "
                                         "(default: SMAC's, 10 per hyperparameter)", low=1, nullable=True),))
register("random", "ohgw_bench.baselines.synetune:build_random",
         "random search, every trial trained to the maximum fidelity (the floor)")
register("optuna-tpe-sh", "ohgw_bench.baselines.optuna:build_tpe_sh",
         "Optuna's TPESampler + SuccessiveHalvingPruner through ask-and-tell (stopping type)")
register("optuna-tpe-hb", "ohgw_bench.baselines.optuna:build_tpe_hb",
         "Optuna's TPESampler + HyperbandPruner through ask-and-tell (stopping type)")
register("optuna-random-sh", "ohgw_bench.baselines.optuna:build_random_sh",
         "Optuna's RandomSampler + SuccessiveHalvingPruner through ask-and-tell: the Optuna family's floor")
