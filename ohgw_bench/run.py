"""Run one study from the command line.

    python -m ohgw_bench.run                                   # digits, ASHA, no warm-start
    python -m ohgw_bench.run --task wikitext103 --scheduler dyhpo --ohgw

Progress goes to stderr; a short human summary goes to stdout, and the LAST line of stdout is
the same summary as one JSON object (with the study id and folder) for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn

from ohgw_bench.errors import UserError


def prog_name(script: str, module: str, argv0: str | None = None) -> str:
    """What a command calls itself in --help and errors: ``script`` when run through its console
    script (``argv[0]`` is e.g. ``.../bin/ohgw-run``), else ``python -m module``."""
    name = os.path.basename(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    return script if name in (script, f"{script}.exe", f"{script}-script.py") else f"python -m {module}"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (exit code 2) instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_assignments(items: list[str] | None, flag: str) -> dict[str, Any]:
    """KEY=VALUE pairs, values parsed as JSON where possible (numbers, booleans), else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} expects KEY=VALUE, got {item!r}")
        if key in out:  # the last would silently win
            raise UserError(f"{flag} {key} given twice ({key}={json.dumps(out[key])} and {item})")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    from ohgw_bench.backends import BACKENDS
    from ohgw_bench.flags import FLAGS, WARM_START_FLAGS
    from ohgw_bench.hypergrad import MODES
    from ohgw_bench.tracking import TRACKERS
    from ohgw_bench.warmstart import STEP_RULES, VARIANTS

    p = OneLineParser(prog=prog_name("ohgw-run", "ohgw_bench.run"), description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(FLAGS["task"], default="digits", help="task id, alias, family member or module:Class (default: digits)")
    p.add_argument(FLAGS["scheduler"], default="asha", help="scheduler name, see --list-schedulers (default: asha)")
    p.add_argument("--ohgw", action="store_true", help="shorthand for --warm-start ohgw (default: off)")
    p.add_argument(WARM_START_FLAGS["variant"], default=None, metavar="VARIANT",
                   help=f"{', '.join(VARIANTS)}, or ohgw-kN for N lookahead steps; sham pays ohgw's cost and "
                        "leaves the config unchanged (default: none)")
    p.add_argument(WARM_START_FLAGS["eta_h"], type=float, default=None, help="hyper-step size for --step-rule raw (default: 1e-3)")
    p.add_argument(WARM_START_FLAGS["step_rule"], choices=STEP_RULES, default=None,
                   help="raw: psi - eta_h*g (the paper's); normalized/sign: trust region of radius --rho "
                        "in unit-cube coordinates; the setting a rule does not use is ignored (default: raw)")
    p.add_argument(WARM_START_FLAGS["rho"], type=float, default=None, help="trust-region radius for normalized/sign (default: 0.05)")
    p.add_argument(WARM_START_FLAGS["horizon"], type=int, default=None, help="lookahead steps k (default: the task's, 1 for SGD, 2 for AdamW)")
    p.add_argument(WARM_START_FLAGS["mode"], choices=MODES, default=None, help="hyper-gradient mode (default: exact)")
    p.add_argument(WARM_START_FLAGS["split_batch"], action="store_true", default=None, help="carve the validation batch out of the first mini-batch (default: off)")
    p.add_argument(WARM_START_FLAGS["clock"], choices=("flops", "calibrated"), default=None,
                   help="how the simulated clock charges an autograd warm-start: its counted FLOPs, or the task's "
                        "measured uninstrumented wall ratio x one plain step (ohgw_bench/overhead_calibration.json; "
                        "label suffix -cal) (default: flops)")
    p.add_argument(FLAGS["seed"], type=int, default=0, help="study seed (default: 0)")
    p.add_argument(FLAGS["budget"], type=float, default=None, help="seconds on the study's clock (default: the task's)")
    p.add_argument(FLAGS["n_workers"], type=int, default=4, help="number of (simulated or real) workers (default: 4)")
    p.add_argument(FLAGS["backend"], choices=BACKENDS, default="simulated",
                   help="simulated: in-process trials on a deterministic simulated clock; local: real processes and "
                        "wall-clock (default: simulated)")
    p.add_argument(FLAGS["results_dir"], default="results", help="root of the result folders (default: ./results)")
    p.add_argument(FLAGS["experiment"], default="default", help="experiment name, the first folder level (default: default)")
    p.add_argument(FLAGS["data_dir"], default=None, help="dataset root (default: $OHGW_DATA_DIR or ~/.cache/ohgw_bench/data)")
    p.add_argument(FLAGS["task_options"], action="append", metavar="KEY=VALUE", help="adapter option, value parsed as JSON where possible (e.g. hidden=32); repeatable (default: none)")
    p.add_argument(FLAGS["scheduler_options"], action="append", metavar="KEY=VALUE", help="scheduler option, value parsed as JSON where possible (e.g. eta=3); repeatable (default: none)")
    p.add_argument(FLAGS["tau"], type=float, default=None, help="threshold for time-to-target (default: the task's)")
    p.add_argument(FLAGS["max_failures"], type=int, default=20,
                   help="stop the study when more than this many trials failed (default: 20)")
    p.add_argument(FLAGS["max_consecutive_failures"], type=int, default=10,
                   help="stop the study when this many trials in a row failed (default: 10)")
    p.add_argument(FLAGS["unit_timeout"], type=float, default=3600.0, metavar="SECONDS",
                   help="wall-clock limit on one fidelity unit (train + evaluate) of a trial; a unit over it fails "
                        "that trial and the study goes on; 0: no limit (default: 3600)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing study folder instead of skipping it (default: off)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar on stderr; warnings and errors still show, and the summary still goes "
                        "to stdout (default: off)")
    p.add_argument("--verbose", action="store_true",
                   help="let Syne Tune's console output (its status table and trial messages) and the libraries' "
                        "info logging through to stderr (default: off)")
    p.add_argument("--track", choices=TRACKERS, default=None,
                   help="log the finished study as an MLflow run (needs the tracking extra; default: off)")
    p.add_argument("--track-uri", default=None, metavar="URI",
                   help="MLflow tracking URI for --track (default: sqlite:///<results-dir>/mlflow.db)")
    p.add_argument("--list-tasks", action="store_true", help="list the registered tasks and exit")
    p.add_argument("--list-schedulers", action="store_true", help="list the schedulers, their backends and options and exit")
    return p


def warm_start_settings(args: argparse.Namespace) -> Any:
    """The warm-start settings the flags ask for (parsed by WarmStartSettings.parse, the one parser)."""
    from ohgw_bench.flags import WARM_START_FLAGS, dest
    from ohgw_bench.warmstart import WarmStartSettings

    variant = args.warm_start or ("ohgw" if args.ohgw else "none")
    if args.ohgw and args.warm_start not in (None, "ohgw") and not str(args.warm_start).startswith("ohgw"):
        raise UserError(f"--ohgw contradicts --warm-start {args.warm_start}")
    flags = {key: (flag, getattr(args, dest(flag))) for key, flag in WARM_START_FLAGS.items() if key != "variant"}
    # Settings of a warm-start given without one would be silently ignored (the folder says none).
    given = [flag for flag, value in flags.values() if value is not None]
    if variant == "none" and given:
        raise UserError(f"{', '.join(given)}: warm-start settings, but no warm-start was chosen "
                        "(add --ohgw or --warm-start VARIANT)")
    try:
        return WarmStartSettings.parse(variant, **{key: value for key, (_, value) in flags.items()})
    except ValueError as e:
        raise UserError(f"--warm-start {variant}: {e}") from None


def spec_from_args(args: argparse.Namespace) -> Any:
    """The StudySpec the flags ask for, each field read through its flag (:data:`ohgw_bench.flags.FLAGS`)
    and recorded as its source, so that an error names the flag."""
    from ohgw_bench.flags import FLAGS, dest
    from ohgw_bench.spec import StudySpec

    kw = {name: getattr(args, dest(flag)) for name, flag in FLAGS.items()}
    for name in ("task_options", "scheduler_options"):
        kw[name] = parse_assignments(kw[name], FLAGS[name])
    kw["unit_timeout"] = kw["unit_timeout"] or None  # 0: no limit
    return StudySpec(warm_start=warm_start_settings(args), sources=dict(FLAGS), **kw)


def list_tasks() -> str:
    from ohgw_bench import tasks

    rows = [("id", "alias", "description")]
    rows += [(spec.id, ", ".join(spec.aliases), spec.description) for spec in tasks.registry.values()]
    w_id, w_alias = (max(len(r[i]) for r in rows) for i in (0, 1))  # columns fit the longest id and alias
    lines = [f"{i:<{w_id}}  {a:<{w_alias}}  {d}" for i, a, d in rows]
    lines.append("families: uci-<name>-mlp / uci-<name>-xgb (any CSV in <data-dir>/uci), atari-<game> (any ALE game); "
                 "module:Class for your own adapter")
    return "\n".join(lines)


def list_schedulers() -> str:
    """Name, backends and description of every scheduler, then its options (as README's table)."""
    from ohgw_bench import baselines

    specs = list(baselines.schedulers.values())
    rows = [("name", "backends", "description")] + [(s.name, ", ".join(s.backends), s.description) for s in specs]
    w_name, w_back = (max(len(r[i]) for r in rows) for i in (0, 1))
    lines = [f"{rows[0][0]:<{w_name}}  {rows[0][1]:<{w_back}}  {rows[0][2]}"]
    for s, (name, backends, description) in zip(specs, rows[1:]):
        lines.append(f"{name:<{w_name}}  {backends:<{w_back}}  {description}")
        indent = " " * (w_name + 2)
        try:
            lines.extend(f"{indent}{o.line()}" for o in baselines.declared_options(s.name))
        except UserError as e:  # its package is not installed: say so instead of its options
            lines.append(f"{indent}({e})")
    return "\n".join(lines)


def human_summary(s: dict[str, Any]) -> str:
    if s.get("skipped"):
        head = f"Study already complete (pass --overwrite to re-run): {s.get('folder')}"
    else:
        head = f"Study {s['study_id']} finished in {s.get('wall_seconds', 0):.1f} s wall-clock."
    best = s.get("best_metric")
    ws = s.get("warm_start", {})
    t_tau = s.get("time_to_tau")
    return "\n".join([
        head,
        f"  best {s.get('metric')}: {best if best is None else round(best, 5)}  "
        f"(incumbent's {s.get('test_metric')}: {None if s.get('best_test_metric') is None else round(s['best_test_metric'], 5)})",
        f"  trials: {s.get('trials')}  reports: {s.get('reports')}  failed trials: {s.get('failed_trials', 0)}",
        f"  ended: {s.get('ended')}  ({100 * (s.get('budget_used_fraction') or 0.0):.0f}% of the worker budget used)",
        f"  time to tau={s.get('tau')}: " + (f"{t_tau:.1f} s" if t_tau is not None else f"not reached within {s.get('budget')} s"),
        f"  warm-start: {ws.get('trials_nudged', 0)} trials nudged, {ws.get('sim_seconds', 0.0):.3g} s charged "
        f"({100 * ws.get('share_of_worker_time', 0.0):.2f}% of worker time), {ws.get('wall_seconds', 0.0):.3g} s measured",
        f"  results: {s.get('folder')}",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a closed stdout (``| head``) ends it quietly, as other Unix tools do."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the study started (while the libraries import): quiet
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away: point stdout at /dev/null so the interpreter's final flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_tasks:
            print(list_tasks())
            return 0
        if args.list_schedulers:
            print(list_schedulers())
            return 0
        from ohgw_bench import tracking
        from ohgw_bench.study import run_study

        track = tracking.check(args.track, args.track_uri)  # before any work: MLflow installed?

        if args.verbose:  # the libraries' info logging (Syne Tune's, SMAC's) on stderr
            import logging

            logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")

        spec = spec_from_args(args)
        summary = run_study(spec, progress=not args.quiet, overwrite=args.overwrite, verbose=args.verbose)
        if track is not None:  # after the study: a tracker failure is one warning, the folder is complete
            tracking.log_study(track, args.results_dir, summary["folder"])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted: the study folder is marked partial; run the same command to restart it", file=sys.stderr)
        return 130
    from ohgw_bench.results import dumps

    print(human_summary(summary))
    print(dumps({"status": "complete", **summary}))  # as summary.json; strict JSON: non-finite numbers are null
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
