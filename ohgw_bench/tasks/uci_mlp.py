"""UCI tabular sets with a two-hidden-layer MLP trained by SGD with momentum (autograd warm-start).

Search space: log-lr, log-weight decay and momentum (the optimiser's, differentiable through
the lookahead), dropout (no pathwise derivative: ``grad="finite_difference"``; the autograd
warm-start leaves it unchanged and records it under ``left_unchanged``; only the fallback to
finite differences through :meth:`UCIMLPTask.hyper_objective`, fixed seeds, moves it), and, for classification, label smoothing
written out as (1 - eps) CE + eps mean_k(-log p_k) so that it carries a gradient. Fidelity =
epochs. Dropout masks come from uniform draws of the trial's own generator compared with the
rate, so a trial is reproducible, pauses and resumes bit-identically, and a finite difference
in the rate sees the same draws on both sides.

Regression trains on the standardised target (MSE) and reports RMSE in the target's units.

Costs: FLOPs of one training step (counted once) times the steps of an epoch, plus one
evaluation, over ``reference_flops_per_second`` = 1e9, which is about what these small,
overhead-bound steps reach on one CPU thread (0.7-0.8 ms a step), so simulated seconds track
measured ones within a factor of about two. The default budget is four full-fidelity trainings
of the default config per worker: with the CLI's four simulated workers, 90 to 110 ASHA trials
on breast_cancer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.hypergrad import SGD, HyperProblem
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity
from ohgw_bench.tasks.common import (
    default_device,
    load_model_state,
    save_model_state,
    smoothed_cross_entropy,
    units_cost,
)
from ohgw_bench.tasks.uci_data import UCITask

BATCH_SIZE = 32
VAL_BATCH = 128


class DropoutMLP(nn.Module):
    """in -> hidden -> hidden -> out with ReLU; dropout from caller-supplied uniform draws."""

    def __init__(self, d_in: int, d_out: int, hidden: int, seed: int):
        super().__init__()
        self.l1 = nn.Linear(d_in, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.l3 = nn.Linear(hidden, d_out)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in (self.l1, self.l2, self.l3):
                bound = (6.0 / (layer.in_features + layer.out_features)) ** 0.5
                layer.weight.uniform_(-bound, bound, generator=g)
                layer.bias.zero_()

    def forward(self, x: torch.Tensor, u1: torch.Tensor | None = None, u2: torch.Tensor | None = None,
                rate: float = 0.0) -> torch.Tensor:
        h = F.relu(self.l1(x))
        if u1 is not None and rate > 0:
            h = h * (u1 >= rate) / (1.0 - rate)
        h = F.relu(self.l2(h))
        if u2 is not None and rate > 0:
            h = h * (u2 >= rate) / (1.0 - rate)
        return self.l3(h)


@dataclass
class MLPState:
    config: dict[str, Any]
    seed: int
    model: DropoutMLP
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    fidelity: int = 0


class UCIMLPTask(UCITask):
    """MLP d-64-64-k on a UCI set, SGD with momentum, batch 32; fidelity = epochs (1..81)."""

    model_name = "mlp"
    description = "UCI tabular set, MLP, SGD with momentum, autograd warm-start"
    hypergrad_method = "autograd"
    default_horizon = 1
    reference_flops_per_second = 1e9
    conformance_fidelities = (1, 2)
    BUDGET_IN_FULL_TRAININGS = 4.0
    # Reached by every vanilla ASHA run measured (one simulated worker, eta 3, ten full trainings
    # of budget; 5 seeds, digits 3); median time to reach: 50%, 12%, 23%, 29%, 22% of the budget.
    TAU = {"breast_cancer": 0.009, "wine": 0.0, "iris": 0.07, "digits": 0.025, "diabetes": 52.7}

    def __init__(self, data_dir: Any = None, dataset: str = "breast_cancer", split_seed: int = 0,
                 hidden: int = 64, max_epochs: int = 81, fd_steps: int = 10, label_noise: float = 0.0):
        super().__init__(data_dir, dataset=dataset, split_seed=split_seed, hidden=hidden,
                         max_epochs=max_epochs, fd_steps=fd_steps, label_noise=label_noise)
        self.hidden = hidden
        self.max_epochs = max_epochs
        self.fd_steps = fd_steps
        self.device = default_device()
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._flops: dict[str, float] = {}

    @property
    def space(self) -> SearchSpace:
        params = [
            Hyperparameter("lr", 1e-3, 1.0, 0.05, log=True, prior=1.0),
            Hyperparameter("weight_decay", 1e-6, 1e-2, 1e-4, log=True),
            Hyperparameter("momentum", 0.0, 0.99, 0.9),
            Hyperparameter("dropout", 0.0, 0.5, 0.1, grad="finite_difference"),
        ]
        if self.kind == "classification":
            params.append(Hyperparameter("label_smoothing", 0.0, 0.3, 0.0))
        return SearchSpace(params)

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("epochs", 1, self.max_epochs, "epochs")

    @property
    def default_budget(self) -> float:  # type: ignore[override]
        """Four full-fidelity trainings of the default config (per simulated worker)."""
        return self.BUDGET_IN_FULL_TRAININGS * self.cost(self.space.default_config(), 0, self.max_epochs)

    @property
    def tensors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per split (features, targets) on the device; regression targets standardised."""
        if self._tensors is None:
            d = self.data
            out = {}
            for split in ("train", "val", "test"):
                x = torch.from_numpy(d.x[split]).to(self.device)
                if self.kind == "classification":
                    y = torch.from_numpy(d.y[split]).long()
                else:
                    y = torch.from_numpy(((d.y[split] - d.y_mean) / d.y_std).astype(np.float32))
                out[split] = (x, y.to(self.device))
            self._tensors = out
        return self._tensors

    @property
    def n_out(self) -> int:
        return self.data.n_classes if self.kind == "classification" else 1

    def _model(self, seed: int) -> DropoutMLP:
        return DropoutMLP(self.data.n_features, self.n_out, self.hidden, seed).to(self.device)

    def init_state(self, config: Mapping[str, Any], seed: int) -> MLPState:
        config = dict(config)
        model = self._model(seed)
        opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                              weight_decay=config["weight_decay"])
        return MLPState(config, seed, model, opt, torch.Generator().manual_seed(seed + 1))

    def _epoch_batches(self, gen: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
        """Shuffled batches with their dropout draws, all taken from ``gen`` (the trial's data order)."""
        x, y = self.tensors["train"]
        order = torch.randperm(len(x), generator=gen)
        batches = []
        for i in range(0, len(x), BATCH_SIZE):
            idx = order[i:i + BATCH_SIZE]
            u1 = torch.rand(len(idx), self.hidden, generator=gen).to(self.device)
            u2 = torch.rand(len(idx), self.hidden, generator=gen).to(self.device)
            idx = idx.to(self.device)
            batches.append((x[idx], y[idx], u1, u2))
        return batches

    def _loss(self, out: torch.Tensor, y: torch.Tensor, smoothing: torch.Tensor | float) -> torch.Tensor:
        if self.kind == "classification":
            return smoothed_cross_entropy(out, y, smoothing)
        return F.mse_loss(out.squeeze(-1), y)

    def train_loss(self, forward: Callable[..., torch.Tensor], batch: tuple[torch.Tensor, ...],
                   hp: Mapping[str, Any]) -> torch.Tensor:
        """Training loss; the dropout rate is read as a plain number (it has no pathwise derivative)."""
        x, y, u1, u2 = batch
        rate = float(torch.as_tensor(hp["dropout"]).detach())
        return self._loss(forward(x, u1, u2, rate), y, hp.get("label_smoothing", 0.0))

    def val_loss(self, forward: Callable[..., torch.Tensor], batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Plain loss: cross-entropy, or MSE on the standardised target; no dropout, no smoothing."""
        return self._loss(forward(batch[0]), batch[1], 0.0)

    def _step(self, state: MLPState, batch: tuple[torch.Tensor, ...]) -> None:
        state.optimizer.zero_grad(set_to_none=True)
        self.train_loss(state.model, batch, state.config).backward()
        state.optimizer.step()

    def train(self, state: MLPState, fidelity: int) -> None:
        state.model.train()
        while state.fidelity < fidelity:
            for batch in self._epoch_batches(state.generator):
                self._step(state, batch)
            state.fidelity += 1

    def _predict(self, model: nn.Module, split: str) -> np.ndarray:
        with torch.no_grad():
            out = model(self.tensors[split][0])
        if self.kind == "classification":
            return out.argmax(1).cpu().numpy()
        return out.squeeze(-1).double().cpu().numpy() * self.data.y_std + self.data.y_mean

    def evaluate(self, state: MLPState) -> dict[str, float]:
        state.model.eval()
        metrics = {self.metric: self.scores(self._predict(state.model, "val"), "val"),
                   self.test_metric: self.scores(self._predict(state.model, "test"), "test")}
        with torch.no_grad():
            metrics["val_loss"] = float(self.val_loss(state.model, self.tensors["val"]))
        if not all(math.isfinite(v) for v in metrics.values()):
            nan = float("nan")
            metrics = dict.fromkeys(metrics, nan)
        return metrics

    def save(self, state: MLPState, path: Path) -> None:
        save_model_state(state, path)

    def load(self, path: Path) -> MLPState:
        return load_model_state(self, path, map_location=self.device)

    def _counted(self, key: str) -> float:
        """FLOPs of one training step on a full batch, or of one evaluation, counted once."""
        if key not in self._flops:
            from ohgw_bench.cost import count_flops

            state = self.init_state(self.space.default_config(), 0)
            if key == "step":
                x, y = self.tensors["train"]
                n = min(BATCH_SIZE, len(x))
                u = torch.ones(n, self.hidden, device=self.device)
                batch = (x[:n], y[:n], u, u)
                self._flops[key] = count_flops(lambda: self._step(state, batch)) * BATCH_SIZE / n
            else:
                self._flops[key] = count_flops(lambda: self.evaluate(state))
        return self._flops[key]

    def epoch_flops(self) -> float:
        """One epoch (steps scaled to the training rows) plus the evaluation after it."""
        return self._counted("step") * self.data.n("train") / BATCH_SIZE + self._counted("eval")

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        return units_cost(start, stop, self.epoch_flops(), self.reference_flops_per_second)

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int,
                      split_batch: bool = False) -> HyperProblem:
        """The trial's own w0 and first batches; V is a fixed slice of the validation split."""
        gen = torch.Generator().manual_seed(seed + 1)
        batches = self._epoch_batches(gen)
        while len(batches) < horizon:
            batches += self._epoch_batches(gen)
        if split_batch:
            x, y, u1, u2 = batches[0]
            half = len(x) // 2
            train = [(x[:half], y[:half], u1[:half], u2[:half])]
            val: tuple[torch.Tensor, ...] = (x[half:], y[half:])
        else:
            train = batches[:horizon]
            vx, vy = self.tensors["val"]
            val = (vx[:VAL_BATCH], vy[:VAL_BATCH])
        return HyperProblem(
            model=self._model(seed),
            train_batches=train,
            val_batch=val,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            optimizer=SGD(lr="lr", momentum="momentum", weight_decay="weight_decay"),
            hyper={n: float(config[n]) for n in self.space.names},
        )

    def hyper_objective(self, config: Mapping[str, Any], seed: int
                        ) -> tuple[Callable[[Mapping[str, Any]], float], float]:
        """Validation loss after ``fd_steps`` SGD steps on the trial's first batches (fixed seed).

        The finite-difference path for dropout: both sides of a difference see the same w0,
        batches and dropout draws. Returns the objective and its simulated seconds per call.
        """
        gen = torch.Generator().manual_seed(seed + 1)
        batches: list[tuple[torch.Tensor, ...]] = []
        while len(batches) < self.fd_steps:
            batches += self._epoch_batches(gen)
        batches = batches[:self.fd_steps]
        val = self.tensors["val"]

        def objective(cfg: Mapping[str, Any]) -> float:
            state = self.init_state({**config, **cfg}, seed)
            state.model.train()
            for batch in batches:
                self._step(state, batch)
            state.model.eval()
            with torch.no_grad():
                return float(self.val_loss(state.model, val))

        seconds = (self.fd_steps * self._counted("step") + self._counted("eval")) / self.reference_flops_per_second
        return objective, seconds
