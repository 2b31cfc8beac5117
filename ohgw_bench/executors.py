"""Run many studies: in this process, in a local process pool, or on Dask (docs/design.md section 8).

A study is a pure function of its spec that writes only its own folder, so executors only
fan specs out and collect summaries. A finished study (summary.json present) is skipped by
``run_study`` itself, which makes every executor safe to re-run after a crash or a kill.
Worker deaths: the process pool resubmits a study a bounded number of times; Dask reschedules
tasks of dead workers itself (``distributed.scheduler.allowed-failures``) and ``retries``
covers studies that raised. A study that still fails is reported with its error and the
experiment goes on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from ohgw_bench.errors import UserError

EXECUTORS = ("inprocess", "process", "dask")
CONNECT_TIMEOUT_S = 5.0


@dataclass
class Outcome:
    """What became of one study."""

    key: str
    status: str  # complete, skipped, failed
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 1


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def execute(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Run one study from its spec as a plain dict (picklable for process pools and Dask)."""
    _one_thread()
    from ohgw_bench.study import run_study, spec_from_dict
    from ohgw_bench.validate import StudyLocked

    try:
        return run_study(spec_from_dict(spec_dict), progress=False)
    except StudyLocked as e:  # another experiment process runs this study now: skip it, do not run it twice
        return {"skipped": True, "locked": str(e)}


def _outcome(key: str, summary: dict[str, Any], attempts: int = 1) -> Outcome:
    return Outcome(key, "skipped" if summary.get("skipped") else "complete", summary, attempts=attempts)


def _failed(key: str, error: BaseException, attempts: int = 1) -> Outcome:
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    return Outcome(key, "failed", error=text, attempts=attempts)


Progress = Callable[[Outcome | None], None]


def run_inprocess(jobs: Iterable[tuple[str, dict[str, Any]]], on_done: Progress, **_: Any) -> list[Outcome]:
    out = []
    for key, spec in jobs:
        on_done(None)
        try:
            o = _outcome(key, execute(spec))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - one study's failure must not end the experiment
            o = _failed(key, e)
        out.append(o)
        on_done(o)
    return out


PARENT_CHECK_S = 0.5
STOP_GRACE_S = 5.0


def _watch_parent(parent_pid: int) -> None:
    """Pool worker: once the experiment process is gone (even SIGKILLed), SIGTERM ourselves, so
    a running study is marked partial (run_study's handler) and the worker exits."""
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _pool_worker_init(parent_pid: int) -> None:
    """Pool worker set-up: one thread; Ctrl-C is the parent's to handle (it SIGTERMs us), so an
    idle worker never prints a KeyboardInterrupt traceback; watch for the parent's death."""
    _one_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="ohgw-parent-watch").start()


def _pool_execute(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """:func:`execute` in a pool worker: an interrupted study (already marked partial by
    run_study) ends the worker at once, so it can never pick up another study."""
    try:
        return execute(spec_dict)
    except KeyboardInterrupt:
        os._exit(130)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM every worker (their running studies mark themselves partial), then SIGKILL any
    that has not exited within STOP_GRACE_S: no worker outlives the experiment."""
    procs = [p for p in (getattr(pool, "_processes", None) or {}).values() if p.is_alive()]
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.time() + STOP_GRACE_S
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.time()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(timeout=1.0)


def run_process_pool(jobs: Iterable[tuple[str, dict[str, Any]]], on_done: Progress, max_parallel: int = 2,
                     retries: int = 2, **_: Any) -> list[Outcome]:
    """A local process pool; a study whose worker died is resubmitted up to ``retries`` times.

    Studies are handed out one per free worker (never queued ahead), so after SIGINT/SIGTERM
    no further study starts: the running ones are stopped and marked partial (``ended``:
    interrupted), the workers are taken down, and KeyboardInterrupt reaches the caller.
    """
    import multiprocessing as mp

    pending = deque(jobs)
    attempts: dict[str, int] = {}
    out: list[Outcome] = []
    ctx = mp.get_context("spawn")
    while pending:
        pool = ProcessPoolExecutor(max_workers=max_parallel, mp_context=ctx, initializer=_pool_worker_init,
                                   initargs=(os.getpid(),))
        running: dict[Future[dict[str, Any]], tuple[str, dict[str, Any]]] = {}
        retry: list[tuple[str, dict[str, Any]]] = []
        broken = interrupted = False
        try:
            on_done(None)
            while running or (pending and not broken):
                while pending and not broken and len(running) < max_parallel:
                    key, spec = pending[0]
                    try:
                        fut = pool.submit(_pool_execute, spec)
                    except BrokenProcessPool:
                        broken = True
                        break
                    pending.popleft()
                    attempts[key] = attempts.get(key, 0) + 1
                    running[fut] = (key, spec)
                done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    key, spec = running.pop(fut)
                    try:
                        o = _outcome(key, fut.result(), attempts[key])
                    except BrokenProcessPool as e:
                        broken = True
                        if attempts[key] <= retries:
                            retry.append((key, spec))
                            continue
                        o = _failed(key, e, attempts[key])
                    except BaseException as e:  # noqa: BLE001
                        o = _failed(key, e, attempts[key])
                    out.append(o)
                    on_done(o)
        except KeyboardInterrupt:
            interrupted = True
            _stop_workers(pool)
            raise
        finally:
            pool.shutdown(wait=not interrupted, cancel_futures=True)
        pending.extendleft(reversed(retry))
    return out


def dask_client(address: str | None = None, max_parallel: int = 2, slurm: dict[str, Any] | None = None) -> Any:
    """A Dask client: an existing scheduler, a Slurm cluster (dask_jobqueue), or a LocalCluster."""
    from distributed import Client, LocalCluster

    if address:
        # Fail fast with one line: distributed's default connect timeout is 30 s, then a traceback.
        try:
            return Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as e:
            raise UserError(f"--address {address}: no Dask scheduler reachable within {CONNECT_TIMEOUT_S:g} s "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'})") from None
    if slurm is not None:
        from dask_jobqueue import SLURMCluster

        cluster = SLURMCluster(**slurm)
        cluster.scale(jobs=max_parallel)
        return Client(cluster)
    cluster = LocalCluster(n_workers=max_parallel, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


def run_dask(jobs: Iterable[tuple[str, dict[str, Any]]], on_done: Progress, max_parallel: int = 2,
             retries: int = 2, address: str | None = None, slurm: dict[str, Any] | None = None,
             client: Any = None, **_: Any) -> list[Outcome]:
    from distributed import as_completed

    own = client is None
    client = client or dask_client(address, max_parallel, slurm)
    try:
        futures = {client.submit(execute, spec, key=f"study-{key}", retries=retries, pure=False): key
                   for key, spec in jobs}
        on_done(None)
        out = []
        for fut in as_completed(futures):
            key = futures[fut]
            try:
                o = _outcome(key, fut.result())
            except BaseException as e:  # noqa: BLE001
                o = _failed(key, e)
            out.append(o)
            on_done(o)
        return out
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def _sigterm_as_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def run_all(executor: str, jobs: list[tuple[str, dict[str, Any]]], on_done: Progress, **kwargs: Any) -> list[Outcome]:
    """Run the jobs on one executor; SIGTERM is handled like Ctrl-C (running studies are marked
    partial, nothing new starts), as a scheduler's kill of the experiment must not orphan workers."""
    runners = {"inprocess": run_inprocess, "process": run_process_pool, "dask": run_dask}
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt) if main else None
    try:
        return runners[executor](jobs, on_done, **kwargs)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


class ProgressLine:
    """Periodic one-line progress for an experiment: done, running, failed, elapsed, remaining."""

    def __init__(self, total: int, stream: Any, every: float = 5.0):
        self.total = total
        self.stream = stream
        self.every = every
        self.start = time.time()
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self._last = 0.0

    def __call__(self, outcome: Outcome | None) -> None:
        if outcome is not None:
            self.done += 1
            self.failed += outcome.status == "failed"
            self.skipped += outcome.status == "skipped"
            if outcome.status == "failed":
                print(f"  study {outcome.key} failed: {outcome.error}", file=self.stream, flush=True)
        now = time.time()
        if outcome is None or now - self._last >= self.every or self.done == self.total:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        elapsed = time.time() - self.start
        ran = self.done - self.skipped
        remaining = "?"
        if ran > 0 and self.done < self.total:
            remaining = _fmt(elapsed / ran * (self.total - self.done))
        elif self.done == self.total:
            remaining = "0s"
        return (f"[experiment] {self.done}/{self.total} studies done ({self.skipped} skipped, {self.failed} failed), "
                f"elapsed {_fmt(elapsed)}, remaining ~{remaining}")


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
