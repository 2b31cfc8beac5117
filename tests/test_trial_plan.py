"""Trial plans reach their trials by ticket, not by call order (ohgw_bench/trial_plan.py).

The Tuner happens to start each trial right after its suggestion; these tests drive the
warm-start wrapper and the study's backend in other orders (two suggestions pending, trials
started in reverse) and check that every trial still trains from the paired seed of its own
proposal, with its own proposal and record.
"""

from __future__ import annotations

import pytest
from syne_tune.backend.trial_status import Trial

import ohgw_bench
from ohgw_bench import baselines, tasks
from ohgw_bench.backends import SimulatedBackend, TrialRunner
from ohgw_bench.baselines.warmstarted import WarmStarted
from ohgw_bench.trial_plan import PLAN_KEY, TrialPlan, TrialPlans
from ohgw_bench.warmstart import WarmStart, WarmStartSettings


def arm(variant: str, seed: int = 0) -> tuple[WarmStarted, SimulatedBackend, TrialPlans]:
    """A study's wrapper and simulated backend around random search on the table task, sharing plans."""
    task = tasks.make("table", max_epochs=9)
    ctx = baselines.SchedulerContext.for_task(task, seed)
    plans = TrialPlans(seed)
    warm = WarmStart(WarmStartSettings.parse(variant), task, seed=seed + 7_777)
    scheduler = WarmStarted(baselines.build("random", ctx), warm, task.space, seed, plans)
    backend = SimulatedBackend(TrialRunner(task, plans.seed), horizon=1e9, plans=plans)
    return scheduler, backend, plans


def start(scheduler: WarmStarted, backend: SimulatedBackend, config: dict) -> Trial:
    trial = backend.start_trial(dict(config))
    scheduler.on_trial_add(trial)
    return trial


@pytest.mark.parametrize("variant", ["none", "ohgw-normalized"])
def test_two_pending_suggestions_started_in_reverse_keep_their_own_plans(variant: str) -> None:
    scheduler, backend, plans = arm(variant)
    first, second = scheduler.suggest(), scheduler.suggest()  # both pending before any start
    assert first.config[PLAN_KEY] != second.config[PLAN_KEY]
    late = start(scheduler, backend, second.config)  # trial 0 trains the second proposal
    early = start(scheduler, backend, first.config)  # trial 1 trains the first
    assert (late.trial_id, early.trial_id) == (0, 1)
    assert plans.seed(late.trial_id) == ohgw_bench.paired_seed(0, 1)
    assert plans.seed(early.trial_id) == ohgw_bench.paired_seed(0, 0)
    for trial, suggestion in [(late, second), (early, first)]:
        assert PLAN_KEY not in trial.config  # the ticket never reaches trial.config ...
        assert trial.config == {k: v for k, v in suggestion.config.items() if k != PLAN_KEY}
        plan = plans.get(trial.trial_id)  # ... and the plan is the one of the trial's own proposal
        part = {name: plan.proposed[name] for name in scheduler.space.names}
        nudged, _ = scheduler.warm_start.apply(part, plan.seed)
        assert {name: trial.config[name] for name in scheduler.space.names} == nudged
        assert plan.record is not None and plan.charge == float(plan.record.get("sim_seconds", 0.0))

def test_paired_arms_pair_seeds_by_proposal_whatever_the_start_order() -> None:
    """The n-th proposal of a vanilla arm and of an OHGW arm train from the same seed."""
    seeds = {}
    for variant, order in [("none", [0, 1, 2]), ("ohgw-normalized", [2, 0, 1])]:
        scheduler, backend, plans = arm(variant)
        suggestions = [scheduler.suggest() for _ in range(3)]
        trials = {i: start(scheduler, backend, suggestions[i].config) for i in order}
        seeds[variant] = [plans.seed(trials[i].trial_id) for i in range(3)]
        proposed = [plans.get(trials[i].trial_id).proposed for i in range(3)]
        seeds[variant + " proposals"] = proposed
        # the seed the backend trains each trial from is its plan's
        assert [backend.runner.seed(trials[i].trial_id) for i in range(3)] == seeds[variant]
    assert seeds["none"] == seeds["ohgw-normalized"] == [ohgw_bench.paired_seed(0, i) for i in range(3)]


def test_a_plan_is_bound_once_and_a_trial_without_a_ticket_gets_the_fallback_seed() -> None:
    plans = TrialPlans(3)
    ticket = plans.propose(TrialPlan(seed=11))
    assert plans.claim(5, {"x": 1, PLAN_KEY: ticket}) == {"x": 1}
    assert plans.seed(5) == 11
    assert plans.claim(5, {"x": 1}) == {"x": 1} and plans.seed(5) == 11  # a resume keeps its plan
    with pytest.raises(KeyError, match="ticket"):  # a used ticket would pair a trial with another's seed
        plans.claim(6, {PLAN_KEY: ticket})
    plans.claim(7, {"x": 2})
    assert plans.get(7) is None and plans.seed(7) == ohgw_bench.trial_plan.fallback_seed(3, 7)


def test_the_user_wrapper_binds_plans_by_the_seed_its_trials_carry() -> None:
    from ohgw_bench.integrations.syne_tune import SEED_KEY, WarmStartScheduler

    task = tasks.make("table", max_epochs=9)
    ctx = baselines.SchedulerContext.for_task(task, 0)
    scheduler = WarmStartScheduler(baselines.build("random", ctx), task, "ohgw-normalized", seed=0)
    first, second = scheduler.suggest(), scheduler.suggest()
    assert PLAN_KEY not in first.config  # a user's backend would pass a ticket on to the training function
    scheduler.on_trial_add(Trial(trial_id=0, config=second.config, creation_time=None))
    scheduler.on_trial_add(Trial(trial_id=1, config=first.config, creation_time=None))
    assert scheduler.plans.get(0).seed == second.config[SEED_KEY] == ohgw_bench.paired_seed(0, 1)
    assert scheduler.plans.get(1).seed == first.config[SEED_KEY] == ohgw_bench.paired_seed(0, 0)
