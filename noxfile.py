"""nox sessions: tests, smoke, lint, bench. Each installs the one known-good set from constraints.txt."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}


def install(session: nox.Session, extras: str = "all,dev") -> None:
    session.install("-c", "constraints.txt", "-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite (652 tests). Measured 4 Dec 2026 on 2 CPU cores from a clean clone
    (`bash .ci/run`): 16 min for the session, of which pytest 12.3 min (736 s), at load average
    3-4 (a long study ran beside it). With 631 tests on 3 Dec, idle (load 1-2): 12 min, pytest 589 s."""
    install(session)
    session.run("pytest", "-q", "-p", "no:cacheprovider", "--durations=15", *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """23 short real studies (every offline task family, every scheduler on digits) and the report.

    Measured with the environment built (``nox -s smoke -R``) on 2 CPU cores busy with a
    background study (load average 4.0 to 5.4, two runs): 54 s wall-clock each, 53 s of CPU time (51 s user,
    2 s system). Building the environment first (no -R on a fresh machine) adds the install.
    """
    install(session)
    results = os.environ.get("OHGW_SMOKE_RESULTS", "results-smoke")
    session.run("python", "-m", "ohgw_bench.experiment", "experiments/smoke.yaml", "--results-dir", results,
                "--executor", "process", "--max-parallel", "2", *session.posargs, env=ENV)
    session.run("python", "-m", "analysis.report", f"{results}/smoke", "--out", f"{results}/smoke/report", env=ENV)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, analysis and benchmarks."""
    session.install("-c", "constraints.txt", "ruff")
    session.run("ruff", "check", "ohgw_bench", "tests", "analysis", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Performance benchmarks: ratios against a baseline measured in the same run (not tests)."""
    install(session)
    out = os.environ.get("OHGW_BENCH_OUT", "bench-results")
    os.makedirs(out, exist_ok=True)
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("bench_") and script.endswith(".py"):
            session.run("python", f"benchmarks/{script}", "--out", f"{out}/{script[:-3]}.md", env=ENV)
