"""Scalability: warm-start time and peak memory under torch.distributed data parallelism.

Each rank takes its shard of the lookahead and validation batches and the ranks average
(``ohgw_bench.distributed.data_parallel_hypergradient``, exact: the result equals the
single-process hyper-gradient on the whole batch, which tests/test_distributed.py checks in
float64 and the last column here checks again in float32). The problem is the digits MLP
(64-128-128-10 by default) with all five hyperparameters, exact mode, on digits images drawn
with replacement up to the batch sizes asked for.

Time is per call, the slowest rank's, median over calls after one warm-up; each process
count is launched afresh, alternating 1, N, N, 1, ... Peak memory is the largest tensor
memory one rank held during one call (CPU: tensors created during the call; GPU: the CUDA
allocator's peak above the memory held before the call).

    python benchmarks/bench_scaling.py --out bench-results/bench_scaling.md         # gloo, 1 and 2 processes
    python benchmarks/bench_scaling.py --backend nccl --nproc 1 2 4 8 --out gpu.md  # one process per GPU
"""

from __future__ import annotations

import sys
import time
from typing import Any

import common
import torch

NAMES = ("lr", "weight_decay", "momentum", "aug_magnitude", "label_smoothing")


def make_problem(train: int, val: int, horizon: int, hidden: int, device: str) -> Any:
    """The same problem in every process: digits images drawn with a fixed generator."""
    from ohgw_bench.hypergrad import SGD, HyperProblem
    from ohgw_bench.tasks.digits import DigitsTask, make_mlp

    task = DigitsTask()
    g = torch.Generator().manual_seed(0)
    x, y = task.data["train"]
    vx, vy = task.data["val"]
    batches = []
    for _ in range(horizon):
        idx = torch.randint(0, len(x), (train,), generator=g)
        noise = torch.randn(train, x.shape[1], generator=g)
        batches.append((x[idx].to(device), y[idx].to(device), noise.to(device)))
    idx = torch.randint(0, len(vx), (val,), generator=g)
    return HyperProblem(
        model=make_mlp(64, 10, hidden, seed=0).to(device), train_batches=batches,
        val_batch=(vx[idx].to(device), vy[idx].to(device)), train_loss=task.train_loss, val_loss=task.val_loss,
        optimizer=SGD(lr="lr", momentum="momentum", weight_decay="weight_decay"),
        hyper={"lr": 0.05, "weight_decay": 1e-4, "momentum": 0.9, "aug_magnitude": 0.1, "label_smoothing": 0.1})


def _rank(rank: int, world: int, backend: str, train: int, val: int, horizon: int, hidden: int,
          calls: int) -> dict[str, Any]:
    import torch.distributed as dist

    from ohgw_bench import cost
    from ohgw_bench.distributed import data_parallel_hypergradient

    device = f"cuda:{rank}" if backend == "nccl" else "cpu"
    problem = make_problem(train, val, horizon, hidden, device)

    def once() -> Any:
        hg = data_parallel_hypergradient(problem, NAMES)
        if backend == "nccl":
            torch.cuda.synchronize()
        return hg

    hg = once()
    times = []
    for _ in range(calls):
        dist.barrier()
        start = time.perf_counter()
        once()
        slowest = torch.tensor([time.perf_counter() - start], device=device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        times.append(float(slowest))
    dist.barrier()
    _, spent = cost.measure(once, flops=False, memory=True)
    peak = torch.tensor([spent.peak_bytes], device=device, dtype=torch.float64)
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    return {"times": times, "peak": float(peak), "native": hg.native}


def main() -> int:
    p = common.parser(__doc__)
    p.add_argument("--backend", choices=["gloo", "nccl"], default="gloo")
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts to compare (default: 1 2)")
    p.add_argument("--batches", nargs="+", default=["64/128", "1024/1024"],
                   help="TRAIN/VAL batch sizes (default: 64/128, the digits task's, and 1024/1024)")
    p.add_argument("--horizon", type=int, nargs="+", default=[1], help="lookahead steps k (default: 1)")
    p.add_argument("--hidden", type=int, default=128, help="MLP width (default: 128, the digits task's)")
    p.add_argument("--calls", type=int, default=20, help="timed calls per launch (default: 20)")
    p.add_argument("--rounds", type=int, default=2, help="launches per process count, alternating (default: 2)")
    args = p.parse_args()
    common.one_thread()
    from ohgw_bench.distributed import _reference_hypergradient, launch, relative_difference

    if args.backend == "nccl" and torch.cuda.device_count() < max(args.nproc):
        p.error(f"--backend nccl --nproc {max(args.nproc)} needs that many GPUs, found {torch.cuda.device_count()}")
    report = common.Report(f"Scalability: data-parallel warm-start ({args.backend})", args.out)
    rows = []
    base = min(args.nproc)
    for spec in args.batches:
        train, val = (int(v) for v in spec.split("/"))
        for k in args.horizon:
            times: dict[int, list[float]] = {n: [] for n in args.nproc}
            peaks: dict[int, float] = {}
            agree: dict[int, float] = {}
            ref = _reference_hypergradient(make_problem(train, val, k, args.hidden, "cpu"), NAMES).native
            for _, arm in common.alternating(args.rounds, [str(n) for n in args.nproc]):
                n = int(arm)
                out = launch(_rank, n, args.backend, (args.backend, train, val, k, args.hidden, args.calls))
                times[n] += out[0]["times"]
                peaks[n] = max(peaks.get(n, 0.0), out[0]["peak"])
                agree[n] = max(agree.get(n, 0.0), relative_difference(out[0]["native"], ref))
            for n in args.nproc:
                ms = common.median(times[n]) * 1e3
                rows.append([args.backend, n, f"{train}/{val}", k, f"{ms:.2f}",
                             f"{common.median(times[base]) / common.median(times[n]):.2f}",
                             f"{peaks[n] / 2**20:.2f}", f"{agree[n]:.1e}"])
    report.table(["backend", "processes", "train/val batch", "k", "warm-start ms (median)",
                  f"speed-up vs {base}", "peak MB per rank", "max rel. diff. to one process"], rows,
                 caption=f"digits MLP 64-{args.hidden}-{args.hidden}-10, float32, SGD with lr, weight decay, momentum, "
                         f"augmentation magnitude and label smoothing (exact); {args.calls} calls x {args.rounds} "
                         "launches per row.")
    report.note("The last column compares rank 0's result with a single-process hyper-gradient on the whole "
                "batch computed in this process (float32 rounding only; the float64 test holds it to 1e-10).")
    report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
