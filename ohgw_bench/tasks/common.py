"""Code that several task adapters share, kept once so that a fix reaches all of them.

- :func:`smoothed_cross_entropy`: label smoothing written so that it carries a hyper-gradient
  (``F.cross_entropy(label_smoothing=eps)`` takes a float and gives none; see
  ``docs/adding-a-task.md``).
- :func:`default_device`: where an adapter trains when the user does not say.
- :func:`save_model_state` / :func:`load_model_state`: checkpoints of the common
  (config, seed, fidelity, model, optimizer, generator) state.
- :func:`units_cost`: the simulated seconds of ``stop - start`` fidelity units, the deterministic
  cost model of ``docs/design.md`` (counted FLOPs over a reference throughput).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

__all__ = ["smoothed_cross_entropy", "default_device", "save_model_state", "load_model_state", "units_cost"]


def smoothed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, eps: torch.Tensor | float) -> torch.Tensor:
    """(1 - eps) * CE + eps * mean_k(-log p_k): differentiable in eps when eps is a tensor."""
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    uniform = -logp.mean(dim=-1)
    return ((1 - eps) * nll + eps * uniform).mean()


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _ModelState(Protocol):
    config: dict[str, Any]
    seed: int
    fidelity: int
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator


def save_model_state(state: _ModelState, path: Path) -> None:
    """Write weights, optimiser and the trial's generator: enough to resume bit-identically."""
    torch.save({"config": state.config, "seed": state.seed, "fidelity": state.fidelity,
                "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
                "generator": state.generator.get_state()}, path)


def load_model_state(task: Any, path: Path, map_location: torch.device | str = "cpu") -> Any:
    """Rebuild a state written by :func:`save_model_state` through ``task.init_state``.

    The generator is a CPU generator whatever ``map_location`` says, so its state goes back on the CPU.
    """
    blob = torch.load(path, weights_only=False, map_location=map_location)
    state = task.init_state(blob["config"], blob["seed"])
    state.model.load_state_dict(blob["model"])
    state.optimizer.load_state_dict(blob["optimizer"])
    state.generator.set_state(blob["generator"].cpu())
    state.fidelity = blob["fidelity"]
    return state


def units_cost(start: int, stop: int, flops_per_unit: float, flops_per_second: float) -> float:
    """Simulated seconds of training from fidelity ``start`` to ``stop`` (zero when stop <= start)."""
    return max(0, stop - start) * flops_per_unit / flops_per_second
