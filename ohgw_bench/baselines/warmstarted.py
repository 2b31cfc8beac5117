"""The one way a warm-start wraps a scheduler: nudge each NEW config between suggest and start.

The wrapper sits between the scheduler (deciding) and the Tuner (executing). A start
suggestion from the base scheduler is handed to the warm-start, and the nudged config is what
the Tuner starts, so ``trial.config`` (which the base scheduler and its searcher learn from in
``on_trial_add`` / ``on_trial_result``) and the result rows all see the config actually
trained. Resumes keep the trial's config (already nudged) and are passed through untouched.

Each new trial also gets a training seed drawn from the study seed and the index of the
proposal, so the n-th proposal of a vanilla arm and of an OHGW arm with the same study seed
train from the same initial weights (paired seeds). The seed, the proposed config, the
warm-start record and its charge go to the study's :class:`~ohgw_bench.trial_plan.TrialPlans`,
never into ``trial.config``: the suggested config carries only the plan's ticket
(``plan_key``), which the study's backend takes out and binds to the trial's id.

In a user's own Tuner script (``ohgw_bench.integrations.syne_tune``, docs/library.md) there is
no study backend to read the plans, so ``seed_key`` hands the training seed to the training
function instead: the config a trial starts or resumes with carries it under that key, and the
base scheduler still sees only hyperparameters and the fidelity (the key is taken out of every
trial it is shown). There ``plan_key`` is None, as a user's backend would pass a ticket on to the
training function, and :meth:`WarmStarted.bind` finds a new trial's plan from its seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from ohgw_bench.space import SearchSpace
from ohgw_bench.trial_plan import PLAN_KEY, TrialPlan, TrialPlans, trial_seed

__all__ = ["WarmStarted", "trial_seed"]


class WarmStarted(TrialScheduler):
    """Apply ``warm_start.apply(config, trial_seed)`` to every newly started trial of ``base``."""

    applies_warm_start = True

    def __init__(self, base: TrialScheduler, warm_start: Any, space: SearchSpace, study_seed: int,
                 plans: TrialPlans | None = None, seed_key: str | None = None,
                 plan_key: str | None = PLAN_KEY):
        super().__init__(random_seed=study_seed)
        self.base = base
        self.warm_start = warm_start
        self.space = space
        self.study_seed = study_seed
        self.plans = plans if plans is not None else TrialPlans(study_seed)
        self.seed_key = seed_key
        self.plan_key = plan_key
        self._seeds: dict[int, int] = {}  # trial id -> training seed, where seed_key is set
        self._tickets: dict[int, int] = {}  # training seed -> its plan's ticket, where plan_key is None
        self._new = 0

    def suggest(self) -> TrialSuggestion | None:
        suggestion = self.base.suggest()
        if suggestion is None or suggestion.config is None:
            return suggestion
        if not suggestion.spawn_new_trial_id or suggestion.checkpoint_trial_id is not None:
            if self.seed_key is not None and suggestion.checkpoint_trial_id in self._seeds:
                suggestion.config = {**suggestion.config, self.seed_key: self._seeds[suggestion.checkpoint_trial_id]}
            return suggestion
        proposed = dict(suggestion.config)
        seed = trial_seed(self.study_seed, self._new)
        self._new += 1
        part = {name: proposed[name] for name in self.space.names}
        nudged, record = self.warm_start.apply(part, seed)
        ticket = self.plans.propose(TrialPlan(seed=seed, proposed=proposed, record=record,
                                              charge=float(record.get("sim_seconds", 0.0))))
        config = {**proposed, **nudged}
        if self.seed_key is not None:
            config[self.seed_key] = seed
        if self.plan_key is not None:
            config[self.plan_key] = ticket
        else:
            self._tickets[seed] = ticket
        return TrialSuggestion.start_suggestion(config)

    def bind(self, trial: Trial) -> TrialPlan | None:
        """Bind a trial started by a user's backend to its plan, found from the seed its config carries.

        Without a seed key nothing identifies the plan, and the trial stays without one.
        """
        seed = trial.config.get(self.seed_key) if self.seed_key is not None else None
        ticket = self._tickets.pop(seed, None) if seed is not None else None
        return self.plans.bind(trial.trial_id, ticket)

    def _shown(self, trial: Trial) -> Trial:
        """The trial as the base scheduler sees it: without the seed key and the plan key."""
        hidden = {k for k in (self.seed_key, self.plan_key) if k is not None and k in trial.config}
        if not hidden:
            return trial
        if self.seed_key in hidden:
            self._seeds.setdefault(trial.trial_id, int(trial.config[self.seed_key]))
        return dataclasses.replace(trial, config={k: v for k, v in trial.config.items() if k not in hidden})

    def on_trial_add(self, trial: Trial) -> None:
        self.base.on_trial_add(self._shown(trial))

    def on_trial_error(self, trial: Trial) -> None:
        self.base.on_trial_error(self._shown(trial))

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        return self.base.on_trial_result(self._shown(trial), result)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        self.base.on_trial_complete(self._shown(trial), result)

    def on_trial_remove(self, trial: Trial) -> None:
        self.base.on_trial_remove(self._shown(trial))

    def metric_names(self) -> list[str]:
        return self.base.metric_names()

    def metric_mode(self) -> str:
        return self.base.metric_mode()

    def metadata(self) -> dict[str, Any]:
        return {"scheduler_name": type(self.base).__name__, "wrapped_by": type(self).__name__}
