"""The one-shot hyper-gradient under torch.distributed data parallelism (DESIGN.md sections 4 and 8).

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
refused unless ``exact=False``. Data-dependent randomness must live in the batch, as the
digits task's augmentation noise does.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from ohgw_bench.hypergrad import (
    SGD,
    AdamW,
    HyperGradient,
    HyperProblem,
    batch_size,
    safe_sqrt,
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


@contextlib.contextmanager
def _mode(model: torch.nn.Module, train: bool) -> Iterator[None]:
    saved = [(m, m.training) for m in model.modules()]
    try:
        model.train(train)
        yield
    finally:
        for m, flag in saved:
            m.training = flag


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class _Step:
    """torch.optim's SGD / AdamW arithmetic on tensors that carry a graph to the hyperparameters."""

    def __init__(self, spec: SGD | AdamW, hp: Mapping[str, torch.Tensor]):
        self.spec = spec
        self.hp = hp
        self.state: dict[str, dict[str, Any]] = {}

    def _v(self, value: str | float) -> torch.Tensor | float:
        return self.hp[value] if isinstance(value, str) else float(value)

    def __call__(self, w: dict[str, torch.Tensor], g: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        spec = self.spec
        out = dict(w)
        if isinstance(spec, SGD):
            lr, mu, wd = self._v(spec.lr), self._v(spec.momentum), self._v(spec.weight_decay)
            for n, gn in g.items():
                d = gn + wd * w[n]
                state = self.state.setdefault(n, {})
                buf = d if "buf" not in state else mu * state["buf"] + d
                state["buf"] = buf
                out[n] = w[n] - lr * (d + mu * buf if spec.nesterov else buf)
            return out
        lr, b1, b2, wd = self._v(spec.lr), self._v(spec.beta1), self._v(spec.beta2), self._v(spec.weight_decay)
        for n, gn in g.items():
            state = self.state.setdefault(n, {"t": 0, "m": 0.0, "v": 0.0})
            state["t"] += 1
            t = state["t"]
            m = b1 * state["m"] + (1 - b1) * gn
            v = b2 * state["v"] + (1 - b2) * (gn * gn)
            state["m"], state["v"] = m, v
            denom = safe_sqrt(v) / (1 - b2**t) ** 0.5 + spec.eps
            out[n] = w[n] * (1 - lr * wd) - (lr / (1 - b1**t)) * (m / denom)
        return out


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
    """(this rank's weighted validation loss, this rank's hyper-gradient of it), both unreduced."""
    model = problem.model
    ref = next(model.parameters())
    device = ref.device
    dtype = dtype or ref.dtype
    hp = {n: torch.tensor(float(v), dtype=dtype, device=device, requires_grad=n in names)
          for n, v in problem.hyper.items()}
    w = {n: p.detach().clone().to(dtype).requires_grad_(True) for n, p in model.named_parameters()}
    buffers = {n: _to(b.detach().clone(), device, dtype) for n, b in model.named_buffers()}
    step = _Step(problem.optimizer, hp)
    seed = int(getattr(problem, "seed", 0))

    def forward(weights: dict[str, torch.Tensor]) -> Any:
        return lambda *a, **k: functional_call(model, {**weights, **buffers}, a, k)

    with torch.enable_grad():
        for t in range(horizon):
            full = problem.train_batches[t]
            share = shard_bounds(batch_size(full), rank, world)
            batch = _to(slice_batch(full, *share), device, dtype)
            with _mode(model, True), _seeded(seed + t, device):
                loss = problem.train_loss(forward(w), batch, hp)
            names_w = list(w)
            raw = torch.autograd.grad(loss, [w[n] for n in names_w], create_graph=True, allow_unused=True)
            used = [(n, gn) for n, gn in zip(names_w, raw) if gn is not None]
            weight = (share[1] - share[0]) / batch_size(full)
            flat = torch.cat([gn.reshape(-1) for _, gn in used]) * weight
            if world > 1:
                flat = _differentiable_sum(flat, group)
            g, offset = {}, 0
            for n, gn in used:
                g[n] = flat[offset:offset + gn.numel()].view_as(gn)
                offset += gn.numel()
            w = step(w, g)
        full_val = problem.val_batch
        start, stop = shard_bounds(batch_size(full_val), rank, world)
        with _mode(model, False):
            val = problem.val_loss(forward(w), _to(slice_batch(full_val, start, stop), device, dtype))
        value = val * ((stop - start) / batch_size(full_val))
        inputs = [hp[n] for n in names]
        grads = torch.autograd.grad(value * world, inputs, allow_unused=True) if inputs else ()
    flat_h = torch.stack([g.detach() if g is not None else torch.zeros((), dtype=dtype, device=device)
                          for g in grads]) if grads else torch.zeros(0, dtype=dtype, device=device)
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

    The data-parallel path needs the all-reduce inside the differentiable optimiser step, which
    the engine (``ohgw_bench.hypergrad.hypergradient``) has no hook for, so this module carries
    its own SGD/AdamW lookahead; ``tests/test_distributed.py`` pins it to the engine and to
    central finite differences so the two cannot drift apart.
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
