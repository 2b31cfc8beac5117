"""k-step differentiable lookahead hyper-gradient, and finite differences (docs/design.md section 4).

The engine differentiates

    w_t = OptStep(w_{t-1}, grad L_train(w_{t-1}; B_t, hp); hp),   t = 1..k
    J   = L_val(w_k; V)

with respect to named hyperparameters, running the caller's model through
``torch.func.functional_call`` on copies of its parameters and buffers, so the caller's
model (weights, BatchNorm running statistics, train/eval flags) is never changed.

Modes:

- ``exact``: double-backward through every step (``create_graph`` only where it is needed:
  lr/wd/momentum at k = 1 need no second-order graph, so they cost two passes).
- ``first-order``: the per-step training gradient is a constant. Exact for optimiser
  hyperparameters at k = 1; loss-side hyperparameters get zero (listed in ``info``).
- ``mixed``: first-order for optimiser hyperparameters; loss-side ones by the DARTS-style
  central difference of d_psi L_train at w_{t-1} +- r u_t, where u_t = dJ/dg_t.

Validation pass: dropout (and every other train/eval switch) is in eval mode, while
BatchNorm normalises with the validation batch's own statistics by default
(``HyperProblem.val_bn = "batch"``): after k steps from initialisation the running
statistics are still close to their initial values (mean 0, variance 1) and an eval-mode
BatchNorm would measure a network that nobody trains. ``val_bn = "running"`` is refused
(ValueError): ``F.batch_norm`` updates running statistics in place, outside autograd's graph,
so an exact hyper-gradient through them would silently leave out how the hyperparameters move
them (measured off by a relative 1.7e-3 to 0.22 against float64 central differences).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import torch
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

Forward = Callable[..., torch.Tensor]
Mode = Literal["exact", "first-order", "mixed"]
MODES: tuple[str, ...] = ("exact", "first-order", "mixed")


class UnreachableHyperparameterError(ValueError):
    """A requested hyperparameter does not reach J through autograd (e.g. a loss built from a float)."""


@dataclass(frozen=True)
class SGD:
    """Functional SGD. Each field is a search-space name (differentiable) or a constant."""

    lr: str | float = "lr"
    momentum: str | float = 0.0
    weight_decay: str | float = 0.0
    nesterov: bool = False


@dataclass(frozen=True)
class AdamW:
    """Functional AdamW (decoupled weight decay). Fields as in :class:`SGD`."""

    lr: str | float = "lr"
    beta1: str | float = 0.9
    beta2: str | float = 0.999
    eps: float = 1e-8
    weight_decay: str | float = 0.0


@dataclass
class HyperProblem:
    """What a task hands the engine: nothing here is modified by it.

    - ``model``: freshly initialised for the trial's config and seed (the w0 the trial trains from).
    - ``train_batches``: the k batches of the lookahead (the batches the trial would see first).
    - ``val_batch``: the held-out batch V.
    - ``train_loss(forward, batch, hp)``: scalar training loss; ``forward(*inputs)`` runs the model
      with the lookahead's current weights in train mode; ``hp`` maps every name in ``hyper`` to
      a 0-d tensor, which loss-side hyperparameters (label smoothing, augmentation magnitude)
      must use so that they carry a gradient.
    - ``val_loss(forward, batch)``: plain validation loss (no smoothing, no augmentation, dropout off).
    - ``optimizer``: :class:`SGD` or :class:`AdamW` naming which hyperparameters drive the step.
    - ``hyper``: native values of the hyperparameters, by search-space name.
    - ``seed``: seeds torch's generator (forked, so the caller's stream is untouched) before
      every training forward, so dropout and other draws are the same in every pass.
    - ``val_bn``: BatchNorm statistics in the validation pass; only ``"batch"`` is accepted.
      ``"running"`` is refused rather than carried functionally: BatchNorm updates its running
      statistics in place, which autograd does not record, so the "exact" hyper-gradient would
      be wrong (see the module docstring).
    """

    model: torch.nn.Module
    train_batches: Sequence[Any]
    val_batch: Any
    train_loss: Callable[[Forward, Any, Mapping[str, torch.Tensor]], torch.Tensor]
    val_loss: Callable[[Forward, Any], torch.Tensor]
    optimizer: SGD | AdamW
    hyper: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    val_bn: Literal["batch"] = "batch"

    def __post_init__(self) -> None:
        if self.val_bn != "batch":
            raise ValueError(
                f"HyperProblem(val_bn={self.val_bn!r}) is not supported: BatchNorm updates its running statistics "
                "in place, outside autograd's graph, so the hyper-gradient through them would be wrong; "
                "use val_bn='batch' (the validation batch's own statistics)")


@dataclass
class HyperGradient:
    """dJ/d(hyperparameter) in native, transformed (log for log scales) and unit-cube coordinates."""

    native: dict[str, float]
    psi: dict[str, float]
    unit: dict[str, float]
    value: float
    method: str
    horizon: int = 1
    evaluations: int = 1
    info: dict[str, Any] = field(default_factory=dict)


def optimizer_names(optimizer: SGD | AdamW) -> list[str]:
    """Search-space names the optimiser's fields refer to (its differentiable hyperparameters)."""
    return [getattr(optimizer, f.name) for f in fields(optimizer) if isinstance(getattr(optimizer, f.name), str)]


def split_batch(batch: Any, fraction: float = 0.5) -> tuple[Any, Any]:
    """Cut a batch (tensor, or tuple/list/dict of tensors sharing dim 0) into (train, validation).

    The split-batch warm-start carves the validation half out of the trial's own first
    mini-batch, so the lookahead costs about one ordinary step (docs/design.md section 4).
    """
    size = batch_size(batch)
    cut = int(round(size * fraction))
    if not 0 < cut < size:
        raise ValueError(f"fraction {fraction} leaves an empty part of a batch of {size}")
    return slice_batch(batch, 0, cut), slice_batch(batch, cut, size)


def batch_size(batch: Any) -> int:
    """Leading dimension of the first tensor in a tensor, tuple/list or dict batch."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    items = list(batch.values()) if isinstance(batch, Mapping) else list(batch)
    for item in items:
        if isinstance(item, torch.Tensor):
            return int(item.shape[0])
    raise ValueError("a batch needs at least one tensor")


def slice_batch(batch: Any, start: int, stop: int) -> Any:
    """Every tensor of a batch sliced along dim 0; everything else kept."""
    if isinstance(batch, torch.Tensor):
        return batch[start:stop]
    if isinstance(batch, Mapping):
        return {k: slice_batch(v, start, stop) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(slice_batch(v, start, stop) for v in batch)
    return batch


def _cast(obj: Any, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, Mapping):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(_cast(v, dtype) for v in obj)
    return obj


@contextlib.contextmanager
def _modes(model: torch.nn.Module, train: bool, bn_batch: bool = False) -> Iterator[None]:
    saved = [(m, m.training) for m in model.modules()]
    try:
        model.train(train)
        if not train and bn_batch:
            for m in model.modules():
                if isinstance(m, _BatchNorm):
                    m.training = True
        yield
    finally:
        for m, flag in saved:
            m.training = flag


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Fork torch's generators and seed them. Not torch.manual_seed: its lazy seeding of every
    accelerator backend formats a stack trace per call, which costs more than a small model's step."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        for d in devices:
            torch.cuda.default_generators[d].manual_seed(seed)
        yield


def _forward(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> Forward:
    def forward(*args: Any, **kwargs: Any) -> torch.Tensor:
        return functional_call(model, tensors, args, kwargs)

    return forward


def safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN) derivative where v == 0, so double-backward survives unused weights."""
    positive = v > 0
    return torch.where(positive, torch.where(positive, v, torch.ones_like(v)).sqrt(), torch.zeros_like(v))


def _is_zero(value: str | float) -> bool:
    return not isinstance(value, str) and float(value) == 0.0


Grads = dict[str, torch.Tensor | None]
#: Maps a lookahead step's per-parameter training gradients (None: unused) to the gradients the step
#: applies. The data-parallel path (``ohgw_bench/distributed.py``) sums the ranks' shard gradients
#: here with a differentiable all-reduce; the single-process engine applies none.
GradReduce = Callable[[Grads], Grads]


class _Optimizer:
    """The functional optimiser step: torch's SGD / AdamW arithmetic on tensors that may carry a graph.

    ``reduce_grads`` (identity when None) is applied to the gradients first, so every caller that
    changes how gradients are gathered still takes this one step.
    """

    def __init__(self, spec: SGD | AdamW, hp: Mapping[str, torch.Tensor], reduce_grads: GradReduce | None = None):
        self.spec = spec
        self.hp = hp
        self.reduce_grads = reduce_grads
        self.state: dict[str, dict[str, Any]] = {}

    def _v(self, value: str | float) -> torch.Tensor | float:
        return self.hp[value] if isinstance(value, str) else float(value)

    def step(self, w: dict[str, torch.Tensor], g: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        if self.reduce_grads is not None:
            g = self.reduce_grads(g)
        if isinstance(self.spec, SGD):
            return self._sgd(w, g)
        return self._adamw(w, g)

    def _sgd(self, w: dict[str, torch.Tensor], g: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        spec = self.spec
        assert isinstance(spec, SGD)
        lr, mu, wd = self._v(spec.lr), self._v(spec.momentum), self._v(spec.weight_decay)
        use_mu, use_wd = not _is_zero(spec.momentum), not _is_zero(spec.weight_decay)
        out = {}
        for name, wn in w.items():
            gn = g.get(name)
            if gn is None:
                out[name] = wn
                continue
            d = gn + wd * wn if use_wd else gn
            if use_mu:
                state = self.state.setdefault(name, {})
                buf = d if "buf" not in state else mu * state["buf"] + d
                state["buf"] = buf
                d = d + mu * buf if spec.nesterov else buf
            out[name] = wn - lr * d
        return out

    def _adamw(self, w: dict[str, torch.Tensor], g: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        spec = self.spec
        assert isinstance(spec, AdamW)
        lr, b1, b2, wd = self._v(spec.lr), self._v(spec.beta1), self._v(spec.beta2), self._v(spec.weight_decay)
        use_wd = not _is_zero(spec.weight_decay)
        out = {}
        for name, wn in w.items():
            gn = g.get(name)
            if gn is None:
                out[name] = wn
                continue
            state = self.state.setdefault(name, {"t": 0})
            state["t"] += 1
            t = state["t"]
            if use_wd:
                wn = wn * (1 - lr * wd)
            if t == 1:
                m, v = (1 - b1) * gn, (1 - b2) * (gn * gn)
            else:
                m = b1 * state["m"] + (1 - b1) * gn
                v = b2 * state["v"] + (1 - b2) * (gn * gn)
            state["m"], state["v"] = m, v
            bc1, bc2 = 1 - b1**t, 1 - b2**t
            denom = safe_sqrt(v) / bc2**0.5 + spec.eps
            out[name] = wn - (lr / bc1) * (m / denom)
        return out


@dataclass
class _Trace:
    """What one lookahead leaves behind for the gradient and the mixed-mode correction."""

    value: torch.Tensor
    weights: list[dict[str, torch.Tensor]]
    grad_leaves: list[dict[str, torch.Tensor]]


def _lookahead(
    problem: HyperProblem,
    hp: dict[str, torch.Tensor],
    horizon: int,
    create_graph: bool,
    grad_leaves: bool,
    dtype: torch.dtype | None,
    reduce_grads: GradReduce | None = None,
) -> _Trace:
    model = problem.model
    w = {n: p.detach().clone() for n, p in model.named_parameters()}
    w = {n: _cast(p, dtype).requires_grad_(True) for n, p in w.items()}
    buffers = {n: _cast(b.detach().clone(), dtype) for n, b in model.named_buffers()}
    opt = _Optimizer(problem.optimizer, hp, reduce_grads)
    saved_w: list[dict[str, torch.Tensor]] = []
    leaves: list[dict[str, torch.Tensor]] = []
    for t in range(horizon):
        batch = _cast(problem.train_batches[t], dtype)
        current = w if create_graph else {n: p.detach().requires_grad_(True) for n, p in w.items()}
        with _modes(model, train=True), _seeded(problem.seed + t):
            loss = problem.train_loss(_forward(model, {**current, **buffers}), batch, hp)
        names = list(current)
        raw = torch.autograd.grad(loss, [current[n] for n in names], create_graph=create_graph, allow_unused=True)
        g: dict[str, torch.Tensor | None] = {}
        for n, gn in zip(names, raw):
            if gn is not None and grad_leaves:
                gn = gn.detach().requires_grad_(True)
            g[n] = gn
        if grad_leaves:
            saved_w.append({n: p.detach() for n, p in w.items()})
            leaves.append({n: gn for n, gn in g.items() if gn is not None})
        w = opt.step(w, g)
    with _modes(model, train=False, bn_batch=problem.val_bn == "batch"):
        value = problem.val_loss(_forward(model, {**w, **buffers}), _cast(problem.val_batch, dtype))
    return _Trace(value, saved_w, leaves)


def _hyper_tensors(
    problem: HyperProblem, values: Mapping[str, float], grad: Sequence[str], dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    ref = next(iter(problem.model.parameters()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = dtype or (ref.dtype if ref is not None else torch.get_default_dtype())
    return {
        n: torch.tensor(float(v), dtype=dtype, device=device, requires_grad=n in grad)
        for n, v in values.items()
    }


def _horizon(problem: HyperProblem, horizon: int | None) -> int:
    available = len(problem.train_batches)
    if available < 1:
        raise ValueError("HyperProblem.train_batches is empty")
    k = available if horizon is None else int(horizon)
    if k < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return min(k, available)


def lookahead_loss(
    problem: HyperProblem,
    hyper: Mapping[str, float] | None = None,
    horizon: int | None = None,
    dtype: torch.dtype | None = None,
) -> float:
    """J at ``problem.hyper`` updated by ``hyper``: the function the hyper-gradient differentiates."""
    values = {**problem.hyper, **(hyper or {})}
    hp = _hyper_tensors(problem, values, (), dtype)
    with torch.enable_grad():
        trace = _lookahead(problem, hp, _horizon(problem, horizon), False, False, dtype)
    return float(trace.value.detach())


def _mixed_correction(
    problem: HyperProblem,
    trace: _Trace,
    leaf_grads: list[dict[str, torch.Tensor | None]],
    loss_names: Sequence[str],
    radius: float,
    dtype: torch.dtype | None,
) -> tuple[dict[str, float], list[str]]:
    """sum_t u_t . d^2 L_train / dw dpsi by central differences of d_psi L_train along u_t (DARTS)."""
    total = dict.fromkeys(loss_names, 0.0)
    unreachable: set[str] = set()
    model = problem.model
    buffers0 = {n: _cast(b.detach().clone(), dtype) for n, b in model.named_buffers()}
    for t, (w, u) in enumerate(zip(trace.weights, leaf_grads)):
        u = {n: d for n, d in u.items() if d is not None}
        norm = math.sqrt(sum(float((d * d).sum()) for d in u.values()))
        if norm == 0.0:
            continue
        r = radius / norm
        batch = _cast(problem.train_batches[t], dtype)
        diffs = []
        for sign in (1.0, -1.0):
            hp = _hyper_tensors(problem, problem.hyper, loss_names, dtype)
            shifted = {n: (p + sign * r * u[n]) if n in u else p for n, p in w.items()}
            buffers = {n: b.clone() for n, b in buffers0.items()}
            with _modes(model, train=True), _seeded(problem.seed + t):
                loss = problem.train_loss(_forward(model, {**shifted, **buffers}), batch, hp)
            if loss.requires_grad:
                diffs.append(torch.autograd.grad(loss, [hp[n] for n in loss_names], allow_unused=True))
            else:
                diffs.append((None,) * len(loss_names))
        for n, gp, gm in zip(loss_names, *diffs):
            if gp is None or gm is None:
                unreachable.add(n)
                continue
            total[n] += float(gp - gm) / (2 * r)
    return total, sorted(unreachable)


def _coordinates(space: Any, values: Mapping[str, float], native: Mapping[str, float]) -> tuple[dict, dict]:
    psi = {n: g * space[n].dnative_dpsi(values[n]) for n, g in native.items()}
    unit = {n: g * space[n].dnative_dunit(values[n]) for n, g in native.items()}
    return psi, unit


def hypergradient(
    problem: HyperProblem,
    space: Any,
    names: Sequence[str] | None = None,
    horizon: int | None = None,
    mode: Mode = "exact",
    *,
    dtype: torch.dtype | None = None,
    on_unreachable: Literal["raise", "flag"] = "raise",
    fd_radius: float = 1e-2,
) -> HyperGradient:
    """dJ/d(hyperparameter) of the k-step lookahead for ``names`` (default: autograd-movable ones).

    ``dtype`` runs the lookahead in another precision (float64 for verification). A requested
    loss-side hyperparameter that autograd cannot reach (a loss built from a Python float)
    raises :class:`UnreachableHyperparameterError`, or with ``on_unreachable="flag"`` gets a
    NaN gradient and is listed in ``info["unreachable"]``: never a silent zero. Optimiser
    hyperparameters that the first k steps do not use (momentum at k = 1 without Nesterov)
    are exact zeros, listed in ``info["structural_zero"]``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if names is None:
        names = [n for n in space.movable("autograd") if n in problem.hyper]
    names = list(names)
    missing = [n for n in names if n not in problem.hyper]
    if missing:
        raise ValueError(f"hyperparameters {missing} are not in HyperProblem.hyper {sorted(problem.hyper)}")
    k = _horizon(problem, horizon)
    opt_side = set(optimizer_names(problem.optimizer))
    opt_names = [n for n in names if n in opt_side]
    loss_names = [n for n in names if n not in opt_side]

    exact_graph = mode == "exact" and (bool(loss_names) or k >= 2)
    in_graph = names if mode == "exact" else opt_names
    leaves = mode == "mixed" and bool(loss_names)
    hp = _hyper_tensors(problem, problem.hyper, in_graph, dtype)
    with torch.enable_grad():
        trace = _lookahead(problem, hp, k, exact_graph, leaves, dtype)
        inputs = [hp[n] for n in in_graph]
        flat_leaves = [(t, n, g) for t, leaf in enumerate(trace.grad_leaves) for n, g in leaf.items()]
        grads = torch.autograd.grad(
            trace.value, inputs + [g for _, _, g in flat_leaves], allow_unused=True
        ) if inputs or flat_leaves else ()

    native: dict[str, float] = {}
    info: dict[str, Any] = {
        "mode": mode,
        "optimizer_side": opt_names,
        "loss_side": loss_names,
        "structural_zero": [],
        "unreachable": [],
        "zero_by_mode": [],
        "val_bn": problem.val_bn,
        "dtype": str(trace.value.dtype),
    }
    if horizon is not None and k < horizon:
        info["horizon_clamped"] = f"asked {horizon}, problem has {k} batches"
    for n, gn in zip(in_graph, grads[: len(inputs)]):
        if gn is not None:
            native[n] = float(gn)
        elif n in opt_side:
            native[n] = 0.0
            info["structural_zero"].append(n)
        else:
            native[n] = math.nan
            info["unreachable"].append(n)
    if mode == "first-order":
        for n in loss_names:
            native[n] = 0.0
            info["zero_by_mode"].append(n)
    if leaves:
        u: list[dict[str, torch.Tensor | None]] = [{} for _ in trace.grad_leaves]
        for (t, n, _), gn in zip(flat_leaves, grads[len(inputs):]):
            u[t][n] = None if gn is None else gn.detach()
        with torch.enable_grad():
            corr, unreachable = _mixed_correction(problem, trace, u, loss_names, fd_radius, dtype)
        for n in loss_names:
            native[n] = math.nan if n in unreachable else corr[n]
        info["unreachable"].extend(unreachable)
        info["fd_radius"] = fd_radius
    elif mode == "mixed":
        info["fd_radius"] = fd_radius
    if info["unreachable"] and on_unreachable == "raise":
        raise UnreachableHyperparameterError(
            f"hyperparameters {info['unreachable']} do not reach the lookahead loss through autograd: "
            "the training loss must use hp[name] (a tensor), not a Python float or .item()"
        )
    native = {n: native[n] for n in names}
    psi, unit = _coordinates(space, problem.hyper, native)
    return HyperGradient(
        native=native,
        psi=psi,
        unit=unit,
        value=float(trace.value.detach()),
        method=f"autograd-{mode}",
        horizon=k,
        evaluations=1,
        info=info,
    )


def plain_step(problem: HyperProblem) -> float:
    """One ordinary training step (forward, backward, torch.optim update) on the first train batch.

    The baseline that warm-start costs are divided by. Runs on copies of the weights, so the
    caller's model is unchanged; returns the training loss.
    """
    model = problem.model
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    hp = _hyper_tensors(problem, problem.hyper, (), None)
    spec = problem.optimizer

    def const(value: str | float) -> float:
        return float(problem.hyper[value]) if isinstance(value, str) else float(value)

    if isinstance(spec, SGD):
        opt: torch.optim.Optimizer = torch.optim.SGD(
            list(params.values()), lr=const(spec.lr), momentum=const(spec.momentum),
            weight_decay=const(spec.weight_decay), nesterov=spec.nesterov,
        )
    else:
        opt = torch.optim.AdamW(
            list(params.values()), lr=const(spec.lr), betas=(const(spec.beta1), const(spec.beta2)),
            eps=spec.eps, weight_decay=const(spec.weight_decay),
        )
    with torch.enable_grad(), _modes(model, train=True), _seeded(problem.seed):
        loss = problem.train_loss(_forward(model, {**params, **buffers}), problem.train_batches[0], hp)
        loss.backward()
    opt.step()
    return float(loss.detach())


def finite_difference(
    objective: Callable[[Mapping[str, Any]], float],
    config: Mapping[str, Any],
    space: Any,
    names: Sequence[str] | None = None,
    h: float = 0.05,
) -> HyperGradient:
    """Central differences of ``objective`` in unit-cube coordinates; one-sided where z +- h leaves [0, 1].

    For learners without a gradient path (tree ensembles, dropout, RL): 2 evaluations per
    interior hyperparameter plus one at ``config`` (whose value is returned). The objective
    must fix its own seeds, or the differences measure noise.
    """
    if not 0 < h <= 0.5:
        raise ValueError(f"h must be in (0, 0.5], got {h}")
    names = list(space.movable()) if names is None else list(names)
    for n in names:
        if not space[n].movable:
            raise ValueError(f"hyperparameter {n!r} is not movable (integer or grad='none')")
    base = dict(config)
    f0 = float(objective(base))
    evaluations = 1

    def at(name: str, z: float) -> float:
        nonlocal evaluations
        evaluations += 1
        return float(objective({**base, name: space[name].from_unit(z)}))

    unit: dict[str, float] = {}
    sides: dict[str, str] = {}
    tol = 1e-12
    for n in names:
        z = space[n].to_unit(base[n])
        up, down = z + h <= 1 + tol, z - h >= -tol
        if up and down:
            unit[n] = (at(n, z + h) - at(n, z - h)) / (2 * h)
            sides[n] = "central"
        elif up:
            unit[n] = (at(n, z + h) - f0) / h
            sides[n] = "forward"
        else:
            unit[n] = (f0 - at(n, z - h)) / h
            sides[n] = "backward"
    psi = {n: g / space[n].psi_range for n, g in unit.items()}
    native = {n: g / space[n].dnative_dunit(base[n]) for n, g in unit.items()}
    return HyperGradient(
        native=native,
        psi=psi,
        unit=unit,
        value=f0,
        method="finite_difference",
        horizon=0,
        evaluations=evaluations,
        info={"h": h, "sides": sides},
    )
