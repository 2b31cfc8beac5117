"""The README's "Findings" block, generated from the published report bundles.

The package publishes its own answer: ``reports/cpu/summary.json`` (the scheduler study, written
by ``python -m analysis.report``), ``reports/nudge/summary.json`` (the paired-trial experiment,
written by ``python -m analysis.nudge``) and ``reports/lcbench/summary.json`` (the LCBench study,
by ``python -m analysis.report``). This module turns them into Markdown, so
the README says exactly what the committed summaries say; ``python -m ohgw_bench.docs --check``
fails when the two disagree. Nothing here computes a statistic: every number is read.

The reports folder is always an argument (the checkout's ``reports/``, passed by
``ohgw_bench.docs`` and the tests), so the installed package never reads a checkout's layout.
"""

from __future__ import annotations

import collections
import json
import math
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: the published summaries, relative to the reports folder
STUDY_SUMMARY = Path("cpu/summary.json")
NUDGE_SUMMARY = Path("nudge/summary.json")
LCBENCH_SUMMARY = Path("lcbench/summary.json")
#: the two warm-started arms the headline reports: the proposal's raw step, and the trust-region step
HEADLINE_ARMS = ("ohgw", "ohgw-normalized")
#: the controls each arm is compared with (the same step rule where the control has one)
CONTROLS = {"ohgw": ("random", "prior", "sham"),
            "ohgw-normalized": ("random-normalized", "prior-normalized", "sham")}


def _num(x: Any, fmt: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(float(x), fmt)


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return "<0.001" if float(x) < 0.001 else f"{float(x):.3f}"


def _ratio(row: Mapping[str, Any] | None) -> str:
    """``0.93 [0.81, 1.07]``: the paired median T@tau ratio with its 95% bootstrap interval."""
    if row is None:
        return "–"
    return f"{_num(row.get('t_tau_ratio'))} [{_num(row.get('ci_low'))}, {_num(row.get('ci_high'))}]"


#: the claim's target ratio (a 15% reduction at least, the report's criterion)
TARGET = 0.85


def t_tau_alone(row: Mapping[str, Any]) -> str:
    """What T@tau alone says, apart from the other criteria: ``faster`` / ``slower`` (the interval
    excludes 1 and the Holm-adjusted p < 0.05), ``no 15% gain`` (the interval lies above 0.85:
    the claimed reduction is excluded), else ``undecided``."""
    lo, hi, p = row.get("ci_low"), row.get("ci_high"), row.get("p_holm")
    significant = p is not None and math.isfinite(float(p)) and float(p) < 0.05
    if significant and hi is not None and hi < 1.0:
        return "faster"
    if significant and lo is not None and lo > 1.0:
        return "slower"
    if lo is not None and lo > TARGET:
        return "no 15% gain"
    return "undecided"


def _geo(row: Mapping[str, Any]) -> str:
    """``0.90 [0.81, 1.00]``: the paired geometric-mean T@tau ratio with its 95% bootstrap interval."""
    if row.get("geo_mean") is None:
        return "–"
    return f"{_num(row.get('geo_mean'))} [{_num(row.get('geo_ci_low'))}, {_num(row.get('geo_ci_high'))}]"


def _pairs(row: Mapping[str, Any]) -> str:
    """Pairs actually used, with the exact ties among them (and the shared base proposals, where
    the arms' schedulers proposed different configs for most trials)."""
    used, ties = row.get("n_used", row.get("n_pairs", "–")), row.get("n_ties")
    text = f"{used}" + (f" ({ties} tie{'' if ties == 1 else 's'})" if ties is not None else "")
    shared, trials = row.get("shared_proposals"), row.get("trials_per_study")
    if shared is not None and trials and shared < 0.5 * trials:
        text += f"; {shared:.0f}/{trials:.0f} proposals shared"
    return text


def _status(row: Mapping[str, Any]) -> str:
    """The status, then the criteria whose interval lies beyond the margin (``fails:``) and those
    that could not be evaluated (``not measured:``); T@tau is its own column."""
    failed = [f for f in row.get("failed") or [] if f != "t_tau"]
    missing = list(row.get("not_measured") or [])
    text = str(row.get("status", "–"))
    notes = ([f"fails: {', '.join(failed)}"] if failed else []) + ([f"not measured: {', '.join(missing)}"] if missing else [])
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _cmp(row: Mapping[str, Any] | None) -> str:
    """A control comparison in one cell: ratio [CI], Holm p, what T@tau alone says."""
    if row is None:
        return "not run"
    return f"{_ratio(row)}, p={_p(row.get('p_holm'))}, {t_tau_alone(row)}"


def _cell(text: Any) -> str:
    """One Markdown table cell: pipes and angle brackets escaped, whitespace collapsed."""
    text = str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def markdown_table(header: list[str], rows: Iterable[list[Any]]) -> str:
    """A Markdown table of every README block (``ohgw_bench.docs`` builds its registry tables with it too)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def load(reports: Path, rel: Path) -> dict[str, Any] | None:
    """The summary at ``reports/rel`` (None where it is not published yet)."""
    path = Path(reports) / rel
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


#: the LCBench table's columns: (arm, baseline) of each comparison shown
LCBENCH_COLUMNS = (("ohgw", "none"), ("ohgw-normalized", "none"), ("oracle-normalized", "none"),
                   ("ohgw-normalized", "oracle-normalized"), ("ohgw-normalized", "random-normalized"),
                   ("ohgw-normalized", "sham"))


def _rows_by(summary: Mapping[str, Any]) -> dict[tuple[str, str, str, str], Mapping[str, Any]]:
    return {(f["task"], f["scheduler"], f["variant"], f["baseline"]): f for f in summary.get("findings", [])}


def _median(values: list[float | None]) -> float | None:
    """The median of the finite values, None if there are none."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    return statistics.median(v) if v else None


def lcbench_section(summary: Mapping[str, Any]) -> str:
    """Per LCBench tuple: the raw and normalized OHGW arms and the oracle against vanilla, OHGW
    against its oracle, random and sham; each cell ratio [95% CI], Holm p, what T@tau alone says."""
    rows = _rows_by(summary)
    tuples = sorted({(t, s) for (t, s, _v, _b) in rows})
    body = []
    for task, sched in tuples:
        main = rows.get((task, sched, "ohgw-normalized", "none")) or rows.get((task, sched, "ohgw", "none"))
        if main is None:
            continue
        body.append([f"`{task}`", sched, _pairs(main), *[_cmp(rows.get((task, sched, a, b))) for a, b in LCBENCH_COLUMNS],
                     _shares(main)])
    header = ["task", "scheduler", "pairs used", *[f"`{a}` vs `{b}`" for a, b in LCBENCH_COLUMNS],
              "warm-start share (`ohgw-normalized`): FLOP / calibrated clock"]
    return (markdown_table(header, body) + "\n\nEach cell: paired median T@tau ratio (arm / baseline, < 1 = the arm "
            "reaches tau sooner) [95% bootstrap CI], Holm p, what T@tau alone says (as above); `not run` where the "
            "tuple has no such arm. `oracle-normalized` nudges along the exact gradient of the surrogate's final-epoch "
            "metric with the same trust region (rho 0.05): the most a one-step nudge of that length can buy. "
            "`ohgw-normalized` vs `oracle-normalized` above 1: the first-rung gradient is slower than its bound. "
            "Step-length sweep, final-score differences and hyperparameter shifts: `reports/lcbench/tables/` "
            "(`step_sweep`, `paired_scores`, `kl`) and `figures/step_length.png`.")


def answer(cpu: Mapping[str, Any] | None, lcb: Mapping[str, Any] | None) -> str:
    """The question in plain words, from the bundles' rows: does OHGW cut T@tau, by how much at
    most (the oracle's bound), at what cost. Every number is read from a summary."""
    out = []

    def tally(summary: Mapping[str, Any], arm: str, baseline: str = "none") -> tuple[int, int, int, float | None]:
        rows = [f for f in summary.get("findings", []) if f["variant"] == arm and f["baseline"] == baseline]
        alone = collections.Counter(t_tau_alone(f) for f in rows)
        return len(rows), alone["faster"], alone["slower"], _median([f.get("t_tau_ratio") for f in rows])

    def best(summary: Mapping[str, Any], arm: str) -> Mapping[str, Any] | None:
        rows = [f for f in summary.get("findings", []) if f["variant"] == arm and f["baseline"] == "none"
                and f.get("t_tau_ratio") is not None]
        return min(rows, key=lambda f: f["t_tau_ratio"]) if rows else None

    for name, summary, arms in (("the CPU study", cpu, ("ohgw", "ohgw-normalized")),
                                ("the LCBench study", lcb, ("ohgw", "ohgw-normalized", "oracle-normalized"))):
        if summary is None:
            continue
        parts = []
        for arm in arms:
            n, fast, slow, med = tally(summary, arm)
            if n:
                parts.append(f"`{arm}` is faster than vanilla (interval below 1, Holm p < 0.05) in {fast} of {n} "
                             f"tuples and slower in {slow}, median paired T@tau ratio {_num(med)}")
        shares = [f.get("overhead_share") for f in summary.get("findings", [])
                  if f["variant"] in ("ohgw", "ohgw-normalized") and f["baseline"] == "none"]
        text = f"In {name}: " + "; ".join(parts) + "."
        b = best(summary, "oracle-normalized")
        if b is not None:
            n, fast, slow, med = tally(summary, "ohgw-normalized", "oracle-normalized")
            text += (f" The oracle nudge's best tuple is `{b['task']}`/{b['scheduler']} at {_ratio(b)}: the most a "
                     f"nudge of this length bought. Against its oracle, `ohgw-normalized` is slower in {slow} of {n} "
                     f"tuples and faster in {fast} (median ratio {_num(med)}).")
        if shares:
            text += f" The warm-start costs a median {_num(_median(shares), '.1%')} of compute (the claim: under 3%)."
        out.append(text)
    if not out:
        return "No study has been published yet."
    claim = [f for s in (cpu, lcb) if s for f in s.get("findings", []) if f["variant"] in ("ohgw", "ohgw-normalized")
             and f["baseline"] == "none" and f.get("ci_high") is not None and f["ci_high"] <= 0.80]
    out.append(f"A cut of 20% or more shown by its interval (the upper end of the paired ratio's 95% interval at or "
               f"below 0.80), the size claimed, appears for OHGW in {len(claim)} tuple(s) of the published studies.")
    return " ".join(out)


def study_section(summary: Mapping[str, Any]) -> str:
    """Headline table (one row per task, scheduler and headline arm) and the plain-words count."""
    rows_by = {(f["task"], f["scheduler"], f["variant"], f["baseline"]): f for f in summary.get("findings", [])}
    tuples = sorted({(t, s) for (t, s, _v, _b) in rows_by})
    body = []
    for task, sched in tuples:
        for arm in HEADLINE_ARMS:
            main = rows_by.get((task, sched, arm, "none"))
            if main is None:
                continue
            ctrl = [_cmp(rows_by.get((task, sched, arm, c))) for c in CONTROLS[arm]]
            body.append([f"`{task}`", sched, f"`{arm}`", _pairs(main), _ratio(main), _geo(main),
                         _p(main.get("p_holm")), _num(main.get("power"), ".0%") if main.get("power") is not None else "–",
                         t_tau_alone(main), _status(main), *ctrl,
                         _shares(main)])
    header = ["task", "scheduler", "arm", "pairs used", "T@tau ratio arm/none, median [95% CI]",
              "geometric mean [95% CI]", "Holm p", "power (20%)", "T@tau alone", "claim's criteria", "vs random",
              "vs prior", "vs sham", "warm-start share: FLOP clock / calibrated clock"]
    parts = [markdown_table(header, body) + "\n\nPairs used: every seed pair; a pair where neither arm reached "
             "tau counts as a tie (ratio 1); `ties` = pairs with ratio exactly 1. The geometric mean does not "
             "collapse to 1.00 when most pairs tie, as the median does. Power: the computed chance of meeting the "
             "T@tau criterion if the true ratio were 0.80. T@tau alone: `faster`/`slower` when the interval "
             "excludes 1 and the Holm-adjusted p < 0.05; `no 15% gain` when the interval lies above 0.85 (the "
             "claimed reduction is excluded); `undecided` otherwise. The claim's criteria also need the final "
             "score, compute (<= 3%), memory and spread criteria, each tested by its interval against its margin "
             "(`fails:` names those wholly beyond it, `not measured:` those without data); too few seeds or "
             "power below 80% read `inconclusive` (precedence in `docs/results-format.md`). Control cells: the "
             "arm against that control, paired by seed; `not run` where the study has no such control (random "
             "and prior run with the normalized step only). Warm-start share: the warm-start's share of the study's "
             "compute, median over seeds, on the FLOP clock and on the calibrated clock (its uninstrumented wall "
             "ratio, docs/design.md); both are recorded whichever clock charged the study, and the compute "
             "criterion tests the larger."]
    sens = [f for f in summary.get("findings", []) if f["baseline"] == "none" and f["variant"] not in HEADLINE_ARMS
            and f["variant"].startswith("ohgw") and not f["variant"].endswith("-cal")]
    cal = [f for f in summary.get("findings", []) if f["baseline"] == "none" and f["variant"].endswith("-cal")]
    if cal:
        parts.append("Under the calibrated warm-start clock (`-cal`: the warm-start charged its measured "
                     "uninstrumented wall ratio instead of its FLOPs; run where the two clocks differ by more than "
                     "20%), each against `none`, same tuple:\n\n" + markdown_table(
                         ["task", "scheduler", "arm", "pairs used", "T@tau ratio [95% CI], Holm p, T@tau alone",
                          "claim's criteria", "warm-start share: FLOP clock / calibrated clock"],
                         [[f"`{f['task']}`", f["scheduler"], f"`{f['variant']}`", _pairs(f), _cmp(f), _status(f),
                           _shares(f)]
                          for f in sorted(cal, key=lambda f: (f["task"], f["scheduler"], f["variant"]))]))
    if sens:
        parts.append("eta_h / rho sensitivity (each against `none`, same tuple):\n\n" + markdown_table(
            ["task", "scheduler", "arm", "pairs used", "T@tau ratio [95% CI], Holm p, T@tau alone; claim's criteria"],
            [[f"`{f['task']}`", f["scheduler"], f"`{f['variant']}`", _pairs(f),
              f"{_cmp(f)}; {_status(f)}"]
             for f in sorted(sens, key=lambda f: (f["task"], f["scheduler"], f["variant"]))]))
    parts.append(conclusion(summary))
    return "\n\n".join(parts)


def _shares(row: Mapping[str, Any]) -> str:
    """'x% / y%': the warm-start share on both clocks (the charged clock's alone for older bundles)."""
    f, c = row.get("overhead_share_flops"), row.get("overhead_share_calibrated")
    if f is None and c is None:
        return _num(row.get("overhead_share"), ".1%")
    return f"{_num(f, '.1%')} / {_num(c, '.1%')}"


def _counts(rows: list[Mapping[str, Any]]) -> str:
    names = ("holds", "does not hold", "inconclusive", "not applicable")
    got = {n: sum(1 for r in rows if r.get("status") == n) for n in names}
    return ", ".join(f"{got[n]} {n}" for n in names if got[n])


def conclusion(summary: Mapping[str, Any]) -> str:
    """The answer in plain words, from the statuses and paired ratios (never typed by hand)."""
    finds = summary.get("findings", [])
    lines = []
    for arm in HEADLINE_ARMS:
        rows = [f for f in finds if f["variant"] == arm and f["baseline"] == "none"]
        if not rows:
            continue
        ratios = sorted(f["t_tau_ratio"] for f in rows if f.get("t_tau_ratio") is not None)
        faster = [f for f in rows if f.get("ci_high") is not None and f["ci_high"] < 1.0]
        slower = [f for f in rows if f.get("ci_low") is not None and f["ci_low"] > 1.0]
        med = ratios[len(ratios) // 2] if ratios else None
        shares = sorted(f["overhead_share"] for f in rows if f.get("overhead_share") is not None)
        share = shares[len(shares) // 2] if shares else None
        alone = collections.Counter(t_tau_alone(f) for f in rows)
        lines.append(
            f"- `{arm}` against vanilla over {len(rows)} (task, scheduler) tuples: T@tau alone "
            f"({', '.join(f'{n} {k}' for k, n in sorted(alone.items()))}); the claim's criteria "
            f"({_counts(rows)}); median of the tuples' paired T@tau ratios {_num(med)} "
            f"(the claim is about 0.80); the 95% interval lies wholly below 1 in {len(faster)} tuple(s) and "
            f"wholly above 1 in {len(slower)}; median warm-start share of compute "
            f"{_num(share, '.1%') if share is not None else '–'} (the claim is < 3%).")
        sham = [f for f in finds if f["variant"] == arm and f["baseline"] == "sham"]
        if sham:
            better = [f for f in sham if f.get("ci_high") is not None and f["ci_high"] < 1.0]
            lines.append(f"  Against `sham` (same compute, config unchanged): the interval lies wholly below 1 "
                         f"in {len(better)} of {len(sham)} tuples; T@tau alone: "
                         f"{', '.join(f'{n} {k}' for k, n in sorted(collections.Counter(t_tau_alone(f) for f in sham).items()))}.")
    for arm in HEADLINE_ARMS:
        vt = (summary.get("verdicts_t_tau") or {}).get(arm)
        vc = (summary.get("verdicts_cost") or {}).get(arm)
        if vt and vc:
            lines.append(f"  Verdicts for `{arm}` kept apart: T@tau alone {vt['status']} ({vt['n_hold']}/{vt['n_applicable']} "
                         f"tuples hold); cost alone (compute <= 3%, memory <= +10%) {vc['status']} "
                         f"({vc['n_hold']}/{vc['n_applicable']} tuples hold).")
    bias = [r for r in (summary.get("tables") or {}).get("kl", []) if r.get("method") in HEADLINE_ARMS and r.get("bias")]
    if bias:
        cnt = collections.Counter(r["bias"] for r in bias)
        lines.append(f"- Hyperparameter bias of the chosen configs (shift of the mean against `none`, 90% interval "
                     f"against +-0.10 of the range), headline arms over tuples and hyperparameters: "
                     f"{', '.join(f'{n} {k}' for k, n in sorted(cnt.items()))}.")
    power = summary.get("power", {})
    for exp, pw in sorted(power.items()):
        if pw.get("significance_attainable") is False:
            lines.append(f"- Experiment `{exp}` cannot reach significance: Holm over {pw.get('tests_per_family')} tests "
                         f"needs at least {pw.get('seeds_needed')} informative seed pairs for p < 0.05 to be attainable.")
        if pw.get("power_median") is not None:
            lines.append(f"- Power of experiment `{exp}` to detect a true 20% T@tau reduction (median ratio 0.80) "
                         f"against `none`, after Holm: median {_num(pw['power_median'], '.0%')} over "
                         f"{pw.get('n_comparisons')} comparisons (range {_num(pw.get('power_min'), '.0%')}-"
                         f"{_num(pw.get('power_max'), '.0%')}; {pw.get('n_powered')} at 80% or more)"
                         + (": underpowered, so unmet criteria read inconclusive." if pw.get("underpowered") else "."))
        elif pw.get("underpowered"):
            lines.append(f"- Experiment `{exp}` is underpowered: Holm over {pw.get('tests_per_family')} tests "
                         f"needs at least {pw.get('seeds_needed')} seed pairs for p < 0.05 to be attainable.")
    excluded = summary.get("excluded", [])
    if excluded:
        lines.append(f"- {len(excluded)} studies ended early and were left out (listed in the summary's `excluded`).")
    return "\n".join(lines)


def _share_ci(d: Mapping[str, Any]) -> str:
    """``90% [80%, 100%] (9/0/1)``: a win share (ties half) with its interval and wins/ties/losses where known."""
    text = f"{_num(d.get('a_better'), '.0%')} [{_num(d.get('ci_low'), '.0%')}, {_num(d.get('ci_high'), '.0%')}]"
    if "wins" in d:
        text += f" ({d['wins']}/{d['ties']}/{d['losses']})"
    return text


def _gap(d: Mapping[str, Any]) -> str:
    if d.get("median_gap") is None:
        return "–"
    return f"{float(d['median_gap']):.2g} [{_num(d.get('gap_ci_low'), '.2g')}, {_num(d.get('gap_ci_high'), '.2g')}]"


def nudge_section(summary: Mapping[str, Any]) -> str:
    """The paired-trial result: per task and ohgw arm, how the nudge compares with each control.

    Validation loss where the summary has it (it ties far fewer pairs than an error rate), the
    task metric beside it; the comparison with ``prior`` also on the configs where the OHGW and
    prior steps differ; ``sham`` reads as the unmodified config."""
    comps = summary.get("comparisons", [])
    if not comps:
        return "No paired-trial comparisons in the summary."
    top: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
    everyone = {(c["task"], c["variant"], c["control"], c["fidelity"]): (c.get("metric") or {}).get("pairs")
                for c in comps if c.get("subset", "all") == "all"}
    for c in comps:  # the highest fidelity of each (task, variant, control, subset)
        subset = c.get("subset", "all")
        if subset != "all" and (not c["control"].startswith("prior") or (c.get("metric") or {}).get("pairs")
                                == everyone.get((c["task"], c["variant"], c["control"], c["fidelity"]))):
            continue  # the differing-steps subset only against prior, and only where it is a subset
        if subset != "all" and not (c.get("metric") or {}).get("pairs"):
            continue  # no config's steps differ
        key = (c["task"], c["variant"], c["control"], subset)
        if key not in top or c["fidelity"] > top[key]["fidelity"]:
            top[key] = c
    body = []
    for (task, variant, control, subset), c in sorted(top.items()):
        q = "val_loss" if c.get("val_loss") else "metric"
        d, m = c.get(q) or {}, c.get("metric") or {}
        name = c.get("control_name", control)
        configs = str(d.get("pairs", "–")) if subset == "all" else f"{d.get('pairs', '–')} whose steps differ (cos under 0.99)"
        label = q if q == "val_loss" else c.get("metric_name", q)
        body.append([f"`{task}`", f"`{variant}`", f"`{name}`", str(c["fidelity"]), configs, label, _share_ci(d), _gap(d),
                     _p(d.get("p_holm")), _share_ci(m) if q != "metric" else "(same)"])
    table = markdown_table(["task", "arm", "control", "fidelity", "configs", "quantity",
                            "arm better than control [95% CI] (W/T/L)", "median gap [95% CI]", "Holm p",
                            "task metric: arm better [95% CI]"], body)

    def quantity(c: Mapping[str, Any]) -> Mapping[str, Any]:
        return c.get("val_loss") or c.get("metric") or {}

    cells = [c for k, c in top.items() if k[3] == "all"]
    wins = [c for c in cells if quantity(c).get("ci_low") is not None and quantity(c)["ci_low"] > 0.5]
    loses = [c for c in cells if quantity(c).get("ci_high") is not None and quantity(c)["ci_high"] < 0.5]
    sig = [c for c in cells if quantity(c).get("p_holm") is not None and quantity(c)["p_holm"] < 0.05]
    words = (f"At the highest fidelity trained, the arm beats its control in {len(wins)} of {len(cells)} "
             f"(task, arm, control) cells with the 95% interval above 50%, and loses in {len(loses)} with it below 50%; "
             f"the rest cannot be told from a coin flip.")
    if any("p_holm" in quantity(c) for c in cells):
        words += (f" {len(sig)} of {len(cells)} have a Holm-adjusted sign-test p below 0.05 (Holm over all "
                  f"{summary.get('holm_family', '?')} tests of the bundle's comparisons table, every fidelity).")
    dirs = [d for d in summary.get("directions", []) if d["variant"] == "ohgw-normalized"]
    if dirs:
        words += ("\n\nHow often the normalised OHGW step is just the prior step (raise lr): median cosine between "
                  "them " + ", ".join(f"{d['task']} {d['median']:.3f} ({d['differ']} of {d['configs']} configs below "
                                      "0.99)" for d in dirs) + ".")
    raw = [(t, h) for t, h in sorted((summary.get("headline") or {}).items()) if "ohgw" in (h.get("variants") or {})]
    if raw:
        parts = []
        for t, h in raw:
            v = h["variants"]["ohgw"]
            d = v.get("val_loss") or v.get("metric") or {}
            parts.append(f"{t} {_num(d.get('median'), '.2g')} (step {_num(v.get('median_step'), '.1g')})")
        words += (" The paper's raw step (`ohgw`) moves configs by a median unit-cube distance in parentheses; its "
                  "median improvement in validation loss: " + ", ".join(parts) + ".")
        raw_dirs = [d for d in summary.get("directions", []) if d["variant"] == "ohgw"]
        if raw_dirs:
            words += (" Its median cosine with the raw prior step: " + ", ".join(
                f"{d['task']} {d['median']:.2f}" for d in raw_dirs) + ". It steps in psi, so in unit-cube terms "
                "a coordinate moves by its gradient over its range squared, and a narrow range dominates where "
                "there is one; the hyperparameter it moves most: " + ", ".join(
                    f"{d['task']} {d['largest_step']} ({_num(d.get('largest_step_share'), '.0%')} of configs)"
                    for d in raw_dirs if d.get("largest_step")) + ".")
    return table + "\n\n" + words


def block(reports: Path) -> str:
    """The whole generated Findings block, from the summaries under the folder ``reports``."""
    study, nudge, lcb = (load(reports, rel) for rel in (STUDY_SUMMARY, NUDGE_SUMMARY, LCBENCH_SUMMARY))
    parts = [f"**The answer so far** (generated from the bundles below): {answer(study, lcb)}"]
    if nudge is not None:
        parts.append("**The nudge itself** (paired-trial experiment, `reports/nudge/`: each sampled config trained "
                     "from the same seed as proposed and after each warm-start arm; at the highest fidelity trained; "
                     "ties count half; a diverged trial is a loss; `unmodified (sham)` is the config as proposed; "
                     "`orth` is the OHGW step without its prior component, same length):\n\n" + nudge_section(nudge))
    else:
        parts.append("The paired-trial experiment has not been published yet (`reports/nudge/summary.json`).")
    if study is not None:
        n = study.get("n_studies", "?")
        parts.append(f"**The scheduler study** (`reports/cpu/`, {n} studies; paired by seed; ratio < 1 means the arm "
                     "reaches tau sooner; status per the criteria in `docs/results-format.md`):\n\n" + study_section(study))
    else:
        parts.append("The scheduler study has not been published yet (`reports/cpu/summary.json`).")
    if lcb is not None:
        parts.append(f"**LCBench** (`reports/lcbench/`, {lcb.get('n_studies', '?')} studies on YAHPO Gym's LCBench "
                     "surrogate, real learning curves; the CPU study's step settings applied unchanged):\n\n"
                     + lcbench_section(lcb))
    else:
        parts.append("The LCBench study has not been published yet (`reports/lcbench/summary.json`; design: "
                     "`docs/lcbench-study.md`).")
    return "\n\n".join(parts)
