"""OHGW as a library call: warm-start a config of a task from your own training loop.

The benchmark's studies apply the warm-start inside their schedulers; these functions give the
same call to a loop the package does not run (your own Optuna objective, your own Syne Tune
Tuner, a plain ``for``). Unlike the study's internal path, which records an error in the
warm-start record and trains the config unchanged (a study must not crash on one trial),
the public call raises: a config that does not match the task's space is a ValueError naming
the missing and unexpected keys, and any other failure of the hyper-gradient propagates.

``docs/library.md`` has runnable examples (``tests/test_library.py`` runs them verbatim).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ohgw_bench.tasks.base import Task
    from ohgw_bench.warmstart import WarmStart, WarmStartSettings

__all__ = ["WarmStarter", "check_config", "make_task", "paired_seed", "warm_start"]


def make_task(task: str | Task, **options: Any) -> Task:
    """A prepared task: a registered id (``"digits"``), a ``module:Class`` or your own Task instance."""
    from ohgw_bench.tasks import make
    from ohgw_bench.tasks.base import Task

    if isinstance(task, str):
        task = make(task, **options)
    elif not isinstance(task, Task):
        raise TypeError(f"task must be a task id or an ohgw_bench Task, got {type(task).__name__}")
    elif options:
        raise TypeError("options are for a task given by id; build your Task instance with them instead")
    task.prepare()
    return task


def check_config(task: Task, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as the task's space expects it; ValueError naming missing and unexpected keys."""
    from ohgw_bench.space import SpaceError

    names = task.space.names
    missing = [n for n in names if n not in config]
    extra = sorted(str(k) for k in config if k not in names)
    if missing or extra:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + \
                ([f"unexpected {', '.join(map(repr, extra))}"] if extra else [])
        raise SpaceError(f"config does not match the search space of task {task.id or type(task).__name__} "
                         f"({', '.join(names)}): {'; '.join(parts)}")
    return task.space.validate(config)


def paired_seed(study_seed: int, index: int) -> int:
    """Training seed of the ``index``-th config (0, 1, ...) of a study: the same in every arm.

    Train the ``index``-th trial from this seed and pass it to the warm-start, and the vanilla
    and warm-started arms of one study seed start each trial from the same initial weights.
    """
    from ohgw_bench.trial_plan import trial_seed

    return trial_seed(int(study_seed), int(index))


def _settings(settings: str | WarmStartSettings) -> WarmStartSettings:
    from ohgw_bench.warmstart import WarmStartSettings

    if isinstance(settings, WarmStartSettings):
        return settings
    if isinstance(settings, str):
        return WarmStartSettings.parse(settings)
    raise TypeError(f"settings must be a variant string such as 'ohgw' or a WarmStartSettings, got {settings!r}")


class WarmStarter:
    """One task's warm-start for a whole study of trials: :meth:`apply` per new config.

    Keeping one object across trials measures the plain training step (the cost baseline in
    each record) once, as a study does; ``seed`` seeds the warm-start's own generator (the
    random-direction control), never your sampler's.
    """

    def __init__(self, task: str | Task, settings: str | WarmStartSettings = "ohgw", seed: int = 0):
        from ohgw_bench.warmstart import WarmStart

        self.task = make_task(task)
        self.settings = _settings(settings)
        self._warm: WarmStart = WarmStart(self.settings, self.task, seed=int(seed), strict=True)

    def apply(self, config: Mapping[str, Any], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the config to train, the warm-start record) for a trial trained from ``seed``."""
        checked = check_config(self.task, config)
        return self._warm.apply(checked, int(seed))


def warm_start(task: str | Task, config: Mapping[str, Any], settings: str | WarmStartSettings = "ohgw",
               seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Nudge ``config`` of ``task`` once: (the config to train, the warm-start record).

    ``settings`` is a variant string as ``--warm-start`` takes it (``"ohgw"``,
    ``"ohgw-normalized"``, ``"random-normalized"``, ...) or a WarmStartSettings; ``seed`` is
    the seed the trial trains from, so the hyper-gradient is taken from the same initial
    weights (use :func:`paired_seed` for the n-th trial of a study). Raises ValueError for a
    config that does not match the task's space.
    """
    return WarmStarter(task, settings, seed).apply(config, seed)
