"""Throughput of the default WikiText model on this CPU, and the warm-start cost ratio.

    PYTHONPATH=. python benchmarks/bench_text.py [--data-dir DIR] [--threads 1] [--out FILE]

Without ``--data-dir`` it runs on the embedded mini corpus (written to a temporary folder).
Prints a Markdown table: training tokens/s (forward + backward + AdamW, default model and
batch), the seconds and FLOPs of one training step, and the OHGW warm-start (k = 2 AdamW
lookahead, exact hyper-gradient of lr, weight decay, beta1, label smoothing) over one plain
training step, both measured with :func:`ohgw_bench.cost.measure`.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import torch

from ohgw_bench import hypergrad
from ohgw_bench.cost import measure, time_only
from ohgw_bench.tasks.text_corpus import write_mini_corpus
from ohgw_bench.tasks.wikitext import WikiTextTask


def tokens_per_second(task: WikiTextTask, steps: int) -> tuple[float, float]:
    """(tokens/s, median seconds per step) of the trial's own training step after a warm-up."""
    state = task.init_state(task.space.default_config(), 0)
    state.model.train()
    for _ in range(3):
        task._step(state)
    times = [time_only(lambda: task._step(state))[1] for _ in range(steps)]
    times.sort()
    step_seconds = times[len(times) // 2]
    return task.batch_size * task.seq_len / step_seconds, step_seconds


def warm_start_ratio(task: WikiTextTask, repeat: int) -> dict[str, float | str]:
    """Warm-start over plain step (seconds and FLOPs), or why it cannot be measured yet."""
    config = task.space.default_config()
    problem = task.hyper_problem(config, 0, task.default_horizon)
    names = task.space.movable("autograd")
    try:
        hypergrad.plain_step(problem)
        hypergrad.hypergradient(problem, task.space, names=names, horizon=task.default_horizon)
    except NotImplementedError:
        return {"status": "needs the hyper-gradient engine (ohgw_bench.hypergrad is a stub in this tree)"}
    plain = [measure(lambda: hypergrad.plain_step(problem), memory=False)[1] for _ in range(repeat)]
    warm = [measure(lambda: hypergrad.hypergradient(problem, task.space, names=names,
                                                    horizon=task.default_horizon), memory=False)[1]
            for _ in range(repeat)]
    plain_s = sorted(c.seconds for c in plain)[repeat // 2]
    warm_s = sorted(c.seconds for c in warm)[repeat // 2]
    return {"status": "ok", "plain_seconds": plain_s, "warm_seconds": warm_s,
            "time_ratio": warm_s / plain_s, "flops_ratio": warm[0].flops / plain[0].flops}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--variant", default="wikitext103", choices=["wikitext103", "wikitext2"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or write_mini_corpus(Path(tmp) / "mini")
        task = WikiTextTask(data_dir, variant=args.variant)
        task.prepare()
        tps, step_s = tokens_per_second(task, args.steps)
        flops = task.flops()
        ws = warm_start_ratio(task, args.repeat)

    device = torch.cuda.get_device_name() if task.device.type == "cuda" else (platform.processor() or platform.machine())
    params = sum(p.numel() for p in task._model(task.space.default_config(), 0).parameters())
    corpus = "embedded mini corpus" if args.data_dir is None else str(args.data_dir)
    rows = [
        ("device", f"{task.device.type} ({device}), torch threads = {torch.get_num_threads()}"),
        ("data", f"{args.variant}, {corpus}, {task.source.description if task.source else '?'}"),
        ("model", f"GPT-2 n_layer={task.n_layer} n_embd={task.n_embd} n_head={task.n_head}, "
                  f"{params / 1e6:.2f}M parameters, byte vocabulary {256}"),
        ("batch", f"{task.batch_size} x {task.seq_len} tokens"),
        ("training tokens/s", f"{tps:,.0f}"),
        ("seconds per step (median)", f"{step_s:.3f}"),
        ("GFLOPs per step (counted)", f"{flops['step'] / 1e9:.2f}"),
        ("achieved GFLOP/s", f"{flops['step'] / step_s / 1e9:.1f}"),
        ("simulated seconds per unit", f"{task.cost(task.space.default_config(), 0, 1):.2f} "
                                       f"({task.steps_per_unit} steps + evaluation)"),
    ]
    if ws["status"] == "ok":
        rows += [
            ("warm-start k", str(task.default_horizon)),
            ("plain step seconds (engine)", f"{ws['plain_seconds']:.3f}"),
            ("warm-start seconds", f"{ws['warm_seconds']:.3f}"),
            ("warm-start / plain step, time", f"{ws['time_ratio']:.2f}x"),
            ("warm-start / plain step, FLOPs", f"{ws['flops_ratio']:.2f}x"),
        ]
    else:
        rows.append(("warm-start / plain step", str(ws["status"])))
    table = "| quantity | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    sys.stdout.write(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
