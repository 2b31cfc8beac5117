"""Task registry: versioned ids mapped to lazy ``"module:Class"`` entry points.

Listing tasks imports nothing heavy (Gymnasium's registration style); a task module is
imported only when a task is made. Three ways to name a task:

- a registered id or its short alias (``digits-mlp-v1`` or ``digits``);
- a registered family pattern (``uci-<name>-mlp`` for any CSV in the data dir,
  ``atari-<game>`` for any ALE game);
- ``some.module:MyTask`` for a user's own adapter, without registration.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ohgw_bench.errors import UserError
from ohgw_bench.tasks.base import Fidelity, Task

__all__ = ["Fidelity", "Task", "TaskSpec", "build", "check_options", "make", "register", "register_task", "registry",
           "resolve", "validate_options"]

#: the 34 OpenML task ids of LCBench, in the order of ``ohgw_bench/data/lcbench/config_space.json``
#: (kept here so that listing tasks reads no file; ``tests/test_lcbench.py`` checks them against it)
LCBENCH_IDS: tuple[str, ...] = (
    "3945", "7593", "34539", "126025", "126026", "126029", "146212", "167104", "167149", "167152", "167161",
    "167168", "167181", "167184", "167185", "167190", "167200", "167201", "168329", "168330", "168331", "168335",
    "168868", "168908", "168910", "189354", "189862", "189865", "189866", "189873", "189905", "189906", "189908",
    "189909")
LCBENCH_DEFAULT_ID = "3945"  # the config space's default instance; alias ``lcbench``


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: id, entry point, constructor kwargs, short aliases and one line of help."""

    id: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    family: str = ""


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    entry_point: str
    template: str
    description: str
    family: str


registry: dict[str, TaskSpec] = {}
_aliases: dict[str, str] = {}
_patterns: list[_Pattern] = []


def register(
    task_id: str,
    entry_point: str | Callable[..., Task],
    *,
    aliases: tuple[str, ...] = (),
    description: str = "",
    family: str = "",
    **kwargs: Any,
) -> TaskSpec:
    """Register ``task_id`` (versioned, e.g. ``cifar10-resnet20-v1``) with a lazy entry point."""
    if task_id in registry:
        raise ValueError(f"task id {task_id!r} is already registered")
    if not isinstance(entry_point, str):
        entry_point = f"{entry_point.__module__}:{entry_point.__qualname__}"
    spec = TaskSpec(task_id, entry_point, dict(kwargs), tuple(aliases), description, family)
    registry[task_id] = spec
    for alias in aliases:
        _aliases[alias] = task_id
    return spec


def register_task(task_id: str, **register_kwargs: Any) -> Callable[[type[Task]], type[Task]]:
    """Class decorator for adapters defined in a user's module (timm-style)."""

    def wrap(cls: type[Task]) -> type[Task]:
        register(task_id, cls, description=register_kwargs.pop("description", cls.description), **register_kwargs)
        cls.id = cls.id or task_id
        return cls

    return wrap


def register_pattern(pattern: str, entry_point: str, template: str, description: str, family: str) -> None:
    """Register a family of ids: named groups of ``pattern`` become constructor kwargs."""
    _patterns.append(_Pattern(re.compile(pattern), entry_point, template, description, family))


def _load(entry_point: str) -> type[Task]:
    module_name, _, attr = entry_point.partition(":")
    if not attr:
        raise UserError(f"task entry point {entry_point!r} must look like 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or module_name
        if missing.split(".")[0] in module_name.split(".")[0] or missing == module_name:
            raise UserError(f"cannot import task module {module_name!r}: {e}") from None
        raise UserError(
            f"task module {module_name!r} needs the package {missing!r}: "
            f"install the extra that provides it, e.g. pip install -e '.[all]'"
        ) from None
    except SyntaxError as e:
        raise UserError(f"task {entry_point!r}: its module does not parse: {e.msg} ({e.filename}, line {e.lineno})"
                        ) from None
    except Exception as e:  # noqa: BLE001 - any error while a user's module runs at import
        raise UserError(f"task {entry_point!r}: importing its module failed: {type(e).__name__}: {e}") from None
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise UserError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UserError(f"{entry_point!r} is not a subclass of ohgw_bench.tasks.Task")
    from ohgw_bench.validate import check_adapter_class

    check_adapter_class(cls)  # missing methods or a bad mode: named here, not as "bad options []"
    return cls


def resolve(name: str) -> tuple[str, str, dict[str, Any]]:
    """(canonical id, entry point, kwargs) for a task name, alias, family member or module:Class."""
    if name in registry:
        spec = registry[name]
        return spec.id, spec.entry_point, dict(spec.kwargs)
    if name in _aliases:
        spec = registry[_aliases[name]]
        return spec.id, spec.entry_point, dict(spec.kwargs)
    for pat in _patterns:
        m = pat.regex.fullmatch(name)
        if m:
            kwargs = {k: v for k, v in m.groupdict().items() if v is not None}
            return pat.template.format(**kwargs), pat.entry_point, kwargs
    if ":" in name:
        return name, name, {}
    import difflib

    names = sorted(registry) + sorted(_aliases)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(f"{t} ({', '.join(registry[t].aliases)})" if registry[t].aliases else t for t in sorted(registry))
    families = ", ".join(pat.template for pat in _patterns)
    raise UserError(f"unknown task {name!r}; {hint}known tasks (aliases): {known}; families: {families} "
                    f"(or module:Class for your own adapter)")


def validate_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the task's declared options (one-line UserError naming the valid ones).

    Imports the adapter's module but loads no data. A study checks its options through
    :func:`ohgw_bench.spec.choose_task`, which calls :func:`check_options` as this does.
    """
    task_id, entry_point, fixed = resolve(name)
    return check_options(task_id, _load(entry_point), fixed, options)


def check_options(task_id: str, cls: type[Task], fixed: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Validated options; one the task id itself sets (a dataset, an OpenML task id) may not be overridden,
    or a study of one dataset would run under another's id."""
    from ohgw_bench.options import validate

    checked = validate(cls.declared_options(), options, f"task {task_id}", defaults=False)
    for key in sorted(set(checked) & set(fixed)):
        if checked[key] != fixed[key]:
            raise UserError(f"task {task_id}: option {key!r} is set by the task id ({fixed[key]!r}); "
                            f"choose another id instead of --task-option {key}={checked[key]}")
    return checked


def make(name: str, data_dir: Any = None, **options: Any) -> Task:
    """Build the task ``name`` (see :func:`resolve`) with its data directory and validated options."""
    task_id, entry_point, kwargs = resolve(name)
    cls = _load(entry_point)
    return build(task_id, cls, {**kwargs, **check_options(task_id, cls, kwargs, options)}, data_dir)


def build(task_id: str, cls: type[Task], kwargs: dict[str, Any], data_dir: Any = None) -> Task:
    """Instantiate ``cls`` with ``kwargs`` already checked (by :func:`make` or a resolved study) and
    give it its id: the registered one plus the instance's ``label_suffix`` (``-mini``)."""
    try:
        task = cls(data_dir=data_dir, **kwargs)
    except TypeError as e:
        raise UserError(f"task {task_id}: bad options {sorted(kwargs)}: {e}") from None
    label = task_id + getattr(task, "label_suffix", "")  # e.g. "-mini": a run not on the real data
    if not getattr(task, "id", ""):
        task.id = label
    elif ":" not in task_id and task.id != label:  # a registered id (a module:Class keeps its own id)
        task.id = label
    return task


def _builtin() -> None:
    register("digits-mlp-v1", "ohgw_bench.tasks.digits:DigitsTask", aliases=("digits",), family="digits",
             description="UCI optdigits bundled with scikit-learn, small MLP, SGD (the embedded default)")
    for ds in ("breast_cancer", "wine", "iris", "digits", "diabetes"):
        kind = "regression" if ds == "diabetes" else "classification"
        register(f"uci-{ds}-mlp-v1", "ohgw_bench.tasks.uci_mlp:UCIMLPTask", aliases=(f"uci-{ds}-mlp",),
                 dataset=ds, family="uci",
                 description=f"UCI {ds} ({kind}, scikit-learn bundled), MLP, autograd warm-start")
        register(f"uci-{ds}-xgb-v1", "ohgw_bench.tasks.uci_xgb:UCIXGBTask", aliases=(f"uci-{ds}-xgb",),
                 dataset=ds, family="uci",
                 description=f"UCI {ds} ({kind}, scikit-learn bundled), XGBoost, finite-difference warm-start")
    register("digits-mlp-loss-v1", "ohgw_bench.tasks.digits_loss:DigitsLossTask", aliases=("digits-loss",),
             family="digits", description="optdigits, 64-unit MLP, SGD; metric = validation cross-entropy")
    for ds, kind in (("clf", "classification, val_error"), ("reg", "regression, val_rmse")):
        register(f"synth-{ds}-mlp-v1", "ohgw_bench.tasks.synth_mlp:SynthMLPTask", aliases=(f"synth-{ds}",),
                 dataset=ds, family=f"synth-{ds}",
                 description=f"seeded synthetic {kind}, 5,000 validation rows, MLP, autograd warm-start")
    register_pattern(r"uci-(?P<dataset>[A-Za-z0-9_]+)-mlp(-v1)?", "ohgw_bench.tasks.uci_mlp:UCIMLPTask",
                     "uci-{dataset}-mlp-v1", "any UCI CSV at <data-dir>/uci/<name>.csv, MLP", "uci")
    register_pattern(r"uci-(?P<dataset>[A-Za-z0-9_]+)-xgb(-v1)?", "ohgw_bench.tasks.uci_xgb:UCIXGBTask",
                     "uci-{dataset}-xgb-v1", "any UCI CSV at <data-dir>/uci/<name>.csv, XGBoost", "uci")
    for n in (10, 100):
        register(f"cifar{n}-resnet20-v1", "ohgw_bench.tasks.cifar:CifarTask", aliases=(f"cifar{n}",),
                 num_classes=n, family="vision",
                 description=f"CIFAR-{n} python pickle batches, ResNet-20 (0.27M parameters), SGD")
    register("imagenet-resnet50-v1", "ohgw_bench.tasks.imagenet:ImageNetTask", aliases=("imagenet",),
             arch="resnet50", family="vision",
             description="ImageNet ILSVRC train/val folders, torchvision ResNet-50 (random init)")
    register("imagenet-vit-v1", "ohgw_bench.tasks.imagenet:ImageNetTask", aliases=("imagenet-vit",),
             arch="vit", family="vision",
             description="ImageNet ILSVRC train/val folders, a small torchvision ViT (random init)")
    for name in ("wikitext103", "wikitext2"):
        register(f"{name}-gpt2-v1", "ohgw_bench.tasks.wikitext:WikiTextTask", aliases=(name,),
                 variant=name, family="text",
                 description=f"{name} token files or hub parquet, GPT-2-style LM (random init), AdamW")
    register("cartpole-ppo-v1", "ohgw_bench.tasks.cartpole:CartPoleTask", aliases=("cartpole",), family="rl",
             description="Gymnasium CartPole-v1, stable-baselines3 PPO with an MLP policy")
    for game in ("pong", "breakout"):
        register(f"atari-{game}-ppo-v1", "ohgw_bench.tasks.atari:AtariTask", aliases=(f"atari-{game}",),
                 game=game, family="rl",
                 description=f"ALE {game.capitalize()} (ROM shipped in ale-py), stable-baselines3 PPO-CNN")
    register_pattern(r"atari-(?P<game>[a-z_]+)(-ppo-v1)?", "ohgw_bench.tasks.atari:AtariTask",
                     "atari-{game}-ppo-v1", "any ALE game by name, PPO-CNN", "rl")
    for tid in LCBENCH_IDS:
        register(f"lcbench-{tid}-v1", "ohgw_bench.tasks.lcbench:LCBenchTask", openml_task_id=tid, family="lcbench",
                 aliases=("lcbench",) if tid == LCBENCH_DEFAULT_ID else (),
                 description=f"LCBench OpenML task {tid} (YAHPO Gym ONNX surrogate, vendored), epochs 1-52, "
                             "val cross-entropy")
    register_pattern(r"lcbench-(?P<openml_task_id>[^-]+)(-v1)?", "ohgw_bench.tasks.lcbench:LCBenchTask",
                     "lcbench-{openml_task_id}-v1", "any of the 34 LCBench OpenML task ids, e.g. lcbench-3945",
                     "lcbench")
    register("table-curves-v1", "ohgw_bench.tasks.table:TableTask", aliases=("table",), family="table",
             description="in-memory table of closed-form learning curves, hundreds of trials a second "
                         "(scheduler checks)")


_builtin()
