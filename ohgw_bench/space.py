"""One search-space definition per task, and the coordinate systems the warm-start works in.

Three coordinate systems matter (docs/design.md section 4):

- native: the value the learner receives (lr = 0.01);
- transformed ("psi"): log(value) for log-scaled hyperparameters, the value otherwise; the
  paper's raw step psi <- psi - eta_h * g is taken here;
- unit cube ("z"): psi scaled to [0, 1] between the bounds; schedulers sample here and the
  trust-region step rules move configs by a radius measured here.

The same definition converts to a Syne Tune config space and to a ConfigSpace space, so
every scheduler family sees identical bounds and scales.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ohgw_bench.errors import UserError

GradPath = Literal["autograd", "finite_difference", "surrogate", "none"]


class SpaceError(UserError, ValueError):
    """A search space or a config that does not fit it (a user's mistake, reported in one line)."""


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: bounds, scale, default, and how the warm-start reaches it.

    ``grad`` says which hyper-gradient path exists: ``autograd`` (differentiable through the
    lookahead), ``finite_difference`` (no pathwise derivative: dropout, tree learners),
    ``surrogate`` (the derivative of a surrogate model's prediction, ``tasks/lcbench.py``), or
    ``none`` (never moved by a warm-start: integers, structural choices).
    ``prior`` is the sign of the fixed direction the ``prior`` control pushes in (0: not moved).
    """

    name: str
    low: float
    high: float
    default: float
    log: bool = False
    integer: bool = False
    grad: GradPath = "autograd"
    prior: float = 0.0

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise SpaceError(f"hyperparameter {self.name!r}: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"hyperparameter {self.name!r}: a log scale needs low > 0, got {self.low}")
        if not self.low <= self.default <= self.high:
            raise SpaceError(
                f"hyperparameter {self.name!r}: default {self.default} outside [{self.low}, {self.high}]"
            )
        if self.integer and self.grad != "none":
            object.__setattr__(self, "grad", "none")

    @property
    def movable(self) -> bool:
        """True if a warm-start may change this hyperparameter."""
        return not self.integer and self.grad != "none"

    def to_psi(self, value: float) -> float:
        return math.log(value) if self.log else float(value)

    def from_psi(self, psi: float) -> float:
        return math.exp(psi) if self.log else float(psi)

    @property
    def psi_range(self) -> float:
        return self.to_psi(self.high) - self.to_psi(self.low)

    def to_unit(self, value: float) -> float:
        return (self.to_psi(value) - self.to_psi(self.low)) / self.psi_range

    def from_unit(self, z: float) -> float | int:
        z = min(1.0, max(0.0, float(z)))
        value = self.from_psi(self.to_psi(self.low) + z * self.psi_range)
        value = min(self.high, max(self.low, value))
        return int(round(value)) if self.integer else value

    def clip(self, value: float) -> float | int:
        value = min(self.high, max(self.low, value))
        return int(round(value)) if self.integer else float(value)

    def dnative_dpsi(self, value: float) -> float:
        """d value / d psi at ``value`` (chain rule from native to transformed coordinates)."""
        return float(value) if self.log else 1.0

    def dnative_dunit(self, value: float) -> float:
        """d value / d z at ``value`` (chain rule from native to unit-cube coordinates)."""
        return self.dnative_dpsi(value) * self.psi_range


class SearchSpace:
    """An ordered, immutable collection of :class:`Hyperparameter`."""

    def __init__(self, params: Iterable[Hyperparameter]):
        self.params: tuple[Hyperparameter, ...] = tuple(params)
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise SpaceError(f"duplicate hyperparameter names in {names}")
        self._by_name = {p.name: p for p in self.params}

    def __iter__(self) -> Iterator[Hyperparameter]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Hyperparameter:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __repr__(self) -> str:
        return f"SearchSpace({[p.name for p in self.params]})"

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def movable(self, grad: GradPath | None = None) -> list[str]:
        """Names a warm-start may change, optionally only those with the given gradient path."""
        return [p.name for p in self.params if p.movable and (grad is None or p.grad == grad)]

    def default_config(self) -> dict[str, Any]:
        return {p.name: (int(p.default) if p.integer else float(p.default)) for p in self.params}

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Return the space's part of ``config`` as plain Python numbers, or raise SpaceError."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name not in config:
                raise SpaceError(f"config lacks hyperparameter {p.name!r}")
            value = config[p.name]
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise SpaceError(f"hyperparameter {p.name!r}: {value!r} is not a number") from None
            tol = 1e-9 * max(1.0, abs(p.high))
            if not (p.low - tol <= value <= p.high + tol) or math.isnan(value):
                raise SpaceError(f"hyperparameter {p.name!r}: {value} outside [{p.low}, {p.high}]")
            out[p.name] = p.clip(value)
        return out

    def to_unit(self, config: Mapping[str, Any]) -> dict[str, float]:
        return {p.name: p.to_unit(config[p.name]) for p in self.params}

    def from_unit(self, z: Mapping[str, float], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Map unit-cube coordinates back to a config; names missing from ``z`` come from ``base``."""
        out = dict(base or {})
        for p in self.params:
            if p.name in z:
                out[p.name] = p.from_unit(z[p.name])
        return out

    def to_psi(self, config: Mapping[str, Any]) -> dict[str, float]:
        return {p.name: p.to_psi(config[p.name]) for p in self.params}

    def sample(self, rng: Any) -> dict[str, Any]:
        """Uniform in unit-cube coordinates (log-uniform for log scales), from ``rng`` (numpy Generator)."""
        return {p.name: p.from_unit(rng.uniform()) for p in self.params}

    def to_syne_tune(self) -> dict[str, Any]:
        """Syne Tune domains (uniform, loguniform, randint, lograndint)."""
        from syne_tune.config_space import lograndint, loguniform, randint, uniform

        space: dict[str, Any] = {}
        for p in self.params:
            if p.integer:
                space[p.name] = (lograndint if p.log else randint)(int(p.low), int(p.high))
            else:
                space[p.name] = (loguniform if p.log else uniform)(p.low, p.high)
        return space

    def to_configspace(self, seed: int | None = None) -> Any:
        """A ConfigSpace.ConfigurationSpace with the same bounds, scales and defaults."""
        import ConfigSpace as CS

        cs = CS.ConfigurationSpace(seed=seed)
        for p in self.params:
            if p.integer:
                hp = CS.UniformIntegerHyperparameter(
                    p.name, int(p.low), int(p.high), default_value=int(p.default), log=p.log
                )
            else:
                hp = CS.UniformFloatHyperparameter(
                    p.name, p.low, p.high, default_value=p.default, log=p.log
                )
            cs.add(hp)
        return cs
