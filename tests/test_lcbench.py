"""The LCBench surrogate family (ohgw_bench/tasks/lcbench.py): values, bounds, gradient, bad input, CLI.

The reference for values is onnxruntime called directly with the input layout of
``ohgw_bench/data/lcbench/SOURCE.md`` (x_cat int32 [n, 1] from encoding.json; x_cont float32
[n, 8] = epoch, batch_size, learning_rate, momentum, weight_decay, num_layers, max_units,
max_dropout, raw), not the task's own helpers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ohgw_bench import run, tasks
from ohgw_bench.tasks import lcbench

ort = pytest.importorskip("onnxruntime")
DATA = Path(lcbench.__file__).resolve().parent.parent / "data" / "lcbench"
SOURCE_COLUMNS = ["epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units",
                  "max_dropout"]


def _config_space() -> dict[str, dict]:
    return {hp["name"]: hp for hp in json.loads((DATA / "config_space.json").read_text())["hyperparameters"]}


def _direct(task_id: str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(DATA / "model.onnx"), providers=["CPUExecutionProvider"])
    code = json.loads((DATA / "encoding.json").read_text())["OpenML_task_id"][task_id]
    return session.run(None, {"x_cat": np.full((len(x), 1), code, dtype=np.int32),
                              "x_cont": np.asarray(x, dtype=np.float32)})[0]


def test_registry_holds_the_34_ids_of_the_config_space() -> None:
    ids = _config_space()["OpenML_task_id"]["choices"]
    assert len(ids) == 34 and tuple(ids) == tasks.LCBENCH_IDS
    for tid in ids:
        assert f"lcbench-{tid}-v1" in tasks.registry
    assert tasks.resolve("lcbench")[0] == f"lcbench-{tasks.LCBENCH_DEFAULT_ID}-v1"
    assert "lcbench-3945-v1" in run.list_tasks()


def test_bounds_and_types_match_config_space_json() -> None:
    cs = _config_space()
    task = tasks.make("lcbench-3945-v1")
    assert task.fidelity.name == "epoch"
    assert (task.fidelity.min, task.fidelity.max) == (cs["epoch"]["lower"], cs["epoch"]["upper"]) == (1, 52)
    assert sorted(task.space.names) == sorted(n for n in cs if n not in ("OpenML_task_id", "epoch"))
    for p in task.space:
        hp = cs[p.name]
        assert p.integer == (hp["type"] == "uniform_int"), p.name
        assert p.log == hp["log"], p.name
        assert math.isclose(p.low, hp["lower"], rel_tol=1e-9) and math.isclose(p.high, hp["upper"], rel_tol=1e-9)
        assert math.isclose(p.default, hp["default"], rel_tol=1e-6), p.name
    assert task.space.movable("surrogate") == ["learning_rate", "momentum", "weight_decay", "max_dropout"]


def test_values_equal_direct_onnxruntime_200_configs_x_5_epochs() -> None:
    task = tasks.make("lcbench-167168-v1")
    rng = np.random.default_rng(5)
    configs = [task.space.sample(rng) for _ in range(200)]
    rows, got = [], []
    for c in configs:
        for epoch in sorted(rng.choice(np.arange(1, 53), size=5, replace=False)):
            rows.append([float(epoch)] + [float(c[n]) for n in SOURCE_COLUMNS[1:]])
            state = task.init_state(c, 0)
            task.train(state, int(epoch))
            m = task.evaluate(state)
            got.append([m["surrogate_time"], m["val_accuracy"], m["val_cross_entropy"], m["val_balanced_accuracy"],
                        m["test_cross_entropy"], m["test_balanced_accuracy"]])
    want = _direct("167168", np.array(rows))
    # float32 outputs of one network, computed in batches of 52 (task) and 1,000 (here) rows
    np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-6)
    assert want[:, 2].std() > 0.05  # the configs differ: a wrong column would show


def test_cost_is_the_running_maximum_of_the_predicted_time_with_a_positive_floor() -> None:
    task = tasks.make("lcbench-3945-v1")
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = task.space.sample(rng)
        t = _direct("3945", np.array([[e] + [c[n] for n in SOURCE_COLUMNS[1:]] for e in range(1, 53)]))[:, 0]
        steps = [task.cost(c, e - 1, e) for e in range(1, 53)]
        running = np.maximum.accumulate(t.astype(np.float64))
        floor = lcbench.MIN_EPOCH_SHARE * running[-1] / 52
        assert min(steps) >= floor * (1 - 1e-9) > 0.0  # a zero-cost epoch would stall the study clock
        expected = np.maximum(np.diff(np.concatenate([[0.0], running])), floor)
        np.testing.assert_allclose(steps, expected, rtol=1e-5, atol=1e-9)
        assert math.isclose(task.cost(c, 0, 52), sum(steps), rel_tol=1e-9)
    assert task.default_budget == 7200.0


def test_surrogate_gradient_agrees_with_autograd_through_onnx2torch() -> None:
    """Central differences through the float64 graph vs torch autograd (onnx2torch): rel. err <= 1e-3."""
    onnx = pytest.importorskip("onnx")
    onnx2torch = pytest.importorskip("onnx2torch")
    import torch

    net = onnx2torch.convert(onnx.load(str(DATA / "model.onnx"))).double().eval()
    code = json.loads((DATA / "encoding.json").read_text())["OpenML_task_id"]
    rng = np.random.default_rng(11)
    worst = 0.0
    for i in range(50):
        tid = tasks.LCBENCH_IDS[i % 34]
        task = tasks.make(f"lcbench-{tid}-v1")
        config = task.space.sample(rng)
        epoch = (1, 52, 10)[i % 3]
        grad = task.surrogate_gradient(config, epoch)
        x = torch.tensor([[epoch] + [float(config[n]) for n in SOURCE_COLUMNS[1:]]], dtype=torch.float64,
                         requires_grad=True)
        net(torch.tensor([[code[tid]]], dtype=torch.int32), x)[0, 2].backward()
        exact = np.array([float(x.grad[0, SOURCE_COLUMNS.index(n)]) * task.space[n].dnative_dunit(config[n])
                          for n in grad.unit])
        fd = np.array(list(grad.unit.values()))
        worst = max(worst, float(np.linalg.norm(fd - exact) / np.linalg.norm(exact)))
        with torch.no_grad():  # the same value (onnx2torch keeps a few constants in float32: 1e-6)
            value = float(net(torch.tensor([[code[tid]]], dtype=torch.int32), x)[0, 2])
        assert math.isclose(grad.value, value, rel_tol=1e-6)
    assert worst <= 1e-3, worst


def test_oracle_uses_the_last_epoch_and_ohgw_the_first() -> None:
    from ohgw_bench.warmstart import make_warm_start

    task = tasks.make("lcbench", ws_charge_fraction=0.1)
    config = task.space.default_config()
    records = {}
    for variant in ("ohgw-normalized", "oracle-normalized", "sham-normalized"):
        ws = make_warm_start(variant, task, 0)
        ws.strict = True
        new, records[variant] = ws.apply(config, 0)
        task.space.validate(new)
    ohgw, oracle, sham = records["ohgw-normalized"], records["oracle-normalized"], records["sham-normalized"]
    assert ohgw["info"]["gradient_fidelity"] == 1 and oracle["info"]["gradient_fidelity"] == 52
    assert ohgw["method"] == oracle["method"] == "surrogate-central-difference-float64"
    assert ohgw["grad_unit"] != oracle["grad_unit"]
    assert math.isclose(ohgw["step_norm_unit"], oracle["step_norm_unit"], rel_tol=1e-6)  # same step length
    assert not sham["applied"] and sham["sim_seconds"] == ohgw["sim_seconds"]
    assert math.isclose(ohgw["sim_seconds"], 0.1 * task.cost(config, 0, 1), rel_tol=1e-12)
    # the declared charge is the same on both clocks, so a summary's share_flops is the real share
    assert ohgw["sim_seconds_flops"] == ohgw["sim_seconds_calibrated"] == ohgw["sim_seconds"]


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run.main(argv)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("argv, expected", [
    (["--task", "lcbench-3946-v1"], "did you mean"),
    (["--task", "lcbench-1-v1"], "valid ids: 3945, 7593"),
    (["--task", "lcbench", "--task-option", "nope=1"], "unknown option 'nope'"),
    (["--task", "lcbench", "--task-option", "ws_charge_fraction=2"], "ws_charge_fraction"),
    (["--task", "digits", "--warm-start", "oracle"], "lcbench-<openml_task_id>-v1"),
    # the id fixes the dataset: another one through --task-option would run under the wrong name
    (["--task", "lcbench-3945-v1", "--task-option", "openml_task_id=7593"], "set by the task id"),
])
def test_bad_input_is_one_line_exit_2(argv: list[str], expected: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _main([*argv, "--results-dir", str(tmp_path / "r"), "--quiet"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not any(p.is_file() for p in (tmp_path / "r").rglob("*"))


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_model_is_one_line_naming_the_file(damage: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "lcbench"
    folder.mkdir()
    (folder / "encoding.json").write_text((DATA / "encoding.json").read_text())
    if damage == "corrupt":
        (folder / "model.onnx").write_bytes((DATA / "model.onnx").read_bytes()[:5000])
    monkeypatch.setattr(lcbench, "DATA_DIR", folder)
    monkeypatch.setattr(lcbench, "_SURROGATES", {})
    code, err = _main(["--task", "lcbench", "--results-dir", str(tmp_path / "r"), "--quiet"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and str(folder / "model.onnx") in err, err
    assert not any(p.is_file() for p in (tmp_path / "r").rglob("*"))


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    monkeypatch.setattr(lcbench, "_SURROGATES", {})
    code, err = _main(["--task", "lcbench", "--results-dir", str(tmp_path / "r"), "--quiet"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and ".[lcbench]" in err, err


@pytest.mark.parametrize("extra", [["--scheduler", "asha"],
                                   ["--scheduler", "dyhpo", "--warm-start", "oracle", "--step-rule", "normalized"]])
def test_done_when_commands_complete(extra: list[str], tmp_path: Path) -> None:
    """The issue's two commands, as processes, with a small budget (the default 7,200 s is the same code)."""
    out = subprocess.run([sys.executable, "-m", "ohgw_bench.run", "--task", "lcbench-3945-v1", *extra,
                          "--budget", "400", "--quiet", "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["task"] == "lcbench-3945-v1" and summary["reports"] > 10
    rows = [json.loads(line) for line in (Path(summary["folder"]) / "reports.jsonl").read_text().splitlines()]
    assert {"val_accuracy", "val_balanced_accuracy", "test_balanced_accuracy", "surrogate_time"} <= set(rows[0])
    if "oracle" in extra:
        assert summary["warm_start"]["trials_nudged"] > 0
        ws = next(r["ohgw_warm_start"] for r in rows if r["ohgw_warm_start"]["applied"])
        assert ws["info"]["gradient_fidelity"] == 52 and ws["sim_seconds"] > 0


def test_writer_rows_equal_plain_json_with_shared_records_and_nan(tmp_path: Path) -> None:
    """The per-report fast path (record encoded once per object, json's C encoder) writes the same
    rows as a plain strict-JSON encoding: NaN as null, the shared record in full on every row."""
    from ohgw_bench import results

    shared = {"variant": "none", "J": float("nan"), "grad_unit": {}, "info": {"k": [1, 2.5]}}
    writer = results.StudyWriter(tmp_path, {"spec": 1})
    rows = [{"ohgw_trial_id": i, "ohgw_metric": [0.5, float("nan"), float("inf")][i % 3], "np": np.float32(0.25),
             "ohgw_warm_start": shared if i < 4 else {"variant": "ohgw", "step_unit": {"lr": 0.1}}} for i in range(6)]
    for row in rows:
        writer.append(row)
    writer.close()
    got = [json.loads(line) for line in (tmp_path / results.REPORTS_FILE).read_text().splitlines()]
    want = [json.loads(json.dumps(results._clean({"ohgw_seq": i, **r}), default=results._json_default))
            for i, r in enumerate(rows)]
    assert got == want
    assert got[1]["ohgw_metric"] is None and got[2]["ohgw_warm_start"]["J"] is None
