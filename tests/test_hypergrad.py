"""The hyper-gradient engine against central finite differences of the lookahead loss J, in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.hypergrad import (
    SGD,
    AdamW,
    HyperProblem,
    UnreachableHyperparameterError,
    finite_difference,
    hypergradient,
    lookahead_loss,
    plain_step,
    split_batch,
)
from ohgw_bench.space import Hyperparameter, SearchSpace

SPACE = SearchSpace([
    Hyperparameter("lr", 1e-4, 1.0, 0.1, log=True),
    Hyperparameter("wd", 1e-6, 1.0, 1e-2, log=True),
    Hyperparameter("momentum", 0.0, 0.99, 0.5),
    Hyperparameter("ls", 0.0, 0.5, 0.1),
    Hyperparameter("aug", 0.0, 1.0, 0.3),
    Hyperparameter("beta1", 0.5, 0.99, 0.9),
    Hyperparameter("beta2", 0.9, 0.9999, 0.999),
    Hyperparameter("width", 4, 64, 8, integer=True),
])
SGD_HYPER = {"lr": 0.3, "wd": 0.05, "momentum": 0.6, "ls": 0.2, "aug": 0.4}
ADAM_HYPER = {"lr": 0.01, "wd": 0.1, "beta1": 0.8, "beta2": 0.95, "ls": 0.2, "aug": 0.4}
ALL_SGD = ["lr", "wd", "momentum", "ls", "aug"]
CLASSES = 4


def mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, CLASSES)).double()


def cnn() -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.SiLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, CLASSES),
    ).double()


ARCHS = {"mlp": (mlp, (6,)), "cnn": (cnn, (2, 5, 5))}


def batch(shape: tuple[int, ...], n: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    noise = torch.randn(n, *shape, generator=g, dtype=torch.float64)
    return x, y, noise


def smoothed_loss(forward, b, hp):  # noqa: ANN001, ANN201
    x, y, noise = b
    logp = F.log_softmax(forward(x + hp["aug"] * noise), dim=-1)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    return ((1 - hp["ls"]) * nll + hp["ls"] * (-logp.mean(dim=-1))).mean()


def float_smoothed_loss(forward, b, hp):  # noqa: ANN001, ANN201
    x, y, noise = b
    return F.cross_entropy(forward(x + hp["aug"] * noise), y, label_smoothing=float(hp["ls"].detach()))


def val_loss(forward, b):  # noqa: ANN001, ANN201
    return F.cross_entropy(forward(b[0]), b[1])


def problem(arch: str, optimizer: SGD | AdamW, hyper: dict[str, float], k: int = 2,
            train_loss=smoothed_loss) -> HyperProblem:  # noqa: ANN001
    make, shape = ARCHS[arch]
    return HyperProblem(
        model=make(),
        train_batches=[batch(shape, 16, 10 + t) for t in range(k)],
        val_batch=batch(shape, 16, 99)[:2],
        train_loss=train_loss,
        val_loss=val_loss,
        optimizer=optimizer,
        hyper=dict(hyper),
    )


def central_fd(p: HyperProblem, name: str, k: int) -> float:
    """Five-point central difference of J in the native coordinate (error O(h^4))."""
    x = p.hyper[name]
    h = 1e-4 * max(abs(x), 1e-2)
    f = {s: lookahead_loss(p, {name: x + s * h}, k) for s in (-2, -1, 1, 2)}
    return (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * h)


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b))


def assert_matches_fd(p: HyperProblem, names: list[str], k: int) -> None:
    hg = hypergradient(p, SPACE, names=names, horizon=k)
    for n in names:
        fd = central_fd(p, n, k)
        assert abs(fd) > 1e-8, f"{n}: J barely depends on it, the check would be vacuous"
        assert rel_err(hg.native[n], fd) < 1e-5, (n, hg.native[n], fd)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_sgd_momentum_all_five_at_k2_match_finite_differences(arch: str) -> None:
    p = problem(arch, SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    assert_matches_fd(p, ALL_SGD, 2)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_nesterov_momentum_at_k1_matches_finite_differences(arch: str) -> None:
    p = problem(arch, SGD("lr", "momentum", "wd", nesterov=True), SGD_HYPER, k=1)
    assert_matches_fd(p, ["momentum", "lr", "ls", "aug"], 1)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_adamw_at_k2_matches_finite_differences(arch: str) -> None:
    p = problem(arch, AdamW("lr", "beta1", "beta2", weight_decay="wd"), ADAM_HYPER, k=2)
    assert_matches_fd(p, ["lr", "wd", "beta1", "beta2"], 2)


def test_known_zeros_at_k1() -> None:
    p = problem("mlp", SGD("lr", "momentum", "wd"), SGD_HYPER, k=1)
    hg = hypergradient(p, SPACE, names=["lr", "momentum"], horizon=1)
    assert hg.native["momentum"] == 0.0
    assert hg.info["structural_zero"] == ["momentum"]
    assert abs(central_fd(p, "momentum", 1)) < 1e-10
    assert abs(hg.native["lr"]) > 1e-3

    pa = problem("mlp", AdamW("lr", "beta1", "beta2", weight_decay="wd"), ADAM_HYPER, k=1)
    ha = hypergradient(pa, SPACE, names=["lr", "beta1", "beta2"], horizon=1)
    scale = abs(ha.native["lr"])
    assert scale > 1e-3
    for n in ("beta1", "beta2"):
        assert abs(ha.native[n]) < 1e-9 * scale, (n, ha.native[n])
        assert abs(central_fd(pa, n, 1)) < 1e-8 * scale


def test_momentum_without_nesterov_is_nonzero_at_k2() -> None:
    p = problem("mlp", SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    hg = hypergradient(p, SPACE, names=["momentum"])
    assert hg.horizon == 2
    assert abs(hg.native["momentum"]) > 1e-6
    assert hg.info["structural_zero"] == []


@pytest.mark.parametrize("mode", ["exact", "mixed"])
def test_label_smoothing_from_a_python_float_is_refused_or_flagged(mode: str) -> None:
    p = problem("mlp", SGD("lr", "momentum", "wd"), SGD_HYPER, k=1, train_loss=float_smoothed_loss)
    with pytest.raises(UnreachableHyperparameterError, match="ls"):
        hypergradient(p, SPACE, names=["lr", "ls"], mode=mode)
    hg = hypergradient(p, SPACE, names=["lr", "ls"], mode=mode, on_unreachable="flag")
    assert hg.info["unreachable"] == ["ls"]
    assert math.isnan(hg.native["ls"]) and math.isnan(hg.unit["ls"])
    assert math.isfinite(hg.native["lr"]) and hg.native["lr"] != 0.0


def test_caller_model_buffers_flags_and_rng_are_untouched() -> None:
    p = problem("cnn", SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    p.model.eval()
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    rng = torch.get_rng_state()
    hypergradient(p, SPACE, names=ALL_SGD)
    plain_step(p)
    after = p.model.state_dict()
    assert set(before) == set(after)
    assert any("running_mean" in k for k in before)
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    assert not any(m.training for m in p.model.modules())
    assert torch.equal(rng, torch.get_rng_state())


def test_sgd_k1_closed_forms() -> None:
    """d J / d log lr = g_V . delta_w and d J / d log wd = -lr wd g_V . w0 (docs/design.md section 4)."""
    hyper = {**SGD_HYPER, "momentum": 0.0}
    p = problem("mlp", SGD("lr", 0.0, "wd"), hyper, k=1)
    params = dict(p.model.named_parameters())
    w0 = {n: v.detach().clone().requires_grad_(True) for n, v in params.items()}
    hp = {n: torch.tensor(v, dtype=torch.float64) for n, v in hyper.items()}
    loss = smoothed_loss(lambda x: torch.func.functional_call(p.model, w0, (x,)), p.train_batches[0], hp)
    g = torch.autograd.grad(loss, list(w0.values()))
    lr, wd = hyper["lr"], hyper["wd"]
    w1 = {n: (w - lr * (gn + wd * w)).detach().requires_grad_(True) for (n, w), gn in zip(w0.items(), g)}
    vloss = val_loss(lambda x: torch.func.functional_call(p.model, w1, (x,)), p.val_batch)
    g_v = torch.autograd.grad(vloss, list(w1.values()))
    dot_delta = sum(float((gv * (w1[n] - w0[n])).sum().detach()) for gv, n in zip(g_v, w0))
    dot_w0 = sum(float((gv * w0[n]).sum().detach()) for gv, n in zip(g_v, w0))

    with torch.no_grad():
        hg = hypergradient(p, SPACE, names=["lr", "wd"])
    assert rel_err(hg.psi["lr"], dot_delta) < 1e-10
    assert rel_err(hg.psi["wd"], -lr * wd * dot_w0) < 1e-10
    assert rel_err(hg.value, float(vloss.detach())) < 1e-12


def test_first_order_and_mixed_modes() -> None:
    p = problem("mlp", SGD("lr", "momentum", "wd"), SGD_HYPER, k=1)
    exact = hypergradient(p, SPACE, names=ALL_SGD, mode="exact")
    first = hypergradient(p, SPACE, names=ALL_SGD, mode="first-order")
    mixed = hypergradient(p, SPACE, names=ALL_SGD, mode="mixed")
    for n in ("lr", "wd"):
        assert rel_err(first.native[n], exact.native[n]) < 1e-10
        assert rel_err(mixed.native[n], exact.native[n]) < 1e-10
    assert first.native["ls"] == 0.0 and first.native["aug"] == 0.0
    assert first.info["zero_by_mode"] == ["ls", "aug"]
    assert abs(exact.native["ls"]) > 1e-4
    assert rel_err(mixed.native["ls"], exact.native["ls"]) < 1e-3
    assert rel_err(mixed.native["aug"], exact.native["aug"]) < 1e-2
    assert mixed.info["fd_radius"] > 0

    p2 = problem("mlp", SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    exact2 = hypergradient(p2, SPACE, names=["lr"], mode="exact")
    first2 = hypergradient(p2, SPACE, names=["lr"], mode="first-order")
    assert first2.native["lr"] != exact2.native["lr"]
    assert rel_err(first2.native["lr"], exact2.native["lr"]) < 0.5


def test_coordinates_follow_the_chain_rule() -> None:
    p = problem("mlp", SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    hg = hypergradient(p, SPACE, names=ALL_SGD)
    assert hg.method == "autograd-exact" and hg.horizon == 2
    for n in ALL_SGD:
        hpar = SPACE[n]
        x = SGD_HYPER[n]
        factor = x if hpar.log else 1.0
        assert hg.psi[n] == pytest.approx(hg.native[n] * factor, rel=1e-12)
        assert hg.unit[n] == pytest.approx(hg.psi[n] * hpar.psi_range, rel=1e-12)


def test_names_default_to_autograd_movable_and_horizon_to_all_batches() -> None:
    p = problem("mlp", SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    hg = hypergradient(p, SPACE)
    assert list(hg.native) == ALL_SGD
    assert hg.horizon == 2
    short = hypergradient(p, SPACE, names=["lr"], horizon=5)
    assert short.horizon == 2 and "horizon_clamped" in short.info
    with pytest.raises(ValueError, match="not in HyperProblem.hyper"):
        hypergradient(p, SPACE, names=["beta1"])


def test_float64_option_on_a_float32_model() -> None:
    p64 = problem("cnn", SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    p32 = problem("cnn", SGD("lr", "momentum", "wd"), SGD_HYPER, k=2)
    p32.model.float()
    p32.train_batches = [tuple(t.float() if t.is_floating_point() else t for t in b) for b in p32.train_batches]
    g64 = hypergradient(p64, SPACE, names=ALL_SGD)
    g32 = hypergradient(p32, SPACE, names=ALL_SGD, dtype=torch.float64)
    assert g32.info["dtype"] == "torch.float64"
    for n in ALL_SGD:
        assert rel_err(g32.native[n], g64.native[n]) < 1e-6
    assert next(p32.model.parameters()).dtype == torch.float32


def test_plain_step_trains_a_copy() -> None:
    p = problem("cnn", AdamW("lr", "beta1", "beta2", weight_decay="wd"), ADAM_HYPER, k=1)
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    loss = plain_step(p)
    assert math.isfinite(loss) and loss > 0
    for k, v in p.model.state_dict().items():
        assert torch.equal(v, before[k])


def test_split_batch() -> None:
    x, y, noise = batch((6,), 10, 0)
    train, val = split_batch((x, y, noise), 0.5)
    assert train[0].shape[0] == 5 and val[1].shape[0] == 5
    assert torch.equal(torch.cat([train[0], val[0]]), x)
    d_train, d_val = split_batch({"x": x, "y": y}, 0.3)
    assert d_train["x"].shape[0] == 3 and d_val["y"].shape[0] == 7
    with pytest.raises(ValueError):
        split_batch(x, 0.01)


QUAD_SPACE = SearchSpace([
    Hyperparameter("a", 0.0, 2.0, 1.0),
    Hyperparameter("b", 1e-4, 1.0, 1e-2, log=True),
    Hyperparameter("c", -1.0, 1.0, 0.0),
    Hyperparameter("n", 1, 10, 3, integer=True),
])
CURV = {"a": 3.0, "b": 0.7, "c": 1.9}
CENTER = {"a": 0.3, "b": 0.6, "c": 0.45}


def quadratic(config) -> float:  # noqa: ANN001
    z = QUAD_SPACE.to_unit(config)
    cross = 0.5 * (z["a"] - CENTER["a"]) * (z["c"] - CENTER["c"])
    return sum(CURV[k] * (z[k] - CENTER[k]) ** 2 for k in CURV) + cross + 0.1 * config["n"]


def exact_unit_grad(config) -> dict[str, float]:  # noqa: ANN001
    z = QUAD_SPACE.to_unit(config)
    g = {k: 2 * CURV[k] * (z[k] - CENTER[k]) for k in CURV}
    g["a"] += 0.5 * (z["c"] - CENTER["c"])
    g["c"] += 0.5 * (z["a"] - CENTER["a"])
    return g


def test_finite_difference_is_exact_on_a_quadratic_in_the_interior() -> None:
    config = {"a": 0.8, "b": 0.05, "c": -0.2, "n": 3}
    hg = finite_difference(quadratic, config, QUAD_SPACE, h=0.05)
    truth = exact_unit_grad(config)
    assert list(hg.unit) == ["a", "b", "c"]
    for k in truth:
        assert hg.unit[k] == pytest.approx(truth[k], rel=1e-9, abs=1e-12)
    assert hg.info["sides"] == {"a": "central", "b": "central", "c": "central"}
    assert hg.evaluations == 1 + 2 * 3
    assert hg.value == quadratic(config)
    rng = QUAD_SPACE["b"].psi_range
    assert hg.psi["b"] == pytest.approx(truth["b"] / rng, rel=1e-9)
    assert hg.native["b"] == pytest.approx(truth["b"] / (rng * config["b"]), rel=1e-9)
    assert hg.native["a"] == pytest.approx(truth["a"] / 2.0, rel=1e-9)


def test_finite_difference_is_one_sided_at_the_bounds() -> None:
    h = 0.05
    config = {"a": 2.0, "b": 1e-4, "c": 0.0, "n": 3}
    hg = finite_difference(quadratic, config, QUAD_SPACE, names=["a", "b"], h=h)
    truth = exact_unit_grad(config)
    assert hg.info["sides"] == {"a": "backward", "b": "forward"}
    assert hg.evaluations == 3
    assert hg.unit["a"] == pytest.approx(truth["a"] - CURV["a"] * h, rel=1e-9)
    assert hg.unit["b"] == pytest.approx(truth["b"] + CURV["b"] * h, rel=1e-9)
    with pytest.raises(ValueError, match="not movable"):
        finite_difference(quadratic, config, QUAD_SPACE, names=["n"])


def test_running_bn_statistics_in_validation_are_refused() -> None:
    """BatchNorm updates running stats in place (outside autograd): an 'exact' hyper-gradient
    through them would silently miss their dependence on the hyperparameters."""
    with pytest.raises(ValueError, match="running statistics"):
        HyperProblem(model=cnn(), train_batches=[batch((2, 5, 5), 4, 1)], val_batch=batch((2, 5, 5), 4, 2)[:2],
                     train_loss=smoothed_loss, val_loss=val_loss, optimizer=SGD(), hyper=dict(SGD_HYPER),
                     val_bn="running")


@pytest.mark.parametrize(("mode", "exact"), [("exact", True), ("first-order", False), ("mixed", False)])
def test_every_warm_start_record_says_whether_its_hyper_gradient_is_exact(mode: str, exact: bool) -> None:
    from ohgw_bench import tasks
    from ohgw_bench.warmstart import WarmStart, WarmStartSettings

    task = tasks.make("digits")
    task.prepare()
    config = task.space.default_config()
    _, record = WarmStart(WarmStartSettings(variant="ohgw", mode=mode), task, 0, strict=True).apply(config, 1)
    assert record["hg_exact"] is exact
    assert record["method"] == f"autograd-{mode}"
