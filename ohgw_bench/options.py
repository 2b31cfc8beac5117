"""Declared options of schedulers and tasks, and the one validator every entry point uses.

A scheduler or task states each option it reads (name, type, range or choices, default, one
line of help) as an :class:`Option`. :func:`validate` checks what a user gave against those
declarations *before any work*: an unknown name or a value of the wrong type or range is a
:class:`~ohgw_bench.errors.UserError` whose single line names the valid options. This is what
Optuna and SMAC do with their typed distributions and ConfigSpace, and what keeps a misspelt
``grace_perod`` from being silently ignored for a whole experiment.

Values arrive already parsed from JSON (``--scheduler-option eta=3`` gives the int 3), so the
checks are on Python types: an ``int`` option takes an integral number, a ``float`` option any
finite number, a ``bool`` option only ``true``/``false``, and ``type=None`` any value.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ohgw_bench.errors import UserError

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


@dataclass(frozen=True)
class Option:
    """One option: ``type`` is int, float, bool, str or None (any value); bounds are inclusive."""

    name: str
    type: type | None
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    aliases: tuple[str, ...] = ()

    def expects(self) -> str:
        """What a valid value looks like, in words (used in error messages and --help listings)."""
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            text = _TYPE_NAMES.get(self.type, "any value") if self.type is not None else "any value"
            if self.low is not None and self.high is not None:
                text += f" in [{self.low}, {self.high}]"
            elif self.low is not None:
                text += f" >= {self.low}"
            elif self.high is not None:
                text += f" <= {self.high}"
        return text + (" or null" if self.nullable else "")

    def coerce(self, value: Any, where: str) -> Any:
        """``value`` checked (and an integral float turned into an int); raises UserError otherwise."""
        if value is None and (self.nullable or self.type is None):
            return None
        bad = UserError(f"{where}: option {self.name!r} expects {self.expects()}, got {value!r}")
        if self.type is bool:
            if not isinstance(value, bool):
                raise bad
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            if isinstance(value, float):
                if not (math.isfinite(value) and value == int(value)):
                    raise bad
                value = int(value)
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise bad
            value = float(value)
        elif self.type is str:
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # `--task-option openml_task_id=7593` parses as a number
            if not isinstance(value, str):
                raise bad
        if self.choices is not None and value not in self.choices:
            raise bad
        if self.low is not None and value < self.low:
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        return value

    def line(self) -> str:
        """``name (expects, default d): help`` for listings."""
        names = "/".join((self.name, *self.aliases))
        return f"{names} ({self.expects()}, default {self.default!r}): {self.help}"


def validate(declared: Iterable[Option], given: Mapping[str, Any], where: str,
             defaults: bool = True) -> dict[str, Any]:
    """Check ``given`` against ``declared``; return canonical names mapped to checked values.

    ``where`` starts every error line (e.g. ``"scheduler 'asha'"``). With ``defaults`` the
    declared defaults fill in what was not given, so a scheduler reads every option it declares
    from one dict; tasks pass ``defaults=False`` because their constructors hold the defaults.
    An alias and its canonical name given together is an error, as is any undeclared name.
    """
    declared = tuple(declared)
    by_name: dict[str, Option] = {}
    for opt in declared:
        for n in (opt.name, *opt.aliases):
            by_name[n] = opt
    out: dict[str, Any] = {o.name: o.default for o in declared} if defaults else {}
    seen: dict[str, str] = {}
    for key, value in given.items():
        opt = by_name.get(key)
        if opt is None:
            valid = ", ".join(o.name for o in declared)
            raise UserError(f"{where}: unknown option {key!r}; "
                            + (f"valid options: {valid}" if valid else "it takes no options"))
        if opt.name in seen:
            raise UserError(f"{where}: option {opt.name!r} given twice (as {seen[opt.name]!r} and {key!r})")
        seen[opt.name] = key
        out[opt.name] = opt.coerce(value, where)
    return out


def declares(*options: Option) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator recording a scheduler factory's options as ``factory.options``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.options = tuple(options)  # type: ignore[attr-defined]
        return fn

    return wrap


def _type_of(param: inspect.Parameter) -> tuple[type | None, bool]:
    """(type, nullable) of a constructor parameter, from its default or its annotation's text."""
    default = param.default
    for t in (bool, int, float, str):
        if type(default) is t:
            return (float if t is int and "float" in str(param.annotation) else t), False
    if default is None:
        ann = str(param.annotation)
        head = ann.split("|")[0].strip()
        for t in (bool, int, float, str):
            if head == t.__name__ and ann.replace(" ", "") in (f"{t.__name__}|None", f"Optional[{t.__name__}]"):
                return t, True
    return None, True


def _implied_low(t: type | None, default: Any) -> int | None:
    """The lower bound an integer option implies by its default: a positive default marks a count or
    a size (``hidden=128``, ``max_epochs=27``, ``batch_size=128``), so at least 1; a default of 0 (a
    seed, an offset) at least 0. ``option_declarations`` overrides it where an option differs."""
    if t is not int or isinstance(default, bool) or not isinstance(default, int):
        return None
    return 1 if default > 0 else 0 if default == 0 else None


def from_signature(cls: type, overrides: Iterable[Option] = (), skip: Iterable[str] = ("data_dir",),
                   stop: type = object) -> tuple[Option, ...]:
    """The keyword options a class's constructor takes, following ``**kwargs`` up the MRO.

    Each parameter becomes an Option typed by its default value (or ``X | None`` annotation),
    an integer one bounded below as its default implies (:func:`_implied_low`);
    an Option in ``overrides`` with the same name replaces it (to add a range, choices or help).
    Options reach the base class ``stop`` (:class:`~ohgw_bench.tasks.base.Task` passes itself)
    only through ``**options``, which accepts anything, so the walk stops there: an undeclared
    name is refused. (``stop`` is a parameter so that this module does not import the tasks.)
    """
    found: dict[str, Option] = {}
    skip = set(skip)
    for klass in cls.__mro__:
        if klass is stop or klass is object or "__init__" not in vars(klass):
            if klass is stop or klass is object:
                break
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        for p in list(params.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in skip or p.name in found:
                continue
            t, nullable = _type_of(p)
            default = None if p.default is inspect.Parameter.empty else p.default
            found[p.name] = Option(p.name, t, default, "constructor argument", nullable=nullable,
                                   low=_implied_low(t, default))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    for opt in overrides:
        found[opt.name] = opt
    return tuple(found.values())
