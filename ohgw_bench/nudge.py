"""Paired-trial experiment: what one warm-start step does to a trial, free of scheduler chaos.

    python -m ohgw_bench.nudge --task digits --configs 500
    python -m ohgw_bench.nudge --task uci-wine-mlp --configs 200 --fidelities 1,3,9 --variants ohgw,sham
    python -m ohgw_bench.nudge experiments/paired/nudge.yaml

A scheduler study mixes the nudge with everything it perturbs (other trials' timing, promotion
decisions). Here every sampled config is trained on its own, from one training seed, twice or
more: as proposed (the baseline) and after each warm-start variant, to a fixed set of fidelities.
The paired difference at each fidelity is the nudge's effect on that config and nothing else.

- Config ``i`` is drawn from the task's space with ``numpy.random.default_rng([seed, i, 0x9D6E])``
  and trained with ``trial_seed(seed, i)`` (the seed a study gives its i-th trial), so config
  ``i`` and its seed do not depend on ``--configs`` or on a resume.
- Variants use the warm-start spellings of ``ohgw_bench.warmstart`` (``ohgw``, ``ohgw-normalized``,
  ``random-normalized``, ``prior``, ``orth-normalized`` (the OHGW step without its prior
  component, same length), ``sham`` (the unmodified config, at the warm-start's cost),
  ``ohgw-eta0.01``, ...); ``--eta-h`` / ``--rho`` set the
  step size of every variant whose label does not. Each (config, variant) gets a fresh
  :class:`~ohgw_bench.warmstart.WarmStart` seeded with the trial seed, so the random direction
  is reproducible config by config.
- A variant that leaves the config unchanged (``sham`` always, others when the step projects to
  nothing) is not retrained: the task's training is deterministic for a config and seed (a test
  checks it), so its metrics are the baseline's, and its row says ``trained: false``.
- A trial that fails or ends with a non-finite metric has ``metric: null`` and ``diverged: true``
  (``base_diverged`` for the baseline); the analysis counts it as a loss, never drops it.
  ``cos_prior`` is the cosine between the OHGW step and the prior step of the row's step rule.

Folder (study-style, beside the scheduler studies but never mistaken for one, since it has
no ``reports.jsonl``): ``<results-dir>/<experiment>/<task id>/paired/seed-<n>/`` with
``study.json`` (``kind: nudge``, the frozen spec, versions, machine), ``pairs.jsonl`` (one row per
(config, variant, fidelity), flushed per row) and ``summary.json`` (written last). The same
command skips a finished folder, resumes an unfinished one from its last complete config, and
refuses a different spec (``--overwrite`` replaces it). Analyse with ``python -m analysis.nudge``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ohgw_bench.errors import UserError
from ohgw_bench.run import OneLineParser, parse_assignments

DEFAULT_VARIANTS: tuple[str, ...] = ("ohgw", "ohgw-normalized", "random", "random-normalized", "prior",
                                     "prior-normalized", "orth-normalized", "sham")
DEFAULT_FIDELITIES: tuple[int, ...] = (1, 3, 9)
PAIRS_FILE = "pairs.jsonl"
_CONFIG_STREAM = 0x9D6E
FILE_KEYS = {"name", "description", "tasks", "configs", "fidelities", "variants", "seed", "eta_h", "rho"}
TASK_KEYS = {"task", "options", "configs", "fidelities", "data_dir"}


@dataclass(frozen=True)
class NudgeSpec:
    """Everything that determines a paired-trial folder's rows (wall-clock fields aside)."""

    task: str = "digits"
    configs: int = 500
    fidelities: tuple[int, ...] = DEFAULT_FIDELITIES
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    seed: int = 0
    eta_h: float | None = None
    rho: float | None = None
    experiment: str = "nudge"
    results_dir: str = "results"
    data_dir: str | None = None
    task_options: Mapping[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """Fields that must match to share a folder; ``configs`` may grow (a larger N extends a finished run)."""
        d = asdict(self)
        d["fidelities"] = list(self.fidelities)
        d["variants"] = list(self.variants)
        d["task_options"] = dict(self.task_options)
        for key in ("results_dir", "data_dir", "configs"):
            d.pop(key)
        return d


def _settings(spec: NudgeSpec) -> list[Any]:
    from ohgw_bench.warmstart import WarmStartSettings

    DEFAULT = WarmStartSettings()  # noqa: N806 - the defaults a label leaves unset
    if not spec.variants:  # --variants '' would run nothing and write an empty record
        raise UserError("--variants lists no variant; give at least one, e.g. --variants ohgw,sham")
    out = []
    for v in spec.variants:
        try:
            s = WarmStartSettings.parse(v)
            overrides = {}
            if spec.eta_h is not None and s.eta_h == DEFAULT.eta_h and "eta" not in v:
                overrides["eta_h"] = spec.eta_h
            if spec.rho is not None and s.rho == DEFAULT.rho and "rho" not in v:
                overrides["rho"] = spec.rho
            s = WarmStartSettings.parse(v, **overrides)
        except ValueError as e:
            raise UserError(f"variant {v!r}: {e}") from None
        if s.variant == "none":
            raise UserError("variant 'none' is the baseline every variant is paired with: leave it out of --variants")
        out.append(s)
    labels = [s.label() for s in out]
    if len(set(labels)) != len(labels):
        raise UserError(f"variants must be distinct, got {labels}")
    return out


def validate(spec: NudgeSpec) -> tuple[Any, list[Any]]:
    """(task, warm-start settings) for ``spec``, or UserError before any work or file is touched.

    The checks a study shares (seed, folder name, the task and its options) are the study's own
    (:mod:`ohgw_bench.validate`, :func:`ohgw_bench.spec.choose_task`)."""
    from ohgw_bench import validate as checks
    from ohgw_bench.spec import choose_task

    checks.integer(spec.configs, "--configs", 1)
    checks.seed(spec.seed)
    checks.path_component(spec.experiment, "--experiment")
    for name, value in (("--eta-h", spec.eta_h), ("--rho", spec.rho)):
        if value is not None:
            checks.number(value, name, positive=True)
    if spec.rho is not None and spec.rho > 1:
        raise UserError(f"--rho must be in (0, 1], got {spec.rho}")
    task = choose_task(spec.task, spec.task_options, "--task", "--task-option").build(spec.data_dir)
    f = task.fidelity
    fids = list(spec.fidelities)
    if not fids or any(isinstance(x, bool) or not isinstance(x, int) for x in fids):
        raise UserError(f"--fidelities must be integers, got {fids}")
    if sorted(set(fids)) != fids:
        raise UserError(f"--fidelities must be strictly increasing, got {fids}")
    if fids[0] < f.min or fids[-1] > f.max:
        raise UserError(f"--fidelities must lie in [{f.min}, {f.max}] {f.unit} for task {task.id}, got {fids}")
    settings = _settings(spec)
    if getattr(task, "hypergrad_method", "none") == "none":
        raise UserError(f"task {task.id} has no warm-start path (hypergrad_method none): nothing to pair")
    return task, settings


def sample_config(task: Any, seed: int, index: int) -> dict[str, Any]:
    """Config ``index`` of a run seeded ``seed``: independent of how many configs are drawn."""
    import numpy as np

    return task.space.sample(np.random.default_rng([int(seed), int(index), _CONFIG_STREAM]))


def train_curve(task: Any, config: Mapping[str, Any], seed: int, fidelities: Sequence[int]) -> tuple[list[dict[str, Any]], str | None]:
    """Metrics at each fidelity of one trial trained once through all of them; (metrics so far, error)."""
    out: list[dict[str, Any]] = []
    try:
        state = task.init_state(dict(config), int(seed))
        for fid in fidelities:
            task.train(state, int(fid))
            out.append({k: float(v) for k, v in task.evaluate(state).items() if isinstance(v, int | float)})
    except Exception as e:  # noqa: BLE001 - a diverging or failing trial is data, not a crash
        return out, f"{type(e).__name__}: {e}"[:500]
    return out, None


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _diff(a: Any, b: Any) -> float | None:
    a, b = _finite(a), _finite(b)
    return None if a is None or b is None else a - b


def pair_rows(task: Any, spec: NudgeSpec, settings: Sequence[Any], index: int) -> list[dict[str, Any]]:
    """The rows of config ``index``: one per (variant, fidelity), each paired with the baseline."""
    from ohgw_bench.baselines.warmstarted import trial_seed
    from ohgw_bench.warmstart import WarmStart

    proposed = sample_config(task, spec.seed, index)
    seed = trial_seed(spec.seed, index)
    fids = list(spec.fidelities)
    base, base_err = train_curve(task, proposed, seed, fids)
    sign = -1.0 if task.mode == "min" else 1.0
    rows: list[dict[str, Any]] = []
    for s in settings:
        config, rec = WarmStart(s, task, seed).apply(proposed, seed)
        changed = config != proposed
        curve, err = train_curve(task, config, seed, fids) if changed else (base, base_err)
        for j, fid in enumerate(fids):
            b = base[j] if j < len(base) else {}
            m = curve[j] if j < len(curve) else {}
            diff = _diff(m.get(task.metric), b.get(task.metric))
            row = {
                "config_index": index, "trial_seed": seed, "variant": s.label(), "fidelity": fid,
                "metric": _finite(m.get(task.metric)), "base_metric": _finite(b.get(task.metric)),
                "diff": diff, "improvement": None if diff is None else sign * diff,
                "test_metric": _finite(m.get(task.test_metric)), "base_test_metric": _finite(b.get(task.test_metric)),
                "val_loss": _finite(m.get("val_loss")), "base_val_loss": _finite(b.get("val_loss")),
                "diff_val_loss": _diff(m.get("val_loss"), b.get("val_loss")),
                "trained": changed, "applied": bool(rec.get("applied")), "reason": rec.get("reason"),
                "diverged": _finite(m.get(task.metric)) is None, "base_diverged": _finite(b.get(task.metric)) is None,
                "grad_norm_unit": rec.get("grad_norm_unit"), "step_norm_unit": rec.get("step_norm_unit"),
                "cos_prior": rec.get("cos_prior"), "step_unit": rec.get("step_unit"),
                "step_unit_proposed": rec.get("step_unit_proposed"), "grad_unit": rec.get("grad_unit"),
                "sim_seconds": rec.get("sim_seconds"), "error": err, "base_error": base_err,
            }
            if j == 0:
                row["proposed"] = proposed
                row["config"] = config
            rows.append(row)
    return rows


def folder_of(spec: NudgeSpec, task: Any) -> Path:
    return Path(spec.results_dir) / spec.experiment / task.id.replace(":", ".") / "paired" / f"seed-{spec.seed}"


def _complete_rows(folder: Path, per_config: int) -> list[dict[str, Any]]:
    """Rows of configs whose every row was written (a config cut short by a kill is redone)."""
    path = folder / PAIRS_FILE
    if not path.exists():
        return []
    rows: dict[int, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            with contextlib.suppress(json.JSONDecodeError):
                r = json.loads(line)
                rows.setdefault(int(r["config_index"]), []).append(r)
    return [r for i in sorted(rows) if len(rows[i]) == per_config for r in rows[i]]


def summarize(rows: Sequence[Mapping[str, Any]], task: Any, spec: NudgeSpec) -> dict[str, Any]:
    """Counts per (variant, fidelity) for the closing line; the statistics live in analysis/nudge.py."""
    import numpy as np

    out: dict[str, Any] = {}
    for label in dict.fromkeys(r["variant"] for r in rows):
        for fid in spec.fidelities:
            imp = [r["improvement"] for r in rows if r["variant"] == label and r["fidelity"] == fid
                   and r["improvement"] is not None]
            a = np.asarray(imp, dtype=float)
            out.setdefault(label, {})[str(fid)] = {
                "pairs": len(a), "improved": float((a > 0).mean()) if len(a) else None,
                "worse": float((a < 0).mean()) if len(a) else None,
                "median_improvement": float(np.median(a)) if len(a) else None}
    return {"task": task.id, "metric": task.metric, "mode": task.mode, "configs": len({r["config_index"] for r in rows}),
            "rows": len(rows), "variants": out}


def _history(done: Mapping[str, Any] | None, study: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Earlier completed runs of a folder being extended (a killed run left no summary: its time is unknown)."""
    if done is None:
        return []
    if "history" in done:
        return list(done["history"])
    study = study or {}
    return [{"command": study.get("command"), "started": study.get("started"), "wall_seconds": done.get("wall_seconds"),
             "configs": done.get("configs"), "load_start": study.get("load_start"), "load_end": done.get("load_end")}]


def _load() -> list[float] | None:
    """The 1/5/15-minute load averages (what ``uptime`` shows), so a wall time is read beside the load."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_nudge(spec: NudgeSpec, progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Run (or skip, or resume) one paired-trial folder and return its summary.

    The folder's lifecycle (a different spec refused, ``--overwrite``, provenance) is the
    study's (:mod:`ohgw_bench.folder`) and its rows go through the one writer
    (:class:`ohgw_bench.results.StudyWriter`, to ``pairs.jsonl``); only resuming from the last
    complete config is the paired run's own.
    """
    import torch

    from ohgw_bench import results
    from ohgw_bench.folder import check_identity, provenance

    task, settings = validate(spec)
    results.check_writable(spec.results_dir)
    folder = folder_of(spec, task)
    per_config = len(settings) * len(spec.fidelities)
    old = check_identity(folder, spec.identity(), overwrite, what="a paired-trial run")
    done = results.read_json(folder / results.SUMMARY_FILE)
    if done is not None and done.get("configs", 0) >= spec.configs:
        return {**done, "skipped": True, "folder": str(folder)}
    kept = [r for r in _complete_rows(folder, per_config) if r["config_index"] < spec.configs]
    history = _history(done, old) if kept else []
    try:
        task.prepare()
    except FileNotFoundError as e:
        raise UserError(f"task {task.id}: {e}") from None
    torch.set_num_threads(1)
    meta = {"kind": "nudge", "identity": spec.identity(), "task": task.describe(), **provenance(),
            "load_start": _load()}
    try:
        with contextlib.suppress(FileNotFoundError):
            (folder / results.SUMMARY_FILE).unlink()
        writer = results.StudyWriter(folder, {**asdict(spec), "variant_labels": [s.label() for s in settings]}, meta,
                                     rows_file=PAIRS_FILE, numbered=False, keep=kept)
    except OSError as e:
        raise UserError(f"cannot write results in {folder}: {e.strerror or e}") from None
    rows = list(kept)
    todo = [i for i in range(spec.configs) if i not in {r["config_index"] for r in kept}]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=spec.configs, initial=spec.configs - len(todo), unit="config", desc=task.id, file=sys.stderr)
    wall0 = time.time()
    try:
        for i in todo:
            for r in pair_rows(task, spec, settings, i):
                rows.append(writer.append(r))
            if bar is not None:
                bar.update(1)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    wall = time.time() - wall0
    this_run = {"command": sys.argv, "started": meta["started"], "wall_seconds": wall, "configs": len(todo),
                "load_start": meta["load_start"], "load_end": _load()}
    summary = summarize(rows, task, spec)
    summary.update({"folder": str(folder), "wall_seconds": wall, "fidelities": list(spec.fidelities),
                    "seed": spec.seed, "experiment": spec.experiment, "load_end": this_run["load_end"],
                    "configs_this_run": len(todo), "history": [*history, this_run],
                    "wall_seconds_total": sum(h["wall_seconds"] or 0 for h in [*history, this_run])})
    writer.finish(summary)
    return summary


def load_file(path: str | Path, results_dir: str, data_dir: str | None = None) -> list[NudgeSpec]:
    """Specs of an experiment file (see experiments/paired/nudge.yaml), validated as a whole before any run."""
    from ohgw_bench.experiment import read_mapping

    path = Path(path)
    doc = read_mapping(path)
    unknown = set(doc) - FILE_KEYS
    if unknown:
        raise UserError(f"{path}: unknown key {sorted(unknown)[0]!r}; expected one of {sorted(FILE_KEYS)}")
    if not isinstance(doc.get("tasks"), list) or not doc["tasks"]:
        raise UserError(f"{path}: key 'tasks': expected a non-empty list")
    variants = doc.get("variants", list(DEFAULT_VARIANTS))
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise UserError(f"{path}: key 'variants': expected a list of variant labels, got {variants!r}")
    specs = []
    for k, entry in enumerate(doc["tasks"]):
        entry = {"task": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, Mapping) or "task" not in entry or set(entry) - TASK_KEYS:
            raise UserError(f"{path}: key 'tasks[{k}]': expected a task id or a mapping with keys {sorted(TASK_KEYS)}")
        fids = entry.get("fidelities", doc.get("fidelities", list(DEFAULT_FIDELITIES)))
        if not isinstance(fids, list):
            raise UserError(f"{path}: key 'fidelities': expected a list of integers, got {fids!r}")
        spec = NudgeSpec(task=str(entry["task"]), configs=entry.get("configs", doc.get("configs", 500)),
                         fidelities=tuple(fids), variants=tuple(variants), seed=doc.get("seed", 0),
                         eta_h=doc.get("eta_h"), rho=doc.get("rho"), experiment=str(doc.get("name", path.stem)),
                         results_dir=results_dir, data_dir=entry.get("data_dir", data_dir),
                         task_options=dict(entry.get("options") or {}))
        try:
            validate(spec)
        except UserError as e:
            raise UserError(f"{path}: tasks[{k}]: {e}") from None
        specs.append(spec)
    return specs


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{flag} expects comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m ohgw_bench.nudge", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", default=None, help="experiment file (YAML, see experiments/paired/nudge.yaml) instead of --task")
    p.add_argument("--task", default="digits", help="task id or alias (default: digits)")
    p.add_argument("--configs", type=int, default=500, help="configs sampled from the task's space (default: 500)")
    p.add_argument("--fidelities", default=",".join(map(str, DEFAULT_FIDELITIES)),
                   help="comma-separated fidelities to evaluate at, increasing (default: 1,3,9)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated warm-start labels (default: {','.join(DEFAULT_VARIANTS)})")
    p.add_argument("--eta-h", type=float, default=None, help="raw step size for variants whose label sets none (default: 1e-3)")
    p.add_argument("--rho", type=float, default=None, help="trust-region radius for normalized/sign variants whose label sets none (default: 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the config sample and the training seeds (default: 0)")
    p.add_argument("--results-dir", default="results", help="root of the result folders (default: ./results)")
    p.add_argument("--experiment", default="nudge", help="first folder level (default: nudge, or the file's name)")
    p.add_argument("--data-dir", default=None, help="dataset root (default: $OHGW_DATA_DIR or ~/.cache/ohgw_bench/data)")
    p.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="adapter option (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder instead of skipping/resuming it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def closing_line(s: Mapping[str, Any]) -> str:
    head = "already complete (pass --overwrite to re-run)" if s.get("skipped") else f"done in {s.get('wall_seconds', 0):.1f} s"
    parts = [f"{s['task']}: {s['configs']} configs, {s['rows']} rows, {head}"]
    last = str(s.get("fidelities", [None])[-1])
    for label, by_fid in s.get("variants", {}).items():
        v = by_fid.get(last) or {}
        if v.get("improved") is not None:
            parts.append(f"  {label:<22} at {last}: improved {100 * v['improved']:.0f}%, worse {100 * v['worse']:.0f}%, "
                         f"median improvement {v['median_improvement']:.4g}")
    parts.append(f"  results: {s.get('folder')}")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.file is not None:
            specs = load_file(args.file, args.results_dir, args.data_dir)
        else:
            specs = [NudgeSpec(task=args.task, configs=args.configs, fidelities=_ints(args.fidelities, "--fidelities"),
                               variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
                               seed=args.seed, eta_h=args.eta_h, rho=args.rho, experiment=args.experiment,
                               results_dir=args.results_dir, data_dir=args.data_dir,
                               task_options=parse_assignments(args.task_option, "--task-option"))]
            validate(specs[0])
        summaries = [run_nudge(spec, progress=not args.quiet, overwrite=args.overwrite) for spec in specs]
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: complete configs are kept; run the same command to resume", file=sys.stderr)
        return 130
    for s in summaries:
        print(closing_line(s))
    root = Path(specs[0].results_dir) / specs[0].experiment
    print(f"analyse with: python -m analysis.nudge {root} --out {root / 'bundle'}"
          "  (reports/nudge is the committed bundle: write there only to publish)")
    print(json.dumps({"folders": [s["folder"] for s in summaries]}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
