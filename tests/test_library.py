"""OHGW as a library call (issue 26 item 2): ``ohgw_bench.warm_start``, the Optuna sampler
wrapper and the Syne Tune scheduler wrapper, and the examples of docs/library.md, run verbatim."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import ohgw_bench
from ohgw_bench import baselines, tasks
from ohgw_bench.warmstart import make_warm_start

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "library.md"
CONFIG = {"lr": 0.05, "weight_decay": 1e-4, "momentum": 0.9, "aug_magnitude": 0.1, "label_smoothing": 0.0}


def code_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_a_config_off_the_space_is_a_value_error_naming_the_keys() -> None:
    partial = {"lr": 0.05, "dropout": 0.1}
    # the internal path records the error and trains the config unchanged (a study goes on) ...
    task = tasks.make("digits")
    task.prepare()
    unchanged, record = make_warm_start("ohgw", task, 0).apply(partial, 0)
    assert unchanged == partial and record["reason"].startswith("error: KeyError")
    # ... the public call raises, naming what is missing and what is unexpected
    with pytest.raises(ValueError, match=r"missing 'weight_decay', 'momentum', 'aug_magnitude', "
                                         r"'label_smoothing'; unexpected 'dropout'"):
        ohgw_bench.warm_start("digits", partial, "ohgw", 0)
    with pytest.raises(ValueError, match=r"'lr': 5.0 outside \[0.001, 1.0\]"):
        ohgw_bench.warm_start("digits", {**CONFIG, "lr": 5.0}, "ohgw", 0)
    with pytest.raises(ValueError, match="unknown part .sideways."):
        ohgw_bench.warm_start("digits", CONFIG, "ohgw-sideways", 0)


def test_warm_start_takes_an_id_or_a_task_instance_and_moves_the_config() -> None:
    by_id, rec_id = ohgw_bench.warm_start("digits", CONFIG, "ohgw-normalized", 7)
    task = ohgw_bench.make_task("digits")
    by_task, rec_task = ohgw_bench.warm_start(task, CONFIG, "ohgw-normalized", 7)
    assert rec_id["applied"] and rec_task["applied"]
    assert by_id == pytest.approx(by_task, rel=1e-9)
    assert 0.04 < rec_id["step_norm_unit"] <= 0.05 + 1e-9  # radius rho, less where a bound clips
    assert by_id["lr"] != CONFIG["lr"]
    none, rec_none = ohgw_bench.warm_start(task, CONFIG, "none", 7)
    assert none == CONFIG and not rec_none["applied"]
    assert ohgw_bench.paired_seed(0, 3) == ohgw_bench.paired_seed(0, 3) != ohgw_bench.paired_seed(1, 3)


def test_optuna_wrapper_trains_the_nudged_config_from_the_paired_seed() -> None:
    optuna = pytest.importorskip("optuna")
    from ohgw_bench.integrations.optuna import WarmStartSampler, suggest_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = ohgw_bench.make_task("digits")
    arms = {}
    for variant in ("none", "ohgw-normalized"):
        sampler = WarmStartSampler(optuna.samplers.TPESampler(seed=0), task, variant, seed=0)
        trained = []

        def objective(trial, sampler=sampler, trained=trained):
            config = suggest_config(trial, task)
            seed = sampler.training_seed(trial)
            trained.append((trial.number, dict(config), seed))
            state = task.init_state(config, seed)
            task.train(state, 1)
            return task.evaluate(state)[task.metric]

        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=3)
        arms[variant] = (sampler, study, trained)
    for sampler, study, trained in arms.values():
        for (number, config, seed), frozen in zip(trained, study.trials):
            assert seed == ohgw_bench.paired_seed(0, number)  # the paired seed reached the objective
            assert frozen.params == config                     # Optuna recorded what was trained
            assert sampler.plan(frozen).seed == seed
    none_plan, ohgw_plan = (arms[v][0].plan(arms[v][1].trials[0]) for v in ("none", "ohgw-normalized"))
    assert none_plan.proposed == ohgw_plan.proposed  # same sampler seed, same first proposal
    assert arms["ohgw-normalized"][1].trials[0].params != ohgw_plan.proposed  # ... then nudged


def test_syne_tune_wrapper_passes_the_seed_and_hides_it_from_the_base() -> None:
    from syne_tune.backend.trial_status import Trial

    from ohgw_bench.integrations.syne_tune import WarmStartScheduler

    task = tasks.make("table", max_epochs=9)
    ctx = baselines.SchedulerContext.for_task(task, 0)
    base = baselines.build("asha-promotion", ctx)
    scheduler = WarmStartScheduler(base, task, "ohgw-normalized", seed=0)
    for i in range(3):
        s = scheduler.suggest()
        assert s.config["ohgw_seed"] == ohgw_bench.paired_seed(0, i)
        scheduler.on_trial_add(Trial(trial_id=i, config=s.config, creation_time=None))
        assert "ohgw_seed" not in base.configs[i]
        assert scheduler.plans.get(i).seed == s.config["ohgw_seed"]
        scheduler.on_trial_result(Trial(i, s.config, None), {task.fidelity.name: 1, task.metric: float(i)})
    resume = scheduler.suggest()  # promotion ASHA resumes the best of the rung: trial 0
    assert not resume.spawn_new_trial_id and resume.checkpoint_trial_id == 0
    assert resume.config["ohgw_seed"] == ohgw_bench.paired_seed(0, 0)


def test_the_library_doc_runs_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("optuna")
    blocks = code_blocks(DOC)
    assert len(blocks) == 4
    for block in blocks:  # examples use only public names
        assert not re.search(r"\b_[a-z]\w*|\._[a-z]", block.replace("__main__", "")), block
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the trial processes of the Syne Tune example
    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path / "unused"))  # restored after the doc sets it
    namespace: dict = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    text = out.getvalue()
    assert "missing 'weight_decay', 'momentum', 'aug_magnitude', 'label_smoothing'; unexpected 'dropout'" in text
    assert namespace["record"]["applied"]
    study, sampler = namespace["study"], namespace["sampler"]
    assert len(study.trials) == 4
    first = study.trials[0]
    assert first.params != sampler.plan(first).proposed
    tuner, scheduler = namespace["tuner"], namespace["scheduler"]
    assert scheduler.plans.get(0) is not None and scheduler.plans.get(0).record["applied"]
    assert len(tuner.tuning_status.trial_rows) >= 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # everything under the results folder
