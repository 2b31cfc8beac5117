"""Executing trials: in-process on a simulated clock, or as real processes (Syne Tune's LocalBackend).

Each ``--backend`` is one :class:`Execution` strategy (:data:`EXECUTIONS`): the Syne Tune
backend, the study's clock, the worker time used, when the budget is spent, and the hook the
study's recorder calls on each result. ``run_study`` picks one and never branches on the name.

Both backends run the same :class:`TrialRunner` logic: a trial trains one fidelity unit at a
time from its state, evaluates, and reports ``{resource_attr: fidelity, metric, test_metric}``.

``simulated`` (docs/design.md section 5): trials run in this process, one unit at a time and only
when the simulated timeline reaches them, so a trial the scheduler stops costs no further real
compute. Each unit's duration comes from the task's deterministic cost model (FLOPs over a
reference throughput), never from measured time, so the same spec and seed give the same
timeline and the same scheduler decisions on any machine. The warm-start's cost is charged
to the start of the trial it serves. The Tuner's own decision time is not added to the clock.

``local``: Syne Tune's LocalBackend starts ``python -m``-style processes per start/resume; each
trial's stdout and stderr go to files in the study folder (no pipe can block).

Schedulers see only hyperparameters and the fidelity in ``trial.config``. A trial's training
seed and warm-start charge come from the study's :class:`~ohgw_bench.trial_plan.TrialPlans`:
a backend's ``start_trial`` takes the plan's ticket out of the suggested config and binds the
plan to the id of the trial it creates.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from syne_tune.backend.local_backend import LocalBackend
from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, Trial, TrialResult

from ohgw_bench.tasks.base import Task
from ohgw_bench.trial_plan import TrialPlans
from ohgw_bench.validate import check_cost, check_metrics

STATE_FILE = "state.ckpt"
FAILURE_KEY = "ohgw_failure"
ERROR_KEY = "ohgw_error"
UNSEEN_WORST = 1e6
# The key of a trial process's config file that carries its training seed (never in trial.config).
SEED_KEY = "ohgw_trial_seed"
#: the key of a trial process's config file that carries its per-unit time limit (never in trial.config)
TIMEOUT_KEY = "ohgw_unit_timeout"
#: what a trial process prints to its std.err once its task is built and it starts training
READY_LINE = "[ohgw trial] task ready, training"
TRIAL_ENTRY_POINT = Path(__file__).resolve().with_name("trial.py")  # ohgw_bench/trial.py, the process's main


def task_config(task: Task, config: Mapping[str, Any]) -> dict[str, Any]:
    """The search-space part of a trial config (drops the fidelity key)."""
    return {name: config[name] for name in task.space.names}


class TrialRunner:
    """Trains trials of one task unit by unit, keeping paused states in memory or on disk."""

    def __init__(self, task: Task, seed_of: Callable[[int], int], checkpoint_root: Path | None = None,
                 unit_timeout: float | None = None):
        self.task = task
        self.unit_timeout = unit_timeout  # wall seconds for one unit's train() + evaluate(); None: no limit
        self.seed = seed_of  # trial id -> training seed (the study's plans, or a process's config file)
        self.resource_attr = task.fidelity.name
        self.checkpoint_root = checkpoint_root
        self._states: dict[int, Any] = {}
        self._worst: float | None = None

    def target(self, config: Mapping[str, Any]) -> int:
        return int(config.get(self.resource_attr, self.task.fidelity.max))

    def fidelity(self, trial_id: int) -> int:
        state = self._states.get(trial_id)
        return 0 if state is None else int(state.fidelity)

    def has_state(self, trial_id: int) -> bool:
        return trial_id in self._states

    def state(self, trial_id: int, config: Mapping[str, Any]) -> Any:
        if trial_id not in self._states:
            self._states[trial_id] = self.task.init_state(task_config(self.task, config), self.seed(trial_id))
        return self._states[trial_id]

    def run_unit(self, trial_id: int, config: Mapping[str, Any]) -> dict[str, Any]:
        """Train one fidelity unit and evaluate; the result dict the scheduler sees.

        A trial that raises (out of memory included) or reports a non-finite metric (diverged)
        is not allowed to end the study: its result carries the worst value for the metric,
        so every scheduler ranks it last, plus FAILURE_KEY and ERROR_KEY, and the backend
        ends the trial there.
        """
        attempted = self.fidelity(trial_id) + 1
        try:
            state = self.state(trial_id, config)
            with time_limit(self.unit_timeout, f"fidelity unit {attempted} (train + evaluate)"):
                self.task.train(state, attempted)
                metrics = self.task.evaluate(state)
        except Exception as e:  # noqa: BLE001 - any error of a trial is recorded and the study goes on
            self.drop(trial_id)
            return self.failure(attempted, "failed", f"{type(e).__name__}: {e}")
        check_metrics(self.task, metrics)  # not a dict: the adapter's bug, not the trial's; stops the study
        value = metrics.get(self.task.metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            self.drop(trial_id)
            return self.failure(attempted, "nan", f"non-finite {self.task.metric}: {value!r} (diverged?)")
        self._see(float(value))
        return {self.resource_attr: int(state.fidelity), **metrics}

    def _see(self, value: float) -> None:
        if self._worst is None or (value > self._worst if self.task.mode == "min" else value < self._worst):
            self._worst = value

    def worst(self) -> float:
        """The task's declared worst value, else the worst value seen so far in this study."""
        declared = getattr(self.task, "worst_metric", None)
        if declared is not None:
            return float(declared)
        if self._worst is not None:
            return self._worst
        return UNSEEN_WORST if self.task.mode == "min" else -UNSEEN_WORST

    def failure(self, fidelity: int, status: str, error: str) -> dict[str, Any]:
        return {self.resource_attr: int(fidelity), self.task.metric: self.worst(), FAILURE_KEY: status,
                ERROR_KEY: error[:2000]}

    def copy(self, src: int, tgt: int) -> None:
        if src in self._states:
            self._states[tgt] = copy.deepcopy(self._states[src])

    def drop(self, trial_id: int) -> None:
        self._states.pop(trial_id, None)


class UnitTimeout(Exception):
    """One fidelity unit of a trial ran past ``--unit-timeout``: the trial fails, the study goes on."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`UnitTimeout` in the block after ``seconds`` of wall-clock (SIGALRM).

    Only in the main thread (signals are delivered there); elsewhere (a Dask worker thread) the
    block runs unlimited. A C call that never returns to Python cannot be interrupted.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise UnitTimeout(f"{what} took more than {seconds:g} s of wall-clock (--unit-timeout)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class SimulatedBackend(TrialBackend):
    """In-process trials on a simulated timeline of ``n_workers`` (one unit computed at a time).

    The Tuner calls :meth:`fetch_status_results` once per loop; each call advances the clock to
    the earliest pending unit among running trials, computes it, and returns its result, so the
    Tuner can answer and fill a freed worker before the clock moves again.
    """

    def __init__(self, runner: TrialRunner, horizon: float, plans: TrialPlans):
        super().__init__()
        self.runner = runner
        self.plans = plans
        self.task = runner.task
        self.horizon = horizon
        self.now = 0.0
        self.busy_time = 0.0
        self._heap: list[tuple[float, int, int, int]] = []
        self._order = itertools.count()
        self._token: dict[int, int] = {}
        self._unit_start: dict[int, float] = {}
        self._logs: dict[int, list[str]] = {}
        self.errors: dict[int, str] = {}

    def _push(self, trial_id: int, start: float, config: Mapping[str, Any]) -> None:
        f = self.runner.fidelity(trial_id)
        end = start + check_cost(self.task, self.task.cost(task_config(self.task, config), f, f + 1), f, f + 1)
        token = next(self._order)
        self._token[trial_id] = token
        heapq.heappush(self._heap, (end, token, trial_id, token))

    def _schedule(self, trial_id: int, config: dict[str, Any]) -> None:
        fresh = not self.runner.has_state(trial_id)
        charge = self.plans.charge(trial_id) if fresh else 0.0
        self._unit_start[trial_id] = self.now
        self._push(trial_id, self.now + charge, config)

    def _pop(self) -> tuple[float, int] | None:
        while self._heap:
            end, _, trial_id, token = self._heap[0]
            if self._token.get(trial_id) != token:
                heapq.heappop(self._heap)
                continue
            if end > self.horizon:
                return None
            heapq.heappop(self._heap)
            return end, trial_id
        return None

    def next_event_time(self) -> float | None:
        """Time of the next pending unit (None if no trial is running)."""
        while self._heap and self._token.get(self._heap[0][2]) != self._heap[0][3]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def fetch_status_results(self, trial_ids: list[int]) -> tuple[dict[int, tuple[Trial, str]], list]:
        results: list[tuple[int, dict[str, Any]]] = []
        event = self._pop()
        if event is None and self.next_event_time() is not None:
            self.now = max(self.now, self.horizon)
        if event is not None:
            end, trial_id = event
            self.now = max(self.now, end)
            self.busy_time += end - self._unit_start.get(trial_id, end)
            self._unit_start[trial_id] = end
            self._token.pop(trial_id, None)
            record = self._trial_dict[trial_id]
            config = record.config
            result = self.runner.run_unit(trial_id, config)
            results.append((trial_id, result))
            record.metrics.append(result)
            if FAILURE_KEY in result:
                self.errors[trial_id] = result[ERROR_KEY]
                self._logs.setdefault(trial_id, []).append(result[ERROR_KEY])
                record.status = Status.completed
            elif result[self.runner.resource_attr] >= self.runner.target(config):
                record.status = Status.completed
            else:
                self._push(trial_id, end, config)
        status = {}
        for tid in trial_ids:
            r = self._trial_dict[tid]
            status[tid] = (Trial(trial_id=tid, config=r.config, creation_time=r.creation_time), r.status)
        return status, results

    def _pause_trial(self, trial_id: int, result: dict | None) -> None:
        self._token.pop(trial_id, None)

    def _stop_trial(self, trial_id: int, result: dict | None) -> None:
        self._token.pop(trial_id, None)
        self.runner.drop(trial_id)

    def _resume_trial(self, trial_id: int) -> None:
        pass

    def copy_checkpoint(self, src_trial_id: int, tgt_trial_id: int) -> None:
        self.runner.copy(src_trial_id, tgt_trial_id)

    def delete_checkpoint(self, trial_id: int) -> None:
        self.runner.drop(trial_id)

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        return [self._trial_dict[t] for t in trial_ids]

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        return [(t, r.status) for t, r in self._trial_dict.items() if r.status == Status.in_progress]

    def stdout(self, trial_id: int) -> list[str]:
        return []

    def stderr(self, trial_id: int) -> list[str]:
        return self._logs.get(trial_id, [])

    def entrypoint_path(self) -> Path:
        return Path(__file__)

    def set_entrypoint(self, entry_point: str) -> None:
        pass

    def start_trial(self, config: dict[str, Any], checkpoint_trial_id: int | None = None) -> TrialResult:
        config = self.plans.claim(self.new_trial_id(), config)  # the id super() gives the trial
        trial = super().start_trial(config, checkpoint_trial_id)
        trial.creation_time = datetime.fromtimestamp(0)
        return trial


class ProcessBackend(LocalBackend):
    """Syne Tune's LocalBackend running :mod:`ohgw_bench.trial` with the study's constants added.

    The constants (task id, data dir, options, study seed) and the trial's training seed travel
    in the trial's config JSON file, never in ``trial.config``, so schedulers see only
    hyperparameters and the fidelity.
    """

    def __init__(self, constants: Mapping[str, Any], plans: TrialPlans):
        super().__init__(entry_point=str(TRIAL_ENTRY_POINT), pass_args_as_json=True, delete_checkpoints=True)
        self.binary = sys.executable
        self.constants = dict(constants)
        self.plans = plans

    def start_trial(self, config: dict[str, Any], checkpoint_trial_id: int | None = None) -> TrialResult:
        config = self.plans.claim(self.new_trial_id(), config)  # the id super() gives the trial
        return super().start_trial(config, checkpoint_trial_id)

    def _schedule(self, trial_id: int, config: dict[str, Any]) -> None:
        super()._schedule(trial_id, {**config, **self.constants, SEED_KEY: self.plans.seed(trial_id)})

    def _prepare_for_schedule(self, num_gpus: int | None = None) -> None:
        # Syne Tune counts GPUs by writing nvidia-smi's output to ./std.out (the working directory,
        # outside the study folder); count them here without a file.
        if num_gpus is None and self.rotate_gpus and self.num_gpus is None:
            num_gpus = count_gpus()
        super()._prepare_for_schedule(num_gpus)


def count_gpus() -> int:
    """GPUs listed by ``nvidia-smi --list-gpus`` (0 without it), read from a pipe, not a file."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return len(out.stdout.splitlines()) if out.returncode == 0 else 0


def load_trial_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


class Execution:
    """One ``--backend``: the Syne Tune backend, the study clock and what the study asks of it.

    ``clock()`` is the study's time (simulated or wall seconds since the start), ``busy()``
    the worker time used so far, ``budget_spent()`` the stop criterion's time part, and
    :meth:`on_result` the recorder's hook, called on each result before its row is written.
    """

    name: str = ""
    clock_kind: str = ""  # "simulated" or "wall", as study.json says
    sleep_time: float = 0.0  # the Tuner's pause between loops
    backend: TrialBackend
    errors: Mapping[int, str]

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def clock(self) -> float:
        raise NotImplementedError

    def busy(self) -> float:
        raise NotImplementedError

    def budget_spent(self) -> bool:
        return self.clock() >= self.budget

    def on_result(self, trial_id: int, result: Mapping[str, Any]) -> None:
        """Called by the recorder for each result, before its row (and its worker time) is written."""

    def no_reports(self, ended: str) -> str:
        """Why a study that ended with 0 reports wrote none."""
        return f"0 reports ({ended}): the scheduler started no trial that finished a fidelity unit"


class SimulatedExecution(Execution):
    """In-process trials on the deterministic simulated clock (:class:`SimulatedBackend`)."""

    name = "simulated"
    clock_kind = "simulated"
    sleep_time = 0.0

    def __init__(self, task: Task, spec: Any, plans: TrialPlans, budget: float) -> None:
        super().__init__(budget)
        runner = TrialRunner(task, plans.seed, unit_timeout=getattr(spec, "unit_timeout", None))
        self.backend = SimulatedBackend(runner, horizon=budget, plans=plans)
        self.errors = self.backend.errors

    def clock(self) -> float:
        return self.backend.now

    def busy(self) -> float:
        return self.backend.busy_time

    def budget_spent(self) -> bool:
        return self.backend.now >= self.budget


class LocalExecution(Execution):
    """Real trial processes on the wall clock (:class:`ProcessBackend`).

    The worker time used is what the trials report (``st_worker_time``, the largest per
    trial), so process start-up is not counted as used.
    """

    name = "local"
    clock_kind = "wall"
    sleep_time = 0.2

    def __init__(self, task: Task, spec: Any, plans: TrialPlans, budget: float) -> None:
        super().__init__(budget)
        self.backend = ProcessBackend({"ohgw_task": spec.task, "ohgw_data_dir": spec.data_dir,
                                       "ohgw_task_options": dict(spec.task_options), "ohgw_study_seed": spec.seed,
                                       TIMEOUT_KEY: getattr(spec, "unit_timeout", None)},
                                      plans)
        self.errors: dict[int, str] = {}
        self.start = time.time()
        self._worker_times: dict[int, float] = {}

    def clock(self) -> float:
        return time.time() - self.start

    def busy(self) -> float:
        return sum(self._worker_times.values())

    def on_result(self, trial_id: int, result: Mapping[str, Any]) -> None:
        seconds = float(result.get("st_worker_time", 0.0))
        self._worker_times[trial_id] = max(self._worker_times.get(trial_id, 0.0), seconds)

    def no_reports(self, ended: str) -> str:
        ready = []
        for trial_id in list(getattr(self.backend, "_trial_dict", {})):
            with contextlib.suppress(OSError):
                if any(READY_LINE in line for line in self.backend.stderr(trial_id)):
                    ready.append(trial_id)
        if ready:  # start-up was fine: the adapter's first unit is what never ended
            return (f"0 reports in {self.budget:g} s of wall-clock ({ended}): {len(ready)} trial process(es) started "
                    "training but none finished one fidelity unit (train() or evaluate() slow or hung?); raise "
                    "--budget, or lower --unit-timeout to fail such trials")
        return (f"0 reports in {self.budget:g} s of wall-clock ({ended}): no trial process got through start-up "
                "(python, imports, data) and one fidelity unit in time; raise --budget")


EXECUTIONS: dict[str, type[Execution]] = {"simulated": SimulatedExecution, "local": LocalExecution}
BACKENDS: tuple[str, ...] = tuple(EXECUTIONS)  # the one list of --backend names


def make_execution(spec: Any, task: Task, plans: TrialPlans, budget: float) -> Execution:
    """The execution strategy of ``spec.backend`` for one study."""
    return EXECUTIONS[spec.backend](task, spec, plans, budget)
