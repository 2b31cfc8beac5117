"""PPO tasks (CartPole, Atari): the default warm-start, the functional PPO lookahead, and the Atari plumbing.

Their conformance checks run in tests/test_conformance.py, with every registered task.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ohgw_bench import tasks
from ohgw_bench.errors import UserError
from ohgw_bench.hypergrad import AdamW
from ohgw_bench.tasks.atari import AtariTask, ale_env_id
from ohgw_bench.tasks.cartpole import CartPoleTask
from ohgw_bench.tasks.ppo_common import PolicyForward, lookahead_objective
from ohgw_bench.warmstart import WarmStart, WarmStartSettings


@pytest.mark.parametrize(("task_id", "cls"), [("cartpole", CartPoleTask), ("atari-pong", AtariTask)])
def test_the_default_warm_start_leaves_ppo_configs_unchanged(task_id: str, cls: type, tmp_path) -> None:  # noqa: ANN001
    task = tasks.make(task_id, **cls.conformance_setup(tmp_path))
    task.prepare()
    config = task.space.default_config()
    new_config, record = WarmStart(WarmStartSettings("ohgw", step_rule="normalized"), task, seed=0).apply(config, 0)
    assert new_config == config and record["applied"] is False


def test_default_warm_start_is_off_and_lookahead_moves_only_lr():
    plain = tasks.make("cartpole")
    assert plain.hypergrad_method == "none"
    assert plain.space.movable() == []
    look = tasks.make("cartpole", lookahead=True)
    assert look.hypergrad_method == "autograd"
    assert look.space.movable() == ["lr"] and look.space.movable("autograd") == ["lr"]
    assert look.space["n_steps"].integer and look.space["lr"].log


def _lookahead_task() -> CartPoleTask:
    opts = CartPoleTask.conformance_setup(None) | {"n_envs": 4, "n_steps": 32, "batch_size": 32, "lookahead": True}
    return tasks.make("cartpole", **opts)


def test_lookahead_uses_the_trials_own_first_rollout():
    task = _lookahead_task()
    config = task.space.default_config()
    model, batches = task.first_rollout(config, seed=5)
    assert len(batches) == task.n_epochs * (32 * 4 // 32)
    state = task.init_state(config, seed=5)
    task.train(state, 1)
    buf = state.model.rollout_buffer
    assert np.array_equal(buf.observations, model.rollout_buffer.observations)
    assert np.array_equal(buf.advantages, model.rollout_buffer.advantages)
    # w0 of the lookahead is the trial's w0: the trial moved away from it, the lookahead did not.
    w0 = dict(model.policy.state_dict())
    fresh = task.init_state(config, seed=5).model.policy.state_dict()
    assert all(torch.equal(w0[k], fresh[k]) for k in fresh)


def test_policy_forward_matches_sb3_evaluate_actions():
    for task in (tasks.make("cartpole"), tasks.make("atari-pong", **AtariTask.conformance_setup(None))):
        state = task.init_state(task.space.default_config(), 0)
        policy = state.model.policy
        obs = torch.as_tensor(np.stack([policy.observation_space.sample() for _ in range(5)]))
        actions = torch.arange(5) % policy.action_space.n
        ours = PolicyForward(policy, task.image)(obs, actions)
        theirs = policy.evaluate_actions(obs, actions)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b.flatten(), rtol=1e-5, atol=1e-6)


def test_functional_ppo_lookahead_matches_finite_differences():
    task = _lookahead_task()
    config = task.space.default_config()
    problem = task.hyper_problem(config, seed=1, horizon=2)
    assert len(problem.train_batches) == 2 and isinstance(problem.optimizer, AdamW)
    assert problem.optimizer.weight_decay == 0.0

    def J(log_lr: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        return lookahead_objective(problem, {"lr": torch.exp(log_lr)} | extra)

    log_lr = torch.tensor(math.log(config["lr"]), dtype=torch.float64, requires_grad=True)
    clip = torch.tensor(config["clip_range"], dtype=torch.float64, requires_grad=True)
    value = J(log_lr, clip_range=clip)
    g_lr, g_clip = torch.autograd.grad(value, (log_lr, clip), allow_unused=True)
    h = 1e-4
    base = log_lr.detach()
    fd = (float(J(base + h).detach()) - float(J(base - h).detach())) / (2 * h)  # J differentiates inside
    assert abs(float(g_lr)) > 1e-6
    assert float(g_lr) == pytest.approx(fd, rel=1e-5, abs=1e-9)
    assert g_clip is None  # k = 2: the ratio never leaves the clip band, so w_k does not depend on it
    assert float(J(base + 1.0).detach()) != pytest.approx(float(value.detach()), rel=1e-6)  # the step is real


def test_engine_hypergradient_agrees_with_the_functional_update():
    from ohgw_bench import hypergrad

    task = _lookahead_task()
    config = task.space.default_config()
    problem = task.hyper_problem(config, seed=1, horizon=2)
    result = hypergrad.hypergradient(problem, task.space, names=["lr"], horizon=2)
    log_lr = torch.tensor(math.log(config["lr"]), dtype=torch.float64, requires_grad=True)
    (ours,) = torch.autograd.grad(lookahead_objective(problem, {"lr": torch.exp(log_lr)}), (log_lr,))
    assert result.psi["lr"] == pytest.approx(float(ours), rel=1e-3, abs=1e-7)


def test_cost_is_deterministic_and_counts_whole_rollouts():
    task = tasks.make("cartpole")
    cfg = task.space.default_config()
    assert task.steps_per_unit(cfg | {"n_steps": 32}) == 1024
    assert task.steps_per_unit(cfg | {"n_steps": 100}) == 2 * 800
    a = task.cost(cfg | {"n_steps": 100}, 0, 3)
    b = task.cost(cfg | {"n_steps": 32}, 0, 3)
    assert a > b > 0 and task.cost(cfg, 2, 5) == pytest.approx(task.cost(cfg, 0, 3))


def test_atari_names():
    assert ale_env_id("space_invaders") == "ALE/SpaceInvaders-v5"
    task = tasks.make("atari-breakout")
    assert task.id == "atari-breakout-ppo-v1" and task.env_id == "ALE/Breakout-v5"
    assert tasks.make("atari-montezuma_revenge").env_id == "ALE/MontezumaRevenge-v5"
    with pytest.raises(UserError, match=r"unknown Atari game 'pongg' \(did you mean pong\?\).*get_all_rom_ids"):
        tasks.make("atari-pongg")
