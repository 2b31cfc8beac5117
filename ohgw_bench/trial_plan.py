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

A plan reaches its trial by an explicit ticket, never by call order. The scheduler proposes a
plan in ``suggest``, before the Tuner gives the trial its id, and gets a ticket back; the
suggested config carries the ticket under :data:`PLAN_KEY`. The backend's ``start_trial``
takes the key out of the config (so ``trial.config`` never holds it) and binds the ticket's plan
to the id of the trial it creates. Several suggestions may thus be pending at once and their
trials may start in any order. A trial started without a ticket (a resume, or a new trial
started from another trial's checkpoint) keeps the plan it has, or gets the fallback seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PLAN_KEY = "ohgw_plan"  # key of a suggested config that carries its plan's ticket to the backend


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
        self._next_ticket = 0
        self._pending: dict[int, TrialPlan] = {}  # ticket -> plan of a suggested trial not started yet
        self._plans: dict[int, TrialPlan] = {}

    def propose(self, plan: TrialPlan) -> int:
        """Hold the plan of the trial the scheduler is suggesting now; its ticket.

        The trial's id is not known yet: the suggested config carries the ticket
        (``config[PLAN_KEY]``) to the backend, which binds it (:meth:`claim`).
        """
        ticket = self._next_ticket
        self._next_ticket += 1
        self._pending[ticket] = plan
        return ticket

    def bind(self, trial_id: int, ticket: int | None) -> TrialPlan | None:
        """Give ``trial_id`` the plan of ``ticket`` (each ticket once); the trial's plan.

        A trial that has a plan keeps it; an unknown or already used ticket is an error, since
        it would pair a trial with another trial's seed.
        """
        if ticket is not None and trial_id not in self._plans:
            if ticket not in self._pending:
                raise KeyError(f"trial {trial_id}: no pending trial plan has ticket {ticket!r}")
            self._plans[trial_id] = self._pending.pop(ticket)
        return self._plans.get(trial_id)

    def claim(self, trial_id: int, config: Mapping[str, Any]) -> dict[str, Any]:
        """Bind the plan whose ticket ``config`` carries to ``trial_id``; the config without it."""
        config = dict(config)
        self.bind(trial_id, config.pop(PLAN_KEY, None))
        return config

    def get(self, trial_id: int) -> TrialPlan | None:
        """The plan bound to ``trial_id`` (None before its start, or for a trial without one)."""
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
