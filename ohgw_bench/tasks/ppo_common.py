"""Shared machinery of the PPO tasks (CartPole, Atari): stable-baselines3 PPO behind the Task protocol.

Facts that shape this module (docs/design.md section 4):

- ``PPO.train`` is one monolithic loop, so there is no differentiable path through it. The
  lr-only lookahead rewrites one PPO minibatch update functionally (:class:`PolicyForward`,
  :meth:`PPOTask.train_loss`, :func:`lookahead_objective`); everything else keeps SB3.
- The hyper-gradient through PPO is weak: the clip range has zero gradient for the first few
  updates (the ratio starts at exactly 1 and stays inside the clip band), and the entropy and
  value coefficients scale whole loss terms, which Adam's normalisation undoes up to its eps.
  So by default ``hypergrad_method = "none"``: the warm-start leaves configs unchanged and
  says so in its record. ``lookahead=True`` enables the lr-only lookahead (k >= 2, Adam).
- SB3 saves weights and optimiser state but not the environments (their wrapper state, the
  last observation, running episodes). So every fidelity unit starts from fresh, freshly seeded
  environments and reseeds Python, NumPy and torch from (seed, unit): an uninterrupted run and
  a save/load/continue run then see identical rollouts, bit for bit. The value of the last
  state of each rollout is bootstrapped by PPO anyway, so the boundary adds no bias, only a
  few more episode starts.
- Fidelity is environment steps in units of ``unit_steps``; a unit is a whole number of
  rollouts (``ceil(unit_steps / (n_steps * n_envs))``), so the steps of one unit depend on
  n_steps a little. The metric is the mean undiscounted return of ``eval_episodes`` episodes
  on fixed seeds (validation seeds and disjoint test seeds).
"""

from __future__ import annotations

import contextlib
import io
import math
import random
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.hypergrad import AdamW, HyperProblem
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity, Task
from ohgw_bench.tasks.common import units_cost

VAL_SEED = 10_000
TEST_SEED = 20_000
ADAM_EPS = 1e-5  # SB3's PPO optimiser: Adam with eps 1e-5

# A PPO minibatch as the lookahead sees it: obs, actions, old values, old log-probs, advantages, returns.
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """One torch thread per worker while PPO runs (restored afterwards for the caller)."""
    before = torch.get_num_threads()
    if n > 0 and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def reseed(seed: int) -> None:
    """Seed every generator SB3's PPO draws from (Python, NumPy's global, torch's global)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def unit_seed(seed: int, unit: int) -> int:
    """Independent seed for fidelity unit ``unit`` of a trial with ``seed``."""
    return int(np.random.SeedSequence([seed, unit]).generate_state(1)[0])


class PolicyForward(nn.Module):
    """SB3's ``evaluate_actions`` for discrete actions, written so it also runs in float64.

    SB3's ``preprocess_obs`` casts to float32, which breaks a float64 finite-difference check;
    here observations take the weights' dtype (and images are scaled by 1/255 as SB3 does).
    ``forward(obs, actions) -> (values, log_prob, entropy)``.
    """

    def __init__(self, policy: nn.Module, image: bool):
        super().__init__()
        self.policy = policy
        self.image = image

    def logits_values(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.policy
        dtype = p.action_net.weight.dtype
        x = obs.to(dtype)
        if self.image:
            x = x / 255.0
        features = p.features_extractor(x)
        latent_pi, latent_vf = p.mlp_extractor(features)
        return p.action_net(latent_pi), p.value_net(latent_vf).flatten()

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, values = self.logits_values(obs)
        logp = F.log_softmax(logits, dim=-1)
        log_prob = logp.gather(1, actions.long().view(-1, 1)).squeeze(1)
        entropy = -(logp.exp() * logp).sum(-1)
        return values, log_prob, entropy


def ppo_loss(out: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: Batch,
             clip_range: torch.Tensor | float, ent_coef: torch.Tensor | float,
             vf_coef: torch.Tensor | float) -> torch.Tensor:
    """SB3's PPO loss on one minibatch: clipped surrogate + vf_coef * value MSE - ent_coef * entropy.

    Advantages are normalised within the minibatch, as SB3 does by default.
    """
    values, log_prob, entropy = out
    dtype = values.dtype
    _, _, _, old_log_prob, advantages, returns = (t.to(dtype) if t.is_floating_point() else t for t in batch)
    if len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = torch.exp(log_prob - old_log_prob)
    surrogate = torch.min(advantages * ratio, advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range))
    return -surrogate.mean() + vf_coef * F.mse_loss(returns, values) - ent_coef * entropy.mean()


def lookahead_objective(problem: HyperProblem, hyper: Mapping[str, torch.Tensor], horizon: int | None = None,
                        dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """J(psi): ``horizon`` functional Adam steps of ``problem`` from its w0, then its val loss.

    ``hyper`` overrides ``problem.hyper`` with tensors (e.g. ``{"lr": lr}`` with requires_grad).
    The task's own differentiable reference for the engine (``torch.func.functional_call`` on
    the policy, Adam written out, double backward through each step), used by the
    finite-difference test. Weight decay is 0 as in SB3's PPO; gradient-norm clipping
    (max_grad_norm) is not part of the lookahead, which Adam's scale invariance makes a small
    difference on the first steps.
    """
    opt = problem.optimizer
    assert isinstance(opt, AdamW)
    model = problem.model
    params = {n: p.detach().to(dtype).requires_grad_(True) for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    hp = {n: torch.tensor(v, dtype=dtype) for n, v in problem.hyper.items()} | dict(hyper)
    lr = hp[opt.lr] if isinstance(opt.lr, str) else opt.lr

    def forward_with(weights: dict[str, torch.Tensor]) -> Callable[..., Any]:
        return lambda *inputs: torch.func.functional_call(model, (weights, buffers), inputs)

    b1 = float(opt.beta1)
    b2 = float(opt.beta2)
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    w = dict(params)
    batches = list(problem.train_batches)[: horizon or len(problem.train_batches)]
    for t, batch in enumerate(batches, start=1):
        loss = problem.train_loss(forward_with(w), batch, hp)
        grads = torch.autograd.grad(loss, list(w.values()), create_graph=True, allow_unused=True)
        new_w = {}
        for (name, p), g in zip(w.items(), grads, strict=True):
            g = torch.zeros_like(p) if g is None else g
            m[name] = b1 * m[name] + (1 - b1) * g
            v[name] = b2 * v[name] + (1 - b2) * g * g
            v_hat = v[name] / (1 - b2**t)
            positive = v_hat > 0
            root = torch.where(positive, torch.sqrt(torch.where(positive, v_hat, torch.ones_like(v_hat))), 0.0)
            new_w[name] = p - lr * (m[name] / (1 - b1**t)) / (root + opt.eps)
        w = new_w
    return problem.val_loss(forward_with(w), problem.val_batch)


@dataclass
class PPOState:
    """A trial: its config and seed, the SB3 model, and how many fidelity units it has trained."""

    config: dict[str, Any]
    seed: int
    model: Any
    fidelity: int = 0
    fresh_env_unit: int | None = None  # the unit whose fresh environments the model already holds


class PPOTask(Task):
    """Common PPO adapter; subclasses say which environments and policy to use."""

    metric = "val_return"
    mode = "max"
    test_metric = "test_return"
    hypergrad_method = "none"
    default_horizon = 2

    policy: ClassVar[str] = "MlpPolicy"
    image: ClassVar[bool] = False
    gamma: ClassVar[float] = 0.99
    env_step_flops: ClassVar[float] = 0.0  # FLOP-equivalent of one environment step (see cost())
    eval_deterministic: ClassVar[bool] = True
    n_steps_range: ClassVar[tuple[int, int]] = (16, 2048)
    lr_range: ClassVar[tuple[float, float, float]] = (1e-5, 1e-2, 3e-4)
    defaults: ClassVar[dict[str, float]] = {"ent_coef": 0.0, "vf_coef": 0.5, "clip_range": 0.2, "gae_lambda": 0.95}

    def __init__(self, data_dir: Any = None, *, lookahead: bool = False, unit_steps: int = 2048,
                 max_units: int = 27, n_envs: int = 8, n_steps: int = 128, batch_size: int = 256,
                 n_epochs: int = 10, eval_episodes: int = 10, eval_max_steps: int = 500,
                 torch_threads: int = 1, device: str = "cpu", **options: Any):
        super().__init__(data_dir, lookahead=lookahead, unit_steps=unit_steps, max_units=max_units,
                         n_envs=n_envs, n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs,
                         eval_episodes=eval_episodes, eval_max_steps=eval_max_steps,
                         torch_threads=torch_threads, device=device, **options)
        self.lookahead = bool(lookahead)
        if self.lookahead:
            self.hypergrad_method = "autograd"
        self.unit_steps = int(unit_steps)
        self.max_units = int(max_units)
        self.n_envs = int(n_envs)
        self.n_steps = int(n_steps)
        self.batch_size = int(batch_size)
        self.n_epochs = int(n_epochs)
        self.eval_episodes = int(eval_episodes)
        self.eval_max_steps = int(eval_max_steps)
        self.threads = int(torch_threads)
        self.device = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
        self._flops: tuple[float, float] | None = None
        self._eval_envs: dict[int, Any] = {}  # reset with their seeds at every evaluation

    # -- environments (subclasses) ---------------------------------------------------------------

    def make_env(self, n_envs: int, seed: int, evaluation: bool = False) -> Any:
        """A seeded SB3 VecEnv; ``evaluation`` asks for unclipped rewards and whole episodes."""
        raise NotImplementedError

    def policy_kwargs(self) -> dict[str, Any]:
        return {}

    # -- declaration ------------------------------------------------------------------------------

    @property
    def space(self) -> SearchSpace:
        lo, hi, lr = self.lr_range
        d = self.defaults
        grad_lr = "autograd" if self.lookahead else "none"
        n_lo, n_hi = self.n_steps_range
        return SearchSpace([
            Hyperparameter("lr", lo, hi, lr, log=True, grad=grad_lr, prior=1.0),
            Hyperparameter("ent_coef", 0.0, 0.05, d["ent_coef"], grad="none"),
            Hyperparameter("vf_coef", 0.1, 1.0, d["vf_coef"], grad="none"),
            Hyperparameter("clip_range", 0.05, 0.4, d["clip_range"], grad="none"),
            Hyperparameter("gae_lambda", 0.8, 1.0, d["gae_lambda"], grad="none"),
            Hyperparameter("n_steps", min(n_lo, self.n_steps), max(n_hi, self.n_steps), self.n_steps,
                           log=True, integer=True, grad="none"),
        ])

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("units", 1, self.max_units, f"x{self.unit_steps} env steps")

    def rollouts_per_unit(self, config: Mapping[str, Any]) -> int:
        return max(1, math.ceil(self.unit_steps / (int(config["n_steps"]) * self.n_envs)))

    def steps_per_unit(self, config: Mapping[str, Any]) -> int:
        """Environment steps one fidelity unit really takes (whole rollouts)."""
        return self.rollouts_per_unit(config) * int(config["n_steps"]) * self.n_envs

    # -- training ---------------------------------------------------------------------------------

    def _build(self, config: Mapping[str, Any], seed: int, env: Any) -> Any:
        from stable_baselines3 import PPO

        with warnings.catch_warnings():  # n_steps is searched, so a truncated last minibatch is expected
            warnings.filterwarnings("ignore", message=".*mini-batch size.*", category=UserWarning)
            return PPO(self.policy, env, learning_rate=float(config["lr"]), n_steps=int(config["n_steps"]),
                       batch_size=self.batch_size, n_epochs=self.n_epochs, gamma=self.gamma,
                       gae_lambda=float(config["gae_lambda"]), clip_range=float(config["clip_range"]),
                       ent_coef=float(config["ent_coef"]), vf_coef=float(config["vf_coef"]), max_grad_norm=0.5,
                       policy_kwargs=self.policy_kwargs(), seed=seed, device=self.device, verbose=0)

    def init_state(self, config: Mapping[str, Any], seed: int) -> PPOState:
        config = self.space.validate(config) | {k: v for k, v in config.items() if k not in self.space}
        with torch_threads(self.threads):
            model = self._build(config, seed, self.make_env(self.n_envs, unit_seed(seed, 0)))
        return PPOState(dict(config), int(seed), model, fresh_env_unit=0)

    def _start_unit(self, state: PPOState) -> None:
        """Fresh, freshly seeded environments and generators for the next unit (see module doc).

        Environments built for this unit by init_state or load (and not yet stepped) are kept:
        building Atari environments costs about 0.1 s each.
        """
        useed = unit_seed(state.seed, state.fidelity)
        env = state.model.get_env()
        if state.fresh_env_unit != state.fidelity:
            env.close()
            env = self.make_env(self.n_envs, useed)
        env.seed(useed)
        state.model.set_env(env, force_reset=True)
        state.fresh_env_unit = None
        reseed(useed)

    def train(self, state: PPOState, fidelity: int) -> None:
        with torch_threads(self.threads):
            while state.fidelity < fidelity:
                self._start_unit(state)
                state.model.learn(total_timesteps=self.steps_per_unit(state.config), reset_num_timesteps=False,
                                  log_interval=None)
                state.fidelity += 1

    def _episode_returns(self, model: Any, seed: int) -> list[float]:
        """Undiscounted returns of ``eval_episodes`` episodes run side by side, capped at eval_max_steps."""
        n = self.eval_episodes
        if seed not in self._eval_envs:
            self._eval_envs[seed] = self.make_env(n, seed, evaluation=True)
        env = self._eval_envs[seed]
        env.seed(seed)
        forward = PolicyForward(model.policy, self.image)
        gen = torch.Generator(device=model.device).manual_seed(seed)
        totals = np.zeros(n)
        running = np.ones(n, dtype=bool)
        obs = env.reset()
        model.policy.set_training_mode(False)
        with torch.no_grad():
            for _ in range(self.eval_max_steps):
                logits, _ = forward.logits_values(torch.as_tensor(obs, device=model.device))
                if self.eval_deterministic:
                    actions = logits.argmax(-1)
                else:
                    actions = torch.multinomial(F.softmax(logits, -1), 1, generator=gen).squeeze(1)
                obs, rewards, dones, _ = env.step(actions.cpu().numpy())
                totals += np.where(running, rewards, 0.0)
                running &= ~dones
                if not running.any():
                    break
        return totals.tolist()

    def evaluate(self, state: PPOState) -> dict[str, float]:
        with torch_threads(self.threads):
            val = self._episode_returns(state.model, VAL_SEED)
            test = self._episode_returns(state.model, TEST_SEED)
        return {self.metric: float(np.mean(val)), self.test_metric: float(np.mean(test)),
                "val_return_std": float(np.std(val)), "env_steps": float(state.model.num_timesteps)}

    # -- checkpoints ------------------------------------------------------------------------------

    def save(self, state: PPOState, path: Path) -> None:
        """SB3's zip (weights, Adam state, counters) plus config, seed and fidelity, in one file.

        No RNG or environment state is needed: every unit reseeds and rebuilds them (module doc).
        """
        buf = io.BytesIO()
        state.model.save(buf)
        torch.save({"config": state.config, "seed": state.seed, "fidelity": state.fidelity,
                    "sb3_zip": buf.getvalue()}, path)

    def load(self, path: Path) -> PPOState:
        from stable_baselines3 import PPO

        blob = torch.load(path, weights_only=False)
        with torch_threads(self.threads):
            env = self.make_env(self.n_envs, unit_seed(blob["seed"], blob["fidelity"]))
            model = PPO.load(io.BytesIO(blob["sb3_zip"]), env=env, device=self.device)
        return PPOState(blob["config"], blob["seed"], model, blob["fidelity"], fresh_env_unit=blob["fidelity"])

    # -- cost -------------------------------------------------------------------------------------

    def step_flops(self) -> tuple[float, float]:
        """(policy forward FLOPs per observation, forward+backward FLOPs per training sample).

        Counted once per observation shape on a scratch policy; the architecture does not
        depend on the config.
        """
        if self._flops is None:
            from ohgw_bench.cost import count_flops

            config = self.space.default_config()
            with torch_threads(self.threads):
                model = self._build(config, 0, self.make_env(1, 0))
                obs = torch.as_tensor(np.stack([model.observation_space.sample() for _ in range(8)]),
                                      device=model.device)
                actions = torch.zeros(8, dtype=torch.long, device=model.device)
                forward = PolicyForward(model.policy, self.image)
                with torch.no_grad():
                    fwd = count_flops(lambda: forward.logits_values(obs))

                def step() -> None:
                    values, log_prob, entropy = forward(obs, actions)
                    (values.sum() + log_prob.sum() + entropy.sum()).backward()

                train = count_flops(step)
                model.get_env().close()
            self._flops = (fwd / 8, train / 8)
        return self._flops

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        """Simulated seconds: env steps x (rollout forward + n_epochs x train pass + env step),
        plus two evaluations per unit charged at their cap (eval_episodes x eval_max_steps), since
        episode lengths depend on the policy and the clock must not."""
        fwd, train = self.step_flops()
        per_step = fwd + self.n_epochs * train + self.env_step_flops
        per_eval_step = fwd + self.env_step_flops
        per_unit = self.steps_per_unit(config) * per_step + 2 * self.eval_episodes * self.eval_max_steps * per_eval_step
        return units_cost(start, stop, per_unit, self.reference_flops_per_second)

    # -- hyper-gradient (lookahead=True) ----------------------------------------------------------

    def train_loss(self, forward: Any, batch: Batch, hp: Mapping[str, Any]) -> torch.Tensor:
        obs, actions = batch[0], batch[1]
        return ppo_loss(forward(obs, actions), batch, hp["clip_range"], hp["ent_coef"], hp["vf_coef"])

    def _val_loss(self, config: Mapping[str, Any]) -> Callable[[Any, Batch], torch.Tensor]:
        clip, ent, vf = float(config["clip_range"]), float(config["ent_coef"]), float(config["vf_coef"])

        def val_loss(forward: Any, batch: Batch) -> torch.Tensor:
            return ppo_loss(forward(batch[0], batch[1]), batch, clip, ent, vf)

        return val_loss

    def first_rollout(self, config: Mapping[str, Any], seed: int) -> tuple[Any, list[Batch]]:
        """The trial's w0 and its first rollout, cut into minibatches in the order its first
        epochs visit them (same seeds and environments as :meth:`train`, so identical)."""
        state = self.init_state(config, seed)
        model = state.model
        with torch_threads(self.threads):
            self._start_unit(state)
            _, callback = model._setup_learn(model.n_steps * self.n_envs, None, reset_num_timesteps=False)
            callback.on_training_start(locals(), globals())
            model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
            batches: list[Batch] = []
            for _ in range(self.n_epochs):
                for data in model.rollout_buffer.get(self.batch_size):
                    batches.append((data.observations, data.actions.long().flatten(), data.old_values,
                                    data.old_log_prob, data.advantages, data.returns))
        return model, batches

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int,
                      split_batch: bool = False) -> HyperProblem:
        """Lr-only lookahead: the trial's w0, its first ``horizon`` PPO minibatches (Adam, no
        weight decay, eps 1e-5 as SB3), J = PPO loss on a held-out minibatch of the same rollout.

        V is the last minibatch of the first epoch, and the train batches are the trial's first
        minibatches with V removed. When the rollout holds a single minibatch (or split_batch),
        V is carved out of it: the first half trains, the second half is V.
        """
        if not self.lookahead:
            raise NotImplementedError(f"task {self.id}: the PPO lookahead is off (make the task with lookahead=True)")
        model, batches = self.first_rollout(config, seed)
        per_epoch = len(batches) // self.n_epochs
        if split_batch or per_epoch < 2:
            half = len(batches[0][0]) // 2
            train = [tuple(t[:half] for t in batches[0])]
            val = tuple(t[half:] for t in batches[0])
        else:
            val = batches[per_epoch - 1]
            kept = [b for i, b in enumerate(batches) if i % per_epoch != per_epoch - 1]
            train = kept[:max(1, horizon)]
        names = ("lr", "ent_coef", "vf_coef", "clip_range")
        model.get_env().close()
        return HyperProblem(
            model=PolicyForward(model.policy, self.image),
            train_batches=train,
            val_batch=val,
            train_loss=self.train_loss,
            val_loss=self._val_loss(config),
            optimizer=AdamW(lr="lr", beta1=0.9, beta2=0.999, eps=ADAM_EPS, weight_decay=0.0),
            hyper={n: float(config[n]) for n in names},
            extras={"held_out": "split" if (split_batch or per_epoch < 2) else "last minibatch of epoch 1",
                    "note": "lr only; clip_range/ent_coef/vf_coef gradients are ~0 through Adam"},
        )
