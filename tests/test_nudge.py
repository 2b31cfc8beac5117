"""Paired-trial experiment (ohgw_bench.nudge) and its analysis (analysis.nudge), on the real digits task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ohgw_bench import nudge, tasks
from ohgw_bench.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

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


def _frame(values: dict[str, list[float | None]], base: list[float | None]) -> pd.DataFrame:
    """Paired rows of one task at one fidelity: per variant its metric (None = diverged) beside the baseline's."""
    import pandas as pd

    rows = []
    for variant, vals in values.items():
        for i, (v, b) in enumerate(zip(vals, base)):
            rows.append({"task": "t", "seed": 0, "config_index": i, "variant": variant, "fidelity": 1, "metric": v,
                         "base_metric": b, "val_loss": v, "base_val_loss": b, "trained": True, "applied": True,
                         "cos_prior": 0.5, "grad_norm_unit": 1.0 + i, "step_norm_unit": 0.05})
    return pd.DataFrame(rows)


RUNS = [{"task": "t", "mode": "min", "metric": "err", "max_fidelity": 9, "fidelity_unit": "epochs"}]


def test_diverged_configs_count_as_losses_never_dropped() -> None:
    """Config 3 diverges after the ohgw nudge (no finite metric): it is a loss for ohgw, not a missing pair."""
    from analysis import nudge as analysis

    base = [0.5, 0.5, 0.5, 0.5, None]
    df = analysis._derive(_frame({"ohgw-normalized": [0.4, 0.4, 0.4, None, None],
                                  "prior-normalized": [0.45, 0.45, 0.45, 0.45, 0.4],
                                  "sham": base}, base), {"t": "min"})
    result = analysis.analyse(df, RUNS)
    by = {r["variant"]: r["metric"] for r in result["variants"]}
    assert by["ohgw-normalized"]["pairs"] == 5 and by["ohgw-normalized"]["diverged"] == 1
    assert by["ohgw-normalized"]["worse"] == pytest.approx(0.2) and by["ohgw-normalized"]["tied"] == pytest.approx(0.2)
    assert by["prior-normalized"]["rescued"] == 1 and by["prior-normalized"]["improved"] == pytest.approx(1.0)
    comp = {c["control"]: c["metric"] for c in result["comparisons"] if c["subset"] == "all"}
    # vs prior: wins on 0-2, loses on 3 (diverged) and 4 (prior rescued a diverged baseline)
    assert comp["prior-normalized"]["pairs"] == 5
    assert (comp["prior-normalized"]["wins"], comp["prior-normalized"]["ties"], comp["prior-normalized"]["losses"]) == (3, 0, 2)
    assert (comp["sham"]["wins"], comp["sham"]["ties"], comp["sham"]["losses"]) == (3, 1, 1)
    assert comp["sham"]["a_better"] == pytest.approx(3.5 / 5)


def test_win_shares_carry_wilson_intervals_that_are_not_degenerate_at_100_percent() -> None:
    from analysis.nudge import wilson

    lo, hi = wilson(0.5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(1.0, 60)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.9398, abs=1e-3)  # not the bootstrap's [100%, 100%]
    assert wilson(0.3, 0) == (None, None)


def test_comparisons_are_holm_adjusted_and_reported_where_the_directions_differ() -> None:
    from analysis import nudge as analysis

    base = [0.5] * 8
    df = analysis._derive(_frame({"ohgw-normalized": [0.4] * 8, "prior-normalized": [0.45] * 8}, base), {"t": "min"})
    df.loc[(df.variant == "ohgw-normalized") & (df.config_index < 6), "cos_prior"] = 0.999
    result = analysis.analyse(df, RUNS)
    comps = {c["subset"]: c for c in result["comparisons"]}
    assert comps["all"]["metric"]["pairs"] == 8 and comps["differ"]["metric"]["pairs"] == 2
    assert comps["all"]["metric"]["p_sign"] == pytest.approx(2 / 2 ** 8)
    assert result["holm_family"] == 4  # 2 subsets x 2 quantities
    assert comps["all"]["metric"]["p_holm"] == pytest.approx(min(1.0, 4 * 2 / 2 ** 8))
    assert comps["all"]["control_name"] == "prior-normalized"
    d = {r["variant"]: r for r in result["directions"]}["ohgw-normalized"]
    assert d["differ"] == 2 and d["same"] == pytest.approx(0.75)


def test_a_bundle_is_recomputed_from_its_committed_raw_pairs(tmp_path: Path) -> None:
    from analysis import nudge as analysis

    nudge.run_nudge(spec(tmp_path, configs=3, fidelities=(1,), variants=("ohgw-normalized", "orth-normalized", "sham")),
                    progress=False)
    first = analysis.write_bundle(tmp_path / "nudge", tmp_path / "bundle", ["x"])
    assert (tmp_path / "bundle" / analysis.PAIRS_CSV).exists()
    again = analysis.write_bundle(tmp_path / "bundle", tmp_path / "again", ["y"],
                                  previous=tmp_path / "bundle" / "summary.json")
    cells = again["changes"]["cells"]
    assert cells and all(c["new"] == pytest.approx(c["old"]) and c["new_pairs"] == c["old_pairs"] for c in cells)
    assert "0 changed their win share" in (tmp_path / "again" / "README.md").read_text()
    assert (tmp_path / "again" / "tables" / "changes.md").exists()
    pick = [(c["variant"], c["control"], c["subset"], c["val_loss"]["wins"], c["val_loss"]["losses"])
            for c in first["comparisons"]]
    assert pick == [(c["variant"], c["control"], c["subset"], c["val_loss"]["wins"], c["val_loss"]["losses"])
                    for c in again["comparisons"]]
    for a, b in zip(first["variants"], again["variants"]):
        assert a["variant"] == b["variant"] and a["val_loss"]["median"] == pytest.approx(b["val_loss"]["median"], rel=1e-9)
    assert {(c["variant"], c["control"]) for c in first["comparisons"]} == {("ohgw-normalized", "orth-normalized"),
                                                                           ("ohgw-normalized", "sham")}
    text = (tmp_path / "bundle" / "README.md").read_text()
    assert "unmodified (sham)" in text and "Holm" in text and "cos(ohgw-normalized step, prior step)" in text
