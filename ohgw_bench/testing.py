"""Conformance checks every registered task must pass, shipped as library code (Optuna's style).

A task author runs them on their own adapter with::

    from ohgw_bench.testing import check_task
    check_task(MyTask())

and the test suite runs them over the whole registry (``tests/test_conformance.py``). Each
check raises :class:`ConformanceError` with a sentence saying what the adapter got wrong.

Schedulers have the same: ``check_scheduler("asha")`` (or ``"my_module:build"``) runs a
scheduler on the in-memory ``table`` task in the none and ohgw arms; the suite runs it over the
scheduler registry (``tests/test_scheduler_conformance.py``).
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
    if task.hypergrad_method not in ("autograd", "finite_difference", "surrogate", "none"):
        _fail(task, f"hypergrad_method {task.hypergrad_method!r} is not autograd, finite_difference, surrogate or none")
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
    if task.hypergrad_method == "surrogate" and not task.space.movable("surrogate"):
        _fail(task, "hypergrad_method is surrogate but no hyperparameter has grad='surrogate'")
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
        _fail(task, f"two runs with seed {seed} differ: {results[0]} vs {results[1]}; the usual causes: the global "
                    f"RNG (torch.manual_seed / np.random / random instead of a generator seeded from the trial's "
                    f"seed), unseeded dropout masks or augmentation, data order (a shuffle without a seeded "
                    f"generator), or nondeterministic kernels")


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
    if task.hypergrad_method in ("autograd", "surrogate") and not record.get("applied"):
        _fail(task, f"{task.hypergrad_method} warm-start was not applied: {record.get('reason')}")
    unreachable = list(record.get("unreachable") or [])
    if task.hypergrad_method == "autograd" and unreachable:
        _fail(task, f"hyperparameter(s) {', '.join(unreachable)} declared grad='autograd' never reach the "
                    f"lookahead's validation loss (their hyper-gradient does not exist): pass them into the loss "
                    f"or optimiser as the tensors the hyper-problem gives (float() or .item() cuts the graph), or "
                    f"declare them grad='finite_difference' or not movable")
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


# ------------------------------------------------------------------------------------------
# Scheduler conformance: the same idea for schedulers, on the in-memory table task.

_CLOCK_FREE_KEYS = ("ohgw_trial_id", "ohgw_time", "ohgw_worker_time", "ohgw_fidelity", "ohgw_metric",
                    "ohgw_status", "ohgw_decision", "ohgw_config", "ohgw_proposed")


def _sched_fail(name: str, msg: str) -> None:
    raise ConformanceError(f"scheduler {name}: {msg}")


def check_scheduler_options(name: str) -> None:
    """The scheduler declares its options as :class:`~ohgw_bench.options.Option` (defaults valid)
    and refuses an undeclared one with a one-line UserError."""
    from ohgw_bench import baselines
    from ohgw_bench.errors import UserError
    from ohgw_bench.options import Option

    declared = baselines.declared_options(name)
    for opt in declared:
        if not isinstance(opt, Option):
            _sched_fail(name, f"declares {opt!r}, which is not an ohgw_bench.options.Option")
        opt.coerce(opt.default, f"scheduler {name!r} default")
    baselines.validate_options(name, {})
    try:
        baselines.validate_options(name, {"surely_not_an_option": 1})
    except UserError as e:
        if "\n" in str(e) or "surely_not_an_option" not in str(e):
            _sched_fail(name, f"an unknown option gave an unclear error: {e}")
    else:
        _sched_fail(name, "accepted the undeclared option 'surely_not_an_option'")


def _run(name: str, variant: str, backend: str, seed: int, budget: float, n_workers: int, task: str,
         task_options: dict[str, Any], options: dict[str, Any], root: Path, experiment: str
         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from ohgw_bench import results
    from ohgw_bench.study import StudySpec, run_study
    from ohgw_bench.warmstart import WarmStartSettings

    ws = WarmStartSettings(variant=variant, step_rule="normalized") if variant != "none" else WarmStartSettings()
    spec = StudySpec(task=task, scheduler=name, warm_start=ws, seed=seed, budget=budget, n_workers=n_workers,
                     backend=backend, experiment=experiment, results_dir=str(root), task_options=task_options,
                     scheduler_options=options)
    summary = run_study(spec, progress=False, overwrite=True)
    rows = list(results.iter_reports(summary["folder"]))
    return summary, rows


def check_resume_config(name: str, rows: list[dict[str, Any]]) -> None:
    """Every report of a trial carries the config it started with, and a resumed trial goes on
    from where it paused (its fidelity only grows): pausing must not change a config."""
    first: dict[int, dict[str, Any]] = {}
    last_fid: dict[int, int] = {}
    for r in rows:
        t = r["ohgw_trial_id"]
        if r.get("ohgw_status") in ("failed", "nan"):
            continue
        if t in first and r["ohgw_config"] != first[t]:
            _sched_fail(name, f"trial {t} reported config {r['ohgw_config']} after starting with {first[t]}")
        first.setdefault(t, r["ohgw_config"])
        fid = r.get("ohgw_fidelity")
        if fid is not None:
            if t in last_fid and fid <= last_fid[t]:
                _sched_fail(name, f"trial {t} reported fidelity {fid} after {last_fid[t]}: a resume restarted it")
            last_fid[t] = fid


def check_scheduler(name: str, *, backends: tuple[str, ...] | None = None, seed: int = 0, budget: float = 40.0,
                    n_workers: int = 4, task: str = "table", task_options: dict[str, Any] | None = None,
                    options: dict[str, Any] | None = None, local_budget: float = 20.0, min_budget_used: float = 0.9,
                    results_dir: str | Path | None = None) -> dict[str, Any]:
    """Run scheduler ``name`` (registered or ``module:function``) in the none and ohgw arms on the
    table task and check what every scheduler must do (raises :class:`ConformanceError`):

    - its options are declared and an undeclared one is refused;
    - on each backend it declares (``backends`` narrows them), each arm uses at least
      ``min_budget_used`` of its worker budget (budget x workers) and reports something;
    - the first proposal is the same in both arms for the same seed (the warm-start acts after
      the scheduler proposes, so a paired comparison starts from the same config);
    - a paused trial resumes with the config it started with;
    - on the simulated backend, the same seed gives the same reports (the clock-free columns).

    The local backend runs real processes on the wall clock (``local_budget`` seconds per arm),
    so determinism is checked only on the simulated one. Returns the fractions of budget used.
    """
    from ohgw_bench import baselines

    check_scheduler_options(name)
    declared = baselines.spec(name).backends
    chosen = tuple(b for b in (backends or declared) if b in declared)
    task_options = {"max_epochs": 9} if task_options is None and task == "table" else dict(task_options or {})
    options = dict(options or {})
    used: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(results_dir) if results_dir is not None else Path(tmp)
        for backend in chosen:
            b = budget if backend == "simulated" else local_budget
            runs = {}
            for variant in ("none", "ohgw"):
                summary, rows = _run(name, variant, backend, seed, b, n_workers, task, task_options, options,
                                     root, f"check-{backend}")
                if not rows:
                    _sched_fail(name, f"{backend}/{variant}: the study made no reports")
                frac = float(summary["budget_used_fraction"])  # written by every study (run_study)
                used[f"{backend}/{variant}"] = frac
                if frac < min_budget_used:
                    _sched_fail(name, f"{backend}/{variant}: used {100 * frac:.1f}% of its worker budget "
                                      f"(at least {100 * min_budget_used:.0f}% expected); {len(rows)} reports")
                check_resume_config(name, rows)
                runs[variant] = rows
            first = {v: next(r["ohgw_proposed"] for r in rows if r["ohgw_trial_id"] == 0) for v, rows in runs.items()}
            if first["none"] != first["ohgw"]:
                _sched_fail(name, f"{backend}: first proposal differs between arms with seed {seed}: "
                                  f"{first['none']} vs {first['ohgw']}")
            if backend == "simulated":
                _, again = _run(name, "none", backend, seed, b, n_workers, task, task_options, options,
                                root, f"check-{backend}-again")
                a = [tuple(str(r.get(k)) for k in _CLOCK_FREE_KEYS) for r in runs["none"]]
                c = [tuple(str(r.get(k)) for k in _CLOCK_FREE_KEYS) for r in again]
                if a != c:
                    at = next((i for i, (x, y) in enumerate(zip(a, c)) if x != y), min(len(a), len(c)))
                    _sched_fail(name, f"the same seed gave different reports (first difference at row {at}: "
                                      f"{a[at] if at < len(a) else None} vs {c[at] if at < len(c) else None})")
    return used
