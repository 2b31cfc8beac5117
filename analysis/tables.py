"""The report's tables: raw records (for summary.json) and their LaTeX / Markdown forms.

Every table is built once as a list of records of plain numbers; the text forms are formatted
from those records, so summary.json holds every number a table shows. Each column has one
kind: text, an integer, a number with a fixed count of decimals for the whole column (chosen
from the column's largest value unless fixed), a percentage or a p-value. A missing value is a
dash. The ``.tex`` files are complete ``table`` floats (caption built from the rows, label,
booktabs rules, siunitx ``S`` columns): they need ``\\usepackage{booktabs,siunitx}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.common import VANILLA, clock_unit

Record = dict[str, Any]
DASH_MD = "–"
DASH_TEX = "{--}"


@dataclass
class Column:
    header: str
    get: Callable[[Record], Any]
    kind: str = "text"  # text, int, num (fixed decimals), pct, p, sig (3 significant digits: thresholds)
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


def _cells(col: Column, records: list[Record]) -> tuple[list[str], list[bool], int]:
    """(text of each cell, whether it is a number, decimals) for one column."""
    vals = [col.get(r) for r in records]
    if col.kind == "text":
        return [DASH_MD if v is None else str(v) for v in vals], [False] * len(vals), 0
    if col.kind == "pct":
        vals = [100 * v if _finite(v) else v for v in vals]
    d = 0 if col.kind == "int" else col.decimals if col.decimals is not None else (
        3 if col.kind == "p" else _auto_decimals(vals))
    out, num = [], []
    for v in vals:
        if _finite(v) and col.kind == "sig":  # thresholds of different tasks: three significant digits
            out.append(f"{v:#.3g}".rstrip("."))
            num.append(True)
        elif _finite(v):
            out.append(f"{v:.{d}f}")
            num.append(True)
        elif isinstance(v, float) and math.isinf(v):
            out.append("n.r." if v > 0 else DASH_MD)  # +inf: a censored T@tau, "not reached"
            num.append(False)
        else:
            out.append(DASH_MD)
            num.append(False)
    return out, num, d


def _ident(t: dict[str, Any], multi_exp: bool) -> Record:
    rec: Record = {"experiment": t["experiment"]} if multi_exp else {}
    rec.update({"task": t["task"], "scheduler": t["scheduler"]})
    return rec


def build(analysis: dict[str, Any]) -> dict[str, list[Record]]:
    """Records of every table."""
    tuples = analysis["tuples"]
    multi = len({t["experiment"] for t in tuples}) > 1
    t_tau, paired, scores, overhead, kl, criteria = [], [], [], [], [], []
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
            paired.append({**ident, "comparison": name, "pairs": r["n_pairs"], "used": r["n_used"],
                           "one_censored": r["n_one_censored"], "both_censored": r["n_both_censored"],
                           "ratio": r["median"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                           "p": tests["t_tau"]["p"], "p_holm": tests["t_tau"]["p_holm"],
                           "better": tests["t_tau"]["better"], "auc_diff": tests["auc"]["median_diff"],
                           "p_auc_holm": tests["auc"]["p_holm"], "auc_better": tests["auc"]["better"],
                           "final_diff": tests["final"]["median_diff"], "p_final_holm": tests["final"]["p_holm"],
                           "final_better": tests["final"]["better"]})
            notes = []
            if cr["final_below_resolution"]:
                notes.append("final criterion below resolution")
            if cr["underpowered"]:
                notes.append("underpowered")
            if not cr["memory_measured"]:
                notes.append("peak memory not recorded")
            criteria.append({**ident, "comparison": name, **{k: cr[k] for k in (
                "t_tau_ratio", "p_t_tau", "p_attainable", "final_drop", "overhead_share", "extra_peak_memory",
                "std_inflation", "ok_t_tau", "ok_final", "ok_compute", "ok_memory", "ok_std", "holds", "status",
                "final_below_resolution", "underpowered")}, "paired_seeds": len(c["paired_seeds"]),
                "notes": "; ".join(notes) or None})
        for v, rows in t["kl"].items():
            for r in rows:
                kl.append({**ident, "method": v, **r})
    verdict = [{"method": v, **vd} for v, vd in analysis["verdicts"].items()]
    return {"t_tau": t_tau, "paired": paired, "scores": scores, "overhead": overhead, "kl": kl,
            "criteria": criteria, "verdict": verdict}


def columns(multi_exp: bool, unit: str) -> dict[str, list[Column]]:
    base: list[Column] = ([Column("Experiment", lambda r: r["experiment"])] if multi_exp else []) + [
        Column("Task", lambda r: r["task"]), Column("Scheduler", lambda r: r["scheduler"])]
    meth = [*base, Column("Method", lambda r: r["method"])]
    comp = [*base, Column("Comparison", lambda r: r["comparison"])]
    return {
        "t_tau": [*meth,
                  Column("tau", lambda r: r["tau"], "sig"),
                  Column("Seeds", lambda r: r["seeds"], "int"),
                  Column("Reached (%)", lambda r: r["frac_reached"], "pct", 0),
                  Column(f"KM median T@tau ({unit})", lambda r: r["km_median"], "num"),
                  Column(f"Q25 ({unit})", lambda r: r["q25"], "num"),
                  Column(f"Q75 ({unit})", lambda r: r["q75"], "num")],
        "paired": [*comp,
                   Column("Pairs", lambda r: r["pairs"], "int"),
                   Column("Both cens.", lambda r: r["both_censored"], "int"),
                   Column("T@tau ratio", lambda r: r["ratio"], "num", 3),
                   Column("CI low", lambda r: r["ci_low"], "num", 3),
                   Column("CI high", lambda r: r["ci_high"], "num", 3),
                   Column("p", lambda r: r["p"], "p"),
                   Column("p (Holm)", lambda r: r["p_holm"], "p"),
                   Column("Faster", lambda r: r["better"]),
                   Column("AUC diff", lambda r: r["auc_diff"], "num", 3),
                   Column("p AUC (Holm)", lambda r: r["p_auc_holm"], "p"),
                   Column("AUC better", lambda r: r["auc_better"])],
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
               Column("Shift chosen (range)", lambda r: r["mean_shift_chosen"], "num", 3),
               Column("KL all (nats)", lambda r: r["kl_all"], "num", 3),
               Column("Shift all (range)", lambda r: r["mean_shift_all"], "num", 3),
               Column("n all", lambda r: r["n_all"], "int")],
        "criteria": [*comp,
                     Column("T@tau ratio (<=0.85)", lambda r: r["t_tau_ratio"], "num", 3),
                     Column("p Holm (<0.05)", lambda r: r["p_t_tau"], "p"),
                     Column("Best p", lambda r: r["p_attainable"], "p"),
                     Column("Final drop (%) (<=0.2)", lambda r: r["final_drop"], "pct", 2),
                     Column("Overhead (%) (<=5)", lambda r: r["overhead_share"], "pct", 2),
                     Column("Peak mem. (%) (<=10)", lambda r: r["extra_peak_memory"], "pct", 1),
                     Column("Std infl. (%) (<=10)", lambda r: r["std_inflation"], "pct", 1),
                     Column("Status", lambda r: r["status"]),
                     Column("Notes", lambda r: r["notes"])],
        "verdict": [Column("Method (vs none)", lambda r: r["method"]),
                    Column("Tuples", lambda r: r["n_tuples"], "int"),
                    Column("Hold", lambda r: r["n_hold"], "int"),
                    Column("Inconclusive", lambda r: r["n_inconclusive"], "int"),
                    Column("Do not hold", lambda r: r["n_does_not_hold"], "int"),
                    Column("Not applicable", lambda r: r["n_not_applicable"], "int"),
                    Column("Hold (%)", lambda r: r["fraction"], "pct", 0),
                    Column("Verdict (>=75%)", lambda r: r["status"])],
    }


def _span(values: list[int]) -> str:
    values = sorted(set(values))
    if not values:
        return "no"
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def captions(analysis: dict[str, Any], records: dict[str, list[Record]], unit: str) -> dict[str, str]:
    """Captions built from the rows they describe: experiment, metric, seeds, counts."""
    tuples = analysis["tuples"]
    exps = ", ".join(sorted({t["experiment"] for t in tuples})) or "no experiment"
    metric = ", ".join(sorted({f"{t.get('metric') or 'validation metric'} ({t['mode']}imised)" for t in tuples}))
    seeds = _span([r["seeds"] for r in records["t_tau"]])
    pairs = _span([r["pairs"] for r in records["paired"]])
    st = [r["status"] for r in records["criteria"]]
    counts = ", ".join(f"{st.count(k)} {k}" for k in ("holds", "does not hold", "inconclusive", "not applicable")
                       if st.count(k)) or "no comparisons"
    verdicts = "; ".join(f"{r['method']}: {r['status']} ({r['n_hold']}/{r['n_applicable']} applicable tuples hold, "
                         f"{r['n_inconclusive']} inconclusive)" for r in records["verdict"]) or "no arm compared with none"
    return {
        "t_tau": f"Time to reach tau (T@tau, {unit}) of the {metric} in {exps}: {len(records['t_tau'])} arms with "
                 f"{seeds} seeds each; Kaplan-Meier median and quartiles (n.r. = not reached) beside the share of seeds reaching tau.",
        "paired": f"Paired comparisons in {exps} ({len(records['paired'])} rows, {pairs} seed pairs): median per-seed "
                  f"T@tau ratio (arm / baseline, < 1 = arm faster) with 95% bootstrap interval; two-sided Wilcoxon p "
                  f"of the log ratios, Holm over tuples; the faster arm by the median; AUC difference (arm - baseline).",
        "scores": f"Normalised AUC of the best-so-far curve, final best {metric} and the incumbent's test metric in "
                  f"{exps}: medians over {seeds} seeds.",
        "overhead": f"Warm-start overhead in {exps}: share of the study's compute (S/W, on the FLOP clock), per-step "
                    f"ratios to one plain training step, and the study's peak resident memory per worker process; "
                    f"medians over {seeds} seeds.",
        "kl": f"KL(arm || none) of Gaussian fits per hyperparameter in the unconstrained space, for chosen (incumbent) "
              f"and all evaluated configs, in {exps}; mean shift as a fraction of the range.",
        "criteria": f"Success criteria per comparison in {exps} ({len(st)} comparisons, {pairs} seed pairs): {counts}. "
                    f"Best p is the smallest Holm-adjusted p the number of seeds allows.",
        "verdict": f"Verdict per arm against none over the tuples of {exps}: {verdicts}.",
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


def to_latex(records: list[Record], cols: list[Column], caption: str, label: str) -> str:
    """A complete table float: caption, label, booktabs rules, siunitx S columns for numbers."""
    spec, heads, body_cols = [], [], []
    for c in cols:
        texts, isnum, d = _cells(c, records)
        if c.kind == "text":
            spec.append("l")
            heads.append(_escape(c.header))
            body_cols.append([_escape(t) if t != DASH_MD else "--" for t in texts])
        else:
            nums = [t for t, n in zip(texts, isnum) if n]
            ints = max((len(t.split(".")[0].lstrip("-")) for t in nums), default=1)
            decs = max((len(t.split(".")[1]) if "." in t else 0 for t in nums), default=0)
            sign = "-" if any(t.startswith("-") for t in nums) else ""
            fmt = f"{sign}{ints}.{decs}" if decs else f"{sign}{ints}"
            spec.append(f"S[table-format={fmt}]")
            heads.append("{" + _escape(c.header) + "}")
            body_cols.append([t if n else ("{n.r.}" if t == "n.r." else DASH_TEX) for t, n in zip(texts, isnum)])
    lines = ["% generated by analysis/tables.py; needs \\usepackage{booktabs} and \\usepackage{siunitx}",
             "\\begin{table}[htbp]", "\\centering", "\\small", f"\\caption{{{_escape(caption)}}}",
             f"\\label{{tab:{label}}}", f"\\begin{{tabular}}{{{''.join(spec)}}}", "\\toprule",
             " & ".join(heads) + " \\\\", "\\midrule"]
    for i in range(len(records)):
        lines.append(" & ".join(col[i] for col in body_cols) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


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
        for suffix, text in ((".tex", to_latex(records[name], cols, caps[name], name)),
                             (".md", to_markdown(records[name], cols, caps[name]))):
            path = folder / f"{name}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
