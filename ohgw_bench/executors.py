"""Run many studies: in this process, in a local process pool, or on Dask (DESIGN.md section 8).

A study is a pure function of its spec that writes only its own folder, so executors only
fan specs out and collect summaries. A finished study (summary.json present) is skipped by
``run_study`` itself, which makes every executor safe to re-run after a crash or a kill.
Worker deaths: the process pool resubmits a study a bounded number of times; Dask reschedules
tasks of dead workers itself (``distributed.scheduler.allowed-failures``) and ``retries``
covers studies that raised. A study that still fails is reported with its error and the
experiment goes on.
"""

from __future__ import annotations

import os
import time
import traceback
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

    return run_study(spec_from_dict(spec_dict), progress=False)


def _outcome(key: str, summary: dict[str, Any], attempts: int = 1) -> Outcome:
    return Outcome(key, "skipped" if summary.get("skipped") else "complete", summary, attempts=attempts)


def _failed(key: str, error: BaseException, attempts: int = 1) -> Outcome:
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    return Outcome(key, "failed", error=text, attempts=attempts)


Progress = Callable[[Outcome | None, int], None]


def run_inprocess(jobs: Iterable[tuple[str, dict[str, Any]]], on_done: Progress, **_: Any) -> list[Outcome]:
    out = []
    for key, spec in jobs:
        on_done(None, 1)
        try:
            o = _outcome(key, execute(spec))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - one study's failure must not end the experiment
            o = _failed(key, e)
        out.append(o)
        on_done(o, 0)
    return out


def run_process_pool(jobs: Iterable[tuple[str, dict[str, Any]]], on_done: Progress, max_parallel: int = 2,
                     retries: int = 2, **_: Any) -> list[Outcome]:
    """A local process pool; a study whose worker died is resubmitted up to ``retries`` times."""
    import multiprocessing as mp

    pending = list(jobs)
    attempts: dict[str, int] = {}
    out: list[Outcome] = []
    ctx = mp.get_context("spawn")
    while pending:
        pool = ProcessPoolExecutor(max_workers=max_parallel, mp_context=ctx, initializer=_one_thread)
        futures: dict[Future[dict[str, Any]], tuple[str, dict[str, Any]]] = {}
        broken: list[tuple[str, dict[str, Any]]] = []
        try:
            for key, spec in pending:
                attempts[key] = attempts.get(key, 0) + 1
                futures[pool.submit(execute, spec)] = (key, spec)
            pending = []
            on_done(None, 0)
            not_done = set(futures)
            while not_done:
                done, not_done = wait(not_done, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    key, spec = futures[fut]
                    try:
                        o = _outcome(key, fut.result(), attempts[key])
                    except BrokenProcessPool as e:
                        if attempts[key] <= retries:
                            broken.append((key, spec))
                            continue
                        o = _failed(key, e, attempts[key])
                    except BaseException as e:  # noqa: BLE001
                        o = _failed(key, e, attempts[key])
                    out.append(o)
                    on_done(o, 0)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        pending = broken
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
        on_done(None, 0)
        out = []
        for fut in as_completed(futures):
            key = futures[fut]
            try:
                o = _outcome(key, fut.result())
            except BaseException as e:  # noqa: BLE001
                o = _failed(key, e)
            out.append(o)
            on_done(o, 0)
        return out
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def run_all(executor: str, jobs: list[tuple[str, dict[str, Any]]], on_done: Progress, **kwargs: Any) -> list[Outcome]:
    runners = {"inprocess": run_inprocess, "process": run_process_pool, "dask": run_dask}
    return runners[executor](jobs, on_done, **kwargs)


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

    def __call__(self, outcome: Outcome | None, started: int) -> None:
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
