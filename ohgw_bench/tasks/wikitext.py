"""wikitext103 / wikitext2: a GPT-2-style causal language model trained with AdamW.

The model is a ``transformers`` GPT-2 built from a :class:`~transformers.GPT2Config` with
random weights (nothing from the hub), small by default so that it trains on a CPU:
2 layers, 4 heads, width 128, context 128, batch 16 sequences (0.45M parameters, about
6 GFLOPs per training step). Every size is an option, and ``dtype="float64"`` serves gradient checks.

Tokenizer: byte-level (UTF-8 bytes, vocabulary 256), so it needs no download, no training and
no cache; perplexities are therefore per byte, not per word as in the WikiText paper.

Data: read through the ``datasets`` library from local files only (the offline flags are set
before ``datasets`` or ``transformers`` is imported). Under ``<data-dir>`` the first of these
that exists is used (``raw=True`` puts the raw flavour first):

- ``wikitext-103/wiki.{train,valid,test}.tokens`` (the original archive's layout);
- ``wikitext-103-raw/wiki.{train,valid,test}.raw``;
- the hub's parquet layout of ``Salesforce/wikitext``:
  ``wikitext/wikitext-103-v1/{train,validation,test}-*.parquet`` (or ``-raw-v1``; the
  ``<config>/<split>/*.parquet`` layout of the hub's parquet branch and the ``<config>`` folders
  directly under ``<data-dir>`` are accepted too).

``wikitext-2`` likewise. The embedded mini corpus (:mod:`ohgw_bench.tasks.text_corpus`) is
written in the first layout and read through the same code: pass ``corpus="mini"``, or point
``--data-dir`` at ``~/.cache/ohgw_bench/data/wikitext-mini`` (written on first use). A study on
the mini corpus, or on a conformance fixture cut from it, is labelled with the suffix ``-mini``
(``wikitext103-gpt2-v1-mini``: task id, result folder and report), so it is never mistaken for
a run on real WikiText; the command line still takes ``wikitext103``.

Search space: log lr, log weight decay, beta1 and label smoothing have a pathwise derivative
through the AdamW lookahead (label smoothing is written out as (1 - eps) CE + eps
mean_k(-log p_k) with eps a tensor); dropout has none (``grad="finite_difference"``), so the
autograd warm-start leaves it unchanged and its record lists it under ``left_unchanged``
with the reason (``ohgw_bench/warmstart.py``); only the fallback to finite differences, taken
when the lookahead fails, moves it (``hyper_objective``, fixed dropout masks). The learning rate is constant (no warm-up,
no decay), so the lookahead's first steps are exactly the trial's first steps. Dropout masks
are drawn from a generator seeded by (seed, step), so training is reproducible, resumes
bit-identically, and the lookahead sees the trial's own masks.

Fidelity: units of ``steps_per_unit`` AdamW steps (default 20 steps; 1..27 units). Metric:
validation perplexity (per byte) on the first ``eval_tokens`` bytes of the validation split in
non-overlapping windows, dropout off; test perplexity likewise. A diverged trial counts as
the uniform byte model (perplexity 256). The default threshold tau = 13 is calibrated on the
mini corpus (the default model reaches about 12 in 27 units); pass ``--tau`` for real WikiText.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.errors import UserError
from ohgw_bench.hypergrad import AdamW, HyperProblem
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity, Task
from ohgw_bench.tasks.common import smoothed_cross_entropy, units_cost
from ohgw_bench.tasks.text_corpus import (
    MINI_ROOT,
    holds_mini_corpus,
    is_mini_root,
    write_mini_corpus,
)

VOCAB = 256
VARIANTS = {"wikitext103": "103", "wikitext2": "2"}
#: appended to the task id of a study on the embedded mini corpus or a fixture cut from it
MINI_SUFFIX = "-mini"
SPLIT_FILES = {"train": "train", "validation": "valid", "test": "test"}
HYPER_NAMES = ("lr", "weight_decay", "beta1", "label_smoothing")
BETA2 = 0.999
ADAM_EPS = 1e-8


def _offline() -> None:
    """Without these flags a missing file costs 20-45 s of hub retries before failing."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class Source:
    """Where a variant's text was found: the datasets builder and its files per split."""

    builder: str
    files: dict[str, list[str]]
    description: str


def find_source(data_dir: Path, variant: str, raw: bool = False) -> Source | None:
    """The first of the supported layouts under ``data_dir`` that has all three splits."""
    n = VARIANTS[variant]
    token_dirs = [(f"wikitext-{n}", "tokens"), (f"wikitext-{n}-raw", "raw")]
    hub_configs = [f"wikitext-{n}-v1", f"wikitext-{n}-raw-v1"]
    if raw:
        token_dirs.reverse()
        hub_configs.reverse()
    candidates: list[Source] = []
    for folder, ext in token_dirs:
        files = {split: [str(data_dir / folder / f"wiki.{name}.{ext}")] for split, name in SPLIT_FILES.items()}
        candidates.append(Source("text", files, f"{folder}/wiki.*.{ext}"))
    for config in hub_configs:
        for base in (data_dir / "wikitext" / config, data_dir / config):
            files = {}
            for split in SPLIT_FILES:
                found = sorted(base.glob(f"{split}-*.parquet")) or sorted(base.glob(f"{split}/*.parquet"))
                files[split] = [str(p) for p in found]
            candidates.append(Source("parquet", files, f"{base.relative_to(data_dir)} (parquet)"))
    for source in candidates:
        if all(files and all(Path(f).is_file() for f in files) for files in source.files.values()):
            return source
    return None


def load_bytes(source: Source) -> dict[str, torch.Tensor]:
    """Each split as one uint8 tensor of UTF-8 bytes (lines joined by newlines), via ``datasets``."""
    _offline()
    import datasets

    bars_on = datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(source.builder, data_files=source.files)
    finally:
        if bars_on:
            datasets.enable_progress_bars()
    out = {}
    for split in SPLIT_FILES:
        lines = ds[split].data.column("text").to_pylist()
        text = "\n".join(line.rstrip("\n") for line in lines) + "\n"
        out[split] = torch.from_numpy(np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy())
    return out


class CausalLM(nn.Module):
    """A GPT-2 LM head model that maps input ids to logits (a plain tensor).

    ``forward(ids, dropout=False)`` switches dropout off for that call only, which is how the
    validation loss of the lookahead stays dropout-free while the engine runs the module in
    train mode through ``torch.func.functional_call``.
    """

    def __init__(self, n_layer: int, n_embd: int, n_head: int, seq_len: int, dropout: float, seed: int):
        super().__init__()
        _offline()
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(vocab_size=VOCAB, n_positions=seq_len, n_embd=n_embd, n_layer=n_layer,
                            n_head=n_head, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                            bos_token_id=None, eos_token_id=None, use_cache=False)
        config._attn_implementation = "eager"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.lm = GPT2LMHeadModel(config)

    def forward(self, input_ids: torch.Tensor, dropout: bool = True) -> torch.Tensor:
        if dropout or not self.training:
            return self.lm(input_ids=input_ids, use_cache=False).logits
        self.lm.eval()
        try:
            return self.lm(input_ids=input_ids, use_cache=False).logits
        finally:
            self.lm.train()


def _perplexity(loss: float) -> float:
    """exp(loss); a diverged model gives inf (or nan), not an OverflowError."""
    return math.exp(loss) if not loss > 700 else math.inf


def _dropout_seed(seed: int, step: int) -> int:
    return ((seed % 2**31) << 32) | (step % 2**32)


@dataclass
class WikiTextState:
    config: dict[str, Any]
    seed: int
    model: CausalLM
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0
    fidelity: int = 0


class WikiTextTask(Task):
    """WikiText-103 or WikiText-2, byte-level GPT-2-style LM, AdamW; fidelity = units of steps."""

    id = "wikitext103-gpt2-v1"
    description = "WikiText token files or hub parquet, GPT-2-style LM (random init), AdamW"
    metric = "val_ppl"
    mode = "min"
    test_metric = "test_ppl"
    tau = 13.0
    worst_metric = float(VOCAB)
    hypergrad_method = "autograd"
    default_horizon = 2
    default_budget = 1200.0
    reference_flops_per_second = 2e10

    def __init__(self, data_dir: Any = None, variant: str = "wikitext103", corpus: str = "wikitext",
                 raw: bool = False, n_layer: int = 2, n_embd: int = 128, n_head: int = 4,
                 seq_len: int = 128, batch_size: int = 16, steps_per_unit: int = 20,
                 max_units: int = 27, eval_tokens: int = 16384, dtype: str = "float32",
                 device: str | None = None):
        if variant not in VARIANTS:
            raise UserError(f"wikitext variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        if corpus not in ("wikitext", "mini"):
            raise UserError(f"wikitext corpus must be 'wikitext' or 'mini', got {corpus!r}")
        if dtype not in ("float32", "float64"):
            raise UserError(f"wikitext dtype must be 'float32' or 'float64', got {dtype!r}")
        if n_embd % n_head:
            raise UserError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        if corpus == "mini" and data_dir is None:
            data_dir = MINI_ROOT
        super().__init__(data_dir, variant=variant, corpus=corpus, raw=raw, n_layer=n_layer,
                         n_embd=n_embd, n_head=n_head, seq_len=seq_len, batch_size=batch_size,
                         steps_per_unit=steps_per_unit, max_units=max_units, eval_tokens=eval_tokens,
                         dtype=dtype)
        self.label_suffix = MINI_SUFFIX if corpus == "mini" or holds_mini_corpus(self.data_dir) else ""
        self.id = f"{variant}-gpt2-v1{self.label_suffix}"
        self.variant = variant
        self.corpus = corpus
        self.raw = raw
        self.n_layer, self.n_embd, self.n_head = n_layer, n_embd, n_head
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.steps_per_unit = steps_per_unit
        self.max_units = max_units
        self.eval_tokens = eval_tokens
        self.dtype = getattr(torch, dtype)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.source: Source | None = None
        self._data: dict[str, torch.Tensor] | None = None
        self._flops: dict[str, float] = {}

    @property
    def space(self) -> SearchSpace:
        return SearchSpace([
            Hyperparameter("lr", 1e-4, 3e-2, 1e-3, log=True, prior=1.0),
            Hyperparameter("weight_decay", 1e-5, 0.3, 0.01, log=True),
            Hyperparameter("beta1", 0.5, 0.99, 0.9),
            Hyperparameter("dropout", 0.0, 0.3, 0.1, grad="finite_difference"),
            Hyperparameter("label_smoothing", 0.0, 0.2, 0.0),
        ])

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("units", 1, self.max_units, f"{self.steps_per_unit} AdamW steps")

    def _layout(self) -> str:
        n = VARIANTS[self.variant]
        return (f"wikitext-{n}/wiki.{{train,valid,test}}.tokens, wikitext-{n}-raw/wiki.{{train,valid,test}}.raw "
                f"or the hub's parquet files wikitext/wikitext-{n}[-raw]-v1/{{train,validation,test}}-*.parquet "
                f"(for the embedded mini corpus use --data-dir {MINI_ROOT})")

    def prepare(self) -> None:
        if self._data is not None:
            return
        if self.corpus == "mini" or is_mini_root(self.data_dir):
            write_mini_corpus(self.data_dir)
        source = find_source(self.data_dir, self.variant, self.raw)
        if source is None:
            raise self.data_missing(f"{self.variant} text", self._layout())
        data = load_bytes(source)
        for split, tokens in data.items():
            needed = self.seq_len + 1
            if len(tokens) < needed:
                raise UserError(f"task {self.id}: the {split} split of {source.description} under "
                                f"{self.data_dir} has {len(tokens)} bytes, fewer than seq_len + 1 = {needed}")
        self.source = source
        self._data = data

    @property
    def data(self) -> dict[str, torch.Tensor]:
        self.prepare()
        assert self._data is not None
        return self._data

    def _model(self, config: Mapping[str, Any], seed: int) -> CausalLM:
        model = CausalLM(self.n_layer, self.n_embd, self.n_head, self.seq_len, float(config["dropout"]), seed)
        return model.to(device=self.device, dtype=self.dtype)

    def init_state(self, config: Mapping[str, Any], seed: int) -> WikiTextState:
        config = dict(config)
        model = self._model(config, seed)
        opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], betas=(config["beta1"], BETA2),
                                eps=ADAM_EPS, weight_decay=config["weight_decay"])
        return WikiTextState(config, seed, model, opt, torch.Generator().manual_seed(seed + 1))

    def _batch(self, gen: torch.Generator, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Random windows of the training bytes (offsets from the trial's generator)."""
        tokens = self.data["train"]
        offsets = torch.randint(0, len(tokens) - self.seq_len, (self.batch_size,), generator=gen)
        chunk = tokens[offsets[:, None] + torch.arange(self.seq_len + 1)].long().to(self.device)
        return chunk[:, :-1], chunk[:, 1:], _dropout_seed(seed, step)

    def _first_batches(self, seed: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        gen = torch.Generator().manual_seed(seed + 1)
        return [self._batch(gen, seed, step) for step in range(n)]

    @staticmethod
    def train_loss(forward: Callable[..., torch.Tensor], batch: tuple[Any, ...],
                   hp: Mapping[str, Any]) -> torch.Tensor:
        """Smoothed next-byte loss; the dropout masks are fixed by the batch's seed."""
        x, y, dropout_seed = batch
        devices = [x.device] if x.device.type != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=x.device.type):
            torch.manual_seed(dropout_seed)
            logits = forward(x)
        return smoothed_cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), hp["label_smoothing"])

    @staticmethod
    def val_loss(forward: Callable[..., torch.Tensor], batch: tuple[Any, ...]) -> torch.Tensor:
        """Plain next-byte cross-entropy, dropout off."""
        x, y = batch[0], batch[1]
        logits = forward(x, False)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def _step(self, state: WikiTextState) -> None:
        batch = self._batch(state.generator, state.seed, state.step)
        state.optimizer.zero_grad(set_to_none=True)
        self.train_loss(state.model, batch, state.config).backward()
        state.optimizer.step()
        state.step += 1

    def train(self, state: WikiTextState, fidelity: int) -> None:
        state.model.train()
        while state.fidelity < fidelity:
            for _ in range(self.steps_per_unit):
                self._step(state)
            state.fidelity += 1

    def _windows(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.data[split]
        n = min(self.eval_tokens, len(tokens) - 1) // self.seq_len
        used = tokens[: n * self.seq_len + 1].long()
        return used[:-1].view(n, self.seq_len), used[1:].view(n, self.seq_len)

    def _nll(self, model: CausalLM, split: str) -> float:
        x, y = self._windows(split)
        total = 0.0
        for i in range(0, len(x), self.batch_size):
            xb, yb = x[i:i + self.batch_size].to(self.device), y[i:i + self.batch_size].to(self.device)
            logits = model(xb, False)
            total += float(F.cross_entropy(logits.reshape(-1, VOCAB), yb.reshape(-1), reduction="sum"))
        return total / y.numel()

    def evaluate(self, state: WikiTextState) -> dict[str, float]:
        state.model.eval()
        with torch.no_grad():
            val, test = self._nll(state.model, "validation"), self._nll(state.model, "test")
        state.model.train()
        return {self.metric: _perplexity(val), self.test_metric: _perplexity(test), "val_loss": val,
                "val_bits_per_byte": val / math.log(2), "steps": float(state.step)}

    def save(self, state: WikiTextState, path: Path) -> None:
        torch.save({"config": state.config, "seed": state.seed, "fidelity": state.fidelity,
                    "step": state.step, "model": state.model.state_dict(),
                    "optimizer": state.optimizer.state_dict(), "generator": state.generator.get_state()}, path)

    def load(self, path: Path) -> WikiTextState:
        blob = torch.load(path, weights_only=False, map_location=self.device)
        state = self.init_state(blob["config"], blob["seed"])
        state.model.load_state_dict(blob["model"])
        state.optimizer.load_state_dict(blob["optimizer"])
        state.generator.set_state(blob["generator"])
        state.fidelity = blob["fidelity"]
        state.step = blob["step"]
        return state

    def flops(self) -> dict[str, float]:
        """FLOPs of one training step and of one evaluation (val + test), counted once per shape.

        Dropout and the optimiser update are element-wise and do not count, so the numbers do
        not depend on the config.
        """
        if not self._flops:
            from ohgw_bench.cost import count_flops

            config = self.space.default_config()
            model = self._model(config, 0)
            model.train()
            batch = self._first_batches(0, 1)[0]
            step = count_flops(lambda: self.train_loss(model, batch, config).backward())
            with torch.no_grad():
                window = count_flops(lambda: model(batch[0][:1], False))
            windows = sum(len(self._windows(s)[0]) for s in ("validation", "test"))
            val_batch = count_flops(lambda: self.val_loss(model, batch))
            self._flops = {"step": step, "evaluate": window * windows, "val_batch_forward": val_batch}
        return self._flops

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        f = self.flops()
        unit = self.steps_per_unit * f["step"] + f["evaluate"]
        return units_cost(start, stop, unit, self.reference_flops_per_second)

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int,
                      split_batch: bool = False) -> HyperProblem:
        """The trial's own w0, first batches and dropout masks; V = the first validation windows.

        With ``split_batch`` the first batch's second half of sequences is V and its first half
        the single lookahead batch.
        """
        if split_batch:
            x, y, dropout_seed = self._first_batches(seed, 1)[0]
            half = len(x) // 2
            train = [(x[:half], y[:half], dropout_seed)]
            val: tuple[torch.Tensor, ...] = (x[half:], y[half:])
        else:
            train = self._first_batches(seed, horizon)
            vx, vy = self._windows("validation")
            val = (vx[:self.batch_size].to(self.device), vy[:self.batch_size].to(self.device))
        return HyperProblem(
            model=self._model(config, seed),
            train_batches=train,
            val_batch=val,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            optimizer=AdamW(lr="lr", beta1="beta1", beta2=BETA2, eps=ADAM_EPS, weight_decay="weight_decay"),
            hyper={n: float(config[n]) for n in HYPER_NAMES},
            extras={"dropout": float(config["dropout"]), "tokens_per_batch": int(train[0][0].numel())},
        )

    def hyper_objective(self, config: Mapping[str, Any],
                        seed: int) -> tuple[Callable[[Mapping[str, Any]], float], float]:
        """Validation loss after the trial's first ``default_horizon`` AdamW steps, fixed batches and masks.

        The finite-difference path for dropout: the same lookahead as :meth:`hyper_problem`
        run as ordinary training, so J(config) is a deterministic function of the config.
        """
        horizon = self.default_horizon
        batches = self._first_batches(seed, horizon)
        vx, vy = self._windows("validation")
        val = (vx[:self.batch_size].to(self.device), vy[:self.batch_size].to(self.device))

        def objective(cfg: Mapping[str, Any]) -> float:
            model = self._model(cfg, seed)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(cfg["beta1"], BETA2),
                                    eps=ADAM_EPS, weight_decay=cfg["weight_decay"])
            for batch in batches:
                opt.zero_grad(set_to_none=True)
                self.train_loss(model, batch, cfg).backward()
                opt.step()
            with torch.no_grad():
                return float(self.val_loss(model, val))

        f = self.flops()
        seconds = (horizon * f["step"] + f["val_batch_forward"]) / self.reference_flops_per_second
        return objective, seconds

    @classmethod
    def conformance_setup(cls, tmp_dir: Path) -> dict[str, Any]:
        """A few kB of the mini corpus in both variants' .tokens layout, and a 1-layer model."""
        from ohgw_bench.tasks.text_corpus import SPLITS, corpus_splits, stamp_excerpt

        tmp_dir = Path(tmp_dir)
        for folder, files in corpus_splits().items():
            (tmp_dir / folder).mkdir(parents=True, exist_ok=True)
            for split in SPLITS:
                (tmp_dir / folder / f"wiki.{split}.tokens").write_text(files[split][:6000], encoding="utf-8")
        stamp_excerpt(tmp_dir)
        return {"data_dir": tmp_dir, "n_layer": 1, "n_embd": 32, "n_head": 2, "seq_len": 32,
                "batch_size": 4, "steps_per_unit": 2, "eval_tokens": 512, "device": "cpu"}
