"""The documentation cannot rot: generated README tables, the guide's adapter and command, the
documented result fields, the experiment files and the flags the guides name are all checked
against the package."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ohgw_bench import baselines, docs, tasks
from ohgw_bench.testing import CHECKS, ConformanceError, check_save_load_continue, check_warm_start

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "adding-a-task.md"
REPRODUCING = ROOT / "docs" / "reproducing.md"
FORMAT = ROOT / "docs" / "results-format.md"


def fenced(text: str, lang: str) -> list[str]:
    """Bodies of the ```lang fenced blocks of a Markdown text."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


# README ------------------------------------------------------------------------------------

def test_readme_tables_match_the_registries():
    assert docs.stale_blocks(README.read_text(), ROOT / "reports") == [], "run: python -m ohgw_bench.docs --write README.md"


def test_readme_tables_name_every_task_and_scheduler():
    text = README.read_text()
    task_block, sched_block = docs.get_block(text, "tasks"), docs.get_block(text, "schedulers")
    for spec in tasks.registry.values():
        assert f"`{spec.id}`" in task_block
        for alias in spec.aliases:
            assert f"`{alias}`" in task_block
    for name in baselines.schedulers:
        assert f"| `{name}` |" in sched_block


def test_docs_check_flags_a_stale_table_and_write_repairs_it(tmp_path, capsys):
    text = README.read_text()
    stale = tmp_path / "README.md"
    stale.write_text(text.replace("| `digits-mlp-v1` |", "| `digits-mlp-v0` |"))
    reports = ["--reports", str(ROOT / "reports")]  # the copy has no reports/ beside it
    assert docs.main(["--check", str(stale), *reports]) == 1
    assert "tasks" in capsys.readouterr().err
    assert docs.main(["--write", str(stale), *reports]) == 0
    assert stale.read_text() == text
    assert docs.main(["--check", str(stale), *reports]) == 0
    no_markers = tmp_path / "bare.md"
    no_markers.write_text("# nothing generated here\n")
    assert docs.main(["--check", str(no_markers)]) == 2


def test_readme_first_screen_keeps_the_two_commands():
    first = "\n".join(README.read_text().splitlines()[:26])
    assert 'pip install -c constraints.txt -e ".[all]" && python -m ohgw_bench.run' in first
    assert 'pip install "nox==2026.10.20" && nox -s tests' in first


def test_readme_results_excerpt_is_a_real_run_of_a_valid_command():
    from ohgw_bench.run import build_parser

    block = docs.get_block(README.read_text(), docs.RESULTS_BLOCK)
    command = fenced(block, "bash")[0].strip()
    assert command == docs.RESULTS_COMMAND
    build_parser().parse_args(shlex.split(command)[3:])  # its flags exist
    output = fenced(block, "text")[0]
    for line in ("finished in", "best val_error:", "trials:", "time to tau=", "warm-start:", "results: results/"):
        assert line in output


def test_local_links_resolve():
    for md in (README, GUIDE, REPRODUCING, FORMAT):
        text = md.read_text()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (md.parent / target).exists(), f"{md.name} links to missing {target}"
        for target, anchor in re.findall(r"\]\(([^)#:]*)#([^)]+)\)", text):
            page = (md.parent / target) if target else md
            headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                        for h in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)}
            assert anchor in headings, f"{md.name} links to missing #{anchor} in {page.name}"


def test_run_flags_named_in_the_docs_exist():
    """Flags in README's flag table and ohgw_bench.run command lines, and every flag the guide names."""
    from ohgw_bench.run import build_parser

    known = {s for a in build_parser()._actions for s in a.option_strings}
    lines = [ln for ln in README.read_text().splitlines() if ln.startswith("| `--") or "ohgw_bench.run" in ln]
    named = set(re.findall(r"(--[a-z][a-z-]*)", "\n".join(lines)))
    named |= set(re.findall(r"`(--[a-z][a-z-]*)", GUIDE.read_text()))
    assert {"--task", "--scheduler", "--budget", "--task-option"} <= named
    assert named - known == set(), "the docs name flags that python -m ohgw_bench.run does not have"


# adding-a-task.md --------------------------------------------------------------------------

def guide_parts() -> tuple[str, list[str], str, str]:
    """(adapter source, command argv, module name, class name) as the guide gives them."""
    text = GUIDE.read_text()
    adapters = [b for b in fenced(text, "python") if re.search(r"^class \w+\(Task\):", b, re.MULTILINE)]
    assert len(adapters) == 1, "the guide must hold exactly one code block with the adapter"
    commands = [b.strip() for b in fenced(text, "bash") if "--task " in b]
    assert len(commands) == 1, "the guide must hold exactly one command with --task"
    argv = shlex.split(commands[0])
    module, _, cls = argv[argv.index("--task") + 1].partition(":")
    assert re.search(rf"^class {cls}\(Task\):", adapters[0], re.MULTILINE)
    return adapters[0], argv, module, cls


@pytest.fixture(scope="module")
def guide_folder(tmp_path_factory):
    """A folder holding the guide's adapter under the module name its command uses."""
    source, _, module, _ = guide_parts()
    folder = tmp_path_factory.mktemp("guide")
    (folder / f"{module}.py").write_text(source)
    return folder


@pytest.fixture
def guide_task(guide_folder, monkeypatch):
    _, _, module, cls = guide_parts()
    monkeypatch.syspath_prepend(str(guide_folder))
    sys.modules.pop(module, None)
    task = tasks.make(f"{module}:{cls}")
    task.prepare()
    yield task
    sys.modules.pop(module, None)


def test_guide_adapter_passes_the_conformance_checks(guide_task):
    for check in CHECKS:
        if check is not check_warm_start:
            check(guide_task)


def test_guide_adapter_passes_the_warm_start_check(guide_task):
    record = check_warm_start(guide_task)
    section = FORMAT.read_text().split("## The warm-start record")[1].split("\n## ")[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, flags=re.MULTILINE)
    documented = {key for cell in first_cells for key in re.findall(r"`(\w+)`", cell)}
    assert {"cost", "sim_seconds", "grad_unit"} <= documented
    assert set(record) <= documented, f"undocumented warm-start record keys: {sorted(set(record) - documented)}"


def test_guide_failure_example_is_what_the_check_reports(guide_task, monkeypatch):
    """The guide's example message: a load() that does not restore the data-order generator."""
    example = re.search(r"ConformanceError: (task \S+: save/load/continue to \d+ gave) \[", GUIDE.read_text())
    assert example, "the guide's example failure message is missing"
    load = guide_task.load

    def forgetful_load(path):
        state = load(path)
        state.generator.manual_seed(12345)
        return state

    monkeypatch.setattr(guide_task, "load", forgetful_load)
    with pytest.raises(ConformanceError) as err:
        check_save_load_continue(guide_task)
    assert str(err.value).startswith(example.group(1))


@pytest.fixture(scope="module")
def guide_study(guide_folder):
    """Run the guide's command verbatim from the adapter's folder, with a 1-second budget."""
    _, argv, _, _ = guide_parts()
    assert argv[:3] == ["python", "-m", "ohgw_bench.run"]
    argv = [sys.executable, *argv[1:]]
    if "--budget" in argv:
        argv[argv.index("--budget") + 1] = "1"
    else:
        argv += ["--budget", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}  # the guide's folder comes from cwd
    proc = subprocess.run([*argv, "--quiet"], cwd=guide_folder, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return guide_folder / summary["folder"], summary


def test_guide_command_runs_a_study_where_the_guide_says(guide_study, guide_folder):
    folder, summary = guide_study
    stated = re.search(r"`(results/default/[^`]+/)`", GUIDE.read_text()).group(1)
    assert folder.resolve() == (guide_folder / stated).resolve()
    on_disk = json.loads((folder / "summary.json").read_text())
    assert on_disk["status"] == "complete" and on_disk["reports"] == summary["reports"] > 0


# results-format.md -------------------------------------------------------------------------

def _keys(obj, out: set[str]) -> set[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(k)
            if k not in ("config", "options", "task_options", "scheduler_options", "versions", "ohgw_config",
                         "ohgw_proposed", "identity"):
                _keys(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _keys(v, out)
    return out


def test_every_field_of_a_real_study_is_documented(guide_study):
    folder, _ = guide_study
    documented = set(re.findall(r"`([A-Za-z_][\w.]*)`", FORMAT.read_text()))
    rows = [json.loads(line) for line in (folder / "reports.jsonl").read_text().splitlines()]
    found = _keys(json.loads((folder / "study.json").read_text()), set())
    found |= _keys(json.loads((folder / "summary.json").read_text()), set())
    for row in rows:
        found |= {k for k in row if k.startswith("ohgw_")} | _keys(row.get("ohgw_warm_start") or {}, set())
    assert found - documented == set()


def test_documented_dataframe_columns_exist(guide_study):
    from ohgw_bench.results import load_results

    folder, _ = guide_study
    df = load_results(folder.parents[4])
    text = FORMAT.read_text().split("## Loading results into pandas")[1]
    for col in ("experiment", "task", "scheduler", "variant", "seed", "study_id", "metric_name", "mode", "tau",
                "budget", "clock", "complete", "path", "seq", "trial_id", "time", "time_wall", "worker_time",
                "fidelity", "metric", "test_metric", "status", "decision", "config.lr", "proposed.lr",
                "ws.applied"):
        assert col in df.columns, col
        assert f"`{col}`" in text, col


# reproducing.md ----------------------------------------------------------------------------

def test_every_experiment_file_is_documented_with_its_study_count():
    from ohgw_bench.experiment import load

    text = REPRODUCING.read_text()
    files = sorted((ROOT / "experiments").glob("*.yaml"))
    assert {"smoke", "cpu", "main", "breadth", "ablations", "transfer", "scalability"} <= {f.stem for f in files}
    for f in files:
        row = re.search(rf"^\| `experiments/{f.stem}\.yaml` \| (\d+) \|", text, re.MULTILINE)
        assert row, f"docs/reproducing.md has no table row for experiments/{f.stem}.yaml"
        _, specs = load(f, "/nonexistent-results")
        assert int(row.group(1)) == len(specs), f"{f.stem}: the table says {row.group(1)}, the file has {len(specs)}"


def test_experiment_commands_in_reproducing_use_real_flags(capsys):
    from ohgw_bench.experiment import main

    with pytest.raises(SystemExit):
        main(["--help"])
    known = set(re.findall(r"(--[a-z][a-z-]+)", capsys.readouterr().out))
    commands = [ln for block in fenced(REPRODUCING.read_text(), "bash") for ln in block.splitlines()
                if "ohgw_bench.experiment" in ln]
    assert len(commands) >= 7
    named = set(re.findall(r"\s(--[a-z][a-z-]+)", "\n".join(commands)))
    assert {"--executor", "--address", "--slurm", "--max-parallel", "--results-dir"} <= named
    assert named - known == set(), "reproducing.md uses flags that python -m ohgw_bench.experiment lacks"
