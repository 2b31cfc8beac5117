"""k-step differentiable lookahead hyper-gradient, and finite differences (DESIGN.md section 4).

INTERFACE STUB: the data types below are the contract task adapters code against; the
functions are implemented by the hyper-gradient engine change (issue 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

Forward = Callable[..., torch.Tensor]
Mode = Literal["exact", "first-order", "mixed"]


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
    """

    model: torch.nn.Module
    train_batches: Sequence[Any]
    val_batch: Any
    train_loss: Callable[[Forward, Any, Mapping[str, torch.Tensor]], torch.Tensor]
    val_loss: Callable[[Forward, Any], torch.Tensor]
    optimizer: SGD | AdamW
    hyper: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)


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


def hypergradient(
    problem: HyperProblem,
    space: Any,
    names: Sequence[str] | None = None,
    horizon: int | None = None,
    mode: Mode = "exact",
) -> HyperGradient:
    raise NotImplementedError("implemented by the hyper-gradient engine (issue 3)")


def plain_step(problem: HyperProblem) -> float:
    raise NotImplementedError("implemented by the hyper-gradient engine (issue 3)")


def finite_difference(
    objective: Callable[[Mapping[str, Any]], float],
    config: Mapping[str, Any],
    space: Any,
    names: Sequence[str] | None = None,
    h: float = 0.05,
) -> HyperGradient:
    raise NotImplementedError("implemented by the hyper-gradient engine (issue 3)")
