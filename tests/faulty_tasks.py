"""Task adapters that fail on purpose, for the fault-injection tests (importable as module:Class)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ohgw_bench.tasks.digits import DigitsTask


class RaisingDigits(DigitsTask):
    """Raises during training for configs with lr above ``fail_above`` (chosen trials fail)."""

    def __init__(self, data_dir: Any = None, fail_above: float = 0.1, error: str = "runtime", **kw: Any):
        super().__init__(data_dir, **kw)
        self.fail_above = fail_above
        self.error = error

    def train(self, state: Any, fidelity: int) -> None:
        if state.config["lr"] > self.fail_above:
            if self.error == "oom":
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
            raise RuntimeError(f"injected failure for lr={state.config['lr']:.3g}")
        super().train(state, fidelity)


class NaNDigits(DigitsTask):
    """Reports a NaN validation error (a diverged run) for configs with lr above ``fail_above``."""

    def __init__(self, data_dir: Any = None, fail_above: float = 0.1, **kw: Any):
        super().__init__(data_dir, **kw)
        self.fail_above = fail_above

    def evaluate(self, state: Any) -> dict[str, float]:
        out = super().evaluate(state)
        if state.config["lr"] > self.fail_above:
            out[self.metric] = float("nan")
        return out


class NaNWarmStartDigits(DigitsTask):
    """Its hyper-problem's validation loss is NaN, so the hyper-gradient is NaN."""

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int, split_batch: bool = False) -> Any:
        problem = super().hyper_problem(config, seed, horizon, split_batch)
        clean = problem.val_loss
        problem.val_loss = lambda forward, batch: clean(forward, batch) * float("nan")
        return problem


class FloatLabelSmoothingDigits(DigitsTask):
    """Declares label smoothing grad='autograd' but passes it to the loss as a float: the graph is cut,
    so the hyper-gradient cannot reach it (``check_task`` must fail it)."""

    @staticmethod
    def train_loss(forward: Any, batch: tuple[torch.Tensor, ...], hp: Mapping[str, Any]) -> torch.Tensor:
        from ohgw_bench.tasks.common import smoothed_cross_entropy

        x, y, noise = batch
        return smoothed_cross_entropy(forward(x + hp["aug_magnitude"] * noise), y, float(torch.as_tensor(hp["label_smoothing"]).detach()))


class UnseededDropoutDigits(DigitsTask):
    """Adds noise from the global torch RNG to its evaluation: two runs with one seed differ."""

    def evaluate(self, state: Any) -> dict[str, float]:
        out = super().evaluate(state)
        return {k: v + 1e-3 * float(torch.rand(())) for k, v in out.items()}
