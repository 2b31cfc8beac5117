"""The table task with its metrics perturbed in the 7th significant digit: another CPU, emulated.

Float32 training on another CPU model changes a trial's metrics by 3e-8 to 1e-6 relative; the
table's closed-form curves are exact, so ``perturb=1e-7`` multiplies every reported value by
``1 + perturb * u`` with ``u`` in [-1, 1] drawn from a hash of (config, epoch, seed). Used by
``tests/test_dyhpo_repro.py`` to see whether a scheduler's decisions survive it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ohgw_bench.options import Option
from ohgw_bench.tasks.table import TableState, TableTask


class PerturbedTable(TableTask):
    """``table-curves-v1`` whose reported values carry a deterministic relative perturbation."""

    option_declarations = TableTask.option_declarations + (
        Option("perturb", float, 0.0, "relative size of the perturbation of each reported value", low=0.0, high=1e-3),
    )

    def __init__(self, data_dir: Any = None, perturb: float = 0.0, **options: Any):
        super().__init__(data_dir, **options)
        self.perturb = float(perturb)
        self.options["perturb"] = self.perturb

    def evaluate(self, state: TableState) -> dict[str, float]:
        out = super().evaluate(state)
        if not self.perturb:
            return out
        digest = hashlib.sha256(f"{sorted(state.config.items())}|{state.fidelity}|{state.seed}".encode()).digest()
        u = int.from_bytes(digest[:8], "little") / 2**64 * 2.0 - 1.0
        return {k: v * (1.0 + self.perturb * u) for k, v in out.items()}
