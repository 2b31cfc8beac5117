"""Checks of user input and of adapters that several entry points share (issue 28 item 7).

Each check raises :class:`~ohgw_bench.errors.UserError` (one line, exit code 2) naming what was
wrong and the rule it broke, so ``run``, ``experiment``, ``--dry-run``, ``nudge`` and the report
refuse bad input the same way, before any work and without touching what is already written.
Also here: the study-folder lock (two processes must not run one study) and the YAML loader
that refuses duplicate keys.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ohgw_bench.errors import UserError

#: more studies than this in one experiment file is refused unless ``--max-studies`` is raised
MAX_STUDIES = 10_000
#: seeds are used as numpy/torch seeds with fixed offsets added; this keeps them in range
MAX_SEED = 2**32 - 1
#: workers per study; a simulated worker is cheap, but thousands only make the Tuner loop crawl
MAX_WORKERS = 512


class AdapterError(UserError):
    """A task adapter breaks the contract of :class:`~ohgw_bench.tasks.base.Task`: names it and the rule."""


class StudyLocked(UserError):
    """Another live process holds the study folder's lock."""


def path_component(value: Any, what: str) -> str:
    """``value`` as one plain folder name, or UserError: no ``/``, not ``.``/``..``, not empty or hidden.

    Experiment names and task labels become folder levels below ``--results-dir``; ``../x``
    would put a study outside it and ``''`` would drop a level.
    """
    text = value if isinstance(value, str) else None
    if not text or text.strip() != text or text.startswith(".") or any(c in text for c in "/\\\0"):
        raise UserError(f"{what} must be a plain folder name (not empty, no '/', not starting with '.'), "
                        f"got {value!r}")
    return text


def integer(value: Any, what: str, low: int | None = None, high: int | None = None) -> int:
    """An integer (an integral float is accepted) within [low, high], or UserError naming ``what``."""
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value == int(value)
    if ok:
        value = int(value)
        ok = (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        bounds = (f" >= {low}" if high is None else f" in [{low}, {high}]") if low is not None else ""
        raise UserError(f"{what} must be an integer{bounds}, got {value!r}")
    return int(value)


def number(value: Any, what: str, positive: bool = False) -> float:
    """A finite number (positive if asked), or UserError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (
            positive and value <= 0):
        raise UserError(f"{what} must be a {'positive finite' if positive else 'finite'} number, got {value!r}")
    return float(value)


def seed(value: Any, what: str = "--seed") -> int:
    return integer(value, what, 0, MAX_SEED)


def workers(value: Any, what: str = "--workers") -> int:
    return integer(value, what, 1, MAX_WORKERS)


# ------------------------------------------------------------------ adapters
def _adapter(task: Any) -> str:
    cls = task if isinstance(task, type) else type(task)
    return f"task adapter {cls.__module__}:{cls.__qualname__}"


def check_adapter_class(cls: type) -> None:
    """Before building: every abstract method implemented and a valid ``mode``."""
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise AdapterError(f"{_adapter(cls)} does not implement {', '.join(missing)} "
                           "(every Task must; see ohgw_bench/tasks/base.py)")
    if getattr(cls, "mode", None) not in ("min", "max"):
        raise AdapterError(f"{_adapter(cls)}: mode must be 'min' or 'max', got {getattr(cls, 'mode', None)!r}")


def check_adapter(task: Any) -> None:
    """After building, before any training: the search space and fidelity a scheduler needs."""
    from ohgw_bench.space import SearchSpace

    check_adapter_class(type(task))
    space = task.space
    if not isinstance(space, SearchSpace) or len(space) == 0:
        raise AdapterError(f"{_adapter(task)}: space must be a non-empty SearchSpace, got {space!r}")
    f = task.fidelity
    if not (isinstance(f.min, int) and isinstance(f.max, int) and 1 <= f.min <= f.max):
        raise AdapterError(f"{_adapter(task)}: fidelity {f.name!r} must have integers 1 <= min <= max, "
                           f"got min={f.min!r}, max={f.max!r}")


def check_cost(task: Any, value: Any, start: int, stop: int) -> float:
    """A cost the simulated clock can advance by: finite and > 0 (0 or NaN would loop forever)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise AdapterError(f"{_adapter(task)}: cost(config, {start}, {stop}) must be a finite number > 0 "
                           f"(simulated seconds), got {value!r}")
    return float(value)


def check_metrics(task: Any, metrics: Any) -> Mapping[str, Any]:
    """evaluate()'s result must be a mapping of metric names to numbers."""
    if not isinstance(metrics, Mapping):
        raise AdapterError(f"{_adapter(task)}: evaluate() must return a dict with {task.metric!r} and "
                           f"{task.test_metric!r}, got {type(metrics).__name__} {str(metrics)[:60]!r}")
    return metrics


# ------------------------------------------------------------------ the study-folder lock
@contextlib.contextmanager
def study_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``<folder's parent>/.<name>.lock`` while a study runs.

    The lock file sits beside the folder (``--overwrite`` removes the folder itself). The kernel
    releases a flock when its process dies, so a lock left by a killed process is never stale;
    the file itself stays and is harmless. A second process gets :class:`StudyLocked`.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    path = folder.parent / f".{folder.name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise StudyLocked(f"{folder} is being run by another process (pid {holder}); "
                              "wait for it or stop it, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# ------------------------------------------------------------------ YAML
def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})", key_node.start_mark)
            with contextlib.suppress(TypeError):
                seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def check_horizon(settings: Any, task: Any, seed: int) -> None:
    """An explicit lookahead horizon must fit in the batches the task's hyper-problem offers.

    The hyper-gradient clamps a larger horizon (``horizon_clamped`` in the record), so
    ``--horizon 500`` would silently run, and be filed, as a much shorter lookahead.
    """
    if settings.horizon is None or settings.split_batch or settings.variant not in ("ohgw", "sham") \
            or getattr(task, "hypergrad_method", "none") != "autograd":
        return
    try:
        available = len(task.hyper_problem(task.space.default_config(), seed, int(settings.horizon), False).train_batches)
    except Exception:  # noqa: BLE001 - a broken hyper_problem is the warm-start's to record, trial by trial
        return
    if int(settings.horizon) > available:
        raise UserError(f"--horizon {settings.horizon} is more than the {available} training batches (one epoch) "
                        f"that task {task.id} offers a lookahead; use at most {available}")
