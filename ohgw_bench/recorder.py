"""The study's Tuner callback: one row per report through the one writer, its status, the failure count.

:class:`StudyRecorder` subclasses Syne Tune's :class:`~syne_tune.tuner_callback.TunerCallback`
and overrides the hooks it needs: each result and each failed trial becomes a row of
reports.jsonl (:class:`ohgw_bench.results.StudyWriter`), classified by :func:`status_of`;
failed trials are counted for the failure policy (:meth:`StudyRecorder.too_many_failures`),
and the progress bar (:mod:`ohgw_bench.progress`) follows the study clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from syne_tune.tuner_callback import TunerCallback

from ohgw_bench import results
from ohgw_bench.progress import progress_bar, show


def status_of(value: Any, fidelity: Any, target: Any, decision: str | None) -> str:
    """A report's ``ohgw_status``: nan (no finite metric), stopped (before its target fidelity),
    paused, completed (at its target) or ok."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan"
    if decision == "STOP" and fidelity is not None and fidelity < target:
        return "stopped"
    if decision == "PAUSE":
        return "paused"
    if fidelity is not None and fidelity >= target:
        return "completed"
    return "ok"


class StudyRecorder(TunerCallback):
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

    # Syne Tune's TunerCallback hooks (the others are the base class's, which do nothing) --
    def on_tuning_start(self, tuner: Any) -> None:
        if self._progress:
            self._bar = progress_bar(self.task.id, self.budget)

    def on_tuning_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def on_loop_end(self) -> None:
        if self._bar is not None:
            show(self._bar, min(self.budget, round(self.clock(), 1)), f"trials={len(self.trials)} best={self._best}")

    def too_many_failures(self, max_failures: int, max_consecutive: int,
                          sources: tuple[str, str] = ("max_failures", "max_consecutive_failures")) -> str | None:
        """Why the study must stop because trials keep failing, or None; ``sources`` name where the
        two limits came from (a flag, a YAML key: ``StudySpec.where``), so the message points there."""
        if len(self.failed_trials) > max_failures:
            return f"{len(self.failed_trials)} trials failed (more than {sources[0]} {max_failures})"
        if self.consecutive_failures >= max_consecutive:
            return f"{self.consecutive_failures} trials in a row failed ({sources[1]} {max_consecutive})"
        return None

    def on_fetch_status_results(self, trial_status_dict: Mapping[int, Any], new_results: list) -> None:
        from syne_tune.backend.trial_status import Status

        for trial_id, (trial, status) in trial_status_dict.items():
            if status == Status.failed and trial_id not in self._failed_written:
                self._failed_written.add(trial_id)
                self._write(trial, {}, "failed", None, error=self.errors.get(trial_id, "trial failed"))

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
        state = status_of(value, fid, target, decision)
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
