"""Calibration: the warm-start's cost on the real clock, without instrumentation, per CPU task.

Usage:
    python benchmarks/bench_overhead.py --out benchmarks/results/overhead.md [--write-calibration]

Why: a study's warm-start record times the warm-start with the FLOP counter and the memory
tracker attached (``ohgw_bench.cost.measure``), which inflates small steps, so its seconds
cannot say whether the simulated FLOP clock is fair to OHGW. Here, per task, the warm-start
exactly as a study runs it (the task builds its ``HyperProblem``, then the hyper-gradient
engine runs, k = the task's default horizon, mode exact, full batch) and one plain training
step on the same problem are timed bare, in back-to-back blocks (a fast call is repeated
until a block lasts about ``--block`` seconds), warm-start then step, ``--repeats`` times over
``--configs`` configs drawn from the task's space; the wall ratio is the median of the paired
block ratios, so load from other processes hits both sides of a ratio alike. FLOPs and peak
memory are counted in a separate pass (``ohgw_bench.cost.measure_separately``).

Columns: ``wall ratio`` (uninstrumented warm-start / plain-step seconds), ``FLOP ratio``
(what the simulated FLOP clock charges, in plain-step units), and ``wall / FLOP`` (above 1: the
FLOP clock under-charges OHGW on this machine; below 1: it over-charges). ``--write-calibration``
stores the wall ratios in ``ohgw_bench/overhead_calibration.json``, which the ``calibrated``
warm-start clock (``--warm-start-clock calibrated``) charges: ratio x the task's simulated
plain-step cost. The load average is printed beside every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ohgw_bench import tasks
from ohgw_bench.cost import CALIBRATION_FILE, calibration_key, measure_separately
from ohgw_bench.hypergrad import hypergradient, plain_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_warmstart import calls_for, wall_ratios  # noqa: E402 - the same timing blocks as the engine benchmark

CPU_TASKS = ("digits-loss", "synth-clf", "synth-reg", "digits", "uci-breast_cancer-mlp", "uci-wine-mlp")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_task(name: str, configs: int, repeats: int, block: float) -> dict[str, Any]:
    task = tasks.make(name)
    task.prepare()
    k = int(getattr(task, "default_horizon", 1))
    rng = np.random.default_rng([0, 0xCA1])
    ratios, flop_ratios, warm_s, step_s, mem = [], [], [], [], []
    load0 = load()
    for i in range(configs):
        config = task.space.default_config() if i == 0 else task.space.sample(rng)
        seed = 1000 + i

        def warm(config: dict[str, Any] = config, seed: int = seed) -> Any:
            problem = task.hyper_problem(config, seed, k, False)
            return hypergradient(problem, task.space, horizon=k, mode="exact", on_unreachable="flag")

        problem = task.hyper_problem(config, seed, k, False)

        def step(problem: Any = problem) -> float:
            return plain_step(problem)

        warm(), step()  # first-call allocations
        n_warm, n_step = calls_for(warm, block), calls_for(step, block)
        r, w, s = wall_ratios(warm, step, n_warm, n_step, repeats)
        ratios += r
        warm_s += w
        step_s += s
        _, wc = measure_separately(warm)
        _, sc = measure_separately(step)
        flop_ratios.append(wc.flops / sc.flops)
        mem.append(wc.peak_bytes / sc.peak_bytes if sc.peak_bytes else float("nan"))
    wall = statistics.median(ratios)
    flops = statistics.median(flop_ratios)
    row = {"task": task.id, "alias": name, "key": calibration_key(k, "exact", False), "configs": configs,
           "repeats": repeats, "wall_ratio": wall, "wall_ratio_q25": float(np.quantile(ratios, 0.25)),
           "wall_ratio_q75": float(np.quantile(ratios, 0.75)), "flop_ratio": flops, "wall_over_flop": wall / flops,
           "memory_ratio": statistics.median(mem), "warm_ms": 1e3 * statistics.median(warm_s),
           "step_ms": 1e3 * statistics.median(step_s), "load_start": load0, "load_end": load()}
    print(f"{task.id:26s} wall {wall:6.2f}x  flops {flops:6.2f}x  wall/flop {wall / flops:5.2f}  "
          f"load {row['load_start']} -> {row['load_end']}", file=sys.stderr, flush=True)
    return row


def markdown(rows: Sequence[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = ["# Warm-start overhead on the real clock (uninstrumented) vs the FLOP clock", "",
             f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} torch thread(s), "
             f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M %Z')}; per task {args.configs} configs x "
             f"{args.repeats} paired timing blocks of >= {args.block:g} s; k = default horizon, mode exact.", "",
             "| task | settings | wall ratio (median [IQR]) | FLOP ratio | wall / FLOP | memory ratio | "
             "warm-start ms | plain step ms | load (1, 5, 15 min) start / end |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['key']} | {r['wall_ratio']:.2f} [{r['wall_ratio_q25']:.2f}, "
                     f"{r['wall_ratio_q75']:.2f}] | {r['flop_ratio']:.2f} | {r['wall_over_flop']:.2f} | "
                     f"{r['memory_ratio']:.2f} | {r['warm_ms']:.2f} | {r['step_ms']:.2f} | "
                     f"{r['load_start']} / {r['load_end']} |")
    lines += ["", "wall / FLOP above 1: the FLOP clock charges OHGW less than its wall time; below 1: more. "
              "Off by more than 20% (outside [0.8, 1.25]): "
              + (", ".join(r["task"] for r in rows if not 0.8 <= r["wall_over_flop"] <= 1.25) or "none") + "."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="write the Markdown table here as well")
    p.add_argument("--tasks", nargs="+", default=list(CPU_TASKS))
    p.add_argument("--configs", type=int, default=3, help="configs per task (the default config, then sampled)")
    p.add_argument("--repeats", type=int, default=5, help="paired timing blocks per config")
    p.add_argument("--block", type=float, default=0.3, help="seconds per timing block")
    p.add_argument("--write-calibration", action="store_true", help=f"store the wall ratios in {CALIBRATION_FILE.name}")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [bench_task(name, args.configs, args.repeats, args.block) for name in args.tasks]
    text = markdown(rows, args)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.write_calibration:
        old = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {"tasks": {}}
        for r in rows:
            old["tasks"].setdefault(r["task"], {})[r["key"]] = {
                "wall_ratio": round(r["wall_ratio"], 4), "flop_ratio": round(r["flop_ratio"], 4),
                "load": r["load_start"], "measured": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, 1 torch thread"}
        old["about"] = ("uninstrumented warm-start / plain-step wall ratios (benchmarks/bench_overhead.py); "
                        "the calibrated warm-start clock charges ratio x the task's simulated plain-step cost")
        CALIBRATION_FILE.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
