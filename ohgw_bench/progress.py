"""A study's progress on stderr: a bar on a terminal, a plain line every few seconds in a log.

A 30-second study's bar wrote ~620 carriage-return redraws (68 KB) into ``2> log``, so when
stderr is not a terminal the progress is :class:`LogProgress`'s plain lines instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any

#: wall seconds between two progress lines when stderr is a file or a pipe (a log), not a terminal
LOG_PROGRESS_SECONDS = 10.0


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LogProgress:
    """Progress for a log (Slurm, CI, ``2> log``): a plain line every ``LOG_PROGRESS_SECONDS``
    of wall time and one at the end, instead of a bar's hundreds of redraws (``--quiet``: none).
    Offers the part of tqdm's interface the recorder uses."""

    def __init__(self, desc: str, total: float):
        self.desc, self.total, self.n = desc, total, 0.0
        self.start = self.last_print_t = time.time()
        self._postfix = "starting (the first report can take a while: data, first trial)"
        self._line()

    def set_postfix_str(self, s: str, refresh: bool = False) -> None:
        self._postfix = s

    def _line(self) -> None:
        pct = 100.0 * self.n / self.total if self.total else 100.0
        print(f"{self.desc}: {pct:3.0f}% {self.n:.0f}/{self.total:.0f}s study clock, "
              f"{time.time() - self.start:.0f} s wall, {self._postfix}", file=sys.stderr, flush=True)
        self.last_print_t = time.time()

    def refresh(self) -> None:
        if time.time() - self.last_print_t >= LOG_PROGRESS_SECONDS:
            self._line()

    def close(self) -> None:
        self._line()


def progress_bar(desc: str, total: float) -> Any:
    """A tqdm bar when stderr is a terminal, else :class:`LogProgress` (the same interface)."""
    if not _isatty(sys.stderr):
        return LogProgress(desc, round(total, 1))
    from tqdm import tqdm

    return tqdm(total=round(total, 1), unit="s", desc=desc, file=sys.stderr, mininterval=1.0,
                bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}] {postfix}")


def show(bar: Any, n: float, postfix: str) -> None:
    """Move ``bar`` to ``n`` study seconds with ``postfix``; redraw at most once a second."""
    bar.n = n
    bar.set_postfix_str(postfix, refresh=False)
    if time.time() - getattr(bar, "last_print_t", 0) > 1.0:
        bar.refresh()
