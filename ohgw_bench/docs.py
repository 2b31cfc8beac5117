"""Generated parts of README.md: the task and scheduler tables, the Findings, and the results excerpt.

The tables are built from the registries (``ohgw_bench.tasks.registry`` and
``ohgw_bench.baselines.schedulers``), the Findings from the committed report bundles
(``reports/*/summary.json``, see ``ohgw_bench.findings``), never typed by hand. Each generated block sits between
two HTML comments, e.g. ``<!-- tasks:start -->`` and ``<!-- tasks:end -->``::

    python -m ohgw_bench.docs --check README.md     # exit 1 and name the stale blocks
    python -m ohgw_bench.docs --write README.md     # rewrite the blocks in place
    python -m ohgw_bench.docs --write README.md --refresh-results   # also re-run the excerpt

The Findings block reads the ``reports/`` folder beside the README (``--reports DIR`` for another).

``--refresh-results`` re-runs the command recorded in the results block (in a temporary
working directory, so nothing is written next to the README) and pastes its human summary.
``--check`` never compares the results block: it holds wall-clock times, which differ per run.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ohgw_bench import findings
from ohgw_bench.findings import markdown_table

#: generated blocks that ``--check`` compares, by marker name
BLOCKS = ("tasks", "schedulers", "findings")
RESULTS_BLOCK = "results"
#: the command whose output the results block shows (``python`` = the running interpreter)
RESULTS_COMMAND = "python -m ohgw_bench.run --budget 10 --quiet"


class DocsError(Exception):
    """A README without the expected markers, or a command that failed while refreshing."""


def task_table() -> str:
    """Markdown table of every registered task id (and of the id families) from the task registry."""
    from ohgw_bench import tasks

    rows = [[f"`{s.id}`", ", ".join(f"`{a}`" for a in s.aliases), s.family, s.description]
            for s in tasks.registry.values()]
    for pat in getattr(tasks, "_patterns", []):
        rows.append([f"`{pat.template}`", "", pat.family, f"family: {pat.description}"])
    rows.append(["`module:Class`", "", "yours", "your own adapter, no registration (docs/adding-a-task.md)"])
    return markdown_table(["task id", "alias", "family", "description"], rows)


def scheduler_table() -> str:
    """Markdown table of every registered scheduler from the scheduler registry."""
    from ohgw_bench import baselines

    rows = [[f"`{s.name}`", s.description, ", ".join(s.backends)] for s in baselines.schedulers.values()]
    return markdown_table(["--scheduler", "description", "backends"], rows)


def findings_block(reports: Path) -> str:
    """The Findings section, read from the report bundles under ``reports`` (``ohgw_bench.findings``)."""
    return findings.block(reports)


def generators(reports: Path) -> dict[str, Callable[[], str]]:
    """The generator of each block in BLOCKS; the Findings read the report bundles under ``reports``."""
    return {"tasks": task_table, "schedulers": scheduler_table, "findings": lambda: findings_block(reports)}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.DOTALL)


def get_block(text: str, name: str) -> str:
    """The text between ``<!-- name:start -->`` and ``<!-- name:end -->`` (DocsError if absent)."""
    m = _pattern(name).search(text)
    if m is None:
        raise DocsError(f"no '<!-- {name}:start -->' ... '<!-- {name}:end -->' block found")
    return m.group(2)


def set_block(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` replaced by ``body`` (a trailing newline is added)."""
    get_block(text, name)
    body = body if body.endswith("\n") else body + "\n"
    return _pattern(name).sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def render(text: str, reports: Path) -> str:
    """``text`` with every generated table block regenerated (the Findings from ``reports``)."""
    gen = generators(reports)
    for name in BLOCKS:
        text = set_block(text, name, gen[name]())
    return text


def stale_blocks(text: str, reports: Path) -> list[str]:
    """Names of the table blocks whose content differs from what the registries and ``reports`` generate."""
    gen = generators(reports)
    return [name for name in BLOCKS if get_block(text, name).strip() != gen[name]().strip()]


def run_results_command(command: str = RESULTS_COMMAND, cwd: str | os.PathLike[str] | None = None) -> str:
    """Run ``command`` in ``cwd`` (a fresh temporary folder by default); its human summary lines.

    The last stdout line (the JSON summary for scripts) is dropped.
    """
    argv = shlex.split(command)
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(argv, cwd=cwd or tmp, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DocsError(f"{command!r} exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    lines = proc.stdout.rstrip("\n").splitlines()
    return "\n".join(lines[:-1])


def results_block(command: str = RESULTS_COMMAND) -> str:
    """The results excerpt: the command and its human summary, as two fenced blocks."""
    return f"```bash\n{command}\n```\n\n```text\n{run_results_command(command)}\n```"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m ohgw_bench.docs``; exit 0 when up to date or written, 1 when stale."""
    p = argparse.ArgumentParser(prog="python -m ohgw_bench.docs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="FILE", help="compare FILE's generated blocks with the registries")
    mode.add_argument("--write", metavar="FILE", help="rewrite FILE's generated blocks in place")
    p.add_argument("--refresh-results", action="store_true",
                   help=f"with --write: re-run the results excerpt ({RESULTS_COMMAND}; about a minute)")
    p.add_argument("--reports", metavar="DIR", help="the report bundles the Findings block reads "
                                                    "(default: the reports/ folder beside FILE)")
    args = p.parse_args(argv)
    path = Path(args.check or args.write)
    reports = Path(args.reports) if args.reports else path.resolve().parent / "reports"
    try:
        text = path.read_text(encoding="utf-8")
        if args.check:
            stale = stale_blocks(text, reports)
            if stale:
                print(f"{path}: stale generated blocks: {', '.join(stale)}; "
                      f"run python -m ohgw_bench.docs --write {path}", file=sys.stderr)
                return 1
            print(f"{path}: generated blocks up to date ({', '.join(BLOCKS)})")
            return 0
        new = render(text, reports)
        if args.refresh_results:
            new = set_block(new, RESULTS_BLOCK, results_block())
        if new != text:
            path.write_text(new, encoding="utf-8")
        print(f"{path}: {'rewritten' if new != text else 'already up to date'}")
        return 0
    except (OSError, DocsError) as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
