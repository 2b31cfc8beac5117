"""DyHPO (Wistuba, Kadra, Grabocka 2022, "Supervising the Multi-Fidelity Race of Hyperparameter
Configurations"), as a Syne Tune scheduler.

DyHPO advances one configuration by one budget step at a time. Its surrogate is a deep-kernel
Gaussian process: a small network maps (config in the unit cube, budget as a fraction of the
maximum, the learning curve observed so far) to features, and a GP with an RBF kernel on those
features predicts the metric at a budget.

Each decision, as in the paper and in legacy Syne Tune's ``DyHPORungSystem``:

1. With probability ``probability_sh`` (0.25) the successive-halving rule is tried first: on
   rungs at every budget step, the best paused trial whose value at its rung lies within the
   rung's ``1/eta`` quantile (``eta = 3``; a rung needs two values) is promoted by one step,
   highest rung first. This is not in the paper; the reference adds it so that good trials are
   promoted eventually even while the model prefers new configs. If it promotes nobody:
2. every paused, not yet finished trial is scored at its next budget, and
   ``max(n_candidates, number of paused trials)`` fresh random configs at the first budget, by
   expected improvement over the best value observed *at that candidate's budget* (over all
   observations at that budget, if any trial reached it; the best value at any budget if none
   did). The winner is resumed for one more step, or started.

Running trials are not candidates, so with several workers each free worker gets the best of
what is not running. Budget steps: ``min_resource, min_resource + step, ...`` capped at
``max_resource``, with ``step = 1`` (one epoch, as in the paper) unless ``budget_step`` says
otherwise.

Cost (``benchmarks/bench_schedulers.py`` measures it; table in the README). Exact GPs cost
O(n^3) in the observations, and a fit from scratch on every decision made a study's scheduler
time grow superlinearly. Four choices keep a decision within tens of milliseconds:

- *Warm-started refits of a few steps* (the paper's recipe): the network is trained from
  fresh weights for ``initial_iterations`` Adam steps only when the number of observations
  has grown by half since the last such fit (at 2, 3, 5, 8, ... observations: cheap while the
  data is small, rare once it is large); other fits continue the previous weights for
  ``refit_iterations`` steps. Warm steps alone could not keep up early on, when the data
  grows fastest relative to its size (the held-out error of a 30-observation model was no
  better than a 6-observation one's).
- *Refit only after a new config won* (the reference's rule), and then at most every third
  model-based decision (ours: on the toy table new configs win about half the decisions, so
  the reference's rule alone refits on most of them), or once the data grew by 10% since the
  last fit (ours, so that early on, when fits are cheap, the model keeps up with the data).
  Otherwise the model's weights and kernel parameters are kept and the GP is only conditioned
  on the new observations (one forward pass and a Cholesky factorisation).
- *A capped training set* of at most ``max_fit_points`` observations (500, Syne Tune's
  default), chosen as the reference does for dense learning curves: each trial keeps at most
  one observation (its latest) per geometric bucket ``(r_min eta^(k-1), r_min eta^k]``, then
  trials that reached the highest budgets keep theirs first and the remaining room is filled at
  random (seeded) from the lowest budgets. The incumbent of EI uses every observation.
- *Batched scoring*: all candidates go through the network and the GP in one pass, against a
  cached factorisation of the training kernel; fresh configs are drawn as one array.

Network and GP: a 2-layer MLP (32 units) over config, budget and the last observed value, a
1-d convolution (4 channels, kernel 3, max pooled) over the curve, 16 learned features plus
the raw config and budget, an RBF kernel, exact GP in float64. Everything is seeded from
``ctx.seed`` (numpy Generators for proposals, the successive-halving coin and the subsample, a
forked torch RNG for the network's initial weights), so the same seed gives the same decisions.

Reproducibility across machines. The fit is chaotic in its inputs: 200 Adam steps on a
non-convex likelihood, continued by later fits, turn a relative change of 1e-7 in the observed
metrics (what another CPU's float32 training gives) into a change of 1e-3 to 1e-1 in the
acquisition values within a few dozen decisions, enough to flip the argmax. Three cheap
measures keep one CPU's decisions on another's (:func:`stable_arithmetic`, :func:`quantize`):

- the metric values the model and EI see are rounded to ``VALUE_DIGITS`` (4) significant
  digits, so that last-digit differences of the trials' float32 arithmetic do not reach it;
- fits and predictions run on one torch thread with deterministic algorithms, in float64
  (the thread count changes how reductions are split);
- a fit's result is stored at float32 precision, so that last-bit differences of another
  CPU's float64 kernels do not accumulate over the warm-started refits.

A rounding boundary can still be straddled (then the decisions diverge from there on): with
inputs perturbed at 1e-7 (``tests/test_dyhpo_repro.py``) most studies keep their decisions,
where before every one diverged; the README states the measured share.

Departures from the paper and the reference: the successive-halving mix and the capped training
set come from the reference, not the paper; the incumbent is the best *observed* value (the
paper's choice; Syne Tune takes the best posterior mean at observed inputs); fresh configs are
uniform random, without Syne Tune's exclusion of configs already tried (a continuous space
practically never repeats one).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
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
    Option("max_fit_points", int, 256, "observations the GP is fit on at most (thinned beyond)", low=2),
    Option("probability_sh", float, 0.25, "chance a decision is a successive-halving promotion (the reference's mix)",
           low=0.0, high=0.999),
    Option("eta", int, 3, "reduction factor of the successive-halving promotions and the thinning buckets", low=2,
           aliases=("reduction_factor",)),
)


#: significant digits of the metric values the surrogate and EI see (see the module docstring)
VALUE_DIGITS = 4


def quantize(values: np.ndarray, digits: int = VALUE_DIGITS) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (NaN and 0 kept): why, see the module docstring."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values) & (values != 0)
    out = values.copy()
    magnitude = np.floor(np.log10(np.abs(values[finite])))
    scale = 10.0 ** (digits - 1 - magnitude)
    out[finite] = np.round(values[finite] * scale) / scale
    return out


@contextlib.contextmanager
def stable_arithmetic() -> Iterator[None]:
    """One torch thread and deterministic algorithms for the duration (restored after)."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


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


Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class DeepKernelGP(nn.Module):
    """Exact GP with an RBF kernel on learned features, trained by marginal likelihood.

    :meth:`fit` moves the weights; :meth:`condition` factorises the training kernel once, so
    that :meth:`predict` costs one pass of the candidates through the network and a triangular
    solve.
    """

    def __init__(self, n_hp: int, seed: int):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.features = FeatureExtractor(n_hp).double()
        self.log_lengthscale = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_outputscale = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_noise = nn.Parameter(torch.tensor(math.log(1e-2), dtype=torch.float64))
        self.mean = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self._posterior: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # Squared distances by matrix products: torch.cdist's backward is far slower at a few hundred rows.
        d2 = (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2.0 * a @ b.T).clamp_min(0.0)
        return self.log_outputscale.exp() * torch.exp(-0.5 * d2 / self.log_lengthscale.exp().pow(2))

    def _noise(self) -> torch.Tensor:
        return self.log_noise.exp() + 1e-6

    def _cholesky(self, f: torch.Tensor) -> torch.Tensor:
        k = self._kernel(f, f) + self._noise() * torch.eye(len(f), dtype=torch.float64)
        chol, info = torch.linalg.cholesky_ex(k)
        if int(info) != 0:
            chol = torch.linalg.cholesky(k + 1e-4 * torch.eye(len(f), dtype=torch.float64))
        return chol

    def _nll(self, inputs: Inputs, y: torch.Tensor) -> torch.Tensor:
        chol = self._cholesky(self.features(*inputs))
        r = (y - self.mean)[:, None]
        alpha = torch.cholesky_solve(r, chol)
        return (0.5 * (r * alpha).sum() + chol.diagonal().log().sum()) / len(y) + 0.5 * math.log(2 * math.pi)

    def fit(self, inputs: Inputs, y: torch.Tensor, iterations: int, lr: float = 0.01) -> float:
        """Adam on the negative log marginal likelihood per point, continuing from the current weights."""
        optimiser = torch.optim.Adam(self.parameters(), lr=lr)
        state = {k: v.clone() for k, v in self.state_dict().items()}
        loss = float("nan")
        for _ in range(iterations):
            optimiser.zero_grad()
            try:
                nll = self._nll(inputs, y)
            except torch.linalg.LinAlgError:
                self.load_state_dict(state)
                break
            nll.backward()
            optimiser.step()
            loss = float(nll.detach())
        with torch.no_grad():  # store at float32 precision: see the module docstring
            for p in self.parameters():
                p.copy_(p.float().double())
        return loss

    @torch.no_grad()
    def condition(self, inputs: Inputs, y: torch.Tensor) -> None:
        """Factorise the kernel of the training inputs under the current weights (no training)."""
        f = self.features(*inputs)
        chol = self._cholesky(f)
        alpha = torch.cholesky_solve((y - self.mean)[:, None], chol)[:, 0]
        self._posterior = (f, chol, alpha)

    @torch.no_grad()
    def predict(self, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the (noisy) observation at each input."""
        assert self._posterior is not None, "condition before predict"
        f, chol, alpha = self._posterior
        ks = self._kernel(f, self.features(*inputs))
        mean = self.mean + ks.T @ alpha
        v = torch.linalg.solve_triangular(chol, ks, upper=False)
        var = self.log_outputscale.exp() - v.pow(2).sum(0) + self._noise()
        return mean.numpy(), var.clamp_min(1e-12).sqrt().numpy()


def expected_improvement(best: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """EI for minimisation: E[max(best - f, 0)] with f ~ N(mean, std^2)."""
    z = (best - mean) / std
    return (best - mean) * norm.cdf(z) + std * norm.pdf(z)


def incumbents(values: np.ndarray) -> np.ndarray:
    """EI's incumbent per budget step: the best value observed at that step, else the best anywhere.

    ``values`` is (trials, budget steps), NaN where unobserved, lower is better. This is the
    paper's and the reference's target: a paused trial's next step and a fresh config's first
    step are each compared with what other trials achieved at that same budget.
    """
    observed = ~np.isnan(values)
    if not observed.any():
        raise ValueError("no observations")
    overall = np.nanmin(values)
    per_step = np.where(observed, values, np.inf).min(axis=0)
    return np.where(observed.any(axis=0), per_step, overall)


def sh_promotion(values: np.ndarray, last_step: np.ndarray, paused: np.ndarray, eta: int) -> int | None:
    """Row of the trial the successive-halving rule promotes, or None.

    Rungs are every budget step but the last. At rung ``j`` the cutoff is the ``1/eta``
    quantile (numpy's linear interpolation) of all values observed at ``j``, which needs at
    least two; the best trial paused at ``j`` (``last_step == j`` and ``paused``) is promoted if
    its value is at most the cutoff. Rungs are searched from the highest down.
    """
    for j in range(values.shape[1] - 2, -1, -1):
        column = values[:, j]
        at_rung = column[~np.isnan(column)]
        if len(at_rung) < 2:
            continue
        waiting = np.flatnonzero(paused & (last_step == j))
        if len(waiting) == 0:
            continue
        best = waiting[np.argmin(column[waiting])]
        if column[best] <= np.quantile(at_rung, 1.0 / eta):
            return int(best)
    return None


class DyHPO(TrialScheduler):
    """Deep-kernel GP, EI at each candidate's next budget, advance the winner by one step."""

    def __init__(self, ctx: SchedulerContext, budget_step: int = 1, n_candidates: int = 64,
                 n_initial: int = 2, initial_iterations: int = 200, refit_iterations: int = 10,
                 max_fit_points: int = 256, probability_sh: float = 0.25,
                 reduction_factor: int = 3, trace: bool = False):
        super().__init__(random_seed=ctx.seed)
        if budget_step < 1:
            raise ValueError(f"budget_step must be at least 1, got {budget_step}")
        if not 0.0 <= probability_sh < 1.0:
            raise ValueError(f"probability_sh must be in [0, 1), got {probability_sh}")
        if reduction_factor < 2:
            raise ValueError(f"reduction_factor must be at least 2, got {reduction_factor}")
        if max_fit_points < 2:
            raise ValueError(f"max_fit_points must be at least 2, got {max_fit_points}")
        self.ctx = ctx
        self.step = int(budget_step)
        self.n_candidates = int(n_candidates)
        self.n_initial = n_initial
        self.initial_iterations = initial_iterations
        self.refit_iterations = refit_iterations
        self.max_fit_points = int(max_fit_points)
        self.probability_sh = float(probability_sh)
        self.eta = int(reduction_factor)
        self.trace = trace
        self.budgets = list(range(ctx.min_resource, ctx.max_resource, self.step)) + [ctx.max_resource]
        self._step_of = {b: j for j, b in enumerate(self.budgets)}
        self._rng = np.random.default_rng(ctx.seed)
        self._coin = np.random.default_rng([ctx.seed, 1])
        self._sign = 1.0 if ctx.mode == "min" else -1.0
        self._names = list(ctx.space.names)
        self.model = DeepKernelGP(len(ctx.space), seed=ctx.seed)
        self.configs: dict[int, dict[str, Any]] = {}
        self.curves: dict[int, dict[int, float]] = {}
        self.target: dict[int, int] = {}
        self.paused: set[int] = set()
        self.finished: set[int] = set()
        self.decisions: list[dict[str, Any]] = []
        # One row per trial: its unit-cube config and its (sign-flipped) value at every budget step.
        self._row: dict[int, int] = {}
        self._ids: list[int] = []
        self._x = np.zeros((64, len(ctx.space)))
        self._values = np.full((64, len(self.budgets)), np.nan)
        self._n_obs = 0
        self._conditioned_on = -1
        self._fits = 0
        self._refit_due = True
        self._fitted_on = 0
        self._scratch_on = 0
        self._since_fit = 0
        self.refit_every = 3
        self.refit_growth = 1.1
        self.scratch_growth = 1.5
        self._scale = (0.0, 1.0)

    def metric_names(self) -> list[str]:
        return [self.ctx.metric]

    def metric_mode(self) -> str:
        return self.ctx.mode

    def metadata(self) -> dict[str, Any]:
        return {
            "scheduler_name": type(self).__name__,
            "scheduler_kwargs": {"budget_step": self.step, "n_candidates": self.n_candidates,
                                 "max_fit_points": self.max_fit_points,
                                 "probability_sh": self.probability_sh, "reduction_factor": self.eta,
                                 "seed": self.ctx.seed},
        }

    def n_observations(self) -> int:
        return self._n_obs

    # --- data ------------------------------------------------------------------------------

    def _unit(self, config: dict[str, Any]) -> np.ndarray:
        z = self.ctx.space.to_unit(config)
        return np.array([z[name] for name in self._names], dtype=np.float64)

    def _add_row(self, trial_id: int, config: dict[str, Any]) -> None:
        n = len(self._ids)
        if n == len(self._x):
            self._x = np.concatenate([self._x, np.zeros_like(self._x)])
            self._values = np.concatenate([self._values, np.full_like(self._values, np.nan)])
        self._row[trial_id] = n
        self._ids.append(trial_id)
        self._x[n] = self._unit(config)

    def _record(self, trial_id: int, resource: int, value: float) -> None:
        value = float(quantize(np.array([value]))[0])
        self.curves[trial_id][resource] = value
        j = self._step_of.get(resource)
        if j is None:
            return
        row = self._row[trial_id]
        if np.isnan(self._values[row, j]):
            self._n_obs += 1
        self._values[row, j] = value

    def _curve_inputs(self, values: np.ndarray, steps: np.ndarray, shift: float, scale: float) -> np.ndarray:
        """(n, 2, budget steps): standardised values at steps below ``steps`` and which were observed."""
        below = np.arange(len(self.budgets))[None, :] < steps[:, None]
        observed = below & ~np.isnan(values)
        out = np.zeros((len(values), 2, len(self.budgets)))
        out[:, 0] = np.where(observed, (values - shift) / scale, 0.0)
        out[:, 1] = observed
        return out

    def _inputs(self, x: np.ndarray, values: np.ndarray, steps: np.ndarray, shift: float, scale: float) -> Inputs:
        budget = np.asarray(self.budgets, dtype=np.float64)[steps] / self.ctx.max_resource
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)), torch.from_numpy(budget),
                torch.from_numpy(self._curve_inputs(values, steps, shift, scale)))

    def training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, steps) of the observations the GP is fitted to: all, or at most ``max_fit_points``.

        Over the cap, first each trial keeps only its latest observation in each geometric
        bucket of budget steps; if that is still too many, trials are taken in order of the
        highest step they reached (all their kept observations), and the trials that do not
        fit whole are subsampled at random from their lowest steps up, as Syne Tune's
        ``SubsampleMFDenseDataStateConverter`` does.
        """
        n = len(self._ids)
        rows, steps = np.nonzero(~np.isnan(self._values[:n]))
        cap = self.max_fit_points
        if len(rows) <= cap:
            return rows, steps
        bucket = np.zeros(len(self.budgets), dtype=np.int64)
        edge, k = self.budgets[0], 0
        for j, b in enumerate(self.budgets):
            while b > edge:
                edge *= self.eta
                k += 1
            bucket[j] = k
        # Latest observation per (trial, bucket): sort by step descending, keep first of each pair.
        order = np.lexsort((-steps, rows))
        rows, steps = rows[order], steps[order]
        key = rows * (bucket.max() + 1) + bucket[steps]
        _, first = np.unique(key, return_index=True)
        rows, steps = rows[first], steps[first]
        if len(rows) <= cap:
            return rows, steps
        rng = np.random.default_rng([self.ctx.seed, self._n_obs])
        top = np.full(n, -1)
        np.maximum.at(top, rows, steps)
        tiebreak = rng.permutation(n)
        # Trials reaching higher steps first (random order among equals), within a trial higher steps first.
        order = np.lexsort((-steps, tiebreak[rows], -top[rows]))
        rows, steps = rows[order], steps[order]
        keep = np.zeros(len(rows), dtype=bool)
        keep[:cap] = True
        boundary = top[rows[cap - 1]]
        group = top[rows] == boundary
        if group[cap:].any():
            # The trials at the boundary do not all fit: refill their share at random, lowest steps dropped first.
            keep[group] = False
            room = cap - int(keep.sum())
            idx = np.flatnonzero(group)
            by_step = idx[np.lexsort((rng.permutation(len(idx)), -steps[idx]))]
            keep[by_step[:room]] = True
        return rows[keep], steps[keep]

    # --- model -----------------------------------------------------------------------------

    def _update_model(self) -> None:
        """Refit (from scratch, or a few warm-started steps) if due, and condition on the current data."""
        if self._n_obs == self._conditioned_on:
            return
        with stable_arithmetic():
            self._refit_and_condition()

    def _refit_and_condition(self) -> None:
        n = len(self._ids)
        rows, steps = self.training_set()
        scratch = self._n_obs >= self.scratch_growth * self._scratch_on
        grown = self._n_obs >= self.refit_growth * self._fitted_on
        due = self._refit_due and self._since_fit >= self.refit_every
        refit = scratch or grown or due
        if refit:
            observed = self._values[:n][~np.isnan(self._values[:n])]
            # float32 precision, like the fit's result: summation order may differ across CPUs
            self._scale = (float(np.float32(observed.mean())), float(np.float32(observed.std())) or 1.0)
        shift, scale = self._scale
        inputs = self._inputs(self._x[rows], self._values[rows], steps, shift, scale)
        y = torch.from_numpy((self._values[rows, steps] - shift) / scale)
        if refit:
            if scratch:
                self.model = DeepKernelGP(len(self.ctx.space), seed=self.ctx.seed)
                iterations = self.initial_iterations
                self._scratch_on = self._n_obs
            else:
                iterations = self.refit_iterations
            self.model.fit(inputs, y, iterations)
            self._fits += 1
            self._refit_due = False
            self._fitted_on = self._n_obs
            self._since_fit = 0
        self.model.condition(inputs, y)
        self._conditioned_on = self._n_obs

    def predict(self, configs: list[dict[str, Any]], budgets: list[int],
                curves: list[dict[int, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted metric (the metric's own units) at ``budgets``, given the values in ``curves`` below them."""
        self._update_model()
        shift, scale = self._scale
        x = np.stack([self._unit(c) for c in configs])
        values = np.full((len(configs), len(self.budgets)), np.nan)
        for i, curve in enumerate(curves):
            for r, v in curve.items():
                if r in self._step_of:
                    values[i, self._step_of[r]] = self._sign * v
        steps = np.array([self._step_of[b] for b in budgets])
        with stable_arithmetic():
            mean, std = self.model.predict(self._inputs(x, quantize(values), steps, shift, scale))
        return self._sign * (mean * scale + shift), std * scale

    def best_at(self, budget: int) -> float:
        """EI's incumbent for a candidate at ``budget`` (sign-flipped units): see :func:`incumbents`."""
        return float(incumbents(self._values[: len(self._ids)])[self._step_of[budget]])

    # --- decisions -------------------------------------------------------------------------

    def _fresh_units(self, n: int) -> np.ndarray:
        """``n`` uniform configs in the unit cube, snapped to what a config can hold (integers)."""
        z = self._rng.uniform(size=(n, len(self._names)))
        for i, p in enumerate(self.ctx.space):
            if p.integer:
                lo, span = p.to_psi(p.low), p.psi_range
                psi = lo + z[:, i] * span
                native = np.clip(np.round(np.exp(psi) if p.log else psi), p.low, p.high)
                z[:, i] = ((np.log(native) if p.log else native) - lo) / span
        return z

    def suggest(self) -> TrialSuggestion | None:
        if self._n_obs < self.n_initial:
            self.decisions.append({"trial_id": None, "budget": self.budgets[0], "rule": "random"})
            return self._start(sample_config(self.ctx, self._rng))
        n = len(self._ids)
        values = self._values[:n]
        last_step = np.where(np.isnan(values), -1, np.arange(len(self.budgets))[None, :]).max(axis=1)
        paused_mask = np.zeros(n, dtype=bool)
        paused_mask[[self._row[t] for t in self.paused]] = True
        if self.probability_sh > 0 and self._coin.uniform() < self.probability_sh:
            row = sh_promotion(values, last_step, paused_mask, self.eta)
            if row is not None:
                trial_id = self._ids[row]
                budget = self.budgets[last_step[row] + 1]
                self.decisions.append({"trial_id": trial_id, "budget": budget, "rule": "sh"})
                return self._resume(trial_id, budget)
        self._update_model()
        shift, scale = self._scale
        paused_rows = np.flatnonzero(paused_mask)
        n_fresh = max(self.n_candidates, len(paused_rows))
        z = self._fresh_units(n_fresh)
        x = np.concatenate([self._x[paused_rows], z])
        cand_values = np.concatenate([values[paused_rows], np.full((n_fresh, len(self.budgets)), np.nan)])
        steps = np.concatenate([last_step[paused_rows] + 1, np.zeros(n_fresh, dtype=np.int64)])
        with stable_arithmetic():
            mean, std = self.model.predict(self._inputs(x, cand_values, steps, shift, scale))
        best = (incumbents(values)[steps] - shift) / scale
        ei = expected_improvement(best, mean, std)
        i = int(np.argmax(ei))
        new = i >= len(paused_rows)
        trial_id = None if new else self._ids[paused_rows[i]]
        budget = self.budgets[steps[i]]
        record: dict[str, Any] = {"trial_id": trial_id, "budget": budget, "rule": "ei",
                                  "n_paused": len(paused_rows), "n_fresh": n_fresh}
        if self.trace:
            record.update({"candidates": [self._ids[r] for r in paused_rows] + [None] * n_fresh,
                           "budgets": [self.budgets[s] for s in steps], "mean": mean, "std": std,
                           "best": best, "ei": ei, "chosen": i})
        self.decisions.append(record)
        # The reference refits the model's parameters only after a new config won the previous decision.
        self._refit_due = self._refit_due or new
        self._since_fit += 1
        if new:
            config = sample_config(self.ctx, self._rng)
            config.update(self.ctx.space.from_unit(dict(zip(self._names, z[i - len(paused_rows)]))))
            return self._start(config)
        return self._resume(trial_id, budget)

    def _resume(self, trial_id: int, budget: int) -> TrialSuggestion:
        self.paused.discard(trial_id)
        self.target[trial_id] = budget
        config = dict(self.configs[trial_id])
        config[self.ctx.resource_attr] = budget
        return TrialSuggestion.resume_suggestion(trial_id, config)

    def _start(self, config: dict[str, Any]) -> TrialSuggestion:
        config = dict(config)
        config[self.ctx.resource_attr] = self.budgets[0]
        return TrialSuggestion.start_suggestion(config)

    def on_trial_add(self, trial: Trial) -> None:
        self.configs[trial.trial_id] = dict(trial.config)
        self.target[trial.trial_id] = int(trial.config.get(self.ctx.resource_attr, self.budgets[0]))
        self.curves[trial.trial_id] = {}
        self._add_row(trial.trial_id, trial.config)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        trial_id = trial.trial_id
        if self.ctx.metric not in result or self.ctx.resource_attr not in result:
            return SchedulerDecision.CONTINUE
        resource = int(result[self.ctx.resource_attr])
        self._record(trial_id, resource, self._sign * float(result[self.ctx.metric]))
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

    def best_trial(self) -> int | None:
        """The scheduler's choice: the best value at the highest budget any trial reached."""
        n = len(self._ids)
        if self._n_obs == 0:
            return None
        values = self._values[:n]
        j = int(np.flatnonzero((~np.isnan(values)).any(axis=0)).max())
        return self._ids[int(np.nanargmin(values[:, j]))]


def build(ctx: SchedulerContext, **kwargs: Any) -> DyHPO:
    """``options``: ``budget_step`` (default 1), ``n_candidates`` (fresh configs scored per decision
    at least, 64), ``max_fit_points`` (256), ``probability_sh`` (0.25), ``eta``
    (alias ``reduction_factor``, 3; the successive-halving quantile and the subsampling buckets)."""
    options = {**ctx.options, **kwargs}
    return DyHPO(ctx, budget_step=int(options.get("budget_step", 1)),
                 n_candidates=int(options.get("n_candidates", 64)),
                 max_fit_points=int(options.get("max_fit_points", 256)),
                 probability_sh=float(options.get("probability_sh", 0.25)),
                 reduction_factor=int(options.get("eta", options.get("reduction_factor", 3))))
