"""The conformance checks of ohgw_bench.testing over every registered task (and one member per family)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ohgw_bench import tasks
from ohgw_bench.testing import CHECKS, check_task

FAMILY_EXAMPLES = ["atari-space_invaders"]
IDS = sorted(tasks.registry) + FAMILY_EXAMPLES


@pytest.mark.parametrize("task_id", IDS)
def test_task_conforms(task_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, entry_point, kwargs = tasks.resolve(task_id)
    cls = tasks._load(entry_point)
    setup = cls.conformance_setup(tmp_path)
    task = tasks.make(task_id, **setup)
    capsys.readouterr()
    check_task(task)
    printed = capsys.readouterr().out.splitlines()  # a pass says what it checked
    assert printed[0] == f"task {task.id}: {len(CHECKS)} conformance checks passed"
    assert [line.split(":")[0].strip() for line in printed[1:]] == [c.__name__ for c in CHECKS]
