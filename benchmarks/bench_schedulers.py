"""Scheduler decision time: DyHPO against ASHA and PASHA at 1,000 and 5,000 observations.

A decision is what a free worker waits for: ``suggest()`` plus the ``on_trial_result()`` calls
for the epochs the suggested trial then reports. Each scheduler is driven by a one-worker loop
over the toy table of ``benchmarks/toy_schedulers.py`` (64 learning curves of 27 epochs, noisy),
without a Tuner, so nothing but the scheduler is timed; torch and BLAS run on one thread.

- ASHA (Syne Tune's, stopping type) and PASHA make their own decisions from the first
  observation until the history holds N observations; the next ``--window`` decisions are timed.
- DyHPO would need minutes of its own decisions to reach 5,000 observations, so it is handed a
  history instead: the trials promotion ASHA (same table, same seed) had trained when it reached
  N observations, replayed through ``on_trial_add`` / ``on_trial_result`` so that every
  unfinished trial sits paused where ASHA left it (about a third of all trials, and many more
  paused candidates than DyHPO's own studies produce: a pessimistic case). Its first decision,
  which fits the network from scratch on that history (a study does that only when its
  observations double), is reported apart and not timed with the others.

Times are CPU seconds of the deciding thread (``time.thread_time``): with torch on one thread
that is the decision's cost, and a shared machine's load inflates it far less than wall time.
Ratios are medians over the window against ASHA's median at the same N, in the same run.

    python benchmarks/bench_schedulers.py --out bench-results/bench_schedulers.md
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import common

GOALS_MS = {1000: 50.0, 5000: 150.0}


def _toy() -> Any:
    path = Path(__file__).resolve().parent / "toy_schedulers.py"
    spec = importlib.util.spec_from_file_location("toy_schedulers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("toy_schedulers", module)
    spec.loader.exec_module(module)
    return module


class Loop:
    """One simulated worker: ask, train epoch by epoch from the table, tell; time the scheduler's part."""

    def __init__(self, toy: Any, scheduler: Any, table: Any):
        from syne_tune.backend.trial_status import Trial

        self.toy, self.scheduler, self.table = toy, scheduler, table
        self.trial_cls = Trial
        self.trials: dict[int, Any] = {}
        self.reached: dict[int, int] = {}
        self.n_obs = 0

    def step(self) -> float:
        """One decision; returns the seconds spent inside the scheduler."""
        from syne_tune.optimizer.scheduler import SchedulerDecision

        toy = self.toy
        start = time.thread_time()
        suggestion = self.scheduler.suggest()
        spent = time.thread_time() - start
        if suggestion.checkpoint_trial_id is not None:
            trial = self.trials[suggestion.checkpoint_trial_id]
            trial.config = dict(suggestion.config)
        else:
            trial_id = len(self.trials)
            trial = self.trial_cls(trial_id=trial_id, config=dict(suggestion.config), creation_time=datetime.now())
            self.trials[trial_id] = trial
            self.reached[trial_id] = 0
            start = time.thread_time()
            self.scheduler.on_trial_add(trial)
            spent += time.thread_time() - start
        row = toy.cell(trial.config)
        target = int(trial.config[toy.RESOURCE])
        for epoch in range(self.reached[trial.trial_id] + 1, target + 1):
            result = {toy.METRIC: float(self.table[row, epoch - 1]), toy.RESOURCE: epoch}
            start = time.thread_time()
            decision = self.scheduler.on_trial_result(trial, result)
            spent += time.thread_time() - start
            self.reached[trial.trial_id] = epoch
            self.n_obs += 1
            if decision != SchedulerDecision.CONTINUE:
                break
        return spent


def grow(loop: Loop, n: int) -> None:
    while loop.n_obs < n:
        loop.step()


def replay(loop: Loop, into: Any) -> None:
    """Hand ``loop``'s trained trials to ``into`` as if it had trained them: add, report, pause."""
    toy = loop.toy
    for trial_id, trial in loop.trials.items():
        reached = loop.reached[trial_id]
        config = {**trial.config, toy.RESOURCE: max(reached, 1)}
        copy = loop.trial_cls(trial_id=trial_id, config=config, creation_time=trial.creation_time)
        into.on_trial_add(copy)
        row = toy.cell(config)
        for epoch in range(1, reached + 1):
            into.on_trial_result(copy, {toy.METRIC: float(loop.table[row, epoch - 1]), toy.RESOURCE: epoch})


def measure(toy: Any, name: str, n: int, window: int, seed: int) -> dict[str, Any]:
    table = toy.make_table("noisy")
    ctx = toy.make_context(seed, n_workers=1)
    if name != "dyhpo":
        loop = Loop(toy, toy.make_scheduler(name, ctx), table)
        grow(loop, n)
        first = None
    else:
        history = Loop(toy, toy.make_scheduler("asha-promotion", ctx), table)
        grow(history, n)
        scheduler = toy.make_scheduler("dyhpo", ctx)
        replay(history, scheduler)
        loop = Loop(toy, scheduler, table)
        loop.reached, loop.n_obs = dict(history.reached), history.n_obs
        loop.trials = {t: loop.trial_cls(trial_id=t, config={**tr.config}, creation_time=tr.creation_time)
                       for t, tr in history.trials.items()}
        first = loop.step()
    at = loop.n_obs
    times = [loop.step() for _ in range(window)]
    out = {"scheduler": name, "n": at, "times": times, "first": first}
    if name == "dyhpo":
        sched = loop.scheduler
        recent = sched.decisions[-window:]
        out["paused"] = max(d.get("n_paused", 0) for d in recent)
        out["fit_points"] = min(sched.max_fit_points, sched.n_observations())
        out["new"] = sum(d["trial_id"] is None for d in recent)
    return out


def main() -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="observations (default: 1000 5000)")
    p.add_argument("--window", type=int, default=40, help="timed decisions per scheduler and size (default: 40)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    common.one_thread()
    logging.disable(logging.WARNING)
    toy = _toy()
    report = common.Report("Scheduler decision time: DyHPO, ASHA and PASHA", args.out)
    rows = []
    for n in args.sizes:
        results = {name: measure(toy, name, n, args.window, args.seed) for name in ["asha", "pasha", "dyhpo"]}
        base = common.median(results["asha"]["times"])
        for name, r in results.items():
            ms = [1000 * t for t in r["times"]]
            med = common.median(ms)
            goal = GOALS_MS.get(n) if name == "dyhpo" else None
            extra = ""
            if name == "dyhpo":
                extra = (f"first decision {1000 * r['first']:.0f} ms (fit from scratch); {r['paused']} paused "
                         f"candidates; GP on {r['fit_points']} points; {r['new']} of {len(ms)} started a new config")
            rows.append([name, r["n"], f"{med:.2f}", f"{sum(ms) / len(ms):.2f}", f"{max(ms):.1f}",
                         f"{med / (1000 * base):.0f}x" if name != "asha" else "1x",
                         "n/a" if goal is None else ("met" if med <= goal else "not met") + f" (<= {goal:g} ms)",
                         extra])
    report.table(["scheduler", "observations", "median ms", "mean ms", "max ms", "median / ASHA's",
                  "goal", "notes"], rows,
                 caption=f"One decision = suggest() and the on_trial_result() calls of the epochs it starts; "
                         f"{args.window} decisions per row, one simulated worker, toy table, seed {args.seed}.")
    report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
