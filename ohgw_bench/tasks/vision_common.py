"""Pieces shared by the vision adapters (CIFAR, ImageNet): batch augmentation on the device,
and :class:`VisionTask`, the training loop, evaluation, checkpoints and warm-start problem both use.

Augmentation runs on the tensor batch, not in a data loader, for two reasons (docs/design.md
sections 3 and 4): on a GPU it keeps decoding/augmenting off the critical path, and its
magnitude must carry a pathwise gradient. So the random part is split in two:

- geometry (random crop with zero padding, horizontal flip) does not depend on any
  hyperparameter: it is applied once when a batch is built, in a single gather;
- the photometric/noise term is ``x * (1 + m * contrast) + m * (colour + noise)`` with fixed
  draws, so ``d x' / d m`` exists and the magnitude ``m`` is a hyperparameter like any other.

Every draw comes from a generator seeded by ``(trial seed, epoch, batch)``: a batch can be rebuilt
anywhere (a resumed trial, the warm-start's lookahead) without carrying generator state.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.hypergrad import HyperProblem
from ohgw_bench.tasks.base import Task
from ohgw_bench.tasks.common import smoothed_cross_entropy

__all__ = ["AugDraws", "batch_seed", "draw_augmentation", "crop_flip", "photometric",
           "augmented_loss", "plain_loss", "math_attention",
           "HYPER_NAMES", "VisionState", "VisionTask", "sgd_optimizer", "image_flops", "halve_first_batch"]

CONTRAST_STD = 0.2
COLOUR_STD = 0.2
NOISE_STD = 0.1

AugDraws = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def batch_seed(seed: int, epoch: int, batch: int, stream: int = 0) -> int:
    """A well-mixed 63-bit seed for one batch of one epoch of one trial."""
    return int(np.random.SeedSequence([seed, epoch, batch, stream]).generate_state(2, dtype=np.uint64)[0] >> 1)


def draw_augmentation(n: int, channels: int, size: int, pad: int, seed: int,
                      dev: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, AugDraws]:
    """Crop offsets (n, 2), flip bits (n,), and the photometric draws (contrast, colour, noise).

    Geometry comes from a CPU generator (tiny); the pixel noise is drawn on ``dev`` so a GPU
    never waits on a host-side tensor the size of the batch.
    """
    g = torch.Generator().manual_seed(seed)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=g)
    flips = torch.randint(0, 2, (n,), generator=g).bool()
    contrast = torch.randn(n, 1, 1, 1, generator=g) * CONTRAST_STD
    colour = torch.randn(n, channels, 1, 1, generator=g) * COLOUR_STD
    gd = torch.Generator(device=dev).manual_seed(seed ^ 0x5DEECE66D)
    noise = torch.randn(n, channels, size, size, generator=gd, device=dev) * NOISE_STD
    return offsets.to(dev), flips.to(dev), (contrast.to(dev), colour.to(dev), noise)


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int) -> torch.Tensor:
    """Random crop of a zero-padded batch plus horizontal flip, as one advanced-indexing gather."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = offsets[:, 0:1] + ar_h
    cols = torch.where(flips[:, None], offsets[:, 1:2] + (w - 1 - ar_w), offsets[:, 1:2] + ar_w)
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(c, device=x.device)[None, :, None, None]
    return xp[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


def photometric(x: torch.Tensor, draws: AugDraws, magnitude: torch.Tensor | float) -> torch.Tensor:
    """x * (1 + m * contrast) + m * (colour + noise): linear in m, so d/dm is exact and cheap."""
    contrast, colour, noise = draws
    return x * (1 + magnitude * contrast) + magnitude * (colour + noise)


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """Losses of autocast (bfloat16) logits in float32; float64 stays float64 (gradient checks)."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def augmented_loss(forward: Any, batch: tuple[torch.Tensor, ...], hp: Mapping[str, Any]) -> torch.Tensor:
    """Training loss of a prepared batch ``(x_cropped, y, contrast, colour, noise)``."""
    x, y, contrast, colour, noise = batch
    xa = photometric(x, (contrast, colour, noise), hp["aug_magnitude"])
    return smoothed_cross_entropy(_at_least_float32(forward(xa)), y, hp["label_smoothing"])


def plain_loss(forward: Any, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Validation loss: no smoothing, no augmentation."""
    return F.cross_entropy(_at_least_float32(forward(batch[0])), batch[1])


def _under_math_attention(fn: Any, *args: Any) -> torch.Tensor:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return fn(*args)


def math_attention(fn: Any) -> Any:
    """``fn`` with attention computed by the plain-ops kernel, whose graph has a double backward.

    The fused attention kernels (flash, memory-efficient, and the CPU flash kernel) have no
    derivative of their backward, which the exact hyper-gradient of loss-side hyperparameters needs.
    """
    return partial(_under_math_attention, fn)


# the adapters' common frame

HYPER_NAMES = ("lr", "weight_decay", "momentum", "aug_magnitude", "label_smoothing")
"""The five hyperparameters of every vision space, in the order the warm-start receives them."""

Batch = tuple[torch.Tensor, ...]


@dataclass
class VisionState:
    """A vision trial: weights and optimiser; batches are rebuilt from (seed, epoch, batch)."""

    config: dict[str, Any]
    seed: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    fidelity: int = 0


def sgd_optimizer(model: nn.Module, config: Mapping[str, Any], nesterov: bool) -> torch.optim.SGD:
    """SGD from the trial's lr/momentum/weight_decay; Nesterov only where momentum > 0."""
    momentum = float(config["momentum"])
    return torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=momentum,
                           weight_decay=config["weight_decay"], nesterov=nesterov and momentum > 0)


def image_flops(model: nn.Module, image_size: int, hp: Mapping[str, Any]) -> tuple[float, float]:
    """(one training step, one inference) FLOPs per image of ``model``, counted on the CPU.

    Convolution and matmul FLOPs are linear in the batch size, so a 2-image batch (BatchNorm
    needs two in train mode) is counted and halved; the count is the same on any device.
    """
    from ohgw_bench.cost import count_flops

    s = image_size
    x = torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(0))
    batch = (x, torch.zeros(2, dtype=torch.long), torch.zeros(2, 1, 1, 1), torch.zeros(2, 3, 1, 1),
             torch.zeros(2, 3, s, s))
    model.train()
    step = count_flops(lambda: augmented_loss(model, batch, hp).backward()) / 2
    model.eval()
    with torch.no_grad():
        infer = count_flops(lambda: model(x)) / 2
    return step, infer


def halve_first_batch(batches: list[Batch]) -> tuple[list[Batch], int]:
    """The split-batch lookahead's train batches (the first half of the first batch) and ``half``."""
    first = batches[0]
    half = max(1, len(first[0]) // 2)
    return [tuple(t[:half] for t in first)], half


class VisionTask(Task):
    """What the CIFAR and ImageNet adapters share: one trial trains with :func:`augmented_loss` on
    prepared device batches, under a cosine learning rate over the whole fidelity range, and is
    measured by top-1 error on ``val`` and ``test``.

    A subclass supplies ``init_state``, ``_model(seed)``, the training batches of one fidelity unit
    (``_unit_batches``) and the normalised evaluation batches of a split (``_eval_batches``); it may
    change the precision (``_autocast``) and memory layout (``_forward``) of the forward pass.
    """

    device: torch.device

    def _unit_batches(self, seed: int, unit: int) -> Iterator[Batch]:
        """(x cropped and flipped, y, contrast, colour, noise) batches of fidelity unit ``unit``."""
        raise NotImplementedError

    def _eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised (x, y) batches of ``split`` on the device."""
        raise NotImplementedError

    def _model(self, seed: int) -> nn.Module:
        raise NotImplementedError

    def _autocast(self) -> Any:
        return contextlib.nullcontext()

    def _forward(self, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return model

    def _lr(self, base: float, unit: int) -> float:
        return base * 0.5 * (1 + math.cos(math.pi * unit / self.fidelity.max))

    def train(self, state: VisionState, fidelity: int) -> None:
        state.model.train()
        forward = self._forward(state.model)
        while state.fidelity < fidelity:
            for group in state.optimizer.param_groups:
                group["lr"] = self._lr(state.config["lr"], state.fidelity)
            for batch in self._unit_batches(state.seed, state.fidelity):
                state.optimizer.zero_grad(set_to_none=True)
                with self._autocast():
                    loss = augmented_loss(forward, batch, state.config)
                loss.backward()
                state.optimizer.step()
            state.fidelity += 1

    @torch.no_grad()
    def _errors(self, model: nn.Module, split: str) -> tuple[float, float]:
        """(top-1 error, mean cross-entropy) of ``model`` on ``split``."""
        forward = self._forward(model)
        wrong, loss, n = 0.0, 0.0, 0
        for x, y in self._eval_batches(split):
            with self._autocast():
                logits = forward(x).float()
            wrong += float((logits.argmax(1) != y).sum())
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
        return wrong / n, loss / n

    def evaluate(self, state: VisionState) -> dict[str, float]:
        state.model.eval()
        val_error, val_loss = self._errors(state.model, "val")
        test_error, _ = self._errors(state.model, "test")
        state.model.train()
        return {self.metric: val_error, self.test_metric: test_error, "val_loss": val_loss}

    def save(self, state: VisionState, path: Path) -> None:
        torch.save({"config": state.config, "seed": state.seed, "fidelity": state.fidelity,
                    "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict()}, path)

    def load(self, path: Path) -> Any:
        """Batches are rebuilt from (seed, epoch, batch), so weights + optimiser are the whole state."""
        blob = torch.load(path, map_location=self.device, weights_only=False)
        state = self.init_state(blob["config"], blob["seed"])
        state.model.load_state_dict(blob["model"])
        state.optimizer.load_state_dict(blob["optimizer"])
        state.fidelity = blob["fidelity"]
        return state

    def _problem(self, config: Mapping[str, Any], seed: int, train: list[Batch], val: Batch,
                 optimizer: Any, train_loss: Any = augmented_loss, val_loss: Any = plain_loss) -> HyperProblem:
        """The warm-start problem from the trial's own w0 (``_model(seed)``) and its batches."""
        return HyperProblem(
            model=self._model(seed),
            train_batches=train,
            val_batch=val,
            train_loss=train_loss,
            val_loss=val_loss,
            optimizer=optimizer,
            hyper={n: float(config[n]) for n in HYPER_NAMES},
        )
