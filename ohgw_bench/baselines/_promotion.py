"""Rung bookkeeping shared by promotion-type ASHA and PASHA, and config sampling for our schedulers.

Promotion-type ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning",
Algorithm 2) keeps, for each rung ``r_min * eta**k``, the metric every trial reported there.
Whenever a worker is free it promotes the best trial of the highest rung that has one among
its top ``floor(n / eta)`` not yet promoted, and only otherwise starts a new config at the
bottom rung. That is the default ``promotion_rule="paper"``. Syne Tune's reference promotion
ASHA instead promotes a paused trial whose value is within the rung's ``1/eta`` quantile
(``numpy.quantile``, linear interpolation), which lets a trial out of a rung of only two
(``promotion_rule="quantile"``); among several such trials ours takes the best. Trials are paused at their rung and resumed from their checkpoint, so a promoted
trial only pays for the epochs between two rungs. PASHA is the same scheduler with a top rung
that moves, so it subclasses :class:`PromotionScheduler` and overrides two hooks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import Domain
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion

from ohgw_bench.baselines import SchedulerContext

PROMOTION_RULES = ("paper", "quantile")


def rung_levels(min_resource: int, max_resource: int, eta: int) -> list[int]:
    """``r_min * eta**k`` below ``max_resource``, then ``max_resource`` itself as the last rung."""
    if eta < 2:
        raise ValueError(f"reduction factor eta must be at least 2, got {eta}")
    if not 1 <= min_resource <= max_resource:
        raise ValueError(f"need 1 <= min_resource <= max_resource, got {min_resource}, {max_resource}")
    levels = []
    level = min_resource
    while level < max_resource:
        levels.append(level)
        level *= eta
    levels.append(max_resource)
    return levels


def sample_config(ctx: SchedulerContext, rng: np.random.Generator) -> dict[str, Any]:
    """A new config: uniform in the search space's unit cube, constants copied from the config space.

    Drawing from our own seeded generator (not Syne Tune's, which uses numpy's global one) makes
    the same seed give the same proposals whatever else runs in the process.
    """
    config: dict[str, Any] = {}
    for name, value in ctx.config_space.items():
        if name in ctx.space:
            continue
        if isinstance(value, Domain):
            seed = int(rng.integers(2**31 - 1))
            config[name] = value.sample(random_state=np.random.RandomState(seed))
        else:
            config[name] = value
    config.update(ctx.space.sample(rng))
    return config


class PromotionScheduler(TrialScheduler):
    """Promotion-type ASHA: promote the top 1/eta of a rung when a worker is free, else start new.

    The config a trial is resumed with is the one it was added with (``trial.config``, which a
    warm-start wrapper may have nudged after :meth:`suggest`), with only the resource key
    changed: the trial trains until that resource and reports how far it got under the same key.
    """

    def __init__(self, ctx: SchedulerContext, reduction_factor: int = 3, promotion_rule: str = "paper"):
        super().__init__(random_seed=ctx.seed)
        if promotion_rule not in PROMOTION_RULES:
            raise ValueError(f"promotion_rule must be one of {PROMOTION_RULES}, got {promotion_rule!r}")
        self.ctx = ctx
        self.eta = int(reduction_factor)
        self.promotion_rule = promotion_rule
        self.levels = rung_levels(ctx.min_resource, ctx.max_resource, self.eta)
        self._rng = np.random.default_rng(ctx.seed)
        self._sign = 1.0 if ctx.mode == "min" else -1.0
        self.rungs: list[dict[int, float]] = [{} for _ in self.levels]
        self.promoted: list[set[int]] = [set() for _ in self.levels]
        self.target: dict[int, int] = {}
        self.configs: dict[int, dict[str, Any]] = {}
        self.paused: set[int] = set()

    def metric_names(self) -> list[str]:
        return [self.ctx.metric]

    def metric_mode(self) -> str:
        return self.ctx.mode

    def metadata(self) -> dict[str, Any]:
        return {
            "scheduler_name": type(self).__name__,
            "scheduler_kwargs": {"reduction_factor": self.eta, "rung_levels": self.levels,
                                 "promotion_rule": self.promotion_rule,
                                 "seed": self.ctx.seed},
        }

    def top_rung(self) -> int:
        """Index of the highest rung trials may currently reach."""
        return len(self.levels) - 1

    def promotable(self, k: int) -> int | None:
        """The best paused, not yet promoted trial of rung ``k`` that the promotion rule admits:
        ranked in the top ``floor(n / eta)`` ("paper"), or valued within the rung's ``1/eta``
        quantile once the rung has two values ("quantile")."""
        rung = self.rungs[k]
        ranked = sorted(rung, key=lambda t: (rung[t], t))
        if self.promotion_rule == "quantile":
            if len(rung) < 2:
                return None
            cutoff = float(np.quantile(np.array(list(rung.values())), 1.0 / self.eta))
            top = [t for t in ranked if rung[t] <= cutoff]
        else:
            top = ranked[: len(rung) // self.eta]
        for trial_id in top:
            if trial_id not in self.promoted[k] and trial_id in self.paused:
                return trial_id
        return None

    def suggest(self) -> TrialSuggestion | None:
        for k in reversed(range(self.top_rung())):
            trial_id = self.promotable(k)
            if trial_id is not None:
                self.promoted[k].add(trial_id)
                self.paused.discard(trial_id)
                self.target[trial_id] = k + 1
                config = dict(self.configs[trial_id])
                config[self.ctx.resource_attr] = self.levels[k + 1]
                return TrialSuggestion.resume_suggestion(trial_id, config)
        config = sample_config(self.ctx, self._rng)
        config[self.ctx.resource_attr] = self.levels[0]
        return TrialSuggestion.start_suggestion(config)

    def on_trial_add(self, trial: Trial) -> None:
        self.configs[trial.trial_id] = dict(trial.config)
        self.target[trial.trial_id] = 0

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        trial_id = trial.trial_id
        if self.ctx.metric not in result or self.ctx.resource_attr not in result:
            return SchedulerDecision.CONTINUE
        resource = int(result[self.ctx.resource_attr])
        value = self._sign * float(result[self.ctx.metric])
        self.observe(trial_id, resource, value)
        k = self.target[trial_id]
        if resource < self.levels[k]:
            return SchedulerDecision.CONTINUE
        self.rungs[k][trial_id] = value
        self.on_rung_record(k)
        if k == len(self.levels) - 1:
            return SchedulerDecision.CONTINUE
        self.paused.add(trial_id)
        return SchedulerDecision.PAUSE

    def observe(self, trial_id: int, resource: int, value: float) -> None:
        """Every reported value (sign-flipped so lower is better); PASHA keeps the curves."""

    def on_rung_record(self, k: int) -> None:
        """Called after a trial's value at rung ``k`` is recorded; PASHA checks its ranking here."""

    def on_trial_error(self, trial: Trial) -> None:
        self.paused.discard(trial.trial_id)

    def best_trial(self) -> int | None:
        """The scheduler's choice: the best trial of the highest rung that has any."""
        for rung in reversed(self.rungs[: self.top_rung() + 1]):
            if rung:
                return min(rung, key=lambda t: (rung[t], t))
        return None
