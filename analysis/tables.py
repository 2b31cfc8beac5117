"""The report's tables: raw records (for summary.json) and their LaTeX / Markdown forms.

Every table is built once as a list of records of plain numbers; the text forms are formatted
from those records, so summary.json holds every number a table shows. Each column has one
kind: text, an integer, a number with a fixed count of decimals for the whole column (chosen
from the column's largest value unless fixed, or from its smallest for thresholds), a
percentage, a p-value, or an estimate with its interval (``0.93 [0.81, 1.07]``). A missing value
is a dash. The ``.tex`` files are complete ``table`` floats for a plain ``article`` (caption
built from the rows, label, booktabs rules, plain ``l``/``r`` columns): they need
``\\usepackage{booktabs}`` and ``\\usepackage{graphicx}`` (named in each file's first line). A
table wider than the text width (estimated from its longest cells) is scaled to
``\\linewidth``; one with more than :data:`MAX_ROWS` rows is split into several floats, a task
per float, so none runs off the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.common import VANILLA, clock_unit, span
from ohgw_bench import metrics

Record = dict[str, Any]
DASH_MD = "–"
DASH_TEX = "{--}"


@dataclass
class Column:
    header: str
    get: Callable[[Record], Any]
    kind: str = "text"  # text, int, num, pct, p, sig (decimals for 3 significant digits of the smallest), ci, cipct
    decimals: int | None = None


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _auto_decimals(values: list[Any]) -> int:
    big = max((abs(v) for v in values if _finite(v)), default=0.0)
    if big >= 100:
        return 0
    if big >= 10:
        return 1
    if big >= 1:
        return 2
    return 3 if big >= 0.01 or big == 0 else 4


def _sig_decimals(values: list[Any]) -> int:
    """Decimals that give the column's smallest nonzero magnitude three significant digits (at most 5)."""
    small = min((abs(v) for v in values if _finite(v) and v != 0), default=1.0)
    return int(min(5, max(0, 2 - math.floor(math.log10(small)))))


def _fmt(v: Any, d: int) -> tuple[str, bool]:
    if _finite(v):
        return f"{v:.{d}f}", True
    if isinstance(v, float) and math.isinf(v):
        return ("n.r." if v > 0 else DASH_MD), False  # +inf: a censored T@tau, "not reached"
    return DASH_MD, False


def _cells(col: Column, records: list[Record]) -> tuple[list[str], list[bool], int]:
    """(text of each cell, whether it is a number, decimals) for one column."""
    vals = [col.get(r) for r in records]
    if col.kind == "text":
        return [DASH_MD if v is None else str(v) for v in vals], [False] * len(vals), 0
    if col.kind in ("ci", "cipct"):  # (estimate, low, high): "est [low, high]", one decimal count per column
        scale = 100.0 if col.kind == "cipct" else 1.0
        trip = [tuple(scale * x if _finite(x) else x for x in (v if v is not None else (None, None, None)))
                for v in vals]
        d = col.decimals if col.decimals is not None else _auto_decimals([t[0] for t in trip])
        out, num = [], []
        for est, lo, hi in trip:
            e, ok = _fmt(est, d)
            if ok and _finite(lo) and _finite(hi):
                e = f"{e} [{lo:.{d}f}, {hi:.{d}f}]"
            out.append(e)
            num.append(ok)
        return out, num, d
    if col.kind == "pct":
        vals = [100 * v if _finite(v) else v for v in vals]
    if col.kind == "int":
        d = 0
    elif col.decimals is not None:
        d = col.decimals
    elif col.kind == "p":
        d = 3
    elif col.kind == "sig":
        d = _sig_decimals(vals)
    else:
        d = _auto_decimals(vals)
    out, num = [], []
    for v in vals:
        t, ok = _fmt(v, d)
        out.append(t)
        num.append(ok)
    return out, num, d


def _ident(t: dict[str, Any], multi_exp: bool) -> Record:
    rec: Record = {"experiment": t["experiment"]} if multi_exp else {}
    rec.update({"task": t["task"], "scheduler": t["scheduler"]})
    return rec


def _notes(cr: dict[str, Any], shared: dict[str, Any]) -> str | None:
    notes = []
    if cr["final_below_resolution"]:
        notes.append("final margin below resolution")
    if cr.get("too_few_seeds"):
        notes.append("too few seeds")
    elif cr["underpowered"]:
        notes.append("underpowered")
    for k in cr.get("not_measured", []):
        notes.append(f"{k} not measured")
    ms, mt = shared.get("median_shared"), shared.get("median_trials")
    if _finite(ms) and _finite(mt) and mt > 0 and ms < 0.5 * mt:
        notes.append(f"{ms:.0f} of {mt:.0f} proposals shared")
    return "; ".join(notes) or None


def build(analysis: dict[str, Any]) -> dict[str, list[Record]]:
    """Records of every table."""
    tuples = analysis["tuples"]
    multi = len({t["experiment"] for t in tuples}) > 1
    t_tau, paired, paired_scores, scores, overhead, kl, criteria, status = [], [], [], [], [], [], [], []
    for t in tuples:
        ident = _ident(t, multi)
        for v, ms in t["methods"].items():
            tt = ms["t_tau"]
            t_tau.append({**ident, "method": v, "tau": t["tau"], "seeds": ms["n_seeds"], "reached": tt["n_reached"],
                          "frac_reached": tt["frac_reached"], "km_median": tt["km_median"],
                          "q25": tt["q25"], "q75": tt["q75"]})
            scores.append({**ident, "method": v, "auc_median": ms["auc"]["median"], "auc_q25": ms["auc"]["q25"],
                           "auc_q75": ms["auc"]["q75"], "final_median": ms["final"]["median"],
                           "final_test_median": ms["final_test"]["median"]})
            if v != VANILLA:
                overhead.append({**ident, "method": v, "overhead_share": ms["overhead_share"]["median"],
                                 "overhead_share_q75": ms["overhead_share"]["q75"],
                                 "seconds_per_step": ms["seconds_per_step"]["median"],
                                 "flops_per_step": ms["flops_per_step"]["median"],
                                 "peak_rss_mb": ms["peak_rss_bytes"]["median"] / 2**20
                                 if _finite(ms["peak_rss_bytes"]["median"]) else math.nan,
                                 "warm_starts": ms["n_warm_starts"]})
        for name, c in t["comparisons"].items():
            r, tests, cr = c["t_tau_ratio"], c["tests"], c["criteria"]
            sh = c.get("shared_proposals") or {}
            paired.append({**ident, "comparison": name, "pairs": r["n_pairs"], "used": r["n_used"],
                           "ties": r["n_ties"], "nonzero": r["n_nonzero"],
                           "one_censored": r["n_one_censored"], "both_censored": r["n_both_censored"],
                           "ratio": r["median"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                           "geo_mean": r["geo_mean"], "geo_ci_low": r["geo_ci_low"], "geo_ci_high": r["geo_ci_high"],
                           "p": tests["t_tau"]["p"], "p_holm": tests["t_tau"]["p_holm"],
                           "better": tests["t_tau"]["better"], "power": cr["power"],
                           "shared_proposals": sh.get("median_shared", math.nan),
                           "trials": sh.get("median_trials", math.nan)})
            paired_scores.append({**ident, "comparison": name, "pairs": r["n_pairs"],
                                  "auc_diff": tests["auc"]["median_diff"], "auc_ci_low": c["auc_gain"].get("ci_low"),
                                  "auc_ci_high": c["auc_gain"].get("ci_high"),
                                  "p_auc_holm": tests["auc"]["p_holm"], "auc_better": tests["auc"]["better"],
                                  "final_diff": tests["final"]["median_diff"], "p_final_holm": tests["final"]["p_holm"],
                                  "final_better": tests["final"]["better"]})
            notes = _notes(cr, sh)
            criteria.append({**ident, "comparison": name, **{k: cr[k] for k in (
                "t_tau_ratio", "p_t_tau", "p_attainable", "power", "final_drop", "overhead_share", "extra_peak_memory",
                "std_inflation", "ok_t_tau", "ok_final", "ok_compute", "ok_memory", "ok_std", "holds", "status",
                "final_below_resolution", "underpowered")},
                "t_tau_ratio_ci": cr["t_tau_ratio_ci"], "final_drop_ci": cr["final_drop_ci"],
                "std_inflation_ci": cr["std_inflation_ci"], "paired_seeds": len(c["paired_seeds"]), "notes": notes})
            status.append({**ident, "comparison": name, **{f"o_{k}": v for k, v in cr["outcome"].items()},
                           "status": c["status"], "status_t_tau": c["status_t_tau"],
                           "status_cost": c["status_cost"], "notes": notes})
        for v, rows in t["kl"].items():
            for r in rows:
                kl.append({**ident, "method": v, **r})
    vt, vc = analysis.get("verdicts_t_tau", {}), analysis.get("verdicts_cost", {})
    verdict = [{"method": v, **vd, "status_t_tau": (vt.get(v) or {}).get("status"),
                "n_hold_t_tau": (vt.get(v) or {}).get("n_hold"), "status_cost": (vc.get(v) or {}).get("status")}
               for v, vd in analysis["verdicts"].items()]
    sweep = [{"experiment": sw["experiment"], "task": sw["task"], "scheduler": sw["scheduler"], "nudge": sw["nudge"],
              "rho": rho, "pairs": n, "ratio": r, "ci_low": lo, "ci_high": hi, "geo_mean": g, "p_holm": p}
             for sw in analysis.get("step_sweeps") or []
             for rho, n, r, lo, hi, g, p in zip(sw["rho"], sw["pairs"], sw["ratio"], sw["ci_low"], sw["ci_high"],
                                                sw["geo_mean"], sw["p_holm"])]
    return {"t_tau": t_tau, "paired": paired, "paired_scores": paired_scores, "scores": scores,
            "overhead": overhead, "kl": kl, "criteria": criteria, "status": status, "verdict": verdict,
            "step_sweep": sweep}


def _tri(a: str, b: str, c: str) -> Callable[[Record], Any]:
    return lambda r: (r.get(a), r.get(b), r.get(c))


def _with_ci(est: str, ci: str) -> Callable[[Record], Any]:
    return lambda r: (r.get(est), *(list(r.get(ci) or [None, None])[:2]))


def columns(multi_exp: bool, unit: str) -> dict[str, list[Column]]:
    th = metrics.CRITERIA
    base: list[Column] = ([Column("Experiment", lambda r: r["experiment"])] if multi_exp else []) + [
        Column("Task", lambda r: r["task"]), Column("Scheduler", lambda r: r["scheduler"])]
    meth = [*base, Column("Method", lambda r: r["method"])]
    comp = [*base, Column("Comparison", lambda r: r["comparison"])]
    return {
        "t_tau": [*meth,
                  Column("tau", lambda r: r["tau"], "sig"),
                  Column("Seeds", lambda r: r["seeds"], "int"),
                  Column("Reached (%)", lambda r: r["frac_reached"], "pct", 0),
                  Column(f"KM median ({unit})", lambda r: r["km_median"], "num"),
                  Column("KM Q25", lambda r: r["q25"], "num"),
                  Column("KM Q75", lambda r: r["q75"], "num")],
        "paired": [*comp,
                   Column("Pairs used", lambda r: r["used"], "int"),
                   Column("Ties", lambda r: r["ties"], "int"),
                   Column("Both cens.", lambda r: r["both_censored"], "int"),
                   Column("Median ratio [95% CI]", _tri("ratio", "ci_low", "ci_high"), "ci", 2),
                   Column("Geo. mean [95% CI]", _tri("geo_mean", "geo_ci_low", "geo_ci_high"), "ci", 2),
                   Column("p", lambda r: r["p"], "p"),
                   Column("p (Holm)", lambda r: r["p_holm"], "p"),
                   Column("Power 20% (%)", lambda r: r["power"], "pct", 0),
                   Column("Shared proposals", lambda r: r["shared_proposals"], "num", 0)],
        "paired_scores": [*comp,
                          Column("Pairs", lambda r: r["pairs"], "int"),
                          Column("AUC diff [95% CI]", _tri("auc_diff", "auc_ci_low", "auc_ci_high"), "ci", 3),
                          Column("p AUC (Holm)", lambda r: r["p_auc_holm"], "p"),
                          Column("AUC better", lambda r: r["auc_better"]),
                          Column("Final diff", lambda r: r["final_diff"], "num", 4),
                          Column("p final (Holm)", lambda r: r["p_final_holm"], "p"),
                          Column("Final better", lambda r: r["final_better"])],
        "scores": [*meth,
                   Column("AUC median", lambda r: r["auc_median"], "num", 3),
                   Column("AUC Q25", lambda r: r["auc_q25"], "num", 3),
                   Column("AUC Q75", lambda r: r["auc_q75"], "num", 3),
                   Column("Final val. median", lambda r: r["final_median"], "num", 4),
                   Column("Final test median", lambda r: r["final_test_median"], "num", 4)],
        "overhead": [*meth,
                     Column("Overhead share (%)", lambda r: r["overhead_share"], "pct", 2),
                     Column("Q75 (%)", lambda r: r["overhead_share_q75"], "pct", 2),
                     Column("Time / step (x)", lambda r: r["seconds_per_step"], "num", 2),
                     Column("FLOPs / step (x)", lambda r: r["flops_per_step"], "num", 2),
                     Column("Peak RSS (MiB)", lambda r: r["peak_rss_mb"], "num", 0),
                     Column("Warm-starts", lambda r: r["warm_starts"], "int")],
        "kl": [*meth,
               Column("HP", lambda r: r["hp"] + (" (log)" if r["log"] else "")),
               Column("KL chosen (nats)", lambda r: r["kl_chosen"], "num", 3),
               Column(f"Shift chosen [{th['margin_level']:.0%} CI]",
                      _tri("mean_shift_chosen", "shift_ci_low", "shift_ci_high"), "ci", 3),
               Column(f"Bias (margin {th['bias_margin']:g})", lambda r: r.get("bias")),
               Column("KL all (nats)", lambda r: r["kl_all"], "num", 3),
               Column("Shift all", lambda r: r["mean_shift_all"], "num", 3),
               Column("n all", lambda r: r["n_all"], "int")],
        "criteria": [*comp,
                     Column(f"T@tau ratio [95% CI] (<={1 - th['t_tau_reduction']:.2f})",
                            _with_ci("t_tau_ratio", "t_tau_ratio_ci"), "ci", 2),
                     Column("p Holm (<0.05)", lambda r: r["p_t_tau"], "p"),
                     Column("Best p", lambda r: r["p_attainable"], "p"),
                     Column("Power (%)", lambda r: r["power"], "pct", 0),
                     Column(f"Final drop (%) [{th['margin_level']:.0%} CI] (<={100 * th['final_drop']:g})",
                            _with_ci("final_drop", "final_drop_ci"), "cipct", 2),
                     Column(f"Overhead (%) (<={100 * th['overhead_share']:g})", lambda r: r["overhead_share"], "pct", 2),
                     Column(f"Peak mem. (%) (<={100 * th['extra_peak_memory']:g})", lambda r: r["extra_peak_memory"], "pct", 1),
                     Column(f"Std infl. (%) [{th['margin_level']:.0%} CI] (<={100 * th['std_inflation']:g})",
                            _with_ci("std_inflation", "std_inflation_ci"), "cipct", 0)],
        "status": [*comp,
                   Column("T@tau", lambda r: r["o_t_tau"]),
                   Column("Final", lambda r: r["o_final"]),
                   Column("Compute", lambda r: r["o_compute"]),
                   Column("Memory", lambda r: r["o_memory"]),
                   Column("Std", lambda r: r["o_std"]),
                   Column("Status", lambda r: r["status"]),
                   Column("T@tau alone", lambda r: r["status_t_tau"]),
                   Column("Cost alone", lambda r: r["status_cost"]),
                   Column("Notes", lambda r: r["notes"])],
        "step_sweep": [*base,
                       Column("Nudge (normalized)", lambda r: r["nudge"]),
                       Column("rho", lambda r: r["rho"], "sig"),
                       Column("Pairs", lambda r: r["pairs"], "int"),
                       Column("Median ratio vs none [95% CI]", _tri("ratio", "ci_low", "ci_high"), "ci", 2),
                       Column("Geo. mean", lambda r: r["geo_mean"], "num", 2),
                       Column("p (Holm)", lambda r: r["p_holm"], "p")],
        "verdict": [Column("Method (vs none)", lambda r: r["method"]),
                    Column("Tuples", lambda r: r["n_tuples"], "int"),
                    Column("Hold", lambda r: r["n_hold"], "int"),
                    Column("Inconclusive", lambda r: r["n_inconclusive"], "int"),
                    Column("Do not hold", lambda r: r["n_does_not_hold"], "int"),
                    Column("Not applicable", lambda r: r["n_not_applicable"], "int"),
                    Column("Hold (%)", lambda r: r["fraction"], "pct", 0),
                    Column(f"Verdict (>={th['verdict_fraction']:.0%})", lambda r: r["status"]),
                    Column("T@tau alone", lambda r: r["status_t_tau"]),
                    Column("Cost alone", lambda r: r["status_cost"])],
    }


def captions(analysis: dict[str, Any], records: dict[str, list[Record]], unit: str) -> dict[str, str]:
    """Captions built from the rows they describe: experiment, metric, seeds, counts."""
    tuples = analysis["tuples"]
    exps = ", ".join(sorted({t["experiment"] for t in tuples})) or "no experiment"
    metric = ", ".join(sorted({f"{t.get('metric') or 'validation metric'} ({t['mode']}imised)" for t in tuples}))
    seeds = span([r["seeds"] for r in records["t_tau"]])
    pairs = span([r["pairs"] for r in records["paired"]])
    st = [r["status"] for r in records["criteria"]]
    counts = ", ".join(f"{st.count(k)} {k}" for k in ("holds", "does not hold", "inconclusive", "not applicable")
                       if st.count(k)) or "no comparisons"
    verdicts = "; ".join(f"{r['method']}: {r['status']} ({r['n_hold']}/{r['n_applicable']} applicable tuples hold, "
                         f"{r['n_inconclusive']} inconclusive)" for r in records["verdict"]) or "no arm compared with none"
    th = metrics.CRITERIA
    st_t = [r["status_t_tau"] for r in records["status"]]
    counts_t = ", ".join(f"{st_t.count(k)} {k}" for k in ("holds", "does not hold", "inconclusive", "not applicable")
                         if st_t.count(k)) or "no comparisons"
    return {
        "t_tau": f"Time to reach tau (T@tau, {unit}) of the {metric} in {exps}: {len(records['t_tau'])} arms with "
                 f"{seeds} seeds each; Kaplan-Meier median and quartiles (n.r. = not reached; the same median as "
                 f"every figure) beside the share of seeds reaching tau.",
        "paired": f"Paired T@tau comparisons in {exps} ({len(records['paired'])} rows, {pairs} seed pairs, every pair "
                  f"used; a pair censored in both arms counts as a tie, ratio 1): median and geometric mean of the "
                  f"per-seed T@tau ratios (arm / baseline, < 1 = arm faster) with 95% bootstrap intervals; ties = "
                  f"pairs with ratio exactly 1; two-sided Wilcoxon p of the log ratios (ties dropped), Holm over "
                  f"tuples; power = computed chance of meeting the T@tau criterion if the true ratio were 0.80; "
                  f"shared proposals = median count of trials whose pre-warm-start config is the same in both arms.",
        "paired_scores": f"Paired score comparisons in {exps} ({pairs} seed pairs): median AUC difference (arm - "
                         f"baseline) with 95% bootstrap interval and median final-score difference, Wilcoxon p with "
                         f"Holm over tuples.",
        "scores": f"Normalised AUC of the best-so-far curve, final best {metric} and the incumbent's test metric in "
                  f"{exps}: medians over {seeds} seeds.",
        "overhead": f"Warm-start overhead in {exps}: share of the study's compute (S/W, on the FLOP clock), per-step "
                    f"ratios to one plain training step, and the study's peak resident memory per worker process; "
                    f"medians over {seeds} seeds.",
        "kl": f"Hyperparameter bias in {exps}: per hyperparameter, shift of the mean of the chosen (incumbent) "
              f"configs, arm - none, in fractions of the range (unit cube, log for log-scale), with its "
              f"{th['margin_level']:.0%} bootstrap interval; no bias when the interval lies inside "
              f"+-{th['bias_margin']:g}, biased when wholly outside, else undecided. KL(arm || none) of Gaussian "
              f"fits for chosen and all evaluated configs.",
        "criteria": f"Success criteria per comparison in {exps} ({len(st)} comparisons, {pairs} seed pairs): "
                    f"thresholds in the headers; final drop and std inflation with {th['margin_level']:.0%} paired "
                    f"bootstrap intervals tested against their margins. Best p is the smallest Holm-adjusted p the "
                    f"informative seed pairs allow; power is for a true 20% reduction.",
        "status": f"Outcome of each criterion (met, failed: interval beyond its margin, undecided: interval across "
                  f"it, not measured) and the status they give in {exps} ({counts}; T@tau alone: {counts_t}); "
                  f"precedence in docs/results-format.md.",
        "verdict": f"Verdict per arm against none over the tuples of {exps}: {verdicts}; T@tau alone and cost "
                   f"(compute, memory) alone beside it.",
        "step_sweep": f"Step-length sweep in {exps}: each nudge with the normalized step at several trust-region "
                      f"radii rho (unit-cube coordinates), its paired T@tau ratio against none (< 1 = faster) with "
                      f"the 95% bootstrap interval, as in the paired table; {len(records['step_sweep'])} rows"
                      + ("" if records["step_sweep"] else " (no nudge was run at two or more radii)") + ".",
    }


def _escape(text: str) -> str:
    """LaTeX-safe text: specials escaped; <, >, <=, >= as math (text-mode < prints as another glyph)."""
    out = text.replace("\\", "\x00")
    for a, b in (("&", "\\&"), ("%", "\\%"), ("$", "\\$"), ("#", "\\#"), ("_", "\\_"), ("{", "\\{"),
                 ("}", "\\}"), ("~", "\\textasciitilde{}"), ("^", "\\^{}"), ("–", "--")):
        out = out.replace(a, b)
    for a, b in (("<=", "\x01leq\x02"), (">=", "\x01geq\x02"), ("<", "\x01lt\x02"), (">", "\x01gt\x02")):
        out = out.replace(a, b)
    out = out.replace("\x01lt\x02", "$<$").replace("\x01gt\x02", "$>$")
    out = out.replace("\x01", "$\\").replace("\x02", "$")
    return out.replace("\x00", "\\textbackslash{}")


def to_markdown(records: list[Record], cols: list[Column], caption: str) -> str:
    def cell(x: str) -> str:
        return x.replace("|", "\\|")

    cells = [_cells(c, records)[0] for c in cols]
    align = ["---" if c.kind == "text" else "---:" for c in cols]
    lines = [caption, "", "| " + " | ".join(cell(c.header) for c in cols) + " |", "| " + " | ".join(align) + " |"]
    for i in range(len(records)):
        lines.append("| " + " | ".join(cell(cells[j][i]) for j in range(len(cols))) + " |")
    if not records:
        lines.append("| " + " | ".join(DASH_MD for _ in cols) + " |")
    return "\n".join(lines) + "\n"


#: a plain article's text width at 10pt (pt), and the rows one float may hold before splitting
TEXT_WIDTH_PT = 345.0
MAX_ROWS = 40
#: \small in a 10pt article: about 4.6 pt per character, 12 pt between columns (2 \tabcolsep)
CHAR_PT, COLSEP_PT = 4.6, 12.0
LATEX_PACKAGES = ("booktabs", "graphicx")


def latex_width_pt(heads: list[str], body_cols: list[list[str]]) -> float:
    """Estimated natural width of a tabular from its longest cell per column (header included)."""
    def visible(t: str) -> int:
        for a, b in (("\\textbackslash{}", "x"), ("$\\leq$", "x"), ("$\\geq$", "x"), ("$<$", "x"), ("$>$", "x")):
            t = t.replace(a, b)
        return len(t.replace("\\", "").replace("{", "").replace("}", ""))

    return sum(max([visible(h)] + [visible(x) for x in col]) * CHAR_PT + COLSEP_PT for h, col in zip(heads, body_cols))


def to_latex(records: list[Record], cols: list[Column], caption: str, label: str) -> str:
    """A complete table float for a plain article: caption, label, booktabs rules, ``l``/``r`` columns.

    Scaled to the text width (``\\resizebox``) when its estimated width exceeds it.
    """
    spec, heads, body_cols = [], [], []
    for c in cols:
        texts, _isnum, _d = _cells(c, records)
        spec.append("l" if c.kind == "text" else "r")
        heads.append(_escape(c.header))
        body_cols.append([_escape(t) if t != DASH_MD else "--" for t in texts])
    wide = latex_width_pt(heads, body_cols) > TEXT_WIDTH_PT
    pk = ", ".join("\\usepackage{" + p + "}" for p in LATEX_PACKAGES)
    lines = [f"% generated by analysis/tables.py; needs {pk}",
             "\\begin{table}[htbp]", "\\centering", "\\small", f"\\caption{{{_escape(caption)}}}",
             f"\\label{{tab:{label}}}"]
    if wide:
        lines.append("\\resizebox{\\linewidth}{!}{%")
    lines += [f"\\begin{{tabular}}{{{''.join(spec)}}}", "\\toprule", " & ".join(heads) + " \\\\", "\\midrule"]
    for i in range(len(records)):
        lines.append(" & ".join(col[i] for col in body_cols) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if wide:
        lines.append("}")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def _chunks(records: list[Record]) -> list[list[Record]]:
    """Rows split into floats of at most :data:`MAX_ROWS`, breaking between tasks where possible."""
    if len(records) <= MAX_ROWS:
        return [records]
    out: list[list[Record]] = []
    cur: list[Record] = []
    for key in dict.fromkeys((r.get("experiment"), r.get("task")) for r in records):
        group = [r for r in records if (r.get("experiment"), r.get("task")) == key]
        while group:
            if cur and len(cur) + len(group) > MAX_ROWS:
                out.append(cur)
                cur = []
            take = group[:MAX_ROWS - len(cur)] if len(group) > MAX_ROWS else group
            cur += take
            group = group[len(take):]
    if cur:
        out.append(cur)
    return out


def to_latex_split(records: list[Record], cols: list[Column], caption: str, label: str) -> str:
    """:func:`to_latex`, as one float per chunk of rows (:func:`_chunks`), captions numbered "(part k of n)"."""
    parts = _chunks(records)
    if len(parts) == 1:
        return to_latex(records, cols, caption, label)
    return "\n".join(to_latex(rs, cols, f"{caption} (part {k} of {len(parts)})", f"{label}-{k}")
                     for k, rs in enumerate(parts, 1))


def write_all(analysis: dict[str, Any], folder: Path) -> list[Path]:
    """Write every table as .tex and .md; store the records in ``analysis['table_records']``."""
    folder.mkdir(parents=True, exist_ok=True)
    records = build(analysis)
    analysis["table_records"] = records
    tuples = analysis["tuples"]
    multi = len({t["experiment"] for t in tuples}) > 1
    unit = ", ".join(sorted({clock_unit(t["clock"]) for t in tuples})) or "s"
    caps = captions(analysis, records, unit)
    written = []
    for name, cols in columns(multi, unit).items():
        for suffix, text in ((".tex", to_latex_split(records[name], cols, caps[name], name)),
                             (".md", to_markdown(records[name], cols, caps[name]))):
            path = folder / f"{name}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
