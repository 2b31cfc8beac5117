"""WikiText tasks: the real loader on every supported layout, the mini corpus and its conformance setup,
and the lookahead contract (the hyper-problem is the trial's own first steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.func import functional_call

from ohgw_bench import hypergrad, tasks
from ohgw_bench.errors import DataMissingError
from ohgw_bench.tasks import text_corpus, wikitext
from ohgw_bench.tasks.wikitext import WikiTextTask

SMALL = {"n_layer": 1, "n_embd": 32, "n_head": 2, "seq_len": 16, "batch_size": 4,
         "steps_per_unit": 2, "eval_tokens": 256, "device": "cpu"}

ARTICLE = [" ", " = Alpha Beta = ", " ", " Alpha beta gamma delta , epsilon @-@ zeta . ", " ",
           " = = History = = ", " ", " The <unk> river flows 3 @,@ 000 km north . ", " "]


def _tokens_text(n: int) -> str:
    return "".join(line + "\n" for _ in range(n) for line in ARTICLE)


def _write_tokens(root: Path, folder: str, ext: str, n: int = 8) -> dict[str, str]:
    (root / folder).mkdir(parents=True, exist_ok=True)
    texts = {}
    for split, reps in (("train", n), ("valid", 3), ("test", 2)):
        texts[split] = _tokens_text(reps)
        (root / folder / f"wiki.{split}.{ext}").write_text(texts[split], encoding="utf-8")
    return texts


def _hub_rows(n: int) -> list[str]:
    """Rows as the hub's parquet files hold them: one line each with its newline, blanks empty."""
    return ["" if line == " " else line + "\n" for _ in range(n) for line in ARTICLE]


def test_mini_corpus_is_wikitext_layout_and_loads_through_the_real_loader(tmp_path: Path) -> None:
    root = text_corpus.write_mini_corpus(tmp_path / "mini")
    train103 = (root / "wikitext-103" / "wiki.train.tokens").read_bytes()
    train2 = (root / "wikitext-2" / "wiki.train.tokens").read_bytes()
    assert train103.startswith(b" \n = ") and b" = = " in train103
    assert 100_000 < len(train2) < len(train103)
    for split in ("valid", "test"):
        assert (root / "wikitext-103" / f"wiki.{split}.tokens").read_bytes() == \
            (root / "wikitext-2" / f"wiki.{split}.tokens").read_bytes()
    stamp = (root / "SOURCE").stat().st_mtime_ns
    assert text_corpus.write_mini_corpus(root) == root and (root / "SOURCE").stat().st_mtime_ns == stamp

    task = tasks.make("wikitext2", data_dir=root, **SMALL)
    task.prepare()
    assert task.source is not None and task.source.builder == "text"
    assert bytes(task.data["train"].numpy()) == train2
    assert bytes(task.data["test"].numpy()) == (root / "wikitext-2" / "wiki.test.tokens").read_bytes()


def test_mini_corpus_is_written_on_demand_at_its_documented_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(text_corpus, "MINI_ROOT", tmp_path / "default-mini")
    monkeypatch.setattr(wikitext, "MINI_ROOT", tmp_path / "default-mini")
    by_option = tasks.make("wikitext103", corpus="mini", **SMALL)
    assert by_option.data_dir == tmp_path / "default-mini"
    by_path = tasks.make("wikitext103", data_dir=tmp_path / "default-mini", **SMALL)
    by_path.prepare()
    assert (tmp_path / "default-mini" / "wikitext-103" / "wiki.valid.tokens").is_file()
    elsewhere = tasks.make("wikitext103", data_dir=tmp_path / "empty", **SMALL)
    with pytest.raises(DataMissingError):
        elsewhere.prepare()


def test_mini_corpus_and_fixtures_are_labelled_apart_from_real_wikitext(tmp_path: Path, monkeypatch) -> None:
    """A study on the embedded text must not be filed as a WikiText-103 result (issue 20 item 10)."""
    monkeypatch.setattr(text_corpus, "MINI_ROOT", tmp_path / "default-mini")
    monkeypatch.setattr(wikitext, "MINI_ROOT", tmp_path / "default-mini")
    assert tasks.make("wikitext103", corpus="mini", **SMALL).id == "wikitext103-gpt2-v1-mini"
    assert tasks.make("wikitext2", data_dir=tmp_path / "default-mini", **SMALL).id == "wikitext2-gpt2-v1-mini"
    elsewhere = text_corpus.write_mini_corpus(tmp_path / "my-mini")
    assert tasks.make("wikitext103", data_dir=elsewhere, **SMALL).id == "wikitext103-gpt2-v1-mini"
    fixture = tasks.make("wikitext103", **WikiTextTask.conformance_setup(tmp_path / "fixture"))
    assert fixture.id == "wikitext103-gpt2-v1-mini"
    real = tmp_path / "real"
    _write_tokens(real, "wikitext-103", "tokens")
    task = tasks.make("wikitext103", data_dir=real, **SMALL)
    task.prepare()
    assert task.id == "wikitext103-gpt2-v1"


def test_tokens_layout_and_raw_preference(tmp_path: Path) -> None:
    tokens = _write_tokens(tmp_path, "wikitext-103", "tokens")
    raw = _write_tokens(tmp_path, "wikitext-103-raw", "raw", n=5)
    task = tasks.make("wikitext103", data_dir=tmp_path, **SMALL)
    assert bytes(task.data["train"].numpy()).decode() == tokens["train"]
    assert task.source is not None and task.source.description == "wikitext-103/wiki.*.tokens"
    raw_task = tasks.make("wikitext103", data_dir=tmp_path, raw=True, **SMALL)
    assert bytes(raw_task.data["train"].numpy()).decode() == raw["train"]
    assert bytes(raw_task.data["validation"].numpy()).decode() == raw["valid"]


@pytest.mark.parametrize("sharded", [True, False])
def test_hub_parquet_layout(tmp_path: Path, sharded: bool) -> None:
    config_dir = tmp_path / "wikitext" / "wikitext-2-raw-v1"
    rows = {"train": _hub_rows(8), "validation": _hub_rows(3), "test": _hub_rows(2)}
    for split, texts in rows.items():
        if sharded:
            halves = [texts[: len(texts) // 2], texts[len(texts) // 2:]]
            for i, part in enumerate(halves):
                path = config_dir / f"{split}-{i:05d}-of-00002.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.table({"text": part}), path)
        else:
            path = config_dir / split / "0000.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({"text": texts}), path)
    task = tasks.make("wikitext2", data_dir=tmp_path, **SMALL)
    task.prepare()
    assert task.source is not None and task.source.builder == "parquet"
    expected = "".join(r if r else "\n" for r in rows["train"])
    assert bytes(task.data["train"].numpy()).decode() == expected
    state = task.init_state(task.space.default_config(), 0)
    task.train(state, 1)
    metrics = task.evaluate(state)
    assert state.step == SMALL["steps_per_unit"]
    assert 1.0 < metrics["val_ppl"] < 256 * 1.5 and 1.0 < metrics["test_ppl"] < 256 * 1.5


def test_cli_study_end_to_end_on_a_hub_parquet_fixture(tmp_path: Path) -> None:
    """The design card's command shape (with --ohgw) on the hub's parquet layout."""
    from ohgw_bench import run

    config_dir = tmp_path / "data" / "wikitext" / "wikitext-103-v1"
    config_dir.mkdir(parents=True)
    for split, n in (("train", 12), ("validation", 3), ("test", 3)):
        pq.write_table(pa.table({"text": _hub_rows(n)}), config_dir / f"{split}-00000-of-00001.parquet")
    probe = tasks.make("wikitext103", data_dir=tmp_path / "data", **SMALL)
    budget = 6 * probe.cost(probe.space.default_config(), 0, 1)
    options = [x for k, v in SMALL.items() for x in ("--task-option", f"{k}={v}")]
    argv = ["--task", "wikitext103", "--scheduler", "asha", "--ohgw", "--data-dir", str(tmp_path / "data"),
            "--budget", str(budget), "--workers", "2", "--quiet",
            "--results-dir", str(tmp_path / "res"), "--task-option", "max_units=4", *options]
    assert run.main(argv) == 0
    reports = list((tmp_path / "res").rglob("reports.jsonl"))
    assert len(reports) == 1
    rows = [json.loads(line) for line in reports[0].read_text().splitlines()]
    values = [r["ohgw_metric"] for r in rows if r.get("ohgw_status") in ("ok", "paused", "stopped")]
    assert len(values) >= 3 and all(1.0 < v < 400 for v in values)


def test_missing_dataset_is_one_line_naming_the_layout(tmp_path: Path) -> None:
    task = tasks.make("wikitext103", data_dir=tmp_path / "nowhere", **SMALL)
    with pytest.raises(DataMissingError) as err:
        task.prepare()
    msg = str(err.value)
    assert "\n" not in msg and err.value.exit_code == 2
    for part in ("wikitext-103/wiki.{train,valid,test}.tokens", "wikitext-103-raw", "parquet", "wikitext-mini"):
        assert part in msg
    partial = tmp_path / "partial"
    _write_tokens(partial, "wikitext-2", "tokens")
    (partial / "wikitext-2" / "wiki.test.tokens").unlink()
    with pytest.raises(DataMissingError):
        tasks.make("wikitext2", data_dir=partial, **SMALL).prepare()


@pytest.mark.parametrize("task_id", ["wikitext103-gpt2-v1", "wikitext2-gpt2-v1"])
def test_conformance_setup_is_the_mini_corpus(tmp_path: Path, task_id: str) -> None:
    """What tests/test_conformance.py checks these tasks on: the mini corpus, a 2-step lookahead."""
    task = tasks.make(task_id, **WikiTextTask.conformance_setup(tmp_path))
    assert task.id == task_id + wikitext.MINI_SUFFIX and task.default_horizon == 2


@pytest.fixture(scope="module")
def small_task(tmp_path_factory: pytest.TempPathFactory) -> WikiTextTask:
    root = tmp_path_factory.mktemp("wt")
    _write_tokens(root, "wikitext-103", "tokens", n=20)
    task = tasks.make("wikitext103", data_dir=root, **SMALL)
    task.prepare()
    return task


def test_hyper_problem_is_the_trials_first_steps(small_task: WikiTextTask) -> None:
    """Running torch's AdamW on the problem's batches reproduces the trial's weights exactly."""
    task = small_task
    config = dict(task.space.default_config(), dropout=0.2, label_smoothing=0.1, lr=3e-3)
    problem = task.hyper_problem(config, seed=5, horizon=2)
    assert len(problem.train_batches) == 2 and set(problem.hyper) == set(wikitext.HYPER_NAMES)
    assert problem.optimizer.beta1 == "beta1" and problem.optimizer.weight_decay == "weight_decay"
    assert problem.extras["dropout"] == 0.2

    state = task.init_state(config, 5)
    state.model.train()
    task._step(state)
    task._step(state)

    model = problem.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], betas=(config["beta1"], wikitext.BETA2),
                            eps=wikitext.ADAM_EPS, weight_decay=config["weight_decay"])
    hp = {k: torch.tensor(v) for k, v in problem.hyper.items()}
    for batch in problem.train_batches:
        opt.zero_grad()
        problem.train_loss(model, batch, hp).backward()
        opt.step()
    for (name, a), b in zip(state.model.named_parameters(), model.parameters()):
        assert torch.equal(a, b), name

    split = task.hyper_problem(config, seed=5, horizon=2, split_batch=True)
    assert len(split.train_batches) == 1
    assert split.train_batches[0][0].shape[0] + split.val_batch[0].shape[0] == task.batch_size


def test_functional_call_gradients_and_dropout(small_task: WikiTextTask) -> None:
    task = small_task
    config = dict(task.space.default_config(), dropout=0.3)
    problem = task.hyper_problem(config, seed=1, horizon=2)
    model = problem.model
    model.train()
    params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}

    def forward(*inputs):
        return functional_call(model, params, inputs)

    x = problem.train_batches[0][0]
    assert torch.equal(forward(x), forward(x)) is False
    assert torch.equal(forward(x, False), forward(x, False))
    val_a = problem.val_loss(forward, problem.val_batch)
    model.eval()
    val_eval = problem.val_loss(model, problem.val_batch)
    model.train()
    assert torch.allclose(val_a, val_eval, atol=1e-6)

    eps = torch.tensor(0.05, requires_grad=True)
    hp = {"label_smoothing": eps}
    batch = problem.train_batches[0]
    first = problem.train_loss(forward, batch, hp)
    assert torch.equal(first, problem.train_loss(forward, batch, hp))
    (d_eps,) = torch.autograd.grad(first, eps, retain_graph=True)
    assert abs(float(d_eps)) > 1e-3
    grads = torch.autograd.grad(first, list(params.values()), create_graph=True)
    mixed = torch.autograd.grad(sum((g * g).sum() for g in grads), eps)[0]
    assert torch.isfinite(mixed) and float(mixed) != 0.0


def test_hyper_objective_is_deterministic_and_sees_dropout(small_task: WikiTextTask) -> None:
    config = small_task.space.default_config()
    objective, seconds = small_task.hyper_objective(config, seed=2)
    base = objective(config)
    assert seconds > 0 and base == objective(config)
    assert objective(dict(config, dropout=0.3)) != base


def test_cost_counts_flops_per_unit(small_task: WikiTextTask) -> None:
    f = small_task.flops()
    config = small_task.space.default_config()
    unit = (small_task.steps_per_unit * f["step"] + f["evaluate"]) / small_task.reference_flops_per_second
    assert small_task.cost(config, 0, 3) == pytest.approx(3 * unit)
    assert small_task.cost(dict(config, dropout=0.0, lr=0.02), 2, 5) == small_task.cost(config, 0, 3)
    assert f["step"] > 3 * f["val_batch_forward"] * 0.9


def test_engine_matches_finite_differences_of_the_trials_training(small_task: WikiTextTask) -> None:
    """In float64, the engine's k = 2 hyper-gradient equals central differences of J computed by
    ordinary torch AdamW training on the trial's own batches and dropout masks."""
    task = tasks.make("wikitext103", data_dir=small_task.data_dir, dtype="float64", **SMALL)
    config = dict(task.space.default_config(), lr=3e-3, label_smoothing=0.05)
    grad = hypergrad.hypergradient(task.hyper_problem(config, 0, 2), task.space, horizon=2)
    objective, _ = task.hyper_objective(config, 0)
    assert grad.value == pytest.approx(objective(config), rel=1e-10)
    for name in wikitext.HYPER_NAMES:
        h = 1e-6 * max(abs(config[name]), 1.0) if name != "lr" else 1e-6 * config[name]
        fd = (objective(dict(config, **{name: config[name] + h}))
              - objective(dict(config, **{name: config[name] - h}))) / (2 * h)
        assert grad.native[name] == pytest.approx(fd, rel=1e-3, abs=1e-7), name
