"""Per-trial harness data: what the study decided for a trial besides its hyperparameters.

A trial's plan is its training seed, the config the scheduler proposed (before any
warm-start), the warm-start record and the warm-start cost to charge to its first unit. Plans
live here, beside ``trial.config`` and never in it: ``trial.config`` holds hyperparameters and
the fidelity only, which is all a scheduler or searcher may learn from.

Who writes and who reads (docs/design.md has the flow of one study):

- the warm-start paths write: :class:`~ohgw_bench.baselines.warmstarted.WarmStarted` for
  every wrapped scheduler, and SMAC's scheduler (``baselines/smac.py``), which warm-starts
  inside its own config selector;
- the backends read: the seed a trial's weights start from, and the charge (simulated clock);
- the study's recorder reads: the proposed config and the record of each row.

A scheduler proposes a plan in ``suggest``, before the Tuner gives the trial its id; the
backend binds it to the id when it schedules the trial, which the Tuner does right after the
suggestion (Syne Tune's ``start_trial``). A trial started without a plan (a resume, or a new
trial started from another trial's checkpoint) keeps the plan it has, or gets the fallback
seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def trial_seed(study_seed: int, index: int) -> int:
    """Training seed of the ``index``-th new config of a study (same across warm-start arms)."""
    return (study_seed * 1_000_003 + index * 7919) % (2**31 - 1)


def fallback_seed(study_seed: int, trial_id: int) -> int:
    """Training seed of a trial that has no plan (disjoint from the planned seeds' indices)."""
    return trial_seed(study_seed, 1_000_000 + trial_id)


@dataclass(frozen=True)
class TrialPlan:
    """What the harness decided for one trial.

    ``proposed`` and ``record`` are None where no warm-start path saw the trial; ``seed`` is
    None where the scheduler chose none (the fallback seed is used); ``charge`` is simulated
    seconds added before the trial's first unit (0 for a config whose warm-start was paid by an
    earlier trial, as SMAC's re-runs at higher budgets).
    """

    seed: int | None = None
    proposed: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    charge: float = 0.0


class TrialPlans:
    """The plans of one study's trials, by trial id."""

    def __init__(self, study_seed: int = 0) -> None:
        self.study_seed = int(study_seed)
        self._pending: TrialPlan | None = None
        self._plans: dict[int, TrialPlan] = {}

    def propose(self, plan: TrialPlan) -> None:
        """The plan of the trial the scheduler is suggesting now (its id is not known yet)."""
        self._pending = plan

    def bind(self, trial_id: int) -> TrialPlan | None:
        """The plan of ``trial_id``: the pending one if the trial has none yet (idempotent)."""
        if trial_id not in self._plans and self._pending is not None:
            self._plans[trial_id] = self._pending
            self._pending = None
        return self._plans.get(trial_id)

    def get(self, trial_id: int) -> TrialPlan | None:
        return self._plans.get(trial_id)

    def seed(self, trial_id: int) -> int:
        """The training seed of ``trial_id`` (its plan's, else the fallback)."""
        plan = self._plans.get(trial_id)
        if plan is not None and plan.seed is not None:
            return int(plan.seed)
        return fallback_seed(self.study_seed, trial_id)

    def charge(self, trial_id: int) -> float:
        plan = self._plans.get(trial_id)
        return 0.0 if plan is None else float(plan.charge)
