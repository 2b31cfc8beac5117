"""DyHPO (Wistuba, Kadra, Grabocka 2022, "Supervising the Multi-Fidelity Race of Hyperparameter
Configurations"), as a Syne Tune scheduler.

DyHPO advances one configuration by one budget step at a time. Its surrogate is a deep-kernel
Gaussian process: a small network maps (config in the unit cube, budget as a fraction of the
maximum, the learning curve observed so far) to features, and a GP with an RBF kernel on those
features predicts the metric at a budget. Each decision scores every paused, not yet finished
trial at its next budget and a batch of fresh random configs at the first budget by expected
improvement over the best value observed at that budget (at the highest budget below it that
any trial reached, if none has reached it yet), and advances the winner: resumes it with one
more step, or starts it. Running trials are not candidates, so with several workers each free
worker gets the best of what is not already running.

Budget steps: ``min_resource, min_resource + step, ...`` capped at ``max_resource``, with
``step = 1`` (one epoch, as in the paper) unless ``options["budget_step"]`` says otherwise.

Kept small so that one decision costs about 0.1 s of CPU at a hundred observations (0.15-0.2 s
at three to four hundred): a 2-layer MLP (32 units) over config, budget and the last observed
value, a 1-d convolution (4 channels, kernel 3, max pooled) over the curve, 16 learned
features plus the raw config and budget, an RBF kernel, exact GP in float64. The first
``scratch_fits`` fits train from scratch for ``initial_iterations`` Adam steps; later ones
refine the previous fit for ``refit_iterations`` steps, as the reference implementation does. Everything is seeded from
``ctx.seed`` (numpy Generator for proposals, a forked torch RNG for the network's initial
weights), so the same seed gives the same decisions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.stats import norm
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion
from torch import nn

from ohgw_bench.baselines import SchedulerContext
from ohgw_bench.baselines._promotion import sample_config
from ohgw_bench.options import Option

#: the options ``build`` reads, validated by the registry before any work (ohgw_bench/options.py)
OPTIONS = (
    Option("budget_step", int, 1, "fidelity units a trial advances per decision (the paper: 1 epoch)", low=1),
    Option("n_candidates", int, 64, "fresh configs scored by EI per decision", low=1),
)


class FeatureExtractor(nn.Module):
    """Config, budget and last observed value through an MLP, the whole curve through a small
    CNN, joined by a linear layer; the raw config and budget are appended to the output.

    The CNN with max pooling (as in the paper) sees the curve's shape but not where it ends;
    the last value, given to the MLP directly, is what makes one-step-ahead predictions sharp.
    Appending the raw inputs keeps configs far from all data far apart in feature space, so the
    GP stays uncertain there instead of extrapolating the learned features with confidence.
    """

    def __init__(self, n_hp: int, width: int = 32, channels: int = 4, kernel: int = 3, out: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(n_hp + 3, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh())
        self.cnn = nn.Sequential(nn.Conv1d(2, channels, kernel, padding=kernel // 2), nn.Tanh(),
                                 nn.AdaptiveMaxPool1d(1))
        self.head = nn.Linear(width + channels, out)

    def forward(self, x: torch.Tensor, budget: torch.Tensor, curve: torch.Tensor) -> torch.Tensor:
        observed = curve[:, 1]
        last = observed.cumsum(1).argmax(1)
        last_value = curve[:, 0].gather(1, last[:, None]) * observed.amax(1, keepdim=True)
        h = self.mlp(torch.cat([x, budget[:, None], last_value, observed.amax(1, keepdim=True)], dim=1))
        c = self.cnn(curve).squeeze(-1)
        return torch.cat([self.head(torch.cat([h, c], dim=1)), x, budget[:, None]], dim=1)


class DeepKernelGP(nn.Module):
    """Exact GP with an RBF kernel on learned features, trained by marginal likelihood."""

    def __init__(self, n_hp: int, seed: int):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.features = FeatureExtractor(n_hp).double()
        self.log_lengthscale = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_outputscale = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_noise = nn.Parameter(torch.tensor(math.log(1e-2), dtype=torch.float64))
        self.mean = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self._train: tuple[torch.Tensor, ...] | None = None

    def _kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(a, b).pow(2)
        return self.log_outputscale.exp() * torch.exp(-0.5 * d2 / self.log_lengthscale.exp().pow(2))

    def _noise(self) -> torch.Tensor:
        return self.log_noise.exp() + 1e-6

    def _nll(self, x, budget, curve, y) -> torch.Tensor:
        f = self.features(x, budget, curve)
        k = self._kernel(f, f) + self._noise() * torch.eye(len(y), dtype=torch.float64)
        chol = torch.linalg.cholesky(k)
        r = (y - self.mean)[:, None]
        alpha = torch.cholesky_solve(r, chol)
        n = len(y)
        return (0.5 * (r * alpha).sum() + chol.diagonal().log().sum()) / n + 0.5 * math.log(2 * math.pi)

    def fit(self, x: torch.Tensor, budget: torch.Tensor, curve: torch.Tensor, y: torch.Tensor,
            iterations: int, lr: float = 0.01) -> float:
        """Adam on the negative log marginal likelihood per point, continuing from the current weights."""
        optimiser = torch.optim.Adam(self.parameters(), lr=lr)
        state = {k: v.clone() for k, v in self.state_dict().items()}
        loss = float("nan")
        for _ in range(iterations):
            optimiser.zero_grad()
            try:
                nll = self._nll(x, budget, curve, y)
            except torch.linalg.LinAlgError:
                self.load_state_dict(state)
                break
            nll.backward()
            optimiser.step()
            loss = float(nll.detach())
        self._train = (x, budget, curve, y)
        return loss

    @torch.no_grad()
    def predict(self, x: torch.Tensor, budget: torch.Tensor, curve: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the (noisy) observation at each input."""
        assert self._train is not None, "fit before predict"
        tx, tb, tc, ty = self._train
        ft = self.features(tx, tb, tc)
        fs = self.features(x, budget, curve)
        k = self._kernel(ft, ft) + self._noise() * torch.eye(len(ty), dtype=torch.float64)
        chol = torch.linalg.cholesky(k)
        ks = self._kernel(ft, fs)
        mean = self.mean + ks.T @ torch.cholesky_solve((ty - self.mean)[:, None], chol)[:, 0]
        v = torch.cholesky_solve(ks, chol)
        var = self.log_outputscale.exp() - (ks * v).sum(0) + self._noise()
        return mean.numpy(), var.clamp_min(1e-12).sqrt().numpy()


def expected_improvement(best: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """EI for minimisation: E[max(best - f, 0)] with f ~ N(mean, std^2)."""
    z = (best - mean) / std
    return (best - mean) * norm.cdf(z) + std * norm.pdf(z)


class DyHPO(TrialScheduler):
    """Deep-kernel GP, multi-fidelity EI one budget step ahead, advance the winner by one step."""

    def __init__(self, ctx: SchedulerContext, budget_step: int = 1, n_candidates: int = 64,
                 n_initial: int = 2, initial_iterations: int = 300, refit_iterations: int = 10,
                 scratch_fits: int = 5):
        super().__init__(random_seed=ctx.seed)
        if budget_step < 1:
            raise ValueError(f"budget_step must be at least 1, got {budget_step}")
        self.ctx = ctx
        self.step = int(budget_step)
        self.n_candidates = n_candidates
        self.n_initial = n_initial
        self.initial_iterations = initial_iterations
        self.refit_iterations = refit_iterations
        self.scratch_fits = scratch_fits
        self.budgets = list(range(ctx.min_resource, ctx.max_resource, self.step)) + [ctx.max_resource]
        self._rng = np.random.default_rng(ctx.seed)
        self._sign = 1.0 if ctx.mode == "min" else -1.0
        self.model = DeepKernelGP(len(ctx.space), seed=ctx.seed)
        self.configs: dict[int, dict[str, Any]] = {}
        self.curves: dict[int, dict[int, float]] = {}
        self.target: dict[int, int] = {}
        self.paused: set[int] = set()
        self.finished: set[int] = set()
        self.decisions: list[dict[str, Any]] = []
        self._n_observations_fitted = -1
        self._fits = 0
        self._scale = (0.0, 1.0)

    def metric_names(self) -> list[str]:
        return [self.ctx.metric]

    def metric_mode(self) -> str:
        return self.ctx.mode

    def metadata(self) -> dict[str, Any]:
        return {
            "scheduler_name": type(self).__name__,
            "scheduler_kwargs": {"budget_step": self.step, "n_candidates": self.n_candidates,
                                 "seed": self.ctx.seed},
        }

    def next_budget(self, resource: int) -> int:
        """The first budget step above ``resource``."""
        return next(b for b in self.budgets if b > resource)

    def _unit(self, config: dict[str, Any]) -> list[float]:
        z = self.ctx.space.to_unit(config)
        return [z[name] for name in self.ctx.space.names]

    def _curve_input(self, curve: dict[int, float], budget: int, shift: float, scale: float) -> np.ndarray:
        """Standardised values observed at budget steps below ``budget``, and which were observed."""
        out = np.zeros((2, len(self.budgets)), dtype=np.float64)
        for i, b in enumerate(self.budgets):
            if b < budget and b in curve:
                out[0, i] = (curve[b] - shift) / scale
                out[1, i] = 1.0
        return out

    def _inputs(self, rows: list[tuple[dict[int, float], list[float], int]], shift: float, scale: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.tensor([r[1] for r in rows], dtype=torch.float64).reshape(len(rows), len(self.ctx.space))
        budget = torch.tensor([r[2] / self.ctx.max_resource for r in rows], dtype=torch.float64)
        curves = np.stack([self._curve_input(r[0], r[2], shift, scale) for r in rows])
        return x, budget, torch.from_numpy(curves)

    def n_observations(self) -> int:
        return sum(len(c) for c in self.curves.values())

    def refit(self) -> None:
        """Fit the surrogate to every observed (trial, resource, value) if anything new came in."""
        n = self.n_observations()
        if n == self._n_observations_fitted:
            return
        values = np.array([v for curve in self.curves.values() for v in curve.values()])
        shift, scale = float(values.mean()), float(values.std()) or 1.0
        rows, ys = [], []
        for trial_id in sorted(self.curves):
            z = self._unit(self.configs[trial_id])
            for resource, value in sorted(self.curves[trial_id].items()):
                rows.append((self.curves[trial_id], z, resource))
                ys.append((value - shift) / scale)
        if self._fits < self.scratch_fits:
            self.model = DeepKernelGP(len(self.ctx.space), seed=self.ctx.seed)
            iterations = self.initial_iterations
        else:
            iterations = self.refit_iterations
        self.model.fit(*self._inputs(rows, shift, scale), torch.tensor(ys, dtype=torch.float64), iterations)
        self._fits += 1
        self._n_observations_fitted = n
        self._scale = (shift, scale)

    def predict(self, configs: list[dict[str, Any]], budgets: list[int],
                curves: list[dict[int, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted metric (the metric's own units) at ``budgets``, given the values in ``curves`` below them."""
        self.refit()
        shift, scale = self._scale
        rows = [({r: self._sign * v for r, v in curve.items()}, self._unit(config), b)
                for config, b, curve in zip(configs, budgets, curves)]
        mean, std = self.model.predict(*self._inputs(rows, shift, scale))
        return self._sign * (mean * scale + shift), std * scale

    def best_at(self, budget: int) -> float:
        """Best value observed at ``budget``, or at the highest budget below it that any trial reached.

        The reference code falls back to the best value at any budget. With noisy curves that
        is often a lucky dip of the leading trial itself, which then can hardly expect to
        improve on it and stalls at the frontier while fresh configs win the EI race.
        """
        reached = [b for b in self.budgets if b <= budget and any(b in c for c in self.curves.values())]
        level = reached[-1] if reached else min(r for c in self.curves.values() for r in c)
        return min(c[level] for c in self.curves.values() if level in c)

    def suggest(self) -> TrialSuggestion | None:
        fresh = [sample_config(self.ctx, self._rng) for _ in range(self.n_candidates)]
        if self.n_observations() < self.n_initial:
            self.decisions.append({"trial_id": None, "budget": self.budgets[0], "random": True})
            return self._start(fresh[0])
        self.refit()
        shift, scale = self._scale
        paused = sorted(self.paused)
        ids: list[int | None] = paused + [None] * len(fresh)
        rows = [(self.curves[t], self._unit(self.configs[t]), self.next_budget(max(self.curves[t])))
                for t in paused]
        rows += [({}, self._unit(c), self.budgets[0]) for c in fresh]
        mean, std = self.model.predict(*self._inputs(rows, shift, scale))
        best = np.array([(self.best_at(r[2]) - shift) / scale for r in rows])
        ei = expected_improvement(best, mean, std)
        i = int(np.argmax(ei))
        trial_id, next_budget = ids[i], rows[i][2]
        self.decisions.append({
            "trial_id": trial_id, "budget": next_budget, "random": False,
            "candidates": ids, "budgets": [r[2] for r in rows],
            "mean": mean, "std": std, "best": best, "ei": ei, "chosen": i,
        })
        if trial_id is None:
            return self._start(fresh[i - len(paused)])
        self.paused.discard(trial_id)
        self.target[trial_id] = next_budget
        config = dict(self.configs[trial_id])
        config[self.ctx.resource_attr] = next_budget
        return TrialSuggestion.resume_suggestion(trial_id, config)

    def _start(self, config: dict[str, Any]) -> TrialSuggestion:
        config = dict(config)
        config[self.ctx.resource_attr] = self.budgets[0]
        return TrialSuggestion.start_suggestion(config)

    def on_trial_add(self, trial: Trial) -> None:
        self.configs[trial.trial_id] = dict(trial.config)
        self.target[trial.trial_id] = int(trial.config.get(self.ctx.resource_attr, self.budgets[0]))
        self.curves[trial.trial_id] = {}

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        trial_id = trial.trial_id
        if self.ctx.metric not in result or self.ctx.resource_attr not in result:
            return SchedulerDecision.CONTINUE
        resource = int(result[self.ctx.resource_attr])
        self.curves[trial_id][resource] = self._sign * float(result[self.ctx.metric])
        if resource < self.target[trial_id]:
            return SchedulerDecision.CONTINUE
        if resource >= self.ctx.max_resource:
            self.finished.add(trial_id)
            return SchedulerDecision.CONTINUE
        self.paused.add(trial_id)
        return SchedulerDecision.PAUSE

    def on_trial_error(self, trial: Trial) -> None:
        self.paused.discard(trial.trial_id)
        self.finished.add(trial.trial_id)


def build(ctx: SchedulerContext, **kwargs: Any) -> DyHPO:
    """``options``: ``budget_step`` (default 1), ``n_candidates`` (fresh configs scored per decision, 64)."""
    options = {**ctx.options, **kwargs}
    return DyHPO(ctx, budget_step=int(options.get("budget_step", 1)),
                 n_candidates=int(options.get("n_candidates", 64)))
