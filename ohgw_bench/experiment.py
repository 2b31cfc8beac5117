"""Run an experiment: a YAML grid of studies (docs/design.md sections 1, 5, 8).

    python -m ohgw_bench.experiment experiments/smoke.yaml --results-dir results
    python -m ohgw_bench.experiment experiments/cpu.yaml --executor process --max-parallel 2
    python -m ohgw_bench.experiment experiments/main.yaml --executor dask --address tcp://host:8786

The file (every key optional except tasks, schedulers and variants)::

    name: smoke              # first folder level (default: the file's stem)
    description: ...
    budget: 10               # seconds on the study clock (default: each task's default_budget)
    workers: 4               # workers per study
    backend: simulated       # simulated | local
    seeds: 2                 # N (seeds 0..N-1) or a list of seeds
    max_failures: 20         # failed trials before a study stops
    track: mlflow            # log each finished study as an MLflow run (ohgw_bench.tracking)
    track_uri: ...           # with track: the MLflow tracking URI (default: sqlite:///<results-dir>/mlflow.db)
    tasks:                   # ids/aliases, or mappings:
      - digits
      - {task: cifar10, label: cifar10-bs64, options: {batch_size: 64}, fixture: true, budget: 30}
    schedulers:              # names, or {scheduler: pasha, options: {eta: 3}}
      - asha
    variants:                # none | ohgw | random | prior | sham (warmstart.VARIANTS) | ohgw-kN, or mappings
      - none
      - {variant: ohgw, step_rule: normalized, rho: 0.05}
    grids:                   # optional: blocks that override the keys above, each crossed on its own
      - {tasks: [uci-iris-xgb], schedulers: [asha]}

``fixture: true`` writes the task's tiny conformance dataset (the real on-disk format) under
``<results-dir>/.fixtures`` and runs on it: that is how the smoke experiment covers task
families whose real data cannot be downloaded here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ohgw_bench import validate
from ohgw_bench.errors import UserError
from ohgw_bench.executors import EXECUTORS, ProgressLine, run_all

TOP_KEYS = {"name", "description", "budget", "workers", "backend", "seeds", "max_failures", "max_consecutive_failures",
            "tasks", "schedulers", "variants", "grids", "tau", "track", "track_uri"}
GRID_KEYS = TOP_KEYS - {"name", "description", "grids", "track", "track_uri"}
TASK_KEYS = {"task", "label", "options", "fixture", "budget", "data_dir", "tau"}
SCHED_KEYS = {"scheduler", "options"}


class ExperimentError(UserError):
    """A malformed experiment file: names the file, the key and what was expected."""


def _err(path: Path, key: str, expected: str, got: Any) -> ExperimentError:
    return ExperimentError(f"{path}: key '{key}': expected {expected}, got {got!r}")


def _list(path: Path, key: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _err(path, key, "a non-empty list", value)
    return value


def _seeds(path: Path, key: str, value: Any) -> list[Any]:
    """A count N (seeds 0..N-1) or a list; each seed's value is checked with the study (spec.py)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return list(range(value))
    if isinstance(value, list) and value:
        return list(value)
    raise _err(path, key, "a positive integer count or a list of non-negative integers", value)


def _variant(path: Path, key: str, value: Any) -> Any:
    """A variant entry (a name or a mapping of warm-start fields), parsed by WarmStartSettings.parse."""
    from ohgw_bench.warmstart import VARIANTS, WarmStartSettings

    fields = set(WarmStartSettings.__dataclass_fields__)
    if isinstance(value, str):
        value = {"variant": value}
    if not isinstance(value, Mapping):
        raise _err(path, key, "a variant name or a mapping of warm-start fields", value)
    unknown = set(value) - fields
    if unknown:
        raise _err(path, key, f"warm-start fields among {sorted(fields)}", sorted(unknown))
    kw = dict(value)
    name = str(kw.pop("variant", "none"))
    try:
        return WarmStartSettings.parse(name, **kw)
    except (TypeError, ValueError) as e:
        raise _err(path, key, f"one of {', '.join(VARIANTS)} or ohgw-kN, with valid warm-start settings",
                   f"{name}: {e}") from None


def read_mapping(path: Path, error: type[UserError] = UserError) -> Mapping[str, Any]:
    """An experiment-style YAML file's top-level mapping; a missing file, bad YAML or another top
    level is one ``error`` line naming the file (the scheduler and paired-trial files share this)."""
    import yaml

    try:
        doc = validate.yaml_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such experiment file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not an experiment file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, Mapping):
        raise error(f"{path}: expected a mapping at the top level, got {type(doc).__name__}")
    return doc


def tracking_of(path: str | Path, doc: Mapping[str, Any] | None = None) -> Any:
    """The file's ``track`` / ``track_uri`` keys as a :class:`~ohgw_bench.tracking.Tracking` (or
    None), checked before any study runs: MLflow missing is one line naming the extra."""
    from ohgw_bench import tracking

    path = Path(path)
    doc = read_mapping(path, ExperimentError) if doc is None else doc
    try:
        return tracking.check(doc.get("track"), doc.get("track_uri"), keys=("track", "track_uri"))
    except UserError as e:
        raise ExperimentError(f"{path}: key 'track': {e}") from None


def load(path: str | Path, results_dir: str | Path, dry_run: bool = False,
         max_studies: int = validate.MAX_STUDIES) -> tuple[str, list[Any]]:
    """Parse and validate an experiment file into (name, [StudySpec]).

    ``dry_run`` writes nothing (a ``fixture: true`` task's fixture is not written; its specs
    point where it would be). More than ``max_studies`` studies is refused before any is built.
    """
    from ohgw_bench import tasks
    from ohgw_bench.spec import StudySpec

    path = Path(path)
    doc = read_mapping(path, ExperimentError)
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise _err(path, sorted(unknown)[0], f"one of {sorted(TOP_KEYS)}", "an unknown key")
    try:
        name = validate.path_component(doc.get("name", path.stem), "the experiment's name")
    except UserError as e:
        raise ExperimentError(f"{path}: key 'name': {e}") from None
    tracking_of(path, doc)
    grids = doc.get("grids") or [{}]
    grids = _list(path, "grids", grids)
    specs: list[StudySpec] = []
    seen: set[tuple] = set()
    for g, grid in enumerate(grids):
        where = f"grids[{g}]" if "grids" in doc else ""
        if not isinstance(grid, Mapping):
            raise _err(path, where, "a mapping", grid)
        bad = set(grid) - GRID_KEYS
        if bad:
            raise _err(path, f"{where}.{sorted(bad)[0]}", f"one of {sorted(GRID_KEYS)}", "an unknown key")
        block = {**{k: v for k, v in doc.items() if k in GRID_KEYS}, **grid}

        def k(key: str, where: str = where) -> str:
            return f"{where}.{key}" if where else key

        for required in ("tasks", "schedulers", "variants"):
            if required not in block:
                raise _err(path, k(required), "a non-empty list", None)
        seeds = _seeds(path, k("seeds"), block.get("seeds", 1))
        n_here = len(seeds) * len(_list(path, k("variants"), block["variants"])) * len(
            _list(path, k("schedulers"), block["schedulers"])) * len(_list(path, k("tasks"), block["tasks"]))
        if len(specs) + n_here > max_studies:
            raise ExperimentError(f"{path}: {len(specs) + n_here:,} studies or more (seeds x variants x schedulers x "
                                  f"tasks), more than --max-studies {max_studies:,}; pass --max-studies "
                                  f"{len(specs) + n_here} if you mean it")
        variants = [_variant(path, f"{k('variants')}[{i}]", v) for i, v in enumerate(_list(path, k("variants"), block["variants"]))]
        scheds = []
        for i, s in enumerate(_list(path, k("schedulers"), block["schedulers"])):
            entry = {"scheduler": s} if isinstance(s, str) else s
            if not isinstance(entry, Mapping) or "scheduler" not in entry or set(entry) - SCHED_KEYS:
                raise _err(path, f"{k('schedulers')}[{i}]", "a scheduler name or {scheduler, options}", s)
            scheds.append((f"{k('schedulers')}[{i}]", entry))
        # where each field of a study comes from: the error of a bad value names its key
        common = {"seed": f"key '{k('seeds')}'", "n_workers": f"key '{k('workers')}'", "backend": f"key '{k('backend')}'",
                  "budget": f"key '{k('budget')}'", "tau": f"key '{k('tau')}'",
                  "max_failures": f"key '{k('max_failures')}'",
                  "max_consecutive_failures": f"key '{k('max_consecutive_failures')}'", "experiment": "key 'name'"}
        for i, t in enumerate(_list(path, k("tasks"), block["tasks"])):
            entry = {"task": t} if isinstance(t, str) else t
            key = f"{k('tasks')}[{i}]"
            if not isinstance(entry, Mapping) or "task" not in entry or set(entry) - TASK_KEYS:
                raise _err(path, key, f"a task id or a mapping with keys among {sorted(TASK_KEYS)}", t)
            options = dict(entry.get("options") or {})
            data_dir = entry.get("data_dir")
            if entry.get("fixture"):
                try:
                    task_id, entry_point, _ = tasks.resolve(entry["task"])
                except UserError as e:
                    raise ExperimentError(f"{path}: key '{key}': {e}") from None
                fixture_dir = Path(results_dir) / ".fixtures" / (entry.get("label") or task_id)
                if dry_run:  # run nothing, write nothing: the specs point where the fixture would be
                    data_dir = fixture_dir
                else:
                    fixture_dir.mkdir(parents=True, exist_ok=True)
                    setup = tasks._load(entry_point).conformance_setup(fixture_dir)
                    data_dir = setup.pop("data_dir", data_dir)
                    options = {**setup, **options}
            sources = {**common, "task": f"key '{key}'", "task_options": f"key '{key}.options'",
                       "task_label": f"key '{key}.label'"}
            for own in ("budget", "tau"):
                if entry.get(own) is not None:
                    sources[own] = f"key '{key}.{own}'"
            for sched_key, sched in scheds:
                for ws in variants:
                    for seed in seeds:
                        spec = StudySpec(
                            task=entry["task"], scheduler=sched["scheduler"], warm_start=ws, seed=seed,
                            budget=block.get("budget") if entry.get("budget") is None else entry["budget"], n_workers=block.get("workers", 4),
                            backend=block.get("backend", "simulated"), experiment=name,
                            results_dir=str(results_dir), data_dir=None if data_dir is None else str(data_dir),
                            task_options=options, scheduler_options=dict(sched.get("options") or {}),
                            tau=entry.get("tau", block.get("tau")), max_failures=block.get("max_failures", 20),
                            max_consecutive_failures=block.get("max_consecutive_failures", 10),
                            task_label=entry.get("label"),
                            sources={**sources, "scheduler": f"key '{sched_key}'",
                                     "scheduler_options": f"key '{sched_key}.options'"})
                        try:
                            checked = spec.check()
                        except UserError as e:
                            raise ExperimentError(f"{path}: {e}") from None
                        ident = (entry.get("label") or checked.task.name, checked.scheduler, ws.label(), seed)
                        if ident in seen:
                            raise ExperimentError(
                                f"{path}: study {'/'.join(map(str, ident))} appears twice; give one of the task "
                                f"entries a distinct 'label' or distinct variant settings")
                        seen.add(ident)
                        specs.append(spec)
    return name, specs


def _kv(items: list[str] | None) -> dict[str, Any] | None:
    if items is None:
        return None
    from ohgw_bench.run import parse_assignments

    return parse_assignments(items, "--slurm")


def main(argv: list[str] | None = None) -> int:
    from ohgw_bench.run import OneLineParser, prog_name

    p = OneLineParser(prog=prog_name("ohgw-experiment", "ohgw_bench.experiment"), description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="experiment YAML file, e.g. experiments/smoke.yaml")
    p.add_argument("--results-dir", default="results",
                   help="root of the result folders; give an absolute path on a cluster (default: ./results)")
    p.add_argument("--executor", choices=EXECUTORS, default="inprocess",
                   help="inprocess (default), process (local process pool) or dask")
    p.add_argument("--max-parallel", type=int, default=2, help="studies at once for process and dask LocalCluster; Slurm jobs with --slurm; ignored with --address "
                        "and inprocess (default: 2)")
    p.add_argument("--retries", type=int, default=2, help="re-runs of a study whose worker died, for process and dask (default: 2)")
    p.add_argument("--address", default=None, help="dask: address of an existing scheduler (tcp://host:8786)")
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE", default=None,
                   help="dask: start a Slurm cluster through dask_jobqueue.SLURMCluster(KEY=VALUE, ...), values parsed as JSON, "
                        "e.g. cores=4 memory=16GB walltime=12:00:00 queue=gpu; repeatable (default: none)")
    p.add_argument("--dry-run", action="store_true", help="validate the file and list the studies, run and write nothing")
    p.add_argument("--max-studies", type=int, default=validate.MAX_STUDIES,
                   help=f"refuse a file with more studies than this, a guard against a typo such as seeds: 1000000 "
                        f"(default: {validate.MAX_STUDIES})")
    args = p.parse_args(argv)
    try:
        if args.max_parallel < 1:
            raise UserError(f"--max-parallel must be at least 1, got {args.max_parallel}")
        if args.retries < 0:
            raise UserError(f"--retries must be at least 0, got {args.retries}")
        if args.executor != "dask" and (args.address or args.slurm):
            raise UserError("--address and --slurm need --executor dask")
        from ohgw_bench.results import check_writable

        if not args.dry_run:
            check_writable(args.results_dir)
        name, specs = load(args.file, args.results_dir, dry_run=args.dry_run, max_studies=args.max_studies)
        track = tracking_of(args.file)
        jobs = [(f"{s.task_label or s.task}/{s.scheduler}/{s.warm_start.label()}/seed-{s.seed}", s.as_dict())
                for s in specs]
        if args.dry_run:
            for key, _ in jobs:
                print(key)
            print(f"{len(jobs)} studies in experiment {name!r}")
            return 0
        progress = ProgressLine(len(jobs), sys.stderr)
        print(f"[experiment] {name}: {len(jobs)} studies, executor {args.executor}", file=sys.stderr, flush=True)
        outcomes = run_all(args.executor, jobs, progress, max_parallel=args.max_parallel, retries=args.retries,
                           address=args.address, slurm=_kv(args.slurm))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished studies are kept; run the same command to finish the rest", file=sys.stderr)
        return 130
    failed = [o for o in outcomes if o.status == "failed"]
    done = sum(o.status == "complete" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    root = Path(args.results_dir) / name
    _record_failures(root, failed)
    tracked: list[str | None] = []
    if track is not None:  # after the studies: a tracker failure is one warning, the folders are complete
        from ohgw_bench import tracking

        tracked = tracking.log_studies(track, args.results_dir, [o.summary["folder"] for o in outcomes
                                                                 if o.status != "failed" and o.summary.get("folder")])
    print(f"Experiment {name}: {done} studies run, {skipped} already complete, {len(failed)} failed.")
    for o in failed:
        print(f"  failed: {o.key}: {o.error}")
    for o in outcomes:
        if o.summary.get("locked"):
            print(f"  skipped, another process runs it: {o.key}")
    print(f"Results: {root}")
    if track is not None:
        print(f"Tracked: {sum(t is not None for t in tracked)} studies in {track.uri_for(args.results_dir)}")
    print(f"Report:  python -m analysis.report {root} --out {root}/report")
    print(json.dumps({"experiment": name, "results": str(root), "run": done, "skipped": skipped,
                      "failed": [o.key for o in failed]}))
    return 1 if failed else 0


def _record_failures(root: Path, failed: list[Any]) -> None:
    from ohgw_bench.results import write_json_atomic

    if failed:
        write_json_atomic(root / "failed.json", {o.key: {"error": o.error, "attempts": o.attempts} for o in failed})


if __name__ == "__main__":
    sys.exit(main())
