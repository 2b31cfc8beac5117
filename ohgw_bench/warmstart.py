"""Warm-start variants: config -> (config', record) (docs/design.md sections 1 and 4).

- ``none``: the vanilla scheduler; the config is returned unchanged at no cost.
- ``ohgw``: one hyper-gradient step. Step rules: ``raw`` (psi' = psi - eta_h g_psi, the
  paper's rule, which moves configs by ~1e-7..1e-5 of their range), ``normalized``
  (dz = -rho g_unit / |g_unit|) and ``sign`` (dz = -rho sign(g_unit)) in unit-cube coordinates.
- ``random``: the same step length as the OHGW step, in a uniformly random direction (random
  signs for the sign rule): the control for "any nudge helps". It computes, and is charged
  for, the hyper-gradient, so both arms pay the same.
- ``prior``: the same length along the search space's fixed ``prior`` signs (toward the
  default config where no hyperparameter has one): the control that tells "push lr up" from
  a real gradient.
- ``orth``: the direction control. The OHGW step with its component along the ``prior``
  step's direction removed, rescaled to the OHGW step's length (signs of that remainder for
  the sign rule). Against ``prior`` and ``ohgw`` it answers "does the gradient know more
  than 'raise lr'?": where the OHGW step is parallel to the prior direction there is nothing
  left and the config is unchanged (``reason`` says so). Every record of a variant that steps
  carries ``cos_prior``, the cosine between the OHGW step and the prior step (same rule).
- ``sham``: computes the hyper-gradient and the OHGW step exactly as ``ohgw`` does (same
  settings, same cost, same charge on the simulated clock), then leaves the config unchanged.
  Against ``ohgw`` it isolates the nudge; against ``none`` it isolates the overhead (the
  timeline shift). Its record has ``applied: false``, ``sham: true`` (false for every other
  variant), the step it did not take in ``step_unit_proposed`` and an empty ``step_unit``.
- ``oracle`` (surrogate tasks only, ``hypergrad_method = "surrogate"``): the ``ohgw`` step rule
  and length applied to the gradient of the metric at the MAXIMUM fidelity instead of the
  minimum: the best local direction a nudge of that size could take, so an upper bound on what
  such a nudge can buy. On a surrogate task ``ohgw`` (and the controls) use the gradient at the
  minimum fidelity (epoch 1, every scheduler's first rung): the noise-free version of what one
  mini-batch of real training estimates. Both are charged the task's declared
  :meth:`~ohgw_bench.tasks.base.Task.warm_start_charge`.

Hyperparameters declared ``grad="finite_difference"`` in an autograd task (dropout) are left
unchanged by the autograd warm-start: one step moves only what the lookahead differentiates,
and spending two objective evaluations per such hyperparameter would change what the arm
costs. The record says so: ``left_unchanged`` maps each to the reason, and ``moved_by`` maps
every moved hyperparameter to the method that moved it (``autograd-exact``,
``finite_difference``, ...). They are moved by central finite differences only where the whole
task is a finite-difference one, or where the autograd path fails and the warm-start falls
back to finite differences over every movable hyperparameter.

Every call returns a JSON-serialisable record with the gradient, the step, and the measured
cost of the warm-start beside one plain training step of the same task. Nothing here draws
from numpy's or torch's global generators, and a failing warm-start never crashes a study:
it leaves the config unchanged and says why.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ohgw_bench.cost import ZERO, Cost, measure
from ohgw_bench.hypergrad import MODES, HyperGradient, finite_difference, hypergradient, plain_step

VARIANTS: tuple[str, ...] = ("none", "ohgw", "random", "prior", "orth", "sham", "oracle")
STEP_RULES: tuple[str, ...] = ("raw", "normalized", "sign")
#: how the simulated clock charges an autograd warm-start: its counted FLOPs, or the task's measured
#: uninstrumented warm-start / plain-step wall ratio x the simulated cost of one plain step
CLOCKS: tuple[str, ...] = ("flops", "calibrated")
_MODE_TOKENS = {"exact": "", "first-order": "fo", "mixed": "mixed"}
_STREAM = 0x0E6E  # keeps the warm-start's generator apart from a scheduler seeded with the same integer


def _fmt(x: float) -> str:
    return f"{x:g}".replace("-", "m").replace("+", "")


def _unfmt(s: str) -> float:
    return float(s.replace("m", "-"))


# The settings each step rule ignores: raw steps by eta_h (rho unused); normalized and sign
# step by rho (eta_h unused). An ignored setting is reset to its default, so it never splits
# one study into two folders.
IGNORED_BY_RULE: dict[str, tuple[str, ...]] = {"raw": ("rho",), "normalized": ("eta_h",), "sign": ("eta_h",)}


@dataclass(frozen=True)
class WarmStartSettings:
    """Which warm-start a study runs; the one place its settings are checked.

    For ``variant="none"`` every other field is reset to its default, so all vanilla arms share
    one label (and one results folder); likewise a setting the step rule ignores
    (:data:`IGNORED_BY_RULE`) is reset. Build one from a variant string with :meth:`parse`
    (the command line and experiment files both do)."""

    variant: str = "none"
    eta_h: float = 1e-3
    step_rule: str = "raw"
    rho: float = 0.05
    horizon: int | None = None
    mode: str = "exact"
    split_batch: bool = False
    clock: str = "flops"

    def __post_init__(self) -> None:
        # Types first: an experiment file's split_batch: "no" is a non-empty string (truthy), and
        # horizon: 2.7 would be truncated; both must be refused, not read as something else.
        if not isinstance(self.split_batch, bool):
            raise ValueError(f"split_batch must be true or false, got {self.split_batch!r}")
        if self.horizon is not None and (isinstance(self.horizon, bool) or not isinstance(self.horizon, int)):
            raise ValueError(f"horizon must be an integer >= 1, got {self.horizon!r}")
        for name in ("eta_h", "rho"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if self.clock not in CLOCKS:
            raise ValueError(f"warm-start clock must be one of {CLOCKS}, got {self.clock!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"warm-start variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.step_rule not in STEP_RULES:
            raise ValueError(f"step rule must be one of {STEP_RULES}, got {self.step_rule!r}")
        if self.mode not in MODES:
            raise ValueError(f"hyper-gradient mode must be one of {MODES}, got {self.mode!r}")
        if not (self.eta_h > 0 and math.isfinite(self.eta_h)):
            raise ValueError(f"eta_h must be a positive number, got {self.eta_h}")
        if not (0 < self.rho <= 1):
            raise ValueError(f"rho must be in (0, 1] (unit-cube coordinates), got {self.rho}")
        if self.horizon is not None and int(self.horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        defaults = {f.name: f.default for f in fields(self)}
        reset = [f for f in defaults if f != "variant"] if self.variant == "none" else IGNORED_BY_RULE[self.step_rule]
        for name in reset:
            object.__setattr__(self, name, defaults[name])

    def as_dict(self) -> dict[str, Any]:
        """All settings; ``clock`` only where it is not the default, so studies made before the
        option existed keep their identity (and folder)."""
        d = asdict(self)
        if d["clock"] == "flops":
            d.pop("clock")
        return d

    def label(self) -> str:
        """Short folder-safe name ("ohgw", "ohgw-k2", "random-normalized"); distinct settings, distinct labels.

        Only settings that differ from their defaults appear, and ignored ones were reset, so
        e.g. eta_h never appears in a normalized or sign label."""
        parts = [self.variant]
        if self.variant == "none":
            return "none"
        if self.horizon is not None:
            parts.append(f"k{int(self.horizon)}")
        if self.step_rule != "raw":
            parts.append(self.step_rule)
        if self.rho != 0.05:
            parts.append(f"rho{_fmt(self.rho)}")
        if self.eta_h != 1e-3:
            parts.append(f"eta{_fmt(self.eta_h)}")
        if self.mode != "exact":
            parts.append(_MODE_TOKENS[self.mode])
        if self.split_batch:
            parts.append("split")
        if self.clock != "flops":
            parts.append("cal")
        return "-".join(parts)

    @classmethod
    def parse(cls, variant: str, **overrides: Any) -> WarmStartSettings:
        """Settings from a variant string ("ohgw", "ohgw-k3", or any :meth:`label`) plus keyword fields.

        The one parser of warm-start settings (``--warm-start`` and its flags, an experiment
        file's ``variants``). A keyword that contradicts the string (``parse("ohgw-k3",
        horizon=2)``) is an error; a keyword of None is not given. Raises ValueError.
        """
        head, *tokens = variant.strip().split("-")
        if head not in VARIANTS:
            raise ValueError(f"unknown warm-start {variant!r}: expected one of {', '.join(VARIANTS)}, optionally "
                             "followed by -k<horizon>, -normalized/-sign, -rho<r>, -eta<e>, -fo/-mixed, -split, -cal")
        found: dict[str, Any] = {"variant": head}
        modes = {v: k for k, v in _MODE_TOKENS.items() if v}
        for tok in tokens:
            before = set(found)
            if m := re.fullmatch(r"k(\d+)", tok):
                found["horizon"] = int(m.group(1))
            elif tok in STEP_RULES:
                found["step_rule"] = tok
            elif m := re.fullmatch(r"rho([0-9.em]+)", tok):
                found["rho"] = _unfmt(m.group(1))
            elif m := re.fullmatch(r"eta([0-9.em]+)", tok):
                found["eta_h"] = _unfmt(m.group(1))
            elif tok in modes:
                found["mode"] = modes[tok]
            elif tok == "split":
                found["split_batch"] = True
            elif tok == "cal":
                found["clock"] = "calibrated"
            else:
                raise ValueError(f"unknown part {tok!r} in warm-start {variant!r}")
            if len(found) == len(before):  # ohgw-k2-k3, ohgw-normalized-sign: the last would silently win
                raise ValueError(f"warm-start {variant!r} sets one setting twice (part {tok!r} repeats an earlier one)")
        for key, value in overrides.items():
            if value is None:
                continue
            if key in found and key != "variant" and found[key] != value:
                raise ValueError(f"warm-start {variant!r} sets {key}={found[key]!r}, but {key}={value!r} was given")
            if key == "variant" and value != head:
                raise ValueError(f"warm-start {variant!r} contradicts variant={value!r}")
            found.setdefault(key, value)
        return cls(**found)


def _plain(obj: Any) -> Any:
    """JSON-ready: plain floats (non-finite -> None), lists, dicts with string keys."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool | str) or obj is None:
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    return str(obj)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


@contextlib.contextmanager
def _global_rngs_kept() -> Iterator[None]:
    """A task's hyper_problem may draw from torch's or numpy's global generators: put them back."""
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        np.random.set_state(state)


class WarmStart:
    """Applies one warm-start variant to the configs a scheduler proposes, for one study.

    ``seed`` seeds this object's own numpy Generator (the random direction), never the
    scheduler's. ``strict=True`` re-raises unexpected errors instead of recording them (tests).
    """

    def __init__(self, settings: WarmStartSettings, task: Any, seed: int, *, strict: bool = False):
        self.settings = settings
        self.task = task
        self.seed = int(seed)
        self.strict = strict
        self.rng = np.random.default_rng([self.seed, _STREAM])
        self._step_cost: Cost | None = None
        self._step_cost_kind: str | None = None
        self._none_record: dict[str, Any] | None = None
        self.calibration = self._calibration()

    def _calibration(self) -> dict[str, Any] | None:
        """The task's measured wall ratio for these settings (``ohgw_bench/overhead_calibration.json``).

        Required (UserError otherwise) for the calibrated clock; looked up anyway under the FLOP
        clock, so every record can carry the charge on both clocks."""
        from ohgw_bench.cost import calibrated_ratio, calibration_key
        from ohgw_bench.errors import UserError

        if self.settings.variant == "none" or getattr(self.task, "hypergrad_method", "none") != "autograd":
            return None
        key = calibration_key(self.horizon, self.settings.mode, self.settings.split_batch)
        try:
            return {"key": key, **calibrated_ratio(str(getattr(self.task, "id", "")), key)}
        except UserError:
            if self.settings.clock == "calibrated":
                raise
            return None

    @property
    def horizon(self) -> int:
        h = self.settings.horizon
        return int(h) if h is not None else int(getattr(self.task, "default_horizon", 1))

    def _blank(self) -> dict[str, Any]:
        s = self.settings
        return {
            "variant": s.variant, "label": s.label(), "settings": s.as_dict(), "applied": False,
            "sham": s.variant == "sham",
            "reason": None, "fallback": None, "names": [], "unreachable": [], "psi": {},
            "grad_native": {}, "grad_psi": {}, "grad_unit": {}, "psi_new": {}, "step_unit": {},
            "step_unit_proposed": {}, "left_unchanged": {}, "moved_by": {}, "step_norm_unit": 0.0, "grad_norm_unit": None, "cos_prior": None, "clipped": [],
            "J": None, "method": None, "horizon": None, "evaluations": 0, "info": {},
            "cost": ZERO.as_dict(), "step_cost": None, "step_cost_kind": None,
            "ratio_time": None, "ratio_flops": None, "ratio_memory": None, "sim_seconds": 0.0,
            "clock": s.clock, "sim_seconds_flops": 0.0, "sim_seconds_calibrated": None, "calibration": None,
            # False for the first-order and mixed modes, which drop or approximate second-order
            # terms (at k = 2 they can flip the sign of weight decay's hyper-gradient).
            "hg_exact": s.mode == "exact",
        }

    def apply(self, config: Mapping[str, Any], trial_seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The config the trial trains from, and the warm-start record (never raises unless strict)."""
        config = dict(config)
        if self.settings.variant == "none":
            # the same record for every trial, built once (0.7 ms a trial otherwise; rows only read it)
            if self._none_record is None:
                self._none_record = _plain({**self._blank(), "reason": "variant none"})
            return config, self._none_record
        record = self._blank()
        if getattr(self.task, "hypergrad_method", "none") == "none":
            record["reason"] = "task has no hyper-gradient path (hypergrad_method none)"
            return config, _plain(record)
        if self.settings.variant == "oracle" and self.task.hypergrad_method != "surrogate":
            record["reason"] = f"oracle needs a surrogate hyper-gradient; {ORACLE_SUPPORT}"
            return config, _plain(record)
        try:
            with _global_rngs_kept():
                grad = self._gradient(config, int(trial_seed), record)
            new_config = config if grad is None else self._step(config, grad, record)
        except Exception as err:
            if self.strict:
                raise
            record["reason"] = f"error: {type(err).__name__}: {err}"
            return config, _plain(record)
        return new_config, _plain(record)

    def _gradient(self, config: dict[str, Any], trial_seed: int, record: dict[str, Any]) -> HyperGradient | None:
        task = self.task
        sim = 0.0
        total = ZERO
        grad: HyperGradient | None = None
        fallback: str | None = None
        if task.hypergrad_method == "surrogate":
            return self._surrogate(config, record)
        if task.hypergrad_method == "autograd":
            try:
                (problem, grad), cost = measure(lambda: self._autograd(config, trial_seed))
                total = total + cost
                sim += cost.flops / float(task.reference_flops_per_second)
                self._measure_plain_step(problem, config, trial_seed)
                unreachable = set(grad.info.get("unreachable", []))
                bad = [n for n, v in grad.unit.items() if n not in unreachable and not math.isfinite(v)]
                if bad:
                    fallback = f"non-finite hyper-gradient for {bad}"
                    self._note(record, grad)
                    grad = None
            except NotImplementedError as err:
                fallback = f"hyper_problem not implemented: {err}"
        if grad is None:
            try:
                objective, per_call = task.hyper_objective(config, trial_seed)
            except NotImplementedError as err:
                record["cost"] = total.as_dict()
                record["sim_seconds"] = record["sim_seconds_flops"] = sim
                record["fallback"] = fallback
                record["reason"] = f"{fallback}; no finite-difference objective either ({err})" if fallback else str(err)
                return None
            grad, cost = measure(lambda: finite_difference(objective, config, task.space))
            total = total + cost
            sim += grad.evaluations * float(per_call)
            if self._step_cost is None:
                self._step_cost = Cost(cost.seconds / grad.evaluations, cost.flops / grad.evaluations, cost.peak_bytes)
                self._step_cost_kind = "objective call (mean over the finite-difference evaluations)"
            if fallback:
                record["fallback"] = f"finite differences ({fallback})"
        self._note(record, grad)
        if grad.method.startswith("autograd"):
            for n in task.space.movable("finite_difference"):
                record["left_unchanged"][n] = (
                    "grad='finite_difference' in an autograd task: the autograd warm-start has no pathwise "
                    "derivative for it and does not spend finite-difference evaluations on it")
        record["cost"] = total.as_dict()
        record["sim_seconds"] = record["sim_seconds_flops"] = sim
        if grad.method.startswith("autograd") and self.calibration is not None and self._step_cost is not None:
            # the measured uninstrumented ratio x the simulated cost of one plain step (its FLOPs)
            record["calibration"] = dict(self.calibration)
            record["sim_seconds_calibrated"] = (float(self.calibration["wall_ratio"]) * self._step_cost.flops
                                                / float(task.reference_flops_per_second))
            if self.settings.clock == "calibrated":
                record["sim_seconds"] = record["sim_seconds_calibrated"]
        elif not grad.method.startswith("autograd"):
            record["sim_seconds_calibrated"] = sim  # objective calls are charged at their declared cost on both clocks
        if self._step_cost is not None:
            record["step_cost"] = self._step_cost.as_dict()
            record["step_cost_kind"] = self._step_cost_kind
            record["ratio_time"] = _ratio(total.seconds, self._step_cost.seconds)
            record["ratio_flops"] = _ratio(total.flops, self._step_cost.flops)
            record["ratio_memory"] = _ratio(total.peak_bytes, self._step_cost.peak_bytes)
        return grad

    def _surrogate(self, config: dict[str, Any], record: dict[str, Any]) -> HyperGradient:
        """The surrogate's gradient at the minimum fidelity (the maximum for ``oracle``), and the charge
        the task declares; the measured seconds are recorded, no training step exists to compare."""
        task = self.task
        at = task.fidelity.max if self.settings.variant == "oracle" else task.fidelity.min
        grad, cost = measure(lambda: task.surrogate_gradient(config, at), flops=False, memory=False)
        self._note(record, grad)
        record["info"]["charge_formula"] = str(getattr(task, "charge_formula", ""))
        record["cost"] = cost.as_dict()
        # the task's declared charge: the same on both clocks, as objective calls are (summaries' shares)
        record["sim_seconds"] = record["sim_seconds_flops"] = record["sim_seconds_calibrated"] = float(
            task.warm_start_charge(config))
        return grad

    def _autograd(self, config: dict[str, Any], trial_seed: int) -> tuple[Any, HyperGradient]:
        s = self.settings
        problem = self.task.hyper_problem(config, trial_seed, self.horizon, s.split_batch)
        grad = hypergradient(problem, self.task.space, horizon=self.horizon, mode=s.mode, on_unreachable="flag")
        return problem, grad

    def _measure_plain_step(self, problem: Any, config: dict[str, Any], trial_seed: int) -> None:
        """Once per study: a warm-up step (first-call imports and allocations), then a measured one.

        A split-batch problem's first batch is only the training part of a mini-batch: the
        baseline is the ordinary step on a whole one, so it comes from the unsplit problem.
        """
        if self._step_cost is None:
            if self.settings.split_batch:
                problem = self.task.hyper_problem(config, trial_seed, 1, False)
            plain_step(problem)
            self._step_cost = measure(lambda: plain_step(problem))[1]
            self._step_cost_kind = "plain training step (first train batch)"

    @staticmethod
    def _note(record: dict[str, Any], grad: HyperGradient) -> None:
        record.update({
            "grad_native": dict(grad.native), "grad_psi": dict(grad.psi), "grad_unit": dict(grad.unit),
            "J": grad.value, "method": grad.method, "horizon": grad.horizon,
            "evaluations": record.get("evaluations", 0) + grad.evaluations,
            "unreachable": list(grad.info.get("unreachable", [])),
            "info": {k: v for k, v in grad.info.items() if isinstance(v, str | int | float | list)},
        })

    def _step(self, config: dict[str, Any], grad: HyperGradient, record: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        space = self.task.space
        unreachable = set(grad.info.get("unreachable", []))
        names = [n for n in grad.unit
                 if n in space and space[n].movable and n not in unreachable and math.isfinite(grad.unit[n])]
        record["names"] = names
        record["psi"] = {n: space[n].to_psi(config[n]) for n in names}
        if not names:
            record["reason"] = "no movable hyperparameter with a usable gradient"
            return config
        g = np.array([grad.unit[n] for n in names], dtype=float)
        g_norm = float(np.linalg.norm(g))
        record["grad_norm_unit"] = g_norm
        if s.step_rule == "raw":
            ohgw = np.array([-s.eta_h * grad.psi[n] / space[n].psi_range for n in names])
        elif s.step_rule == "normalized":
            ohgw = -s.rho * g / g_norm if g_norm > 0 else np.zeros_like(g)
        else:
            ohgw = -s.rho * np.sign(g)
        length = float(np.linalg.norm(ohgw))
        if length == 0.0:
            record["reason"] = "zero hyper-gradient: no step"
            return config

        z = np.array([space[n].to_unit(config[n]) for n in names])
        prior = self._prior_direction(config, names, z, s.step_rule, length, record)
        if prior is not None:
            record["cos_prior"] = float(ohgw @ prior) / (length * float(np.linalg.norm(prior)))
        if s.variant == "sham":
            record["step_unit_proposed"] = dict(zip(names, ohgw.tolist()))
            record["reason"] = "sham: paid the ohgw warm-start's cost, config left unchanged"
            return config
        if s.variant in ("ohgw", "oracle"):
            dz = ohgw
        elif s.variant == "random":
            if s.step_rule == "sign":
                dz = s.rho * self.rng.choice([-1.0, 1.0], size=len(names))
            else:
                d = self.rng.standard_normal(len(names))
                dz = length * d / np.linalg.norm(d)
        elif s.variant == "orth":
            dz = self._orthogonal(ohgw, prior, length, record)
            if dz is None:
                return config
        else:
            if prior is None:
                record["reason"] = f"prior direction ({record['info']['prior_direction']}) is zero: no step"
                return config
            dz = prior
        record["step_unit_proposed"] = dict(zip(names, dz.tolist()))
        z_new = np.clip(z + dz, 0.0, 1.0)
        record["clipped"] = [n for n, a, b in zip(names, z + dz, z_new) if a != b]
        new_config = dict(config)
        for n, zn in zip(names, z_new):
            new_config[n] = space[n].from_unit(float(zn))
        moved = {n: space[n].to_unit(new_config[n]) - space[n].to_unit(config[n]) for n in names}
        record["step_unit"] = moved
        record["step_norm_unit"] = float(np.linalg.norm(list(moved.values())))
        record["psi_new"] = {n: space[n].to_psi(new_config[n]) for n in names}
        record["moved_by"] = {n: record["method"] for n in names if new_config[n] != config[n]}
        record["applied"] = any(new_config[n] != config[n] for n in names)
        if not record["applied"]:
            record["reason"] = "the step, projected onto the bounds, leaves the config unchanged"
        return new_config

    def _prior_direction(self, config: dict[str, Any], names: list[str], z: np.ndarray, rule: str,
                         length: float, record: dict[str, Any]) -> np.ndarray | None:
        """The ``prior`` variant's step (OHGW length, or rho signs), or None where its direction is zero."""
        space = self.task.space
        direction = np.array([float(space[n].prior) for n in names])
        source = "prior signs"
        if not direction.any():
            default = space.default_config()
            direction = np.array([space[n].to_unit(default[n]) for n in names]) - z
            source = "toward the default config"
        record["info"]["prior_direction"] = source
        if not direction.any():
            return None
        if rule == "sign":
            return self.settings.rho * np.sign(direction)
        return length * direction / np.linalg.norm(direction)

    def _orthogonal(self, ohgw: np.ndarray, prior: np.ndarray | None, length: float,
                    record: dict[str, Any]) -> np.ndarray | None:
        """The OHGW step minus its projection on the prior direction, at the OHGW step's length."""
        if prior is None:
            rest = ohgw
        else:
            p = prior / np.linalg.norm(prior)
            rest = ohgw - float(ohgw @ p) * p
        norm = float(np.linalg.norm(rest))
        if norm <= 1e-9 * length:
            record["reason"] = "orth: the OHGW step is parallel to the prior direction, nothing is left: no step"
            return None
        if self.settings.step_rule == "sign":
            return self.settings.rho * np.sign(np.where(np.abs(rest) > 1e-12 * length, rest, 0.0))
        return length * rest / norm


ORACLE_SUPPORT = ("supported only by tasks with hypergrad_method surrogate: the LCBench family "
                  "lcbench-<openml_task_id>-v1 (e.g. lcbench-3945-v1; --list-tasks shows all 34)")


def check_supported(settings: WarmStartSettings, task: Any) -> None:
    """Refuse, before any work, a variant the task cannot run (``oracle`` needs a surrogate gradient)."""
    from ohgw_bench.errors import UserError

    if settings.variant == "oracle" and getattr(task, "hypergrad_method", "none") != "surrogate":
        raise UserError(f"--warm-start oracle: task {task.id} has hypergrad_method "
                        f"{getattr(task, 'hypergrad_method', 'none')}; oracle is {ORACLE_SUPPORT}")


def make_warm_start(variant: str | WarmStartSettings, task: Any, seed: int, **overrides: Any) -> WarmStart:
    """A :class:`WarmStart` from a CLI-style string ("ohgw-k2") or settings, with field overrides."""
    settings = variant if isinstance(variant, WarmStartSettings) else WarmStartSettings.parse(variant, **overrides)
    if isinstance(variant, WarmStartSettings) and overrides:
        settings = replace(settings, **overrides)
    return WarmStart(settings, task, seed)
