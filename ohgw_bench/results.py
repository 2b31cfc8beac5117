"""The one writer and reader of study folders (docs/design.md section 5).

Layout: ``<results-dir>/<experiment>/<task>/<scheduler>/<variant>/seed-<n>/`` holding

- ``study.json``: the frozen spec, package versions, git revision, machine (written first);
- ``reports.jsonl``: one JSON object per report, appended, flushed per row and fsynced (at least
  once a second and on close);
- ``summary.json``: written last through a temporary file and a rename; its presence marks
  the study complete. ``partial.json`` marks an interrupted study.

Keys the harness owns carry the prefix ``ohgw_``; a task's own metrics keep their names.
A row of ``reports.jsonl``:

==========================  =====================================================================
``ohgw_seq``                 0, 1, 2, ... in the order reports were written
``ohgw_trial_id``            Syne Tune trial id
``ohgw_time``                study clock, seconds: simulated (backend simulated) or wall (local)
``ohgw_time_wall``           wall-clock seconds since the study started
``ohgw_worker_time``         busy worker-seconds on the study clock, summed over workers so far
``ohgw_fidelity``            fidelity reached (e.g. epochs) when this report was made
``ohgw_metric``              the validation metric the scheduler optimises (name in study.json)
``ohgw_test_metric``         the held-out test metric reported beside it
``ohgw_status``              ok, failed, nan, paused, stopped, completed
``ohgw_decision``            the scheduler's answer: CONTINUE, PAUSE, STOP
``ohgw_config``              the config evaluated (after any warm-start)
``ohgw_proposed``            the config the scheduler proposed (before the warm-start)
``ohgw_warm_start``          the warm-start record (see ``ohgw_bench.warmstart``)
``ohgw_error``               error text for failed trials, else absent
==========================  =====================================================================
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ohgw_bench.errors import UserError

PREFIX = "ohgw_"
STUDY_FILE = "study.json"
REPORTS_FILE = "reports.jsonl"
SUMMARY_FILE = "summary.json"
PARTIAL_FILE = "partial.json"
WARM_START_KEY = f"{PREFIX}warm_start"


def canonical_scheduler(name: str) -> str:
    """The canonical name of a scheduler (:func:`ohgw_bench.baselines.canonical_name`), for folder
    names and for study.json files written before ``resolved`` existed; unknown names unchanged."""
    from ohgw_bench.baselines import canonical_name

    try:
        return canonical_name(name)
    except UserError:
        return name


def study_dir(results_dir: str | os.PathLike[str], experiment: str, task: str, scheduler: str,
              variant: str, seed: int) -> Path:
    """The folder of one study (the scheduler level is the canonical name, see :func:`canonical_scheduler`)."""
    return Path(results_dir) / experiment / task / canonical_scheduler(scheduler) / variant / f"seed-{seed}"


def reset_peak_rss() -> None:
    """Reset this process's resident-set high-water mark (Linux: ``/proc/self/clear_refs``).

    A process-pool worker runs many studies; without the reset a study would inherit the peak of
    an earlier, larger one. Best effort: elsewhere it does nothing.
    """
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")


def peak_rss_bytes() -> int | None:
    """Peak resident memory of this process since :func:`reset_peak_rss` (``VmHWM``), in bytes.

    Falls back to ``getrusage``'s ``ru_maxrss`` (peak since the process started) where
    ``/proc`` is absent; None if neither is available.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null so that every reader can parse the file."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def dumps(obj: Any) -> str:
    """One strict-JSON line (NaN and infinity as null, keys as strings, sorted).

    Written per report, so the common case takes json's C encoder directly (``allow_nan=False``);
    only a row that holds a non-finite number (or keys json cannot sort) goes through
    :func:`_clean`'s Python walk, which cost about 0.4 ms a row on a surrogate study (profiled:
    40% of the harness's own time per report).
    """
    try:
        return json.dumps(obj, default=_json_default, sort_keys=True, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(_clean(obj), default=_json_default, sort_keys=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write to a temporary file in the same folder, fsync, rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(_clean(obj), default=_json_default, indent=2, sort_keys=True))
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_writable(results_dir: str | os.PathLike[str]) -> Path:
    """Create ``results_dir`` if needed and prove a file can be written there, or raise UserError."""
    path = Path(results_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UserError(f"results directory {path} is not writable: {e.strerror or e}") from None
    return path


class StudyWriter:
    """Appends reports to one study folder: each line flushed at once, fsynced at least every second."""

    #: fsync at most this often (seconds); every row is flushed to the OS at once, so a killed
    #: process loses nothing, and a study of thousands of rows does not wait on the disk per row.
    fsync_interval = 1.0

    def __init__(self, folder: Path, spec: Mapping[str, Any], meta: Mapping[str, Any] | None = None, *,
                 rows_file: str = REPORTS_FILE, numbered: bool = True,
                 keep: Iterable[Mapping[str, Any]] | None = None):
        """``rows_file``/``numbered``: a paired-trial run (nudge) writes ``pairs.jsonl`` without
        ``ohgw_seq``; ``keep``: rows a resumed run keeps, which replace the file first (atomically)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.seq = 0
        self.numbered = numbered
        self._last_sync = 0.0
        write_json_atomic(self.folder / STUDY_FILE, {"spec": dict(spec), **dict(meta or {})})
        path = self.folder / rows_file
        if keep is not None:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(dumps(r) + "\n" for r in keep), encoding="utf-8")
            os.replace(tmp, path)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._records: dict[int, tuple[Any, str]] = {}

    def _line(self, out: Mapping[str, Any]) -> str:
        """``dumps(out)``, with the warm-start record encoded once per record object, not per row.

        Every row of a trial carries the same record (and every row of a vanilla study the same
        one), so re-encoding it was most of a row's cost on a surrogate study. Records are never
        changed after a trial starts; the cache keeps each one alive so its id stays unique.
        """
        record = out.get(WARM_START_KEY)
        if not isinstance(record, Mapping) or not record:
            return dumps(out)
        cached = self._records.get(id(record))
        if cached is None or cached[0] is not record:
            cached = self._records[id(record)] = (record, dumps(record))
        rest = dumps({k: v for k, v in out.items() if k != WARM_START_KEY})
        return f'{rest[:-1]}, "{WARM_START_KEY}": {cached[1]}}}'

    def append(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = {f"{PREFIX}seq": self.seq, **row} if self.numbered else dict(row)
        self._file.write(self._line(out) + "\n")
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval:
            os.fsync(self._file.fileno())
            self._last_sync = now
        self.seq += 1
        return out

    def mark_partial(self, reason: str) -> None:
        write_json_atomic(self.folder / PARTIAL_FILE, {"status": "partial", "reason": reason, "reports": self.seq})

    def finish(self, summary: Mapping[str, Any]) -> Path:
        """Write summary.json last (atomically); removes a stale partial marker."""
        self.close()
        path = self.folder / SUMMARY_FILE
        write_json_atomic(path, {"status": "complete", **dict(summary)})
        with contextlib.suppress(FileNotFoundError):
            (self.folder / PARTIAL_FILE).unlink()
        return path

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> StudyWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_reports(folder: str | os.PathLike[str], bad: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a study's reports.jsonl; a torn last line (a process killed mid-write) is skipped.

    A complete line that is not JSON is skipped too; its 1-based line number is appended to
    ``bad`` when given, so that a reader can say how many it dropped instead of dropping silently.
    """
    path = Path(folder) / REPORTS_FILE
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.endswith("\n"):
                break
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                yield row
            elif bad is not None:  # not JSON, or JSON but not an object (a list, a number)
                bad.append(n)


def read_json_checked(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the JSON object in ``path``, None), or (None, why not): missing, not valid JSON, not an object."""
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"no {path.name}"
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, f"{path.name} is not valid JSON"
    except OSError as e:
        return None, f"{path.name} cannot be read ({e.strerror or e})"
    if not isinstance(obj, dict):
        return None, f"{path.name} is not a JSON object (a {type(obj).__name__})"
    return obj, None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, not JSON or not an object."""
    return read_json_checked(path)[0]


def is_complete(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / SUMMARY_FILE).exists()


def find_studies(results_dir: str | os.PathLike[str]) -> list[Path]:
    """Every study folder (one holding study.json) below ``results_dir``, sorted."""
    root = Path(results_dir)
    return sorted(p.parent for p in root.rglob(STUDY_FILE))


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested mappings as dotted keys (``config.lr``) in ``out``: one column per leaf in a DataFrame."""
    # A report's JSON leaves are str/int/float/bool/None/list: tested by exact type first, since an
    # isinstance against the Mapping ABC per leaf was most of a large report's load time.
    if type(value) is dict or (type(value) not in _JSON_LEAVES and isinstance(value, Mapping)):
        for k, v in value.items():
            flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


_JSON_LEAVES = frozenset({str, int, float, bool, type(None), list})


def load_study(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """(study.json, report rows, summary.json or None) of one study folder."""
    folder = Path(folder)
    study = read_json(folder / STUDY_FILE)
    if study is None:
        raise UserError(f"{folder} is not a study folder (no readable {STUDY_FILE})")
    return study, list(iter_reports(folder)), read_json(folder / SUMMARY_FILE)


def study_settings(study: Mapping[str, Any], folder: Path | None = None) -> dict[str, Any]:
    """The settings a study ran with, from its study.json: the ``resolved`` section as written,
    or, for a study.json from before it existed, the same keys rebuilt from ``spec`` (as asked),
    the top-level ``budget``/``tau`` (what the study used) and the folder's levels."""
    resolved = study.get("resolved")
    if isinstance(resolved, Mapping):
        return dict(resolved)
    spec = study.get("spec", {}) or {}
    info = study.get("task", {}) or {}
    parts = folder.parts if folder is not None and len(folder.parts) >= 5 else None
    return {
        "experiment": spec.get("experiment", parts[-5] if parts else ""),
        "task_id": info.get("id") or spec.get("task"), "task_label": spec.get("task_label"),
        "scheduler": canonical_scheduler(str(spec.get("scheduler", parts[-3] if parts else ""))),
        "variant_label": spec.get("variant_label", (spec.get("warm_start") or {}).get("variant", "none")),
        "seed": spec.get("seed"), "budget": study.get("budget", spec.get("budget")),
        "tau": study.get("tau", spec.get("tau") if spec.get("tau") is not None else info.get("tau")),
    }


STUDY_COLUMNS = ("experiment", "task", "scheduler", "variant", "seed", "study_id", "metric_name", "mode",
                 "tau", "budget", "clock", "complete")
#: report columns every frame has (docs/results-format.md), empty (NaN/None) where no row carries them,
#: so that ``df[df.error.notna()]`` works also when no trial failed
REPORT_COLUMNS = ("seq", "trial_id", "time", "time_wall", "worker_time", "fidelity", "metric", "test_metric",
                  "status", "decision", "error")


def load_results(results_dir: str | os.PathLike[str], include_partial: bool = False) -> Any:
    """All reports below ``results_dir`` as one pandas DataFrame, one row per report.

    Study columns (:data:`STUDY_COLUMNS`) come from study.json; the ``ohgw_`` prefix is
    dropped from report fields (``time``, ``fidelity``, ``metric``, ...); configs and the
    warm-start record are flattened to ``config.<name>``, ``proposed.<name>``, ``ws.<key>``.
    Incomplete studies are left out unless ``include_partial``.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for folder in find_studies(results_dir):
        study, reports, summary = load_study(folder)
        complete = summary is not None
        if not complete and not include_partial:
            continue
        settings = study_settings(study, folder)
        task_info = study.get("task", {}) or {}
        base = {
            "experiment": settings["experiment"],
            "task": folder.parts[-4] if len(folder.parts) >= 5 else (settings["task_label"] or settings["task_id"]),
            "scheduler": settings["scheduler"],
            "variant": settings["variant_label"],
            "seed": settings["seed"],
            "study_id": study.get("study_id"),
            "metric_name": task_info.get("metric"),
            "mode": task_info.get("mode"),
            "tau": settings["tau"],
            "budget": settings["budget"],
            "clock": study.get("clock"),
            "complete": complete,
            "path": str(folder),
        }
        for r in reports:
            row = dict(base)
            for k, v in r.items():
                key = k[len(PREFIX):] if k.startswith(PREFIX) else k
                if key == "config":
                    flatten("config", v, row)
                elif key == "proposed":
                    flatten("proposed", v, row)
                elif key == "warm_start":
                    flatten("ws", v, row)
                else:
                    row[key] = v
            rows.append(row)
    df = pd.DataFrame(rows)
    for column in (*STUDY_COLUMNS, "path", *REPORT_COLUMNS):
        if column not in df.columns:
            df[column] = pd.Series([None] * len(df), dtype=object)
    return df


def export(results_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write every report to ``out`` as Parquet (``.parquet``) or CSV (anything else)."""
    df = load_results(results_dir)
    out = Path(out)
    if out.suffix == ".parquet":
        df.to_parquet(out)
    else:
        df.to_csv(out, index=False)
    return out


#: summary.json ``ended`` values under which a study ran its course; any other ending (failure
#: limit, interrupted) cut the study short, so its T@tau and final score are not comparable.
COMPARABLE_ENDINGS = ("budget spent", "scheduler exhausted")


@dataclass
class StudyRecord:
    """One complete study as the analysis sees it, read once (item 8 of issue 17).

    ``key`` = (experiment, task level, scheduler, variant, seed): the task level is the folder's
    (an experiment file's label, else the task id), the scheduler its canonical name.
    ``budget`` and ``tau`` are the values the study used (study.json), never the spec's null.
    ``rows`` are the report rows summary.json vouches for (its ``reports`` count).
    """

    path: str
    experiment: str
    task: str
    scheduler: str
    variant: str
    seed: int
    budget: float
    tau: float
    clock: str
    study: dict[str, Any]
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    corrupt_lines: list[int] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.experiment, self.task, self.scheduler, self.variant, self.seed)

    @property
    def spec(self) -> dict[str, Any]:
        return self.study.get("spec", {}) or {}

    @property
    def task_info(self) -> dict[str, Any]:
        return self.study.get("task", {}) or {}


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def read_record(folder: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
                ) -> tuple[StudyRecord | None, list[str]]:
    """(record or None, warnings) for one study folder.

    summary.json is read first and only the rows it vouches for are kept, so a study that
    finishes while it is being read is either whole or skipped with a warning (never 0 rows).
    """
    folder = Path(folder)
    warns: list[str] = []
    name = str(folder.relative_to(root)) if root is not None else str(folder)
    summary, problem = read_json_checked(folder / SUMMARY_FILE)
    if summary is None:
        if not (folder / SUMMARY_FILE).exists():
            why = "interrupted (partial.json)" if (folder / PARTIAL_FILE).exists() else "incomplete (no summary.json)"
        else:
            why = f"unreadable ({problem})"
        return None, [f"{name}: skipped, {why}"]
    study, problem = read_json_checked(folder / STUDY_FILE)
    if study is None:
        return None, [f"{name}: skipped, no readable {STUDY_FILE} ({problem})"]
    bad: list[int] = []
    rows = list(iter_reports(folder, bad))
    vouched = summary.get("reports")
    if isinstance(vouched, int) and vouched >= 0:
        if len(rows) < vouched and not bad:
            return None, [f"{name}: skipped, summary.json counts {vouched} reports but {len(rows)} are readable"]
        rows = rows[:vouched]
    if bad:
        warns.append(f"{name}: {len(bad)} corrupt line(s) of {REPORTS_FILE} skipped (line {', '.join(map(str, bad[:5]))}"
                     + (" ..." if len(bad) > 5 else "") + ")")
    settings = study_settings(study, folder)
    parts = folder.parts
    task_level = parts[-4] if len(parts) >= 5 else str(settings["task_label"] or settings["task_id"])
    variant = parts[-2] if len(parts) >= 5 else str(settings["variant_label"] or "none")
    seed = settings["seed"]
    rec = StudyRecord(
        path=str(folder), experiment=str(settings["experiment"]), task=task_level, scheduler=str(settings["scheduler"]),
        variant=variant, seed=int(seed) if seed is not None else -1, budget=_num(settings["budget"]),
        tau=_num(settings["tau"]), clock=str(study.get("clock", "")), study=study, summary=summary, rows=rows,
        corrupt_lines=bad)
    return rec, warns


def load_records(results_dir: str | os.PathLike[str]) -> tuple[list[StudyRecord], list[str], list[dict[str, Any]]]:
    """(records, warnings, excluded) for every study below ``results_dir``.

    Incomplete studies are skipped with a warning. A complete study whose summary's ``ended`` is
    not one of :data:`COMPARABLE_ENDINGS` is excluded (listed in ``excluded`` and warned about);
    folders written before ``ended`` existed are kept. Two folders with the same key are an
    error (UserError): they would silently overwrite each other's seed pair.
    """
    warns: list[str] = []
    excluded: list[dict[str, Any]] = []
    return list(iter_records(results_dir, warns, excluded)), warns, excluded


def iter_records(results_dir: str | os.PathLike[str], warns: list[str], excluded: list[dict[str, Any]]
                 ) -> Iterator[StudyRecord]:
    """:func:`load_records` one record at a time (warnings and exclusions appended to the lists
    given), so that a reader of thousands of studies can keep what it needs of each and let the
    report rows go: all rows of an 8,000-study LCBench experiment do not fit in memory."""
    root = Path(results_dir)
    seen: dict[tuple[Any, ...], str] = {}
    for folder in find_studies(root):
        rec, w = read_record(folder, root)
        warns += w
        if rec is None:
            continue
        if rec.key in seen:
            raise UserError(f"two studies share the key {'/'.join(map(str, rec.key))}: {seen[rec.key]} and {rec.path}")
        seen[rec.key] = rec.path
        ended = rec.summary.get("ended")
        if ended is not None and ended not in COMPARABLE_ENDINGS:
            excluded.append({"study": str(Path(rec.path).relative_to(root)), "ended": ended,
                             "budget_used_fraction": rec.summary.get("budget_used_fraction")})
            warns.append(f"{Path(rec.path).relative_to(root)}: excluded, ended early ({ended})")
            continue
        yield rec
