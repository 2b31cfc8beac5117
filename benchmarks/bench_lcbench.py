"""Harness cost on a surrogate: ASHA on one LCBench dataset through run_study against a bare Syne Tune loop.

On a surrogate a report costs well under a millisecond of "training", so what a study spends is
the scheduler's decisions plus whatever the harness adds per report (rows, fsync, validation).
Syne Tune's own LCBench protocol is ASHA with 4 workers for 7,200 simulated seconds on its
simulator backend; that is the bare arm here:

- harness: ``run_study`` (simulated backend, ohgw_bench's Tuner callbacks, one results row per
  report written through ``results.StudyWriter``) on ``lcbench-<id>-v1``;
- bare: Syne Tune's ``Tuner`` + ``UserBlackboxBackend`` (its simulator backend) +
  ``SimulatorCallback`` + the same ``ASHA`` (same arguments and seed) over a ``Blackbox`` whose
  objective is the same task's surrogate curve (``LCBenchTask.curve``: one onnxruntime call per
  config, epochs 1-52, its ``time`` output as Syne Tune's elapsed time), no ohgw_bench harness.

The two clocks differ slightly where the predicted time is not monotone (ours: running maximum;
Syne Tune's: at least 0.01 s per epoch), so the arms need not make identical decisions; the
table therefore compares rates, reports per CPU-second of the process (``time.process_time``),
which do not depend on how many reports a run made. Arms alternate (A B, B A, ...).

    python benchmarks/bench_lcbench.py --out bench-results/bench_lcbench.md
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

GOAL = 0.90


def harness(task_id: str, budget: float, workers: int, seed: int, root: Path) -> dict[str, Any]:
    from ohgw_bench.study import StudySpec, run_study

    spec = StudySpec(task=task_id, scheduler="asha", seed=seed, budget=budget, n_workers=workers,
                     results_dir=str(root), experiment="bench-lcbench")
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_study(spec, progress=False)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "reports": summary["reports"],
            "trials": summary["trials"], "best": summary["best_metric"]}


def bare(task_id: str, budget: float, workers: int, seed: int, root: Path) -> dict[str, Any]:
    """Syne Tune's simulator protocol over the same surrogate, with nothing of ohgw_bench's harness."""
    import numpy as np
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.blackbox import Blackbox
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
    from syne_tune.config_space import randint
    from syne_tune.optimizer.baselines import ASHA

    from ohgw_bench import tasks
    from ohgw_bench.study import seed_everything
    from ohgw_bench.tasks.lcbench import OUTPUTS

    wall, cpu = time.perf_counter(), time.process_time()
    task = tasks.make(task_id)
    task.prepare()
    fid = task.fidelity
    names = task.space.names
    objectives = [o if o != "surrogate_time" else "time" for o in OUTPUTS]

    class Surrogate(Blackbox):
        def __init__(self) -> None:
            super().__init__(configuration_space=task.space.to_syne_tune(),
                             fidelity_space={fid.name: randint(fid.min, fid.max)}, objectives_names=objectives)

        @property
        def fidelity_values(self) -> np.ndarray:
            return np.arange(fid.min, fid.max + 1)

        def objective_function(self, configuration: dict[str, Any], fidelity: Any = None,
                               seed: int | None = None) -> np.ndarray:
            out, _ = task.curve({n: configuration[n] for n in names})
            return out if fidelity is None else out[int(fidelity[fid.name] if isinstance(fidelity, dict)
                                                         else fidelity) - 1]

    seed_everything(seed)
    backend = UserBlackboxBackend(blackbox=Surrogate(), elapsed_time_attr="time")
    scheduler = ASHA(config_space={**task.space.to_syne_tune(), fid.name: fid.max}, metric=task.metric,
                     time_attr=fid.name, max_t=fid.max, grace_period=fid.min, reduction_factor=3,
                     do_minimize=task.mode == "min", random_seed=seed)
    os.environ["SYNETUNE_FOLDER"] = str(root)
    callback = SimulatorCallback()
    tuner = Tuner(trial_backend=backend, scheduler=scheduler, stop_criterion=StoppingCriterion(max_wallclock_time=budget),
                  n_workers=workers, sleep_time=0, callbacks=[callback], save_tuner=False, tuner_name="bare",
                  suffix_tuner_name=False, print_update_interval=10**9, results_update_interval=10**9)
    with contextlib.redirect_stdout(io.StringIO()):  # its banner and "results saved" lines, as the harness does
        tuner.run()
    df = callback.dataframe()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "reports": len(df),
            "trials": int(df["trial_id"].nunique()), "best": float(df[task.metric].min())}


def main() -> int:
    p = common.parser(__doc__)
    p.add_argument("--task", default="lcbench-3945-v1", help="LCBench task id (default: lcbench-3945-v1)")
    p.add_argument("--budget", type=float, default=7200.0, help="simulated seconds (default: 7200)")
    p.add_argument("--workers", type=int, default=4, help="simulated workers (default: 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="runs per arm (default: 3)")
    args = p.parse_args()
    common.one_thread()
    for name in ("syne_tune", "syne_tune.tuner"):
        logging.getLogger(name).setLevel(logging.ERROR)
    report = common.Report(f"Harness cost on a surrogate: ASHA on {args.task}, run_study against bare Syne Tune",
                           args.out)
    runs: dict[str, list[dict[str, Any]]] = {"harness": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="ohgw-bench-lcbench-") as tmp:
        fresh = (Path(tmp) / f"run-{i}" for i in range(10**6))
        harness(args.task, args.budget, args.workers, args.seed, next(fresh))  # warm-up: imports, sessions
        bare(args.task, args.budget, args.workers, args.seed, next(fresh))
        for _, arm in common.alternating(args.repeats, ["harness", "bare"]):
            fn = harness if arm == "harness" else bare
            runs[arm].append(fn(args.task, args.budget, args.workers, args.seed, next(fresh)))
    rate = {arm: [r["reports"] / r["cpu"] for r in rs] for arm, rs in runs.items()}
    ratio = common.median(rate["harness"]) / common.median(rate["bare"])
    rows = [[arm, len(rs), common.spread([r["reports"] for r in rs]), common.spread([r["trials"] for r in rs]),
             common.spread([r["cpu"] for r in rs]), common.spread([r["wall"] for r in rs]), common.spread(rate[arm]),
             common.spread([r["best"] for r in rs])] for arm, rs in runs.items()]
    report.table(["arm", "runs", "reports", "trials", "CPU s", "wall s", "reports per CPU-second",
                  "best val_cross_entropy"], rows,
                 caption=f"{args.task}, ASHA (eta 3, grace 1, max 52 epochs), {args.workers} simulated workers, "
                         f"{args.budget:g} simulated seconds, seed {args.seed}; median (min-max) over runs.")
    report.note(f"Harness rate / bare rate (medians of reports per CPU-second): **{ratio:.3f}** "
                f"(goal >= {GOAL:.2f}: {'met' if ratio >= GOAL else 'not met'}).")
    report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
