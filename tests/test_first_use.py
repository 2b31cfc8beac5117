"""A new user's first steps: the doc and CLI defects met there (issue 28 items 5-6), each with a check
that could fail."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from ohgw_bench import nudge, run, tasks
from ohgw_bench.errors import UserError
from ohgw_bench.results import load_results
from ohgw_bench.tasks import text_corpus
from ohgw_bench.testing import ConformanceError, check_determinism, check_task

ROOT = Path(__file__).resolve().parents[1]
FORMAT = ROOT / "docs" / "results-format.md"


def _table_study(root: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert run.main(["--task", "table", "--budget", "30", "--quiet", "--results-dir", str(root)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_stdout_json_has_status_and_load_results_has_an_empty_error_column(tmp_path: Path, capsys) -> None:
    summary = _table_study(tmp_path, capsys)
    assert summary["status"] == "complete"
    df = load_results(tmp_path)
    assert len(df) > 0 and "error" in df.columns
    assert df[df.error.notna()].empty  # the documented filter, with no failed trial


def test_the_pandas_snippet_of_results_format_runs_and_keys_by_experiment(tmp_path: Path, capsys, monkeypatch) -> None:
    _table_study(tmp_path, capsys)
    code = re.search(r"## Loading results into pandas\s+```python\n(.*?)```", FORMAT.read_text(), re.S).group(1)
    code = code.replace('"results"', repr(str(tmp_path))).replace('"all-reports.parquet"',
                                                                   repr(str(tmp_path / "all.csv")))
    scope: dict = {}
    exec(compile(code, str(FORMAT), "exec"), scope)
    best = scope["best"]
    assert list(best.index.names) == ["experiment", "task", "scheduler", "variant", "seed"]
    assert best.iloc[0] == pytest.approx(scope["df"]["metric"].min())  # table is a min-mode task
    assert scope["failed"].empty


def test_results_format_lists_each_summary_field_once() -> None:
    text = FORMAT.read_text()
    summary_table = text[text.index("| `status` | `complete` |"):]
    summary_table = summary_table[:summary_table.index("\n\n")]
    for field in ("ended", "budget_used_fraction"):
        assert summary_table.count(f"| `{field}` |") == 1, field


def test_an_unknown_task_lists_aliases_and_offers_a_close_match() -> None:
    with pytest.raises(UserError) as e:
        tasks.resolve("digit")
    assert "did you mean 'digits'?" in str(e.value)
    assert "digits-mlp-v1 (digits)" in str(e.value) and "\n" not in str(e.value)


def test_check_task_fails_an_autograd_hyperparameter_that_cannot_be_reached() -> None:
    from faulty_tasks import FloatLabelSmoothingDigits

    task = FloatLabelSmoothingDigits()
    task.prepare()
    with pytest.raises(ConformanceError, match="label_smoothing.*never reach"):
        check_task(task, quiet=True)


def test_the_determinism_failure_names_the_usual_causes() -> None:
    from faulty_tasks import UnseededDropoutDigits

    task = UnseededDropoutDigits()
    task.prepare()
    with pytest.raises(ConformanceError, match="global RNG.*dropout.*data order"):
        check_determinism(task)


def test_the_mini_corpus_says_when_it_is_written(tmp_path: Path, capsys) -> None:
    text_corpus.write_mini_corpus(tmp_path / "mini")
    assert "writing the embedded mini corpus" in capsys.readouterr().err
    text_corpus.write_mini_corpus(tmp_path / "mini")
    assert capsys.readouterr().err == ""  # already there: silent


def test_nudge_suggests_no_command_that_overwrites_the_committed_bundle(tmp_path: Path, capsys) -> None:
    good = tmp_path / "mini.yaml"
    good.write_text("seed: 1\nfidelities: [1]\nvariants: [sham]\ntasks:\n  - {task: digits, configs: 1}\n")
    assert nudge.main([str(good), "--results-dir", str(tmp_path / "res"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "analyse with: python -m analysis.nudge" in out and "--out reports/nudge" not in out
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "reproducing.md").read_text(), re.S)
    assert not [ln for b in blocks for ln in b.splitlines() if "--out reports/" in ln]


@pytest.mark.parametrize("path", ["report/index.md", "nudge-report/summary.json"])
def test_gitignore_covers_the_documented_report_folders(path: str) -> None:
    proc = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
    if proc.returncode == 128:
        pytest.skip("not a git checkout")
    assert proc.returncode == 0, f"{path} is not ignored"
