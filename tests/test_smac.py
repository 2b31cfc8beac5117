"""SMAC's Hyperband and multi-fidelity facades driven by Syne Tune's real Tuner.

Trials run on Syne Tune's simulator (UserBlackboxBackend) against a deterministic learning-curve
function of the config and the epoch; the simulated clock ignores the scheduler's real decision
time, so runs with the same seed are identical.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

pytest.importorskip("smac")

from smac.runhistory import StatusType  # noqa: E402
from syne_tune import StoppingCriterion, Tuner  # noqa: E402
from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback  # noqa: E402
from syne_tune.backend.trial_status import Trial  # noqa: E402
from syne_tune.blackbox_repository.blackbox import Blackbox  # noqa: E402
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend  # noqa: E402
from syne_tune.config_space import randint  # noqa: E402

from ohgw_bench.baselines import SchedulerContext, build  # noqa: E402
from ohgw_bench.baselines.smac import (  # noqa: E402
    SMACScheduler,
    WarmStartError,
    build_hyperband,
    build_multi_fidelity,
)
from ohgw_bench.space import Hyperparameter, SearchSpace  # noqa: E402

SPACE = SearchSpace([
    Hyperparameter("x", 0.0, 1.0, 0.5),
    Hyperparameter("lr", 1e-3, 1.0, 1e-2, log=True),
    Hyperparameter("width", 1, 8, 4, integer=True),
])
OPTIMUM = {"x": 0.3, "lr": 0.1}


def final_loss(config: dict[str, Any]) -> float:
    return (config["x"] - OPTIMUM["x"]) ** 2 + (math.log10(config["lr"]) - math.log10(OPTIMUM["lr"])) ** 2 / 9


def loss_curve(config: dict[str, Any], epochs: np.ndarray) -> np.ndarray:
    """Decreasing in epochs; wider models converge faster, so low budgets mis-rank some configs."""
    return final_loss(config) + 0.5 / (epochs * (0.5 + config["width"] / 8))


class ToyBlackbox(Blackbox):
    def __init__(self, max_epochs: int):
        super().__init__(
            configuration_space=SPACE.to_syne_tune(),
            fidelity_space={"epochs": randint(1, max_epochs)},
            objectives_names=["loss", "elapsed_time"],
        )
        self.max_epochs = max_epochs

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.arange(1, self.max_epochs + 1)

    def _objective_function(self, configuration, fidelity=None, seed=None):
        epochs = self.fidelity_values
        return np.stack([loss_curve(configuration, epochs), epochs * 1.0], axis=1)


class SimulatedClockOnly(UserBlackboxBackend):
    """Syne Tune's simulator without the scheduler's real decision time on its clock."""

    def _advance_by_outside_time(self) -> None:
        pass


class ShiftX:
    """A deterministic warm-start: x moves by +0.05 (projected to bounds), the rest untouched."""

    def __init__(self, dx: float = 0.05):
        self.dx = dx
        self.calls: list[tuple[dict[str, Any], int]] = []

    def apply(self, config: dict[str, Any], trial_seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self.calls.append((dict(config), trial_seed))
        new = dict(config, x=min(1.0, config["x"] + self.dx))
        return new, {"dx": new["x"] - config["x"], "trial_seed": trial_seed}


def context(tmp_path, seed: int = 0, warm_start: Any = None, n_workers: int = 1, max_resource: int = 9,
            **options: Any) -> SchedulerContext:
    return SchedulerContext(
        space=SPACE, config_space=SPACE.to_syne_tune(), metric="loss", mode="min",
        resource_attr="epochs", min_resource=1, max_resource=max_resource, seed=seed,
        n_workers=n_workers, output_dir=tmp_path,
        warm_start=warm_start, options=options,
    )


class Recorder:
    """Wraps the facade's ask/tell to check what SMAC handed out against what it was told."""

    def __init__(self, scheduler: SMACScheduler):
        self.asked: list[Any] = []
        self.told: list[Any] = []
        self.max_outstanding = 0
        smac = scheduler.smac
        ask, tell = smac.ask, smac.tell

        def recording_ask():
            info = ask()
            self.asked.append(info)
            self.max_outstanding = max(self.max_outstanding, len(self.asked) - len(self.told))
            return info

        def recording_tell(info, value, save=True):
            self.told.append((info, value))
            return tell(info, value, save=save)

        smac.ask, smac.tell = recording_ask, recording_tell


def run_study(scheduler: SMACScheduler, tmp_path, monkeypatch, n_trials: int, n_workers: int = 1,
              max_epochs: int = 9) -> Recorder:
    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path / "syne-tune"))
    recorder = Recorder(scheduler)
    backend = SimulatedClockOnly(ToyBlackbox(max_epochs), elapsed_time_attr="elapsed_time",
                                 max_resource_attr="epochs")
    tuner = Tuner(
        trial_backend=backend, scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_num_trials_started=n_trials), n_workers=n_workers,
        sleep_time=0, callbacks=[SimulatorCallback()], results_update_interval=1e9,
        print_update_interval=1e9, wait_trial_completion_when_stopping=True,
    )
    tuner.run()
    return recorder


def asked_sequence(recorder: Recorder) -> list[tuple[tuple[float, ...], float]]:
    return [(tuple(info.config[n] for n in SPACE.names), info.budget) for info in recorder.asked]


def assert_all_told_once(scheduler: SMACScheduler, recorder: Recorder) -> None:
    assert len(recorder.asked) > 0
    assert len(recorder.told) == len(recorder.asked)
    assert len({id(info) for info, _ in recorder.told}) == len(recorder.told)
    assert {id(i) for i, _ in recorder.told} == {id(i) for i in recorder.asked}
    assert scheduler.running_trial_ids == []
    statuses = [v.status for v in scheduler.smac.runhistory.values()]
    assert StatusType.RUNNING not in statuses
    assert len(statuses) == len(recorder.asked)


def test_hyperband_runs_brackets_with_eta_budgets_and_halves_by_cost(tmp_path, monkeypatch):
    scheduler = build_hyperband(context(tmp_path, seed=1))
    recorder = run_study(scheduler, tmp_path, monkeypatch, n_trials=40)
    assert_all_told_once(scheduler, recorder)

    intensifier = scheduler.smac.intensifier
    assert intensifier._budgets_in_stage == {0: [1.0, 3.0, 9.0], 1: [3.0, 9.0], 2: [9.0]}
    assert intensifier._n_configs_in_stage == {0: [9, 3, 1], 1: [5, 1], 2: [3]}
    budgets = [info.budget for info in recorder.asked]
    # bracket 0 (9 x 1, 3 x 3, 1 x 9), bracket 1 (5 x 3, 1 x 9), bracket 2 (3 x 9), bracket 0 again
    expected = [1.0] * 9 + [3.0] * 3 + [9.0] + [3.0] * 5 + [9.0] + [9.0] * 3 + [1.0] * 9
    assert budgets[: len(expected)] == expected

    first_rung = recorder.told[:9]
    by_cost = sorted(first_rung, key=lambda t: t[1].cost)
    promoted = [info.config for info in recorder.asked[9:12]]
    assert sorted(map(str, promoted)) == sorted(str(info.config) for info, _ in by_cost[:3])
    for info, value in recorder.told:
        config = dict(info.config)
        assert value.cost == pytest.approx(loss_curve(config, np.array([round(info.budget)]))[0])

    first_trial = scheduler.smac_trial(0)
    assert dict(first_trial.config) == pytest.approx(SPACE.default_config())  # SMAC's Hyperband starts with the default


def test_warm_start_is_what_smac_records_and_is_applied_once_per_config(tmp_path, monkeypatch):
    shift = ShiftX()
    scheduler = build_hyperband(context(tmp_path, seed=2, warm_start=shift))
    recorder = run_study(scheduler, tmp_path, monkeypatch, n_trials=30)
    assert_all_told_once(scheduler, recorder)

    rh_configs = scheduler.smac.runhistory.get_configs()
    assert len(shift.calls) == len(rh_configs)
    proposed = [call[0] for call in shift.calls]
    for config in rh_configs:
        values = dict(config)
        matches = [p for p in proposed if p["width"] == values["width"] and p["lr"] == pytest.approx(values["lr"])
                   and min(1.0, p["x"] + 0.05) == pytest.approx(values["x"])]
        assert len(matches) == 1
        assert not any(p["x"] == pytest.approx(values["x"]) and p["lr"] == pytest.approx(values["lr"])
                       for p in proposed)
        assert config.origin.endswith("+ warm-start")

    pairs_by_config: dict[str, tuple] = {}
    for trial_id in range(len(recorder.asked)):
        info = scheduler.smac_trial(trial_id)
        proposed_config, record = scheduler.warm_start_info(trial_id)
        assert dict(info.config)["x"] == pytest.approx(min(1.0, proposed_config["x"] + 0.05))
        assert dict(info.config)["width"] == proposed_config["width"]
        assert record["dx"] == pytest.approx(dict(info.config)["x"] - proposed_config["x"])
        key = str(info.config)
        if key in pairs_by_config:
            assert pairs_by_config[key] == (proposed_config, record)
        pairs_by_config[key] = (proposed_config, record)
    assert len(pairs_by_config) < len(recorder.asked)  # some configs were re-run at a higher budget

    seeds = [seed for _, seed in shift.calls]
    assert len(set(seeds)) == len(seeds)
    again = ShiftX()
    build_hyperband(context(tmp_path / "again", seed=2, warm_start=again)).suggest()
    assert again.calls[0][1] == seeds[0]

    vanilla = build_hyperband(context(tmp_path / "vanilla", seed=2))
    vanilla_recorder = run_study(vanilla, tmp_path / "vanilla", monkeypatch, n_trials=30)
    vanilla_new_configs: list[dict] = []
    for info in vanilla_recorder.asked:
        if dict(info.config) not in vanilla_new_configs:
            vanilla_new_configs.append(dict(info.config))
    assert len(vanilla_new_configs) == len(proposed)
    assert vanilla_new_configs == proposed  # the arms pair: same base proposals, with and without the nudge
    assert vanilla.warm_start_info(0) is None


def test_same_seed_gives_the_same_trials(tmp_path, monkeypatch):
    def sequence(build, seed: int, folder: str, n_trials: int) -> list:
        scheduler = build(context(tmp_path / folder, seed=seed, warm_start=ShiftX(), initial_design_size=4))
        return asked_sequence(run_study(scheduler, tmp_path / folder, monkeypatch, n_trials=n_trials))

    first = sequence(build_multi_fidelity, 7, "a", 20)
    assert len(first) >= 20
    assert sequence(build_multi_fidelity, 7, "b", 20) == first
    assert sequence(build_hyperband, 8, "c", 15) == sequence(build_hyperband, 8, "d", 15)
    assert sequence(build_hyperband, 8, "c", 15) != sequence(build_hyperband, 9, "e", 15)


def test_two_workers_keep_smac_busy_and_every_trial_is_told(tmp_path, monkeypatch):
    scheduler = build_hyperband(context(tmp_path, seed=3, n_workers=2))
    recorder = run_study(scheduler, tmp_path, monkeypatch, n_trials=30, n_workers=2)
    assert_all_told_once(scheduler, recorder)
    assert recorder.max_outstanding == 2
    assert len(recorder.asked) >= 30
    assert {info.budget for info in recorder.asked} == {1.0, 3.0, 9.0}


def test_smac_opens_new_brackets_while_trials_are_outstanding(tmp_path):
    scheduler = build_hyperband(context(tmp_path, seed=4, max_resource=27))
    suggestions = [scheduler.suggest() for _ in range(60)]
    assert all(s is not None for s in suggestions)
    epochs = [s.config["epochs"] for s in suggestions]
    assert epochs[:27] == [1] * 27 and epochs[27:39] == [3] * 12 and epochs[39:45] == [9] * 6
    assert epochs[45:49] == [27] * 4 and epochs[49:] == [1] * 11


def test_multi_fidelity_model_takes_over_after_initial_design(tmp_path, monkeypatch):
    """Configs from SMAC's acquisition maximizer lie closer to the optimum than random ones."""
    distances: dict[str, list[float]] = {"random": [], "model": []}
    for seed in range(3):
        scheduler = build_multi_fidelity(context(tmp_path / str(seed), seed=seed, initial_design_size=6))
        recorder = run_study(scheduler, tmp_path / str(seed), monkeypatch, n_trials=36)
        assert_all_told_once(scheduler, recorder)
        assert scheduler.selector._model._rf is not None
        origins = [config.origin or "" for config in scheduler.smac.runhistory.get_configs()]
        assert origins[:6] == ["Initial Design: Random"] * 6
        for config, origin in zip(scheduler.smac.runhistory.get_configs(), origins):
            kind = "model" if origin.startswith("Acquisition Function Maximizer") else (
                "random" if origin.startswith(("Initial Design", "Random Search")) else None)
            if kind is not None:
                distances[kind].append(math.sqrt(final_loss(dict(config))))
    assert len(distances["model"]) >= 30 and len(distances["random"]) >= 18
    assert np.median(distances["model"]) < 0.7 * np.median(distances["random"])


def test_failed_and_unfinished_trials_are_told_as_crashes(tmp_path):
    scheduler = build_hyperband(context(tmp_path, seed=5))
    trials = []
    for trial_id in range(3):
        suggestion = scheduler.suggest()
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=None)
        scheduler.on_trial_add(trial)
        trials.append(trial)
    scheduler.on_trial_error(trials[0])
    scheduler.on_trial_complete(trials[1], {"epochs": 0, "loss": 0.1})
    assert scheduler.on_trial_result(trials[2], {"epochs": 1, "loss": float("nan")}) == "STOP"
    assert scheduler.running_trial_ids == []
    values = list(scheduler.smac.runhistory.values())
    assert [v.status for v in values] == [StatusType.CRASHED] * 3
    assert all(v.cost == math.inf for v in values)
    scheduler.on_trial_error(trials[0])
    assert len(scheduler.smac.runhistory) == 3


def test_mode_max_tells_the_negated_metric(tmp_path):
    ctx = context(tmp_path, seed=6)
    ctx.mode, ctx.metric = "max", "accuracy"
    scheduler = build_hyperband(ctx)
    suggestion = scheduler.suggest()
    trial = Trial(trial_id=0, config=suggestion.config, creation_time=None)
    scheduler.on_trial_add(trial)
    assert scheduler.on_trial_result(trial, {"epochs": 0, "accuracy": 0.5}) == "CONTINUE"
    assert scheduler.on_trial_result(trial, {"epochs": 1, "accuracy": 0.75}) == "STOP"
    (value,) = scheduler.smac.runhistory.values()
    assert value.cost == -0.75 and value.status == StatusType.SUCCESS


class PushOut:
    def __init__(self, new_values: dict[str, Any]):
        self.new_values = new_values

    def apply(self, config: dict[str, Any], trial_seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return dict(config, **self.new_values), {}


def test_nudges_are_clipped_and_contract_breaches_refused(tmp_path):
    scheduler = build_hyperband(context(tmp_path / "clip", warm_start=PushOut({"x": 1.7})))
    config = scheduler.suggest().config
    assert (config["x"], config["lr"], config["width"]) == (1.0, pytest.approx(1e-2), 4)
    for bad, message in [({"width": 9}, "width"), ({"x": float("nan")}, "nan"), ({"x": "a"}, "not a number")]:
        broken = build_hyperband(context(tmp_path / str(bad), warm_start=PushOut(bad)))
        with pytest.raises(WarmStartError, match=message):
            broken.suggest()


def test_a_warm_start_collapsing_configs_exhausts_smac_instead_of_looping(tmp_path):
    """Every config maps onto (x=1, lr=1e-3, width): only 8 distinct, fewer than a 9-config rung."""
    collapsing = build_hyperband(context(tmp_path, warm_start=PushOut({"x": 1.7, "lr": 1e-9})))
    assert collapsing.suggest() is None
    assert collapsing.suggest() is None
    assert len(collapsing.selector.proposals) == 8


def test_registry_builds_both_facades_with_options(tmp_path):
    hb = build("smac-hyperband", context(tmp_path / "hb", eta=2))
    mf = build("smac-bohb", context(tmp_path / "mf"))
    assert type(hb).applies_warm_start and type(mf).applies_warm_start
    assert hb.smac.intensifier._eta == 2
    assert hb.metric_names() == ["loss"] and hb.metric_mode() == "min"
    assert (tmp_path / "hb" / "smac" / "HyperbandFacade" / "0").is_dir()
    assert type(mf.smac).__name__ == "MultiFidelityFacade"


class Unmoved:
    """A warm-start that leaves every config as proposed (the none arm, or a zero step)."""

    def apply(self, config: dict[str, Any], trial_seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return dict(config), {"applied": False}


@pytest.mark.parametrize("builder", [build_hyperband, build_multi_fidelity])
def test_an_unmoved_config_is_not_a_collision_so_the_vanilla_arm_keeps_running(tmp_path, monkeypatch, builder):
    """SMAC's selector records every config before handing it out: an unmoved one must not count
    as landing on a known config (that exhausted the none arm after 16 configs, or at once for BOHB)."""
    scheduler = builder(context(tmp_path, warm_start=Unmoved(), initial_design_size=4)
                        if builder is build_multi_fidelity else context(tmp_path, warm_start=Unmoved()))
    recorder = run_study(scheduler, tmp_path, monkeypatch, n_trials=40)
    assert not scheduler._exhausted
    assert len(recorder.asked) >= 40
    assert len(scheduler.selector.proposals) >= 17
