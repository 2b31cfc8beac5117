"""Shared by the benchmark scripts: the machine they ran on, how loaded it was, and the Markdown they write.

Every benchmark reports ratios measured in the same run (alternating repeats so that drift
of a shared machine hits both sides), and says which machine and load produced them: the
Markdown starts with the command and the machine line, so a table pasted into the README
carries its own provenance.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def one_thread() -> None:
    """One torch (and BLAS) thread per process, as the studies themselves run (docs/design.md section 8)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def machine_line() -> str:
    """One line: CPU model, cores, Python, torch and its thread count, GPUs."""
    import torch

    gpu = ", ".join(gpus()) or "none"
    return (f"{cpu_model()}, {usable_cores()} usable cores ({os.cpu_count()} logical); Python "
            f"{platform.python_version()}, torch {torch.__version__} with {torch.get_num_threads()} thread(s) "
            f"per process; GPU: {gpu}")


def load() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def load_text(values: tuple[float, float, float] | None = None) -> str:
    one, five, fifteen = values if values is not None else load()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) on {usable_cores()} cores"


def command_line() -> str:
    """The command that produced this output, as one would type it from the repository root."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])


def parser(description: str | None) -> argparse.ArgumentParser:
    """argparse with the ``--out`` every benchmark takes (nox -s bench passes it)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="Markdown file to write (the table is printed either way)")
    return p


def alternating(repeats: int, arms: Sequence[str]) -> Iterator[tuple[int, str]]:
    """(repeat, arm) in A B / B A order, so linear drift of a shared machine cancels between arms."""
    for r in range(repeats):
        for arm in (arms if r % 2 == 0 else list(reversed(arms))):
            yield r, arm


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """'median (min-max)' for a cell."""
    if not values:
        return "n/a"
    return f"{median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


class Report:
    """Markdown tables with their provenance: printed as they are added, and written to ``--out`` at the end."""

    def __init__(self, title: str, out: str | os.PathLike[str] | None):
        self.out = Path(out) if out is not None else None
        self.started = time.time()
        self.load_before = load()
        self.parts = [f"## {title}", "", f"`{command_line()}`", "", f"Machine: {machine_line()}.", ""]
        print("\n".join(self.parts), flush=True)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> None:
        lines = []
        if caption:
            lines += [caption, ""]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        for row in rows:
            lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        lines.append("")
        self.parts += lines
        print("\n".join(lines), flush=True)

    def note(self, text: str) -> None:
        self.parts += [text, ""]
        print(text + "\n", flush=True)

    def write(self) -> str:
        minutes = (time.time() - self.started) / 60
        self.note(f"Load average: {load_text(self.load_before)} at the start, {load_text()} at the end; "
                  f"{minutes:.1f} min; {time.strftime('%Y-%m-%d %H:%M %Z')}.")
        text = "\n".join(self.parts).rstrip() + "\n"
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(text)
            print(f"written to {self.out}", file=sys.stderr)
        return text


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")
