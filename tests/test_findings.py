"""The README's Findings block is generated from the committed report summaries (issue 19 item 6)."""

from __future__ import annotations

import json
from pathlib import Path

from ohgw_bench import docs, findings

ROOT = Path(__file__).resolve().parent.parent


def _row(task: str, sched: str, variant: str, baseline: str, ratio: float, lo: float, hi: float, status: str) -> dict:
    return {"experiment": "cpu", "task": task, "scheduler": sched, "comparison": f"{variant} vs {baseline}",
            "variant": variant, "baseline": baseline, "n_pairs": 30, "n_used": 28, "t_tau_ratio": ratio,
            "ci_low": lo, "ci_high": hi, "p": 0.01, "p_holm": 0.04, "better": variant, "p_attainable": True,
            "status": status, "overhead_share": 0.021, "frac_reached_variant": 0.9, "frac_reached_baseline": 0.9}


def test_t_tau_alone_reads_the_interval_and_the_holm_p() -> None:
    assert findings.t_tau_alone({"ci_low": 0.6, "ci_high": 0.9, "p_holm": 0.01}) == "faster"
    assert findings.t_tau_alone({"ci_low": 0.6, "ci_high": 0.9, "p_holm": 0.2}) == "undecided"
    assert findings.t_tau_alone({"ci_low": 0.9, "ci_high": 1.1, "p_holm": 0.9}) == "no 15% gain"
    assert findings.t_tau_alone({"ci_low": 1.01, "ci_high": 1.1, "p_holm": 0.01}) == "slower"


def test_block_reads_the_summaries_and_says_what_they_say(tmp_path: Path) -> None:
    (tmp_path / "reports" / "cpu").mkdir(parents=True)
    (tmp_path / "reports" / "nudge").mkdir(parents=True)
    rows = [_row("t1", "asha", "ohgw", "none", 0.7, 0.6, 0.8, "holds"),
            _row("t1", "asha", "ohgw", "sham", 0.75, 0.62, 0.9, "holds"),
            {**_row("t2", "asha", "ohgw", "none", 1.2, 1.05, 1.4, "does not hold"), "failed": ["t_tau", "final"],
             "not_measured": ["memory"], "geo_mean": 1.15, "geo_ci_low": 1.02, "geo_ci_high": 1.3, "n_ties": 4,
             "power": 0.62, "shared_proposals": 6.0, "trials_per_study": 28.0},
            _row("t1", "asha", "ohgw-eta1em02", "none", 1.0, 0.9, 1.1, "inconclusive")]
    study = {"n_studies": 120, "findings": rows, "power": {"cpu": {"underpowered": True, "tests_per_family": 9,
                                                                   "seeds_needed": 8}}, "excluded": []}
    nudge = {"comparisons": [
        {"task": "t1", "variant": "ohgw", "control": "sham", "fidelity": 1, "metric": {"a_better": 0.1, "ci_low": 0.0, "ci_high": 0.2, "pairs": 9}},
        {"task": "t1", "variant": "ohgw", "control": "sham", "fidelity": 9, "metric": {"a_better": 0.9, "ci_low": 0.8, "ci_high": 1.0, "pairs": 9}}]}
    (tmp_path / "reports" / "cpu" / "summary.json").write_text(json.dumps(study))
    (tmp_path / "reports" / "nudge" / "summary.json").write_text(json.dumps(nudge))
    text = findings.block(tmp_path / "reports")
    assert "| 28 | 0.70 [0.60, 0.80] | – | 0.040 | – | faster | holds |" in text
    assert "0.75 [0.62, 0.90], p=0.040, faster" in text  # the sham control's cell
    # pairs actually used with ties and shared proposals; geometric mean; power; an unevaluable
    # criterion is "not measured", never under "fails:"
    assert ("| 28 (4 ties); 6/28 proposals shared | 1.20 [1.05, 1.40] | 1.15 [1.02, 1.30] | 0.040 | 62% | slower "
            "| does not hold (fails: final; not measured: memory) |") in text
    assert "1 holds, 1 does not hold" in text  # the plain-words count over the two ohgw-vs-none tuples
    assert "wholly below 1 in 1 tuple(s) and wholly above 1 in 1" in text
    assert "`ohgw-eta1em02`" in text and "no 15% gain; inconclusive" in text  # sensitivity arms: own table
    assert "T@tau alone (1 faster, 1 slower)" in text
    assert "needs at least 8 seed pairs" in text
    assert "90% [80%, 100%]" in text and "10% [0%, 20%]" not in text  # the highest fidelity is the one shown
    assert "beats its control in 1 of 1" in text


def test_readme_findings_block_matches_the_committed_summaries() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert docs.get_block(readme, "findings").strip() == findings.block(ROOT / "reports").strip(), \
        "run: python -m ohgw_bench.docs --write README.md"


def test_overhead_is_shown_and_tested_on_both_clocks() -> None:
    """Issue 23: the warm-start share on the FLOP and the calibrated clock, and the compute
    criterion on the larger of the two (a study charged by FLOPs can still fail on wall time)."""
    from analysis.report import _worst_share

    row = {"overhead_share": 0.02, "overhead_share_flops": 0.02, "overhead_share_calibrated": 0.035}
    assert findings._shares(row) == "2.0% / 3.5%"
    assert _worst_share(row) == 0.035
    assert findings._shares({"overhead_share": 0.01}) == "1.0%"  # a bundle from before both clocks
    assert _worst_share({"overhead_share": 0.01, "overhead_share_calibrated": float("nan")}) == 0.01


def test_studies_csv_command_keeps_the_calibrated_clock() -> None:
    """A `-cal` study's command column must re-run it on the calibrated clock (it used to drop the flag)."""
    from analysis import studies_csv
    from ohgw_bench.warmstart import WarmStartSettings

    ws = WarmStartSettings.parse("ohgw-normalized-cal")
    cmd = studies_csv.command({"task": "synth-reg-mlp-v1", "scheduler": "asha", "seed": 5, "warm_start": ws.as_dict()})
    assert "--warm-start-clock calibrated" in cmd
    assert studies_csv._spec_from_command(cmd)["warm_start"]["clock"] == "calibrated"
    plain = studies_csv.command({"task": "synth-reg-mlp-v1", "scheduler": "asha", "seed": 5,
                                 "warm_start": WarmStartSettings.parse("ohgw").as_dict()})
    assert "--warm-start-clock" not in plain


def test_lcbench_bundle_gets_its_table_and_the_answer_reads_the_oracle(tmp_path: Path) -> None:
    """Issue 25: with reports/lcbench published, the block has its table (ohgw and the oracle against
    vanilla, ohgw against its oracle and controls) and the answer paragraph reads the bound from it."""
    (tmp_path / "lcbench").mkdir()
    rows = [_row("lcbench-7593-v1", "asha", "ohgw-normalized", "none", 0.9, 0.7, 1.1, "inconclusive"),
            _row("lcbench-7593-v1", "asha", "oracle-normalized", "none", 0.6, 0.5, 0.75, "holds"),
            _row("lcbench-7593-v1", "asha", "ohgw-normalized", "oracle-normalized", 1.4, 1.2, 1.6, "does not hold"),
            _row("lcbench-189908-v1", "pasha", "ohgw-normalized", "none", 1.0, 0.9, 1.1, "does not hold"),
            _row("lcbench-189908-v1", "pasha", "oracle-normalized", "none", 0.8, 0.7, 0.95, "inconclusive")]
    (tmp_path / "lcbench" / "summary.json").write_text(json.dumps({"n_studies": 40, "findings": rows}))
    text = findings.block(tmp_path)
    assert "**LCBench** (`reports/lcbench/`, 40 studies" in text
    assert "| `lcbench-7593-v1` | asha | 28 | not run | 0.90 [0.70, 1.10], p=0.040, undecided | " \
           "0.60 [0.50, 0.75], p=0.040, faster | 1.40 [1.20, 1.60], p=0.040, slower | not run | not run |" in text
    assert "`oracle-normalized` is faster than vanilla (interval below 1, Holm p < 0.05) in 2 of 2 tuples" in text
    assert "best tuple is `lcbench-7593-v1`/asha at 0.60 [0.50, 0.75]" in text
    assert "`ohgw-normalized` is slower in 1 of 1 tuples and faster in 0" in text
    assert "appears for OHGW in 0 tuple(s)" in text  # the oracle is the bound, not OHGW
    assert "The scheduler study has not been published yet" in text
