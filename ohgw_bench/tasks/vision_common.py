"""Pieces shared by the vision adapters (CIFAR, ImageNet): batch augmentation on the device.

Augmentation runs on the tensor batch, not in a data loader, for two reasons (DESIGN.md
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

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ohgw_bench.tasks.digits import smoothed_cross_entropy

__all__ = ["AugDraws", "batch_seed", "draw_augmentation", "crop_flip", "photometric",
           "augmented_loss", "plain_loss", "math_attention", "default_device", "smoothed_cross_entropy"]

CONTRAST_STD = 0.2
COLOUR_STD = 0.2
NOISE_STD = 0.1

AugDraws = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
