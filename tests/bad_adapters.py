"""Task adapters that break the Task contract on purpose (tests/test_bad_input.py), as module:Class."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ohgw_bench.space import SearchSpace
from ohgw_bench.tasks.base import Fidelity
from ohgw_bench.tasks.digits import DigitsTask


class BadCostDigits(DigitsTask):
    """cost() returns 0, NaN or a negative number (``kind``): the simulated clock would never move."""

    def __init__(self, data_dir: Any = None, kind: str = "zero", **kw: Any):
        super().__init__(data_dir, **kw)
        self.kind = kind

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        return {"zero": 0.0, "nan": float("nan"), "negative": -1.0}[self.kind]


class BadEvaluateDigits(DigitsTask):
    """evaluate() returns a string or None (``kind``) instead of a dict of metrics."""

    def __init__(self, data_dir: Any = None, kind: str = "str", **kw: Any):
        super().__init__(data_dir, **kw)
        self.kind = kind

    def evaluate(self, state: Any) -> Any:
        return "0.5" if self.kind == "str" else None


class EmptySpaceDigits(DigitsTask):
    @property
    def space(self) -> SearchSpace:
        return SearchSpace([])


class InvertedFidelityDigits(DigitsTask):
    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("epochs", 5, 2, "epochs")


class BadModeDigits(DigitsTask):
    mode = "best"  # type: ignore[assignment]


class NoEvaluateTask(DigitsTask):
    """Looks like an adapter but leaves evaluate() abstract (as if its author forgot it)."""


NoEvaluateTask.__abstractmethods__ = frozenset({"evaluate"})  # what ABCMeta sets for a missing method


class HangingDigits(DigitsTask):
    """train() sleeps ``seconds`` (a hang, for the per-trial time limit)."""

    def __init__(self, data_dir: Any = None, seconds: float = 3600.0, **kw: Any):
        super().__init__(data_dir, **kw)
        self.seconds = seconds

    def train(self, state: Any, fidelity: int) -> None:
        time.sleep(self.seconds)
        super().train(state, fidelity)
