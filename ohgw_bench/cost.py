"""Measuring work: wall time, FLOPs and peak tensor memory of one call, the same way everywhere.

Warm-start overhead is measured, never assumed (docs/design.md section 4): every warm-start record
holds the cost of the warm-start and of one plain training step of the same task, both taken
with :func:`measure`. Those seconds run with the FLOP counter and the memory tracker attached,
which inflates small steps by more than large ones: they are bookkeeping, not a stopwatch.
:func:`measure_separately` times the call bare and counts in a second pass; the calibration
benchmark (``benchmarks/bench_overhead.py``) uses it to write the per-task ratio of warm-start
to plain-step wall time that the ``calibrated`` warm-start clock charges
(:func:`calibrated_ratio`, ``ohgw_bench/overhead_calibration.json``, docs/design.md).
"""

from __future__ import annotations

import functools
import json
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from ohgw_bench.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Cost:
    """Seconds (wall), FLOPs (torch's flop counter; 0 where no torch op ran), peak tensor bytes."""

    seconds: float
    flops: float
    peak_bytes: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.seconds + other.seconds, self.flops + other.flops, max(self.peak_bytes, other.peak_bytes))


ZERO = Cost(0.0, 0.0, 0.0)


def _peak_tracker() -> Any:
    """A dispatch mode that follows the bytes held by tensors created inside it.

    CPU torch has no allocator statistics, so count storages as operators create them and
    release them through weak references when they die.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class PeakMemory(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.current = 0
            self.peak = 0
            self._seen: set[int] = set()

        def _release(self, key: int, nbytes: int) -> None:
            self.current -= nbytes
            self._seen.discard(key)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and not t.is_meta:
                    try:
                        storage = t.untyped_storage()
                    except Exception:  # noqa: BLE001 - sparse and other exotic tensors
                        continue
                    key = storage.data_ptr()
                    if key in self._seen or key == 0:
                        continue
                    nbytes = storage.nbytes()
                    self._seen.add(key)
                    self.current += nbytes
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._release, key, nbytes)
            return out

    return PeakMemory()


def measure(fn: Callable[[], T], *, flops: bool = True, memory: bool = True) -> tuple[T, Cost]:
    """Run ``fn()`` once; return its result and its :class:`Cost`.

    FLOPs and memory are counted in separate modes around the same call, so the wall time
    includes their (small) bookkeeping overhead; use :func:`time_only` for timings that
    are reported as ratios.
    """
    import torch

    counter = None
    tracker = None
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
    if memory and cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    elif memory:
        tracker = _peak_tracker()
    start = time.perf_counter()
    if counter is not None and tracker is not None:
        with counter, tracker:
            result = fn()
    elif counter is not None:
        with counter:
            result = fn()
    elif tracker is not None:
        with tracker:
            result = fn()
    else:
        result = fn()
    seconds = time.perf_counter() - start
    total_flops = float(counter.get_total_flops()) if counter is not None else 0.0
    if memory and cuda:
        peak = float(torch.cuda.max_memory_allocated() - base)
    elif tracker is not None:
        peak = float(tracker.peak)
    else:
        peak = 0.0
    return result, Cost(seconds, total_flops, peak)


def time_only(fn: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """Median wall time of ``repeat`` calls (no counters attached), and the last result."""
    times = []
    result: Any = None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return result, times[len(times) // 2]


def count_flops(fn: Callable[[], Any]) -> float:
    """FLOPs of one call of ``fn`` (forward and backward ops alike)."""
    return measure(fn, flops=True, memory=False)[1].flops


def measure_separately(fn: Callable[[], T], repeat: int = 1) -> tuple[T, Cost]:
    """Wall time of ``fn()`` with nothing attached (median of ``repeat`` calls), then FLOPs and
    peak memory counted in one more, separate call: a :class:`Cost` whose seconds are not
    inflated by the counters. Costs ``repeat + 1`` calls."""
    result, seconds = time_only(fn, repeat)
    _, counted = measure(fn)
    return result, Cost(seconds, counted.flops, counted.peak_bytes)


CALIBRATION_FILE = Path(__file__).with_name("overhead_calibration.json")


@functools.lru_cache(maxsize=1)
def _calibration() -> dict[str, Any]:
    try:
        return json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"tasks": {}}


def calibration_key(horizon: int, mode: str, split_batch: bool) -> str:
    """The warm-start settings a calibrated ratio was measured for: ``k1-exact``, ``k2-mixed-split``."""
    return f"k{int(horizon)}-{mode}" + ("-split" if split_batch else "")


def calibrated_ratio(task_id: str, key: str) -> dict[str, Any]:
    """The measured (uninstrumented) warm-start / plain-step wall ratio of ``task_id`` for settings ``key``.

    Raises UserError (one line, exit code 2) where the calibration table has no entry: run
    ``python benchmarks/bench_overhead.py --write-calibration`` for that task first."""
    entry = _calibration().get("tasks", {}).get(task_id, {}).get(key)
    if entry is None:
        known = sorted(f"{t} {k}" for t, keys in _calibration().get("tasks", {}).items() for k in keys)
        raise UserError(f"--warm-start-clock calibrated: no calibration for task {task_id} with {key} "
                        f"(calibrated: {', '.join(known) or 'none'}); run benchmarks/bench_overhead.py "
                        "--write-calibration for it")
    return dict(entry)
