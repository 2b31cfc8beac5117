"""Analysis of the paired-trial experiment (``python -m ohgw_bench.nudge``): what the nudge does.

    python -m analysis.nudge results/nudge --out results/nudge/bundle
    python -m analysis.nudge reports/nudge --out /tmp/again   # recompute from a bundle's pairs.csv.gz

Reads every paired-trial folder (``study.json`` with ``kind: nudge``) below the given folder,
or the raw pairs a bundle keeps (``pairs.csv.gz`` beside its ``summary.json``), and writes a
bundle: ``summary.json`` (every number shown), ``pairs.csv.gz`` (the raw pairs, so any interval
can be recomputed), ``tables/`` (Markdown and LaTeX), ``figures/`` (PDF and PNG) and a
``README.md`` with the commands, machine, wall time, load and versions read from the folders.
``reports/nudge`` is the committed bundle: write there only to publish. Kept apart from
``analysis/report.py`` (the scheduler studies).

Statistics, per task, variant and fidelity, over configs (each config is one pair):

- ``improvement`` = the baseline's value minus the nudged config's (sign flipped for ``max``
  metrics), so positive is better, for the task metric and for ``val_loss`` (every task reports
  it: the classification error of a few hundred validation examples moves in steps of 1/n and
  ties most pairs, the loss does not). A trial that diverged (no finite value) counts as the
  worst outcome: nudged diverged, baseline not = ``-inf`` (a loss); the reverse ``+inf``; both
  = a tie. Nothing is dropped, so every cell has every config.
- Effect sizes: the median improvement with its 95% percentile-bootstrap interval (2,000
  resamples of configs, numpy seed 0; SciPy's default BCa is not used because ties make its
  acceleration estimate degenerate), beside the fractions improved / worse / tied, each share
  with a 95% Wilson interval.
- Head-to-head: for each ohgw variant and each control with the same step rule (``random``,
  ``prior``, ``orth``: the OHGW step without its prior component, same length; ``sham``: the
  unmodified config, shown as "unmodified"), per config the paired gap (ohgw's improvement minus
  the control's). Reported: wins / ties / losses, the win share (ties half) with a 95% Wilson
  interval (n = configs), the median gap with its bootstrap interval, and a two-sided exact
  sign test on the untied configs, Holm-adjusted over every test in the comparisons table (all
  tasks, arms, controls, fidelities, quantities and both subsets: the stated multiplicity
  correction). Each comparison is made on all configs and on the configs where the OHGW step
  and the prior step point in different directions (``cos_prior`` < 0.99, i.e. more than 8.1
  degrees apart), where "ohgw vs prior" is not the same intervention twice.
- Directions: per task and step rule, the distribution of ``cos_prior``, the cosine between
  the OHGW step and the prior step.
- Fidelities: the comparisons are made at every trained fidelity (Holm over all of them); the
  headline reads the highest trained one and names the task's maximum beside it.
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
Z95 = 1.959963984540054
#: configs whose OHGW and prior steps have a cosine below this point "in different directions"
DIFFER_COS = 0.99
PAIRS_CSV = "pairs.csv.gz"
#: quantity -> (improvement column, nudged value column, baseline value column, description)
QUANTITIES = {"metric": ("improvement", "metric", "base_metric", "the task metric"),
              "val_loss": ("improvement_val_loss", "val_loss", "base_val_loss", "validation loss")}
CONTROLS = ("random", "prior", "orth", "sham")
#: how a control reads in tables: sham trains the config exactly as proposed
CONTROL_NAMES = {"sham": "unmodified (sham)"}
SUBSETS = {"all": "all configs", "differ": f"configs with cos(OHGW step, prior step) < {DIFFER_COS}"}
#: the raw-pair columns a bundle keeps (enough to recompute every number)
PAIR_COLUMNS = ("task", "seed", "config_index", "variant", "fidelity", "metric", "base_metric", "val_loss",
                "base_val_loss", "diverged", "base_diverged", "trained", "applied", "cos_prior", "grad_norm_unit",
                "step_norm_unit", "largest_step")


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


def improvement(value: pd.Series, base: pd.Series, sign: float | pd.Series = 1.0) -> pd.Series:
    """sign * (base - value) (sign -1 for max metrics), a diverged side (no finite value) as the worst outcome:
    nudged diverged -inf, baseline diverged +inf, both 0."""
    v = pd.to_numeric(value, errors="coerce").astype(float)
    b = pd.to_numeric(base, errors="coerce").astype(float)
    out = (sign * (b - v)).astype(float)
    out[v.isna() & b.notna()] = -math.inf
    out[v.notna() & b.isna()] = math.inf
    out[v.isna() & b.isna()] = 0.0
    return out


def _derive(df: pd.DataFrame, modes: dict[str, str]) -> pd.DataFrame:
    """The improvement columns (diverged configs kept as losses) and numeric types."""
    df = df.copy()
    for col in ("metric", "base_metric", "val_loss", "base_val_loss", "grad_norm_unit", "step_norm_unit", "cos_prior"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    sign = df.task.map(lambda t: 1.0 if modes[t] == "min" else -1.0)
    df["improvement"] = improvement(df.metric, df.base_metric, sign)
    has_loss = df.groupby("task").val_loss.transform(lambda s: s.notna().any())
    df["improvement_val_loss"] = improvement(df.val_loss, df.base_val_loss, 1.0).where(has_loss)
    for flag, col in (("diverged", "metric"), ("base_diverged", "base_metric")):
        if flag not in df:
            df[flag] = df[col].isna()
        df[flag] = df[flag].fillna(df[col].isna()).astype(bool)
    return df


def load(root: str | Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(one row per (task, seed, config, variant, fidelity), [per-folder facts]) of complete runs.

    ``root`` is a results folder, or a bundle (its ``pairs.csv.gz`` and ``summary.json``)."""
    root = Path(root)
    if (root / PAIRS_CSV).exists() and (root / "summary.json").exists():
        runs = json.loads((root / "summary.json").read_text())["runs"]
        df = pd.read_csv(root / PAIRS_CSV)
        return _derive(df, {r["task"]: r["mode"] for r in runs}), runs
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
                     "mode": study["task"]["mode"], "max_fidelity": (study["task"].get("fidelity") or {}).get("max"),
                     "fidelity_unit": (study["task"].get("fidelity") or {}).get("unit"),
                     "command": study.get("command"), "machine": study.get("machine"),
                     "versions": study.get("versions"), "git_revision": study.get("git_revision"),
                     "started": study.get("started"), "load_start": study.get("load_start"),
                     "load_end": summary.get("load_end"),
                     "wall_seconds": summary.get("wall_seconds_total", summary.get("wall_seconds")),
                     "history": summary.get("history") or [],
                     "configs": summary.get("configs"), "rows": summary.get("rows"),
                     "fidelities": summary.get("fidelities"), "spec": study.get("spec")})
    if not frames:
        raise UserError(f"no complete paired-trial folder (study.json with kind nudge and a summary.json) "
                        f"and no bundle ({PAIRS_CSV} with summary.json) below {root}")
    df = pd.concat(frames, ignore_index=True)
    if "step_unit_proposed" in df:  # which hyperparameter the step moves most (kept in the bundle's pairs)
        df["largest_step"] = [max(d, key=lambda k: abs(d[k])) if isinstance(d, dict) and d else None
                              for d in df["step_unit_proposed"]]
    return _derive(df, {r["task"]: r["mode"] for r in runs}), runs


def _quantile(stats: np.ndarray, q: float) -> float:
    """Percentile of bootstrap statistics; a non-interpolating one where infinities (divergences) occur."""
    method = "linear" if np.isfinite(stats).all() else "inverted_cdf"
    return float(np.quantile(stats, q, method=method))


def bootstrap_ci(values: Sequence[float], stat: Any = np.median, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float | None, float | None]:
    """95% percentile-bootstrap interval of ``stat`` over ``values`` (None for fewer than 2 values)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    with np.errstate(invalid="ignore"):
        stats = stat(a[idx], axis=1)
    return _quantile(stats, 0.025), _quantile(stats, 0.975)


def wilson(share: float, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion (``share`` of ``n``; ties counted half may make it non-integer)."""
    if n < 1:
        return None, None
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(wins: int, losses: int) -> float | None:
    """Two-sided exact binomial (sign) test of wins vs losses, ties left out; None without untied pairs."""
    from scipy.stats import binomtest

    return float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else None


def _median(a: np.ndarray) -> float:
    with np.errstate(invalid="ignore"):
        m = np.median(a)
    return float(m) if not math.isnan(m) else float(np.sort(a)[len(a) // 2])


def describe(values: Sequence[float]) -> dict[str, Any]:
    """Pairs, shares improved / worse / tied (Wilson CIs), diverged, median (bootstrap CI) and finite mean."""
    a = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if not len(a):
        return {"pairs": 0, "improved": None, "improved_ci": [None, None], "worse": None, "worse_ci": [None, None],
                "tied": None, "diverged": 0, "rescued": 0, "median": None, "ci_low": None, "ci_high": None,
                "mean_finite": None}
    lo, hi = bootstrap_ci(a, stat=np.median)
    n = len(a)
    improved, worse = float((a > 0).mean()), float((a < 0).mean())
    fin = a[np.isfinite(a)]
    return {"pairs": int(n), "improved": improved, "improved_ci": list(wilson(improved, n)),
            "worse": worse, "worse_ci": list(wilson(worse, n)), "tied": float((a == 0).mean()),
            "diverged": int(np.isneginf(a).sum()), "rescued": int(np.isposinf(a).sum()),
            "median": _median(a), "ci_low": lo, "ci_high": hi,
            "mean_finite": float(fin.mean()) if len(fin) else None}


def _rule(label: str) -> str:
    """The step-rule part of a label ("ohgw-normalized" -> "-normalized", "random" -> "")."""
    head, _, rest = label.partition("-")
    return f"-{rest}" if rest else ""


def head_to_head(df: pd.DataFrame, a: str, b: str, column: str, keep: pd.Index | None = None) -> dict[str, Any]:
    """Per config, does variant ``a`` improve more than ``b``? Wins/ties/losses, win share (ties half) with a
    Wilson CI, the median paired gap with a bootstrap CI, and the sign test's p. ``keep``: the configs to use."""
    pa = df[df.variant == a].set_index(["seed", "config_index"])[column]
    pb = df[df.variant == b].set_index(["seed", "config_index"])[column]
    both = pd.concat([pa, pb], axis=1, keys=["a", "b"]).dropna()  # NaN only where a quantity is absent
    if keep is not None:
        both = both[both.index.isin(keep)]
    empty = {"pairs": 0, "wins": 0, "ties": 0, "losses": 0, "a_better": None, "ci_low": None, "ci_high": None,
             "median_gap": None, "gap_ci_low": None, "gap_ci_high": None, "p_sign": None}
    if both.empty:
        return empty
    x, y = both.a.to_numpy(float), both.b.to_numpy(float)
    wins, losses = int((x > y).sum()), int((x < y).sum())
    ties = len(x) - wins - losses
    with np.errstate(invalid="ignore"):
        gap = np.where(x == y, 0.0, x - y)  # inf - inf (both diverged the same way) is a tie
    share = (wins + 0.5 * ties) / len(x)
    lo, hi = wilson(share, len(x))
    glo, ghi = bootstrap_ci(gap, stat=np.median)
    return {"pairs": int(len(x)), "wins": wins, "ties": ties, "losses": losses, "a_better": float(share),
            "ci_low": lo, "ci_high": hi, "median_gap": _median(gap), "gap_ci_low": glo, "gap_ci_high": ghi,
            "p_sign": sign_test(wins, losses)}


def _differ(tdf: pd.DataFrame, variant: str) -> pd.Index:
    """Configs whose OHGW step (of ``variant``'s rule) and prior step differ: cos_prior < DIFFER_COS."""
    first = tdf[(tdf.variant == variant) & (tdf.fidelity == tdf.fidelity.min())]
    first = first[first.cos_prior < DIFFER_COS]
    return pd.MultiIndex.from_frame(first[["seed", "config_index"]])


def directions(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Per task and ohgw variant (step rule): how often the OHGW step is the prior step."""
    out = []
    for (task, label), g in df[df.variant.str.startswith("ohgw")].groupby(["task", "variant"], sort=True):
        c = g[g.fidelity == g.fidelity.min()].cos_prior.dropna().to_numpy(float)
        if not len(c):
            continue
        big = g[g.fidelity == g.fidelity.min()].get("largest_step", pd.Series(dtype=object)).dropna()
        top = big.value_counts()
        out.append({"task": task, "variant": label, "configs": int(len(c)), "median": float(np.median(c)),
                    "largest_step": str(top.index[0]) if len(top) else None,
                    "largest_step_share": float(top.iloc[0] / len(big)) if len(top) else None,
                    "q25": float(np.quantile(c, 0.25)), "q75": float(np.quantile(c, 0.75)),
                    "min": float(c.min()), "same": float((c >= DIFFER_COS).mean()),
                    "differ": int((c < DIFFER_COS).sum()), "opposite": int((c < 0).sum())})
    return out


def analyse(df: pd.DataFrame, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every number of the bundle, as plain records (summary.json holds them all)."""
    variants, comparisons, bins = [], [], []
    headline: dict[str, Any] = {}
    for task, tdf in df.groupby("task", sort=True):
        meta = next(r for r in runs if r["task"] == task)
        fids = sorted(tdf.fidelity.unique())
        # val_loss beside the metric, unless the metric is the validation loss already (digits-loss)
        has_loss = tdf["improvement_val_loss"].notna().any() and meta["metric"] != "val_loss"
        quantities = [q for q in QUANTITIES if q == "metric" or has_loss]
        labels = list(dict.fromkeys(tdf.variant))
        for fid in fids:
            fdf = tdf[tdf.fidelity == fid]
            for label in labels:
                vdf = fdf[fdf.variant == label]
                rec = {"task": task, "variant": label, "fidelity": int(fid), "metric_name": meta["metric"],
                       "trained": float(vdf.trained.astype(float).mean()), "median_step": float(vdf.step_norm_unit.median()),
                       "median_cos_prior": float(vdf.cos_prior.median()) if vdf.cos_prior.notna().any() else None}
                for q in quantities:
                    rec[q] = describe(vdf[QUANTITIES[q][0]].tolist())
                    rec[q]["base_median"] = float(vdf[QUANTITIES[q][2]].median())
                variants.append(rec)
            for a in [v for v in labels if v.startswith("ohgw")]:
                differ = _differ(tdf, a)
                for ctl in CONTROLS:
                    b = ctl + _rule(a) if ctl != "sham" else "sham"
                    if b not in labels:
                        continue
                    for subset, keep in (("all", None), ("differ", differ)):
                        rec = {"task": task, "variant": a, "control": b, "control_name": CONTROL_NAMES.get(b, b),
                               "fidelity": int(fid), "subset": subset, "metric_name": meta["metric"]}
                        for q in quantities:
                            rec[q] = head_to_head(fdf, a, b, QUANTITIES[q][0], keep)
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
                    rec = {"task": task, "variant": label, "fidelity": int(fids[-1]), "bin": k, "metric_name": meta["metric"],
                           "grad_norm_low": float(edges[k]), "grad_norm_high": float(edges[k + 1])}
                    for q in quantities:
                        d = describe(cell[QUANTITIES[q][0]].tolist())
                        rec[q] = {key: d[key] for key in ("pairs", "improved", "worse", "median")}
                    bins.append(rec)
        headline[task] = {"fidelity": int(fids[-1]), "max_fidelity": meta.get("max_fidelity"), "metric_name": meta["metric"],
                          "fidelity_unit": meta.get("fidelity_unit"), "quantities": quantities,
                          "configs": int(tdf.drop_duplicates(["seed", "config_index"]).shape[0])}
    # Holm over every sign test in the comparisons table: the stated multiplicity correction
    from ohgw_bench.metrics import holm

    cells = [(c, q) for c in comparisons for q in QUANTITIES if c.get(q)]
    adjusted = holm([np.nan if c[q]["p_sign"] is None else c[q]["p_sign"] for c, q in cells]) if cells else []
    for (c, q), p in zip(cells, adjusted):
        c[q]["p_holm"] = None if math.isnan(p) else float(p)
    family = int(np.isfinite(adjusted).sum()) if cells else 0
    for task, h in headline.items():
        h["variants"] = {r["variant"]: {q: r[q] for q in h["quantities"]} | {"median_step": r["median_step"]}
                         for r in variants if r["task"] == task and r["fidelity"] == h["fidelity"]}
        h["comparisons"] = [c for c in comparisons if c["task"] == task and c["fidelity"] == h["fidelity"]]
    return {"variants": variants, "comparisons": comparisons, "directions": directions(df),
            "gradnorm_bins": bins, "headline": headline, "runs": runs, "bootstrap_resamples": BOOTSTRAP,
            "holm_family": family, "differ_cos": DIFFER_COS, "subsets": SUBSETS,
            "diverged_rule": "a diverged trial (no finite value) is the worst outcome: a loss, never dropped"}


def _ci(d: dict[str, Any]) -> str:
    if d.get("median") is None:
        return "–"
    if d.get("ci_low") is None:
        return fmt(d["median"])
    return f"{fmt(d['median'])} [{fmt(d['ci_low'])}, {fmt(d['ci_high'])}]"


def _share(d: dict[str, Any], key: str) -> str:
    if d.get(key) is None:
        return "–"
    lo, hi = d.get(f"{key}_ci") or (None, None)
    return pct(d[key]) + (f" [{pct(lo)}, {pct(hi)}]" if lo is not None else "")


def _p(x: Any) -> str:
    if x is None:
        return "–"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _text_columns(cols: list[tuple[str, Any]]) -> list[Column]:
    """Text columns for the report's table writers: these cells mix numbers with intervals."""
    return [Column(header, get) for header, get in cols]


def _win(d: dict[str, Any] | None) -> str:
    d = d or {}
    if d.get("a_better") is None:
        return "–"
    ci = f" [{pct(d['ci_low'])}, {pct(d['ci_high'])}]" if d.get("ci_low") is not None else ""
    return f"{pct(d['a_better'])}{ci} ({d['wins']}/{d['ties']}/{d['losses']})"


def _gap(d: dict[str, Any] | None) -> str:
    d = d or {}
    if d.get("median_gap") is None:
        return "–"
    ci = f" [{fmt(d['gap_ci_low'])}, {fmt(d['gap_ci_high'])}]" if d.get("gap_ci_low") is not None else ""
    return fmt(d["median_gap"]) + ci


def tables(result: dict[str, Any]) -> dict[str, tuple[list[dict[str, Any]], list[Column]]]:
    """The bundle's tables: (records from ``result``, their columns), for the report's writers."""
    out = {}
    var_cols = [("task", lambda r: r["task"]), ("variant", lambda r: CONTROL_NAMES.get(r["variant"], r["variant"])),
                ("fidelity", lambda r: r["fidelity"]),
                ("pairs", lambda r: r["metric"]["pairs"]), ("step (unit)", lambda r: fmt(r["median_step"])),
                ("metric improved [95% CI]", lambda r: _share(r["metric"], "improved")),
                ("metric worse", lambda r: pct(r["metric"]["worse"])),
                ("metric median improvement [95% CI]", lambda r: _ci(r["metric"])),
                ("val_loss improved [95% CI]", lambda r: _share(r.get("val_loss", {}), "improved")),
                ("val_loss worse", lambda r: pct(r.get("val_loss", {}).get("worse"))),
                ("val_loss median improvement [95% CI]", lambda r: _ci(r.get("val_loss", {}))),
                ("baseline val_loss (median)", lambda r: fmt(r.get("val_loss", {}).get("base_median"))),
                ("diverged", lambda r: r["metric"]["diverged"])]
    out["variants"] = (result["variants"], _text_columns(var_cols))
    out["comparisons"] = (result["comparisons"], _text_columns([
        ("task", lambda r: r["task"]), ("variant", lambda r: r["variant"]), ("control", lambda r: r["control_name"]),
        ("fidelity", lambda r: r["fidelity"]), ("configs", lambda r: "all" if r["subset"] == "all" else "cos < 0.99"),
        ("pairs", lambda r: r["metric"]["pairs"]),
        ("metric: variant better [Wilson 95%] (W/T/L)", lambda r: _win(r.get("metric"))),
        ("metric: median gap [95% CI]", lambda r: _gap(r.get("metric"))),
        ("metric: Holm p", lambda r: _p((r.get("metric") or {}).get("p_holm"))),
        ("val_loss: variant better [Wilson 95%] (W/T/L)", lambda r: _win(r.get("val_loss"))),
        ("val_loss: median gap [95% CI]", lambda r: _gap(r.get("val_loss"))),
        ("val_loss: Holm p", lambda r: _p((r.get("val_loss") or {}).get("p_holm")))]))
    out["directions"] = (result["directions"], _text_columns([
        ("task", lambda r: r["task"]), ("ohgw step", lambda r: r["variant"]), ("configs", lambda r: r["configs"]),
        ("median cos", lambda r: f"{r['median']:.3f}"), ("IQR", lambda r: f"{r['q25']:.3f}–{r['q75']:.3f}"),
        ("min", lambda r: f"{r['min']:.3f}"), ("cos >= 0.99", lambda r: pct(r["same"])),
        ("cos < 0.99", lambda r: r["differ"]), ("cos < 0", lambda r: r["opposite"]),
        ("most moved (share of configs)", lambda r: "–" if r.get("largest_step") is None
         else f"{r['largest_step']} ({pct(r['largest_step_share'])})")]))
    out["gradnorm"] = (result["gradnorm_bins"], _text_columns([
        ("task", lambda r: r["task"]), ("variant", lambda r: CONTROL_NAMES.get(r["variant"], r["variant"])),
        ("grad norm (unit)", lambda r: f"{fmt(r['grad_norm_low'])}–{fmt(r['grad_norm_high'])}"),
        ("pairs", lambda r: r["metric"]["pairs"]), ("metric improved", lambda r: pct(r["metric"]["improved"])),
        ("metric worse", lambda r: pct(r["metric"]["worse"])),
        ("val_loss improved", lambda r: pct((r.get("val_loss") or {}).get("improved"))),
        ("val_loss worse", lambda r: pct((r.get("val_loss") or {}).get("worse"))),
        ("val_loss median", lambda r: fmt((r.get("val_loss") or {}).get("median")))]))
    return out


CAPTIONS = {
    "variants": "Paired trials: per task, variant and fidelity, the share of configs the warm-start improved (95% Wilson "
                "CI) / worsened, and the median improvement (baseline minus nudged, sign flipped for max metrics) with "
                "its 95% bootstrap CI, in the task metric and in validation loss; 'unmodified (sham)' trains the config "
                "as proposed (improvement 0 by construction); 'diverged': nudged trials with no finite metric, counted "
                "as losses.",
    "comparisons": "Head-to-head: per config, the variant's improvement minus the control's. Win share (ties half) "
                   "with a 95% Wilson CI and wins/ties/losses; median gap with a 95% bootstrap CI; two-sided sign test, "
                   "Holm-adjusted over every test in this table. 'cos < 0.99': only the configs whose OHGW step and "
                   "prior step point in different directions. Controls: random (same length, random direction), "
                   "prior (same length, fixed direction), orth (the OHGW step minus its prior component, same length), "
                   "unmodified (sham: the config as proposed).",
    "directions": "Cosine between the OHGW step and the prior step (same step rule) per config: near 1, the "
                  "hyper-gradient only says what the prior says (raise lr).",
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
            if np.isnan(grid).all():  # digits-loss: its metric is the validation loss, shown on the left
                ax.axis("off")
                ax.text(0.5, 0.5, f"{task}: the task metric is the validation loss (left)", ha="center",
                        va="center", fontsize=8, transform=ax.transAxes)
                continue
            im = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
            for (r, c), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(c, r, f"{v:+.2f}", ha="center", va="center", fontsize=7)
            edges = [f"{fmt(b['grad_norm_low'], 2)}–{fmt(b['grad_norm_high'], 2)}" for b in tb if b["variant"] == labels[0]]
            ax.set_xticks(range(nbins), edges, rotation=30, ha="right", fontsize=7)
            ax.set_yticks(range(len(labels)), [CONTROL_NAMES.get(v, v) for v in labels], fontsize=7)
            fid = tb[0]["fidelity"]
            what = f"task metric ({tb[0].get('metric_name') or 'metric'})" if q == "metric" else QUANTITIES[q][3]
            ax.set_title(f"{task}: {what} at fidelity {fid}", fontsize=8)
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
             "`python -m ohgw_bench.nudge` (see that module's docstring for the design); the raw pairs are in `pairs.csv.gz`.", "",
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
              "## How to read it", "",
              "Each config is trained from one seed as proposed and after each warm-start variant; the paired "
              "difference is the nudge's effect on that config alone. `unmodified (sham)` is the config as proposed "
              "(sham pays the warm-start's cost and leaves the config unchanged, so its improvement is 0 by "
              "construction): 'vs unmodified' is 'vs doing nothing'. `orth` is the direction control: the OHGW step "
              "with its component along the prior step removed, at the same length. A diverged trial is a loss "
              f"(never dropped). Win shares carry 95% Wilson intervals; p-values are two-sided sign tests, "
              f"Holm-adjusted over all {result['holm_family']} tests of `tables/comparisons` (every task, arm, "
              "control, fidelity, quantity and subset). Validation loss is reported for every task: on the error-rate "
              "tasks the error of a few hundred validation examples ties most pairs.", "",
              "## Headline (highest trained fidelity)", ""]
    dirs = {(d["task"], d["variant"]): d for d in result.get("directions", [])}
    for task, h in result["headline"].items():
        maxf = f" of {h['max_fidelity']} {h.get('fidelity_unit') or ''}".rstrip() if h.get("max_fidelity") else ""
        lines.append(f"**{task}** ({h['configs']} configs, fidelity {h['fidelity']}{maxf}).")
        lines.append("")
        for label, v in h["variants"].items():
            parts = []
            for q in h["quantities"]:
                d = v[q]
                parts.append(f"{h['metric_name'] if q == 'metric' else q} improved in {_share(d, 'improved')}, median improvement {_ci(d)}"
                             + (f", {d['diverged']} diverged" if d.get("diverged") else ""))
            lines.append(f"- {CONTROL_NAMES.get(label, label)} (median step {fmt(v['median_step'])}): " + "; ".join(parts))
        lines.append("")
        for label in ("ohgw", "ohgw-normalized"):
            d = dirs.get((task, label))
            if d:
                lines.append(f"- cos({label} step, prior step): median {d['median']:.3f}; {pct(d['same'])} of configs "
                             f">= {DIFFER_COS}, {d['differ']} below, {d['opposite']} below 0.")
        lines.append("")
        everyone = {(c["variant"], c["control"]): c[h["quantities"][0]]["pairs"] for c in h["comparisons"]
                    if c["subset"] == "all"}
        for c in h["comparisons"]:
            if c["subset"] != "all" and c[h["quantities"][0]]["pairs"] == everyone.get((c["variant"], c["control"])):
                continue  # every config's steps differ (the raw step): the same line twice
            parts = []
            for q in h["quantities"]:
                d = c.get(q) or {}
                if d.get("a_better") is not None:
                    name = h["metric_name"] if q == "metric" else q
                    parts.append(f"{name} {_win(d)}, median gap {_gap(d)}, Holm p {_p(d.get('p_holm'))}")
            where = "" if c["subset"] == "all" else f" on the {c[h['quantities'][0]]['pairs']} configs with cos < {DIFFER_COS}"
            if parts:
                lines.append(f"- {c['variant']} vs {c['control_name']}{where}: " + "; ".join(parts))
        lines.append("")
    ch = result.get("changes")
    if ch:
        cells = ch["cells"]
        moved = [c for c in cells if c["old"] is not None and c["new"] is not None and abs(c["new"] - c["old"]) > 0.0005]
        more = [c for c in cells if c["old_pairs"] is not None and c["new_pairs"] != c["old_pairs"]]
        biggest = max(moved, key=lambda c: abs(c["new"] - c["old"]), default=None)
        lines += ["## Changes from the previous bundle", "",
                  f"Compared with the bundle at commit {ch.get('previous_git_revision')} (`tables/changes.md`, every "
                  f"cell): of {len(cells)} head-to-head cells at the last fidelity, {len(moved)} changed their win share "
                  f"and {len(more)} their number of pairs (diverged configs now count as losses instead of being "
                  "dropped; the other shifts are the two runs' own floating-point differences: the code changed "
                  "between the two commits, the medians agree to about six significant digits, and a nudge whose "
                  "effect is at that level, like the raw step's, or a tie of an error rate, can flip a config)"
                  + (f"; the largest change: {biggest['task']} {biggest['variant']} vs {biggest['control']} "
                     f"({biggest['quantity']}) {pct(biggest['old'])} -> {pct(biggest['new'])}" if biggest else "")
                  + ". Every interval changed kind: percentile bootstrap before (degenerate at 0% or 100%), "
                  "Wilson now. New: the median paired gaps, Holm-adjusted p, the orth control, the "
                  "differing-direction subsets, the cosines and the raw pairs.", ""]
    lines += ["## Files", "", "- `summary.json`: every number in the tables, plus the per-run facts above.",
              f"- `{PAIRS_CSV}`: the raw pairs (one row per task, config, variant and fidelity; "
              "`python -m analysis.nudge reports/nudge --out DIR` recomputes the bundle from it).",
              "- `tables/variants.{md,tex}`, `tables/comparisons.{md,tex}`, `tables/directions.{md,tex}`, "
              "`tables/gradnorm.{md,tex}`.",
              "- `figures/gradnorm_heatmap.{pdf,png}`: net win rate by hyper-gradient size.", "",
              "![heatmap](figures/gradnorm_heatmap.png)", ""]
    return "\n".join(lines)


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Per head-to-head cell of an earlier bundle's summary.json, its win share and pairs then and now (last fidelity)."""
    def last(summary: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
        top: dict[str, int] = {}
        for c in summary.get("comparisons", []):
            top[c["task"]] = max(top.get(c["task"], 0), c["fidelity"])
        return {(c["task"], c["variant"], c["control"]): c for c in summary.get("comparisons", [])
                if c["fidelity"] == top[c["task"]] and c.get("subset", "all") == "all"}

    before, after = last(old), last(new)
    out = []
    for key, o in sorted(before.items()):
        n = after.get(key)
        for q in QUANTITIES:
            if not o.get(q) or not (n or {}).get(q):
                continue
            a, b = o[q], n[q]
            out.append({"task": key[0], "variant": key[1], "control": key[2], "quantity": q,
                        "old": a.get("a_better"), "old_low": a.get("ci_low"), "old_high": a.get("ci_high"),
                        "old_pairs": a.get("pairs"), "new": b.get("a_better"), "new_low": b.get("ci_low"),
                        "new_high": b.get("ci_high"), "new_pairs": b.get("pairs"),
                        "median_gap": b.get("median_gap"), "p_holm": b.get("p_holm")})
    return out


def _changes_table(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Column]]:
    def share(r: dict[str, Any], w: str) -> str:
        if r[w] is None:
            return "–"
        ci = f" [{pct(r[w + '_low'])}, {pct(r[w + '_high'])}]" if r[w + "_low"] is not None else ""
        return f"{pct(r[w])}{ci} ({r[w + '_pairs']})"

    return rows, _text_columns([
        ("task", lambda r: r["task"]), ("variant", lambda r: r["variant"]),
        ("control", lambda r: CONTROL_NAMES.get(r["control"], r["control"])), ("quantity", lambda r: r["quantity"]),
        ("before: share [bootstrap CI] (pairs)", lambda r: share(r, "old")),
        ("now: share [Wilson CI] (pairs)", lambda r: share(r, "new")),
        ("change (points)", lambda r: "–" if r["old"] is None or r["new"] is None else f"{100 * (r['new'] - r['old']):+.1f}"),
        ("now: median gap", lambda r: fmt(r["median_gap"])), ("now: Holm p", lambda r: _p(r["p_holm"]))])


def write_bundle(root: str | Path, out: str | Path, argv: Sequence[str] = (), note: str | None = None,
                 previous: str | Path | None = None) -> dict[str, Any]:
    """Analyse the folders below ``root`` and write the bundle to ``out``; returns summary.json's content."""
    df, runs = load(root)
    result = analyse(df, runs)
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    cols = [c for c in PAIR_COLUMNS if c in df]
    df[cols].to_csv(  # in the runs' row order, so a bundle read back lists variants as the runs did
        out / PAIRS_CSV, index=False, compression={"method": "gzip", "mtime": 0})
    for name, (records, cols) in tables(result).items():
        (out / "tables" / f"{name}.md").write_text(to_markdown(records, cols, CAPTIONS[name]), encoding="utf-8")
        (out / "tables" / f"{name}.tex").write_text(to_latex(records, cols, CAPTIONS[name], f"nudge-{name}"),
                                                    encoding="utf-8")
    heatmap(result, out / "figures")
    if previous is not None:
        old = json.loads(Path(previous).read_text())
        result["changes"] = {"previous": str(previous), "previous_git_revision": (old.get("runs") or [{}])[0].get("git_revision"),
                             "cells": changes(old, result)}
        records, cols = _changes_table(result["changes"]["cells"])
        caption = ("Changes from the previous bundle: per head-to-head cell at the last fidelity, the win share "
                   "(ties half) before (percentile-bootstrap CI, diverged configs dropped) and now (Wilson CI, "
                   "diverged configs counted as losses).")
        (out / "tables" / "changes.md").write_text(to_markdown(records, cols, caption), encoding="utf-8")
    result["generated_with"] = {"python": platform.python_version(), "argv": list(argv)}
    (out / "summary.json").write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(result, argv, note), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.nudge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help=f"folder holding paired-trial folders (e.g. results/nudge), or a bundle with {PAIRS_CSV}")
    p.add_argument("--out", required=True, help="bundle folder (reports/nudge is the committed one: only to publish)")
    p.add_argument("--note", default=None, help="a paragraph for the README's Runs section (how the runs were made)")
    p.add_argument("--previous", default=None, help="an earlier bundle's summary.json: list what changed (tables/changes.md)")
    args = p.parse_args(argv)
    argv = ([args.results, "--out", args.out] + (["--note", args.note] if args.note else [])
            + (["--previous", args.previous] if args.previous else []))  # the command, as parsed
    try:
        if not Path(args.results).is_dir():
            raise UserError(f"{args.results}: no such folder")
        if args.previous and not Path(args.previous).is_file():
            raise UserError(f"--previous {args.previous}: no such file")
        result = write_bundle(args.results, args.out, argv, note=args.note, previous=args.previous)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for task, h in result["headline"].items():
        q = h["quantities"][-1]
        print(f"{task}: improved ({q}, fidelity {h['fidelity']}): "
              + ", ".join(f"{v} {pct(x[q]['improved'])}" for v, x in h["variants"].items()))
    print(f"bundle written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
