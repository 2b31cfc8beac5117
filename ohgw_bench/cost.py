"""Measuring work: wall time, FLOPs and peak tensor memory of one call, the same way everywhere.

Warm-start overhead is measured, never assumed (docs/design.md section 4): every warm-start record
holds the cost of the warm-start and of one plain training step of the same task, both taken
with :func:`measure`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

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
