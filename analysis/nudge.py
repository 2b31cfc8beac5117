"""Analysis of the paired-trial experiment (``python -m ohgw_bench.nudge``): what the nudge does.

    python -m analysis.nudge results/nudge --out reports/nudge

Reads every paired-trial folder (``study.json`` with ``kind: nudge``) below the given folder
and writes a bundle: ``summary.json`` (every number shown), ``tables/`` (Markdown and LaTeX),
``figures/`` (PDF and PNG) and a ``README.md`` with the commands, machine, wall time, load and
versions read from the folders. Kept apart from ``analysis/report.py`` (the scheduler studies).

Statistics, per task, variant and fidelity, over configs (each config is one pair):

- ``improvement`` = the baseline's metric minus the nudged config's (sign flipped for ``max``
  metrics), so positive is better; also for ``val_loss`` where the task reports it (a continuous
  metric: the classification error of a few hundred validation examples moves in steps of
  1/n and ties most pairs). Fractions improved / worse / tied, the median improvement and its
  95% percentile-bootstrap interval (2,000 resamples of configs, numpy seed 0; SciPy's
  ``bootstrap`` default method would be BCa, the percentile method is used because ties make
  BCa's acceleration estimate degenerate).
- Head-to-head: for each ohgw variant and each control with the same step rule (``random``,
  ``prior``, ``sham``), the fraction of configs where ohgw's improvement beats the control's
  (ties counted half), with a bootstrap interval.
- Relation to the hyper-gradient's size: configs binned by ``grad_norm_unit`` (quintiles per
  task); per bin and variant the fraction improved and the median improvement at the last
  fidelity. The figure (the proposal's "heatmap of hyper-gradient magnitude vs eventual
  benefit") colours each (variant, bin) cell by the net win rate (improved minus worse).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.tables import Column, to_latex, to_markdown
from ohgw_bench.errors import UserError

BOOTSTRAP = 2000
BINS = 5
QUANTITIES = {"metric": ("improvement", "the task metric"), "val_loss": ("improvement_val_loss", "validation loss")}
CONTROLS = ("random", "prior", "sham")


def fmt(x: Any, digits: int = 3) -> str:
    """Three significant digits; an en dash for a missing value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"


def pct(x: Any) -> str:
    """A share as a percentage with one decimal; an en dash for a missing value."""
    if x is None or not isinstance(x, int | float) or math.isnan(x) or math.isinf(x):
        return "–"
    return f"{100 * x:.1f}%"


def find_runs(root: str | Path) -> list[Path]:
    """Paired-trial folders below ``root`` (their study.json says ``kind: nudge``)."""
    out = []
    for p in sorted(Path(root).rglob("study.json")):
        try:
            if json.loads(p.read_text()).get("kind") == "nudge":
                out.append(p.parent)
        except (OSError, json.JSONDecodeError):
            continue
    return out


def load(root: str | Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(one row per (task, seed, config, variant, fidelity), [per-folder facts]) of complete runs."""
    frames, runs = [], []
    for folder in find_runs(root):
        study = json.loads((folder / "study.json").read_text())
        summary_path = folder / "summary.json"
        if not summary_path.exists():
            continue
        summary = json.loads(summary_path.read_text())
        rows = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines() if line.strip()]
        df = pd.DataFrame(rows)
        if df.empty:
            continue
        df["task"] = study["task"]["id"]
        df["seed"] = study["spec"]["seed"]
        frames.append(df)
        runs.append({"folder": str(folder), "task": study["task"]["id"], "metric": study["task"]["metric"],
                     "mode": study["task"]["mode"], "command": study.get("command"), "machine": study.get("machine"),
                     "versions": study.get("versions"), "git_revision": study.get("git_revision"),
                     "started": study.get("started"), "load_start": study.get("load_start"),
                     "load_end": summary.get("load_end"),
                     "wall_seconds": summary.get("wall_seconds_total", summary.get("wall_seconds")),
                     "history": summary.get("history") or [],
                     "configs": summary.get("configs"), "rows": summary.get("rows"),
                     "fidelities": summary.get("fidelities"), "spec": study.get("spec")})
    if not frames:
        raise UserError(f"no complete paired-trial folder (study.json with kind nudge and a summary.json) below {root}")
    df = pd.concat(frames, ignore_index=True)
    df["improvement_val_loss"] = -pd.to_numeric(df.get("diff_val_loss"), errors="coerce")
    df["improvement"] = pd.to_numeric(df["improvement"], errors="coerce")
    df["grad_norm_unit"] = pd.to_numeric(df["grad_norm_unit"], errors="coerce")
    return df, runs


def bootstrap_ci(values: Sequence[float], stat: Any = np.median, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float | None, float | None]:
    """95% percentile-bootstrap interval of ``stat`` over ``values`` (None for fewer than 2 values)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    stats = stat(a[idx], axis=1)
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def describe(values: Sequence[float]) -> dict[str, Any]:
    """Pairs, fractions improved / worse / tied, median (with its bootstrap CI) and mean improvement."""
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not len(a):
        return {"pairs": 0, "improved": None, "worse": None, "tied": None, "median": None, "ci_low": None,
                "ci_high": None, "mean": None}
    lo, hi = bootstrap_ci(a)
    return {"pairs": int(len(a)), "improved": float((a > 0).mean()), "worse": float((a < 0).mean()),
            "tied": float((a == 0).mean()), "median": float(np.median(a)), "ci_low": lo, "ci_high": hi,
            "mean": float(a.mean())}


def _rule(label: str) -> str:
    """The step-rule part of a label ("ohgw-normalized" -> "-normalized", "random" -> "")."""
    head, _, rest = label.partition("-")
    return f"-{rest}" if rest else ""


def head_to_head(df: pd.DataFrame, a: str, b: str, column: str) -> dict[str, Any]:
    """Per config, does variant ``a`` improve more than ``b``? Fraction (ties half) with a bootstrap CI."""
    pa = df[df.variant == a].set_index(["seed", "config_index"])[column]
    pb = df[df.variant == b].set_index(["seed", "config_index"])[column]
    both = pd.concat([pa, pb], axis=1, keys=["a", "b"]).dropna()
    if both.empty:
        return {"pairs": 0, "a_better": None, "ci_low": None, "ci_high": None, "median_gap": None}
    score = np.where(both.a > both.b, 1.0, np.where(both.a < both.b, 0.0, 0.5))
    lo, hi = bootstrap_ci(score, stat=np.mean)
    return {"pairs": int(len(score)), "a_better": float(score.mean()), "ci_low": lo, "ci_high": hi,
            "median_gap": float(np.median(both.a - both.b))}


def analyse(df: pd.DataFrame, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every number of the bundle, as plain records (summary.json holds them all)."""
    variants, comparisons, bins = [], [], []
    headline: dict[str, Any] = {}
    for task, tdf in df.groupby("task", sort=True):
        meta = next(r for r in runs if r["task"] == task)
        fids = sorted(tdf.fidelity.unique())
        has_loss = tdf["improvement_val_loss"].notna().any()
        quantities = [q for q in QUANTITIES if q == "metric" or has_loss]
        labels = list(dict.fromkeys(tdf.variant))
        for fid in fids:
            fdf = tdf[tdf.fidelity == fid]
            for label in labels:
                vdf = fdf[fdf.variant == label]
                rec = {"task": task, "variant": label, "fidelity": int(fid), "metric_name": meta["metric"],
                       "trained": float(vdf.trained.mean()), "median_step": float(vdf.step_norm_unit.median())}
                for q in quantities:
                    rec[q] = describe(vdf[QUANTITIES[q][0]].tolist())
                variants.append(rec)
            for a in [v for v in labels if v.startswith("ohgw")]:
                for ctl in CONTROLS:
                    b = ctl + _rule(a) if ctl != "sham" else "sham"
                    if b not in labels:
                        continue
                    rec = {"task": task, "variant": a, "control": b, "fidelity": int(fid)}
                    for q in quantities:
                        rec[q] = head_to_head(fdf, a, b, QUANTITIES[q][0])
                    comparisons.append(rec)
        last = tdf[tdf.fidelity == fids[-1]]
        norms = last.drop_duplicates(["seed", "config_index"]).grad_norm_unit.dropna()
        if len(norms) >= BINS:
            edges = np.unique(np.quantile(norms, np.linspace(0, 1, BINS + 1)))
            for label in labels:
                vdf = last[last.variant == label]
                which = np.clip(np.searchsorted(edges, vdf.grad_norm_unit, side="right") - 1, 0, len(edges) - 2)
                for k in range(len(edges) - 1):
                    cell = vdf[which == k]
                    rec = {"task": task, "variant": label, "fidelity": int(fids[-1]), "bin": k,
                           "grad_norm_low": float(edges[k]), "grad_norm_high": float(edges[k + 1])}
                    for q in quantities:
                        d = describe(cell[QUANTITIES[q][0]].tolist())
                        rec[q] = {key: d[key] for key in ("pairs", "improved", "worse", "median")}
                    bins.append(rec)
        q = "val_loss" if has_loss else "metric"
        at_last = {r["variant"]: r for r in variants if r["task"] == task and r["fidelity"] == fids[-1]}
        headline[task] = {
            "fidelity": int(fids[-1]), "quantity": q, "configs": int(tdf.drop_duplicates(["seed", "config_index"]).shape[0]),
            "improved": {v: at_last[v][q]["improved"] for v in labels},
            "improved_metric": {v: at_last[v]["metric"]["improved"] for v in labels},
            "median": {v: at_last[v][q]["median"] for v in labels},
            "ohgw_beats": {f"{c['variant']} vs {c['control']}": c[q]["a_better"] for c in comparisons
                           if c["task"] == task and c["fidelity"] == fids[-1]},
        }
    return {"variants": variants, "comparisons": comparisons, "gradnorm_bins": bins, "headline": headline,
            "runs": runs, "bootstrap_resamples": BOOTSTRAP}


def _ci(d: dict[str, Any]) -> str:
    if d.get("median") is None:
        return "–"
    if d.get("ci_low") is None:
        return fmt(d["median"])
    return f"{fmt(d['median'])} [{fmt(d['ci_low'])}, {fmt(d['ci_high'])}]"


def _text_columns(cols: list[tuple[str, Any]]) -> list[Column]:
    """Text columns for the report's table writers: these cells mix numbers with intervals."""
    return [Column(header, get) for header, get in cols]


def tables(result: dict[str, Any]) -> dict[str, tuple[list[dict[str, Any]], list[Column]]]:
    """The bundle's tables: (records from ``result``, their columns), for the report's writers."""
    out = {}
    var_cols = [("task", lambda r: r["task"]), ("variant", lambda r: r["variant"]), ("fidelity", lambda r: r["fidelity"]),
                ("pairs", lambda r: r["metric"]["pairs"]), ("step (unit)", lambda r: fmt(r["median_step"])),
                ("metric improved", lambda r: pct(r["metric"]["improved"])), ("metric worse", lambda r: pct(r["metric"]["worse"])),
                ("metric median [95% CI]", lambda r: _ci(r["metric"])),
                ("val_loss improved", lambda r: pct(r.get("val_loss", {}).get("improved"))),
                ("val_loss worse", lambda r: pct(r.get("val_loss", {}).get("worse"))),
                ("val_loss median [95% CI]", lambda r: _ci(r.get("val_loss", {})))]
    out["variants"] = (result["variants"], _text_columns(var_cols))

    def hh(q: str) -> Any:
        def cell(r: dict[str, Any]) -> str:
            d = r.get(q) or {}
            if d.get("a_better") is None:
                return "–"
            ci = f" [{pct(d['ci_low'])}, {pct(d['ci_high'])}]" if d.get("ci_low") is not None else ""
            return pct(d["a_better"]) + ci
        return cell

    out["comparisons"] = (result["comparisons"], _text_columns([
        ("task", lambda r: r["task"]), ("variant", lambda r: r["variant"]), ("control", lambda r: r["control"]),
        ("fidelity", lambda r: r["fidelity"]), ("pairs", lambda r: r["metric"]["pairs"]),
        ("metric: variant better [95% CI]", hh("metric")), ("val_loss: variant better [95% CI]", hh("val_loss"))]))
    out["gradnorm"] = (result["gradnorm_bins"], _text_columns([
        ("task", lambda r: r["task"]), ("variant", lambda r: r["variant"]),
        ("grad norm (unit)", lambda r: f"{fmt(r['grad_norm_low'])}–{fmt(r['grad_norm_high'])}"),
        ("pairs", lambda r: r["metric"]["pairs"]), ("metric improved", lambda r: pct(r["metric"]["improved"])),
        ("metric worse", lambda r: pct(r["metric"]["worse"])),
        ("val_loss improved", lambda r: pct((r.get("val_loss") or {}).get("improved"))),
        ("val_loss worse", lambda r: pct((r.get("val_loss") or {}).get("worse"))),
        ("val_loss median", lambda r: fmt((r.get("val_loss") or {}).get("median")))]))
    return out


CAPTIONS = {
    "variants": "Paired trials: per task, variant and fidelity, the share of configs the warm-start improved / worsened "
                "(improvement = baseline minus nudged, lower-is-better metrics) and the median improvement with its "
                "95% bootstrap CI.",
    "comparisons": "Head-to-head: share of configs where the ohgw variant improves more than the control with the same "
                   "step rule (ties count half), with a 95% bootstrap CI; 50% = no better than the control.",
    "gradnorm": "Benefit by hyper-gradient size: configs binned by the unit-cube gradient norm (quintiles per task), "
                "at the last fidelity.",
}


def heatmap(result: dict[str, Any], folder: Path) -> list[Path]:
    """Per task and quantity: variants x gradient-norm bins, coloured by net win rate (improved - worse)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = result["gradnorm_bins"]
    tasks = sorted({b["task"] for b in bins})
    if not tasks:
        return []
    quantities = [q for q in QUANTITIES if any(b.get(q) for b in bins)]
    fig, axes = plt.subplots(len(tasks), len(quantities), figsize=(5.2 * len(quantities), 0.5 + 2.6 * len(tasks)),
                             squeeze=False)
    for i, task in enumerate(tasks):
        tb = [b for b in bins if b["task"] == task]
        labels = list(dict.fromkeys(b["variant"] for b in tb))
        nbins = max(b["bin"] for b in tb) + 1
        for j, q in enumerate(quantities):
            ax = axes[i][j]
            grid = np.full((len(labels), nbins), np.nan)
            for b in tb:
                d = b.get(q) or {}
                if d.get("improved") is not None:
                    grid[labels.index(b["variant"]), b["bin"]] = d["improved"] - d["worse"]
            im = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
            for (r, c), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(c, r, f"{v:+.2f}", ha="center", va="center", fontsize=7)
            edges = [f"{fmt(b['grad_norm_low'], 2)}–{fmt(b['grad_norm_high'], 2)}" for b in tb if b["variant"] == labels[0]]
            ax.set_xticks(range(nbins), edges, rotation=30, ha="right", fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            fid = tb[0]["fidelity"]
            ax.set_title(f"{task}: {QUANTITIES[q][1]} at fidelity {fid}", fontsize=8)
            ax.set_xlabel("hyper-gradient norm (unit cube), quintile bins", fontsize=7)
            fig.colorbar(im, ax=ax, label="improved − worse")
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "gradnorm_heatmap.pdf", folder / "gradnorm_heatmap.png"]
    fig.savefig(paths[0])
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def command_line(argv: Sequence[str] | None) -> str:
    """``sys.argv`` of a run as the ``python -m ohgw_bench.nudge ...`` line that reproduces it."""
    argv = list(argv or [])
    if argv and Path(argv[0]).name in ("nudge.py", "__main__.py", "-m"):
        argv = argv[1:]
    return " ".join(["python -m ohgw_bench.nudge", *argv])


def readme(result: dict[str, Any], argv: Sequence[str], note: str | None = None) -> str:
    """The bundle's README: what ran, where, how long, under what load, with which versions."""
    runs = result["runs"]
    first = runs[0]
    lines = ["# Paired-trial experiment: the nudge, free of scheduler chaos", "",
             "Generated by `python -m analysis.nudge " + shlex.join(argv) + "` from the folders written by "
             "`python -m ohgw_bench.nudge` (see that module's docstring for the design; no raw rows are kept here).", "",
             "## Runs", "", "One line per process that added configs to a folder (a folder is extended when `configs` grows; "
             "config i and its training do not depend on how many configs are drawn).", "",
             "| task | configs added | wall (s) | load at start / end (1, 5, 15 min) | started | command |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        for h in r["history"] or [{"command": r["command"], "configs": r["configs"], "wall_seconds": r["wall_seconds"],
                                   "load_start": r["load_start"], "load_end": r["load_end"], "started": r["started"]}]:
            lines.append(f"| {r['task']} | {h.get('configs')} | {fmt(h.get('wall_seconds'))} | "
                         f"{h.get('load_start')} / {h.get('load_end')} | {h.get('started')} | `{command_line(h.get('command'))}` |")
    if note:
        lines += ["", note]
    total = sum(r["wall_seconds"] or 0 for r in runs)
    machine = first.get("machine") or {}
    lines += ["", f"Total wall time of the runs: {total:.0f} s. Machine: {machine.get('platform')}, "
              f"{machine.get('cpus')} CPUs (shared with other work; the load averages above are what `uptime` showed).",
              f"Git revision: {first.get('git_revision')}. Versions: " +
              ", ".join(f"{k} {v}" for k, v in (first.get("versions") or {}).items()) + ".", "",
              "## Headline (last fidelity)", ""]
    for task, h in result["headline"].items():
        lines.append(f"**{task}** ({h['configs']} configs, fidelity {h['fidelity']}): share of configs improved "
                     f"in {h['quantity']}: " + ", ".join(f"{v} {pct(x)}" for v, x in h["improved"].items()) +
                     "; in the task metric: " + ", ".join(f"{v} {pct(x)}" for v, x in h["improved_metric"].items()) + ".")
        lines.append("")
        for c in result["comparisons"]:
            if c["task"] == task and c["fidelity"] == h["fidelity"]:
                parts = []
                for q in ("metric", "val_loss"):
                    d = c.get(q) or {}
                    if d.get("a_better") is not None:
                        ci = f" [{pct(d['ci_low'])}, {pct(d['ci_high'])}]" if d.get("ci_low") is not None else ""
                        parts.append(f"{q} {pct(d['a_better'])}{ci}")
                lines.append(f"- {c['variant']} beats {c['control']} (ties half): " + "; ".join(parts))
        lines.append("")
    lines += ["## Files", "", "- `summary.json`: every number in the tables, plus the per-run facts above.",
              "- `tables/variants.{md,tex}`, `tables/comparisons.{md,tex}`, `tables/gradnorm.{md,tex}`.",
              "- `figures/gradnorm_heatmap.{pdf,png}`: net win rate by hyper-gradient size.", "",
              "![heatmap](figures/gradnorm_heatmap.png)", ""]
    return "\n".join(lines)


def write_bundle(root: str | Path, out: str | Path, argv: Sequence[str] = (), note: str | None = None) -> dict[str, Any]:
    """Analyse the folders below ``root`` and write the bundle to ``out``; returns summary.json's content."""
    df, runs = load(root)
    result = analyse(df, runs)
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for name, (records, cols) in tables(result).items():
        (out / "tables" / f"{name}.md").write_text(to_markdown(records, cols, CAPTIONS[name]), encoding="utf-8")
        (out / "tables" / f"{name}.tex").write_text(to_latex(records, cols, CAPTIONS[name], f"nudge-{name}"),
                                                    encoding="utf-8")
    heatmap(result, out / "figures")
    result["generated_with"] = {"python": platform.python_version(), "argv": list(argv)}
    (out / "summary.json").write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(result, argv, note), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.nudge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="folder holding paired-trial folders (e.g. results/nudge)")
    p.add_argument("--out", default="reports/nudge", help="bundle folder (default: reports/nudge)")
    p.add_argument("--note", default=None, help="a paragraph for the README's Runs section (how the runs were made)")
    args = p.parse_args(argv)
    argv = [args.results, "--out", args.out] + (["--note", args.note] if args.note else [])  # the command, as parsed
    try:
        if not Path(args.results).is_dir():
            raise UserError(f"{args.results}: no such folder")
        result = write_bundle(args.results, args.out, argv, note=args.note)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for task, h in result["headline"].items():
        print(f"{task}: improved ({h['quantity']}, fidelity {h['fidelity']}): "
              + ", ".join(f"{v} {pct(x)}" for v, x in h["improved"].items()))
    print(f"bundle written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
