"""Optuna 5's samplers and pruners, driven through ask-and-tell as Syne Tune schedulers.

Optuna decides; Syne Tune's Tuner executes. ``suggest`` asks the Optuna study for a trial over
the task's search space (:func:`distributions`) and starts it with the fidelity key at its
maximum; every report the study clock produces goes to ``trial.report(value, step=fidelity)``,
and the pruner's own rung logic (``trial.should_prune()``) decides whether the trial stops
(PRUNED) or goes on; a trial that reaches the maximum fidelity is told COMPLETE with its last
value. Nothing of successive halving is reimplemented here: the rungs, the competing values and
Hyperband's brackets are Optuna's (``SuccessiveHalvingPruner``, ``HyperbandPruner``).

Warm-start: these schedulers are wrapped by
:class:`~ohgw_bench.baselines.warmstarted.WarmStarted` like every other, which nudges the
sampler's proposal between ``suggest`` and the trial's start. So that the sampler learns from
the config actually trained, :meth:`OptunaScheduler.on_trial_add` writes the started
(nudged) values into the asked trial's params before its first report, through
``BaseStorage.set_trial_param`` of the study's own in-memory storage, and keeps the sampler's
proposal as the user attribute ``ohgw_proposed``. TPE's history (``study.get_trials()``) thus
holds the trained configs, one Optuna trial per Syne Tune trial. (Enqueueing the nudged config
as a second trial would leave the proposal behind as an extra, failed trial in every study.)

Seeds: the sampler is seeded with the study seed and the Optuna study has a fixed name (which
Hyperband hashes to assign brackets), so the same seed gives the same proposals in every arm.

Backends: both. The Optuna study lives in the scheduler (the Tuner's process); trials report
through Syne Tune on the simulated clock or from their own processes alike.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import Domain
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion

from ohgw_bench.baselines import SchedulerContext
from ohgw_bench.errors import UserError
from ohgw_bench.options import Option, declares
from ohgw_bench.space import SearchSpace

PROPOSED_ATTR = "ohgw_proposed"
STUDY_NAME = "ohgw_bench"

ETA = Option("eta", int, 3, "reduction factor of the pruner's rungs (Optuna's SH default is 4, ours 3 "
             "like the other schedulers)", low=2, aliases=("reduction_factor",))
MIN_RESOURCE = Option("min_resource", int, None, "the pruner's first rung (default: the task's minimum fidelity)",
                      low=1, nullable=True)
BOOTSTRAP = Option("bootstrap_count", int, 0, "trials a rung needs before it prunes anything (Optuna's default 0)",
                   low=0)
SH_OPTIONS = (Option("min_early_stopping_rate", int, 0, "s of successive halving: first rung at "
                     "min_resource * eta**s (Optuna's default 0)", low=0),)
TPE_OPTIONS = (
    Option("n_startup_trials", int, 10, "random trials before TPE models (Optuna's default 10)", low=0),
    Option("multivariate", bool, False, "joint TPE over all hyperparameters (Optuna's default false)"),
    Option("constant_liar", bool, False, "treat running trials as bad to spread parallel proposals "
           "(Optuna's default false)"),
)


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """The Optuna distributions of a search space: same bounds and scales as every other family."""
    out: dict[str, BaseDistribution] = {}
    for p in space:
        if p.integer:
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[p.name] = FloatDistribution(float(p.low), float(p.high), log=p.log)
    return out


class OptunaScheduler(TrialScheduler):
    """One Optuna study, asked for each new trial and told each result; stopping type (no pauses)."""

    def __init__(self, ctx: SchedulerContext, sampler: optuna.samplers.BaseSampler,
                 pruner: optuna.pruners.BasePruner):
        super().__init__(random_seed=ctx.seed)
        self.ctx = ctx
        self.distributions = distributions(ctx.space)
        self.storage = optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(storage=self.storage, sampler=sampler, pruner=pruner,
                                         study_name=STUDY_NAME,
                                         direction="minimize" if ctx.mode == "min" else "maximize")
        self._study_id = self.storage.get_study_id_from_name(STUDY_NAME)
        self.constants = {k: v for k, v in ctx.config_space.items()
                          if k not in ctx.space and not isinstance(v, Domain)}
        self._asked: list[optuna.Trial] = []  # asked in suggest, bound to a trial id in on_trial_add
        self.trials: dict[int, optuna.Trial] = {}  # Syne Tune trial id -> Optuna trial
        self.configs: dict[int, dict[str, Any]] = {}
        self.told: dict[int, TrialState] = {}
        self._last: dict[int, float] = {}

    def metric_names(self) -> list[str]:
        return [self.ctx.metric]

    def metric_mode(self) -> str:
        return self.ctx.mode

    def suggest(self) -> TrialSuggestion | None:
        trial = self.study.ask(self.distributions)
        self._asked.append(trial)
        config = {**self.constants, **trial.params, self.ctx.resource_attr: self.ctx.max_resource}
        return TrialSuggestion.start_suggestion(config)

    def on_trial_add(self, trial: Trial) -> None:
        """Bind the asked Optuna trial and record the config the trial actually starts with."""
        ot = self._asked.pop(0)
        self.trials[trial.trial_id] = ot
        self.configs[trial.trial_id] = dict(trial.config)
        proposed = dict(ot.params)
        started = {name: trial.config[name] for name in self.distributions}
        storage_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, ot.number)
        if started != proposed:
            for name, dist in self.distributions.items():
                self.storage.set_trial_param(storage_id, name, dist.to_internal_repr(started[name]), dist)
        self.storage.set_trial_user_attr(storage_id, PROPOSED_ATTR, proposed)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        tid = trial.trial_id
        if tid in self.told or self.ctx.metric not in result or self.ctx.resource_attr not in result:
            return SchedulerDecision.CONTINUE
        step = int(result[self.ctx.resource_attr])
        value = float(result[self.ctx.metric])
        self._last[tid] = value
        ot = self.trials[tid]
        if not math.isfinite(value):
            self._tell(tid, TrialState.FAIL)
            return SchedulerDecision.STOP
        ot.report(value, step)
        if step >= self.ctx.max_resource:
            self._tell(tid, TrialState.COMPLETE, value)
            return SchedulerDecision.CONTINUE
        if ot.should_prune():
            self._tell(tid, TrialState.PRUNED)
            return SchedulerDecision.STOP
        return SchedulerDecision.CONTINUE

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        """A trial that ended without reaching the maximum (its config asked for less) counts as done."""
        if trial.trial_id not in self.told and trial.trial_id in self._last:
            self._tell(trial.trial_id, TrialState.COMPLETE, self._last[trial.trial_id])

    def on_trial_error(self, trial: Trial) -> None:
        if trial.trial_id in self.trials and trial.trial_id not in self.told:
            self._tell(trial.trial_id, TrialState.FAIL)

    def on_trial_remove(self, trial: Trial) -> None:
        self.on_trial_error(trial)

    def _tell(self, tid: int, state: TrialState, value: float | None = None) -> None:
        self.told[tid] = state
        self.study.tell(self.trials[tid], value, state=state)

    def best_trial(self) -> int | None:
        """The Syne Tune id of Optuna's best complete trial (None before one completes)."""
        done = [t for t, s in self.told.items() if s == TrialState.COMPLETE]
        if not done:
            return None
        sign = 1.0 if self.ctx.mode == "min" else -1.0
        return min(done, key=lambda t: (sign * self._last[t], t))

    def metadata(self) -> dict[str, Any]:
        return {"scheduler_name": type(self).__name__,
                "scheduler_kwargs": {"sampler": type(self.study.sampler).__name__,
                                     "pruner": type(self.study.pruner).__name__,
                                     "optuna": optuna.__version__, "seed": self.ctx.seed}}


def _min_resource(ctx: SchedulerContext) -> int:
    value = ctx.options.get("min_resource")
    if value is None:
        return int(ctx.min_resource)
    if not ctx.min_resource <= value <= ctx.max_resource:
        raise UserError(f"option 'min_resource' must lie in the task's fidelity range "
                        f"[{ctx.min_resource}, {ctx.max_resource}], got {value}")
    return int(value)


def _tpe(ctx: SchedulerContext) -> optuna.samplers.BaseSampler:
    o = ctx.options
    return optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=int(o["n_startup_trials"]),
                                      multivariate=bool(o["multivariate"]), constant_liar=bool(o["constant_liar"]))


def _successive_halving(ctx: SchedulerContext) -> optuna.pruners.BasePruner:
    o = ctx.options
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=_min_resource(ctx), reduction_factor=int(o["eta"]),
        min_early_stopping_rate=int(o["min_early_stopping_rate"]), bootstrap_count=int(o["bootstrap_count"]))


def _hyperband(ctx: SchedulerContext) -> optuna.pruners.BasePruner:
    o = ctx.options
    return optuna.pruners.HyperbandPruner(min_resource=_min_resource(ctx), max_resource=int(ctx.max_resource),
                                          reduction_factor=int(o["eta"]), bootstrap_count=int(o["bootstrap_count"]))


def _quiet() -> None:
    # Optuna logs every tell at INFO ("Trial 3 pruned."); a study's rows already say it.
    optuna.logging.set_verbosity(logging.WARNING)


@declares(ETA, MIN_RESOURCE, BOOTSTRAP, *SH_OPTIONS, *TPE_OPTIONS)
def build_tpe_sh(ctx: SchedulerContext) -> OptunaScheduler:
    """TPESampler + SuccessiveHalvingPruner (asynchronous successive halving over TPE proposals)."""
    _quiet()
    return OptunaScheduler(ctx, _tpe(ctx), _successive_halving(ctx))


@declares(ETA, MIN_RESOURCE, BOOTSTRAP, *TPE_OPTIONS)
def build_tpe_hb(ctx: SchedulerContext) -> OptunaScheduler:
    """TPESampler + HyperbandPruner (brackets of successive halving; TPE sees its trial's bracket)."""
    _quiet()
    return OptunaScheduler(ctx, _tpe(ctx), _hyperband(ctx))


@declares(ETA, MIN_RESOURCE, BOOTSTRAP, *SH_OPTIONS)
def build_random_sh(ctx: SchedulerContext) -> OptunaScheduler:
    """RandomSampler + SuccessiveHalvingPruner: the Optuna family's floor."""
    _quiet()
    return OptunaScheduler(ctx, optuna.samplers.RandomSampler(seed=ctx.seed), _successive_halving(ctx))
