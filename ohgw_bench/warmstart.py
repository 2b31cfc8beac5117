"""Warm-start variants (placeholder until the hyper-gradient engine lands: only 'none' works)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class WarmStartSettings:
    variant: str = "none"
    eta_h: float = 1e-3
    step_rule: str = "raw"
    rho: float = 0.05
    horizon: int | None = None
    mode: str = "exact"
    split_batch: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return self.variant


class WarmStart:
    def __init__(self, settings: WarmStartSettings, task: Any, seed: int):
        self.settings = settings
        self.task = task

    def apply(self, config: dict[str, Any], trial_seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.settings.variant != "none":
            raise NotImplementedError("the hyper-gradient engine has not landed yet")
        return dict(config), {"variant": "none", "applied": False, "sim_seconds": 0.0, "reason": "variant none"}
