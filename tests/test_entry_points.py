"""Console scripts (issue 26 item 4): ohgw-run, ohgw-experiment and ohgw-report, each naming itself.

Each command's --help and errors say how it was invoked: the console script's name when run
through it (``argv[0]`` is ``.../bin/ohgw-run``), ``python -m module`` otherwise. ``analysis`` is
a package of the distribution, so ``python -m analysis.report`` works outside the repository.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import pytest

from ohgw_bench.run import prog_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"ohgw-run": "ohgw_bench.run", "ohgw-experiment": "ohgw_bench.experiment", "ohgw-report": "analysis.report"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_entry_point_table_names_the_three_commands() -> None:
    scripts = pyproject()["project"]["scripts"]
    assert scripts == {name: f"{module}:main" for name, module in SCRIPTS.items()}
    for target in scripts.values():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_analysis_is_a_package_of_the_distribution() -> None:
    from setuptools import find_packages

    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(ROOT), include=include))
    assert {"ohgw_bench", "ohgw_bench.tasks", "ohgw_bench.baselines", "analysis"} <= found
    assert not {p for p in found if p.split(".")[0] in ("tests", "benchmarks")}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize("invoked", ["script", "module"])
def test_help_names_the_command_as_invoked(script: str, invoked: str, capsys,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    module = SCRIPTS[script]
    argv0 = f"/venv/bin/{script}" if invoked == "script" else str(ROOT / (module.replace(".", "/") + ".py"))
    expected = script if invoked == "script" else f"python -m {module}"
    monkeypatch.setattr(sys, "argv", [argv0, "--help"])
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {expected} ")
    if invoked == "script":
        assert "python -m" not in out.split("\n\n")[0]  # the usage block names the script only


def test_an_error_names_the_console_script(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from ohgw_bench.run import main

    monkeypatch.setattr(sys, "argv", ["/venv/bin/ohgw-run"])
    with pytest.raises(SystemExit) as exit_info:
        main(["--no-such-flag"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("ohgw-run: error: unrecognized arguments: --no-such-flag")


def test_prog_name_only_trusts_the_script_name() -> None:
    assert prog_name("ohgw-run", "ohgw_bench.run", "/x/bin/ohgw-run") == "ohgw-run"
    assert prog_name("ohgw-run", "ohgw_bench.run", r"ohgw-run.exe") == "ohgw-run"
    assert prog_name("ohgw-run", "ohgw_bench.run", "/x/ohgw_bench/run.py") == "python -m ohgw_bench.run"
    assert prog_name("ohgw-run", "ohgw_bench.run", "-c") == "python -m ohgw_bench.run"
    assert prog_name("ohgw-run", "ohgw_bench.run", "/x/bin/ohgw-run-old") == "python -m ohgw_bench.run"
