"""Conformance checks every registered task must pass, shipped as library code (Optuna's style).

A task author runs them on their own adapter with::

    from ohgw_bench.testing import check_task
    check_task(MyTask())

and the test suite runs them over the whole registry (``tests/test_conformance.py``). Each
check raises :class:`ConformanceError` with a sentence saying what the adapter got wrong.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ohgw_bench.space import SearchSpace
from ohgw_bench.tasks.base import Task


class ConformanceError(AssertionError):
    """A task adapter breaks the protocol; the message says how."""


def _fail(task: Task, msg: str) -> None:
    raise ConformanceError(f"task {task.id or type(task).__name__}: {msg}")


def check_declaration(task: Task) -> None:
    """Class attributes and search space are consistent."""
    if task.mode not in ("min", "max"):
        _fail(task, f"mode must be 'min' or 'max', got {task.mode!r}")
    if task.hypergrad_method not in ("autograd", "finite_difference", "none"):
        _fail(task, f"hypergrad_method {task.hypergrad_method!r} is not autograd, finite_difference or none")
    if not isinstance(task.space, SearchSpace) or len(task.space) == 0:
        _fail(task, "space must be a non-empty SearchSpace")
    task.space.validate(task.space.default_config())
    f = task.fidelity
    if not (1 <= f.min <= f.max):
        _fail(task, f"fidelity range {f.min}..{f.max} is not 1 <= min <= max")
    if task.fidelity.name in task.space:
        _fail(task, f"fidelity key {f.name!r} collides with a hyperparameter")
    if task.hypergrad_method == "autograd" and not task.space.movable("autograd"):
        _fail(task, "hypergrad_method is autograd but no hyperparameter has grad='autograd'")
    if not (task.reference_flops_per_second > 0 and task.default_budget > 0):
        _fail(task, "reference_flops_per_second and default_budget must be positive")


def _metrics_ok(task: Task, metrics: dict[str, float]) -> None:
    for key in (task.metric, task.test_metric):
        if key not in metrics:
            _fail(task, f"evaluate() must return {key!r}; got keys {sorted(metrics)}")
        if not isinstance(metrics[key], float | int) or not math.isfinite(metrics[key]):
            _fail(task, f"evaluate()[{key!r}] = {metrics[key]!r} is not a finite number")


def check_train_evaluate(task: Task, seed: int = 0) -> dict[str, float]:
    """A fresh state trains to the first checked fidelity and evaluates to finite numbers."""
    f1, _ = task.conformance_fidelities
    state = task.init_state(task.space.default_config(), seed)
    if getattr(state, "fidelity", None) != 0:
        _fail(task, "init_state() must return a state with fidelity == 0")
    task.train(state, f1)
    if state.fidelity != f1:
        _fail(task, f"train(state, {f1}) left state.fidelity at {state.fidelity}")
    metrics = task.evaluate(state)
    _metrics_ok(task, metrics)
    return metrics


def _same(a: dict[str, float], b: dict[str, float], keys: tuple[str, ...], tol: float) -> bool:
    return all(abs(float(a[k]) - float(b[k])) <= tol * max(1.0, abs(float(a[k]))) for k in keys)


def check_save_load_continue(task: Task, seed: int = 0, tol: float = 1e-6) -> None:
    """Train to f1, save, load, continue to f2 == train straight to f2 (what pause/resume needs)."""
    f1, f2 = task.conformance_fidelities
    config = task.space.default_config()
    straight = task.init_state(config, seed)
    task.train(straight, f2)
    expected = task.evaluate(straight)
    paused = task.init_state(config, seed)
    task.train(paused, f1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.ckpt"
        task.save(paused, path)
        resumed = task.load(path)
    if resumed.fidelity != f1:
        _fail(task, f"load() returned fidelity {resumed.fidelity}, saved at {f1}")
    task.train(resumed, f2)
    got = task.evaluate(resumed)
    keys = (task.metric, task.test_metric)
    if not _same(expected, got, keys, tol):
        _fail(task, f"save/load/continue to {f2} gave {[got[k] for k in keys]}, "
                    f"uninterrupted training gave {[expected[k] for k in keys]}")


def check_determinism(task: Task, seed: int = 3, tol: float = 1e-6) -> None:
    """The same config and seed give the same metrics (paired seeds depend on it)."""
    f1, _ = task.conformance_fidelities
    results = []
    for _ in range(2):
        state = task.init_state(task.space.default_config(), seed)
        task.train(state, f1)
        results.append(task.evaluate(state))
    if not _same(results[0], results[1], (task.metric, task.test_metric), tol):
        _fail(task, f"two runs with seed {seed} differ: {results[0]} vs {results[1]}")


def check_cost(task: Task) -> None:
    """The simulated cost is positive, deterministic and additive over fidelity intervals."""
    f1, f2 = task.conformance_fidelities
    config = task.space.default_config()
    whole = task.cost(config, 0, f2)
    parts = task.cost(config, 0, f1) + task.cost(config, f1, f2)
    if not (whole > 0 and math.isfinite(whole)):
        _fail(task, f"cost(config, 0, {f2}) = {whole} is not positive and finite")
    if abs(whole - parts) > 1e-6 * whole:
        _fail(task, f"cost is not additive: cost(0,{f2})={whole} but the parts sum to {parts}")
    if task.cost(config, 0, f2) != whole:
        _fail(task, "cost is not deterministic")


def check_warm_start(task: Task, seed: int = 0) -> dict[str, Any]:
    """An OHGW warm-start (normalized step) returns an in-bounds config and a complete record."""
    from ohgw_bench.warmstart import WarmStart, WarmStartSettings

    settings = WarmStartSettings(variant="ohgw", step_rule="normalized")
    ws = WarmStart(settings, task, seed=seed)
    config = task.space.default_config()
    new_config, record = ws.apply(config, seed)
    task.space.validate(new_config)
    for key in ("variant", "applied", "sim_seconds"):
        if key not in record:
            _fail(task, f"warm-start record lacks {key!r}: {sorted(record)}")
    for p in task.space:
        if not p.movable and new_config[p.name] != config[p.name]:
            _fail(task, f"warm-start moved {p.name!r}, which is not movable")
    if task.hypergrad_method == "autograd" and not record.get("applied"):
        _fail(task, f"autograd warm-start was not applied: {record.get('reason')}")
    return record


CHECKS: tuple[Callable[..., Any], ...] = (
    check_declaration,
    check_train_evaluate,
    check_determinism,
    check_save_load_continue,
    check_cost,
    check_warm_start,
)


def check_task(task: Task, quiet: bool = False) -> None:
    """Run every conformance check on ``task`` (prepares its data first).

    On success it prints what it checked, one line per check (``quiet=True`` prints nothing), so a
    pass is visibly a pass of these checks and not of nothing; a failure raises ConformanceError.
    """
    task.prepare()
    for check in CHECKS:
        check(task)
    if not quiet:
        lines = [f"task {task.id or type(task).__name__}: {len(CHECKS)} conformance checks passed"]
        for check in CHECKS:
            what = (check.__doc__ or "").strip().splitlines()[0].rstrip(".")
            lines.append(f"  {check.__name__}: {what[:1].lower()}{what[1:]}")
        print("\n".join(lines))
