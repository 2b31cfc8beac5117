"""digits: UCI optdigits as bundled with scikit-learn, a small MLP trained with SGD.

The embedded default task: the data ships inside scikit-learn (1,797 8x8 images, 10 classes),
so it runs on a fresh machine with no download. Search space = the proposal's five
continuous hyperparameters. The two loss-side ones are written so that they carry a
gradient (docs/design.md section 4): label smoothing as (1 - eps) CE_y + eps mean_k(-log p_k)
with eps a tensor, and augmentation magnitude multiplying fixed Gaussian pixel-noise draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.hypergrad import SGD, HyperProblem
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity, Task
from ohgw_bench.tasks.common import (
    load_model_state,
    save_model_state,
    smoothed_cross_entropy,
    units_cost,
)
from ohgw_bench.tasks.label_noise import LABEL_NOISE, noisy_labels

# Per-process caches: an experiment's pool worker runs hundreds of studies of one task, and
# reloading the data and re-counting FLOPs cost about 0.3 s a study (profiled on a busy 2-core
# machine). The tensors are read-only; FLOPs depend on the class (its loss and evaluation) and width.
_DATA: dict[tuple[int, float], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
_FLOPS: dict[tuple[type, int], float] = {}

BATCH_SIZE = 64
VAL_BATCH = 128


def make_mlp(in_features: int, classes: int, hidden: int, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, classes))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                bound = (6.0 / (p.shape[0] + p.shape[1])) ** 0.5
                p.uniform_(-bound, bound, generator=g)
            else:
                p.zero_()
    return model


@dataclass
class DigitsState:
    config: dict[str, Any]
    seed: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    fidelity: int = 0


class DigitsTask(Task):
    """Optdigits, MLP 64-128-128-10, SGD with momentum; fidelity = epochs (1..27)."""

    id = "digits-mlp-v1"
    description = "UCI optdigits (scikit-learn bundled), MLP, SGD"
    metric = "val_error"
    mode = "min"
    test_metric = "test_error"
    tau = 0.015
    worst_metric = 1.0
    hypergrad_method = "autograd"
    default_horizon = 1
    default_budget = 30.0
    reference_flops_per_second = 1e9

    option_declarations = (LABEL_NOISE,)

    def __init__(self, data_dir: Any = None, hidden: int = 128, split_seed: int = 0, max_epochs: int = 27,
                 label_noise: float = 0.0):
        super().__init__(data_dir, hidden=hidden, split_seed=split_seed, max_epochs=max_epochs,
                         label_noise=label_noise)
        self.label_noise = float(label_noise)
        self.hidden = hidden
        self.split_seed = split_seed
        self.max_epochs = max_epochs
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._epoch_flops: float | None = None

    @property
    def space(self) -> SearchSpace:
        return SearchSpace([
            Hyperparameter("lr", 1e-3, 1.0, 0.05, log=True, prior=1.0),
            Hyperparameter("weight_decay", 1e-6, 1e-2, 1e-4, log=True),
            Hyperparameter("momentum", 0.0, 0.99, 0.9),
            Hyperparameter("aug_magnitude", 0.0, 1.0, 0.1),
            Hyperparameter("label_smoothing", 0.0, 0.3, 0.0),
        ])

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("epochs", 1, self.max_epochs, "epochs")

    def prepare(self) -> None:
        if self._data is not None:
            return
        key = (self.split_seed, float(self.label_noise))
        if key not in _DATA:
            _DATA[key] = self._load()
        self._data = _DATA[key]

    def _load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        order = np.random.default_rng(self.split_seed).permutation(len(x))
        cut = {"train": order[:1000], "val": order[1000:1397], "test": order[1397:]}
        mean = x[cut["train"]].mean(0)
        std = x[cut["train"]].std(0) + 1e-3
        data = {k: (torch.from_numpy((x[idx] - mean) / std), torch.from_numpy(y[idx]).long())
                for k, idx in cut.items()}
        x_train, y_train = data["train"]
        data["train"] = (x_train, noisy_labels(y_train, 10, self.label_noise, self.split_seed))
        return data

    @property
    def data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.prepare()
        assert self._data is not None
        return self._data

    def _model(self, seed: int) -> nn.Module:
        return make_mlp(64, 10, self.hidden, seed)

    def init_state(self, config: Mapping[str, Any], seed: int) -> DigitsState:
        config = dict(config)
        model = self._model(seed)
        opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                              weight_decay=config["weight_decay"])
        return DigitsState(config, seed, model, opt, torch.Generator().manual_seed(seed + 1))

    def _epoch_batches(self, gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        x, y = self.data["train"]
        order = torch.randperm(len(x), generator=gen)
        batches = []
        for i in range(0, len(x), BATCH_SIZE):
            idx = order[i:i + BATCH_SIZE]
            noise = torch.randn(len(idx), x.shape[1], generator=gen)
            batches.append((x[idx], y[idx], noise))
        return batches

    @staticmethod
    def train_loss(forward: Any, batch: tuple[torch.Tensor, ...], hp: Mapping[str, Any]) -> torch.Tensor:
        x, y, noise = batch
        return smoothed_cross_entropy(forward(x + hp["aug_magnitude"] * noise), y, hp["label_smoothing"])

    @staticmethod
    def val_loss(forward: Any, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, y = batch[0], batch[1]
        return F.cross_entropy(forward(x), y)

    def train(self, state: DigitsState, fidelity: int) -> None:
        cfg = state.config
        state.model.train()
        while state.fidelity < fidelity:
            for batch in self._epoch_batches(state.generator):
                state.optimizer.zero_grad(set_to_none=True)
                loss = self.train_loss(state.model, batch, cfg)
                loss.backward()
                state.optimizer.step()
            state.fidelity += 1

    def evaluate(self, state: DigitsState) -> dict[str, float]:
        state.model.eval()
        out = {}
        with torch.no_grad():
            for split, key in (("val", self.metric), ("test", self.test_metric)):
                x, y = self.data[split]
                logits = state.model(x)
                out[key] = float((logits.argmax(1) != y).float().mean())
                if split == "val":
                    out["val_loss"] = float(F.cross_entropy(logits, y))
        return out

    def save(self, state: DigitsState, path: Path) -> None:
        save_model_state(state, path)

    def load(self, path: Path) -> DigitsState:
        return load_model_state(self, path)

    def epoch_flops(self) -> float:
        """FLOPs of one epoch plus one evaluation, counted once per process for this class and width
        (they do not depend on the config)."""
        key = (type(self), self.hidden)
        if key in _FLOPS:
            self._epoch_flops = _FLOPS[key]
        if self._epoch_flops is None:
            from ohgw_bench.cost import count_flops

            state = self.init_state(self.space.default_config(), 0)
            batches = self._epoch_batches(torch.Generator().manual_seed(0))
            x, y, noise = batches[0]

            def one_step() -> None:
                loss = self.train_loss(state.model, (x, y, noise), state.config)
                loss.backward()

            step = count_flops(one_step)
            evaluation = count_flops(lambda: self.evaluate(state))
            self._epoch_flops = _FLOPS[key] = step * len(self.data["train"][0]) / len(x) + evaluation
        return self._epoch_flops

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        return units_cost(start, stop, self.epoch_flops(), self.reference_flops_per_second)

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int,
                      split_batch: bool = False) -> HyperProblem:
        """The trial's own w0 and first batches; V is a fixed batch of the validation split."""
        batches = self._epoch_batches(torch.Generator().manual_seed(seed + 1))
        if split_batch:
            x, y, noise = batches[0]
            half = len(x) // 2
            train = [(x[:half], y[:half], noise[:half])]
            val: tuple[torch.Tensor, ...] = (x[half:], y[half:])
        else:
            train = batches[:horizon]
            vx, vy = self.data["val"]
            val = (vx[:VAL_BATCH], vy[:VAL_BATCH])
        names = ("lr", "weight_decay", "momentum", "aug_magnitude", "label_smoothing")
        return HyperProblem(
            model=self._model(seed),
            train_batches=train,
            val_batch=val,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            optimizer=SGD(lr="lr", momentum="momentum", weight_decay="weight_decay"),
            hyper={n: float(config[n]) for n in names},
        )
