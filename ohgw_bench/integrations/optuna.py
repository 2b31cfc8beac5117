"""Warm-started trials for an Optuna user's own ``objective(trial)``: a sampler wrapper.

:class:`WarmStartSampler` wraps any Optuna sampler. When a trial first suggests a value, the
wrapper asks the base sampler for the whole proposal over the task's search space (its
relative sample where it has one, its independent sample for the rest), applies the
warm-start, and hands the nudged values back as the trial's relative params. So
``trial.suggest_float("lr", ...)`` returns the nudged value, Optuna records it as the trial's
param, and the base sampler learns from the configs that were actually trained. The proposal,
the warm-start record and the paired training seed are kept by trial number
(:meth:`WarmStartSampler.plan`); :meth:`WarmStartSampler.training_seed` gives the seed your
objective should train from, the same for the n-th trial of every arm.

Suggest each hyperparameter with the task's own bounds (:func:`suggest_config` does it for
the whole space); parameters outside the task's space are left to the base sampler. One
trial at a time (``n_jobs=1``): the warm-start is not thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from ohgw_bench.baselines.optuna import distributions
from ohgw_bench.library import WarmStarter, paired_seed
from ohgw_bench.trial_plan import TrialPlan

__all__ = ["WarmStartSampler", "distributions", "suggest_config"]


class WarmStartSampler(BaseSampler):
    """``base``'s proposals over ``task``'s space, warm-started before the trial sees them."""

    def __init__(self, base: BaseSampler, task: Any, settings: Any = "ohgw", seed: int = 0):
        self.base = base
        self.warm = WarmStarter(task, settings, seed)
        self.task = self.warm.task
        self.study_seed = int(seed)
        self.space = distributions(self.task.space)
        self.plans: dict[int, TrialPlan] = {}

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self.space)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        own = self.base.infer_relative_search_space(study, trial)
        own = {k: v for k, v in own.items() if self.space.get(k) == v}
        proposed = dict(self.base.sample_relative(study, trial, own)) if own else {}
        for name, dist in self.space.items():
            if name not in proposed:
                proposed[name] = self.base.sample_independent(study, trial, name, dist)
        seed = self.training_seed(trial)
        nudged, record = self.warm.apply(proposed, seed)
        self.plans[trial.number] = TrialPlan(seed=seed, proposed=proposed, record=record,
                                             charge=float(record.get("sim_seconds", 0.0)))
        return nudged

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()

    def training_seed(self, trial: optuna.Trial | FrozenTrial) -> int:
        """The paired seed of this trial: the same for trial number n in the vanilla and OHGW arms."""
        return paired_seed(self.study_seed, trial.number)

    def plan(self, trial: optuna.Trial | FrozenTrial) -> TrialPlan | None:
        """Seed, proposal (before the warm-start) and warm-start record of a trial that suggested."""
        return self.plans.get(trial.number)


def suggest_config(trial: optuna.Trial, task: Any) -> dict[str, Any]:
    """Every hyperparameter of ``task``'s space suggested with its own bounds and scale."""
    space = task.space
    config: dict[str, Any] = {}
    for p in space:
        if p.integer:
            config[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            config[p.name] = trial.suggest_float(p.name, float(p.low), float(p.high), log=p.log)
    return config
