"""A study is resolved once (ohgw_bench/spec.py): StudySpec -> ResolvedStudy, one validation.

Covers issue 27 item 1: the resolved study carries canonical names, checked options with their
defaults, concrete budget and tau, the folder; errors name where a field came from; a setting
declared once is validated once per study; folders written before ``resolved`` are still reused.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest

from ohgw_bench import options, results
from ohgw_bench.errors import UserError
from ohgw_bench.options import Option, declares
from ohgw_bench.spec import StudySpec
from ohgw_bench.study import run_study


@declares(Option("dummy", int, 7, "a setting declared here and nowhere else", low=1))
def build_dummy(ctx: Any, **_: Any) -> Any:
    """Random search that records the dummy option it was given (a user's module:function factory)."""
    from ohgw_bench.baselines.synetune import build_random

    SEEN.append(ctx.options["dummy"])
    return build_random(ctx)


SEEN: list[Any] = []


def test_resolve_fills_every_default_and_names_the_folder(tmp_path: Path) -> None:
    spec = StudySpec(task="table", scheduler="hyperband-bo", results_dir=str(tmp_path), seed=3,
                     scheduler_options={"reduction_factor": 2})
    resolved, task = spec.resolve()
    assert resolved.scheduler == "bohb" and resolved.task == "table-curves-v1" == resolved.task_id == task.id
    assert resolved.scheduler_options["eta"] == 2 and "grace_period" in resolved.scheduler_options  # alias, defaults
    assert resolved.budget == float(task.default_budget) and resolved.tau == float(task.tau)
    assert resolved.folder == str(tmp_path / "default" / "table-curves-v1" / "bohb" / "none" / "seed-3")
    assert resolved.study_id == "default/table-curves-v1/bohb/none/seed-3"
    with pytest.raises(AttributeError):
        resolved.budget = 1.0  # type: ignore[misc]  # frozen: later layers cannot change it
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # resolving writes nothing


@pytest.mark.parametrize("sources, needle", [
    ({}, "seed must be an integer in [0, 4294967295], got -1"),
    ({"seed": "--seed"}, "--seed must be an integer"),
    ({"seed": "key 'grids[1].seeds'"}, "key 'grids[1].seeds' must be an integer"),
])
def test_errors_name_where_the_field_came_from(sources: dict[str, str], needle: str) -> None:
    with pytest.raises(UserError) as e:
        StudySpec(seed=-1, sources=sources).check()
    assert needle in str(e.value)


def test_a_scheduler_option_is_prefixed_by_its_source() -> None:
    with pytest.raises(UserError) as e:
        StudySpec(scheduler="asha", scheduler_options={"grace_perod": 2},
                  sources={"scheduler_options": "--scheduler-option"}).check()
    assert str(e.value).startswith("--scheduler-option: scheduler 'asha': unknown option 'grace_perod'")


def test_a_setting_declared_once_is_validated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: collections.Counter[str] = collections.Counter()
    coerce = options.Option.coerce

    def counting(self: Option, value: Any, where: str) -> Any:
        calls[self.name] += 1
        return coerce(self, value, where)

    monkeypatch.setattr(options.Option, "coerce", counting)
    SEEN.clear()
    spec = StudySpec(task="table", scheduler=f"{__name__}:build_dummy", budget=20.0, n_workers=2,
                     results_dir=str(tmp_path), scheduler_options={"dummy": 3})
    summary = run_study(spec, progress=False)
    assert calls["dummy"] == 1 and SEEN == [3]
    saved = json.loads((Path(summary["folder"]) / results.STUDY_FILE).read_text())
    assert saved["resolved"]["scheduler_options"] == {"dummy": 3}
    with pytest.raises(UserError, match="option 'dummy' expects an integer >= 1, got 0"):
        StudySpec(task="table", scheduler=f"{__name__}:build_dummy", scheduler_options={"dummy": 0}).check()


def test_a_folder_written_before_resolved_existed_is_still_reused(tmp_path: Path) -> None:
    spec = StudySpec(task="table", scheduler="asha", budget=20.0, n_workers=2, results_dir=str(tmp_path))
    summary = run_study(spec, progress=False)
    path = Path(summary["folder"]) / results.STUDY_FILE
    old = json.loads(path.read_text())
    resolved, _ = spec.resolve()
    old.pop("resolved")
    old["identity"] = resolved.legacy_identity()  # what the study.json of an older version held
    path.write_text(json.dumps(old))
    assert run_study(spec, progress=False).get("skipped")
    rec, warns = results.read_record(path.parent, tmp_path)  # read through the legacy path
    assert rec is not None and (rec.budget, rec.tau, rec.scheduler) == (20.0, resolved.tau, "asha")
    old["identity"] = {**old["identity"], "seed": 5}
    path.write_text(json.dumps(old))
    with pytest.raises(UserError, match="different spec"):
        run_study(spec, progress=False)
