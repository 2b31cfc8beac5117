"""Data-parallel hyper-gradient: 2 gloo ranks on CPU equal one process on the whole batch (float64).

The shards are uneven (13 training and 11 validation examples over 2 ranks), so the
size weighting of the step's all-reduce and of the validation mean is exercised; a naive
average of per-shard lookaheads is shown to differ, so agreement is not an accident.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from ohgw_bench import distributed
from ohgw_bench.hypergrad import SGD, AdamW, HyperProblem
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.digits import DigitsTask, make_mlp

NAMES = ("lr", "weight_decay", "momentum", "aug_magnitude", "label_smoothing")
CASES = {
    "sgd-k1": (SGD(lr="lr", momentum="momentum", weight_decay="weight_decay"), 1),
    "sgd-k2": (SGD(lr="lr", momentum="momentum", weight_decay="weight_decay"), 2),
    "nesterov-k2": (SGD(lr="lr", momentum="momentum", weight_decay="weight_decay", nesterov=True), 2),
    "adamw-k2": (AdamW(lr="lr", weight_decay="weight_decay"), 2),
}
SPACE = SearchSpace([
    Hyperparameter("lr", 1e-3, 1.0, 0.05, log=True),
    Hyperparameter("weight_decay", 1e-6, 1e-2, 1e-4, log=True),
    Hyperparameter("momentum", 0.0, 0.99, 0.9),
    Hyperparameter("aug_magnitude", 0.0, 1.0, 0.1),
    Hyperparameter("label_smoothing", 0.0, 0.3, 0.0),
])


def make_problem(case: str, batchnorm: bool = False) -> HyperProblem:
    """The same float64 problem in every process: an 8-16-16-3 MLP, smoothed CE with noise augmentation."""
    optimizer, k = CASES[case]
    g = torch.Generator().manual_seed(3)
    model = make_mlp(8, 3, 16, seed=5).double()
    if batchnorm:
        model = torch.nn.Sequential(torch.nn.BatchNorm1d(8), model).double()
    batches = [(torch.randn(13, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (13,), generator=g),
                torch.randn(13, 8, generator=g, dtype=torch.float64)) for _ in range(k)]
    val = (torch.randn(11, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (11,), generator=g))
    lr = 0.3 if isinstance(optimizer, SGD) else 0.05
    return HyperProblem(model=model, train_batches=batches, val_batch=val, train_loss=DigitsTask.train_loss,
                        val_loss=DigitsTask.val_loss, optimizer=optimizer,
                        hyper={"lr": lr, "weight_decay": 0.01, "momentum": 0.8, "aug_magnitude": 0.2,
                               "label_smoothing": 0.1})


def _ranks(rank: int, world: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in CASES:
        hg = distributed.data_parallel_hypergradient(make_problem(case), NAMES, space=SPACE)
        out[case] = {"native": hg.native, "unit": hg.unit, "value": hg.value, "info": hg.info}
    return out


@pytest.fixture(scope="module")
def two_ranks() -> list[dict[str, Any]]:
    return distributed.launch(_ranks, 2, "gloo")


@pytest.mark.parametrize("case", list(CASES))
def test_two_gloo_ranks_equal_one_process_on_the_whole_batch(two_ranks: list[dict[str, Any]], case: str) -> None:
    ref = distributed._reference_hypergradient(make_problem(case), NAMES, space=SPACE)
    r0, r1 = two_ranks[0][case], two_ranks[1][case]
    assert r0["native"] == r1["native"] and r0["value"] == r1["value"]
    assert r0["info"]["train_shards"][0] == (0, 7) and r1["info"]["val_shard"] == (6, 11)
    assert distributed.relative_difference(r0["native"], ref.native) < 1e-10
    assert distributed.relative_difference(r0["unit"], ref.unit) < 1e-10
    assert abs(r0["value"] - ref.value) <= 1e-12 * abs(ref.value)
    unused_momentum = case == "sgd-k1" or isinstance(CASES[case][0], AdamW)
    zero = {"momentum"} if unused_momentum else set()
    for n in NAMES:
        assert (r0["native"][n] == 0.0) == (n in zero), (n, r0["native"][n])


def _value(problem: HyperProblem, **hyper: float) -> float:
    problem.hyper = {**problem.hyper, **hyper}
    return distributed._reference_hypergradient(problem, []).value


@pytest.mark.parametrize("case", list(CASES))
def test_reference_matches_central_differences(case: str) -> None:
    problem = make_problem(case)
    ref = distributed._reference_hypergradient(problem, NAMES)
    base = dict(problem.hyper)
    for n in NAMES:
        h = 1e-6 * max(abs(base[n]), 1.0)
        fd = (_value(make_problem(case), **{n: base[n] + h}) - _value(make_problem(case), **{n: base[n] - h})) / (2 * h)
        assert math.isclose(ref.native[n], fd, rel_tol=1e-6, abs_tol=1e-9), (n, ref.native[n], fd)


def test_naive_average_of_shard_lookaheads_differs() -> None:
    problem = make_problem("sgd-k1")
    ref = distributed._reference_hypergradient(problem, NAMES)
    per_shard = []
    for rank in range(2):
        p = make_problem("sgd-k1")
        p.train_batches = [distributed.shard(b, rank, 2) for b in p.train_batches]
        p.val_batch = distributed.shard(p.val_batch, rank, 2)
        per_shard.append(distributed._reference_hypergradient(p, NAMES).native)
    naive = {n: (per_shard[0][n] + per_shard[1][n]) / 2 for n in NAMES}
    assert distributed.relative_difference(naive, ref.native) > 1e-3


def test_reference_matches_the_engine_once_it_lands() -> None:
    from ohgw_bench import hypergrad

    for case in CASES:
        problem = make_problem(case)
        engine = hypergrad.hypergradient(problem, SPACE, list(NAMES), mode="exact", on_unreachable="flag")
        ref = distributed._reference_hypergradient(problem, NAMES)
        reachable = {n: v for n, v in engine.native.items() if math.isfinite(v)}
        assert reachable, case
        assert distributed.relative_difference(reachable, {n: ref.native[n] for n in reachable}) < 1e-9, case
        for name in set(NAMES) - set(reachable):
            assert ref.native[name] == 0.0, (case, name)


def test_shards_cover_the_batch_in_order() -> None:
    for size in (2, 7, 64, 129):
        for world in (1, 2, 3):
            if size < world:
                continue
            bounds = [distributed.shard_bounds(size, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == size
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1
    with pytest.raises(ValueError, match="cannot be split"):
        distributed.shard_bounds(1, 0, 2)


def test_refusals() -> None:
    with pytest.raises(RuntimeError, match="process group"):
        distributed.data_parallel_hypergradient(make_problem("sgd-k1"))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        distributed._check(make_problem("sgd-k1", batchnorm=True), NAMES, None, exact=True)
    with pytest.raises(ValueError, match="horizon"):
        distributed._check(make_problem("sgd-k1"), NAMES, 2, exact=True)
