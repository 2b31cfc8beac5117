"""The rows of ``studies.csv``: one per study, with the command line that reproduces it.

The report writes the file into its bundle; ``python -m analysis.export`` writes it alone (that
module's docstring lists the columns). Kept apart from both so that neither imports the other.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
from pathlib import Path
from typing import Any

from analysis.common import Study

COLUMNS = ("experiment", "task", "scheduler", "variant", "seed", "reached_tau", "t_tau", "auc", "best_metric",
           "best_test_metric", "warm_start_share", "trials", "reports", "budget", "tau", "clock",
           "peak_rss_bytes", "ended", "study", "command")


def _opt(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def command(spec: dict[str, Any]) -> str:
    """The ``python -m ohgw_bench.run`` command line that re-runs one study from its frozen spec."""
    args = ["python", "-m", "ohgw_bench.run", "--task", str(spec.get("task"))]
    for k, v in sorted((spec.get("task_options") or {}).items()):
        args += ["--task-option", f"{k}={_opt(v)}"]
    args += ["--scheduler", str(spec.get("scheduler"))]
    for k, v in sorted((spec.get("scheduler_options") or {}).items()):
        args += ["--scheduler-option", f"{k}={_opt(v)}"]
    ws = spec.get("warm_start") or {}
    variant = ws.get("variant", "none")
    if variant != "none":
        args += ["--warm-start", str(variant)]
        for key, flag in (("eta_h", "--eta-h"), ("step_rule", "--step-rule"), ("rho", "--rho"),
                          ("horizon", "--horizon"), ("mode", "--hg-mode")):
            if ws.get(key) is not None:
                args += [flag, str(ws[key])]
        if ws.get("split_batch"):
            args.append("--split-batch")
    args += ["--seed", str(spec.get("seed"))]
    for key, flag in (("budget", "--budget"), ("tau", "--tau"), ("n_workers", "--workers"), ("backend", "--backend"),
                      ("max_failures", "--max-failures"), ("max_consecutive_failures", "--max-consecutive-failures"),
                      ("experiment", "--experiment"), ("results_dir", "--results-dir"), ("data_dir", "--data-dir")):
        if spec.get(key) is not None:
            args += [flag, repr(spec[key]) if isinstance(spec[key], float) else str(spec[key])]
    return shlex.join(args)


def _num(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def row(s: Study, root: Path | None = None) -> dict[str, Any]:
    """The studies.csv row of one analysed study (``s.m`` filled by the report)."""
    sm = s.record.summary
    ws = sm.get("warm_start") or {}
    reached = bool(s.m.get("reached"))
    folder = Path(s.path)
    return {
        "experiment": s.experiment, "task": s.task, "scheduler": s.scheduler, "variant": s.variant, "seed": s.seed,
        "reached_tau": reached, "t_tau": _num(s.m.get("t_tau")) if reached else None,
        "auc": _num(s.m.get("auc")), "best_metric": _num(s.m.get("final")), "best_test_metric": _num(s.m.get("final_test")),
        "warm_start_share": _num(s.m.get("overhead", {}).get("overhead_share", ws.get("share_of_worker_time"))),
        "trials": sm.get("trials", s.m.get("n_trials")), "reports": sm.get("reports", s.m.get("n_reports")),
        "budget": _num(s.budget), "tau": _num(s.tau), "clock": s.clock, "peak_rss_bytes": sm.get("peak_rss_bytes"),
        "ended": sm.get("ended"),
        "study": str(folder.relative_to(root)) if root is not None and folder.is_relative_to(root) else str(folder),
        "command": command(s.record.spec),
    }


def write_csv(studies: list[Study], path: Path, root: Path | None = None) -> Path:
    """Write studies.csv (sorted by key); empty cells for missing values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted((row(s, root) for s in studies),
                  key=lambda r: (r["experiment"], r["task"], r["scheduler"], r["variant"], r["seed"]))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    return path
