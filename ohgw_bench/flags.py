"""The command-line flag of each study field, declared once (no imports, so the analysis can read it).

``python -m ohgw_bench.run`` reads a :class:`~ohgw_bench.spec.StudySpec` field from the flag's
value and records the flag as the field's source (errors name it); ``analysis/studies_csv.py``
writes a study's re-run command with the same flags.
"""

from __future__ import annotations

#: the command-line flag of each StudySpec field that ``python -m ohgw_bench.run`` sets
FLAGS: dict[str, str] = {
    "task": "--task", "task_options": "--task-option", "scheduler": "--scheduler",
    "scheduler_options": "--scheduler-option", "seed": "--seed", "budget": "--budget", "tau": "--tau",
    "n_workers": "--workers", "backend": "--backend", "max_failures": "--max-failures",
    "max_consecutive_failures": "--max-consecutive-failures", "experiment": "--experiment",
    "results_dir": "--results-dir", "data_dir": "--data-dir", "unit_timeout": "--unit-timeout",
}
#: the command-line flag of each WarmStartSettings field
WARM_START_FLAGS: dict[str, str] = {
    "variant": "--warm-start", "eta_h": "--eta-h", "step_rule": "--step-rule", "rho": "--rho",
    "horizon": "--horizon", "mode": "--hg-mode", "split_batch": "--split-batch", "clock": "--warm-start-clock",
}


def dest(flag: str) -> str:
    """argparse's attribute name for ``flag`` (``--task-option`` -> ``task_option``)."""
    return flag.lstrip("-").replace("-", "_")
