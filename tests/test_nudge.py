"""Paired-trial experiment (ohgw_bench.nudge) and its analysis (analysis.nudge), on the real digits task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ohgw_bench import nudge, tasks
from ohgw_bench.errors import UserError

SMALL = {"task": "digits", "configs": 2, "fidelities": (1, 2), "variants": ("ohgw-normalized", "sham")}


def spec(tmp_path: Path, **kw) -> nudge.NudgeSpec:
    return nudge.NudgeSpec(**{**SMALL, "results_dir": str(tmp_path), **kw})


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / nudge.PAIRS_FILE).read_text().splitlines()]


def test_training_is_deterministic_so_unchanged_configs_need_no_retraining() -> None:
    task = tasks.make("digits")
    config = nudge.sample_config(task, 0, 3)
    a, err_a = nudge.train_curve(task, config, 17, [1, 2])
    b, err_b = nudge.train_curve(task, config, 17, [1, 2])
    assert err_a is None and err_b is None and a == b and len(a) == 2


def test_paired_rows_pair_each_variant_with_its_baseline(tmp_path: Path) -> None:
    summary = nudge.run_nudge(spec(tmp_path), progress=False)
    folder = Path(summary["folder"])
    assert folder == tmp_path / "nudge" / "digits-mlp-v1" / "paired" / "seed-0"
    study = json.loads((folder / "study.json").read_text())
    assert study["kind"] == "nudge" and study["spec"]["variant_labels"] == ["ohgw-normalized", "sham"]
    assert not (folder / "reports.jsonl").exists()  # never read as a scheduler study
    got = rows(folder)
    assert len(got) == 2 * 2 * 2 and summary["rows"] == 8 and summary["configs"] == 2
    task = tasks.make("digits")
    for r in got:
        assert r["diff"] == pytest.approx(r["metric"] - r["base_metric"])
        assert r["improvement"] == pytest.approx(-r["diff"])
        if r["variant"] == "sham":
            assert r["trained"] is False and r["applied"] is False and r["diff"] == 0.0 and r["sim_seconds"] > 0
        else:
            assert r["trained"] is True and r["step_norm_unit"] == pytest.approx(0.05, abs=1e-9)
            assert r["grad_norm_unit"] > 0
        if r["fidelity"] == 1:
            assert r["proposed"] == nudge.sample_config(task, 0, r["config_index"])
    loss_moved = [r for r in got if r["variant"] == "ohgw-normalized" and r["diff_val_loss"] != 0]
    assert loss_moved


def test_rerun_skips_resume_redoes_a_torn_config_and_a_different_spec_is_refused(tmp_path: Path) -> None:
    first = nudge.run_nudge(spec(tmp_path), progress=False)
    folder = Path(first["folder"])
    full = rows(folder)
    assert nudge.run_nudge(spec(tmp_path), progress=False)["skipped"] is True
    lines = (folder / nudge.PAIRS_FILE).read_text().splitlines(keepends=True)
    (folder / nudge.PAIRS_FILE).write_text("".join(lines[:5]) + lines[5][:20])  # config 1 cut mid-row
    (folder / "summary.json").unlink()
    again = nudge.run_nudge(spec(tmp_path), progress=False)
    assert again["configs_this_run"] == 1 and rows(folder) == full
    more = nudge.run_nudge(spec(tmp_path, configs=3), progress=False)
    assert more["configs_this_run"] == 1 and rows(folder)[:8] == full and more["configs"] == 3
    assert [h["configs"] for h in more["history"]] == [1, 1]  # the resumed run, then the extension
    assert more["wall_seconds_total"] == pytest.approx(sum(h["wall_seconds"] for h in more["history"]))
    with pytest.raises(UserError, match="different spec"):
        nudge.run_nudge(spec(tmp_path, variants=("ohgw-normalized",)), progress=False)


@pytest.mark.parametrize("argv, words", [
    (["--configs", "0"], "--configs"),
    (["--seed", "-1"], "--seed"),
    (["--fidelities", "3,1"], "increasing"),
    (["--fidelities", "1,99"], "must lie in"),
    (["--variants", "ohgw,bogus"], "bogus"),
    (["--variants", "none"], "baseline"),
    (["--task", "no-such-task"], "no-such-task"),
])
def test_bad_input_is_one_line_exit_2_before_any_file(tmp_path: Path, capsys, argv: list[str], words: str) -> None:
    out = tmp_path / "res"
    assert nudge.main([*argv, "--results-dir", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and not out.exists()


def test_experiment_file_runs_each_task_and_rejects_unknown_keys(tmp_path: Path, capsys) -> None:
    good = tmp_path / "mini.yaml"
    good.write_text("seed: 1\nfidelities: [1]\nvariants: [sham]\ntasks:\n  - {task: digits, configs: 1}\n")
    assert nudge.main([str(good), "--results-dir", str(tmp_path / "res"), "--quiet"]) == 0
    assert (tmp_path / "res" / "mini" / "digits-mlp-v1" / "paired" / "seed-1" / "summary.json").exists()
    assert str(tmp_path / "res" / "mini") in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [digits]\nconfig: 3\n")
    assert nudge.main([str(bad), "--results-dir", str(tmp_path / "res2")]) == 2
    assert "config" in capsys.readouterr().err and not (tmp_path / "res2").exists()


def test_analysis_bundle_reports_fractions_cis_and_the_gradnorm_heatmap(tmp_path: Path) -> None:
    from analysis import nudge as analysis

    nudge.run_nudge(spec(tmp_path, configs=5, fidelities=(1,), variants=("ohgw-normalized", "random-normalized", "sham")),
                    progress=False)
    result = analysis.write_bundle(tmp_path / "nudge", tmp_path / "bundle", ["x"])
    for name in ("summary.json", "README.md", "tables/variants.md", "tables/variants.tex", "tables/comparisons.md",
                 "tables/gradnorm.tex", "figures/gradnorm_heatmap.pdf", "figures/gradnorm_heatmap.png"):
        assert (tmp_path / "bundle" / name).exists(), name
    by = {r["variant"]: r for r in result["variants"]}
    assert by["sham"]["val_loss"]["improved"] == 0.0 and by["sham"]["val_loss"]["tied"] == 1.0
    d = by["ohgw-normalized"]["val_loss"]
    assert d["pairs"] == 5 and d["ci_low"] <= d["median"] <= d["ci_high"]
    assert d["improved"] + d["worse"] + d["tied"] == pytest.approx(1.0)
    comp = {(c["variant"], c["control"]) for c in result["comparisons"]}
    assert comp == {("ohgw-normalized", "random-normalized"), ("ohgw-normalized", "sham")}
    assert sum(b["val_loss"]["pairs"] for b in result["gradnorm_bins"] if b["variant"] == "sham") == 5
    assert "python -m ohgw_bench.nudge" in (tmp_path / "bundle" / "README.md").read_text()


def test_bootstrap_ci_covers_the_median_and_narrows_with_more_data() -> None:
    import numpy as np

    from analysis.nudge import bootstrap_ci

    rng = np.random.default_rng(0)
    small = bootstrap_ci(rng.normal(1.0, 1.0, 20))
    large = bootstrap_ci(rng.normal(1.0, 1.0, 2000))
    assert small[0] < 1.0 < small[1] and large[0] < 1.0 < large[1]
    assert large[1] - large[0] < small[1] - small[0]
    assert bootstrap_ci([1.0]) == (None, None)


def test_the_committed_paired_experiment_file_loads() -> None:
    specs = nudge.load_file(Path(__file__).parents[1] / "experiments" / "paired" / "nudge.yaml", "/nonexistent")
    assert [s.task for s in specs] == ["digits", "uci-breast_cancer-mlp", "uci-wine-mlp"]
    assert all(s.variants == nudge.DEFAULT_VARIANTS and s.fidelities == (1, 3, 9) for s in specs)
