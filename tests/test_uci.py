"""The UCI tabular suite: every bundled set x model's metrics and space, the CSV loader, resumption.

The bundled sets' conformance checks run in tests/test_conformance.py, with every registered task;
the CSV tasks here (a user's own files) run them too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ohgw_bench import tasks
from ohgw_bench.errors import DataMissingError, UserError
from ohgw_bench.tasks.uci_data import BUNDLED
from ohgw_bench.testing import check_task

torch.set_num_threads(1)


def write_toy_classification(root: Path, name: str = "toy", sidecar: str | None = None) -> None:
    """A small UCI-style CSV: an id to drop, a text feature, a '?' missing value, string labels."""
    rng = np.random.default_rng(0)
    n = 90
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    label = np.where(a + 0.5 * (colour == "red") > 0, "yes", "no")
    lines = ["id,a,b,colour,label"]
    for i in range(n):
        b_txt = "?" if i == 7 else f"{b[i]:.4f}"
        lines.append(f"{i},{a[i]:.4f},{b_txt},{colour[i]},{label[i]}")
    (root / "uci").mkdir(parents=True, exist_ok=True)
    (root / "uci" / f"{name}.csv").write_text("\n".join(lines) + "\n")
    text = sidecar if sidecar is not None else json.dumps(
        {"target": "label", "task": "classification", "drop": ["id"]})
    (root / "uci" / f"{name}.json").write_text(text)


def write_toy_regression(root: Path, name: str = "reg") -> None:
    """Semicolon-separated CSV with a YAML sidecar that also sets tau."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3))
    y = 10 + 3 * x[:, 0] - 2 * x[:, 1] + rng.normal(scale=0.1, size=80)
    lines = ["x0;x1;x2;target"] + [f"{r[0]:.4f};{r[1]:.4f};{r[2]:.4f};{t:.4f}" for r, t in zip(x, y)]
    (root / "uci").mkdir(parents=True, exist_ok=True)
    (root / "uci" / f"{name}.csv").write_text("\n".join(lines) + "\n")
    (root / "uci" / f"{name}.yaml").write_text("target: target\ntask: regression\ntau: 1.5\nsep: ';'\n")


BUNDLED_IDS = [f"uci-{ds}-{m}-v1" for ds in BUNDLED for m in ("mlp", "xgb")]


@pytest.mark.parametrize("task_id", BUNDLED_IDS)
def test_bundled_metrics_and_space(task_id: str, tmp_path: Path) -> None:
    _, entry, _ = tasks.resolve(task_id)
    cls = tasks._load(entry)
    task = tasks.make(task_id, **cls.conformance_setup(tmp_path))
    assert task.id == task_id
    regression = "diabetes" in task_id
    assert (task.metric, task.test_metric) == (("val_rmse", "test_rmse") if regression else ("val_error", "test_error"))
    assert ("label_smoothing" in task.space) == (task_id.endswith("mlp-v1") and not regression)


@pytest.mark.parametrize("model", ["mlp", "xgb"])
def test_csv_classification_through_real_loader(model: str, tmp_path: Path) -> None:
    write_toy_classification(tmp_path)
    task = tasks.make(f"uci-toy-{model}", data_dir=tmp_path)
    assert task.id == f"uci-toy-{model}-v1"
    task.prepare()
    data = task.data
    assert data.kind == "classification" and data.classes == ["no", "yes"]
    assert data.feature_names == ["a", "b", "colour_blue", "colour_green", "colour_red"]
    assert data.n("train") + data.n("val") + data.n("test") == 90
    assert abs(data.n("val") - 18) <= 1 and abs(data.n("test") - 18) <= 1
    assert np.all(np.isfinite(data.x["train"])) and np.allclose(data.x["train"].mean(0), 0, atol=0.2)
    assert task.tau == pytest.approx(0.5 * data.trivial_score("val"))
    check_task(task)


@pytest.mark.parametrize("model", ["mlp", "xgb"])
def test_csv_regression_yaml_sidecar(model: str, tmp_path: Path) -> None:
    write_toy_regression(tmp_path)
    task = tasks.make(f"uci-reg-{model}", data_dir=tmp_path)
    assert (task.metric, task.test_metric, task.tau) == ("val_rmse", "test_rmse", 1.5)
    state = task.init_state(task.space.default_config(), 0)
    task.train(state, 40)
    rmse = task.evaluate(state)["val_rmse"]
    assert rmse < 0.5 * task.data.trivial_score("val")
    check_task(task)


def test_split_fixed_by_split_seed(tmp_path: Path) -> None:
    write_toy_classification(tmp_path)
    a = tasks.make("uci-toy-xgb", data_dir=tmp_path).data
    b = tasks.make("uci-toy-xgb", data_dir=tmp_path).data
    c = tasks.make("uci-toy-xgb", data_dir=tmp_path, split_seed=1).data
    assert np.array_equal(a.x["val"], b.x["val"])
    assert not np.array_equal(a.x["val"], c.x["val"])
    for d in (a, c):
        assert np.abs(np.bincount(d.y["val"]) - np.bincount(d.y["test"])).max() <= 1


@pytest.mark.parametrize("broken, fragment", [
    ("{not json", "cannot parse it"),
    ('["label"]', "must hold a mapping"),
    ('{"task": "classification"}', "'target' must name"),
    ('{"target": "label", "task": "clustering"}', "'task' must be"),
    ('{"target": "label", "task": "classification", "colour": 1}', "unknown keys"),
    ('{"target": "label", "task": "classification", "tau": "low"}', "'tau' must be a number"),
])
def test_malformed_sidecar_is_one_clear_line(tmp_path: Path, broken: str, fragment: str) -> None:
    write_toy_classification(tmp_path, sidecar=broken)
    with pytest.raises(UserError) as info:
        tasks.make("uci-toy-mlp", data_dir=tmp_path)
    msg = str(info.value)
    assert fragment in msg and str(tmp_path / "uci" / "toy.json") in msg and '"target"' in msg
    assert "\n" not in msg and info.value.exit_code == 2


def test_sidecar_column_missing_from_csv(tmp_path: Path) -> None:
    write_toy_classification(tmp_path, sidecar='{"target": "class", "task": "classification"}')
    task = tasks.make("uci-toy-xgb", data_dir=tmp_path)
    with pytest.raises(UserError, match=r"lacks the columns \['class'\]") as info:
        task.prepare()
    assert "\n" not in str(info.value)


def test_missing_csv_and_missing_sidecar(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as info:
        tasks.make("uci-absent-mlp", data_dir=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "uci" / "absent.csv") in msg and "absent.json" in msg and '"task"' in msg
    assert "\n" not in msg and info.value.exit_code == 2
    write_toy_classification(tmp_path)
    (tmp_path / "uci" / "toy.json").unlink()
    with pytest.raises(DataMissingError, match="has no sidecar") as info:
        tasks.make("uci-toy-xgb", data_dir=tmp_path)
    assert str(tmp_path / "uci" / "toy.json") in str(info.value)


def test_xgb_resume_is_bit_identical_with_subsampling(tmp_path: Path) -> None:
    task = tasks.make("uci-wine-xgb")
    config = {**task.space.default_config(), "subsample": 0.6}
    straight = task.init_state(config, 4)
    task.train(straight, 12)
    paused = task.init_state(config, 4)
    task.train(paused, 5)
    task.save(paused, tmp_path / "ckpt")
    resumed = task.load(tmp_path / "ckpt")
    assert resumed.fidelity == 5 and resumed.config == config
    task.train(resumed, 12)
    assert bytes(resumed.booster.save_raw("json")) == bytes(straight.booster.save_raw("json"))
    other = task.init_state(config, 5)
    task.train(other, 12)
    assert bytes(other.booster.save_raw("json")) != bytes(straight.booster.save_raw("json"))


def test_xgb_hyper_objective_and_cost() -> None:
    task = tasks.make("uci-breast_cancer-xgb")
    config = task.space.default_config()
    objective, seconds = task.hyper_objective(config, 3)
    assert task.fd_rounds == 8
    assert seconds == pytest.approx(task.cost(config, 0, task.fd_rounds))
    value = objective(config)
    assert value == objective(config) and 0 < value < np.log(2)
    assert objective({"eta": 0.05}) > value
    assert objective({"subsample": 0.7}) != value
    deep = {**config, "max_depth": 10}
    assert task.cost(deep, 0, 10) > task.cost(config, 0, 10) > 10 * task.cost(config, 3, 4)
    assert task.cost(config, 2, 12) == pytest.approx(10 * task.cost(config, 3, 4))


def test_mlp_resume_with_dropout_is_bit_identical(tmp_path: Path) -> None:
    task = tasks.make("uci-iris-mlp")
    config = {**task.space.default_config(), "dropout": 0.3, "label_smoothing": 0.1}
    straight = task.init_state(config, 2)
    task.train(straight, 4)
    paused = task.init_state(config, 2)
    task.train(paused, 1)
    task.save(paused, tmp_path / "ckpt")
    resumed = task.load(tmp_path / "ckpt")
    task.train(resumed, 4)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_mlp_hyper_problem_is_the_trials_start() -> None:
    task = tasks.make("uci-breast_cancer-mlp")
    config = {**task.space.default_config(), "label_smoothing": 0.1, "dropout": 0.2}
    problem = task.hyper_problem(config, seed=5, horizon=2)
    state = task.init_state(config, 5)
    for a, b in zip(problem.model.parameters(), state.model.parameters()):
        assert torch.equal(a, b)
    first = task._epoch_batches(torch.Generator().manual_seed(6))[:2]
    assert all(torch.equal(p[0], f[0]) and torch.equal(p[2], f[2]) for p, f in zip(problem.train_batches, first))
    assert set(problem.hyper) == set(task.space.names)
    hp = {k: torch.tensor(v, requires_grad=True) for k, v in problem.hyper.items()}
    loss = problem.train_loss(problem.model, problem.train_batches[0], hp)
    loss.backward()
    assert hp["label_smoothing"].grad is not None and hp["label_smoothing"].grad != 0
    assert hp["dropout"].grad is None
    split = task.hyper_problem(config, seed=5, horizon=1, split_batch=True)
    assert len(split.train_batches[0][0]) == len(split.val_batch[0]) == 16


def test_mlp_hyper_objective_covers_dropout() -> None:
    task = tasks.make("uci-diabetes-mlp")
    config = task.space.default_config()
    objective, seconds = task.hyper_objective(config, 1)
    assert seconds > 0
    value = objective(config)
    assert value == objective(config)
    assert objective({"dropout": 0.4}) != value


def test_regression_metrics_in_target_units() -> None:
    task = tasks.make("uci-diabetes-mlp")
    state = task.init_state(task.space.default_config(), 0)
    task.train(state, 10)
    metrics = task.evaluate(state)
    trivial = task.data.trivial_score("val")
    assert 40 < metrics["val_rmse"] < trivial and metrics["val_loss"] < 1.0
