"""Pins: the records of small fixed studies (spec and seed) are unchanged by refactors.

Each study below runs on the simulated clock, whose records are deterministic for a spec and
seed on one machine. The pinned records (``tests/pins/<name>.json``) are every row of
``reports.jsonl`` and the summary, with the fields that depend on the run rather than on the
spec removed (wall-clock times, measured seconds and memory, paths).

What must be identical on any machine is compared exactly: the keys, the number of rows, and
every string, integer, boolean and null (trial ids and their order, decisions, fidelities,
statuses, seeds, counts). Floats (metrics, configs after a nudge, simulated times) are compared
with a relative tolerance of ``REL_TOL`` (1e-5): float32 training differs across CPU models by
3e-8 to 1e-6 relative, and rounding to a fixed number of digits is no tolerance (a value near a
rounding boundary flips). A failure lists the first differences by path, not a digest.

Only studies whose decisions do not hinge on float32 last digits are pins: ASHA, promotion
ASHA and SMAC's Hyperband rank values, so a different decision needs two values within 1e-6 of
each other; DyHPO fits a model to them and is checked by ``tests/test_dyhpo_repro.py`` instead.

The records were first pinned (as digests) on main's code before the study pipeline refactor
of issue 20 (at d198edd); ``python tests/test_pins.py --write`` rewrites the files. A
change that is MEANT to change records must rewrite them and say so in its commit message.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ohgw_bench import results
from ohgw_bench.study import StudySpec, run_study
from ohgw_bench.warmstart import WarmStartSettings

PIN_DIR = Path(__file__).parent / "pins"
REL_TOL = 1e-5
ABS_TOL = 1e-12  # for floats that are zero on one machine and 1e-17 on another
MAX_SHOWN = 15

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


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in sorted(obj.items()) if k not in RUN_FIELDS}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def records(folder: Path) -> dict[str, Any]:
    """The study's rows and summary without their run-dependent fields."""
    rows = [json.loads(line) for line in (folder / results.REPORTS_FILE).read_text().splitlines() if line.strip()]
    summary = json.loads((folder / results.SUMMARY_FILE).read_text())
    return {"rows": _clean(rows), "summary": _clean(summary)}


def dump(rec: dict[str, Any]) -> str:
    """The pin file's text: one row per line, so that a deliberate change shows as a readable git diff."""
    line = lambda obj: json.dumps(obj, sort_keys=True, separators=(",", ":"))  # noqa: E731
    rows = ",\n".join(line(r) for r in rec["rows"])
    return f'{{"rows": [\n{rows}\n],\n"summary": {line(rec["summary"])}}}\n'


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Readable differences: exact for everything but finite floats, which get ``REL_TOL``."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}.{k}: missing" for k in expected if k not in actual]
        out += [f"{path}.{k}: unexpected (= {actual[k]!r})" for k in actual if k not in expected]
        for k in expected:
            if k in actual:
                out += differences(expected[k], actual[k], f"{path}.{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        out = [] if len(expected) == len(actual) else [f"{path}: {len(actual)} items, pinned {len(expected)}"]
        for i, (e, a) in enumerate(zip(expected, actual)):
            out += differences(e, a, f"{path}[{i}]")
        return out
    if (isinstance(expected, float) and isinstance(actual, float) and math.isfinite(expected)
            and math.isfinite(actual)):
        if math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            return []
        return [f"{path}: {actual!r}, pinned {expected!r} (relative difference "
                f"{abs(actual - expected) / max(abs(expected), ABS_TOL):.1e} > {REL_TOL:g})"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: {actual!r}, pinned {expected!r}"]
    return []


def run_pinned(name: str, root: Path) -> Path:
    spec = StudySpec(seed=3, n_workers=2, experiment="pins", results_dir=str(root), **STUDIES[name])
    summary = run_study(spec, progress=False)
    return Path(summary["folder"])


def test_the_comparison_is_exact_for_decisions_and_tolerant_for_floats() -> None:
    pinned = {"rows": [{"trial": 1, "decision": "PAUSE", "metric": 0.123456789}]}
    assert differences(pinned, {"rows": [{"trial": 1, "decision": "PAUSE", "metric": 0.1234568}]}) == []
    assert differences(pinned, {"rows": [{"trial": 1, "decision": "STOP", "metric": 0.123456789}]}) == [
        ".rows[0].decision: 'STOP', pinned 'PAUSE'"]
    assert differences(pinned, {"rows": [{"trial": 2, "decision": "PAUSE", "metric": 0.123456789}]})
    assert differences(pinned, {"rows": [{"trial": 1, "decision": "PAUSE", "metric": 0.1235}]})
    assert differences(pinned, {"rows": []}) == [".rows: 0 items, pinned 1"]
    assert differences({"n": 1}, {"n": 1.0})  # an int that became a float is a change


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_records_of_a_fixed_spec_and_seed_are_pinned(name: str, tmp_path: Path) -> None:
    folder = run_pinned(name, tmp_path)
    actual = records(folder)
    assert len(actual["rows"]) >= 3, f"{name}: too few rows to pin anything"
    expected = json.loads((PIN_DIR / f"{name}.json").read_text())
    diff = differences(expected, actual)
    shown = "\n".join(diff[:MAX_SHOWN]) + (f"\n... and {len(diff) - MAX_SHOWN} more" if len(diff) > MAX_SHOWN else "")
    assert not diff, f"{name}: the records of a fixed spec and seed changed ({len(diff)} differences):\n{shown}"


if __name__ == "__main__":  # rewrite the pinned records (deliberately)
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Rewrite tests/pins/*.json from the current code (deliberately).")
    parser.add_argument("--write", action="store_true", help="write the files (without it: print row counts only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(STUDIES):
            rec = records(run_pinned(name, Path(tmp)))
            if args.write:
                PIN_DIR.mkdir(exist_ok=True)
                (PIN_DIR / f"{name}.json").write_text(dump(rec))
            print(f"{name}: {len(rec['rows'])} rows")
