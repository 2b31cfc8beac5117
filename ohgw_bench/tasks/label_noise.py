"""Label noise for the classification tasks: one option, one helper, declared once.

The robustness plan asks whether OHGW still helps when training labels are wrong. The option
``label_noise`` (a fraction p in [0, 1]) makes exactly ``round(p * n)`` of the *training*
labels wrong: each chosen label is replaced by a different class drawn uniformly ("symmetric"
noise, the usual setting in the noisy-label literature). Validation and test labels stay
clean, so the metric still measures the true task. Which labels flip and to what depends only
on the task's data seed (``split_seed``), so every trial, arm and worker sees the same noisy set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ohgw_bench.errors import UserError
from ohgw_bench.options import Option

LABEL_NOISE = Option(
    "label_noise", float, 0.0,
    "fraction of training labels replaced by a different, uniformly drawn class (validation and test stay clean)",
    low=0.0, high=1.0)


def noisy_labels(labels: Any, num_classes: int, fraction: float, seed: int) -> Any:
    """A copy of integer ``labels`` (numpy array, torch tensor or list) with ``fraction`` of them wrong.

    Deterministic in ``seed``; ``fraction == 0`` returns the labels unchanged (same object).
    """
    if not 0.0 <= fraction <= 1.0:
        raise UserError(f"label_noise must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return labels
    if num_classes < 2:
        raise UserError(f"label_noise needs at least 2 classes, got {num_classes}")
    y = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(np.int64).copy()
    rng = np.random.default_rng([int(seed), 0x4C4E])
    chosen = rng.permutation(len(y))[: int(round(fraction * len(y)))]
    y[chosen] = (y[chosen] + rng.integers(1, num_classes, size=len(chosen))) % num_classes
    if hasattr(labels, "cpu"):
        import torch

        return torch.from_numpy(y).to(device=labels.device, dtype=labels.dtype)
    if isinstance(labels, list):
        return y.tolist()
    return y.astype(np.asarray(labels).dtype)
