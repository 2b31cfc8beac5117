"""A study: one (task, scheduler, warm-start variant, seed, budget), run to its budget and recorded.

:func:`run_study` is the pipeline; each part has its module:

- the settings, resolved once (:mod:`ohgw_bench.spec`), and the checks that need the task
  (:func:`prepare`);
- the folder's lifecycle: skip, restart or refuse, provenance, partial.json (:mod:`ohgw_bench.folder`);
- the scheduler (:func:`build_scheduler`, registry :mod:`ohgw_bench.baselines`), warm-started,
  with the trial plans that pair seeds across arms (:mod:`ohgw_bench.trial_plan`);
- the backend's execution strategy (:mod:`ohgw_bench.backends`);
- the Tuner (:mod:`ohgw_bench.tuning`) and its callback, the recorder (:mod:`ohgw_bench.recorder`);
- the summary (:mod:`ohgw_bench.summary`, written by :func:`finish`).

The resolved study is saved next to the results (SMAC's scenario style): a folder always says
exactly what produced it, and a re-run of the same study either skips a finished one or
restarts an unfinished one; a different study for the same folder is refused.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from ohgw_bench import results, validate
from ohgw_bench.errors import UserError
from ohgw_bench.folder import claim, mark_ended, open_writer, provenance
from ohgw_bench.spec import ResolvedStudy, StudySpec, spec_from_dict
from ohgw_bench.summary import summarize
from ohgw_bench.tuning import tune

__all__ = ["ResolvedStudy", "StudySpec", "run_study", "spec_from_dict"]


def seed_everything(seed: int) -> None:
    """Seed the global generators the schedulers use (Syne Tune's random searcher uses numpy's)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def cheapest_unit_cost(task: Any) -> float:
    """Simulated seconds of one fidelity unit for the cheapest of a few probe configs.

    The probes are the default config and the configs with every hyperparameter at its lower
    or upper bound; cost models are monotone in size-like hyperparameters, so this is the
    cheapest unit a scheduler can start. A budget below it can never produce a report.
    """
    space = task.space
    probes = [space.default_config()]
    for side in ("low", "high"):
        probes.append({p.name: (int(getattr(p, side)) if p.integer else float(getattr(p, side))) for p in space})
    return min(validate.check_cost(task, task.cost(c, 0, 1), 0, 1) for c in probes)


def warm_up(warm: Any, task: Any, seed: int) -> dict[str, Any] | None:
    """Run the warm-start's measured call once, unrecorded, before the study's first trial.

    The first hyper-gradient of a process pays one-time costs (lazy imports, the FLOP
    counter's and autograd's first use, allocator growth, data the task loads lazily): measured
    inside the first trial's record they made its ``ratio_time`` ~100x the others'. So the
    same call (same measuring modes) runs here on the default config with a throwaway seed;
    its wall time is kept apart in study.json (``warm_start_warmup``) and every record's
    ``cost.seconds``/``ratio_time`` is a steady-state cost. Global RNGs are put back, so the
    study's trials are the same with or without it. Errors are left to the real calls.
    """
    from ohgw_bench.cost import measure
    from ohgw_bench.hypergrad import hypergradient
    from ohgw_bench.warmstart import _global_rngs_kept

    settings = warm.settings
    method = getattr(task, "hypergrad_method", "none")
    if settings.variant == "none" or method == "none":
        return None
    config = task.space.default_config()
    throwaway = seed + 10**9
    t0 = time.perf_counter()
    try:
        with _global_rngs_kept():
            if method == "surrogate":
                task.surrogate_gradient(config, task.fidelity.min)
            elif method == "autograd":
                measure(lambda: hypergradient(task.hyper_problem(config, throwaway, warm.horizon, settings.split_batch),
                                              task.space, horizon=warm.horizon, mode=settings.mode,
                                              on_unreachable="flag"))
            else:
                objective, _ = task.hyper_objective(config, throwaway)
                measure(lambda: objective(config))
    except Exception as e:  # noqa: BLE001 - the trials' own calls record any error
        return {"seconds": time.perf_counter() - t0, "method": method, "error": f"{type(e).__name__}: {e}"}
    return {"seconds": time.perf_counter() - t0, "method": method, "finished_at": time.time()}


def prepare(spec: StudySpec) -> tuple[ResolvedStudy, Any, Any]:
    """(resolved study, prepared task, its warm-start): every check that needs no training, before
    any folder is touched. The warm-start is the study's own (it loads the calibration the
    calibrated clock needs, so a missing one is refused here)."""
    from ohgw_bench.warmstart import WarmStart, check_supported

    resolved, task = spec.resolve()
    warm = WarmStart(resolved.warm_start, task, seed=resolved.seed + 7_777)
    check_supported(resolved.warm_start, task)
    validate.check_horizon(resolved.warm_start, task, resolved.seed)
    if resolved.backend == "simulated":
        unit = cheapest_unit_cost(task)
        if resolved.budget < unit:
            raise UserError(f"{spec.where('budget')} {resolved.budget:g} s is below the cost of one fidelity unit of "
                            f"{task.id} ({unit:.3g} s simulated for the cheapest config): the study could not report "
                            "anything")
    results.check_writable(resolved.results_dir)
    return resolved, task, warm


def metadata(spec: ResolvedStudy, task: Any, clock: str) -> dict[str, Any]:
    """study.json beside the request (``spec``): the resolved study, its identity and the run's provenance."""
    return {"resolved": spec.as_dict(), "identity": spec.identity(), "study_id": spec.study_id, "task": task.describe(),
            "clock": clock, "budget": spec.budget, "tau": spec.tau, **provenance()}


def build_scheduler(spec: ResolvedStudy, task: Any, folder: Path, warm: Any, plans: Any) -> Any:
    """The study's scheduler, warm-started: by itself (SMAC) or wrapped by WarmStarted."""
    from ohgw_bench import baselines
    from ohgw_bench.baselines.warmstarted import WarmStarted

    ctx = baselines.SchedulerContext.for_task(
        task, spec.seed, n_workers=spec.n_workers, output_dir=folder / "scheduler",
        options=dict(spec.scheduler_options), warm_start=warm, plans=plans)
    base = baselines.instantiate(spec.scheduler, ctx)
    if getattr(base, "applies_warm_start", False):
        return base
    return WarmStarted(base, warm, task.space, spec.seed, plans)


def finish(spec: ResolvedStudy, task: Any, execution: Any, recorder: Any, wall0: float) -> dict[str, Any]:
    """Apply the failure policy, then write summary.json (or partial.json with the reason)."""
    folder = Path(spec.folder)
    writer = recorder.writer
    why = recorder.too_many_failures(spec.max_failures, spec.max_consecutive_failures, spec.failure_sources)
    if why is not None:
        mark_ended(writer, "failure limit", f"stopped: {why}")
        writer.close()
        last = next((r.get("ohgw_error") for r in reversed(recorder.rows) if r.get("ohgw_error")), None)
        raise UserError(f"study stopped: {why}; last error: {last}; rows in {folder / results.REPORTS_FILE}")
    ended = "budget spent" if execution.budget_spent() else "scheduler exhausted"
    if not recorder.rows:
        why = execution.no_reports(ended)
        mark_ended(writer, ended, f"not complete: {why}")
        writer.close()
        raise UserError(f"study not complete: {why}")
    summary = summarize(recorder.rows, task, spec)
    summary.update({"ended": ended, "study_id": spec.study_id, "folder": str(folder), "wall_seconds": time.time() - wall0,
                    "backend": spec.backend, "scheduler": spec.scheduler,
                    "task": task.id, "variant": spec.variant_label, "seed": spec.seed,
                    "peak_rss_bytes": results.peak_rss_bytes()})
    try:
        writer.finish(summary)
    except OSError as e:
        raise UserError(f"cannot write results in {folder}: {e.strerror or e}") from None
    return summary


def run_study(spec: StudySpec, progress: bool = True, overwrite: bool = False, verbose: bool = False) -> dict[str, Any]:
    """Run one study to its budget and return its summary (also written to summary.json).

    The parts, in order: the resolved study, its task and warm-start (:func:`prepare`), the
    folder (skip a finished study, restart an unfinished one), metadata, the trial plans, the
    scheduler, the backend's execution strategy, the recorder, the Tuner (:func:`tune`) and the
    summary (:func:`finish`). ``progress`` shows the progress bar on stderr; ``verbose`` lets
    Syne Tune's console output and logging through. While it runs, the study folder is locked:
    a second process on the same study gets a one-line StudyLocked error.
    """
    results.reset_peak_rss()  # a pool worker's earlier, larger study must not set this one's peak
    resolved, task, warm = prepare(spec)
    with validate.study_lock(Path(resolved.folder)):  # a second process on the same study is refused (StudyLocked)
        return _run_locked(resolved, task, warm, progress, overwrite, verbose)


def _run_locked(spec: ResolvedStudy, task: Any, warm: Any, progress: bool, overwrite: bool,
                verbose: bool) -> dict[str, Any]:
    """The part of :func:`run_study` that touches the study folder, run while holding its lock."""
    import torch

    from ohgw_bench.backends import EXECUTIONS, make_execution
    from ohgw_bench.recorder import StudyRecorder
    from ohgw_bench.trial_plan import TrialPlans

    folder = Path(spec.folder)
    done = claim(folder, spec, overwrite)
    if done is not None:
        return {**done, "skipped": True, "folder": done.get("folder", str(folder))}

    torch.set_num_threads(1)
    seed_everything(spec.seed)
    logging.getLogger("syne_tune").setLevel(logging.INFO if verbose else logging.ERROR)
    meta = metadata(spec, task, EXECUTIONS[spec.backend].clock_kind)
    plans = TrialPlans(spec.seed)
    meta["warm_start_warmup"] = warm_up(warm, task, spec.seed)
    scheduler = build_scheduler(spec, task, folder, warm, plans)
    os.environ["SYNETUNE_FOLDER"] = str(folder / "syne-tune")
    execution = make_execution(spec, task, plans, spec.budget)
    writer = open_writer(folder, spec.request.as_dict(), meta)
    recorder = StudyRecorder(writer, task, plans, execution, spec.budget, progress=progress)
    wall0 = time.time()
    tune(spec, scheduler, execution, recorder, folder, verbose=verbose)
    return finish(spec, task, execution, recorder, wall0)
