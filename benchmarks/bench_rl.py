"""Environment steps per second of the PPO tasks on this machine, one torch thread.

Rows: raw Atari environment throughput through SB3's wrappers (AtariWrapper + 4-frame stack,
the pipeline the task uses) and through ale-py's native AtariVectorEnv (C++ preprocessing);
PPO-CNN training throughput of the atari task (rollout + updates, one fidelity unit); CartPole
raw and PPO throughput. CPU seconds are reported beside wall seconds because a shared machine
inflates wall time; with one thread, CPU seconds are what an idle machine would take.

    python benchmarks/bench_rl.py [--game pong] [--units 1] [--out bench_rl.md]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """(steps, wall seconds, process CPU seconds) of one call of ``fn`` returning its step count."""
    wall, cpu = time.perf_counter(), time.process_time()
    steps = fn()
    return steps, time.perf_counter() - wall, time.process_time() - cpu


def raw_sb3(env, steps: int) -> int:  # noqa: ANN001
    """Steps of a built and reset VecEnv (construction costs about 0.3 s per ALE env, shown apart)."""
    n_envs = env.num_envs
    rng = np.random.default_rng(0)
    n = env.action_space.n
    for _ in range(steps // n_envs):
        env.step(rng.integers(0, n, size=n_envs))
    env.close()
    return steps // n_envs * n_envs


def ale_vector(game: str, n_envs: int):  # noqa: ANN201
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(game=game, num_envs=n_envs, num_threads=1, repeat_action_probability=0.25)
    env.reset(seed=0)
    return env


def raw_ale_vector(env, steps: int) -> int:  # noqa: ANN001
    n_envs = env.num_envs
    rng = np.random.default_rng(0)
    for _ in range(steps // n_envs):
        env.step(rng.integers(0, env.single_action_space.n, size=n_envs))
    env.close()
    return steps // n_envs * n_envs


def ppo_units(task, units: int) -> int:  # noqa: ANN001
    state = task.init_state(task.space.default_config(), 0)
    task.train(state, units)
    return int(state.model.num_timesteps)


def evaluation(task) -> int:  # noqa: ANN001
    state = task.init_state(task.space.default_config(), 0)
    task.evaluate(state)
    return 2 * task.eval_episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="pong")
    parser.add_argument("--units", type=int, default=1, help="fidelity units of PPO to time per task")
    parser.add_argument("--raw-steps", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from ohgw_bench import tasks

    atari = tasks.make(f"atari-{args.game}", device="cpu")
    cartpole = tasks.make("cartpole")
    rows: list[tuple[str, str, int, float, float]] = []

    def add(name: str, unit: str, fn: Callable[[], int]) -> None:
        steps, wall, cpu = timed(fn)
        rows.append((name, unit, steps, wall, cpu))

    n = atari.n_envs
    holder: dict[str, object] = {}

    def build_sb3() -> int:
        holder["sb3"] = atari.make_env(n, 0)
        holder["sb3"].reset()
        return n

    add(f"{args.game}: build + seeded reset, SB3 wrappers", "envs", build_sb3)
    add(f"{args.game}: raw env, SB3 AtariWrapper + VecFrameStack ({n} envs)", "env steps",
        lambda: raw_sb3(holder["sb3"], args.raw_steps))
    try:
        add(f"{args.game}: build + seeded reset, ale-py AtariVectorEnv", "envs",
            lambda: n if holder.setdefault("ale", ale_vector(args.game, n)) else 0)
        add(f"{args.game}: raw env, ale-py AtariVectorEnv ({n} envs, 1 thread)", "env steps",
            lambda: raw_ale_vector(holder["ale"], args.raw_steps))
    except ImportError as e:
        print(f"ale-py vector env unavailable: {e}")
    add(f"{args.game}: PPO-CNN train, {args.units} unit(s) of {atari.unit_steps} steps (incl. env building)",
        "env steps", lambda: ppo_units(atari, args.units))
    add(f"{args.game}: evaluation, untrained policy, 2 x {atari.eval_episodes} episodes", "episodes",
        lambda: evaluation(atari))
    cart_env = cartpole.make_env(cartpole.n_envs, 0)
    cart_env.reset()
    add(f"cartpole: raw env ({cartpole.n_envs} envs)", "env steps", lambda: raw_sb3(cart_env, args.raw_steps * 5))
    add(f"cartpole: PPO-MLP train, {3 * args.units} unit(s) of {cartpole.unit_steps} steps", "env steps",
        lambda: ppo_units(cartpole, 3 * args.units))

    lines = [
        f"PPO throughput on {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s)",
        "",
        "| what | unit | count | wall s | CPU s | per wall s | per CPU s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, unit, steps, wall, cpu in rows:
        lines.append(f"| {name} | {unit} | {steps} | {wall:.2f} | {cpu:.2f} | {steps / wall:.1f} | {steps / cpu:.1f} |")
    cfg = atari.space.default_config()
    lines += ["", f"Simulated cost of one unit (cost model, not measured): atari {atari.cost(cfg, 0, 1):.1f} s, "
              f"cartpole {cartpole.cost(cartpole.space.default_config(), 0, 1):.2f} s"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
