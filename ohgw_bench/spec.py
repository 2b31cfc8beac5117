"""A study's settings, resolved once at the door: :class:`StudySpec` -> :class:`ResolvedStudy`.

:class:`StudySpec` is the request as the command line (``run``), an experiment file
(``experiment``) or Python code gives it, with ``sources`` saying where each field came from
(``--budget``, ``key 'grids[0].budget'``), so that an error names the field where the user set
it. Two steps, each done once:

- :meth:`StudySpec.check` validates every field that needs no task built (types and ranges, the
  scheduler's and the task's declared options, the backend); the experiment file's
  ``--dry-run`` stops there.
- :meth:`StudySpec.resolve` builds and prepares the task and returns the frozen
  :class:`ResolvedStudy`: canonical scheduler name and task ids, options checked with their
  defaults filled in, the concrete budget and tau (a task's defaults when none was given), the
  variant label, the folder and the study id. It is written to study.json (``resolved``) and
  every later layer (scheduler, backend, recorder, summary, readers) trusts it.

The command-line flag of each field is declared once (:mod:`ohgw_bench.flags`): ``run`` reads
its values through it and ``analysis/studies_csv.py`` writes the ``command`` column with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ohgw_bench import validate
from ohgw_bench.errors import DataMissingError, UserError
from ohgw_bench.flags import FLAGS, WARM_START_FLAGS, dest
from ohgw_bench.warmstart import WarmStartSettings

if TYPE_CHECKING:
    from ohgw_bench.tasks.base import Task

def where_prefixed(where: str, error: UserError) -> UserError:
    """``error`` with ``where`` (a flag or a YAML key) in front, keeping its class (exit code)."""
    return type(error)(f"{where}: {error}")


@dataclass(frozen=True)
class TaskChoice:
    """A task name resolved against the registry and its options checked (no adapter built yet)."""

    name: str  # canonical registry id (``digits-mlp-v1``), a family member's id, or module:Class
    cls: type
    kwargs: Mapping[str, Any]  # the id's own kwargs and the checked options: the constructor's arguments
    options: Mapping[str, Any]  # the checked options alone, under canonical names

    def build(self, data_dir: str | None) -> Task:
        """The adapter; one that cannot be built is the user's to fix, so it is one line, not a traceback."""
        from ohgw_bench import tasks

        try:
            task = tasks.build(self.name, self.cls, dict(self.kwargs), data_dir)
            validate.check_adapter(task)  # an empty space or min > max fidelity: named before any work
            return task
        except UserError:
            raise
        except SyntaxError as e:
            raise UserError(f"task {self.name!r}: its module does not parse: {e.msg} ({e.filename}, line {e.lineno})"
                            ) from None
        except Exception as e:  # noqa: BLE001 - any error of a user's adapter constructor
            raise UserError(f"task {self.name!r}: the adapter failed to build: {type(e).__name__}: {e}") from None


def choose_task(name: str, options: Mapping[str, Any], where: str = "task", options_where: str = "task_options"
                ) -> TaskChoice:
    """``name`` resolved and ``options`` validated against what the adapter declares (imports its
    module, loads no data): the one place task options are checked."""
    from ohgw_bench import tasks

    try:
        task_name, entry_point, fixed = tasks.resolve(name)
        cls = tasks._load(entry_point)
    except UserError as e:
        raise where_prefixed(where, e) from None
    try:
        checked = tasks.check_options(task_name, cls, fixed, dict(options))
    except UserError as e:
        raise where_prefixed(options_where, e) from None
    return TaskChoice(task_name, cls, {**fixed, **checked}, checked)


@dataclass(frozen=True)
class Checked:
    """What :meth:`StudySpec.check` found: the canonical scheduler and its full options, and the task."""

    scheduler: str
    scheduler_options: Mapping[str, Any]
    task: TaskChoice


@dataclass(frozen=True)
class StudySpec:
    """A study as asked for: (task, scheduler, warm-start variant, seed, budget) and how to run it.

    ``None`` for ``budget`` and ``tau`` means the task's own; ``sources`` maps a field to where
    it came from (a flag or a YAML key; the field's name where absent) and is not part of the
    study. Nothing is checked until :meth:`check` / :meth:`resolve`.
    """

    task: str = "digits"
    scheduler: str = "asha"
    warm_start: WarmStartSettings = field(default_factory=WarmStartSettings)
    seed: int = 0
    budget: float | None = None
    n_workers: int = 4
    backend: str = "simulated"
    experiment: str = "default"
    results_dir: str = "results"
    data_dir: str | None = None
    task_options: Mapping[str, Any] = field(default_factory=dict)
    scheduler_options: Mapping[str, Any] = field(default_factory=dict)
    tau: float | None = None
    max_failures: int = 20
    max_consecutive_failures: int = 10
    task_label: str | None = None
    #: wall seconds one fidelity unit (train + evaluate) of a trial may take before the trial fails;
    #: None: no limit. Not part of the identity: it guards against hangs, it does not shape records.
    unit_timeout: float | None = 3600.0
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def where(self, name: str) -> str:
        """Where field ``name`` came from, for error messages: its flag, its YAML key, else its name."""
        return self.sources.get(name, name)

    def as_dict(self) -> dict[str, Any]:
        """The request as study.json's ``spec`` keeps it (``sources`` left out)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
        d["warm_start"] = self.warm_start.as_dict()
        d["variant_label"] = self.warm_start.label()
        d["task_options"] = dict(self.task_options)
        d["scheduler_options"] = dict(self.scheduler_options)
        return d

    def identity(self) -> dict[str, Any]:
        """The request's identity as study.json files before ``resolved`` existed recorded it."""
        d = self.as_dict()
        for key in ("results_dir", "data_dir", "unit_timeout"):
            d.pop(key)
        return d

    def check(self) -> Checked:
        """Validate every field that needs no task built; UserError naming the field's source."""
        from ohgw_bench import baselines

        w = self.where
        validate.seed(self.seed, w("seed"))
        if self.budget is not None:
            validate.number(self.budget, w("budget"), positive=True)
        if self.tau is not None:
            validate.number(self.tau, w("tau"))
        validate.workers(self.n_workers, w("n_workers"))
        validate.integer(self.max_failures, w("max_failures"), 0)
        validate.integer(self.max_consecutive_failures, w("max_consecutive_failures"), 1)
        if self.unit_timeout is not None:
            validate.number(self.unit_timeout, w("unit_timeout"), positive=True)
        validate.path_component(self.experiment, w("experiment"))
        if self.task_label is not None:
            validate.path_component(self.task_label, w("task_label"))
        if not isinstance(self.warm_start, WarmStartSettings):
            raise UserError(f"{w('warm_start')} must be a WarmStartSettings, got {self.warm_start!r}")
        if self.backend not in baselines.ALL_BACKENDS:
            raise UserError(f"{w('backend')} must be one of {', '.join(baselines.ALL_BACKENDS)}, got {self.backend!r}")
        try:
            scheduler = baselines.canonical_name(self.scheduler)
            supported = baselines.spec(scheduler).backends
        except UserError as e:
            raise where_prefixed(w("scheduler"), e) from None
        if self.backend not in supported:
            raise UserError(f"scheduler {scheduler!r} does not support {w('backend')} {self.backend}; "
                            f"it supports: {', '.join(supported)}")
        try:
            options = baselines.validate_options(scheduler, dict(self.scheduler_options))
        except UserError as e:
            raise where_prefixed(w("scheduler_options"), e) from None
        return Checked(scheduler, options, choose_task(self.task, self.task_options, w("task"), w("task_options")))

    def resolve(self) -> tuple[ResolvedStudy, Task]:
        """(the resolved study, its built and prepared task): :meth:`check`, then the task's defaults."""
        checked = self.check()
        task = checked.task.build(self.data_dir)
        try:
            task.prepare()
        except DataMissingError:
            raise
        except FileNotFoundError as e:
            raise DataMissingError(f"task {task.id}: {e}") from None
        budget = float(self.budget if self.budget is not None else task.default_budget)
        tau = float(self.tau if self.tau is not None else task.tau)
        label = self.warm_start.label()
        level = self.task_label or task.id
        folder = (Path(self.results_dir) / self.experiment / level.replace(":", ".")
                  / checked.scheduler.replace(":", ".") / label / f"seed-{self.seed}")
        resolved = ResolvedStudy(
            task=checked.task.name, task_id=task.id, task_label=self.task_label,
            task_options=dict(checked.task.options), scheduler=checked.scheduler,
            scheduler_options=dict(checked.scheduler_options), warm_start=self.warm_start, variant_label=label,
            seed=self.seed, budget=budget, tau=tau, n_workers=self.n_workers, backend=self.backend,
            experiment=self.experiment, results_dir=str(self.results_dir), data_dir=self.data_dir,
            max_failures=self.max_failures, max_consecutive_failures=self.max_consecutive_failures,
            unit_timeout=self.unit_timeout, folder=str(folder),
            study_id=f"{self.experiment}/{level}/{checked.scheduler}/{label}/seed-{self.seed}", request=self)
        return resolved, task


@dataclass(frozen=True)
class ResolvedStudy:
    """A study fully resolved: what every layer after :meth:`StudySpec.resolve` reads, unchecked.

    ``task`` is the canonical name the task was built from (a trial process rebuilds it from
    that), ``task_id`` the adapter's id (folder and records); ``scheduler_options`` hold every
    declared option (defaults filled in), ``task_options`` the given ones under canonical names.
    """

    task: str
    task_id: str
    task_label: str | None
    task_options: Mapping[str, Any]
    scheduler: str
    scheduler_options: Mapping[str, Any]
    warm_start: WarmStartSettings
    variant_label: str
    seed: int
    budget: float
    tau: float
    n_workers: int
    backend: str
    experiment: str
    results_dir: str
    data_dir: str | None
    max_failures: int
    max_consecutive_failures: int
    unit_timeout: float | None
    folder: str
    study_id: str
    request: StudySpec = field(compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """study.json's ``resolved`` (the request is kept apart, as ``spec``)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "request"}
        d["warm_start"] = self.warm_start.as_dict()
        d["task_options"] = dict(self.task_options)
        d["scheduler_options"] = dict(self.scheduler_options)
        return d

    @property
    def failure_sources(self) -> tuple[str, str]:
        """Where the two failure limits came from (their flag or YAML key), for the stop message."""
        return self.request.where("max_failures"), self.request.where("max_consecutive_failures")

    def identity(self) -> dict[str, Any]:
        """The fields that must match for two runs to share a study folder."""
        d = self.as_dict()
        for key in ("results_dir", "data_dir", "unit_timeout", "folder"):
            d.pop(key)
        return d

    def legacy_identity(self) -> dict[str, Any]:
        """The identity a study.json without ``resolved`` recorded (the request's, canonical scheduler)."""
        return {**self.request.identity(), "scheduler": self.scheduler}


def spec_from_dict(d: Mapping[str, Any]) -> StudySpec:
    """Inverse of :meth:`StudySpec.as_dict` (extra keys such as ``variant_label`` are ignored)."""
    names = {f.name for f in fields(StudySpec)}
    kw = {k: v for k, v in d.items() if k in names}
    if isinstance(kw.get("warm_start"), Mapping):
        kw["warm_start"] = WarmStartSettings(**kw["warm_start"])
    return StudySpec(**kw)


__all__ = ["FLAGS", "WARM_START_FLAGS", "Checked", "ResolvedStudy", "StudySpec", "TaskChoice", "choose_task",
           "dest", "spec_from_dict"]
