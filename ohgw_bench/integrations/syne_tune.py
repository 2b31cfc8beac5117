"""A warm-started scheduler for a Syne Tune user's own Tuner script.

:class:`WarmStartScheduler` is the wrapper every scheduler of the benchmark runs in
(:class:`ohgw_bench.baselines.warmstarted.WarmStarted`), built from a task and warm-start
settings: each new config the base scheduler suggests is nudged before the trial starts, and
the base scheduler sees (and learns from) the nudged config. The trial's paired training seed
reaches your training function as the config key ``seed_key`` (default ``ohgw_seed``); add it
to your backend's config space as a constant (``"ohgw_seed": 0``) so that Syne Tune passes
it through. The base scheduler never sees that key. ``plans.get(trial_id)`` holds each
trial's seed, proposal and warm-start record.
"""

from __future__ import annotations

from typing import Any

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialScheduler

from ohgw_bench.baselines.warmstarted import WarmStarted
from ohgw_bench.library import WarmStarter

__all__ = ["SEED_KEY", "WarmStartScheduler", "WarmStarted"]

SEED_KEY = "ohgw_seed"


class WarmStartScheduler(WarmStarted):
    """``base`` with every new config warm-started for ``task``; the seed in ``config[seed_key]``."""

    def __init__(self, base: TrialScheduler, task: Any, settings: Any = "ohgw", seed: int = 0,
                 seed_key: str | None = SEED_KEY):
        warm = WarmStarter(task, settings, seed)
        super().__init__(base, warm, warm.task.space, int(seed), seed_key=seed_key, plan_key=None)
        self.task = warm.task

    def on_trial_add(self, trial: Trial) -> None:
        # The study's backends bind each plan to its trial id; a user's backend does not.
        self.bind(trial)
        super().on_trial_add(trial)
