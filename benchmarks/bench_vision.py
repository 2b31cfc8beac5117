"""ResNet-20 training throughput (CPU, one thread; GPU where present) and the warm-start cost ratio.

Runs the CIFAR task's own training step (device-side crop/flip/photometric augmentation,
smoothed loss, SGD step) on a synthetic dataset written in the real pickle format, unless
--data-dir points at real CIFAR batches. The warm-start ratio is the one-shot hyper-gradient's
cost over one plain training step of the same problem, both taken with ohgw_bench.cost.measure,
for a separate validation batch and for the split-batch variant (docs/design.md section 4).

    python benchmarks/bench_vision.py --out results/bench_vision.md
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from ohgw_bench import cost, hypergrad, tasks
from ohgw_bench.tasks.cifar import write_cifar_batches
from ohgw_bench.tasks.vision_common import augmented_loss


def throughput(data_dir: Path, dev: str, batch_size: int, steps: int, warmup: int) -> dict[str, float]:
    """Images per second of the task's training step on ``dev``: per wall second (median step) and,
    on the CPU, per CPU second of this process (steady when other processes share the cores)."""
    task = tasks.make("cifar10", data_dir=data_dir, batch_size=batch_size, device=dev)
    state = task.init_state(task.space.default_config(), seed=0)
    order = task._epoch_order(0, 0)
    wall, cpu = [], []
    for i in range(warmup + steps):
        batch = task._batch(order, 0, 0, i % task.steps_per_epoch)

        def step(batch: tuple[torch.Tensor, ...] = batch) -> None:
            state.optimizer.zero_grad(set_to_none=True)
            augmented_loss(state.model, batch, state.config).backward()
            state.optimizer.step()
            if dev.startswith("cuda"):
                torch.cuda.synchronize()

        start_cpu = time.process_time()
        _, seconds = cost.time_only(step)
        if i >= warmup:
            wall.append(seconds)
            cpu.append(time.process_time() - start_cpu)
    wall.sort()
    cpu.sort()
    return {"seconds_per_step": wall[len(wall) // 2], "images_per_second": batch_size / wall[len(wall) // 2],
            "images_per_cpu_second": batch_size / cpu[len(cpu) // 2]}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def warm_start_ratio(data_dir: Path, dev: str, batch_size: int, split_batch: bool) -> dict[str, float] | str:
    """(hyper-gradient cost) / (plain step cost) in time and FLOPs, or why it cannot be measured."""
    task = tasks.make("cifar10", data_dir=data_dir, batch_size=batch_size, device=dev)
    config = task.space.default_config()
    try:
        problem = task.hyper_problem(config, seed=0, horizon=1, split_batch=split_batch)
        hypergrad.hypergradient(problem, task.space, horizon=1)  # warm-up, and the stub check
        _, plain = cost.measure(lambda: hypergrad.plain_step(task.hyper_problem(config, 0, 1, split_batch)))
        _, warm = cost.measure(lambda: hypergrad.hypergradient(
            task.hyper_problem(config, 0, 1, split_batch), task.space, horizon=1))
    except NotImplementedError:
        return "needs the hyper-gradient engine (ohgw_bench.hypergrad is a stub in this tree)"
    return {"time_ratio": warm.seconds / plain.seconds, "flop_ratio": warm.flops / max(plain.flops, 1.0),
            "peak_ratio": warm.peak_bytes / max(plain.peak_bytes, 1.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench_vision.md"))
    ap.add_argument("--data-dir", type=Path, default=None, help="real CIFAR-10 batches (default: synthetic)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp)
            write_cifar_batches(data_dir, 10, n_train=4 * args.batch_size, n_test=64)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        rows = []
        for dev in devices:
            name = cpu_name() if dev == "cpu" else torch.cuda.get_device_name()
            t = throughput(data_dir, dev, args.batch_size, args.steps, args.warmup)
            ratios = {split: warm_start_ratio(data_dir, dev, args.batch_size, split) for split in (False, True)}
            rows.append((dev, name, t, ratios))

    lines = [
        f"# ResNet-20 (CIFAR-10) training throughput and warm-start cost, batch {args.batch_size}",
        "",
        f"torch {torch.__version__}; CPU rows use torch.set_num_threads(1); float32 everywhere; "
        f"median of {args.steps} steps after {args.warmup} warm-up steps. images/CPU-s divides by this "
        f"process's CPU time, which stays meaningful when other processes share the cores.",
        "",
        "| device | name | images/s (wall) | images/CPU-s | ms/step | OHGW/step time (separate V) | FLOPs | "
        "time (split batch) | FLOPs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = set()
    for dev, name, t, ratios in rows:
        cells = []
        for split in (False, True):
            r = ratios[split]
            if isinstance(r, str):
                notes.add(r)
                cells += ["n/a", "n/a"]
            else:
                cells += [f"{r['time_ratio']:.2f}x", f"{r['flop_ratio']:.2f}x"]
        per_cpu = f"{t['images_per_cpu_second']:.0f}" if dev == "cpu" else "-"
        lines.append(f"| {dev} | {name} | {t['images_per_second']:.0f} | {per_cpu} | {1e3 * t['seconds_per_step']:.1f} | "
                     + " | ".join(cells) + " |")
    if not torch.cuda.is_available():
        lines.append("")
        lines.append("No GPU on this machine: GPU row not measured.")
    for note in sorted(notes):
        lines += ["", f"Warm-start ratio: {note}."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
