"""The report's tables: raw records (for summary.json) and their LaTeX (booktabs) / Markdown forms.

Every table is built once as a list of records of plain numbers; the text forms are formatted
from those records, so summary.json holds every number a table shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

Record = dict[str, Any]
Column = tuple[str, Callable[[Record], str]]


def fmt(x: Any, digits: int = 3) -> str:
    """Three significant digits; an en dash for a missing value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "n.r." if x > 0 else "-inf"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"


def pct(x: Any) -> str:
    if x is None or not isinstance(x, int | float) or math.isnan(x):
        return "–"
    if math.isinf(x):
        return "inf"
    return f"{100 * x:.1f}%"


def med_iqr(rec: Record, key: str) -> str:
    """``median [q25, q75]``; n.r. (not reached) for censored T@tau quantiles."""
    return f"{fmt(rec[key + '_median'])} [{fmt(rec[key + '_q25'])}, {fmt(rec[key + '_q75'])}]"


def _flat(prefix: str, d: dict[str, Any]) -> Record:
    return {f"{prefix}_{k}": d.get(k) for k in ("median", "q25", "q75")}


def _ident(t: dict[str, Any], multi_exp: bool) -> Record:
    rec: Record = {"experiment": t["experiment"]} if multi_exp else {}
    rec.update({"task": t["task"], "scheduler": t["scheduler"]})
    return rec


def build(analysis: dict[str, Any]) -> dict[str, list[Record]]:
    """Records of every table."""
    tuples = analysis["tuples"]
    multi = len({t["experiment"] for t in tuples}) > 1
    t_tau, scores, overhead, kl, criteria = [], [], [], [], []
    for t in tuples:
        ident = _ident(t, multi)
        for v, ms in t["methods"].items():
            c = t["comparisons"].get(v)
            tests = c["tests"] if c else {}

            def p(k: str, field: str = "p", tests: dict[str, Any] = tests) -> float:
                return tests[k][field] if k in tests else math.nan

            t_tau.append({**ident, "method": v, "tau": t["tau"], "seeds": ms["n_seeds"],
                          "reached": ms["t_tau"]["n_reached"], "frac_reached": ms["t_tau"]["frac_reached"],
                          **_flat("t_tau", ms["t_tau"]),
                          "reduction": c["t_tau_reduction"] if c else math.nan,
                          "p": p("t_tau"), "p_holm": p("t_tau", "p_holm")})
            scores.append({**ident, "method": v, **_flat("auc", ms["auc"]), "p_auc_holm": p("auc", "p_holm"),
                           **_flat("final", ms["final"]), "p_final_holm": p("final", "p_holm"),
                           **_flat("final_test", ms["final_test"]),
                           "p_final_test_holm": p("final_test", "p_holm")})
            if c:
                overhead.append({**ident, "method": v, **_flat("extra_compute", ms["extra_compute"]),
                                 "seconds_per_step": ms["seconds_per_step"]["median"],
                                 "flops_per_step": ms["flops_per_step"]["median"],
                                 "peak_per_step": ms["peak_per_step"]["median"],
                                 **_flat("extra_peak_memory", ms["extra_peak_memory"])})
                cr = c["criteria"]
                criteria.append({**ident, "method": v, **{k: cr[k] for k in (
                    "t_tau_reduction", "p_t_tau", "final_drop", "extra_compute", "extra_peak_memory",
                    "std_inflation", "ok_t_tau", "ok_final", "ok_compute", "ok_memory", "ok_std", "holds")},
                    "paired_seeds": len(c["paired_seeds"])})
        for v, rows in t["kl"].items():
            for r in rows:
                kl.append({**ident, "method": v, **r})
    verdict = [{"method": v, **vd} for v, vd in analysis["verdicts"].items()]
    return {"t_tau": t_tau, "scores": scores, "overhead": overhead, "kl": kl, "criteria": criteria,
            "verdict": verdict}


def _ok(flag: bool, text: str) -> str:
    return f"{text} ✓" if flag else f"{text} ✗"


def columns(multi_exp: bool) -> dict[str, list[Column]]:
    ident: list[Column] = ([("Experiment", lambda r: r["experiment"])] if multi_exp else []) + [
        ("Task", lambda r: r["task"]), ("Scheduler", lambda r: r["scheduler"]), ("Method", lambda r: r["method"])]
    return {
        "t_tau": ident + [
            ("tau", lambda r: fmt(r["tau"])),
            ("Reached", lambda r: f"{r['reached']}/{r['seeds']}"),
            ("T@tau median [IQR]", lambda r: med_iqr(r, "t_tau")),
            ("Reduction", lambda r: pct(r["reduction"])),
            ("p", lambda r: fmt(r["p"])),
            ("p (Holm)", lambda r: fmt(r["p_holm"])),
        ],
        "scores": ident + [
            ("AUC median [IQR]", lambda r: med_iqr(r, "auc")),
            ("p AUC (Holm)", lambda r: fmt(r["p_auc_holm"])),
            ("Final val. median [IQR]", lambda r: med_iqr(r, "final")),
            ("p val. (Holm)", lambda r: fmt(r["p_final_holm"])),
            ("Final test median [IQR]", lambda r: med_iqr(r, "final_test")),
            ("p test (Holm)", lambda r: fmt(r["p_final_test_holm"])),
        ],
        "overhead": ident + [
            ("Extra compute median [IQR]", lambda r: f"{pct(r['extra_compute_median'])} "
                                                     f"[{pct(r['extra_compute_q25'])}, {pct(r['extra_compute_q75'])}]"),
            ("Time / step", lambda r: fmt(r["seconds_per_step"]) + "x"),
            ("FLOPs / step", lambda r: fmt(r["flops_per_step"]) + "x"),
            ("Peak mem. / step", lambda r: fmt(r["peak_per_step"]) + "x"),
            ("Extra peak memory", lambda r: pct(r["extra_peak_memory_median"])),
        ],
        "kl": ident + [
            ("HP", lambda r: r["hp"] + (" (log)" if r["log"] else "")),
            ("KL chosen", lambda r: fmt(r["kl_chosen"])),
            ("Shift chosen", lambda r: fmt(r["mean_shift_chosen"])),
            ("KL all", lambda r: fmt(r["kl_all"])),
            ("Shift all", lambda r: fmt(r["mean_shift_all"])),
            ("n all", lambda r: f"{r['n_all']}/{r['n_all_vanilla']}"),
        ],
        "criteria": ident + [
            ("T@tau red. (>=15%)", lambda r: _ok(r["ok_t_tau"], pct(r["t_tau_reduction"]))),
            ("p Holm (<0.05)", lambda r: fmt(r["p_t_tau"])),
            ("Final drop (<=0.2%)", lambda r: _ok(r["ok_final"], pct(r["final_drop"]))),
            ("Compute (<=5%)", lambda r: _ok(r["ok_compute"], pct(r["extra_compute"]))),
            ("Peak mem. (<=10%)", lambda r: _ok(r["ok_memory"], pct(r["extra_peak_memory"]))),
            ("Std infl. (<=10%)", lambda r: _ok(r["ok_std"], pct(r["std_inflation"]))),
            ("Holds", lambda r: "yes" if r["holds"] else "no"),
        ],
        "verdict": [
            ("Method", lambda r: r["method"]),
            ("Tuples", lambda r: str(r["n_tuples"])),
            ("Criteria hold", lambda r: str(r["n_hold"])),
            ("Fraction", lambda r: pct(r["fraction"])),
            ("Verdict (>=75%)", lambda r: "holds" if r["holds"] else "does not hold"),
        ],
    }


CAPTIONS = {
    "t_tau": "Time to reach tau on the study clock (censored studies count as not reached; median n.r. when at most half the seeds reach tau). Reduction and two-sided Wilcoxon p over paired seeds against vanilla; Holm over tuples.",
    "scores": "Normalised AUC of the best-so-far curve, final best validation metric and the incumbent's test metric; Holm-adjusted Wilcoxon p against vanilla.",
    "overhead": "Warm-start overhead: compute charged over the rest of the study's worker time, per-step ratios to one plain training step, and extra peak memory.",
    "kl": "KL(variant || vanilla) of Gaussian fits per hyperparameter in the unconstrained space, for chosen (incumbent) and all evaluated configs; mean shift as a fraction of the range.",
    "criteria": "The proposal's success criteria per tuple (paired seeds).",
    "verdict": "Overall verdict: the criteria hold in at least 75% of tuples.",
}


def frame(records: list[Record], cols: list[Column]) -> pd.DataFrame:
    return pd.DataFrame([[f(r) for _, f in cols] for r in records], columns=[h for h, _ in cols])


def to_markdown(df: pd.DataFrame, caption: str) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|")

    lines = [f"{caption}", "", "| " + " | ".join(cell(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in df.itertuples(index=False)]
    if df.empty:
        lines.append("| " + " | ".join("" for _ in df.columns) + " |")
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, caption: str) -> str:
    styler = df.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    body = styler.to_latex(hrules=True, column_format="l" * max(1, len(df.columns)))
    body = body.replace("✓", "$\\checkmark$").replace("✗", "$\\times$").replace("–", "--")
    return f"% {caption}\n% generated by analysis.report; needs \\usepackage{{booktabs}} and amssymb\n{body}"


def write_all(analysis: dict[str, Any], folder: Path) -> list[Path]:
    """Write every table as .tex and .md; store the records in ``analysis['table_records']``."""
    folder.mkdir(parents=True, exist_ok=True)
    records = build(analysis)
    analysis["table_records"] = records
    multi = len({t["experiment"] for t in analysis["tuples"]}) > 1
    written = []
    for name, cols in columns(multi).items():
        df = frame(records[name], cols)
        for suffix, text in ((".tex", to_latex(df, CAPTIONS[name])), (".md", to_markdown(df, CAPTIONS[name]))):
            path = folder / f"{name}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
