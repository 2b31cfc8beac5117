"""The report on synthetic study folders written through ohgw_bench.results.

``closed_form`` builds studies whose T@tau, AUC, final scores, overhead, Wilcoxon p-values,
Holm adjustments and KL values follow from the numbers written; the tests recompute them
independently (exact sign-flip enumeration, Holm by hand, Gaussian KL from the samples).
``grid_results`` is the end-to-end case: 2 tasks x 2 schedulers x none/ohgw/random x 5 seeds.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from analysis import figures, report
from ohgw_bench import results

ROOT = Path(__file__).resolve().parents[1]
SPACE = [
    {"name": "lr", "low": 1e-4, "high": 1.0, "log": True, "integer": False, "default": 0.01},
    {"name": "dropout", "low": 0.0, "high": 0.5, "log": False, "integer": False, "default": 0.1},
]


def write_study(root: Path, *, experiment: str, task: str, scheduler: str, variant: str, seed: int,
                mode: str, tau: float, budget: float, trials: list[dict], eta_h: float | None = None,
                complete: bool = True, step_rule: str = "raw", summary: dict | None = None,
                task_label: str | None = None, spec_budget: float | None | str = "same",
                rho: float | None = None) -> Path:
    """Write one study; each trial is {"id", "config", "reports": [(time, fidelity, metric, test)], "ws"}.

    ``task_label`` is the folder's task level (an experiment file's label); ``spec_budget`` what
    the spec records (None = the task's default budget was used; study.json keeps ``budget``).
    """
    folder = results.study_dir(root, experiment, task_label or task, scheduler, variant, seed)
    ws_settings = {"variant": variant.split("-")[0], "eta_h": eta_h, "step_rule": step_rule, "horizon": 1,
                   **({"rho": rho} if rho is not None else {})}
    spec = {"experiment": experiment, "task": task, "scheduler": scheduler, "variant_label": variant,
            "warm_start": ws_settings if variant != "none" else {"variant": "none"}, "seed": seed,
            "budget": budget if spec_budget == "same" else spec_budget, "n_workers": 1, "backend": "simulated",
            "tau": tau, "task_label": task_label}
    meta = {"task": {"id": task, "metric": "val_loss" if mode == "min" else "val_acc", "mode": mode, "tau": tau,
                     "space": SPACE, "fidelity": {"name": "epochs", "min": 1, "max": 9}},
            "study_id": f"{task}-{scheduler}-{variant}-{seed}", "clock": "simulated", "budget": budget, "tau": tau}
    rows = []
    for tr in trials:
        for time, fid, metric, test in tr["reports"]:
            row = {"ohgw_trial_id": tr["id"], "ohgw_time": time, "ohgw_time_wall": time / 10.0,
                   "ohgw_fidelity": fid, "ohgw_metric": metric, "ohgw_test_metric": test,
                   "ohgw_status": "ok", "ohgw_decision": "CONTINUE",
                   "ohgw_config": {**tr["config"], "epochs": fid}, "ohgw_proposed": tr.get("proposed", tr["config"])}
            if tr.get("ws") is not None:
                row["ohgw_warm_start"] = tr["ws"]
            rows.append(row)
    rows.sort(key=lambda r: r["ohgw_time"])
    busy = 0.0
    w = results.StudyWriter(folder, spec, meta)
    last = 0.0
    for row in rows:
        busy += row["ohgw_time"] - last
        last = row["ohgw_time"]
        row["ohgw_worker_time"] = busy
        w.append(row)
    if complete:
        w.finish({"best_metric": None, "reports": len(rows), "peak_rss_bytes": 100e6, **(summary or {})})
    else:
        w.close()
    return folder


@pytest.fixture(scope="module")
def no_fsync() -> Iterator[None]:
    """Durability is results.py's business (tested there); fsync per row makes fixtures slow."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results.os, "fsync", lambda fd: None)
        yield


def ws_record(eta_h: float, grad_norm: float = 0.1, seconds: float = 2.0, peak: float = 1.05e6) -> dict:
    return {"variant": "ohgw", "applied": True,
            "cost": {"seconds": seconds, "flops": 4e9, "peak_bytes": peak},
            "step_cost": {"seconds": 1.0, "flops": 2e9, "peak_bytes": 1e6},
            "sim_seconds": seconds, "grad_norm_unit": grad_norm, "step_norm_unit": 1e-4,
            "settings": {"eta_h": eta_h, "step_rule": "raw", "horizon": 1}}


# ---------------------------------------------------------------- closed-form case

BUDGET = 100.0
TAU = 0.5
# T@tau per seed; None = never reaches tau (censored at the budget).
T_TAU = {
    ("s1", "none"): [50, 60, 70, 80, 90, None],
    ("s1", "ohgw"): [40, 45, 52, 61, 70, 75],
    ("s2", "none"): [50, 60, 70, 80, 90, None],
    ("s2", "ohgw"): [40, 65, 53, 61, 72, 75],
    ("s1", "random"): [55, 58, 73, 86, 91],
    ("s2", "random"): [51, 62, 66, 83, 97],
}
# lr (log) and dropout of trial 0 (the incumbent) and trial 1 per seed, per variant.
PSI0 = {"none": [-4.0, -3.5, -3.0, -4.5, -2.5, -3.2], "ohgw": [-3.0, -2.2, -2.8, -3.6, -1.9, -2.4],
        "random": [-4.2, -3.4, -3.3, -4.1, -2.6]}
PSI1 = {"none": [-6.0, -5.0, -7.0, -5.5, -6.5, -6.2], "ohgw": [-5.0, -4.1, -6.3, -5.2, -5.9, -4.4],
        "random": [-6.1, -5.1, -6.7, -5.4, -6.6]}
DROP0 = {"none": [0.1, 0.2, 0.15, 0.3, 0.25, 0.05], "ohgw": [0.12, 0.22, 0.18, 0.31, 0.27, 0.09],
         "random": [0.11, 0.2, 0.16, 0.29, 0.26]}


def closed_form_trials(scheduler: str, variant: str, seed: int) -> list[dict]:
    t = T_TAU[(scheduler, variant)][seed]
    first = 1.2 if (variant == "ohgw" and seed == 0) else 1.0
    end = 0.4 if t is not None else 0.6
    t0_time = t if t is not None else 90
    reports0 = [(10.0, 1, first, first + 0.05), (float(t0_time), 3, end, end + 0.05)]
    if variant == "none" and seed == 0:
        reports0.append((95.0, 9, 0.2, 0.3))
    reports0.append((150.0, 9, 0.01, 0.01))  # past the budget: must not count
    ws = ws_record(1e-3) if variant != "none" else None
    return [
        {"id": 0, "config": {"lr": math.exp(PSI0[variant][seed]), "dropout": DROP0[variant][seed]},
         "reports": reports0, "ws": ws},
        {"id": 1, "config": {"lr": math.exp(PSI1[variant][seed]), "dropout": 0.4},
         "reports": [(20.0, 1, 0.9, 0.95)], "ws": ws},
    ]


@pytest.fixture(scope="module")
def closed_form(tmp_path_factory: pytest.TempPathFactory, no_fsync: None) -> Path:
    root = tmp_path_factory.mktemp("closed")
    for (scheduler, variant), ts in T_TAU.items():
        for seed in range(len(ts)):
            write_study(root, experiment="exp", task="toy-v1", scheduler=scheduler, variant=variant, seed=seed,
                        mode="min", tau=TAU, budget=BUDGET, trials=closed_form_trials(scheduler, variant, seed),
                        eta_h=1e-3 if variant != "none" else None)
    write_study(root, experiment="exp", task="toy-v1", scheduler="s1", variant="ohgw", seed=99, mode="min",
                tau=TAU, budget=BUDGET, trials=closed_form_trials("s1", "ohgw", 0), complete=False)
    return root


@pytest.fixture(scope="module")
def closed_analysis(closed_form: Path) -> dict:
    return report.analyse(closed_form)


def exact_wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided exact p of the signed-rank statistic by enumerating all sign flips (no ties, no zeros)."""
    d = d[d != 0]
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    t_obs = ranks[d > 0].sum()
    n = d.size
    stats = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=n)]
    mean = n * (n + 1) / 4
    dev = abs(t_obs - mean)
    return sum(abs(s - mean) >= dev - 1e-12 for s in stats) / len(stats)


def t_tau_values(scheduler: str, variant: str) -> np.ndarray:
    return np.array([BUDGET if t is None else t for t in T_TAU[(scheduler, variant)]], dtype=float)


def tuple_entry(analysis: dict, scheduler: str) -> dict:
    (entry,) = [t for t in analysis["tuples"] if t["scheduler"] == scheduler]
    return entry


def study(analysis: dict, scheduler: str, variant: str, seed: int) -> report.Study:
    (s,) = [s for s in analysis["studies"]
            if (s.scheduler, s.variant, s.seed) == (scheduler, variant, seed)]
    return s


def test_incomplete_studies_are_left_out(closed_analysis: dict) -> None:
    assert closed_analysis["n_studies"] == sum(len(v) for v in T_TAU.values())
    assert not any(s.seed == 99 for s in closed_analysis["studies"])


def test_t_tau_censoring_and_medians(closed_analysis: dict) -> None:
    for (scheduler, variant), ts in T_TAU.items():
        for seed, t in enumerate(ts):
            m = study(closed_analysis, scheduler, variant, seed).m
            assert m["reached"] is (t is not None)
            assert m["t_tau"] == (t if t is not None else BUDGET)
    van = tuple_entry(closed_analysis, "s1")["methods"]["none"]["t_tau"]
    # [50, 60, 70, 80, 90, inf]: median (70+80)/2, q25 60+0.25*10, q75 80+0.75*10
    assert (van["n"], van["n_reached"]) == (6, 5)
    assert van["frac_reached"] == pytest.approx(5 / 6)
    assert (van["median"], van["q25"], van["q75"]) == pytest.approx((70.0, 60.0, 90.0))
    # Kaplan-Meier: survival 5/6, 4/6, 3/6 after 50, 60, 70 -> median 70
    assert van["km_median"] == pytest.approx(70.0)
    ohgw = tuple_entry(closed_analysis, "s1")["methods"]["ohgw"]["t_tau"]
    # all six reached: the KM quantiles are the lower order statistics (no interpolation)
    assert (ohgw["median"], ohgw["q25"], ohgw["q75"]) == pytest.approx((52.0, 45.0, 70.0))
    cmp_ = tuple_entry(closed_analysis, "s1")["comparisons"]["ohgw vs none"]
    ratios = t_tau_values("s1", "ohgw") / t_tau_values("s1", "none")
    assert cmp_["t_tau_ratio"]["median"] == pytest.approx(math.exp(np.median(np.log(ratios))))
    assert cmp_["t_tau_ratio"]["n_one_censored"] == 1 and cmp_["t_tau_ratio"]["n_both_censored"] == 0
    assert cmp_["t_tau_ratio"]["ci_low"] <= cmp_["t_tau_ratio"]["median"] <= cmp_["t_tau_ratio"]["ci_high"]


def test_wilcoxon_and_holm(closed_analysis: dict) -> None:
    p = {}
    for scheduler in ("s1", "s2"):
        d = np.log(t_tau_values(scheduler, "ohgw") / t_tau_values(scheduler, "none"))
        p[scheduler] = exact_wilcoxon_p(d)
        got = tuple_entry(closed_analysis, scheduler)["comparisons"]["ohgw vs none"]["tests"]["t_tau"]
        assert got["p"] == pytest.approx(p[scheduler])
        assert got["n_pairs"] == 6
    assert p["s1"] == pytest.approx(2 / 64)
    lo, hi = sorted(p.values())
    holm_lo = min(1.0, 2 * lo)
    holm_hi = max(holm_lo, min(1.0, hi))
    expected = {k: holm_lo if v == lo else holm_hi for k, v in p.items()}
    for scheduler in ("s1", "s2"):
        got = tuple_entry(closed_analysis, scheduler)["comparisons"]["ohgw vs none"]["tests"]["t_tau"]["p_holm"]
        assert got == pytest.approx(expected[scheduler])
    # random: 5 pairs (vanilla's seed 5 has no partner)
    for scheduler in ("s1", "s2"):
        d = np.log(t_tau_values(scheduler, "random") / t_tau_values(scheduler, "none")[:5])
        got = tuple_entry(closed_analysis, scheduler)["comparisons"]["random vs none"]["tests"]["t_tau"]
        assert got["p"] == pytest.approx(exact_wilcoxon_p(d))
        assert got["n_pairs"] == 5


def expected_auc(variant: str, seed: int, scheduler: str) -> float:
    """Piecewise-constant integral of s(t) = (w - b(t)) / (w - beta) with w = 1.2, beta = 0.2."""
    t = T_TAU[(scheduler, variant)][seed]
    first = 1.2 if (variant == "ohgw" and seed == 0) else 1.0
    end = 0.4 if t is not None else 0.6
    t0 = t if t is not None else 90

    def s(b: float) -> float:
        return (1.2 - b) / 1.0

    segs = [(10.0, 20.0, first), (20.0, float(t0), min(first, 0.9)), (float(t0), BUDGET, end)]
    if variant == "none" and seed == 0:
        segs = segs[:2] + [(float(t0), 95.0, end), (95.0, BUDGET, 0.2)]
    return sum((b - a) * s(v) for a, b, v in segs) / BUDGET


def test_auc_final_and_test(closed_analysis: dict) -> None:
    entry = tuple_entry(closed_analysis, "s1")
    assert entry["auc_refs"] == pytest.approx({"best": 0.2, "worst_first": 1.2})
    for (scheduler, variant), ts in T_TAU.items():
        for seed, t in enumerate(ts):
            m = study(closed_analysis, scheduler, variant, seed).m
            assert m["auc"] == pytest.approx(expected_auc(variant, seed, scheduler)), (scheduler, variant, seed)
            best = 0.2 if (variant == "none" and seed == 0) else (0.4 if t is not None else 0.6)
            assert m["final"] == pytest.approx(best)
            assert m["final_test"] == pytest.approx(0.3 if best == 0.2 else best + 0.05)
    aucs = [expected_auc("none", k, "s1") for k in range(6)]
    assert entry["methods"]["none"]["auc"]["median"] == pytest.approx(np.median(aucs))
    # final drop of the medians: vanilla [0.2, .4 x4, .6] -> 0.4; ohgw all 0.4 -> 0
    assert entry["comparisons"]["ohgw vs none"]["final_drop"] == pytest.approx(0.0)


def test_overhead_counts_one_record_per_trial(closed_analysis: dict) -> None:
    s = study(closed_analysis, "s1", "ohgw", 1)
    o = s.m["overhead"]
    assert o["n_warm_starts"] == 2
    assert o["charged_seconds"] == pytest.approx(4.0)
    worker = float(np.nanmax(report._col(s.rows, "worker_time")))
    assert o["overhead_share"] == pytest.approx(4.0 / worker)  # S/W, as summary.json's share
    assert (o["seconds_per_step"], o["flops_per_step"], o["peak_per_step"]) == pytest.approx((2.0, 2.0, 1.05))
    assert o["extra_peak_memory"] == pytest.approx(0.05)
    assert study(closed_analysis, "s1", "none", 1).m["overhead"]["overhead_share"] == 0.0


def gaussian_kl(p: np.ndarray, q: np.ndarray) -> float:
    mp, mq, vp, vq = p.mean(), q.mean(), p.var(ddof=1), q.var(ddof=1)
    return 0.5 * (np.log(vq / vp) + (vp + (mp - mq) ** 2) / vq - 1)


def test_kl_shift_against_gaussian_fits(closed_analysis: dict) -> None:
    rows = {r["hp"]: r for r in tuple_entry(closed_analysis, "s1")["kl"]["ohgw"]}
    van_all = np.array(PSI0["none"] + PSI1["none"])
    var_all = np.array(PSI0["ohgw"] + PSI1["ohgw"])
    span = math.log(1.0) - math.log(1e-4)
    assert rows["lr"]["kl_all"] == pytest.approx(gaussian_kl(var_all, van_all))
    assert rows["lr"]["kl_chosen"] == pytest.approx(gaussian_kl(np.array(PSI0["ohgw"]), np.array(PSI0["none"])))
    assert rows["lr"]["mean_shift_all"] == pytest.approx((var_all.mean() - van_all.mean()) / span)
    assert rows["lr"]["n_all"] == 12
    assert rows["dropout"]["kl_chosen"] == pytest.approx(gaussian_kl(np.array(DROP0["ohgw"]), np.array(DROP0["none"])))
    assert rows["dropout"]["mean_shift_chosen"] == pytest.approx(
        (np.mean(DROP0["ohgw"]) - np.mean(DROP0["none"])) / 0.5)


def test_criteria_and_verdict(closed_analysis: dict) -> None:
    c = tuple_entry(closed_analysis, "s1")["comparisons"]["ohgw vs none"]["criteria"]
    # reduction 24.7%, Holm p = 2 * 2/64 or the s2 p; compute 4/(T-4) < 3%; peak +5%; std shrinks
    assert c["ok_t_tau"] == (c["p_t_tau"] < 0.05)
    assert c["ok_compute"] and c["ok_memory"]
    # final medians equal (drop 0), but one vanilla seed at 0.2 makes the paired 90% interval of
    # the drop straddle the 0.2% margin: undecided, not failed
    assert c["final_drop"] == 0.0 and c["final_drop_ci"][0] < 0.002 < c["final_drop_ci"][1]
    assert c["outcome"]["final"] == "undecided" and not c["ok_final"] and c["failed"] == []
    assert c["power"] == 0.0  # 6 pairs, 2 tests: p < 0.05 / 2 is not attainable
    std_v, std_0 = np.std(t_tau_values("s1", "ohgw"), ddof=1), np.std(t_tau_values("s1", "none"), ddof=1)
    assert c["std_inflation"] == pytest.approx(std_v / std_0 - 1)
    assert c["ok_std"]
    assert c["memory_measured"] and c["extra_peak_memory"] == pytest.approx(0.0)
    # 6 pairs, Holm over 2 tuples: best attainable p = 2 * 2/64 = 0.0625 -> inconclusive, not "does not hold"
    assert c["p_attainable"] == pytest.approx(0.0625)
    assert c["status"] == "inconclusive"
    statuses = [tuple_entry(closed_analysis, s)["comparisons"]["ohgw vs none"]["status"] for s in ("s1", "s2")]
    v = closed_analysis["verdicts"]["ohgw"]
    assert v["n_hold"] == statuses.count("holds") and v["n_tuples"] == 2
    assert v["n_inconclusive"] == statuses.count("inconclusive") == 2
    assert v["status"] == "inconclusive" and not v["holds"]


def test_seed_warnings(closed_analysis: dict) -> None:
    w = "\n".join(closed_analysis["warnings"])
    assert "exp/toy-v1/s1: method random has 5 seeds, others up to 6" in w
    assert "exp/toy-v1/s1: random lacks seeds [5] that none has" in w
    assert "ohgw has" not in w
    assert "exp/toy-v1/s1/ohgw/seed-99: skipped, incomplete (no summary.json)" in w
    assert "at least 7 informative seed pairs are needed" in w  # Holm over 2: 2 * 2/2^n < 0.05 from n = 7


def test_summary_holds_table_numbers(closed_form: Path, closed_analysis: dict, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert report.main([str(closed_form), "--out", str(out), "--no-figures"]) == 0
    captured = capsys.readouterr()
    assert "random lacks seeds [5]" in captured.err
    assert str(out / "summary.json") in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["warnings"] and summary["verdicts"]["ohgw"]["n_tuples"] == 2
    rec = [r for r in summary["tables"]["t_tau"] if r["scheduler"] == "s1" and r["method"] == "none"][0]
    assert (rec["km_median"], rec["q25"], rec["q75"]) == pytest.approx((70.0, 60.0, 90.0))
    t_s1 = [t for t in summary["tuples"] if t["scheduler"] == "s1"][0]
    assert t_s1["methods"]["none"]["t_tau"]["q75"] == pytest.approx(90.0)
    assert t_s1["methods"]["none"]["t_tau"]["median_not_reached"] is False
    crit = [r for r in summary["tables"]["criteria"] if r["scheduler"] == "s1" and r["comparison"] == "ohgw vs none"][0]
    cmp_ = tuple_entry(closed_analysis, "s1")["comparisons"]["ohgw vs none"]
    assert crit["t_tau_ratio"] == pytest.approx(cmp_["t_tau_ratio"]["median"])
    assert crit["p_t_tau"] == pytest.approx(cmp_["tests"]["t_tau"]["p_holm"])
    assert not (out / "figures").exists() and summary["files"]["figures"] == []
    md = (out / "tables" / "t_tau.md").read_text()
    assert "| toy-v1 | s1 | none | 0.500 | 6 | 83 | 70.0 | 60.0 | 90.0 |" in md
    tex = (out / "tables" / "status.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "inconclusive" in tex


# ---------------------------------------------------------------- end to end

def synthetic_trials(rng: np.random.Generator, mode: str, variant: str, speed: float) -> list[dict]:
    """Trials over rungs 1, 3, 9 (a third survive each rung); later reports improve."""
    trials = []
    clock = 0.0
    for tid in range(9):
        psi = rng.uniform(np.log(1e-4), 0.0) + (0.5 if variant == "ohgw" else 0.0)
        cfg = {"lr": float(np.exp(min(psi, 0.0))), "dropout": float(rng.uniform(0, 0.5))}
        quality = rng.uniform(0.3, 1.0) * (0.85 if variant == "ohgw" else 1.0)
        reports = []
        levels = [1, 3, 9][: 1 + (tid % 3 == 0) + (tid == 0)]
        for f in levels:
            clock += f * speed * rng.uniform(0.8, 1.2)
            loss = quality / (1 + 0.3 * f)
            value = loss if mode == "min" else 1 - loss
            reports.append((clock, f, value, value + rng.normal(0, 0.01)))
        ws = None
        if variant != "none":
            ws = ws_record(1e-3, grad_norm=float(10 ** rng.uniform(-4, -1)), seconds=0.02 * speed)
            ws["variant"] = variant
        trials.append({"id": tid, "config": cfg, "reports": reports, "ws": ws})
    return trials


@pytest.fixture(scope="module")
def grid_results(tmp_path_factory: pytest.TempPathFactory, no_fsync: None) -> Path:
    root = tmp_path_factory.mktemp("grid")
    for ti, (task, mode) in enumerate((("alpha-mlp-v1", "min"), ("beta-cnn-v1", "max"))):
        for si, scheduler in enumerate(("asha", "pasha")):
            for vi, variant in enumerate(("none", "ohgw", "random")):
                for seed in range(5):
                    rng = np.random.default_rng([ti, si, vi, seed])
                    trials = synthetic_trials(rng, mode, variant, speed=1.0)
                    write_study(root, experiment="e2e", task=task, scheduler=scheduler, variant=variant,
                                seed=seed, mode=mode, tau=0.25 if mode == "min" else 0.75, budget=60.0,
                                trials=trials, eta_h=1e-3 if variant != "none" else None)
    return root


def assert_not_blank(pdf: Path) -> None:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        assert len(doc) >= 1
        img = np.asarray(doc[0].render(scale=0.5).to_pil().convert("L"), dtype=float)
    finally:
        doc.close()
    assert img.var() > 50.0, f"{pdf.name}: first page looks blank (variance {img.var():.1f})"


TABLES = ("t_tau", "paired", "paired_scores", "scores", "overhead", "kl", "criteria", "status", "verdict")


def test_report_end_to_end(grid_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert report.main([str(grid_results), "--out", str(out)]) == 0
    for name in TABLES:
        tex = (out / "tables" / f"{name}.tex").read_text()
        md = (out / "tables" / f"{name}.md").read_text()
        assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
        assert md.count("\n|") >= 2
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["tuples"]) == 4
    assert set(summary["verdicts"]) == {"ohgw", "random"}
    # per tuple: ohgw vs none, random vs none, ohgw vs random (the control with the same step settings)
    assert len(summary["tables"]["criteria"]) == 12
    assert {r["comparison"] for r in summary["tables"]["criteria"]} == {"ohgw vs none", "random vs none",
                                                                      "ohgw vs random"}
    assert len(summary["findings"]) == 12
    assert len(summary["tables"]["kl"]) == 16
    (warning,) = summary["warnings"]
    assert "with 5-5 informative seed pairs and up to 4 tuples per Holm family" in warning
    assert summary["power"]["e2e"]["seeds_needed"] == 8  # 4 * 2/2^8 < 0.05 <= 4 * 2/2^7
    for t in summary["tuples"]:
        assert set(t["methods"]) == {"none", "ohgw", "random"}
        assert all(m["n_seeds"] == 5 for m in t["methods"].values())
    for name in figures.FIGURES:
        assert_not_blank(out / "figures" / f"{name}.pdf")
    assert summary["transfer"]["eta_h"] == pytest.approx(1e-3)
    assert summary["eta_sweeps"] == []
    assert set(summary["figure_numbers"]["gradnorm_benefit"]) == {"ohgw", "random"}
    # a PNG of every PDF page, listed in the summary; one panel per tuple, so one page per arm group here
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "t_tau.png" in pngs and "hp_distributions.png" not in pngs
    assert all(f"figures/{n}" in summary["files"]["figures"] for n in pngs)
    for name in figures.FIGURES:
        import pypdfium2 as pdfium

        doc = pdfium.PdfDocument(str(out / "figures" / f"{name}.pdf"))
        pages = len(doc)
        doc.close()
        assert len([n for n in pngs if n == f"{name}.png" or n.startswith(f"{name}-p")]) == pages, name


def test_eta_sweep_figure(tmp_path: Path, no_fsync: None) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    from analysis import figures

    root = tmp_path / "res"
    for seed in range(3):
        for variant, eta in (("none", None), ("ohgw", 1e-3), ("ohgw-eta1e-2", 1e-2), ("ohgw-eta1e-1", 1e-1)):
            rng = np.random.default_rng(seed)
            write_study(root, experiment="sweep", task="alpha-mlp-v1", scheduler="asha", variant=variant,
                        seed=seed, mode="min", tau=0.25, budget=60.0,
                        trials=synthetic_trials(rng, "min", "ohgw" if eta else "none", 1.0), eta_h=eta)
    analysis = report.analyse(root)
    analysis["eta_sweeps"] = sweeps = report.eta_sweeps(analysis["studies"])
    assert len(sweeps) == 1 and sweeps[0]["eta_h"] == [1e-3, 1e-2, 1e-1]
    aucs = [s.m["auc"] for s in analysis["studies"] if s.variant == "ohgw-eta1e-2"]
    assert sweeps[0]["auc"][1]["median"] == pytest.approx(np.median(aucs))
    with PdfPages(tmp_path / "eta.pdf") as pdf:
        figures.eta_sensitivity(analysis, pdf)
    assert_not_blank(tmp_path / "eta.pdf")


def test_no_complete_studies_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "res"
    write_study(root, experiment="e", task="alpha-mlp-v1", scheduler="asha", variant="none", seed=0, mode="min",
                tau=0.25, budget=60.0, trials=synthetic_trials(np.random.default_rng(0), "min", "none", 1.0),
                complete=False)
    assert report.main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "analysis.report", str(root), "--out", str(tmp_path / "o")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"analysis.report: no complete studies under {root}"]
    assert not (tmp_path / "o").exists()


def test_minimal_columns_and_empty_studies(tmp_path: Path, no_fsync: None) -> None:
    """Only time and metric per report, a failed trial, a study without reports: every file still appears."""
    root = tmp_path / "res"
    for variant in ("none", "ohgw"):
        for seed in range(2):
            spec = {"experiment": "min", "task": "gamma-v1", "scheduler": "asha", "variant_label": variant,
                    "seed": seed, "budget": 10.0}
            meta = {"task": {"id": "gamma-v1", "metric": "loss", "mode": "min", "tau": 0.5}, "clock": "wall"}
            w = results.StudyWriter(results.study_dir(root, "min", "gamma-v1", "asha", variant, seed), spec, meta)
            if not (variant == "ohgw" and seed == 1):
                w.append({"ohgw_time": 1.0, "ohgw_metric": 0.8})
                w.append({"ohgw_time": 2.0, "ohgw_metric": None, "ohgw_status": "failed", "ohgw_error": "boom"})
                w.append({"ohgw_time": 4.0 + seed, "ohgw_metric": 0.4 if variant == "ohgw" else 0.6})
            w.finish({})
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    (t,) = summary["tuples"]
    assert t["methods"]["ohgw"]["t_tau"]["n_reached"] == 1 and t["methods"]["none"]["t_tau"]["n_reached"] == 0
    assert t["methods"]["ohgw"]["final"]["median"] == 0.4 and t["methods"]["ohgw"]["final"]["n"] == 1
    assert t["methods"]["none"]["final"]["median"] == 0.6
    assert t["methods"]["none"]["t_tau"]["n"] == 2
    # the arm never ran a warm-start: not applicable, not a failure
    assert t["comparisons"]["ohgw vs none"]["status"] == "not applicable"
    assert summary["verdicts"]["ohgw"]["status"] == "not applicable"
    for name in TABLES:
        assert (out / "tables" / f"{name}.md").exists()
    for name in figures.FIGURES:
        assert_not_blank(out / "figures" / f"{name}.pdf")
