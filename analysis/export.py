"""One row per study, with the command line that reproduces it: ``studies.csv``.

    python -m analysis.export RESULTS_DIR --out studies.csv

The report writes the same file into its bundle. Columns: experiment, task (the folder's task
level), scheduler, variant, seed, reached_tau, t_tau (null if not reached), auc, best_metric,
best_test_metric (within the budget), warm_start_share (S/W, as summary.json), trials, reports,
budget, tau, clock, peak_rss_bytes, ended, study (folder, relative to the results dir),
command, and the task's metric, test_metric and mode (what ``python -m analysis.report
studies.csv --from-csv`` needs to rebuild a report from this file alone). ``command`` is the ``python -m ohgw_bench.run`` line rebuilt from study.json's frozen
spec (task and its options, scheduler and its options, warm-start settings, backend, workers,
budget and tau as given, seed, failure limits, experiment, results dir); run alone it gives the
same best_metric and t_tau. Options left at null in the spec (the task's default budget or tau)
are left out, so the re-run's spec equals the recorded one. A task label from an experiment
file has no command-line flag: the re-run's folder sits under the task id instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.studies_csv import COLUMNS, command, row, write_csv
from ohgw_bench.errors import UserError

__all__ = ["COLUMNS", "command", "main", "row", "write_csv"]


def main(argv: list[str] | None = None) -> int:
    from analysis import report

    p = argparse.ArgumentParser(prog="python -m analysis.export", description=__doc__.splitlines()[0])
    p.add_argument("results_dir")
    p.add_argument("--out", default="studies.csv", help="CSV file to write (default: ./studies.csv)")
    args = p.parse_args(argv)
    try:
        analysis = report.analyse(args.results_dir)
    except (report.NoResults, UserError) as e:
        print(f"analysis.export: {e}", file=sys.stderr)
        return 2
    for w in analysis["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    out = write_csv(analysis["studies"], Path(args.out), Path(args.results_dir))
    print(f"{len(analysis['studies'])} studies -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
