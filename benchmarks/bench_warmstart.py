"""Warm-start cost as a ratio to one plain training step: time, FLOPs and peak memory.

Usage:
    python benchmarks/bench_warmstart.py --out benchmarks/results/warmstart.md [--repeats 5]

Cases (docs/design.md section 4): lr/wd/momentum at k = 1; all five at k = 1 exact, mixed and
first-order; split-batch (the validation half carved out of the same mini-batch), on
(a) a ResNet-20 (0.27M parameters) on random 32x32 inputs, batch 128, and (b) the digits
task when ``ohgw_bench.tasks.digits`` exists. Time is the median over repeats of the ratio
of back-to-back timing blocks (warm-start, then plain step; a block repeats a fast call
until it lasts about ``--block`` seconds) without counters, so load from other processes
hits both sides of each ratio alike; FLOPs come from torch's flop counter and
peak memory from :func:`ohgw_bench.cost.measure`. The ratio covers the engine call only,
not the task building its HyperProblem.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ohgw_bench.cost import measure
from ohgw_bench.hypergrad import (
    SGD,
    HyperProblem,
    hypergradient,
    optimizer_names,
    plain_step,
    split_batch,
)
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.cifar import ResNet20

SPLIT_GOAL = 1.2
EXACT_GOAL = 4.0


RESNET_SPACE = SearchSpace([
    Hyperparameter("lr", 1e-3, 1.0, 0.1, log=True),
    Hyperparameter("weight_decay", 1e-6, 1e-2, 5e-4, log=True),
    Hyperparameter("momentum", 0.0, 0.99, 0.9),
    Hyperparameter("label_smoothing", 0.0, 0.3, 0.1),
    Hyperparameter("aug_magnitude", 0.0, 1.0, 0.2),
])


def smoothed_loss(forward: Callable[..., torch.Tensor], batch: Any, hp: Any) -> torch.Tensor:
    x, y, noise = batch
    logp = F.log_softmax(forward(x + hp["aug_magnitude"] * noise), dim=-1)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    return ((1 - hp["label_smoothing"]) * nll + hp["label_smoothing"] * (-logp.mean(-1))).mean()


def plain_val_loss(forward: Callable[..., torch.Tensor], batch: Any) -> torch.Tensor:
    return F.cross_entropy(forward(batch[0]), batch[1])


def resnet_problems(batch: int) -> tuple[HyperProblem, HyperProblem, SearchSpace]:
    """(separate validation batch, split batch) problems on random CIFAR-shaped data."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = ResNet20(10)  # PyTorch's default init under the seed above

    def draw() -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, 3, 32, 32, generator=g), torch.randint(0, 10, (batch,), generator=g),
                torch.randn(batch, 3, 32, 32, generator=g))

    hyper = {p.name: p.default for p in RESNET_SPACE}
    opt = SGD("lr", "momentum", "weight_decay")
    first = draw()
    full = HyperProblem(model, [first], draw()[:2], smoothed_loss, plain_val_loss, opt, hyper)
    train, val = split_batch(first)
    split = HyperProblem(model, [train], val[:2], smoothed_loss, plain_val_loss, opt, hyper)
    return full, split, RESNET_SPACE


def digits_problems() -> tuple[HyperProblem, HyperProblem, SearchSpace] | None:
    if importlib.util.find_spec("ohgw_bench.tasks.digits") is None:
        return None
    from ohgw_bench.tasks.digits import DigitsTask

    task = DigitsTask()
    config = task.space.default_config()
    return task.hyper_problem(config, 0, 1, False), task.hyper_problem(config, 0, 1, True), task.space


@dataclass
class Case:
    name: str
    problem: HyperProblem
    names: list[str]
    mode: str
    goal: float | None = None


def cases(full: HyperProblem, split: HyperProblem, space: SearchSpace) -> list[Case]:
    every = [n for n in space.movable("autograd") if n in full.hyper]
    opt = [n for n in every if n in optimizer_names(full.optimizer)]
    return [
        Case(f"{'/'.join(opt)} k=1 exact", full, opt, "exact"),
        Case("all five k=1 exact", full, every, "exact", EXACT_GOAL),
        Case("all five k=1 mixed", full, every, "mixed"),
        Case("all five k=1 first-order", full, every, "first-order"),
        Case("split-batch all five k=1 first-order", split, every, "first-order", SPLIT_GOAL),
        Case("split-batch all five k=1 exact", split, every, "exact"),
    ]


def seconds(fn: Callable[[], Any], calls: int = 1) -> float:
    """Mean wall time of ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def calls_for(fn: Callable[[], Any], block: float) -> int:
    """How many calls make a timing block of about ``block`` seconds (small models need many)."""
    return max(1, math.ceil(block / max(seconds(fn), 1e-6)))


def wall_ratios(warm: Callable[[], Any], step: Callable[[], Any], n_warm: int, n_step: int,
                repeats: int) -> tuple[list[float], list[float], list[float]]:
    """(warm / step ratios, warm seconds, step seconds) of ``repeats`` timings, the two timed back
    to back each time so that a change of load hits both."""
    ratios, warm_s, step_s = [], [], []
    for _ in range(repeats):
        w = seconds(warm, n_warm)
        s = seconds(step, n_step)
        ratios.append(w / s)
        warm_s.append(w)
        step_s.append(s)
    return ratios, warm_s, step_s


def bench(task: str, full: HyperProblem, split: HyperProblem, space: SearchSpace, repeats: int,
          block: float) -> list[dict[str, Any]]:
    def step() -> float:
        return plain_step(full)

    step()
    _, base = measure(step)
    rows = []
    for case in cases(full, split, space):
        def warm(case: Case = case) -> Any:
            return hypergradient(case.problem, space, names=case.names, mode=case.mode)  # type: ignore[arg-type]

        warm()
        n_warm, n_step = calls_for(warm, block), calls_for(step, block)
        ratios, warm_s, step_s = wall_ratios(warm, step, n_warm, n_step, repeats)
        _, cost = measure(warm)
        row = {
            "task": task,
            "case": case.name,
            "time": statistics.median(ratios),
            "flops": cost.flops / base.flops,
            "memory": cost.peak_bytes / base.peak_bytes,
            "warm_ms": 1e3 * statistics.median(warm_s),
            "step_ms": 1e3 * statistics.median(step_s),
            "goal": case.goal,
        }
        rows.append(row)
        print(f"{task:10s} {case.name:40s} time {row['time']:.2f}x flops {row['flops']:.2f}x "
              f"memory {row['memory']:.2f}x", file=sys.stderr, flush=True)
    return rows


def verdict(row: dict[str, Any]) -> str:
    if row["goal"] is None:
        return ""
    parts = [f"{what} {'met' if row[what] <= row['goal'] else 'NOT met'}" for what in ("time", "flops")]
    return f"<= {row['goal']:g}x: " + ", ".join(parts)


def markdown(rows: Sequence[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# Warm-start cost relative to one plain training step",
        "",
        f"torch {torch.__version__}, {platform.machine()} {platform.processor() or ''}".rstrip()
        + f", {torch.get_num_threads()} torch thread(s), float32, batch {args.batch} (ResNet-20), "
        f"time = median of {args.repeats} paired ratios of timing blocks of >= {args.block:g} s "
        "(no counters attached).",
        "",
        "| task | warm-start | time | FLOPs | peak memory | warm-start ms | plain step ms | goal |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['case']} | {r['time']:.2f}x | {r['flops']:.2f}x | {r['memory']:.2f}x | "
            f"{r['warm_ms']:.1f} | {r['step_ms']:.1f} | {verdict(r)} |"
        )
    lines += ["", "Goals: split-batch first-order <= 1.2x; all five k=1 exact <= 4x (time and FLOPs)."]
    for r in rows:
        if r["goal"] is not None:
            lines.append(f"- {r['task']}, {r['case']}: time {r['time']:.2f}x, FLOPs {r['flops']:.2f}x -> {verdict(r)}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the Markdown table here as well")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 makes timings comparable)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--block", type=float, default=0.5,
                        help="seconds per timing block: fast steps are repeated within a block")
    parser.add_argument("--tasks", nargs="+", default=["resnet20", "digits"], choices=["resnet20", "digits"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows: list[dict[str, Any]] = []
    if "resnet20" in args.tasks:
        rows += bench("resnet20", *resnet_problems(args.batch), repeats=args.repeats, block=args.block)
    if "digits" in args.tasks:
        problems = digits_problems()
        if problems is None:
            print("ohgw_bench.tasks.digits not found: skipping digits", file=sys.stderr)
        else:
            rows += bench("digits", *problems, repeats=args.repeats, block=args.block)
    text = markdown(rows, args)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
