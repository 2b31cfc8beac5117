"""Toy benchmark for our schedulers: a table of learning curves driven by Syne Tune's simulator.

The search space is the unit square (``x1``, ``x2``); an 8 x 8 grid of cells, each with its own
learning curve ``loss(t) = asymptote + a * t**-b (+ fixed noise)`` for ``t = 1..27`` epochs at
10 simulated seconds per epoch. A config looks up the curve of the cell it falls in, so random
proposals hit every row of the table with equal probability and "the best curve's final value"
is a value some config can actually reach. Syne Tune's ``UserBlackboxBackend`` plays the table
with pause and resume from checkpoints, and the real ``Tuner`` drives the scheduler.

Run as a script (``python benchmarks/toy_schedulers.py --out toy.md``), it runs every registered
scheduler (aliases once; ``random`` is the toy's own random search, which draws configs as our
schedulers do) on 10 seeds with 4 workers and prints, per scheduler, the median (and IQR)
simulated time until a full-budget loss equal to the best curve's final value is reported, the
seeds that reached it, and the epochs trained and trials started until then; then the
resources PASHA spends against promotion ASHA for a fixed number of configs. The tests in
``tests/test_schedulers_toy.py`` import this file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from syne_tune import Tuner
from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
from syne_tune.backend.simulator_backend.time_keeper import SimulatedTimeKeeper
from syne_tune.backend.trial_status import Trial
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
from syne_tune.config_space import randint
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion
from syne_tune.tuner_callback import TunerCallback

from ohgw_bench.baselines import SchedulerContext, build
from ohgw_bench.baselines._promotion import sample_config
from ohgw_bench.space import Hyperparameter, SearchSpace

GRID = 8
MAX_EPOCHS = 27
EPOCH_SECONDS = 10.0
METRIC = "loss"
RESOURCE = "epochs"
SPACE = SearchSpace([Hyperparameter("x1", 0.0, 1.0, 0.5), Hyperparameter("x2", 0.0, 1.0, 0.5)])


def make_table(kind: str = "noisy", seed: int = 1, noise: float = 0.01) -> np.ndarray:
    """Learning curves, shape ``(GRID * GRID, MAX_EPOCHS)``, lower is better.

    ``noisy``: asymptotes smooth in the config (best near x = (0.7, 0.3)), random curve shapes,
    so curves cross, plus fixed per-epoch noise of sd ``noise``; low budgets are informative but
    not exact (Spearman correlation with the final loss 0.9 after one epoch, 0.98 after three). ``parallel``: every curve has the
    same shape, shifted, so no two ever cross. ``crossing``: the configs that end best start
    worst, so the ranking after one epoch is reversed by the third and stays put from there on.
    """
    rng = np.random.default_rng(seed)
    centres = (np.arange(GRID) + 0.5) / GRID
    z1, z2 = (g.ravel() for g in np.meshgrid(centres, centres, indexing="ij"))
    asymptote = 0.1 + 0.6 * ((z1 - 0.7) ** 2 + (z2 - 0.3) ** 2) + 0.02 * rng.uniform(size=z1.size)
    t = np.arange(1, MAX_EPOCHS + 1, dtype=float)
    if kind == "parallel":
        return asymptote[:, None] + 0.5 * t[None, :] ** -0.7
    if kind == "crossing":
        a = 0.1 + 3.0 * (asymptote.max() - asymptote)
        return asymptote[:, None] + a[:, None] * t[None, :] ** -2.0
    if kind != "noisy":
        raise ValueError(f"unknown table kind {kind!r}")
    a = rng.uniform(0.1, 0.3, size=z1.size)
    b = rng.uniform(0.5, 1.0, size=z1.size)
    jitter = noise * rng.standard_normal((z1.size, MAX_EPOCHS))
    return asymptote[:, None] + a[:, None] * t[None, :] ** -b[:, None] + jitter


def cell(config: dict[str, Any]) -> int:
    """Row of the table that ``config`` looks up."""
    z = SPACE.to_unit(config)
    i, j = (min(GRID - 1, int(z[n] * GRID)) for n in ("x1", "x2"))
    return i * GRID + j


class ToyCurves(Blackbox):
    """The table as a Syne Tune blackbox: all epochs' loss and cumulative elapsed time for a config."""

    def __init__(self, table: np.ndarray):
        super().__init__(configuration_space=SPACE.to_syne_tune(),
                         fidelity_space={RESOURCE: randint(1, MAX_EPOCHS)},
                         objectives_names=[METRIC, "elapsed_time"])
        self.table = table

    def _objective_function(self, configuration: dict[str, Any], fidelity: dict | None = None,
                            seed: int | None = None) -> np.ndarray:
        curve = self.table[cell(configuration)]
        elapsed = EPOCH_SECONDS * np.arange(1, MAX_EPOCHS + 1)
        out = np.stack([curve, elapsed], axis=1)
        if fidelity is not None:
            return dict(zip(self.objectives_names, out[int(fidelity[RESOURCE]) - 1]))
        return out

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.arange(1, MAX_EPOCHS + 1)


class _SimulatedTimeOnly(SimulatedTimeKeeper):
    """Simulated clock that ignores the real time the scheduler spends deciding.

    Syne Tune's simulator adds real time spent outside the backend to the simulated clock, which
    makes the order of events depend on how fast the machine is. Leaving it out makes a seed's
    run reproducible; it means the times below exclude scheduler overhead (a few seconds of
    model fitting in total for DyHPO, against thousands of simulated seconds of training).
    """

    def real_time_since_last_recent_exit(self) -> float:
        return 0.0


class _SimulatedTuner(Tuner):
    """The Tuner, minus the real ``time.sleep`` between polls (a few ms each here, even for 0 s).

    The simulated clock still advances through ``SimulatorCallback.on_tuning_sleep``.
    """

    def _sleep(self) -> None:
        for callback in self.callbacks:
            callback.on_tuning_sleep(self.sleep_time)


@dataclass
class Event:
    kind: str
    trial_id: int
    time: float
    resource: int | None = None
    value: float | None = None
    decision: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    top: int = MAX_EPOCHS


class Recorder(TunerCallback):
    """Everything the Tuner told the backend and every result it saw, in order."""

    def __init__(self):
        self.events: list[Event] = []
        self._backend: UserBlackboxBackend | None = None
        self._scheduler: TrialScheduler | None = None

    def on_tuning_start(self, tuner: Tuner) -> None:
        self._backend = tuner.trial_backend
        self._scheduler = tuner.scheduler

    def _now(self) -> float:
        return self._backend.time_keeper.time() if self._backend is not None else 0.0

    def on_start_trial(self, trial: Trial) -> None:
        self.events.append(Event("start", trial.trial_id, self._now(), config=dict(trial.config)))

    def on_resume_trial(self, trial: Trial) -> None:
        self.events.append(Event("resume", trial.trial_id, self._now(), config=dict(trial.config)))

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any], decision: str) -> None:
        top = getattr(self._scheduler, "current_max_resource", MAX_EPOCHS)
        self.events.append(Event("result", trial.trial_id, float(result[ST_TUNER_TIME]),
                                 int(result[RESOURCE]), float(result[METRIC]), decision,
                                 dict(trial.config), top))


class RandomSearch(TrialScheduler):
    """The floor: every config, drawn like our schedulers draw them, trained to the maximum."""

    def __init__(self, ctx: SchedulerContext):
        super().__init__(random_seed=ctx.seed)
        self.ctx = ctx
        self._rng = np.random.default_rng(ctx.seed)

    def metric_names(self) -> list[str]:
        return [self.ctx.metric]

    def metric_mode(self) -> str:
        return self.ctx.mode

    def suggest(self) -> TrialSuggestion | None:
        config = sample_config(self.ctx, self._rng)
        config[self.ctx.resource_attr] = self.ctx.max_resource
        return TrialSuggestion.start_suggestion(config)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        return SchedulerDecision.CONTINUE


def make_context(seed: int, n_workers: int = 4, **options: Any) -> SchedulerContext:
    return SchedulerContext(
        space=SPACE, config_space={**SPACE.to_syne_tune(), RESOURCE: MAX_EPOCHS}, metric=METRIC,
        mode="min", resource_attr=RESOURCE, min_resource=1, max_resource=MAX_EPOCHS, seed=seed,
        n_workers=n_workers, options=options)


def make_scheduler(name: str, ctx: SchedulerContext) -> TrialScheduler:
    return RandomSearch(ctx) if name == "random" else build(name, ctx)


@dataclass
class Study:
    scheduler: TrialScheduler
    events: list[Event]
    table: np.ndarray
    wall_seconds: float

    @property
    def results(self) -> list[Event]:
        return [e for e in self.events if e.kind == "result"]

    def total_epochs(self) -> int:
        """Epochs trained: one result per epoch, resumed trials continue from their checkpoint."""
        return len(self.results)

    def time_to_reach(self, target: float) -> float | None:
        """Simulated seconds until the best curve is trained to the scheduler's maximum (None if never).

        The best curve is the table row whose final loss is ``target``. Only results at the
        scheduler's maximum resource at that moment count: the full 27 epochs, except for
        PASHA, whose maximum (``current_max_resource``) starts at 3 epochs and grows only while
        its top ranking is unstable, so its full budget is wherever it stands. A lower budget
        would not do: with noisy curves another config can dip below the best final value at
        some epoch, which would be luck, not having found the best curve.
        """
        rows = {int(r) for r in np.flatnonzero(np.abs(self.table[:, -1] - target) <= 1e-12)}
        return next((e.time for e in self.results
                     if e.resource >= e.top and cell(e.config) in rows), None)

    def decisions(self) -> list[tuple]:
        return [(e.kind, e.trial_id, e.resource, e.decision,
                 tuple(sorted((k, round(v, 12) if isinstance(v, float) else v) for k, v in e.config.items())))
                for e in self.events]


def run_study(name: str, seed: int, table: np.ndarray, n_workers: int = 4,
              max_trials: int | None = None, max_time: float | None = None,
              stop_at: float | None = None,
              scheduler: TrialScheduler | None = None, **options: Any) -> Study:
    """One simulated study with the real Tuner; stops at ``max_trials`` started, ``max_time``
    simulated seconds, or once a full-budget loss of at most ``stop_at`` is reported."""
    ctx = make_context(seed, n_workers, **options)
    scheduler = scheduler or make_scheduler(name, ctx)
    backend = UserBlackboxBackend(blackbox=ToyCurves(table), elapsed_time_attr="elapsed_time",
                                  max_resource_attr=RESOURCE, seed=0, tuner_sleep_time=1.0)
    backend._time_keeper = _SimulatedTimeOnly()
    recorder = Recorder()
    study = Study(scheduler, recorder.events, table, 0.0)

    def stop(status: Any) -> bool:
        if max_trials is not None and status.num_trials_started >= max_trials:
            return True
        if not recorder.events:
            return False
        if max_time is not None and recorder.events[-1].time >= max_time:
            return True
        return stop_at is not None and study.time_to_reach(stop_at) is not None

    with tempfile.TemporaryDirectory(prefix="toy-schedulers-") as scratch:
        previous = os.environ.get("SYNETUNE_FOLDER")
        os.environ["SYNETUNE_FOLDER"] = scratch
        try:
            tuner = _SimulatedTuner(
                trial_backend=backend, scheduler=scheduler, stop_criterion=stop, n_workers=n_workers,
                sleep_time=0, callbacks=[SimulatorCallback(), recorder], save_tuner=False,
                print_update_interval=1e9, results_update_interval=1e9, tuner_name=f"toy-{name}-{seed}")
        finally:
            if previous is None:
                del os.environ["SYNETUNE_FOLDER"]
            else:
                os.environ["SYNETUNE_FOLDER"] = previous
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            tuner.run()
    study.wall_seconds = time.perf_counter() - start
    return study


def chosen_row(study: Study) -> int | None:
    """Table row of the config the scheduler would return: its best trial at the highest rung."""
    trial_id = study.scheduler.best_trial()
    if trial_id is None:
        return None
    return cell(study.scheduler.configs[trial_id])


def registered_schedulers() -> list[str]:
    """Every registered scheduler once (aliases such as ``hyperband-bo`` share bohb's entry point)."""
    from ohgw_bench.baselines import schedulers

    seen, names = set(), []
    for name, spec in schedulers.items():
        if (spec.entry_point, tuple(sorted(spec.kwargs.items()))) not in seen:
            seen.add((spec.entry_point, tuple(sorted(spec.kwargs.items()))))
            names.append(name)
    return names


def summarise(name: str, table: np.ndarray, seeds: int, workers: int, max_time: float) -> dict[str, Any]:
    """Studies of ``name`` on ``seeds`` seeds, each stopped once the best final loss is reported."""
    target = float(table[:, -1].min())
    times, epochs, trials, wall, errors = [], [], [], 0.0, []
    for seed in range(seeds):
        try:
            study = run_study(name, seed, table, workers, max_time=max_time, stop_at=target)
        except Exception as e:  # a broken scheduler is a row of the table, not the end of it
            errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}")
            continue
        t = study.time_to_reach(target)
        times.append(np.inf if t is None else t)
        epochs.append(study.total_epochs())
        trials.append(sum(e.kind == "start" for e in study.events))
        wall += study.wall_seconds
    return {"name": name, "times": times, "epochs": epochs, "trials": trials, "errors": errors,
            "wall": wall / max(1, len(times))}


def _quartiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    show = lambda v: f"{v:.0f}" if np.isfinite(v) else "never"  # noqa: E731
    return f"{show(q2)} ({show(q1)}-{show(q3)})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-time", type=float, default=8000.0, help="simulated seconds per study (default 8000)")
    parser.add_argument("--schedulers", nargs="+", default=None,
                        help="default: every registered scheduler (aliases once) and the toy's random search")
    parser.add_argument("--pending", nargs="*", default=[],
                        help="rows to mark as pending a fix elsewhere (none by default)")
    parser.add_argument("--trials", type=int, default=81,
                        help="configs PASHA and ASHA sample for the resource comparison (0: skip it)")
    parser.add_argument("--out", default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    table = make_table("noisy")
    target = float(table[:, -1].min())
    lines = [f"Toy table: {table.shape[0]} curves, {MAX_EPOCHS} epochs, {EPOCH_SECONDS:g} s/epoch, "
             f"{args.workers} workers, {args.seeds} seeds, studies stopped at the best final loss "
             f"{target:.4f} (row {int(table[:, -1].argmin())}) or {args.max_time:g} simulated s; "
             f"load average {os.getloadavg()[0]:.1f} at the start.", "",
             "| scheduler | median time to the best curve, s (IQR) | seeds that reached it | "
             "median epochs trained | median trials started | wall s/study |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    names = args.schedulers or registered_schedulers()
    for name in names:
        r = summarise(name, table, args.seeds, args.workers, args.max_time)
        reached = int(np.isfinite(r["times"]).sum())
        note = " (pending a fix)" if name in args.pending else ""
        if r["errors"]:
            note += f" ({len(r['errors'])} seeds failed: {r['errors'][0]})"
        row = (f"| {name}{note} | {_quartiles(r['times'])} | {reached}/{len(r['times'])} | "
               f"{np.median(r['epochs']) if r['epochs'] else float('nan'):.0f} | "
               f"{np.median(r['trials']) if r['trials'] else float('nan'):.0f} | {r['wall']:.1f} |")
        lines.append(row)
        print(row, flush=True)

    if args.trials:
        head = ["", f"PASHA vs promotion ASHA, {args.trials} configs sampled each, same seeds:", "",
                "| seed | ASHA epochs | PASHA epochs | PASHA max epochs | ASHA choice regret | PASHA choice regret | same choice |",
                "|---|---|---|---|---|---|---|"]
        lines += head
        print("\n".join(head), flush=True)
        ratios, same = [], 0
        for seed in range(args.seeds):
            asha = run_study("asha-promotion", seed, table, args.workers, max_trials=args.trials)
            pasha = run_study("pasha", seed, table, args.workers, max_trials=args.trials)
            ra, rp = chosen_row(asha), chosen_row(pasha)
            same += ra == rp
            ratios.append(pasha.total_epochs() / asha.total_epochs())
            row = (f"| {seed} | {asha.total_epochs()} | {pasha.total_epochs()} | "
                   f"{pasha.scheduler.current_max_resource} | {table[ra, -1] - target:.4f} | "
                   f"{table[rp, -1] - target:.4f} | {ra == rp} |")
            lines.append(row)
            print(row, flush=True)
        tail = f"\nmedian PASHA/ASHA epochs: {np.median(ratios):.2f}; same choice in {same}/{args.seeds} seeds"
        lines.append(tail)
        print(tail)
    lines.append(f"\nload average {os.getloadavg()[0]:.1f} at the end; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
