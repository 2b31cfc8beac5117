"""Declared options (issue 16 item 4, issue 18 items 4 and 5): validation in run, experiment and
--dry-run; BOHB's KDE settings reaching the searcher; promotion ASHA's two rules; label noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ohgw_bench import baselines, tasks
from ohgw_bench.errors import UserError
from ohgw_bench.experiment import main as experiment_main
from ohgw_bench.options import Option, validate
from ohgw_bench.run import main as run_main


def _ctx(options: dict | None = None, max_epochs: int = 9) -> baselines.SchedulerContext:
    t = tasks.make("table", max_epochs=max_epochs)
    return baselines.SchedulerContext(space=t.space, config_space=t.space.to_syne_tune(), metric=t.metric,
                                      mode=t.mode, resource_attr="epochs", min_resource=1,
                                      max_resource=max_epochs, seed=0, options=dict(options or {}))


def _one_line_exit_2(capsys: pytest.CaptureFixture[str], rc: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


# ------------------------------------------------------------------ the validator itself
def test_validate_checks_names_types_ranges_and_aliases() -> None:
    declared = (Option("eta", int, 3, "", low=2, aliases=("reduction_factor",)),
                Option("rule", str, "paper", "", choices=("paper", "quantile")),
                Option("bw", float, 1e-3, "", low=0.0, nullable=True))
    assert validate(declared, {"reduction_factor": 2.0}, "x") == {"eta": 2, "rule": "paper", "bw": 1e-3}
    assert validate(declared, {"bw": None}, "x", defaults=False) == {"bw": None}
    for bad, needle in [({"nonsense": 1}, "valid options: eta, rule, bw"), ({"eta": "abc"}, "integer"),
                        ({"eta": 1}, ">= 2"), ({"eta": 2.5}, "integer"), ({"eta": True}, "integer"),
                        ({"rule": "best"}, "one of paper, quantile"), ({"bw": float("nan")}, "number"),
                        ({"eta": 2, "reduction_factor": 2}, "given twice")]:
        with pytest.raises(UserError, match=needle):
            validate(declared, bad, "x")


# ------------------------------------------------------------------ run: one line, exit 2, nothing written
@pytest.mark.parametrize("argv, needles", [
    (["--scheduler-option", "nonsense=1"], ("unknown option 'nonsense'", "eta")),
    (["--scheduler-option", "eta=abc"], ("'eta' expects an integer",)),
    (["--scheduler", "asha-promotion", "--scheduler-option", "promotion_rule=best"], ("paper, quantile",)),
    (["--scheduler", "bohb", "--scheduler-option", "min_bandwidth=-1"], ("min_bandwidth",)),
    (["--task-option", "hiddn=32"], ("unknown option 'hiddn'", "hidden")),
    (["--task-option", "label_noise=1.5"], ("label_noise",)),
    (["--scheduler", "nomodule_here:build"], ("cannot be imported",)),
])
def test_run_refuses_bad_options_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 argv: list[str], needles: tuple[str, ...]) -> None:
    rc = run_main([*argv, "--results-dir", str(tmp_path / "r"), "--budget", "5", "--quiet"])
    _one_line_exit_2(capsys, rc, *needles)
    assert not (tmp_path / "r" / "default").exists()


def test_asha_reads_reduction_factor_as_eta() -> None:
    # main ignored reduction_factor on asha (it read only eta) and built eta = 3
    assert baselines.build("asha", _ctx({"reduction_factor": 2})).reduction_factor == 2
    assert baselines.build("asha", _ctx({"eta": 4})).reduction_factor == 4
    assert min(level for level, _ in baselines.build("asha", _ctx({"grace_period": 3})).brackets[0].rungs) == 3
    with pytest.raises(UserError, match="grace_period"):
        baselines.build("asha", _ctx({"grace_period": 10}))


# ------------------------------------------------------------------ experiment files and --dry-run
@pytest.mark.parametrize("tasks_yaml, schedulers_yaml, needles", [
    ("[{task: digits, options: {hiddn: 32}}]", "[asha]", ("tasks[0].options", "unknown option 'hiddn'", "hidden")),
    ("[digits]", "[{scheduler: asha, options: {grace_perod: 2}}]", ("schedulers[0]", "'grace_perod'", "grace_period")),
    ("[digits]", "[{scheduler: pasha, options: {eta: abc}}]", ("schedulers[0]", "'eta' expects an integer")),
])
@pytest.mark.parametrize("dry", [True, False])
def test_experiment_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], tasks_yaml: str,
                                        schedulers_yaml: str, needles: tuple[str, ...], dry: bool) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\nbudget: 5\ntasks: {tasks_yaml}\nschedulers: {schedulers_yaml}\nvariants: [none]\n")
    rc = experiment_main([str(path), "--results-dir", str(tmp_path / "r"), *(["--dry-run"] if dry else [])])
    _one_line_exit_2(capsys, rc, str(path), *needles)
    assert not (tmp_path / "r" / "e").exists()


def test_ablations_file_passes_dry_run_with_label_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = experiment_main(["experiments/ablations.yaml", "--results-dir", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0 and "cifar10-noisy20/asha/ohgw/seed-9" in out


# ------------------------------------------------------------------ BOHB's KDE (issue 18 item 4)
def test_bohb_kde_options_reach_the_searcher_with_paper_defaults() -> None:
    scheduler = baselines.build("hyperband-bo", _ctx())
    scheduler.searcher.fit_model()  # what Syne Tune does once it has data: builds the KDE from searcher_kwargs
    kde = scheduler.searcher.searcher
    assert (kde.min_bandwidth, kde.top_n_percent, kde.num_candidates, kde.bandwidth_factor) == (1e-3, 15, 64, 3.0)
    assert kde.random_fraction == pytest.approx(1 / 3)
    given = {"min_bandwidth": 0.1, "top_n_percent": 30, "num_candidates": 16, "random_fraction": 0.5,
             "bandwidth_factor": 2, "num_min_data_points": 5}
    scheduler = baselines.build("bohb", _ctx(given))
    scheduler.searcher.fit_model()
    kde = scheduler.searcher.searcher
    assert {k: getattr(kde, k) for k in given} == given
    with pytest.raises(UserError, match="num_min_data_points"):
        baselines.build("bohb", _ctx({"num_min_data_points": 1}))


# ------------------------------------------------------------------ promotion rules (issue 18 item 5)
def _rung(rule: str, values: dict[int, float], eta: int = 3) -> object:
    from ohgw_bench.baselines.asha_promotion import build

    s = build(_ctx({"eta": eta, "promotion_rule": rule}))
    s.rungs[0].update(values)
    s.paused.update(values)
    return s


def test_paper_rule_promotes_from_top_floor_n_over_eta() -> None:
    assert _rung("paper", {0: 0.5, 1: 0.3}).promotable(0) is None  # floor(2/3) = 0
    assert _rung("paper", {0: 0.5, 1: 0.3, 2: 0.4}).promotable(0) == 1
    s = _rung("paper", {0: 0.5, 1: 0.3, 2: 0.4, 3: 0.2, 4: 0.9, 5: 0.6})  # top 2: trials 3 and 1
    s.promoted[0].add(3)
    assert s.promotable(0) == 1
    s.promoted[0].add(1)
    assert s.promotable(0) is None


def test_quantile_rule_promotes_within_the_one_over_eta_quantile() -> None:
    assert _rung("quantile", {0: 0.5}).promotable(0) is None
    assert _rung("quantile", {0: 0.5, 1: 0.3}).promotable(0) == 1  # already at n = 2
    s = _rung("quantile", {0: 0.5, 1: 0.3, 2: 0.4, 3: 0.2, 4: 0.9, 5: 0.6})
    s.promoted[0].update({3, 1})  # cutoff = quantile(values, 1/3) = 0.3667: trial 2 (0.4) is not within it
    assert s.promotable(0) is None
    s = _rung("quantile", {0: 0.5, 1: 0.3, 2: 0.35, 3: 0.2}, eta=2)  # cutoff 0.325: trials 3 then 1
    s.paused.discard(3)
    assert s.promotable(0) == 1


# ------------------------------------------------------------------ label noise (issue 16 item 4)
def test_label_noise_flips_training_labels_only_deterministically() -> None:
    clean = tasks.make("digits")
    noisy = tasks.make("digits", label_noise=0.2)
    again = tasks.make("digits", label_noise=0.2)
    for split in ("val", "test"):
        assert np.array_equal(clean.data[split][1].numpy(), noisy.data[split][1].numpy())
    y0, y1 = clean.data["train"][1].numpy(), noisy.data["train"][1].numpy()
    assert (y0 != y1).sum() == round(0.2 * len(y0))
    assert np.array_equal(y1, again.data["train"][1].numpy())
    other_seed = tasks.make("digits", label_noise=0.2, split_seed=1)
    assert (other_seed.data["train"][1].numpy() != tasks.make("digits", split_seed=1).data["train"][1].numpy()).sum() \
        == round(0.2 * len(y0))


@pytest.mark.parametrize("name", ["cifar10", "uci-iris-mlp", "uci-wine-xgb", "imagenet"])
def test_label_noise_is_an_option_of_every_classification_task(tmp_path: Path, name: str) -> None:
    cls = tasks._load(tasks.resolve(name)[1])
    setup = cls.conformance_setup(tmp_path)
    clean = tasks.make(name, **setup)
    noisy = tasks.make(name, **{**setup, "label_noise": 0.5})
    clean.prepare()
    noisy.prepare()
    if name == "cifar10":
        train = clean.data["train"][1].cpu().numpy(), noisy.data["train"][1].cpu().numpy()
        val = clean.data["val"][1].cpu().numpy(), noisy.data["val"][1].cpu().numpy()
    elif name == "imagenet":
        train = [np.array([t for _, t in x.splits["train"].samples]) for x in (clean, noisy)]
        val = [np.array([t for _, t in x.splits["val"].samples]) for x in (clean, noisy)]
    else:
        train = clean.data.y["train"], noisy.data.y["train"]
        val = clean.data.y["val"], noisy.data.y["val"]
    assert (train[0] != train[1]).sum() == round(0.5 * len(train[0]))
    assert np.array_equal(*val)


def test_label_noise_refused_on_a_regression_set() -> None:
    with pytest.raises(UserError, match="regression"):
        tasks.make("uci-diabetes-mlp", label_noise=0.1)


def test_list_schedulers_shows_each_schedulers_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["--list-schedulers"]) == 0
    out = capsys.readouterr().out
    for needle in ("promotion_rule (one of paper, quantile", "min_bandwidth (a number", "eta/reduction_factor",
                   "epsilon_percentile", "n_candidates", "initial_design_size"):
        assert needle in out
