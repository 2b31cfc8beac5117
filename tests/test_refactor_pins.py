"""Pins: the records of small fixed studies (spec and seed) are unchanged by refactors.

Each study below runs on the simulated clock, whose records are deterministic for a spec and
seed. The digest covers every row of ``reports.jsonl`` and the summary, with the fields that
depend on the run rather than on the spec removed (wall-clock times, measured seconds and
memory, paths). Floats are rounded to 9 significant digits so that last-bit differences of a
different CPU's arithmetic do not count; a different scheduler decision, config, seed, charge
or record still changes the digest.

The digests were computed on main's code before the study pipeline refactor of issue 20 (at
d198edd, which added the ``sham`` key to warm-start records); ``python tests/test_refactor_pins.py``
prints them. A change that is MEANT to change records must update them and say so in its
commit message.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest

from ohgw_bench import results
from ohgw_bench.study import StudySpec, run_study
from ohgw_bench.warmstart import WarmStartSettings

# Fields whose values come from the machine or the run, not from the spec and seed.
RUN_FIELDS = {"ohgw_time_wall", "wall_seconds", "folder", "peak_rss_bytes", "seconds", "peak_bytes",
              "ratio_time", "ratio_memory", "finished_at"}

STUDIES: dict[str, dict[str, Any]] = {
    "digits-asha-none": dict(task="digits", scheduler="asha", budget=2.0),
    "digits-asha-ohgw-normalized": dict(task="digits", scheduler="asha", budget=2.0,
                                        warm_start=WarmStartSettings("ohgw", step_rule="normalized")),
    "digits-smac-hyperband-ohgw": dict(task="digits", scheduler="smac-hyperband", budget=2.0,
                                       warm_start=WarmStartSettings("ohgw", step_rule="normalized")),
    "table-smac-hyperband-ohgw": dict(task="table", scheduler="smac-hyperband", budget=40.0,
                                      warm_start=WarmStartSettings("ohgw", step_rule="sign")),
    "table-asha-promotion-random": dict(task="table", scheduler="asha-promotion", budget=40.0,
                                        warm_start=WarmStartSettings("random", step_rule="normalized")),
}

PINS = {
    "digits-asha-none": "ee5f80e1b260abd1179ef6e5d0cef1d8ebdff0858a0139b2554632a53976fa7f",
    "digits-asha-ohgw-normalized": "b74568804c8fb092997c7e93880ff508f0fa3f73959ccd94928892f207f219bf",
    "digits-smac-hyperband-ohgw": "056100f76d52aaa18c65b1576b866d441e0c4bba1b545ced6fa8f22f1e1240e2",
    "table-asha-promotion-random": "4c71916eb6e31edbfb7fe9dc0f01d089107397970c9db8705b983963df96e923",
    "table-smac-hyperband-ohgw": "24ad1d8739169b9ccd730281ff69003f6cf945e6ae49cb58d9ce9dc9fca67226",
}


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in sorted(obj.items()) if k not in RUN_FIELDS}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and math.isfinite(obj):
        return float(f"{obj:.9g}")
    return obj


def digest(folder: Path) -> str:
    """SHA-256 of the study's rows and summary without their run-dependent fields."""
    rows = [json.loads(line) for line in (folder / results.REPORTS_FILE).read_text().splitlines() if line.strip()]
    summary = json.loads((folder / results.SUMMARY_FILE).read_text())
    text = json.dumps({"rows": _clean(rows), "summary": _clean(summary)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_pinned(name: str, root: Path) -> Path:
    spec = StudySpec(seed=3, n_workers=2, experiment="pins", results_dir=str(root), **STUDIES[name])
    summary = run_study(spec, progress=False)
    return Path(summary["folder"])


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_records_of_a_fixed_spec_and_seed_are_pinned(name: str, tmp_path: Path) -> None:
    folder = run_pinned(name, tmp_path)
    rows = (folder / results.REPORTS_FILE).read_text().splitlines()
    assert len(rows) >= 3, f"{name}: too few rows to pin anything"
    assert digest(folder) == PINS[name], f"{name}: the records of a fixed spec and seed changed"


if __name__ == "__main__":  # print the digests (to update PINS deliberately)
    import argparse
    import sys
    import tempfile

    argparse.ArgumentParser(description="Print the digests of the pinned studies (to update PINS deliberately).").parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(STUDIES):
            folder = run_pinned(name, Path(tmp))
            n = len((folder / results.REPORTS_FILE).read_text().splitlines())
            print(f"    {name!r}: {digest(folder)!r},  # {n} rows", file=sys.stdout)
