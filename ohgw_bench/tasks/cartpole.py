"""cartpole: Gymnasium CartPole-v1 with stable-baselines3 PPO and an MLP policy, the cheap RL task.

Smoke-test scale: one unit is 1,024 environment steps (8 environments), up to 27 units. The
metric is the mean return of 10 deterministic (argmax) episodes on fixed seeds, capped at
CartPole-v1's 500 steps. See :mod:`ohgw_bench.tasks.ppo_common` for the shared design.
"""

from __future__ import annotations

from typing import Any

from ohgw_bench.tasks.ppo_common import PPOTask


class CartPoleTask(PPOTask):
    """CartPole-v1, PPO MlpPolicy (64-64), 8 envs, batch 256, 10 epochs; fidelity = 1,024-step units."""

    id = "cartpole-ppo-v1"
    description = "Gymnasium CartPole-v1, stable-baselines3 PPO with an MLP policy"
    tau = 475.0  # Gymnasium's reward_threshold for CartPole-v1 (195 is v0's, reached by most configs in 3 units)
    default_budget = 15.0
    reference_flops_per_second = 2.5e9
    env_step_flops = 2.0e5
    policy = "MlpPolicy"
    gamma = 0.98
    n_steps_range = (16, 512)
    lr_range = (1e-4, 1e-2, 1e-3)
    defaults = {"ent_coef": 0.0, "vf_coef": 0.5, "clip_range": 0.2, "gae_lambda": 0.9}

    def __init__(self, data_dir: Any = None, *, unit_steps: int = 1024, max_units: int = 27, n_envs: int = 8,
                 n_steps: int = 32, batch_size: int = 256, n_epochs: int = 10, eval_episodes: int = 10,
                 eval_max_steps: int = 500, **options: Any):
        super().__init__(data_dir, unit_steps=unit_steps, max_units=max_units, n_envs=n_envs, n_steps=n_steps,
                         batch_size=batch_size, n_epochs=n_epochs, eval_episodes=eval_episodes,
                         eval_max_steps=eval_max_steps, **options)

    @classmethod
    def conformance_setup(cls, tmp_dir: Any) -> dict[str, Any]:
        return {"unit_steps": 64, "max_units": 4, "n_envs": 2, "n_steps": 16, "batch_size": 16, "n_epochs": 2,
                "eval_episodes": 2, "eval_max_steps": 50}

    def make_env(self, n_envs: int, seed: int, evaluation: bool = False) -> Any:
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv

        return make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)
