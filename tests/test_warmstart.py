"""Warm-start variants, step rules, controls, fallbacks and records, on real (small) torch tasks."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.hypergrad import SGD, HyperProblem, split_batch
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity, Task
from ohgw_bench.warmstart import WarmStart, WarmStartSettings, make_warm_start

BASE_SPACE = [
    Hyperparameter("lr", 1e-3, 1.0, 0.05, log=True, prior=1.0),
    Hyperparameter("wd", 1e-6, 1e-1, 1e-4, log=True),
    Hyperparameter("momentum", 0.0, 0.99, 0.5),
    Hyperparameter("ls", 0.0, 0.3, 0.1),
    Hyperparameter("aug", 0.0, 1.0, 0.2),
    Hyperparameter("dropout", 0.0, 0.5, 0.1, grad="finite_difference"),
    Hyperparameter("width", 4, 16, 8, integer=True),
    Hyperparameter("frozen", 0.0, 1.0, 0.5, grad="none"),
]
CONFIG = {"lr": 0.1, "wd": 1e-3, "momentum": 0.5, "ls": 0.1, "aug": 0.3, "dropout": 0.2, "width": 8, "frozen": 0.5}
TARGET = {"lr": 0.8, "wd": 0.2, "momentum": 1.3, "ls": 0.4, "aug": 0.6, "dropout": 0.3}


class ToyTask(Task):
    """A 6-feature, 3-class MLP task whose failure modes can be switched on."""

    id = "toy-v1"
    hypergrad_method = "autograd"
    reference_flops_per_second = 1e9
    default_horizon = 1

    def __init__(self, *, method: str = "autograd", loss: str = "tensor", problem: bool = True,
                 objective: bool = True, params: list[Hyperparameter] | None = None):
        super().__init__(None)
        self.hypergrad_method = method  # type: ignore[misc]
        self.loss_kind = loss
        self.has_problem = problem
        self.has_objective = objective
        self._space = SearchSpace(params or BASE_SPACE)
        self.problems_built = 0

    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("epochs", 1, 3)

    def init_state(self, config: Mapping[str, Any], seed: int) -> Any:
        return SimpleNamespace(fidelity=0, config=dict(config), seed=seed)

    def train(self, state: Any, fidelity: int) -> None:
        state.fidelity = fidelity

    def evaluate(self, state: Any) -> dict[str, float]:
        return {"val_error": 0.5, "test_error": 0.5}

    def save(self, state: Any, path: Path) -> None:
        path.write_text(json.dumps(vars(state)))

    def load(self, path: Path) -> Any:
        return SimpleNamespace(**json.loads(path.read_text()))

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        return float(stop - start)

    def train_loss(self, forward: Callable[..., torch.Tensor], b: Any, hp: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x, y, noise = b
        logp = F.log_softmax(forward(x + hp["aug"] * noise), dim=-1)
        if self.loss_kind == "float":
            eps = float(hp["ls"].detach())
            return F.nll_loss(logp, y) * (1 - eps) + eps * (-logp.mean(-1)).mean().detach()
        loss = (1 - hp["ls"]) * F.nll_loss(logp, y) + hp["ls"] * (-logp.mean(-1)).mean()
        return loss * math.nan if self.loss_kind == "nan" else loss

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int,
                      split_batch_: bool = False) -> HyperProblem:
        if not self.has_problem:
            raise NotImplementedError("toy task without a lookahead")
        self.problems_built += 1
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))

        def draw(n: int) -> tuple[torch.Tensor, ...]:
            return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g), torch.randn(n, 6, generator=g)

        if split_batch_:
            train, val = split_batch(draw(64))
            batches = [train]
        else:
            batches, val = [draw(64) for _ in range(horizon)], draw(64)
        return HyperProblem(model, batches, val[:2], self.train_loss,
                            lambda fwd, b: F.cross_entropy(fwd(b[0]), b[1]),
                            SGD("lr", "momentum", "wd"), {n: float(config[n]) for n in ("lr", "wd", "momentum", "ls", "aug")})

    def hyper_objective(self, config: Mapping[str, Any], seed: int) -> tuple[Callable[[Mapping[str, Any]], float], float]:
        if not self.has_objective:
            raise NotImplementedError("toy task without an objective")

        def objective(cfg: Mapping[str, Any]) -> float:
            z = self.space.to_unit(cfg)
            return sum((z[n] - c) ** 2 for n, c in TARGET.items() if n in z)

        return objective, 0.25


def run(variant: str, task: ToyTask | None = None, config: Mapping[str, Any] | None = None,
        seed: int = 0, trial_seed: int = 3, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    ws = WarmStart(WarmStartSettings.parse(variant, **kw), task or ToyTask(), seed, strict=True)
    return ws.apply(dict(config or CONFIG), trial_seed)


def unit_step(space: SearchSpace, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    return {p.name: p.to_unit(after[p.name]) - p.to_unit(before[p.name]) for p in space}


def test_none_is_free_and_unchanged() -> None:
    task = ToyTask()
    new, rec = run("none", task)
    assert new == CONFIG and new is not CONFIG
    assert rec["applied"] is False and rec["sim_seconds"] == 0.0 and rec["reason"] == "variant none"
    assert task.problems_built == 0
    json.dumps(rec, allow_nan=False)


def test_record_is_complete_json_and_costed() -> None:
    new, rec = run("ohgw-normalized")
    text = json.dumps(rec, allow_nan=False)
    assert "NaN" not in text
    for key in ("variant", "label", "settings", "applied", "reason", "names", "psi", "grad_native",
                "grad_psi", "grad_unit", "psi_new", "step_unit", "step_norm_unit", "grad_norm_unit", "J",
                "method", "horizon", "cost", "step_cost", "ratio_time", "ratio_flops", "ratio_memory",
                "sim_seconds"):
        assert key in rec, key
    assert rec["applied"] is True and rec["method"] == "autograd-exact" and rec["horizon"] == 1
    assert rec["names"] == ["lr", "wd", "momentum", "ls", "aug"]
    assert rec["cost"]["flops"] > rec["step_cost"]["flops"] > 0
    assert rec["ratio_flops"] == pytest.approx(rec["cost"]["flops"] / rec["step_cost"]["flops"])
    assert rec["sim_seconds"] == pytest.approx(rec["cost"]["flops"] / ToyTask.reference_flops_per_second)
    assert rec["step_cost"]["peak_bytes"] > 0 and rec["cost"]["seconds"] > 0


def test_normalized_moves_exactly_rho_against_the_gradient() -> None:
    task = ToyTask()
    new, rec = run("ohgw-normalized", task, rho=0.07)
    g = np.array([rec["grad_unit"][n] for n in rec["names"]])
    dz = np.array([rec["step_unit"][n] for n in rec["names"]])
    assert rec["clipped"] == []
    assert rec["step_norm_unit"] == pytest.approx(0.07, rel=1e-9)
    np.testing.assert_allclose(dz, -0.07 * g / np.linalg.norm(g), atol=1e-12)
    moved = unit_step(task.space, CONFIG, new)
    for n in ("dropout", "width", "frozen"):
        assert new[n] == CONFIG[n] and moved[n] == 0.0
    assert rec["grad_norm_unit"] == pytest.approx(np.linalg.norm(g))


def test_sign_rule_moves_each_coordinate_by_rho() -> None:
    _, rec = run("ohgw-sign")
    for n in rec["names"]:
        g, dz = rec["grad_unit"][n], rec["step_unit"][n]
        if rec["info"]["structural_zero"] and n in rec["info"]["structural_zero"]:
            assert dz == 0.0
        else:
            assert dz == pytest.approx(-0.05 * np.sign(g), rel=1e-9)


def test_raw_rule_is_the_papers_tiny_step() -> None:
    _, rec = run("ohgw")
    assert rec["settings"]["step_rule"] == "raw" and rec["applied"] is True
    for n in rec["names"]:
        expected = rec["psi"][n] - 1e-3 * rec["grad_psi"][n]
        assert rec["psi_new"][n] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert 0 < rec["step_norm_unit"] < 1e-3


def test_projection_onto_the_bounds() -> None:
    """The FD objective's minimum lies above the upper bound of momentum: the step is clipped there."""
    task = ToyTask(method="finite_difference")
    config = {**CONFIG, "momentum": 0.99}
    new, rec = run("ohgw-sign", task, config=config)
    assert new["momentum"] == 0.99
    assert rec["clipped"] == ["momentum"]
    assert rec["step_unit_proposed"]["momentum"] == pytest.approx(0.05)
    assert rec["step_unit"]["momentum"] == 0.0
    assert rec["step_unit"]["lr"] == pytest.approx(0.05, rel=1e-9)
    assert rec["applied"] is True


def test_finite_difference_task_charges_its_evaluations() -> None:
    task = ToyTask(method="finite_difference")
    new, rec = run("ohgw-normalized", task)
    assert rec["method"] == "finite_difference"
    assert rec["names"] == ["lr", "wd", "momentum", "ls", "aug", "dropout"]
    assert rec["evaluations"] == 1 + 2 * 6
    assert rec["sim_seconds"] == pytest.approx(13 * 0.25)
    assert rec["step_norm_unit"] == pytest.approx(0.05, rel=1e-9)
    assert new["dropout"] != CONFIG["dropout"] and new["width"] == CONFIG["width"]


@pytest.mark.parametrize("rule", ["raw", "normalized"])
def test_random_has_the_ohgw_step_length_in_another_direction(rule: str) -> None:
    _, ohgw = run(f"ohgw-{rule}".replace("-raw", ""))
    np_state = np.random.get_state()
    _, rand = run(f"random-{rule}".replace("-raw", ""), seed=5)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()
    length = np.linalg.norm(list(ohgw["step_unit_proposed"].values()))
    assert np.linalg.norm(list(rand["step_unit_proposed"].values())) == pytest.approx(length, rel=1e-9)
    cos = sum(ohgw["step_unit_proposed"][n] * rand["step_unit_proposed"][n] for n in ohgw["names"]) / length**2
    assert cos < 0.999
    assert rand["grad_unit"] == ohgw["grad_unit"] and rand["cost"]["flops"] == ohgw["cost"]["flops"]
    _, again = run(f"random-{rule}".replace("-raw", ""), seed=5)
    _, other = run(f"random-{rule}".replace("-raw", ""), seed=6)
    assert again["step_unit_proposed"] == rand["step_unit_proposed"]
    assert other["step_unit_proposed"] != rand["step_unit_proposed"]


def test_random_sign_uses_random_signs_of_size_rho() -> None:
    _, rec = run("random-sign", seed=1)
    steps = np.array(list(rec["step_unit_proposed"].values()))
    np.testing.assert_allclose(np.abs(steps), 0.05)
    ws = WarmStart(WarmStartSettings.parse("random-sign"), ToyTask(), 1)
    signs = [tuple(np.sign(list(ws.apply(CONFIG, 3)[1]["step_unit_proposed"].values()))) for _ in range(4)]
    assert len(set(signs)) > 1


def test_prior_follows_the_space_priors_then_the_default() -> None:
    task = ToyTask()
    new, rec = run("prior-normalized", task)
    assert rec["info"]["prior_direction"] == "prior signs"
    assert rec["step_unit"]["lr"] == pytest.approx(0.05, rel=1e-9)
    assert all(rec["step_unit"][n] == 0.0 for n in rec["names"] if n != "lr")
    assert new["lr"] > CONFIG["lr"]

    no_prior = [Hyperparameter(p.name, p.low, p.high, p.default, p.log, p.integer, p.grad) for p in BASE_SPACE]
    task2 = ToyTask(params=no_prior)
    new2, rec2 = run("prior-normalized", task2)
    assert rec2["info"]["prior_direction"] == "toward the default config"
    default = task2.space.default_config()
    toward = np.array([task2.space[n].to_unit(default[n]) - task2.space[n].to_unit(CONFIG[n]) for n in rec2["names"]])
    step = np.array([rec2["step_unit"][n] for n in rec2["names"]])
    np.testing.assert_allclose(step, 0.05 * toward / np.linalg.norm(toward), atol=1e-12)
    _, at_default = run("prior-normalized", task2, config={**default, "ls": 0.1})
    assert at_default["applied"] is False and "zero" in at_default["reason"]


def test_task_without_a_gradient_path_is_left_alone() -> None:
    task = ToyTask(method="none")
    new, rec = run("ohgw-normalized", task)
    assert new == CONFIG and rec["applied"] is False and "hypergrad_method none" in rec["reason"]
    assert task.problems_built == 0


def test_missing_lookahead_falls_back_to_finite_differences() -> None:
    new, rec = run("ohgw-normalized", ToyTask(problem=False))
    assert rec["method"] == "finite_difference" and rec["applied"] is True
    assert "hyper_problem not implemented" in rec["fallback"]
    new2, rec2 = run("ohgw-normalized", ToyTask(problem=False, objective=False))
    assert new2 == CONFIG and rec2["applied"] is False
    assert "no finite-difference objective" in rec2["reason"]


def test_nan_gradient_falls_back_to_finite_differences() -> None:
    new, rec = run("ohgw-normalized", ToyTask(loss="nan"))
    assert rec["method"] == "finite_difference"
    assert "non-finite" in rec["fallback"]
    assert rec["sim_seconds"] > 13 * 0.25
    json.dumps(rec, allow_nan=False)


def test_unreachable_hyperparameter_is_recorded_and_not_moved() -> None:
    new, rec = run("ohgw-normalized", ToyTask(loss="float"))
    assert rec["unreachable"] == ["ls"]
    assert "ls" not in rec["names"] and new["ls"] == CONFIG["ls"]
    assert rec["grad_unit"]["ls"] is None
    assert rec["applied"] is True


def test_unexpected_errors_never_crash_a_study() -> None:
    class Broken(ToyTask):
        def hyper_problem(self, *args: Any, **kwargs: Any) -> HyperProblem:
            raise RuntimeError("disk on fire")

    ws = WarmStart(WarmStartSettings(variant="ohgw"), Broken(), 0)
    new, rec = ws.apply(CONFIG, 0)
    assert new == CONFIG and rec["applied"] is False and "disk on fire" in rec["reason"]
    with pytest.raises(RuntimeError):
        WarmStart(WarmStartSettings(variant="ohgw"), Broken(), 0, strict=True).apply(CONFIG, 0)


def test_split_batch_first_order_costs_about_one_plain_step() -> None:
    _, rec = run("ohgw-fo-split")
    assert rec["settings"]["split_batch"] is True and rec["method"] == "autograd-first-order"
    assert 0.9 <= rec["ratio_flops"] <= 1.2
    _, full = run("ohgw-fo")
    assert full["ratio_flops"] > 1.8


def test_horizon_k2_and_mixed_mode_reach_the_engine() -> None:
    _, rec = run("ohgw-k2-mixed-normalized")
    assert rec["horizon"] == 2 and rec["method"] == "autograd-mixed"
    assert rec["info"]["structural_zero"] == []


def test_global_generators_are_untouched() -> None:
    np.random.seed(11)
    torch.manual_seed(11)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    run("random-normalized")
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_settings_labels_and_parsing() -> None:
    settings = [
        WarmStartSettings(),
        WarmStartSettings("ohgw"),
        WarmStartSettings("ohgw", horizon=2),
        WarmStartSettings("ohgw", step_rule="normalized"),
        WarmStartSettings("ohgw", step_rule="normalized", rho=0.1),
        WarmStartSettings("ohgw", eta_h=1e-5),
        WarmStartSettings("ohgw", mode="mixed"),
        WarmStartSettings("ohgw", mode="first-order", split_batch=True),
        WarmStartSettings("random", step_rule="sign"),
        WarmStartSettings("prior"),
    ]
    labels = [s.label() for s in settings]
    assert labels[:4] == ["none", "ohgw", "ohgw-k2", "ohgw-normalized"]
    assert labels[-1] == "prior"
    assert len(set(labels)) == len(labels)
    for s, label in zip(settings, labels):
        assert "/" not in label and " " not in label
        assert WarmStartSettings.parse(label) == s
    assert WarmStartSettings.parse("ohgw-k3").horizon == 3
    assert WarmStartSettings.parse("ohgw", step_rule="sign", horizon=None).label() == "ohgw-sign"
    assert WarmStartSettings("none", step_rule="sign", rho=0.3) == WarmStartSettings()
    assert WarmStartSettings("ohgw").as_dict()["eta_h"] == 1e-3
    with pytest.raises(ValueError, match="horizon"):
        WarmStartSettings.parse("ohgw-k3", horizon=2)
    for bad in ("ohgw-k0", "warm", "ohgw-fast"):
        with pytest.raises(ValueError):
            WarmStartSettings.parse(bad)
    assert make_warm_start("ohgw-k2", ToyTask(), 0).horizon == 2


def test_digits_conformance_warm_start() -> None:
    """The conformance check every autograd task runs: an in-bounds, applied, normalised step."""
    from ohgw_bench.tasks.digits import DigitsTask
    from ohgw_bench.testing import check_warm_start

    task = DigitsTask()
    rec = check_warm_start(task)
    assert rec["step_norm_unit"] <= 0.05 + 1e-9 and rec["step_norm_unit"] > 0.01


@pytest.mark.parametrize("rule", ["raw", "normalized"])
def test_sham_pays_the_ohgw_charge_and_leaves_the_config_unchanged(rule: str) -> None:
    """Sham on the real digits task: the same gradient, FLOPs and simulated charge as ohgw, no move."""
    from ohgw_bench import tasks

    task = tasks.make("digits")
    config = {"lr": 0.02, "weight_decay": 1e-4, "momentum": 0.5, "aug_magnitude": 0.2, "label_smoothing": 0.1}
    suffix = "" if rule == "raw" else f"-{rule}"
    moved, ohgw = WarmStart(WarmStartSettings.parse("ohgw" + suffix), task, 3, strict=True).apply(config, 11)
    kept, sham = WarmStart(WarmStartSettings.parse("sham" + suffix), task, 3, strict=True).apply(config, 11)
    assert ohgw["applied"] is True and moved != config
    assert kept == config and sham["applied"] is False and sham["sham"] is True and ohgw["sham"] is False
    assert sham["sim_seconds"] > 0 and sham["sim_seconds"] == ohgw["sim_seconds"]
    assert sham["cost"]["flops"] == ohgw["cost"]["flops"] and sham["grad_unit"] == ohgw["grad_unit"]
    assert sham["step_unit_proposed"] == ohgw["step_unit_proposed"] and sham["step_unit"] == {}
    assert sham["reason"].startswith("sham")


def test_sham_on_a_finite_difference_task_is_charged_every_evaluation() -> None:
    task = ToyTask(method="finite_difference")
    new, rec = run("sham-normalized", task)
    assert new == CONFIG and rec["applied"] is False and rec["sham"] is True
    assert rec["sim_seconds"] == pytest.approx(13 * 0.25)
    assert np.linalg.norm(list(rec["step_unit_proposed"].values())) == pytest.approx(0.05, rel=1e-9)


@pytest.mark.parametrize("rule", ["raw", "normalized"])
def test_orth_removes_the_prior_direction_and_keeps_the_ohgw_length(rule: str) -> None:
    """The direction control: the OHGW step minus its lr (prior) component, rescaled to the OHGW step's length."""
    suffix = "" if rule == "raw" else f"-{rule}"
    _, ohgw = run(f"ohgw{suffix}")
    _, orth = run(f"orth{suffix}")
    names = ohgw["names"]
    a = np.array([ohgw["step_unit_proposed"][n] for n in names])
    b = np.array([orth["step_unit_proposed"][n] for n in names])
    assert orth["applied"] is True and orth["step_unit_proposed"]["lr"] == pytest.approx(0.0, abs=1e-15)
    assert np.linalg.norm(b) == pytest.approx(np.linalg.norm(a), rel=1e-9)
    rest = a.copy()
    rest[names.index("lr")] = 0.0
    np.testing.assert_allclose(b, np.linalg.norm(a) * rest / np.linalg.norm(rest), rtol=1e-9, atol=1e-15)
    assert orth["cost"]["flops"] == ohgw["cost"]["flops"]  # it pays for the hyper-gradient like every control
    cos = a[names.index("lr")] / np.linalg.norm(a)  # the prior direction is +lr
    assert ohgw["cos_prior"] == pytest.approx(cos, rel=1e-9) and orth["cos_prior"] == ohgw["cos_prior"]


def test_orth_leaves_the_config_alone_when_the_ohgw_step_is_the_prior_step() -> None:
    """Only lr is movable: the OHGW step is +-lr, parallel to the prior direction, so nothing is left."""
    only_lr = [BASE_SPACE[0]] + [Hyperparameter(p.name, p.low, p.high, p.default, p.log, p.integer, "none")
                                 for p in BASE_SPACE[1:6]]
    task = ToyTask(params=only_lr)
    config = {n: CONFIG[n] for n in task.space.names}
    new, rec = run("orth-normalized", task, config=config)
    assert new == config and rec["applied"] is False and "parallel" in rec["reason"]
    assert abs(rec["cos_prior"]) == pytest.approx(1.0)
    assert WarmStartSettings.parse("orth-normalized").label() == "orth-normalized"


def test_finite_difference_hyperparameters_of_an_autograd_task_are_recorded_as_left_unchanged() -> None:
    """The toy task has both kinds: lr/wd/... through autograd, dropout declared grad='finite_difference'."""
    new, rec = run("ohgw-normalized")
    assert new["dropout"] == CONFIG["dropout"] and "dropout" not in rec["names"]
    assert set(rec["left_unchanged"]) == {"dropout"} and "autograd" in rec["left_unchanged"]["dropout"]
    assert rec["moved_by"] and set(rec["moved_by"].values()) == {"autograd-exact"}
    assert set(rec["moved_by"]) == {n for n in rec["names"] if new[n] != CONFIG[n]} and "dropout" not in rec["moved_by"]
    # the fallback (no lookahead) runs finite differences over every movable hyperparameter: dropout moves, and says how
    new_fd, fd = run("ohgw-normalized", ToyTask(problem=False))
    assert fd["left_unchanged"] == {} and fd["moved_by"]["dropout"] == "finite_difference"
    assert new_fd["dropout"] != CONFIG["dropout"]


def test_uci_mlp_warm_start_says_dropout_was_left_unchanged() -> None:
    """A real adapter with both kinds: its docstring, docs/adding-a-task.md and the record agree."""
    from ohgw_bench import tasks

    task = tasks.make("uci-wine-mlp")
    task.prepare()
    config = task.space.default_config()
    new, rec = WarmStart(WarmStartSettings.parse("ohgw-normalized"), task, 0, strict=True).apply(config, 1)
    assert rec["method"].startswith("autograd") and rec["applied"] is True
    assert set(rec["left_unchanged"]) == {"dropout"} and new["dropout"] == config["dropout"]
    assert "lr" in rec["moved_by"]
    doc = (Path(__file__).parents[1] / "docs" / "adding-a-task.md").read_text()
    assert "left_unchanged" in doc


@pytest.fixture
def calibrated(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A calibration table holding the toy task only (wall ratio 2.5 at k = 1, exact)."""
    from ohgw_bench import cost

    table = {"tasks": {"toy-v1": {"k1-exact": {"wall_ratio": 2.5, "flop_ratio": 3.0}}}}
    monkeypatch.setattr(cost, "_calibration", lambda: table)
    return table


def test_calibrated_clock_charges_the_measured_wall_ratio_times_one_simulated_step(calibrated: dict) -> None:
    _, flops = run("ohgw-normalized")
    _, cal = run("ohgw-normalized", clock="calibrated")
    step = flops["step_cost"]["flops"] / ToyTask.reference_flops_per_second
    assert flops["clock"] == "flops" and flops["sim_seconds"] == flops["sim_seconds_flops"]
    assert flops["sim_seconds_calibrated"] == pytest.approx(2.5 * step, rel=1e-9)  # recorded on both clocks
    assert cal["clock"] == "calibrated" and cal["sim_seconds"] == pytest.approx(2.5 * step, rel=1e-9)
    assert cal["sim_seconds_flops"] == pytest.approx(flops["sim_seconds_flops"], rel=1e-9)
    assert cal["calibration"]["key"] == "k1-exact" and cal["label"] == "ohgw-normalized-cal"
    settings = WarmStartSettings.parse("ohgw-normalized-cal")
    assert settings.clock == "calibrated" and WarmStartSettings.parse(settings.label()) == settings
    assert "clock" not in WarmStartSettings.parse("ohgw").as_dict()  # old studies keep their identity
    _, sham = run("sham", clock="calibrated")
    assert sham["sim_seconds"] == pytest.approx(cal["sim_seconds"], rel=1e-9)


def test_calibrated_clock_without_a_calibration_is_refused_in_one_line(calibrated: dict, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    from ohgw_bench.errors import UserError
    from ohgw_bench.run import main

    with pytest.raises(UserError, match="no calibration for task toy-v1 with k2-exact"):
        run("ohgw", clock="calibrated", horizon=2)
    _, rec = run("ohgw", horizon=2)  # the FLOP clock only notes that there is no calibrated charge
    assert rec["sim_seconds_calibrated"] is None and rec["sim_seconds"] > 0
    out = tmp_path / "res"
    assert main(["--task", "digits", "--ohgw", "--warm-start-clock", "calibrated", "--results-dir", str(out),
                 "--budget", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no calibration for task digits-mlp-v1" in err and not out.exists()


def test_a_study_on_the_calibrated_clock_reports_its_share_on_both_clocks(tmp_path: Path) -> None:
    """digits-loss (calibrated in ohgw_bench/overhead_calibration.json): the calibrated arm charges the measured
    ratio; its summary gives the share on both clocks, and so does the FLOP-clock arm's."""
    from ohgw_bench.cost import calibrated_ratio
    from ohgw_bench.study import StudySpec, run_study

    cal = calibrated_ratio("digits-mlp-loss-v1", "k1-exact")
    out = {}
    for clock in ("flops", "calibrated"):
        spec = StudySpec(task="digits-loss", scheduler="asha", seed=0, budget=0.5, n_workers=2,
                         results_dir=str(tmp_path), experiment="t",
                         warm_start=WarmStartSettings.parse("ohgw-normalized", clock=clock))
        out[clock] = run_study(spec, progress=False)
    flops, calib = out["flops"]["warm_start"], out["calibrated"]["warm_start"]
    assert out["calibrated"]["folder"].endswith("ohgw-normalized-cal/seed-0")
    assert calib["clock"] == "calibrated" and flops["clock"] == "flops"
    assert calib["share_calibrated"] == pytest.approx(calib["share_of_worker_time"], rel=1e-9)
    assert flops["share_flops"] == pytest.approx(flops["share_of_worker_time"], rel=1e-9)
    assert flops["share_calibrated"] is not None and calib["share_flops"] is not None
    # the calibrated charge per warm-start is wall_ratio / flop_ratio of the FLOP charge (up to the configs' widths)
    rows = [json.loads(line) for line in (Path(out["calibrated"]["folder"]) / "reports.jsonl").read_text().splitlines()]
    rec = next(r["ohgw_warm_start"] for r in rows if r.get("ohgw_warm_start"))
    assert rec["sim_seconds"] == pytest.approx(rec["sim_seconds_calibrated"], rel=1e-12)
    assert rec["sim_seconds_calibrated"] / rec["sim_seconds_flops"] == pytest.approx(
        cal["wall_ratio"] / rec["ratio_flops"], rel=1e-6)
    assert (calib["share_calibrated"] < calib["share_flops"]) == (cal["wall_ratio"] < cal["flop_ratio"])
