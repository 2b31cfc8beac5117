"""The UCI tabular suite's shared parts: the data loader and the task base class.

Two sources of data:

- the UCI sets that scikit-learn bundles (breast_cancer, wine, iris, digits, diabetes), which
  need no download and take precedence over a CSV of the same name;
- any UCI CSV a user drops into ``<data-dir>/uci/<name>.csv`` with a sidecar
  ``<name>.json`` (or ``.yaml`` / ``.yml``) such as::

      {"target": "quality", "task": "regression", "drop": ["id"], "tau": 0.6, "sep": ";"}

  ``target`` and ``task`` (classification or regression) are required; ``drop`` (columns to
  ignore), ``tau`` (the T@tau threshold on the task's metric) and ``sep`` (the CSV delimiter,
  default ``,``) are optional. ``?`` and empty cells are missing values (the UCI convention):
  rows without a target are dropped, missing features are imputed with the training mean.
  Text feature columns are one-hot encoded.

Splits are 60/20/20 train/val/test, stratified for classification, fixed by ``split_seed``;
features are standardised with the training split's mean and standard deviation. Regression
targets stay in their own units (metrics are reported in them); models that need a scaled
target use ``y_mean`` / ``y_std``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ohgw_bench.errors import DataMissingError, UserError
from ohgw_bench.tasks.base import Task
from ohgw_bench.tasks.label_noise import LABEL_NOISE, noisy_labels

Kind = Literal["classification", "regression"]

BUNDLED: dict[str, Kind] = {
    "breast_cancer": "classification",
    "wine": "classification",
    "iris": "classification",
    "digits": "classification",
    "diabetes": "regression",
}
SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")
SIDECAR_KEYS = {"target", "task", "drop", "tau", "sep"}
SIDECAR_FORMAT = ('{"target": "<column>", "task": "classification" | "regression", '
                  '"drop": [<columns>] (optional), "tau": <float> (optional), "sep": "," (optional)}')
FRACTIONS = (0.6, 0.2, 0.2)


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a data set before its rows are read."""

    name: str
    kind: Kind
    csv: Path | None = None
    target: str | None = None
    drop: tuple[str, ...] = ()
    tau: float | None = None
    sep: str = ","


@dataclass
class TabularData:
    """Standardised float32 features and targets (int64 labels or float64 values) per split."""

    name: str
    kind: Kind
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    feature_names: list[str]
    classes: list[Any]
    y_mean: float = 0.0
    y_std: float = 1.0

    @property
    def n_features(self) -> int:
        return int(self.x["train"].shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes; 0 for regression."""
        return len(self.classes)

    def n(self, split: str) -> int:
        return int(len(self.y[split]))

    def trivial_score(self, split: str = "val") -> float:
        """Error of the majority class, or RMSE of the training mean: what a model must beat."""
        if self.kind == "classification":
            majority = np.bincount(self.y["train"], minlength=self.n_classes).argmax()
            return float(np.mean(self.y[split] != majority))
        return float(np.sqrt(np.mean((self.y[split] - self.y["train"].mean()) ** 2)))


def uci_layout(name: str) -> str:
    return f"<data-dir>/uci/{name}.csv with a sidecar <data-dir>/uci/{name}.json like {SIDECAR_FORMAT}"


def dataset_info(name: str, data_dir: Path, who: str = "") -> DatasetInfo:
    """Bundled sets are known by name; a CSV set is described by its sidecar (read, checked, no rows)."""
    if name in BUNDLED:
        return DatasetInfo(name, BUNDLED[name])
    prefix = f"{who}: " if who else ""
    root = Path(data_dir) / "uci"
    csv = root / f"{name}.csv"
    if not csv.is_file():
        raise DataMissingError(
            f"{prefix}UCI data set {name!r} is neither bundled with scikit-learn ({', '.join(BUNDLED)}) "
            f"nor at {csv}; expected {uci_layout(name)} (set --data-dir or OHGW_DATA_DIR)"
        )
    sidecars = [root / f"{name}{s}" for s in SIDECAR_SUFFIXES if (root / f"{name}{s}").is_file()]
    if not sidecars:
        raise DataMissingError(f"{prefix}{csv} has no sidecar {root / (name + '.json')}; expected {SIDECAR_FORMAT}")
    return _parse_sidecar(name, csv, sidecars[0], prefix)


def _parse_sidecar(name: str, csv: Path, path: Path, prefix: str) -> DatasetInfo:
    def bad(why: str) -> UserError:
        return UserError(f"{prefix}malformed sidecar {path}: {why}; expected {SIDECAR_FORMAT}")

    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            spec = json.loads(text)
        else:
            import yaml

            spec = yaml.safe_load(text)
    except Exception as e:  # noqa: BLE001 - any parse error is the user's file, shown as one line
        raise bad(f"cannot parse it ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(spec, Mapping):
        raise bad("it must hold a mapping")
    unknown = sorted(set(spec) - SIDECAR_KEYS)
    if unknown:
        raise bad(f"unknown keys {unknown}")
    target = spec.get("target")
    if not isinstance(target, str) or not target:
        raise bad("'target' must name the target column")
    kind = spec.get("task")
    if kind not in ("classification", "regression"):
        raise bad(f"'task' must be 'classification' or 'regression', got {kind!r}")
    drop = spec.get("drop", [])
    if isinstance(drop, str):
        drop = [drop]
    if not isinstance(drop, list) or not all(isinstance(c, str) for c in drop):
        raise bad("'drop' must be a list of column names")
    if target in drop:
        raise bad(f"the target {target!r} is also in 'drop'")
    tau = spec.get("tau")
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, int | float) or not math.isfinite(tau)):
        raise bad(f"'tau' must be a number, got {tau!r}")
    sep = spec.get("sep", ",")
    if not isinstance(sep, str) or not sep:
        raise bad("'sep' must be a non-empty string")
    return DatasetInfo(name, kind, csv, target, tuple(drop), None if tau is None else float(tau), sep)


def _bundled_frame(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), list(map(str, bunch.feature_names))


def _csv_frame(info: DatasetInfo, prefix: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import pandas as pd

    assert info.csv is not None and info.target is not None
    try:
        frame = pd.read_csv(info.csv, sep=info.sep, na_values=["?"], skipinitialspace=True)
    except Exception as e:  # noqa: BLE001 - a broken CSV is the user's file, shown as one line
        raise UserError(f"{prefix}cannot read {info.csv} as CSV (sep {info.sep!r}): {type(e).__name__}: {e}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in (info.target, *info.drop) if c not in frame.columns]
    if missing:
        raise UserError(f"{prefix}{info.csv} lacks the columns {missing} named in its sidecar; "
                        f"its columns are {list(frame.columns)}")
    frame = frame.drop(columns=list(info.drop))
    frame = frame[frame[info.target].notna()]
    y = frame.pop(info.target).to_numpy()
    if info.kind == "regression":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise UserError(f"{prefix}{info.csv}: regression target {info.target!r} is not numeric") from None
    text_cols = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text_cols:
        frame = pd.get_dummies(frame, columns=text_cols, dtype=np.float64)
    if frame.shape[1] == 0:
        raise UserError(f"{prefix}{info.csv} has no feature columns besides the target {info.target!r}")
    return frame.to_numpy(dtype=np.float64), y, list(map(str, frame.columns))


def _split(n: int, labels: np.ndarray | None, seed: int) -> dict[str, np.ndarray]:
    """Row indices per split; each class is shuffled and cut in the same proportions (stratified)."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for idx in groups:
        idx = rng.permutation(idx)
        n_val = int(round(len(idx) * FRACTIONS[1]))
        n_test = int(round(len(idx) * FRACTIONS[2]))
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val:n_val + n_test])
        parts["train"].append(idx[n_val + n_test:])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def load_dataset(info: DatasetInfo, split_seed: int = 0, who: str = "") -> TabularData:
    """Read, encode, split and standardise a data set described by :func:`dataset_info`."""
    prefix = f"{who}: " if who else ""
    x, y, names = _bundled_frame(info.name) if info.csv is None else _csv_frame(info, prefix)
    if len(y) < 10:
        raise UserError(f"{prefix}data set {info.name!r} has {len(y)} usable rows; at least 10 are needed")
    classes: list[Any] = []
    if info.kind == "classification":
        classes_arr, y = np.unique(y.astype(str) if y.dtype == object else y, return_inverse=True)
        classes = classes_arr.tolist()
        if len(classes) < 2:
            raise UserError(f"{prefix}classification target of {info.name!r} has only {len(classes)} class")
        y = y.astype(np.int64)
    parts = _split(len(y), y if info.kind == "classification" else None, split_seed)
    train_x = x[parts["train"]]
    mean = np.nanmean(train_x, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.nanstd(train_x, axis=0)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    xs = {}
    for split, idx in parts.items():
        z = (x[idx] - mean) / std
        xs[split] = np.nan_to_num(z, nan=0.0).astype(np.float32)
    ys = {split: y[idx] for split, idx in parts.items()}
    data = TabularData(info.name, info.kind, xs, ys, names, classes)
    if info.kind == "regression":
        data.y_mean = float(ys["train"].mean())
        data.y_std = float(ys["train"].std()) or 1.0
    return data


class UCITask(Task):
    """Shared plumbing of the UCI tasks: data set, metric names and default threshold.

    Subclasses set ``model_name`` and ``TAU`` (measured thresholds for the bundled sets). A CSV
    set takes ``tau`` from its sidecar, or else ``CSV_TAU_FRACTION`` times the trivial
    predictor's validation score (majority class error or training-mean RMSE).
    """

    model_name: str = ""
    TAU: dict[str, float] = {}
    CSV_TAU_FRACTION = {"classification": 0.5, "regression": 0.8}

    option_declarations = (LABEL_NOISE,)

    def __init__(self, data_dir: Any = None, dataset: str = "breast_cancer", split_seed: int = 0,
                 label_noise: float = 0.0, **options: Any):
        super().__init__(data_dir, dataset=dataset, split_seed=split_seed, label_noise=label_noise, **options)
        self.label_noise = float(label_noise)
        self.dataset = dataset
        self.split_seed = split_seed
        self.id = f"uci-{dataset}-{self.model_name}-v1"
        self.info = dataset_info(dataset, self.data_dir, self.id)
        self.kind: Kind = self.info.kind
        if self.kind == "regression":
            self.metric, self.test_metric = "val_rmse", "test_rmse"
        else:
            self.metric, self.test_metric = "val_error", "test_error"
        if self.label_noise and self.kind != "classification":
            raise UserError(f"{self.id}: label_noise applies to classification tasks; {dataset!r} is a regression set")
        self._data: TabularData | None = None

    def prepare(self) -> None:
        if self._data is None:
            data = load_dataset(self.info, self.split_seed, self.id)
            if self.label_noise:
                data.y["train"] = noisy_labels(data.y["train"], len(data.classes), self.label_noise, self.split_seed)
            self._data = data

    @property
    def data(self) -> TabularData:
        self.prepare()
        assert self._data is not None
        return self._data

    @property  # type: ignore[override]
    def tau(self) -> float:
        if self.info.csv is None and self.dataset in self.TAU:
            return self.TAU[self.dataset]
        if self.info.tau is not None:
            return self.info.tau
        return self.CSV_TAU_FRACTION[self.kind] * self.data.trivial_score("val")

    def scores(self, predictions: np.ndarray, split: str) -> float:
        """Error rate of predicted labels, or RMSE of predicted values in the target's units."""
        y = self.data.y[split]
        if self.kind == "classification":
            return float(np.mean(predictions != y))
        return float(np.sqrt(np.mean((predictions - y) ** 2)))
