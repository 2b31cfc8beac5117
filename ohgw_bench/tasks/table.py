"""A table of learning curves in memory: the task scheduler checks run on (``table-curves-v1``).

Training a trial is a lookup: the validation error of a config after ``t`` epochs is a closed
form of the config, the epoch and the trial seed, so a study of hundreds of trials takes
seconds, and the same config, epoch and seed always give the same value (what
:func:`ohgw_bench.testing.check_scheduler` needs to compare arms and repeated runs).

Each curve decays from ``0.9`` towards a floor set by the config, at a rate set by ``x1``, with
a small deterministic wobble per (seed, epoch) so that rankings cross between rungs as in real
curves. The two continuous hyperparameters have a finite-difference hyper-gradient path: the
warm-start's objective is the value after one epoch, a smooth function of the config, so the
OHGW arm nudges configs exactly as it does for a tree learner, at no measurable cost. The
integer ``depth`` is not movable and makes the cost depend on the config.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ohgw_bench.options import Option
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity, Task


@dataclass
class TableState:
    """A trial of the table: its config, seed and how far it has been 'trained'."""

    config: dict[str, Any]
    seed: int
    fidelity: int = 0
    history: list[float] = field(default_factory=list)


class TableTask(Task):
    """Deterministic learning curves of three hyperparameters, one simulated second per epoch and depth."""

    description = "in-memory table of learning curves (closed form), for scheduler checks"
    metric = "val_error"
    mode = "min"
    test_metric = "test_error"
    tau = 0.12
    hypergrad_method = "finite_difference"
    default_budget = 300.0
    reference_flops_per_second = 1.0
    conformance_fidelities = (3, 9)
    option_declarations = (
        Option("max_epochs", int, 27, "largest fidelity (epochs)", low=1),
        Option("epoch_seconds", float, 1.0, "simulated seconds of one epoch at depth 1", low=1e-9),
        Option("noise", float, 0.01, "amplitude of the per-(seed, epoch) wobble of the curves", low=0.0, high=0.5),
    )

    def __init__(self, data_dir: Any = None, max_epochs: int = 27, epoch_seconds: float = 1.0,
                 noise: float = 0.01):
        super().__init__(data_dir, max_epochs=max_epochs, epoch_seconds=epoch_seconds, noise=noise)
        self.max_epochs = int(max_epochs)
        self.epoch_seconds = float(epoch_seconds)
        self.noise = float(noise)

    @property
    def space(self) -> SearchSpace:
        return SearchSpace([
            Hyperparameter("x0", 0.0, 1.0, 0.5, grad="finite_difference", prior=1.0),
            Hyperparameter("x1", 1e-3, 1.0, 0.1, log=True, grad="finite_difference"),
            Hyperparameter("depth", 1, 4, 2, integer=True),
        ])

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("epochs", 1, self.max_epochs, "epochs")

    def curve(self, config: Mapping[str, Any], epoch: int, seed: int) -> float:
        """Validation error of ``config`` after ``epoch`` epochs for trial seed ``seed``."""
        x0 = float(config["x0"])
        z1 = self.space["x1"].to_unit(float(config["x1"]))
        depth = int(config["depth"])
        floor = 0.05 + 0.5 * (x0 - 0.3) ** 2 + 0.3 * (z1 - 0.6) ** 2 + 0.01 * abs(depth - 3)
        rate = 0.05 + 0.4 * z1
        wobble = self.noise * math.sin(12.9898 * (seed % 10_007) + 78.233 * epoch) / math.sqrt(epoch)
        return floor + (0.9 - floor) * math.exp(-rate * epoch) + wobble

    def init_state(self, config: Mapping[str, Any], seed: int) -> TableState:
        return TableState(dict(config), int(seed))

    def train(self, state: TableState, fidelity: int) -> None:
        for epoch in range(state.fidelity + 1, int(fidelity) + 1):
            state.history.append(self.curve(state.config, epoch, state.seed))
        state.fidelity = int(fidelity)

    def evaluate(self, state: TableState) -> dict[str, float]:
        value = self.curve(state.config, max(1, state.fidelity), state.seed)
        return {self.metric: value, self.test_metric: value + 0.01}

    def save(self, state: TableState, path: Path) -> None:
        Path(path).write_text(json.dumps({"config": state.config, "seed": state.seed,
                                          "fidelity": state.fidelity, "history": state.history}))

    def load(self, path: Path) -> TableState:
        d = json.loads(Path(path).read_text())
        return TableState(d["config"], int(d["seed"]), int(d["fidelity"]), list(d["history"]))

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        return (stop - start) * self.epoch_seconds * (0.5 + 0.25 * int(config.get("depth", 2)))

    def hyper_objective(self, config: Mapping[str, Any], seed: int
                        ) -> tuple[Callable[[Mapping[str, Any]], float], float]:
        """(value after one epoch, a hundredth of an epoch's simulated seconds per call)."""
        return (lambda c: self.curve({**config, **c}, 1, seed)), 0.01 * self.epoch_seconds
