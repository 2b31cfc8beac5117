"""SMAC 2.4's Hyperband and multi-fidelity facades, driven through ask/tell as Syne Tune schedulers.

SMAC decides; Syne Tune's Tuner executes. ``suggest`` asks SMAC for a trial (config, budget) and
starts it with ``resource_attr = round(budget)``; when the trial reports reaching that budget,
the result is told to SMAC for exactly the asked trial and the trial is stopped. Every budget is
trained from scratch, as SMAC's model assumes (no checkpoint is carried between budgets).

Warm-start: :class:`WarmStartConfigSelector` replaces SMAC's config selector and applies
``warm_start.apply`` to each NEW configuration as it leaves the selector, before the
intensifier queues it and before the runhistory sees it. So SMAC asks for, records and models
the nudged config; successive halving re-asks the same (already nudged) config at higher
budgets and it is never nudged twice. A nudge that moves a config onto one SMAC already knows is
treated as SMAC treats a repeated proposal: the selector draws another one, and after
``max_new_config_tries`` such collisions in a row the space counts as exhausted.

Parallel workers: SMAC's successive-halving intensifier never blocks. When every trial of the
open brackets is running or waiting for results, ``ask`` opens a further bracket with new
configs, so ``suggest`` always has a trial to give. It returns None (which ends a Syne Tune
study) only when the config selector is exhausted (a small, purely discrete space, or a
warm-start that maps configs onto each other): SMAC's trial generator is finished then and can
never hand out anything again, not even promotions of trials still running.

Options (``ctx.options``): ``eta`` (3), ``initial_design_size`` (multi-fidelity only; SMAC's
default is 10 per hyperparameter), ``min_trials`` (SMAC's default 1: the model is fitted on the
highest budget that has at least this many results), ``save_every`` (write SMAC's runhistory
every n tells; writing it on every tell costs O(n) each).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ConfigSpace import Configuration
from smac import HyperbandFacade, MultiFidelityFacade, Scenario
from smac.facade.abstract_facade import AbstractFacade
from smac.main.config_selector import ConfigSelector
from smac.main.exceptions import ConfigurationSpaceExhaustedException
from smac.runhistory import StatusType, TrialInfo, TrialValue
from syne_tune.backend.trial_status import Trial
from syne_tune.constants import ST_WORKER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion

from ohgw_bench.baselines import SchedulerContext
from ohgw_bench.space import SearchSpace
from ohgw_bench.trial_plan import PLAN_KEY, TrialPlan, TrialPlans, trial_seed

logger = logging.getLogger(__name__)

WarmStartPair = tuple[dict[str, Any], dict[str, Any]]


class WarmStartError(ValueError):
    """A warm-start returned a config SMAC cannot record (missing, NaN, or a frozen value moved)."""


class WarmStartConfigSelector(ConfigSelector):
    """SMAC's config selector, with every new configuration passed through ``warm_start.apply``.

    The intensifier draws new configs only from here (``next(self.config_generator)``), so the
    nudged config is the one SMAC queues, asks, records and fits its model to. ``proposals``
    maps each nudged config to (config as proposed, warm-start record).
    """

    def __init__(self, scenario: Scenario, *, space: SearchSpace, warm_start: Any, seed: int,
                 **kwargs: Any) -> None:
        super().__init__(scenario, **kwargs)
        self.space = space
        self.warm_start = warm_start
        self.seed = seed
        self.n_applied = 0
        self.max_collisions = self._max_new_config_tries
        self.proposals: dict[Configuration, WarmStartPair] = {}
        self.seeds: dict[Configuration, int] = {}

    def __iter__(self) -> Iterator[Configuration]:
        collisions = 0
        for config in super().__iter__():
            if self.warm_start is None:
                self.seeds.setdefault(config, trial_seed(self.seed, len(self.seeds)))
                yield config
                continue
            nudged, pair = self._nudge(config)
            # SMAC's own selector has already put ``config`` in _processed_configs (its duplicate
            # check), so an unmoved config is new by construction. Only a nudge that MOVED the
            # config onto one SMAC knows, or a config already handed out, is a collision.
            moved = nudged != config
            if nudged in self.proposals or (moved and nudged in self._processed_configs):
                collisions += 1
                logger.debug("warm-start mapped a new config onto a known one; drawing another")
                if collisions >= self.max_collisions:
                    logger.warning("warm-start mapped %d new configs in a row onto known ones", collisions)
                    raise ConfigurationSpaceExhaustedException()
                continue
            collisions = 0
            if moved:
                self._processed_configs.append(nudged)
            self.proposals[nudged] = pair
            self.seeds[nudged] = self._last_seed
            yield nudged

    def _nudge(self, config: Configuration) -> tuple[Configuration, WarmStartPair]:
        proposed = native_values(self.space, config)
        seed = trial_seed(self.seed, self.n_applied)
        self._last_seed = seed
        self.n_applied += 1
        new_values, record = self.warm_start.apply(dict(proposed), seed)
        values = project(self.space, proposed, new_values)
        try:
            nudged = Configuration(self._scenario.configspace, values=values)
        except Exception as e:
            raise WarmStartError(f"warm-started config {values} is not legal in SMAC's space: {e}") from e
        nudged.origin = f"{config.origin} + warm-start"
        return nudged, (proposed, dict(record))


def native_values(space: SearchSpace, config: Configuration) -> dict[str, Any]:
    """The search-space values of a SMAC config as plain Python numbers."""
    return {p.name: int(config[p.name]) if p.integer else float(config[p.name]) for p in space}


def project(space: SearchSpace, proposed: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Clip the movable values of ``new`` to their bounds; refuse anything SMAC could not record.

    Integers and hyperparameters without a gradient path must come back unchanged: SMAC would
    otherwise record a config that its own sampler never proposed and the contract excludes.
    """
    out: dict[str, Any] = {}
    for p in space:
        if p.name not in new:
            raise WarmStartError(f"warm-start dropped hyperparameter {p.name!r}")
        if not p.movable:
            if new[p.name] != proposed[p.name]:
                raise WarmStartError(
                    f"warm-start changed {p.name!r} ({proposed[p.name]} -> {new[p.name]}), "
                    "which it must leave untouched"
                )
            out[p.name] = proposed[p.name]
            continue
        try:
            value = float(new[p.name])
        except (TypeError, ValueError):
            raise WarmStartError(f"warm-start gave {p.name!r} = {new[p.name]!r}, not a number") from None
        if not math.isfinite(value):
            raise WarmStartError(f"warm-start gave {p.name!r} = {value}")
        out[p.name] = min(p.high, max(p.low, value))
    return out


class SMACScheduler(TrialScheduler):
    """One SMAC facade (Hyperband or multi-fidelity) as a Syne Tune scheduler, with warm-start.

    Trial lifecycle: ``suggest`` asks SMAC; ``on_trial_add`` binds the asked TrialInfo to the
    Syne Tune trial id; the first result with ``resource_attr >= round(budget)`` is told to SMAC
    and answered STOP. A failed trial, or one that ends before its budget, is told as crashed
    with SMAC's crash cost, so no asked trial stays RUNNING in SMAC's runhistory.
    """

    applies_warm_start = True

    def __init__(self, ctx: SchedulerContext, facade: type[AbstractFacade], *, eta: int = 3,
                 initial_design_size: int | None = None, min_trials: int = 1, save_every: int = 50) -> None:
        super().__init__(random_seed=ctx.seed)
        if ctx.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {ctx.mode!r}")
        self.metric = ctx.metric
        self.mode = ctx.mode
        self.resource_attr = ctx.resource_attr
        self.space = ctx.space
        self.save_every = max(1, int(save_every))
        self.constants = {k: v for k, v in ctx.config_space.items() if not hasattr(v, "sample")}
        self.facade_name = facade.__name__
        self.smac = make_facade(ctx, facade, eta=int(eta), initial_design_size=initial_design_size,
                                min_trials=int(min_trials))
        self.selector: WarmStartConfigSelector = self.smac.intensifier.config_selector
        self.plans: TrialPlans = ctx.plans if ctx.plans is not None else TrialPlans(ctx.seed)
        # Only a study's backend takes a plan's ticket out of the config; any other gets none.
        self.plan_key: str | None = PLAN_KEY if ctx.plans is not None else None
        self._charged: set[Configuration] = set()
        self._asked: deque[TrialInfo] = deque()
        self._running: dict[int, TrialInfo] = {}
        self._trials: dict[int, TrialInfo] = {}
        self._told: set[int] = set()
        self._exhausted = False

    def metric_names(self) -> list[str]:
        return [self.metric]

    def metric_mode(self) -> str:
        return self.mode

    def suggest(self) -> TrialSuggestion | None:
        """The next trial SMAC asks for; None only once SMAC's config selector is exhausted."""
        if self._exhausted:
            return None
        try:
            info = self.smac.ask()
        except (StopIteration, ConfigurationSpaceExhaustedException):
            logger.warning("SMAC has no new configuration to propose: configuration space exhausted")
            self._exhausted = True
            return None
        self._asked.append(info)
        ticket = self.plans.propose(self._plan(info))
        config = self._trial_config(info)
        if self.plan_key is not None:
            config[self.plan_key] = ticket
        return TrialSuggestion.start_suggestion(config)

    def on_trial_add(self, trial: Trial) -> None:
        # The asked trial this one trains: matched by config, as trials need not start in the asked order.
        keys = [*self.space.names, self.resource_attr]
        for i, info in enumerate(self._asked):
            asked = self._trial_config(info)
            if all(trial.config.get(k) == asked[k] for k in keys):
                del self._asked[i]
                break
        else:
            raise RuntimeError(f"trial {trial.trial_id} was started with a config SMAC did not ask for")
        self._running[trial.trial_id] = info
        self._trials[trial.trial_id] = info

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        info = self._running.get(trial.trial_id)
        if info is None:
            return SchedulerDecision.STOP
        if float(result.get(self.resource_attr, -math.inf)) < target_resource(info):
            return SchedulerDecision.CONTINUE
        self._tell(trial.trial_id, result)
        return SchedulerDecision.STOP

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        if trial.trial_id in self._running:
            logger.warning(
                "trial %s ended at %s=%s before its budget %s; told to SMAC as crashed",
                trial.trial_id, self.resource_attr, result.get(self.resource_attr),
                target_resource(self._running[trial.trial_id]),
            )
            self._tell(trial.trial_id, None)

    def on_trial_error(self, trial: Trial) -> None:
        if trial.trial_id in self._running:
            self._tell(trial.trial_id, None)

    def warm_start_info(self, trial_id: int) -> WarmStartPair | None:
        """(config as proposed, warm-start record) of the SMAC config trial ``trial_id`` trains.

        A config re-run at a higher budget returns the pair from when it was first proposed.
        None without a warm-start or for an unknown trial.
        """
        info = self._trials.get(trial_id)
        if info is None:
            return None
        pair = self.selector.proposals.get(info.config)
        return None if pair is None else (dict(pair[0]), dict(pair[1]))

    def smac_trial(self, trial_id: int) -> TrialInfo | None:
        """The TrialInfo SMAC asked for when it proposed Syne Tune trial ``trial_id``."""
        return self._trials.get(trial_id)

    @property
    def running_trial_ids(self) -> list[int]:
        """Syne Tune trials asked by SMAC and not yet told."""
        return list(self._running)

    def metadata(self) -> dict[str, Any]:
        return {
            "scheduler_name": f"SMAC {self.facade_name}",
            "metric_names": self.metric_names(),
            "metric_mode": self.metric_mode(),
            "smac_output_directory": str(self.smac.scenario.output_directory),
        }

    def __getstate__(self) -> dict[str, Any]:
        """SMAC's generators cannot be pickled; its state lives in its output directory instead."""
        return {"metric": self.metric, "mode": self.mode, "facade_name": self.facade_name,
                "smac_output_directory": str(self.smac.scenario.output_directory)}

    def _trial_config(self, info: TrialInfo) -> dict[str, Any]:
        """Constants, hyperparameters and the target budget: what the Tuner starts."""
        config = dict(self.constants)
        config.update(native_values(self.space, info.config))
        config[self.resource_attr] = target_resource(info)
        return config

    def _plan(self, info: TrialInfo) -> TrialPlan:
        """The trial's plan: its config's training seed (the one its warm-start used), the
        proposal and record, and the warm-start cost, which only the config's first run pays
        (re-runs at higher budgets train from scratch)."""
        pair = self.selector.proposals.get(info.config)
        first_run = info.config not in self._charged
        self._charged.add(info.config)
        return TrialPlan(seed=self.selector.seeds.get(info.config),
                         proposed=None if pair is None else dict(pair[0]),
                         record=None if pair is None else dict(pair[1]),
                         charge=float(pair[1].get("sim_seconds", 0.0)) if pair is not None and first_run else 0.0)

    def _tell(self, trial_id: int, result: dict[str, Any] | None) -> None:
        info = self._running.pop(trial_id)
        metric = None if result is None else result.get(self.metric)
        if metric is None or not math.isfinite(float(metric)):
            value = TrialValue(cost=self.smac.scenario.crash_cost, status=StatusType.CRASHED,
                               additional_info={"trial_id": trial_id})
        else:
            cost = float(metric) if self.mode == "min" else -float(metric)
            value = TrialValue(cost=cost, time=float(result.get(ST_WORKER_TIME, 0.0)),
                               additional_info={"trial_id": trial_id})
        self._told.add(trial_id)
        self.smac.tell(info, value, save=len(self._told) % self.save_every == 0)


def target_resource(info: TrialInfo) -> int:
    """SMAC's float budget as the integer resource the trial trains to."""
    if info.budget is None:
        raise RuntimeError("SMAC asked for a trial without a budget; the intensifier must be Hyperband")
    return max(1, int(round(info.budget)))


def make_facade(ctx: SchedulerContext, facade: type[AbstractFacade], *, eta: int,
                initial_design_size: int | None, min_trials: int = 1) -> AbstractFacade:
    """Build the facade so that it never prompts: fresh output folder, overwrite, no root logging.

    The multi-fidelity facade's random forest keeps SMAC's settings except two that change speed
    only: one job (joblib threads cost more than ten small trees) and no leaf limit instead of
    2**20 leaves, which is never reached but makes scikit-learn's best-first builder take
    ~0.5 s per tree; the trees then differ only in the order their random splits are drawn.
    """
    logging.getLogger("smac").setLevel(logging.WARNING)
    root = Path(ctx.output_dir) if ctx.output_dir is not None else Path(tempfile.mkdtemp(prefix="ohgw-smac-"))
    scenario = Scenario(
        ctx.space.to_configspace(seed=ctx.seed),
        output_directory=root / "smac",
        name=facade.__name__,
        deterministic=True,
        n_trials=10**9,
        min_budget=ctx.min_resource,
        max_budget=ctx.max_resource,
        seed=ctx.seed,
    )
    kwargs: dict[str, Any] = {}
    if facade is MultiFidelityFacade:
        model = MultiFidelityFacade.get_model(scenario)
        model._rf_opts.update(n_jobs=1, max_leaf_nodes=None)
        kwargs["model"] = model
    if initial_design_size is not None and facade is MultiFidelityFacade:
        kwargs["initial_design"] = MultiFidelityFacade.get_initial_design(scenario, n_configs=int(initial_design_size))
    selector = WarmStartConfigSelector(
        scenario, space=ctx.space, warm_start=ctx.warm_start, seed=ctx.seed,
        retrain_after=8, max_new_config_tries=16, min_trials=min_trials,
    )
    return facade(
        scenario,
        None,
        intensifier=facade.get_intensifier(scenario, eta=eta),
        config_selector=selector,
        logging_level=False,
        overwrite=True,
        **kwargs,
    )


def _settings(ctx: SchedulerContext, kw: dict[str, Any]) -> dict[str, Any]:
    merged = {**kw, **ctx.options}
    out: dict[str, Any] = {"eta": int(merged.get("eta", 3))}
    for key in ("initial_design_size", "min_trials", "save_every"):
        if merged.get(key) is not None:
            out[key] = int(merged[key])
    return out


def build_hyperband(ctx: SchedulerContext, **kw: Any) -> SMACScheduler:
    """SMAC's Hyperband facade: random configs (default config first), Hyperband intensifier."""
    settings = _settings(ctx, kw)
    settings.pop("initial_design_size", None)
    return SMACScheduler(ctx, HyperbandFacade, **settings)


def build_multi_fidelity(ctx: SchedulerContext, **kw: Any) -> SMACScheduler:
    """SMAC's multi-fidelity facade: random-forest BO over the highest budget with data + Hyperband."""
    return SMACScheduler(ctx, MultiFidelityFacade, **_settings(ctx, kw))
