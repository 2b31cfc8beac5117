"""LCBench through YAHPO Gym's ONNX surrogate: real learning curves, real runtimes, an exact-enough gradient.

Why: LCBench (Zimmer, Lindauer, Hutter 2021) is 34 OpenML datasets on which funnel-shaped MLPs
were trained with SGD for 52 epochs, with measured runtimes; YAHPO Gym (Pfisterer et al. 2022)
fitted a small neural network to those curves. Its ONNX file ships with the package
(``ohgw_bench/data/lcbench/``, layout in ``SOURCE.md`` there, attribution in ``NOTICE``) and is
read with onnxruntime directly (``pip install -e '.[lcbench]'``; the ``yahpo_gym`` package
cannot be installed beside this stack).

- ids: ``lcbench-<openml_task_id>-v1`` for the 34 task ids of ``config_space.json``; alias
  ``lcbench`` = OpenML task 3945, the config space's default instance.
- fidelity ``epoch`` 1..52; the space is LCBench's (batch_size and max_units log-integers,
  num_layers integer, learning_rate log, momentum, weight_decay, max_dropout).
- metric ``val_cross_entropy`` (min); ``val_accuracy`` (percent), ``val_balanced_accuracy`` and
  ``test_balanced_accuracy`` recorded beside it, ``test_cross_entropy`` the test metric, and the
  surrogate's raw cumulative ``surrogate_time``.
- the surrogate is deterministic: the trial seed is ignored, a config has one curve.
- cost: the surrogate's predicted training time. Its ``time`` output is cumulative and, for
  about 6% of random configs, not monotone in the epoch; the clock follows its running maximum
  ``M(e) = max(T(1..e))`` (``M(0) = 0``), except that every epoch costs at least
  ``MIN_EPOCH_SHARE`` (1%) of the config's mean predicted epoch, ``M(52) / 52``: an epoch predicted
  to end before an earlier one costs that floor, never 0 (a zero cost would let a study loop
  forever without its clock moving, which the harness refuses). See :func:`epoch_clock`.
- hyper-gradient (``hypergrad_method = "surrogate"``): d val_cross_entropy / d z at a given
  epoch for learning_rate, momentum, weight_decay and max_dropout, by central differences
  (step ``fd_step`` = 1e-6 in unit-cube coordinates) through a float64 copy of the ONNX graph
  (weights, constants and casts widened; onnxruntime evaluates it). In float32, differences at
  steps of 1e-3 and 3e-3 missed autograd by up to 14% and 27% (50 configs); in float64 they agree with autograd through the
  graph converted to torch (onnx2torch) to about 1e-6 (``tests/test_lcbench.py``). A step of
  1e-6 may leave the bounds by 1e-6 of the range; the network is defined there.
- warm-start charge (simulated seconds added to the trial's first epoch):
  ``ws_charge_fraction x C(1)``, a declared fraction (default 0.02) of the config's predicted
  first-epoch time, standing for the two mini-batches a real one-step OHGW costs (the datasets'
  training-set sizes are not in the vendored files, so ``2 x batch_size / n_train`` cannot be
  computed); ``--task-option ws_charge_fraction=...`` measures its sensitivity.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ohgw_bench.errors import DataMissingError, UserError
from ohgw_bench.options import Option
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks import LCBENCH_DEFAULT_ID, LCBENCH_IDS
from ohgw_bench.tasks.base import Fidelity, Task

#: the vendored YAHPO Gym files (package data)
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "lcbench"
MODEL_FILE = "model.onnx"
ENCODING_FILE = "encoding.json"
EXTRA_HINT = "pip install -e '.[lcbench]' (or pip install 'ohgw_bench[lcbench]')"
#: the surrogate's x_cont columns, in SOURCE.md's order (epoch first)
INPUTS = ("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units",
          "max_dropout")
#: the surrogate's output columns, in SOURCE.md's order
OUTPUTS = ("surrogate_time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy",
           "test_balanced_accuracy")
MAX_EPOCH = 52
_METRIC_COLUMN = OUTPUTS.index("val_cross_entropy")
_CACHE_LIMIT = 20_000  # curves kept per task instance (52 x 6 float32 each, about 1.2 kB)



#: the least an epoch costs, as a share of the config's mean predicted epoch time
MIN_EPOCH_SHARE = 0.01


def epoch_clock(predicted: Any) -> np.ndarray:
    """The study clock C[0..52] of one config from its predicted cumulative times T(1..52).

    The running maximum of T (so time never runs backwards), with every epoch charged at least
    ``MIN_EPOCH_SHARE`` of the mean epoch ``M(52) / 52`` (and at least 1 microsecond): where the
    prediction is not monotone an epoch costs that floor instead of 0.
    """
    running = np.maximum.accumulate(np.maximum(np.asarray(predicted, dtype=np.float64), 0.0))
    floor = max(MIN_EPOCH_SHARE * float(running[-1]) / len(running), 1e-6)
    steps = np.maximum(np.diff(np.concatenate([[0.0], running])), floor)
    return np.concatenate([[0.0], np.cumsum(steps)])

class Surrogate:
    """The ONNX model in two onnxruntime sessions: float32 as shipped (values), float64 copy (gradients)."""

    def __init__(self, folder: Path, who: str):
        self.folder = folder
        self.model_path = folder / MODEL_FILE
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError(f"{who} needs onnxruntime: {EXTRA_HINT}") from None
        self._ort = ort
        encoding_path = folder / ENCODING_FILE
        for path in (self.model_path, encoding_path):
            if not path.is_file():
                raise DataMissingError(f"{who}: the vendored surrogate file {path} is missing; reinstall "
                                       f"ohgw_bench ({EXTRA_HINT})")
        try:
            self.encoding: dict[str, int] = {str(k): int(v) for k, v in
                                             json.loads(encoding_path.read_text())["OpenML_task_id"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataMissingError(f"{who}: the vendored surrogate file {encoding_path} is corrupt "
                                   f"({_one_line(e)}); reinstall ohgw_bench") from None
        self._bytes = self.model_path.read_bytes()
        try:
            self.session = ort.InferenceSession(self._bytes, self._options(), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for a bad file
            raise DataMissingError(f"{who}: the vendored surrogate file {self.model_path} cannot be read "
                                   f"({_one_line(e)}); reinstall ohgw_bench") from None
        self._session64: Any = None

    def _options(self) -> Any:
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = 1  # a study runs one thread (docs/design.md section 8)
        opts.inter_op_num_threads = 1
        return opts

    def run(self, code: int, x_cont: np.ndarray) -> np.ndarray:
        """Outputs [n, 6] float32 of the shipped model for rows ``x_cont`` [n, 8] of one task code."""
        x = np.ascontiguousarray(x_cont, dtype=np.float32)
        cat = np.full((x.shape[0], 1), code, dtype=np.int32)
        return self.session.run(None, {"x_cat": cat, "x_cont": x})[0]

    def run64(self, code: int, x_cont: np.ndarray) -> np.ndarray:
        """Outputs [n, 6] float64 of the float64 copy of the graph (built on first use)."""
        if self._session64 is None:
            self._session64 = self._ort.InferenceSession(widen_to_float64(self._bytes, self.model_path),
                                                         self._options(), providers=["CPUExecutionProvider"])
        x = np.ascontiguousarray(x_cont, dtype=np.float64)
        cat = np.full((x.shape[0], 1), code, dtype=np.int32)
        return self._session64.run(None, {"x_cat": cat, "x_cont": x})[0]


def widen_to_float64(model_bytes: bytes, path: Path) -> bytes:
    """The ONNX graph with every float32 weight, constant, cast, x_cont and the output made float64."""
    try:
        import onnx
        from onnx import TensorProto
        from onnx import numpy_helper as nh
    except ImportError:
        raise UserError(f"the LCBench hyper-gradient needs the onnx package: {EXTRA_HINT}") from None
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(nh.from_array(nh.to_array(init).astype(np.float64), init.name))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(nh.from_array(nh.to_array(attr.t).astype(np.float64), attr.t.name))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    for value in (*graph.input, *graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    if [i.name for i in graph.input] != ["x_cat", "x_cont"]:
        raise DataMissingError(f"{path}: inputs {[i.name for i in graph.input]}, expected x_cat, x_cont")
    return model.SerializeToString()


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}"


_SURROGATES: dict[Path, Surrogate] = {}
_TAU: dict[str, float] = {}


def surrogate(who: str, folder: Path | None = None) -> Surrogate:
    """The process's surrogate for ``folder`` (default: the vendored one), loaded once."""
    folder = DATA_DIR if folder is None else folder
    if folder not in _SURROGATES:
        _SURROGATES[folder] = Surrogate(folder, who)
    return _SURROGATES[folder]


@dataclass
class LCBenchState:
    """A trial: its config and how many epochs it has 'trained' (the surrogate needs nothing else)."""

    config: dict[str, Any]
    seed: int
    fidelity: int = 0


class LCBenchTask(Task):
    """One LCBench dataset through YAHPO Gym's surrogate; epochs 1..52 on the surrogate's time axis."""

    description = "LCBench (YAHPO Gym ONNX surrogate), funnel MLP, SGD; metric val cross-entropy"
    metric = "val_cross_entropy"
    mode = "min"
    test_metric = "test_cross_entropy"
    hypergrad_method = "surrogate"
    default_budget = 7200.0  # Syne Tune's LCBench protocol: 7,200 simulated seconds
    reference_flops_per_second = 1.0  # unused: the clock is the surrogate's predicted time
    conformance_fidelities = (3, 9)
    option_declarations = (
        Option("openml_task_id", str, LCBENCH_DEFAULT_ID, "OpenML task id (set by the task id)",
               choices=LCBENCH_IDS),
        Option("ws_charge_fraction", float, 0.02, "warm-start charge as a fraction of the config's predicted "
               "first-epoch time", low=0.0, high=1.0),
        Option("fd_step", float, 1e-6, "central-difference step of the hyper-gradient (unit-cube coordinates)",
               low=1e-9, high=1e-3),
    )
    #: how the warm-start charge is computed (written into every warm-start record)
    charge_formula = "ws_charge_fraction x C(1), C(1) = predicted time of the first epoch"

    def __init__(self, data_dir: Any = None, openml_task_id: str = LCBENCH_DEFAULT_ID,
                 ws_charge_fraction: float = 0.02, fd_step: float = 1e-6):
        tid = str(openml_task_id)
        if tid not in LCBENCH_IDS:
            close = difflib.get_close_matches(tid, LCBENCH_IDS, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(f'lcbench-{c}-v1' for c in close)}? " if close else ""
            raise UserError(f"unknown LCBench OpenML task id {tid!r}; {hint}valid ids: {', '.join(LCBENCH_IDS)}")
        super().__init__(data_dir, openml_task_id=tid, ws_charge_fraction=ws_charge_fraction, fd_step=fd_step)
        self.openml_task_id = tid
        self.id = f"lcbench-{tid}-v1"
        self.ws_charge_fraction = float(ws_charge_fraction)
        self.fd_step = float(fd_step)
        self._surrogate: Surrogate | None = None
        self._code = -1
        self._curves: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._space = SearchSpace([
            Hyperparameter("batch_size", 16, 512, 91, log=True, integer=True),
            Hyperparameter("learning_rate", 1e-4, 1e-1, 0.0031622777, log=True, grad="surrogate", prior=1.0),
            Hyperparameter("momentum", 0.1, 0.99, 0.545, grad="surrogate"),
            Hyperparameter("weight_decay", 1e-5, 1e-1, 0.050005, grad="surrogate"),
            Hyperparameter("num_layers", 1, 5, 3, integer=True),
            Hyperparameter("max_units", 64, 1024, 256, log=True, integer=True),
            Hyperparameter("max_dropout", 0.0, 1.0, 0.5, grad="surrogate"),
        ])

    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("epoch", 1, MAX_EPOCH, "epochs")

    def prepare(self) -> None:
        if self._surrogate is None:
            model = surrogate(f"task {self.id}")
            if self.openml_task_id not in model.encoding:
                raise DataMissingError(f"task {self.id}: {model.folder / ENCODING_FILE} has no code for OpenML task "
                                       f"{self.openml_task_id}; reinstall ohgw_bench")
            self._code = model.encoding[self.openml_task_id]
            self._surrogate = model

    @property
    def model(self) -> Surrogate:
        self.prepare()
        assert self._surrogate is not None
        return self._surrogate

    # the curve of a config ----------------------------------------------------------------
    def _key(self, config: Mapping[str, Any]) -> tuple[float, ...]:
        return tuple(float(config[n]) for n in INPUTS[1:])

    def rows(self, config: Mapping[str, Any], epochs: Any) -> np.ndarray:
        """x_cont rows [len(epochs), 8] for ``config`` in SOURCE.md's column order (raw values)."""
        key = self._key(config)
        epochs = np.asarray(epochs, dtype=np.float64)
        return np.column_stack([epochs, np.tile(np.asarray(key), (len(epochs), 1))])

    def curve(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(outputs [52, 6] float32, clock C [53] float64) of ``config``: one onnxruntime call, cached."""
        key = self._key(config)
        hit = self._curves.get(key)
        if hit is not None:
            return hit
        out = self.model.run(self._code, self.rows(config, range(1, MAX_EPOCH + 1)))
        clock = epoch_clock(out[:, 0])
        if len(self._curves) >= _CACHE_LIMIT:
            for old in list(self._curves)[: _CACHE_LIMIT // 2]:
                del self._curves[old]
        self._curves[key] = (out, clock)
        return out, clock

    # the Task protocol --------------------------------------------------------------------
    def init_state(self, config: Mapping[str, Any], seed: int) -> LCBenchState:
        return LCBenchState({n: config[n] for n in self.space.names}, int(seed))

    def train(self, state: LCBenchState, fidelity: int) -> None:
        if not 0 <= int(fidelity) <= MAX_EPOCH:
            raise ValueError(f"{self.id}: epoch {fidelity} outside 1..{MAX_EPOCH}")
        state.fidelity = int(fidelity)

    def evaluate(self, state: LCBenchState) -> dict[str, float]:
        out, _ = self.curve(state.config)
        row = out[max(1, state.fidelity) - 1]
        return {name: float(row[i]) for i, name in enumerate(OUTPUTS)}

    def save(self, state: LCBenchState, path: Path) -> None:
        Path(path).write_text(json.dumps({"config": state.config, "seed": state.seed, "fidelity": state.fidelity}))

    def load(self, path: Path) -> LCBenchState:
        d = json.loads(Path(path).read_text())
        return LCBenchState(dict(d["config"]), int(d["seed"]), int(d["fidelity"]))

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        """C(stop) - C(start) of :func:`epoch_clock` (the predicted cumulative time, made increasing)."""
        if stop <= start:
            return 0.0
        _, clock = self.curve(config)
        lo, hi = (min(MAX_EPOCH, max(0, int(x))) for x in (start, stop))
        return float(clock[hi] - clock[lo])

    @property  # type: ignore[override]
    def tau(self) -> float:
        """The 5% quantile of val_cross_entropy at epoch 52 over 512 configs drawn uniformly (seed 0):
        a threshold only good configs reach, set by a rule rather than by tuning (docs/design.md)."""
        if self.openml_task_id not in _TAU:  # once per process: a pool worker runs many studies
            rng = np.random.default_rng(0)
            configs = [self.space.sample(rng) for _ in range(512)]
            x = np.vstack([self.rows(c, [MAX_EPOCH]) for c in configs])
            values = self.model.run(self._code, x)[:, _METRIC_COLUMN]
            _TAU[self.openml_task_id] = float(np.quantile(values.astype(np.float64), 0.05))
        return _TAU[self.openml_task_id]

    # the surrogate hyper-gradient ---------------------------------------------------------
    def surrogate_gradient(self, config: Mapping[str, Any], fidelity: int) -> Any:
        """d val_cross_entropy(epoch = fidelity) / d z for the continuous hyperparameters (module docstring)."""
        from ohgw_bench.hypergrad import HyperGradient

        space, h = self.space, self.fd_step
        names = space.movable("surrogate")
        base = self.rows(config, [int(fidelity)])[0]
        rows = [base]
        for n in names:
            p, col = space[n], INPUTS.index(n)
            z = p.to_unit(float(config[n]))
            for dz in (h, -h):
                row = base.copy()
                row[col] = p.from_psi(p.to_psi(p.low) + (z + dz) * p.psi_range)  # unclamped
                rows.append(row)
        out = self.model.run64(self._code, np.vstack(rows))[:, _METRIC_COLUMN]
        unit = {n: float(out[1 + 2 * i] - out[2 + 2 * i]) / (2 * h) for i, n in enumerate(names)}
        psi = {n: g / space[n].psi_range for n, g in unit.items()}
        native = {n: g / space[n].dnative_dunit(float(config[n])) for n, g in unit.items()}
        return HyperGradient(native=native, psi=psi, unit=unit, value=float(out[0]),
                             method="surrogate-central-difference-float64", horizon=0, evaluations=len(rows),
                             info={"gradient_fidelity": int(fidelity), "fd_step_unit": h,
                                   "precision": "float64 copy of the ONNX graph (onnxruntime)",
                                   "metric": self.metric})

    def warm_start_charge(self, config: Mapping[str, Any]) -> float:
        """Simulated seconds a warm-start adds to the trial's first epoch: ``charge_formula``."""
        return self.ws_charge_fraction * self.cost(config, 0, 1)

