"""Harness overhead: trials per minute of an ASHA study on digits through ohgw_bench, against a bare loop.

The harness arm is the study ohgw_bench runs: ``run_study`` in this process (what the
executors call), and ``python -m ohgw_bench.run`` as a process of its own. The bare arm drives
the same Syne Tune ASHA (same arguments, same seeds) with a dozen lines: ask ``suggest``,
train one epoch with ``DigitsTask.train`` / ``evaluate``, tell ``on_trial_result``, keep
``n_workers`` trials running on the same simulated timeline (the task's deterministic
FLOP-based cost per epoch), stop at the same simulated budget. No Tuner, no callbacks, no
result rows, no study folder.

Equal work: both arms see the same configurations, training seeds and metric values, so
ASHA makes the same decisions and both train exactly the same epochs; the script checks that
the trial and report counts and the best metric agree, and says so in the table. Trials per
minute = trials / wall minutes; the ratio harness / bare is the share of throughput the
harness keeps. Arms alternate (A B, B A, ...) to cancel drift; CPU seconds are shown beside
wall seconds because the CPU time of a process barely depends on how busy the other cores are.

Tracking cost (issue 26): the embedded default study (``python -m ohgw_bench.run``: digits,
ASHA, the task's 30-s budget) as a whole process, with and without ``--track mlflow``,
alternating; the CPU seconds of the child process are compared (goal: tracking adds <= 5%).
The tracked arm logs into one SQLite store across its repeats, so its first run also creates
the store. A second row logs already finished studies from this process once MLflow is
imported (copies of the default study, each in an experiment of its own), the cost each further
study of an experiment pays.

    python benchmarks/bench_harness.py --out bench-results/bench_harness.md
    python benchmarks/bench_harness.py --only-tracking --track-repeats 3
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

GOAL = 0.10
TRACKING_GOAL = 0.05


def harness_inprocess(budget: float, workers: int, seed: int, root: Path) -> dict[str, Any]:
    from ohgw_bench.study import StudySpec, run_study

    spec = StudySpec(task="digits", scheduler="asha", seed=seed, budget=budget, n_workers=workers,
                     results_dir=str(root), experiment="bench-harness")
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_study(spec, progress=False)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "trials": summary["trials"],
            "reports": summary["reports"], "best": summary["best_metric"]}


def bare_loop(budget: float, workers: int, seed: int) -> dict[str, Any]:
    """ASHA on digits with nothing but Syne Tune's scheduler, the task and a simulated clock."""
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.baselines import ASHA
    from syne_tune.optimizer.scheduler import SchedulerDecision

    from ohgw_bench import tasks
    from ohgw_bench.study import seed_everything
    from ohgw_bench.trial_plan import trial_seed

    wall, cpu = time.perf_counter(), time.process_time()
    task = tasks.make("digits")
    task.prepare()
    seed_everything(seed)
    fid = task.fidelity
    scheduler = ASHA(config_space={**task.space.to_syne_tune(), fid.name: fid.max}, metric=task.metric,
                     time_attr=fid.name, max_t=fid.max, grace_period=fid.min, reduction_factor=3,
                     do_minimize=task.mode == "min", random_seed=seed)
    names = task.space.names
    running: list[tuple[float, int, int]] = []
    order = itertools.count()
    trials: dict[int, tuple[Trial, Any]] = {}
    now, reports, best, reported = 0.0, 0, None, set()

    def unit_end(trial_id: int, start: float) -> float:
        trial, state = trials[trial_id]
        return start + task.cost({n: trial.config[n] for n in names}, state.fidelity, state.fidelity + 1)

    while True:
        while len(running) < workers:
            suggestion = scheduler.suggest()
            trial_id = len(trials)
            trial = Trial(trial_id=trial_id, config=dict(suggestion.config), creation_time=datetime.now())
            scheduler.on_trial_add(trial)
            config = {n: trial.config[n] for n in names}
            trials[trial_id] = (trial, task.init_state(config, trial_seed(seed, trial_id)))
            heapq.heappush(running, (unit_end(trial_id, now), next(order), trial_id))
        end, _, trial_id = heapq.heappop(running)
        if end > budget:
            break
        now = end
        trial, state = trials[trial_id]
        task.train(state, state.fidelity + 1)
        result = {fid.name: state.fidelity, **task.evaluate(state)}
        reports += 1
        reported.add(trial_id)
        best = result[task.metric] if best is None else min(best, result[task.metric])
        decision = scheduler.on_trial_result(trial, result)
        if decision == SchedulerDecision.STOP:
            scheduler.on_trial_remove(trial)
            trials[trial_id] = (trial, None)
        elif state.fidelity >= fid.max:
            scheduler.on_trial_complete(trial, result)
            trials[trial_id] = (trial, None)
        else:
            heapq.heappush(running, (unit_end(trial_id, now), next(order), trial_id))
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "trials": len(reported),
            "reports": reports, "best": best}


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_subprocess(argv: list[str]) -> dict[str, Any]:
    """Wall and CPU seconds of a whole process (interpreter start and imports included), and its JSON line."""
    cpu, wall = _child_cpu(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    wall, cpu = time.perf_counter() - wall, _child_cpu() - cpu
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall": wall, "cpu": cpu, "trials": summary["trials"], "reports": summary["reports"],
            "best": summary.get("best_metric", summary.get("best"))}


def cli_argv(budget: float, workers: int, seed: int, root: Path) -> list[str]:
    return [sys.executable, "-m", "ohgw_bench.run", "--budget", str(budget), "--workers", str(workers),
            "--seed", str(seed), "--results-dir", str(root), "--experiment", "bench-harness", "--quiet"]


def bare_argv(budget: float, workers: int, seed: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--bare-once", "--budget", str(budget),
            "--workers", str(workers), "--seed", str(seed)]


def compare(label: str, runs: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """One table row: harness and bare throughput, their ratio in wall and CPU time, equal-work check."""
    h, b = runs["harness"], runs["bare"]
    same = {(r["trials"], r["reports"], r["best"]) for r in h + b}
    trials = h[0]["trials"]
    tpm_h = [60 * r["trials"] / r["wall"] for r in h]
    tpm_b = [60 * r["trials"] / r["wall"] for r in b]
    ratio_wall = common.median(tpm_h) / common.median(tpm_b)
    ratio_cpu = common.median([r["cpu"] for r in b]) / common.median([r["cpu"] for r in h])
    pairs = [x / y for x, y in zip(tpm_h, tpm_b)]
    return [label, len(h), trials, h[0]["reports"], common.spread(tpm_h), common.spread(tpm_b),
            f"{ratio_wall:.3f} (pairs {min(pairs):.2f}-{max(pairs):.2f})", f"{ratio_cpu:.3f}",
            f"{100 * (1 - ratio_wall):.1f}%", "yes" if len(same) == 1 else f"NO: {sorted(same)}",
            "met" if 1 - ratio_wall < GOAL else "not met"]


def harness_tables(report: common.Report, args: argparse.Namespace, root: Path) -> None:
    """The harness-overhead table: run_study in this process and the CLI as a process, against the bare loop."""
    rows = []
    fresh = (root / f"run-{i}" for i in itertools.count())
    harness_inprocess(args.budget, args.workers, args.seed, next(fresh))
    bare_loop(args.budget, args.workers, args.seed)
    runs: dict[str, list[dict[str, Any]]] = {"harness": [], "bare": []}
    for _, arm in common.alternating(args.repeats, ["harness", "bare"]):
        if arm == "harness":
            runs[arm].append(harness_inprocess(args.budget, args.workers, args.seed, next(fresh)))
        else:
            runs[arm].append(bare_loop(args.budget, args.workers, args.seed))
    rows.append(compare("run_study in this process", runs))
    if args.cli_repeats:
        runs = {"harness": [], "bare": []}
        for _, arm in common.alternating(args.cli_repeats, ["harness", "bare"]):
            argv = (cli_argv(args.budget, args.workers, args.seed, next(fresh)) if arm == "harness"
                    else bare_argv(args.budget, args.workers, args.seed))
            runs[arm].append(in_subprocess(argv))
        rows.append(compare("python -m ohgw_bench.run (whole process)", runs))
    report.table(["harness arm", "runs per arm", "trials", "reports", "harness trials/min", "bare trials/min",
                  "throughput ratio, wall", "ratio, CPU s", "harness cost", "equal work", "goal < 10%"], rows,
                 caption=f"digits-mlp-v1, ASHA (eta 3), {args.workers} simulated workers, {args.budget:g} s simulated "
                         f"budget, seed {args.seed}; trials/min as median (min-max) over runs.")
    report.note("Harness cost = 1 - (harness trials/min) / (bare trials/min), medians. The process row "
                "compares whole processes: `python -m ohgw_bench.run --quiet` against this script's "
                "`--bare-once` bare loop, both paying interpreter start and imports. CPU ratio = bare CPU s / "
                "harness CPU s (the process row counts the child's CPU time).")


def tracking_rows(repeats: int, root: Path) -> list[list[Any]]:
    """Default study as a process, tracked against untracked (CPU s), and the per-study cost of logging
    once MLflow is loaded (CPU s of :func:`ohgw_bench.tracking.log_study` on further finished studies)."""
    from ohgw_bench import results, tracking

    runs: dict[str, list[dict[str, Any]]] = {"untracked": [], "tracked": []}
    for _, arm in common.alternating(repeats, ["untracked", "tracked"]):
        argv = [sys.executable, "-m", "ohgw_bench.run", "--quiet", "--overwrite", "--results-dir", str(root / arm)]
        runs[arm].append(in_subprocess(argv + (["--track", "mlflow"] if arm == "tracked" else [])))
    u, t = runs["untracked"], runs["tracked"]
    same = {(r["trials"], r["reports"], r["best"]) for r in u + t}
    extra = common.median([r["cpu"] for r in t]) / common.median([r["cpu"] for r in u]) - 1
    pairs = [b["cpu"] / a["cpu"] - 1 for a, b in zip(u, t)]
    rows = [["`python -m ohgw_bench.run` (default study, whole process)", len(u), u[0]["trials"],
             common.spread([r["cpu"] for r in u]), common.spread([r["cpu"] for r in t]),
             f"{100 * extra:.1f}% (pairs {100 * min(pairs):.1f}-{100 * max(pairs):.1f}%)",
             "yes" if len(same) == 1 else f"NO: {sorted(same)}", "met" if extra <= TRACKING_GOAL else "not met"]]
    # Each further study of an experiment: MLflow is imported and the store open; only the logging is
    # paid. The studies logged are copies of the untracked arm's default study, each in an experiment
    # of its own (so none is taken for one already logged, and each also creates its MLflow experiment).
    source = next((root / "untracked").rglob(results.SUMMARY_FILE)).parent
    folders = []
    for i in range(4):
        folder = root / "marginal" / f"copy-{i}" / "study"
        shutil.copytree(source, folder)
        study = json.loads((folder / results.STUDY_FILE).read_text())
        study["spec"]["experiment"] = f"bench-tracking-{i}"
        (folder / results.STUDY_FILE).write_text(json.dumps(study))
        folders.append(folder)
    costs = []
    for folder in folders:
        cpu = time.process_time()
        assert tracking.log_study(tracking.Tracking(), root / "marginal", folder) is not None
        costs.append(time.process_time() - cpu)
    default_cpu = common.median([r["cpu"] for r in u])
    rows.append(["`log_study` of a further default study (MLflow loaded), in-process", len(costs) - 1, "",
                 "", f"{common.spread(costs[1:])} (first, with the import and a new store: {costs[0]:.2f})",
                 f"{100 * common.median(costs[1:]) / default_cpu:.1f}% of the default study's CPU s", "",
                 "met" if common.median(costs[1:]) / default_cpu <= TRACKING_GOAL else "not met"])
    return rows


def main() -> int:
    p = common.parser(__doc__)
    p.add_argument("--budget", type=float, default=3.0, help="simulated seconds per study (default: 3)")
    p.add_argument("--workers", type=int, default=4, help="simulated workers, the CLI's default (default: 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=4, help="in-process runs per arm (default: 4)")
    p.add_argument("--cli-repeats", type=int, default=2, help="process runs per arm, 0 to skip (default: 2)")
    p.add_argument("--track-repeats", type=int, default=3,
                   help="default-study process runs per arm, with and without --track mlflow; 0 to skip (default: 3)")
    p.add_argument("--only-tracking", action="store_true", help="run the tracking comparison only")
    p.add_argument("--bare-once", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    common.one_thread()
    logging.getLogger("syne_tune.optimizer.schedulers.searchers.last_value_multi_fidelity_searcher").setLevel(logging.ERROR)
    if args.bare_once:
        print(json.dumps(bare_loop(args.budget, args.workers, args.seed)))
        return 0

    report = common.Report("Harness overhead: ASHA on digits, ohgw_bench against a bare Syne Tune loop", args.out)
    with tempfile.TemporaryDirectory(prefix="ohgw-bench-harness-") as tmp:
        if not args.only_tracking:
            harness_tables(report, args, Path(tmp))
        if args.track_repeats:
            rows = tracking_rows(args.track_repeats, Path(tmp) / "tracking")
            report.table(["arm", "runs per arm", "trials", "untracked CPU s", "tracked CPU s", "extra CPU",
                          "equal work", f"goal <= {100 * TRACKING_GOAL:.0f}%"], rows,
                         caption="Tracking cost: the default study (digits-mlp-v1, ASHA, 4 simulated workers, 30 s "
                                 "budget, seed 0) with and without `--track mlflow` (local SQLite store in the "
                                 "results folder); CPU s of the child process as median (min-max).")
        report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
