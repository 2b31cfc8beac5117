"""atari-<game>: stable-baselines3 PPO with the Nature CNN policy on an ALE game (ROMs ship in ale-py).

Environment: ``ALE/<Game>-v5`` with frameskip 1 and sticky actions (p = 0.25, Machado et al.
2018), under SB3's AtariWrapper (30 no-op starts, max-pool over 4 skipped frames, 84x84
grayscale, fire on reset, life loss ends a training episode, rewards clipped to their sign) and
a 4-frame stack: the standard PPO-Atari preprocessing. Evaluation uses the same pipeline with
whole games and raw scores, sampling actions from the policy with a seeded generator (a
deterministic argmax policy can stall in Atari games).

ale-py's native AtariVectorEnv was measured beside SB3's wrappers (benchmarks/bench_rl.py):
the environments are a few percent of PPO's time on a CPU, where the CNN dominates, so the
SB3 wrappers are used.

Fidelity: one unit = 2,048 environment steps (8 envs x 128 steps x 2 rollouts) = 8,192
frames, up to 243 units (about 0.5M steps, 2M frames). The default budget is tiny, meant for
an end-to-end smoke run on a CPU; real studies pass --budget.
"""

from __future__ import annotations

import difflib
from typing import Any

from ohgw_bench.errors import UserError
from ohgw_bench.tasks.ppo_common import PPOTask

# Default T@tau thresholds: a little above a random policy's mean score, which is what a vanilla
# scheduler reaches within the tiny default budget; real studies pass their own tau.
TAU = {"pong": -20.0, "breakout": 2.0}


def ale_env_id(game: str) -> str:
    """``space_invaders`` -> ``ALE/SpaceInvaders-v5``; a one-line UserError for unknown games."""
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    env_id = "ALE/" + "".join(part.capitalize() for part in game.split("_")) + "-v5"
    if env_id not in gymnasium.registry:
        from ale_py.roms import get_all_rom_ids

        close = difflib.get_close_matches(game, get_all_rom_ids(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown Atari game {game!r}{hint}; valid names: python -c "
                        f"\"import ale_py.roms; print(ale_py.roms.get_all_rom_ids())\"")
    return env_id


class AtariTask(PPOTask):
    """PPO CnnPolicy, 8 envs, n_steps 128, batch 256, 4 epochs (SB3 zoo's Atari settings)."""

    id = "atari-pong-ppo-v1"
    description = "ALE game (ROM shipped in ale-py), stable-baselines3 PPO-CNN"
    tau = -20.0
    default_budget = 40.0
    reference_flops_per_second = 2.5e10
    env_step_flops = 1.5e7
    policy = "CnnPolicy"
    image = True
    gamma = 0.99
    eval_deterministic = False
    n_steps_range = (32, 512)
    lr_range = (1e-5, 1e-3, 2.5e-4)
    defaults = {"ent_coef": 0.01, "vf_coef": 0.5, "clip_range": 0.1, "gae_lambda": 0.95}

    def __init__(self, data_dir: Any = None, *, game: str = "pong", unit_steps: int = 2048, max_units: int = 243,
                 n_envs: int = 8, n_steps: int = 128, batch_size: int = 256, n_epochs: int = 4,
                 eval_episodes: int = 3, eval_max_steps: int = 2000, device: str = "auto", **options: Any):
        self.game = game
        self.env_id = ale_env_id(game)
        super().__init__(data_dir, game=game, unit_steps=unit_steps, max_units=max_units, n_envs=n_envs,
                         n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs, eval_episodes=eval_episodes,
                         eval_max_steps=eval_max_steps, device=device, **options)
        self.id = f"atari-{game}-ppo-v1"
        self.tau = float(TAU.get(game, 0.0))

    @classmethod
    def conformance_setup(cls, tmp_dir: Any) -> dict[str, Any]:
        return {"unit_steps": 16, "max_units": 4, "n_envs": 1, "n_steps": 16, "batch_size": 16, "n_epochs": 1,
                "eval_episodes": 1, "eval_max_steps": 30}

    def make_env(self, n_envs: int, seed: int, evaluation: bool = False) -> Any:
        from stable_baselines3.common.env_util import make_atari_env
        from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

        wrapper = {"terminal_on_life_loss": False, "clip_reward": False} if evaluation else None
        env = make_atari_env(self.env_id, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv, wrapper_kwargs=wrapper,
                             env_kwargs={"frameskip": 1, "repeat_action_probability": 0.25})
        return VecTransposeImage(VecFrameStack(env, n_stack=4))
