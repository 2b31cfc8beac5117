"""A study: one (task, scheduler, warm-start variant, seed, budget), run to its budget and recorded.

The study is resolved once (:meth:`ohgw_bench.spec.StudySpec.resolve`) and the resolved study is
saved next to the results (SMAC's scenario style): a folder always says exactly what produced
it, and a re-run of the same study either skips a finished one or restarts an unfinished one; a
different study for the same folder is refused.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ohgw_bench import results, validate
from ohgw_bench.errors import UserError
from ohgw_bench.spec import ResolvedStudy, StudySpec, spec_from_dict

__all__ = ["ResolvedStudy", "StudySpec", "run_study", "spec_from_dict"]


@functools.lru_cache(maxsize=1)
def _git_revision() -> str | None:
    """The checkout's commit (once per process: a pool worker runs many studies)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def _versions_cached() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("ohgw_bench", "torch", "syne-tune", "numpy", "smac", "optuna", "xgboost", "transformers", "stable-baselines3"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return tuple(out.items())


def _versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the records (looked up once per process)."""
    return dict(_versions_cached())


def _machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def seed_everything(seed: int) -> None:
    """Seed the global generators the schedulers use (Syne Tune's random searcher uses numpy's)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


#: wall seconds between two progress lines when stderr is a file or a pipe (a log), not a terminal
LOG_PROGRESS_SECONDS = 10.0


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LogProgress:
    """Progress for a log (Slurm, CI, ``2> log``): a plain line every ``LOG_PROGRESS_SECONDS``
    of wall time and one at the end, instead of a bar's hundreds of redraws (``--quiet``: none).
    Offers the part of tqdm's interface the recorder uses."""

    def __init__(self, desc: str, total: float):
        self.desc, self.total, self.n = desc, total, 0.0
        self.start = self.last_print_t = time.time()
        self._postfix = "starting (the first report can take a while: data, first trial)"
        self._line()

    def set_postfix_str(self, s: str, refresh: bool = False) -> None:
        self._postfix = s

    def _line(self) -> None:
        pct = 100.0 * self.n / self.total if self.total else 100.0
        print(f"{self.desc}: {pct:3.0f}% {self.n:.0f}/{self.total:.0f}s study clock, "
              f"{time.time() - self.start:.0f} s wall, {self._postfix}", file=sys.stderr, flush=True)
        self.last_print_t = time.time()

    def refresh(self) -> None:
        if time.time() - self.last_print_t >= LOG_PROGRESS_SECONDS:
            self._line()

    def close(self) -> None:
        self._line()


class StudyRecorder:
    """Tuner callback: writes one row per report through results.StudyWriter and shows progress.

    The clock, the worker time and the per-result hook come from the study's
    :class:`~ohgw_bench.backends.Execution`; each row's proposed config and warm-start record
    come from the trial's plan (:mod:`ohgw_bench.trial_plan`).
    """

    def __init__(self, writer: results.StudyWriter, task: Any, plans: Any, execution: Any, budget: float,
                 progress: bool = True):
        self.writer = writer
        self.task = task
        self.plans = plans
        self.execution = execution
        self.clock: Callable[[], float] = execution.clock
        self.busy: Callable[[], float] = execution.busy
        self.budget = budget
        self.errors: Mapping[int, str] = execution.errors
        self.start_wall = time.time()
        self.rows: list[dict[str, Any]] = []
        self.trials: set[int] = set()  # trials with at least one row: what the summary counts
        self._failed_written: set[int] = set()
        self._bar: Any = None
        self._progress = progress
        self._best: float | None = None
        self.failed_trials: set[int] = set()
        self.consecutive_failures = 0

    # Syne Tune TunerCallback protocol -------------------------------------------------
    def on_tuning_start(self, tuner: Any) -> None:
        if self._progress and not _isatty(sys.stderr):
            self._bar = LogProgress(self.task.id, round(self.budget, 1))
        elif self._progress:
            from tqdm import tqdm

            self._bar = tqdm(total=round(self.budget, 1), unit="s", desc=f"{self.task.id}", file=sys.stderr,
                             mininterval=1.0, bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n:.0f}/{total:.0f}s "
                             "[{elapsed}<{remaining}] {postfix}")

    def on_tuning_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def on_loop_start(self) -> None:
        pass

    def on_loop_end(self) -> None:
        if self._bar is not None:
            self._bar.n = min(self.budget, round(self.clock(), 1))
            self._bar.set_postfix_str(f"trials={len(self.trials)} best={self._best}", refresh=False)
            self._bar.refresh() if time.time() - getattr(self._bar, "last_print_t", 0) > 1.0 else None

    def too_many_failures(self, max_failures: int, max_consecutive: int) -> str | None:
        """Why the study must stop because trials keep failing, or None."""
        if len(self.failed_trials) > max_failures:
            return f"{len(self.failed_trials)} trials failed (more than --max-failures {max_failures})"
        if self.consecutive_failures >= max_consecutive:
            return f"{self.consecutive_failures} trials in a row failed (--max-consecutive-failures {max_consecutive})"
        return None

    def on_fetch_status_results(self, trial_status_dict: Mapping[int, Any], new_results: list) -> None:
        from syne_tune.backend.trial_status import Status

        for trial_id, (trial, status) in trial_status_dict.items():
            if status == Status.failed and trial_id not in self._failed_written:
                self._failed_written.add(trial_id)
                self._write(trial, {}, "failed", None, error=self.errors.get(trial_id, "trial failed"))

    def on_trial_complete(self, trial: Any, result: dict[str, Any]) -> None:
        pass

    def on_start_trial(self, trial: Any) -> None:
        pass

    def on_resume_trial(self, trial: Any) -> None:
        pass

    def on_tuning_sleep(self, sleep_time: float) -> None:
        pass

    def on_trial_result(self, trial: Any, status: str, result: dict[str, Any], decision: str) -> None:
        from ohgw_bench.backends import ERROR_KEY, FAILURE_KEY

        self.execution.on_result(trial.trial_id, result)
        fid = result.get(self.task.fidelity.name)
        value = result.get(self.task.metric)
        target = trial.config.get(self.task.fidelity.name, self.task.fidelity.max)
        if FAILURE_KEY in result:
            self._write(trial, {k: v for k, v in result.items() if k != self.task.metric}, result[FAILURE_KEY],
                        decision, error=result.get(ERROR_KEY), reported=value)
            return
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            state = "nan"
        elif decision == "STOP" and fid is not None and fid < target:
            state = "stopped"
        elif decision == "PAUSE":
            state = "paused"
        elif fid is not None and fid >= target:
            state = "completed"
        else:
            state = "ok"
        self._write(trial, result, state, decision)

    # ------------------------------------------------------------------------------------
    def _write(self, trial: Any, result: Mapping[str, Any], status: str, decision: str | None,
               error: str | None = None, reported: float | None = None) -> None:
        from ohgw_bench.backends import task_config

        plan = self.plans.get(trial.trial_id)
        proposed, record = (plan.proposed, plan.record) if plan is not None else (None, None)
        config = task_config(self.task, trial.config)
        value = result.get(self.task.metric)
        row = {
            "ohgw_trial_id": trial.trial_id,
            "ohgw_time": self.clock(),
            "ohgw_time_wall": time.time() - self.start_wall,
            "ohgw_worker_time": self.busy(),
            "ohgw_fidelity": result.get(self.task.fidelity.name),
            "ohgw_metric": value,
            "ohgw_test_metric": result.get(self.task.test_metric),
            "ohgw_status": status,
            "ohgw_decision": decision,
            "ohgw_config": config,
            "ohgw_proposed": task_config(self.task, proposed) if proposed else config,
            "ohgw_warm_start": record,
        }
        if error is not None:
            row["ohgw_error"] = error
            row["ohgw_reported_to_scheduler"] = reported
        if status in ("failed", "nan"):
            if trial.trial_id not in self.failed_trials:
                self.failed_trials.add(trial.trial_id)
                self.consecutive_failures += 1
        elif status in ("ok", "completed", "paused", "stopped"):
            self.consecutive_failures = 0
        skip = {self.task.metric, self.task.test_metric, self.task.fidelity.name, "ohgw_failure", "ohgw_error"}
        row.update({k: v for k, v in result.items() if k not in skip and not k.startswith("st_")})
        self.rows.append(self.writer.append(row))
        self.trials.add(trial.trial_id)
        if value is not None and isinstance(value, int | float) and math.isfinite(value):
            better = self._best is None or (value < self._best if self.task.mode == "min" else value > self._best)
            if better:
                self._best = round(float(value), 5)


ENDED = ("budget spent", "scheduler exhausted", "failure limit", "interrupted", "adapter error")
"""How a study ended. Only the first two are complete studies (summary.json); the other two
leave partial.json (with the same ``ended`` key) and the study restarts when run again."""


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


def mark_ended(writer: results.StudyWriter, ended: str, reason: str) -> None:
    """partial.json for a study that is not complete: how it ended, why, and how far it got."""
    results.write_json_atomic(writer.folder / results.PARTIAL_FILE,
                              {"status": "partial", "ended": ended, "reason": reason, "reports": writer.seq})


def summarize(rows: list[dict[str, Any]], task: Any, spec: ResolvedStudy) -> dict[str, Any]:
    """The study's headline numbers from its rows (the analysis recomputes all of them from rows)."""
    from ohgw_bench import metrics

    budget, tau = spec.budget, spec.tau

    def num(x: Any) -> float:
        return float(x) if isinstance(x, int | float) else math.nan

    times = [num(r["ohgw_time"]) for r in rows]
    values = [num(r.get("ohgw_metric")) for r in rows]
    final = metrics.final_best(times, values, [num(r.get("ohgw_test_metric")) for r in rows], task.mode, budget)
    t_tau, reached = metrics.time_to_target(times, values, tau, task.mode, budget)
    best = None if math.isnan(final["best"]) else final["best"]
    best_test = None if math.isnan(final["test"]) else final["test"]
    ws = [r["ohgw_warm_start"] for r in rows if r.get("ohgw_warm_start")]
    per_trial = {r["ohgw_trial_id"]: r["ohgw_warm_start"] for r in rows if r.get("ohgw_warm_start")}
    ws_sim = sum(float(w.get("sim_seconds") or 0.0) for w in per_trial.values())
    ws_wall = sum(float((w.get("cost") or {}).get("seconds") or 0.0) for w in per_trial.values())
    worker = rows[-1]["ohgw_worker_time"] if rows else 0.0
    charged = ws_sim if spec.backend == "simulated" else ws_wall
    # the warm-start's share on both simulated clocks (FLOPs, calibrated wall ratio), whichever charged the study
    other = worker - charged
    ws_flops = sum(float(w.get("sim_seconds_flops", w.get("sim_seconds")) or 0.0) for w in per_trial.values())
    cal = [w.get("sim_seconds_calibrated") for w in per_trial.values()]
    ws_cal = sum(float(c) for c in cal) if all(isinstance(c, int | float) for c in cal) else None
    return {
        "best_metric": best,
        "best_test_metric": best_test,
        "metric": task.metric,
        "test_metric": task.test_metric,
        "mode": task.mode,
        "tau": tau,
        "time_to_tau": t_tau if reached else None,
        "reached_tau": reached,
        "trials": len({r["ohgw_trial_id"] for r in rows}),
        "reports": len(rows),
        # a diverged trial (status nan) is a failed one, as the failure limits count it
        "failed_trials": len({r["ohgw_trial_id"] for r in rows if r.get("ohgw_status") in ("failed", "nan")}),
        "budget": budget,
        "worker_time": worker,
        # worker-time used / worker budget (budget x workers). On --backend local the worker time
        # is what trials report (st_worker_time), so process start-up is not counted as used.
        "budget_used_fraction": worker / (budget * spec.n_workers) if budget > 0 else 0.0,
        "warm_start": {
            "trials_nudged": sum(1 for w in per_trial.values() if w.get("applied")),
            "sim_seconds": ws_sim,
            "wall_seconds": ws_wall,
            "share_of_worker_time": charged / worker if worker else 0.0,
            "clock": spec.warm_start.clock,
            "share_flops": ws_flops / (other + ws_flops) if other + ws_flops > 0 else 0.0,
            "share_calibrated": None if ws_cal is None else (ws_cal / (other + ws_cal) if other + ws_cal > 0 else 0.0),
            "records": len(ws),
        },
    }


FALSE_TUNER_WARNINGS = ("StoreResultsCallback",)
"""Syne Tune warnings that are false here: the study's recorder is a callback that writes every
result, so "no tuning results will be written" is not true."""


def quiet_tuner_logger() -> Any:
    """Syne Tune's TunerLogger reduced to its errors and true warnings, printed to stderr.

    Its per-trial chatter, status tables and failure-log dumps are dropped (each failure's
    error is in its row, each local trial's output in the study folder).
    """
    from syne_tune.tuner_logger import TunerLogger

    class Quiet(TunerLogger):
        def print_error(self, message: str) -> None:
            if message.startswith("An error happened during the tuning"):  # the error itself is reported
                return
            with contextlib.redirect_stdout(sys.stderr):
                super().print_error(message)

        def print_warning(self, message: str) -> None:
            if not any(false in message for false in FALSE_TUNER_WARNINGS):
                with contextlib.redirect_stdout(sys.stderr):
                    super().print_warning(message)

    for name in dir(TunerLogger):
        if name.startswith("print_") and name not in ("print_error", "print_warning"):
            setattr(Quiet, name, lambda self, *a, **k: None)
    return Quiet(use_colors=False, use_emojis=False)


def _prepare_folder(folder: Path, spec: ResolvedStudy, overwrite: bool) -> dict[str, Any] | None:
    """Return the existing summary if the same study already finished; refuse a different one."""
    existing = results.read_json(folder / results.STUDY_FILE)
    if existing is not None and not overwrite:
        old = existing.get("identity")
        # a study.json from before ``resolved`` existed recorded the request's identity
        mine = spec.identity() if "resolved" in existing else spec.legacy_identity()
        if old is not None and old != mine:
            raise UserError(
                f"{folder} holds a study with a different spec; use another --results-dir or --experiment, "
                f"or pass --overwrite to replace it")
        summary = results.read_json(folder / results.SUMMARY_FILE)
        if summary is not None:
            return summary
    if folder.exists():
        reports = folder / results.REPORTS_FILE
        if reports.exists() and not overwrite:
            n = len(list(folder.glob("reports.interrupted-*.jsonl")))
            reports.rename(folder / f"reports.interrupted-{n}.jsonl")
        if overwrite:
            shutil.rmtree(folder)
    return None


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
    """study.json beside the request (``spec``): the resolved study, its identity and the run's facts."""
    return {"resolved": spec.as_dict(), "identity": spec.identity(), "study_id": spec.study_id, "task": task.describe(),
            "clock": clock, "versions": _versions(), "git_revision": _git_revision(), "machine": _machine(),
            "command": sys.argv, "budget": spec.budget, "tau": spec.tau,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


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


def open_writer(folder: Path, spec: ResolvedStudy, meta: dict[str, Any]) -> results.StudyWriter:
    """The study's writer, with partial.json in place until summary.json is written."""
    try:
        writer = results.StudyWriter(folder, spec.request.as_dict(), meta)
        writer.mark_partial("running (no summary.json yet: a study killed now restarts when run again)")
    except OSError as e:
        raise UserError(f"cannot write results in {folder}: {e.strerror or e}") from None
    return writer


@functools.lru_cache(maxsize=1)
def _tuner_class() -> type:
    """Syne Tune's Tuner without its per-loop count of failed trials.

    ``Tuner._stop_condition`` adds ``num_trials_failed > max_failures`` to the stop criterion,
    and counting walks every trial's status once per loop: on a surrogate study (thousands of
    trials, one result per loop) that scan was the harness's largest cost beyond Syne Tune's own
    loop (profiled, ``benchmarks/bench_lcbench.py``). The study's stop criterion already applies
    the failure policy (:meth:`StudyRecorder.too_many_failures`) and the Tuner gets
    ``max_failures=10**9``, so the count could never stop a study: dropping it changes nothing.
    """
    from syne_tune import Tuner

    class StudyTuner(Tuner):
        def _stop_condition(self) -> bool:
            return bool(self.stop_criterion(self.tuning_status))

    return StudyTuner


def tune(spec: ResolvedStudy, scheduler: Any, execution: Any, recorder: StudyRecorder, folder: Path,
         verbose: bool = False) -> None:
    """Run the Tuner to the stop criterion; SIGTERM and Ctrl-C mark the study partial.

    Syne Tune's own console output (its experiment header, "Resource summary" table and
    status lines, and a warning that no StoreResultsCallback is given, which is false here: the
    recorder writes every result) is dropped unless ``verbose``; its errors still reach stderr.
    """
    interrupted: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        interrupted.append(signal.Signals(signum).name)
        raise KeyboardInterrupt

    def stop(_status: Any) -> bool:
        return execution.budget_spent() or recorder.too_many_failures(
            spec.max_failures, spec.max_consecutive_failures) is not None

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if main_thread else None
    try:
        with contextlib.redirect_stdout(sys.stderr if verbose else io.StringIO()):
            tuner = _tuner_class()(trial_backend=execution.backend, scheduler=scheduler, stop_criterion=stop,
                          n_workers=spec.n_workers, sleep_time=execution.sleep_time, callbacks=[recorder],
                          save_tuner=False, tuner_name="tuner", suffix_tuner_name=False,
                          trial_backend_path=str(folder / "trials"), max_failures=10**9,
                          print_update_interval=10**9, results_update_interval=10**9,
                          output_logger=None if verbose else quiet_tuner_logger())
            tuner.run()
    except KeyboardInterrupt:
        mark_ended(recorder.writer, "interrupted", f"interrupted by {interrupted[0] if interrupted else 'SIGINT'}")
        recorder.writer.close()
        raise
    except validate.AdapterError as e:  # the adapter broke its contract mid-study (cost(), evaluate())
        mark_ended(recorder.writer, "adapter error", f"stopped: {e}")
        recorder.writer.close()
        raise
    except OSError as e:
        if e.filename is None and getattr(e, "errno", None) is None:
            raise
        raise UserError(f"cannot write results in {folder}: {e.strerror or e}") from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def finish(spec: ResolvedStudy, task: Any, execution: Any, recorder: StudyRecorder, wall0: float) -> dict[str, Any]:
    """Apply the failure policy, then write summary.json (or partial.json with the reason)."""
    folder = Path(spec.folder)
    writer = recorder.writer
    why = recorder.too_many_failures(spec.max_failures, spec.max_consecutive_failures)
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
    from ohgw_bench.trial_plan import TrialPlans

    folder = Path(spec.folder)
    done = _prepare_folder(folder, spec, overwrite)
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
    writer = open_writer(folder, spec, meta)
    recorder = StudyRecorder(writer, task, plans, execution, spec.budget, progress=progress)
    wall0 = time.time()
    tune(spec, scheduler, execution, recorder, folder, verbose=verbose)
    return finish(spec, task, execution, recorder, wall0)
