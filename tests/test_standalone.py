"""The repository stands alone: it cites no file it does not contain, and every ``python -m``
entry point reads its arguments with argparse (so ``--help`` prints help and touches nothing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_DOC = "DESIGN" + ".md"  # spelled apart so that this file does not match itself
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / line for line in out.splitlines()]
    return [f for f in files if f.is_file() and f.suffix in {".py", ".md", ".toml", ".yaml", ".yml", ".txt", ".cfg"}]


def test_no_file_cites_the_design_document_kept_outside_the_repository() -> None:
    hits = [f"{f.relative_to(ROOT)}:{n}" for f in _tracked_text_files()
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE_DOC in line]
    assert hits == [], f"cite docs/design.md instead: {hits}"
    assert (ROOT / "docs" / "design.md").is_file()


def test_every_main_module_parses_its_arguments_with_argparse() -> None:
    mains = [f for f in _tracked_text_files() if f.suffix == ".py" and MAIN_GUARD.search(f.read_text())]
    assert any(f.name == "text_corpus.py" for f in mains)
    bare = [str(f.relative_to(ROOT)) for f in mains
            if not any(p in f.read_text() for p in ("argparse", "common.parser(", "OneLineParser("))]
    assert bare == []
    raw_argv = [str(f.relative_to(ROOT)) for f in mains if re.search(r"sys\.argv\[1", f.read_text())]
    assert raw_argv == [], "read arguments through argparse, not sys.argv"


def test_text_corpus_help_prints_help_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "ohgw_bench.tasks.text_corpus", "--help"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m ohgw_bench.tasks.text_corpus")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    bad = subprocess.run([sys.executable, "-m", "ohgw_bench.tasks.text_corpus", "a", "b"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unrecognized arguments: b" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    ok = subprocess.run([sys.executable, "-m", "ohgw_bench.tasks.text_corpus", "corpus"], cwd=tmp_path,
                        env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and Path(ok.stdout.strip()) == Path("corpus")
    assert (tmp_path / "corpus" / "wikitext-103" / "wiki.train.tokens").is_file()


def test_list_tasks_columns_align_for_long_ids_and_aliases(monkeypatch) -> None:
    import dataclasses

    from ohgw_bench import run, tasks

    spec = tasks.registry["digits-mlp-v1"]
    long = dataclasses.replace(spec, id="a-task-id-longer-than-any-registered-v1",
                               aliases=("an-alias-longer-than-eighteen", "x"), description="LONG ONE")
    monkeypatch.setattr(tasks, "registry", {**tasks.registry, long.id: long})
    lines = run.list_tasks().splitlines()
    header, rows = lines[0], lines[1:1 + len(tasks.registry)]
    column = header.index("description")
    for row, task in zip(rows, tasks.registry.values()):
        assert row.startswith(task.id + " ") and row.index(task.description, len(task.id)) == column, row
        assert row[column - 2:column] == "  ", row  # at least two spaces before the description
