"""UCI tabular sets with XGBoost (finite-difference warm-start); fidelity = boosting rounds.

Search space: log-eta, log-reg_lambda, log-reg_alpha, subsample, log-min_child_weight (moved by
central differences of the validation loss after ``fd_rounds`` rounds, docs/design.md section 4)
and max_depth (an integer, never moved). One thread per worker (``nthread=1``), ``hist`` trees.

Row subsampling is ours, not XGBoost's: before round r the training rows get weight 1 where a
uniform draw from ``numpy.random.default_rng([seed, r])`` is below ``subsample`` and 0 elsewhere
(a zero weight zeroes a row's gradient and hessian, which is what XGBoost's own sampling does).
XGBoost 3.2's ``hist`` sampler keeps its random state inside the booster object and restarts it
when a booster is rebuilt from a saved model, so with its own ``subsample`` a resumed trial
diverges from an uninterrupted one even with ``seed_per_iteration``; with per-round masks the
continuation is bit-identical, and a finite difference in ``subsample`` sees the same draws on
both sides. The training matrix is a ``QuantileDMatrix`` so that its histogram cuts are fixed
at construction, before any weights exist.

The simulated cost counts work, never time: a fixed setup when a booster starts from scratch
(building it, its prediction cache and the base score), a fixed per-round overhead (gradients,
prediction cache, the call itself) and, per tree, rows x features x (1 + depth / 2) histogram
updates, over ``reference_flops_per_second``. The constants come from single-thread timings of
the bundled sets (about 0.8 ms to start a booster; 0.2 ms per round for iris, wine and
breast_cancer; 2 ms for digits' ten trees). Trees that stop splitting early (pure classes)
make the model pessimistic at large depths.

The default budget is ten full-fidelity trainings of the default config per worker: with the
CLI's four simulated workers, 135 to 165 ASHA trials on breast_cancer (about 20 to 220 with one
worker across the bundled sets, where ties in the coarse validation error promote many trials).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity
from ohgw_bench.tasks.uci_data import UCITask

WORK_PER_ROUND = 1.5e5
WORK_PER_BOOSTER = 8e5
WORK_PER_ROW_FEATURE = 1.0
PROB_EPS = 1e-7


@dataclass
class XGBState:
    config: dict[str, Any]
    seed: int
    booster: xgb.Booster
    fidelity: int = 0


class UCIXGBTask(UCITask):
    """Gradient-boosted trees on a UCI set; fidelity = boosting rounds (1..81, eta 3 rungs 1, 3, 9, 27, 81)."""

    model_name = "xgb"
    description = "UCI tabular set, XGBoost (hist, one thread), finite-difference warm-start"
    hypergrad_method = "finite_difference"
    default_horizon = 1
    reference_flops_per_second = 1e9
    conformance_fidelities = (2, 5)
    BUDGET_IN_FULL_TRAININGS = 10.0
    # Reached by >= 9 of 10 vanilla ASHA runs (one simulated worker, eta 3) within the default
    # budget; median time to reach: 29%, 10%, 60%, 64% and 44% of the budget respectively.
    TAU = {"breast_cancer": 0.027, "wine": 0.0, "iris": 0.07, "digits": 0.06, "diabetes": 55.5}

    def __init__(self, data_dir: Any = None, dataset: str = "breast_cancer", split_seed: int = 0,
                 max_rounds: int = 81, fd_rounds: int = 8, label_noise: float = 0.0):
        super().__init__(data_dir, dataset=dataset, split_seed=split_seed, max_rounds=max_rounds,
                         fd_rounds=fd_rounds, label_noise=label_noise)
        self.max_rounds = max_rounds
        self.fd_rounds = fd_rounds
        self._dmatrix: dict[str, xgb.DMatrix] = {}

    @property
    def space(self) -> SearchSpace:
        return SearchSpace([
            Hyperparameter("eta", 0.01, 1.0, 0.3, log=True),
            Hyperparameter("reg_lambda", 1e-3, 100.0, 1.0, log=True),
            Hyperparameter("reg_alpha", 1e-4, 10.0, 1e-3, log=True),
            Hyperparameter("subsample", 0.5, 1.0, 0.8),
            Hyperparameter("min_child_weight", 0.1, 20.0, 1.0, log=True),
            Hyperparameter("max_depth", 1, 10, 6, integer=True, grad="none"),
        ])

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("rounds", 1, self.max_rounds, "boosting rounds")

    @property
    def default_budget(self) -> float:  # type: ignore[override]
        """Ten full-fidelity trainings of the default config (per simulated worker)."""
        return self.BUDGET_IN_FULL_TRAININGS * self.cost(self.space.default_config(), 0, self.max_rounds)

    def matrix(self, split: str) -> xgb.DMatrix:
        if split not in self._dmatrix:
            d = self.data
            if split == "train":
                self._dmatrix[split] = xgb.QuantileDMatrix(d.x[split], label=d.y[split], nthread=1)
            else:
                self._dmatrix[split] = xgb.DMatrix(d.x[split], label=d.y[split], nthread=1)
        return self._dmatrix[split]

    def params(self, config: Mapping[str, Any], seed: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "eta": float(config["eta"]),
            "reg_lambda": float(config["reg_lambda"]),
            "reg_alpha": float(config["reg_alpha"]),
            "min_child_weight": float(config["min_child_weight"]),
            "max_depth": int(config["max_depth"]),
            "tree_method": "hist",
            "nthread": 1,
            "seed": int(seed),
            "verbosity": 0,
        }
        if self.kind == "regression":
            params["objective"] = "reg:squarederror"
        elif self.data.n_classes == 2:
            params["objective"] = "binary:logistic"
        else:
            params.update(objective="multi:softprob", num_class=self.data.n_classes)
        return params

    def row_weights(self, subsample: float, seed: int, round_index: int) -> np.ndarray:
        """This round's 0/1 row mask; the draws depend on (seed, round) only, never on the config."""
        u = np.random.default_rng([int(seed), int(round_index)]).random(self.data.n("train"))
        return (u < subsample).astype(np.float32)

    def _boost(self, booster: xgb.Booster, config: Mapping[str, Any], seed: int, start: int, stop: int) -> None:
        dtrain = self.matrix("train")
        for r in range(start, stop):
            dtrain.set_weight(self.row_weights(float(config["subsample"]), seed, r))
            booster.update(dtrain, r)

    def init_state(self, config: Mapping[str, Any], seed: int) -> XGBState:
        config = dict(config)
        return XGBState(config, seed, xgb.Booster(self.params(config, seed), [self.matrix("train")]))

    def train(self, state: XGBState, fidelity: int) -> None:
        if fidelity > state.fidelity:
            self._boost(state.booster, state.config, state.seed, state.fidelity, fidelity)
            state.fidelity = fidelity

    def _predict(self, booster: xgb.Booster, split: str) -> np.ndarray:
        return booster.predict(self.matrix(split))

    def _loss(self, pred: np.ndarray, split: str) -> float:
        """Log loss of predicted probabilities, or RMSE in the target's units."""
        y = self.data.y[split]
        if self.kind == "regression":
            return float(np.sqrt(np.mean((pred - y) ** 2)))
        p = pred if pred.ndim == 2 else np.stack([1 - pred, pred], axis=1)
        p = np.clip(p[np.arange(len(y)), y], PROB_EPS, 1.0)
        return float(-np.mean(np.log(p)))

    def _labels(self, pred: np.ndarray) -> np.ndarray:
        if self.kind == "regression":
            return pred.astype(np.float64)
        return pred.argmax(1) if pred.ndim == 2 else (pred > 0.5).astype(np.int64)

    def evaluate(self, state: XGBState) -> dict[str, float]:
        out: dict[str, float] = {}
        for split, key in (("val", self.metric), ("test", self.test_metric)):
            pred = self._predict(state.booster, split)
            out[key] = self.scores(self._labels(pred), split)
            if split == "val":
                out["val_loss"] = self._loss(pred, split)
        if not all(math.isfinite(v) for v in out.values()):
            out = dict.fromkeys(out, float("nan"))
        return out

    def save(self, state: XGBState, path: Path) -> None:
        """One file: a JSON header line (config, seed, fidelity), then the booster's UBJSON bytes."""
        header = json.dumps({"config": state.config, "seed": state.seed, "fidelity": state.fidelity,
                             "format": "ubj"}, separators=(",", ":")).encode()
        Path(path).write_bytes(header + b"\n" + bytes(state.booster.save_raw("ubj")))

    def load(self, path: Path) -> XGBState:
        blob = Path(path).read_bytes()
        head, _, raw = blob.partition(b"\n")
        meta = json.loads(head)
        config = dict(meta["config"])
        booster = xgb.Booster(self.params(config, meta["seed"]), [self.matrix("train")], model_file=bytearray(raw))
        return XGBState(config, int(meta["seed"]), booster, int(meta["fidelity"]))

    def round_work(self, config: Mapping[str, Any]) -> float:
        """Work units of one boosting round: one tree per class (one for binary and regression)."""
        trees = self.data.n_classes if self.kind == "classification" and self.data.n_classes > 2 else 1
        levels = 1 + int(config["max_depth"]) / 2
        return WORK_PER_ROUND + trees * self.data.n("train") * self.data.n_features * levels * WORK_PER_ROW_FEATURE

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        if stop <= start:
            return 0.0
        setup = WORK_PER_BOOSTER if start == 0 else 0.0
        return (setup + (stop - start) * self.round_work(config)) / self.reference_flops_per_second

    def hyper_objective(self, config: Mapping[str, Any], seed: int
                        ) -> tuple[Callable[[Mapping[str, Any]], float], float]:
        """Validation loss (log loss, or RMSE) after ``fd_rounds`` rounds from scratch, fixed seed.

        rounds_per_call = ``self.fd_rounds`` (8 by default): a central difference over the five
        movable hyperparameters costs 10 such calls. Returns the objective and the simulated
        seconds of one call at ``config``'s depth.
        """
        base = dict(config)

        def objective(cfg: Mapping[str, Any]) -> float:
            merged = {**base, **cfg}
            booster = xgb.Booster(self.params(merged, seed), [self.matrix("train")])
            self._boost(booster, merged, seed, 0, self.fd_rounds)
            return self._loss(self._predict(booster, "val"), "val")

        return objective, self.cost(base, 0, self.fd_rounds)
