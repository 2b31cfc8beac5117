"""The one-shot hyper-gradient under torch.distributed data parallelism (docs/design.md sections 4 and 8).

Each rank holds the same model and hyperparameters and takes its shard of every lookahead
batch and of the validation batch. The result equals the single-process hyper-gradient on the
whole batches because every term that mixes examples is reduced, with the right weights:

- the lookahead's training step uses the gradient of the WHOLE batch, as DDP does: each rank's
  shard-mean gradient is weighted by its shard's share of the batch and summed over ranks by
  a differentiable all-reduce inside the step (``torch.distributed.nn.functional.all_reduce``,
  whose backward is itself an all-reduce, so backward passes and double-backward work);
- the validation loss is a mean over V, so rank r contributes ``(m_r / M) * L_val(V_r)``;
- backward from rank r's contribution flows through the step's all-reduce into every rank's
  training graph; the replicated part of the graph (the update ``w - lr * g`` and everything
  after it) is walked once per rank with that rank's own contribution, so the ranks' hyper-
  gradients add up to the exact one. Each rank's hyper-gradient is scaled by the world size
  (for equal shards: the plain gradient of its shard's validation loss) and the ranks average.

Exact for losses that are means of per-example terms and models without cross-example
layers. BatchNorm in train mode normalises with shard statistics (as DDP without
SyncBatchNorm does) and random draws inside the forward (dropout) differ per shard: both are
refused unless ``exact=False`` (the validation pass then follows ``HyperProblem.val_bn`` on
each rank's shard, as the engine does on the whole batch). Data-dependent randomness must
live in the batch, as the digits task's augmentation noise does.

The lookahead itself is the engine's (``ohgw_bench.hypergrad``): this module only shards the
batches, weights the validation loss and passes the all-reduce as the step's gradient-reduce hook.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch.nn.modules.batchnorm import _BatchNorm

from ohgw_bench.hypergrad import (
    Grads,
    HyperGradient,
    HyperProblem,
    _hyper_tensors,
    _lookahead,
    batch_size,
    slice_batch,
)


def shard_bounds(size: int, rank: int, world: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous shard of ``size`` examples; the first ``size % world`` ranks get one more."""
    if size < world:
        raise ValueError(f"a batch of {size} examples cannot be split over {world} ranks")
    base, extra = divmod(size, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard(batch: Any, rank: int, world: int) -> Any:
    """Rank's shard of a batch: every tensor sliced along dim 0, everything else kept."""
    start, stop = shard_bounds(batch_size(batch), rank, world)
    return slice_batch(batch, start, stop)


def _to(obj: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    if isinstance(obj, torch.Tensor):
        obj = obj.to(device)
        return obj.to(dtype) if dtype is not None and obj.is_floating_point() else obj
    if isinstance(obj, Mapping):
        return {k: _to(v, device, dtype) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(_to(v, device, dtype) for v in obj)
    return obj


def _differentiable_sum(tensor: torch.Tensor, group: Any) -> torch.Tensor:
    """All-reduce (sum) whose backward is an all-reduce of the incoming gradients, itself differentiable.

    torch 2.14 marks ``torch.distributed.nn.functional`` deprecated in favour of the private
    ``_functional_collectives``; the public one works on every torch this package supports.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return dist_fn.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group or dist.group.WORLD)


def _hyper_gradient(
    problem: HyperProblem,
    names: Sequence[str],
    horizon: int,
    dtype: torch.dtype | None,
    rank: int,
    world: int,
    group: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(this rank's weighted validation loss, this rank's hyper-gradient of it), both unreduced.

    The lookahead is the engine's own (``ohgw_bench.hypergrad``): this rank's shards go in as the
    batches, the validation loss is weighted by the shard's share, and the engine's
    gradient-reduce hook turns the shard gradient into the whole batch's one before each step.
    """
    device = next(problem.model.parameters()).device
    train = [problem.train_batches[t] for t in range(horizon)]
    train_shares = [shard_bounds(batch_size(b), rank, world) for b in train]
    start, stop = shard_bounds(batch_size(problem.val_batch), rank, world)
    val_weight = (stop - start) / batch_size(problem.val_batch)
    val_loss = problem.val_loss

    def weighted_val_loss(forward: Any, batch: Any) -> torch.Tensor:
        return val_loss(forward, batch) * val_weight

    local = dataclasses.replace(
        problem,
        train_batches=[_to(slice_batch(b, *share), device, None) for b, share in zip(train, train_shares)],
        val_batch=_to(slice_batch(problem.val_batch, start, stop), device, None),
        val_loss=weighted_val_loss,
    )
    steps = iter(zip(train_shares, train))

    def reduce_grads(g: Grads) -> Grads:
        """Shard-mean gradient x shard share, summed over ranks: the whole batch's mean gradient."""
        (lo, hi), full = next(steps)
        used = [(n, gn) for n, gn in g.items() if gn is not None]
        flat = torch.cat([gn.reshape(-1) for _, gn in used]) * ((hi - lo) / batch_size(full))
        if world > 1:
            flat = _differentiable_sum(flat, group)
        out: Grads = dict.fromkeys(g)
        offset = 0
        for n, gn in used:
            out[n] = flat[offset:offset + gn.numel()].view_as(gn)
            offset += gn.numel()
        return out

    hp = _hyper_tensors(local, local.hyper, names, dtype)
    with torch.enable_grad():
        value = _lookahead(local, hp, horizon, True, False, dtype, reduce_grads).value
        inputs = [hp[n] for n in names]
        grads = torch.autograd.grad(value * world, inputs, allow_unused=True) if inputs else ()
    flat_h = torch.stack([g.detach() if g is not None else torch.zeros((), dtype=value.dtype, device=device)
                          for g in grads]) if grads else torch.zeros(0, dtype=value.dtype, device=device)
    return value.detach(), flat_h


def _check(problem: HyperProblem, names: Sequence[str], horizon: int | None, exact: bool) -> int:
    missing = [n for n in names if n not in problem.hyper]
    if missing:
        raise ValueError(f"hyperparameters {missing} are not in HyperProblem.hyper {sorted(problem.hyper)}")
    k = len(problem.train_batches) if horizon is None else int(horizon)
    if not 1 <= k <= len(problem.train_batches):
        raise ValueError(f"horizon {horizon} needs 1..{len(problem.train_batches)} lookahead batches")
    if exact:
        bad = sorted({type(m).__name__ for m in problem.model.modules()
                      if isinstance(m, _BatchNorm | torch.nn.Dropout)})
        if bad:
            raise ValueError(f"{bad} mix examples or draw per shard: the data-parallel hyper-gradient would not "
                             "equal the single-process one (pass exact=False to accept shard statistics)")
    return k


def _result(problem: HyperProblem, names: Sequence[str], value: float, flat: torch.Tensor, space: Any, k: int,
            info: dict[str, Any]) -> HyperGradient:
    native = {n: float(v) for n, v in zip(names, flat.tolist())}
    psi: dict[str, float] = {}
    unit: dict[str, float] = {}
    if space is not None:
        psi = {n: g * space[n].dnative_dpsi(problem.hyper[n]) for n, g in native.items()}
        unit = {n: g * space[n].dnative_dunit(problem.hyper[n]) for n, g in native.items()}
    return HyperGradient(native=native, psi=psi, unit=unit, value=value, method="autograd-exact-data-parallel",
                         horizon=k, evaluations=1, info=info)


def data_parallel_hypergradient(
    problem: HyperProblem,
    names: Sequence[str] | None = None,
    horizon: int | None = None,
    *,
    space: Any = None,
    dtype: torch.dtype | None = None,
    group: Any = None,
    exact: bool = True,
) -> HyperGradient:
    """Exact k-step lookahead hyper-gradient with the batches split over the ranks of ``group``.

    Call it on every rank of an initialised process group with the same ``problem`` (same
    weights, batches and hyperparameters); every rank returns the same result, equal to the
    single-process hyper-gradient on the whole batches. Batches must hold at least one
    example per rank. ``space`` adds log and unit-cube coordinates; ``names`` defaults to
    every hyperparameter in ``problem.hyper``.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("data_parallel_hypergradient needs an initialised torch.distributed process group")
    names = list(problem.hyper) if names is None else list(names)
    k = _check(problem, names, horizon, exact)
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    value, flat = _hyper_gradient(problem, names, k, dtype, rank, world, group)
    packed = torch.cat([value.reshape(1), flat])
    dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=group)
    info = {"world_size": world, "rank": rank,
            "train_shards": [shard_bounds(batch_size(b), rank, world) for b in problem.train_batches[:k]],
            "val_shard": shard_bounds(batch_size(problem.val_batch), rank, world)}
    return _result(problem, names, float(packed[0]), packed[1:] / world, space, k, info)


def _reference_hypergradient(
    problem: HyperProblem,
    names: Sequence[str] | None = None,
    horizon: int | None = None,
    *,
    space: Any = None,
    dtype: torch.dtype | None = None,
) -> HyperGradient:
    """This module's lookahead run in one process on the whole batches (no process group).

    The data-parallel path takes the engine's own optimiser step, with the all-reduce placed in
    the step's gradient-reduce hook (``ohgw_bench.hypergrad.GradReduce``);
    ``tests/test_distributed.py`` pins this path to ``hypergradient`` and to central finite
    differences.
    """
    names = list(problem.hyper) if names is None else list(names)
    k = _check(problem, names, horizon, exact=False)
    value, flat = _hyper_gradient(problem, names, k, dtype, 0, 1, None)
    return _result(problem, names, float(value), flat, space, k, {"world_size": 1})


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 for a local process group's rendezvous."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relative_difference(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """max_n |a_n - b_n| / max(max_n |b_n|, tiny): one number for "do two hyper-gradients agree"."""
    scale = max((abs(v) for v in b.values()), default=0.0)
    diff = max((abs(a[n] - b[n]) for n in b), default=0.0)
    return diff / max(scale, math.ulp(1.0))


def _rank_main(rank: int, fn: Any, world: int, backend: str, port: int, out: str, args: tuple) -> None:
    import os
    import sys

    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        result = fn(rank, world, *args)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    torch.save(result, os.path.join(out, f"rank-{rank}.pt"))


def launch(fn: Any, world: int, backend: str = "gloo", args: tuple = ()) -> list[Any]:
    """Run ``fn(rank, world, *args)`` in ``world`` fresh processes joined by a process group on 127.0.0.1.

    ``fn`` must be importable by name (a module-level function). Returns each rank's return
    value, in rank order; an exception in any rank is raised here with its traceback.
    """
    import tempfile

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="ohgw-dist-") as out:
        mp.spawn(_rank_main, args=(fn, world, backend, free_port(), out, args), nprocs=world, join=True)
        return [torch.load(f"{out}/rank-{r}.pt", weights_only=False) for r in range(world)]
