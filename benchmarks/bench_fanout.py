"""Fan-out: an experiment of many short studies on 1 against 2 workers, process pool and Dask LocalCluster.

The experiment is N digits ASHA studies (seeds 0..N-1, a small simulated budget each), run
through ``ohgw_bench.executors.run_all`` exactly as ``python -m ohgw_bench.experiment
--executor process|dask --max-parallel P`` runs it, each run into a fresh results folder
(a finished study would otherwise be skipped). Wall time is end to end: pool or cluster
start, worker imports, the studies, shutdown. Runs alternate 1, 2, 2, 1, ... per executor, so
the speed-up wall(1) / wall(2) comes from the same stretch of time. CPU seconds of all
processes are shown beside it: equal CPU work with half the wall time is the goal.

    python benchmarks/bench_fanout.py --out bench-results/bench_fanout.md
"""

from __future__ import annotations

import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

GOAL = 1.7


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def ceiling(parallel: int, tasks: int = 8, n: int = 3_000_000) -> float:
    """Wall seconds of ``tasks`` equal pure-Python loops on a pool of ``parallel`` processes.

    The control for the studies' speed-up: no imports, no I/O, no torch; what two processes
    gain over one here is all the parallelism the machine gives this run at the moment.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=parallel, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_spin, [1000] * parallel))
        start = time.perf_counter()
        list(pool.map(_spin, [n] * tasks))
        return time.perf_counter() - start


def jobs(studies: int, budget: float, root: Path) -> list[tuple[str, dict[str, Any]]]:
    from ohgw_bench.study import StudySpec

    specs = [StudySpec(task="digits", scheduler="asha", seed=s, budget=budget, n_workers=4, experiment="fanout",
                       results_dir=str(root)) for s in range(studies)]
    return [(f"digits/asha/none/seed-{s.seed}", s.as_dict()) for s in specs]


def experiment(executor: str, parallel: int, studies: int, budget: float, root: Path) -> dict[str, float]:
    """Wall and CPU seconds of one whole experiment; raises unless every study ran to completion."""
    from ohgw_bench.executors import run_all

    work = jobs(studies, budget, root)
    cpu, wall = _cpu(), time.perf_counter()
    outcomes = run_all(executor, work, lambda outcome, started: None, max_parallel=parallel)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    bad = [(o.key, o.status, o.error) for o in outcomes if o.status != "complete"]
    if bad or len(outcomes) != studies:
        raise RuntimeError(f"{executor} x{parallel}: not every study completed: {bad}")
    reports = sum(o.summary["reports"] for o in outcomes)
    return {"wall": wall, "cpu": cpu, "reports": reports}


def main() -> int:
    p = common.parser(__doc__)
    p.add_argument("--studies", type=int, default=8, help="studies in the experiment (default: 8)")
    p.add_argument("--budget", type=float, default=4.0, help="simulated seconds per study (default: 4)")
    p.add_argument("--repeats", type=int, default=2, help="runs per (executor, workers) (default: 2)")
    p.add_argument("--executors", nargs="+", default=["process", "dask"], choices=["process", "dask"])
    args = p.parse_args()
    common.one_thread()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    report = common.Report("Fan-out: many short studies on 1 and 2 workers", args.out)
    rows = []
    control: dict[str, list[float]] = {"1": [], "2": []}
    for _, arm in common.alternating(max(2, args.repeats), ["1", "2"]):
        control[arm].append(ceiling(int(arm)))
    one, two = control["1"], control["2"]
    pairs = [a / b for a, b in zip(one, two)]
    rows.append(["control: 8 pure-Python loops, warm pool", len(one), common.spread(one), common.spread(two),
                 f"{common.median(one) / common.median(two):.2f} (pairs {min(pairs):.2f}-{max(pairs):.2f})",
                 "", "", "the ceiling"])
    with tempfile.TemporaryDirectory(prefix="ohgw-bench-fanout-") as tmp:
        fresh = iter(Path(tmp) / f"run-{i}" for i in range(10**6))
        for executor in args.executors:
            runs: dict[str, list[dict[str, float]]] = {"1": [], "2": []}
            for _, arm in common.alternating(args.repeats, ["1", "2"]):
                runs[arm].append(experiment(executor, int(arm), args.studies, args.budget, next(fresh)))
            reports = {r["reports"] for rs in runs.values() for r in rs}
            one = [r["wall"] for r in runs["1"]]
            two = [r["wall"] for r in runs["2"]]
            speedup = common.median(one) / common.median(two)
            pairs = [a / b for a, b in zip(one, two)]
            rows.append([executor, args.repeats, common.spread(one), common.spread(two),
                         f"{speedup:.2f} (pairs {min(pairs):.2f}-{max(pairs):.2f})",
                         f"{common.median([r['cpu'] for r in runs['1']]):.0f} / "
                         f"{common.median([r['cpu'] for r in runs['2']]):.0f}",
                         "yes" if len(reports) == 1 else f"NO: {sorted(reports)}",
                         "met" if speedup >= GOAL else "not met"])
    report.table(["executor", "runs per arm", "wall s, 1 worker", "wall s, 2 workers", "speed-up",
                  "CPU s, 1 / 2 workers", "same reports", f"goal >= {GOAL}x"], rows,
                 caption=f"{args.studies} studies of digits-mlp-v1 with ASHA, {args.budget:g} s simulated budget "
                         f"each (4 simulated workers per study); wall seconds as median (min-max).")
    report.note("Wall time includes starting the pool or LocalCluster (1 or 2 single-threaded worker processes) "
                "and their imports. The control row is the speed-up this machine gave two processes over one "
                "during the same run on work that needs nothing but a core: where it is well below 2, the "
                "machine (other processes, the hypervisor, the session's CPU share) sets the ceiling, not the "
                "executors. Compare the load average below.")
    report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
