"""Seeded synthetic tabular problems with 5,000 validation rows, the UCI MLP, autograd warm-start.

Why these exist: the bundled UCI sets are too small to time a 1% change (breast_cancer's
validation split has 114 rows, so its tau admits one error). These tasks are generated
deterministically with numpy from ``split_seed`` (nothing is downloaded or stored, and no
scikit-learn import: its version cannot change the data, and a study skips its 1.5 s import), with 1,000 training, 5,000 validation and 2,000 test rows, so a 1% relative change of
the validation metric is many examples (classification) or a continuous quantity
(regression):

- ``synth-clf-mlp-v1``: scikit-learn's ``make_classification`` recipe with 20 features (10 informative, 4
  redundant), 4 classes of 2 clusters each and 5% flipped labels; metric ``val_error``
  (one example = 0.02% absolute, about 0.1% relative at tau).
- ``synth-reg-mlp-v1``: Friedman #1 (scikit-learn's ``make_friedman1``) with 10 features (5 used) and noise 1.0; metric
  ``val_rmse`` in the target's units (continuous; noise floor 1.0).

Model, training, search space, dropout, warm-start (autograd for lr / weight decay / momentum /
label smoothing, finite differences for dropout) and cost are exactly
:class:`~ohgw_bench.tasks.uci_mlp.UCIMLPTask`'s; only the data and the defaults differ. Fidelity
= epochs 1..27 (ASHA with eta 3 gets rungs 1, 3, 9, 27).

How tau and the default budget were chosen (docs/cpu-study.md has the numbers): vanilla ASHA
with 4 simulated workers over 20 seeds at the default budget; tau is set so that at least 80% of
seeds reach it, typically at 30-70% of the budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ohgw_bench.errors import UserError
from ohgw_bench.tasks.base import Task
from ohgw_bench.tasks.common import default_device
from ohgw_bench.tasks.uci_data import DatasetInfo, Kind, TabularData
from ohgw_bench.tasks.uci_mlp import UCIMLPTask

SIZES = {"train": 1000, "val": 5000, "test": 2000}
KINDS: dict[str, Kind] = {"clf": "classification", "reg": "regression"}
# Per-process caches: an experiment's pool worker runs hundreds of studies of the same task, and
# regenerating the data and re-counting FLOPs cost about 0.25 s a study (profiled, busy 2 cores).
_DATA: dict[tuple[str, int], TabularData] = {}
_FLOPS: dict[tuple[Any, ...], dict[str, float]] = {}


def _classification(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """4 classes of 2 Gaussian clusters on the corners of a 10-d hypercube (side 2), 4 redundant
    features (random linear mixes of the informative ones), 6 pure-noise features, 5% of labels
    redrawn at random: the recipe of scikit-learn's make_classification, written out in numpy so
    the data never depends on the installed scikit-learn version."""
    informative, redundant, noise, classes, clusters = 10, 4, 6, 4, 2
    corners = rng.choice([-1.0, 1.0], size=(classes * clusters, informative))
    mixes = rng.normal(size=(classes * clusters, informative, informative))
    cluster = rng.integers(0, classes * clusters, n)
    z = rng.normal(size=(n, informative))
    x_inf = np.einsum("ni,nij->nj", z, mixes[cluster]) + corners[cluster]
    x = np.concatenate([x_inf, x_inf @ rng.uniform(-1, 1, (informative, redundant)),
                        rng.normal(size=(n, noise))], axis=1)
    y = cluster % classes
    flip = rng.random(n) < 0.05
    y[flip] = rng.integers(0, classes, int(flip.sum()))
    return x, y.astype(np.int64)


def _friedman1(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Friedman #1: 10 uniform features, 5 used, y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4
    + N(0, 1) noise (so the best achievable RMSE is about 1.0)."""
    x = rng.random((n, 10))
    y = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]
         + rng.normal(size=n))
    return x, y


def make_synthetic(name: str, seed: int) -> TabularData:
    """The data set ``name`` (clf or reg) drawn from ``seed``: standardised features, fixed splits."""
    rng = np.random.default_rng([seed, 0 if name == "clf" else 1])
    n = sum(SIZES.values())
    x, y = _classification(rng, n) if name == "clf" else _friedman1(rng, n)
    classes: list[Any] = list(range(int(y.max()) + 1)) if name == "clf" else []
    cuts = np.cumsum([0, SIZES["train"], SIZES["val"], SIZES["test"]])
    parts = {s: slice(int(cuts[i]), int(cuts[i + 1])) for i, s in enumerate(SIZES)}
    mean, std = x[parts["train"]].mean(0), x[parts["train"]].std(0) + 1e-12
    xs = {s: ((x[p] - mean) / std).astype(np.float32) for s, p in parts.items()}
    ys = {s: y[p] for s, p in parts.items()}
    data = TabularData(f"synth-{name}", KINDS[name], xs, ys, [f"x{i}" for i in range(x.shape[1])], classes)
    if data.kind == "regression":
        data.y_mean = float(ys["train"].mean())
        data.y_std = float(ys["train"].std())
    return data


class SynthMLPTask(UCIMLPTask):
    """UCI's MLP (d-32-32-k by default, SGD with momentum, batch 32) on a seeded synthetic set; epochs 1..27."""

    model_name = "mlp"
    description = "seeded synthetic tabular set (numpy), MLP, autograd warm-start"
    # Measured thresholds and budgets (vanilla ASHA, 4 workers, 20 seeds; docs/cpu-study.md).
    TAU = {"clf": 0.32, "reg": 1.5}
    BUDGET = {"clf": 2.0, "reg": 2.0}

    def __init__(self, data_dir: Any = None, dataset: str = "clf", split_seed: int = 0, hidden: int = 32,
                 max_epochs: int = 27, fd_steps: int = 10):
        if dataset not in KINDS:
            raise UserError(f"synthetic data set must be one of {sorted(KINDS)}, got {dataset!r}")
        # UCITask.__init__ would look for a CSV; set its fields directly (same names, same meaning).
        Task.__init__(self, data_dir, dataset=dataset, split_seed=split_seed, hidden=hidden,
                      max_epochs=max_epochs, fd_steps=fd_steps)
        self.dataset = dataset
        self.split_seed = split_seed
        self.id = f"synth-{dataset}-mlp-v1"
        self.info = DatasetInfo(f"synth-{dataset}", KINDS[dataset])
        self.kind = KINDS[dataset]
        self.metric, self.test_metric = ("val_rmse", "test_rmse") if self.kind == "regression" else (
            "val_error", "test_error")
        self._data = None
        self.hidden = hidden
        self.max_epochs = max_epochs
        self.fd_steps = fd_steps
        self.device = default_device()
        self._tensors = None
        self._flops = _FLOPS.setdefault((dataset, split_seed, hidden, str(self.device)), {})

    def prepare(self) -> None:
        if self._data is None:
            key = (self.dataset, self.split_seed)
            if key not in _DATA:
                _DATA[key] = make_synthetic(self.dataset, self.split_seed)
            self._data = _DATA[key]

    @property  # type: ignore[override]
    def tau(self) -> float:
        return self.TAU[self.dataset]

    @property
    def default_budget(self) -> float:  # type: ignore[override]
        """Simulated seconds per worker, measured so vanilla ASHA reaches tau mid-budget."""
        return self.BUDGET[self.dataset]
