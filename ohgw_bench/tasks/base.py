"""The task protocol: what an adapter must say and do so that any scheduler and warm-start can use it.

An adapter is a class. Its class attributes state the facts a study needs before any data is
loaded (metric, mode, threshold, hyper-gradient method); its methods build, train, evaluate,
save and load a training state, and hand the warm-start what it needs (a
:class:`~ohgw_bench.hypergrad.HyperProblem` for autograd tasks, an objective for
finite-difference tasks). Training state is whatever object the adapter likes, as long as it
has an integer ``fidelity`` attribute (how far it has been trained).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ohgw_bench.errors import DataMissingError
from ohgw_bench.options import Option, from_signature
from ohgw_bench.space import SearchSpace

if TYPE_CHECKING:
    from ohgw_bench.hypergrad import HyperProblem

HypergradMethod = Literal["autograd", "finite_difference", "surrogate", "none"]

DATA_DIR_ENV = "OHGW_DATA_DIR"


@dataclass(frozen=True)
class Fidelity:
    """The resource a scheduler allocates: its config key, unit and integer range."""

    name: str = "epochs"
    min: int = 1
    max: int = 27
    unit: str = "epochs"


class Task(ABC):
    """Base class of every task adapter.

    Subclasses set the class attributes and implement the abstract methods. The constructor
    takes the data directory and adapter-specific keyword options; loading happens in
    :meth:`prepare`, so listing or constructing a task stays cheap.
    """

    id: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metric: ClassVar[str] = "val_error"
    mode: ClassVar[Literal["min", "max"]] = "min"
    test_metric: ClassVar[str] = "test_error"
    tau: ClassVar[float] = 0.1
    hypergrad_method: ClassVar[HypergradMethod] = "autograd"
    default_horizon: ClassVar[int] = 1
    default_budget: ClassVar[float] = 600.0
    reference_flops_per_second: ClassVar[float] = 1e10
    conformance_fidelities: ClassVar[tuple[int, int]] = (1, 2)
    #: the value a failed or diverged trial reports to the scheduler (None: the worst seen so far)
    worst_metric: ClassVar[float | None] = None
    #: appended to the registered id by :func:`ohgw_bench.tasks.make` when an instance does not run
    #: on the real data (``"-mini"``: WikiText's embedded mini corpus or a fixture), so its results
    #: are filed and reported apart from real runs
    label_suffix: str = ""
    #: options refining what the constructor's keyword arguments declare (range, choices, help);
    #: see :meth:`declared_options`
    option_declarations: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, **options: Any):
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.options = dict(options)

    @classmethod
    def declared_options(cls) -> tuple[Option, ...]:
        """The options ``--task-option`` may set: the constructor's keyword arguments (typed by their
        defaults), refined by ``option_declarations``. Anything else is refused before any work."""
        return from_signature(cls, cls.option_declarations, stop=Task)

    @property
    @abstractmethod
    def space(self) -> SearchSpace:
        """The search space (continuous hyperparameters marked with their gradient path)."""

    @property
    @abstractmethod
    def fidelity(self) -> Fidelity:
        """The fidelity the scheduler allocates."""

    def prepare(self) -> None:  # noqa: B027 - most adapters load lazily and need nothing here
        """Load the data once (idempotent). Raise DataMissingError saying where files must go."""

    @classmethod
    def conformance_setup(cls, tmp_dir: Path) -> dict[str, Any]:
        """Keyword arguments for :func:`ohgw_bench.tasks.make` under which the conformance checks run
        in seconds: adapters whose data is not bundled write a tiny dataset here in the exact
        on-disk format their real loader reads, and return ``{"data_dir": tmp_dir, ...small options}``.
        """
        return {}

    @abstractmethod
    def init_state(self, config: Mapping[str, Any], seed: int) -> Any:
        """A fresh training state at fidelity 0 for ``config`` and ``seed``."""

    @abstractmethod
    def train(self, state: Any, fidelity: int) -> None:
        """Advance ``state`` in place from ``state.fidelity`` to ``fidelity``."""

    @abstractmethod
    def evaluate(self, state: Any) -> dict[str, float]:
        """At least ``{self.metric: ..., self.test_metric: ...}`` for the current state."""

    @abstractmethod
    def save(self, state: Any, path: Path) -> None:
        """Write everything needed to continue training bit-identically (weights, optimiser, RNGs)."""

    @abstractmethod
    def load(self, path: Path) -> Any:
        """Read a state written by :meth:`save`."""

    @abstractmethod
    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        """Deterministic cost in simulated seconds of training from ``start`` to ``stop``.

        The simulated clock must not depend on measured time (docs/design.md section 5): count
        FLOPs (or another deterministic work unit) and divide by the reference throughput.
        """

    def hyper_problem(
        self, config: Mapping[str, Any], seed: int, horizon: int, split_batch: bool = False
    ) -> HyperProblem:
        """The lookahead problem of docs/design.md section 4 (autograd tasks)."""
        raise NotImplementedError(f"task {self.id} has no autograd hyper-gradient path")

    def hyper_objective(
        self, config: Mapping[str, Any], seed: int
    ) -> tuple[Callable[[Mapping[str, Any]], float], float]:
        """(objective, simulated seconds per call) for finite differences (tree learners, RL).

        The objective maps a config to a validation loss after a short, fixed-seed training.
        """
        raise NotImplementedError(f"task {self.id} has no finite-difference objective")

    def surrogate_gradient(self, config: Mapping[str, Any], fidelity: int) -> Any:
        """d metric(fidelity) / d hyperparameter of a surrogate task (``hypergrad_method = "surrogate"``),
        a :class:`~ohgw_bench.hypergrad.HyperGradient`; ``ohgw`` asks at the minimum fidelity,
        ``oracle`` at the maximum."""
        raise NotImplementedError(f"task {self.id} has no surrogate hyper-gradient")

    def warm_start_charge(self, config: Mapping[str, Any]) -> float:
        """Simulated seconds a surrogate task charges a warm-started trial (declared by the task)."""
        raise NotImplementedError(f"task {self.id} declares no warm-start charge")

    def data_missing(self, what: str, layout: str) -> DataMissingError:
        """A one-line error naming the files expected and where they must go."""
        return DataMissingError(
            f"task {self.id}: {what} not found under {self.data_dir}; expected {layout} "
            f"(set --data-dir or {DATA_DIR_ENV})"
        )

    def describe(self) -> dict[str, Any]:
        """Facts recorded in study.json."""
        f = self.fidelity
        return {
            "id": self.id,
            "metric": self.metric,
            "mode": self.mode,
            "test_metric": self.test_metric,
            "tau": self.tau,
            "hypergrad_method": self.hypergrad_method,
            "fidelity": {"name": f.name, "min": f.min, "max": f.max, "unit": f.unit},
            "space": [
                {
                    "name": p.name,
                    "low": p.low,
                    "high": p.high,
                    "default": p.default,
                    "log": p.log,
                    "integer": p.integer,
                    "grad": p.grad,
                    "prior": p.prior,
                }
                for p in self.space
            ],
            "reference_flops_per_second": self.reference_flops_per_second,
            "options": self.options,
        }


def default_data_dir() -> Path:
    """``$OHGW_DATA_DIR`` or ``~/.cache/ohgw_bench/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "ohgw_bench" / "data"
