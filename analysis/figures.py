"""The report's figures: one PDF per kind, one page per (experiment, task, scheduler) tuple,
and a PNG of each kind's first page (for a README).

Figures draw what the tables report: curves stop at the budget (reports after it are not in
``Study.valid``), and T@tau is drawn as Kaplan-Meier curves, the estimate behind the tables'
medians.

A figure whose data is absent from the results (no eta_h sweep, no hyper-gradient records)
is still written, as a page that says what is missing, so the set of files is always the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.common import AXES, VANILLA, Study, _col, clock_unit, hp_values  # noqa: E402
from ohgw_bench import metrics  # noqa: E402

FIGURES = ("best_so_far", "t_tau", "survival", "gradnorm_benefit", "hp_distributions",
           "eta_sensitivity", "transfer")


def colors(methods: list[str]) -> dict[str, Any]:
    """Vanilla in black, the others from tab10 in sorted order, the same in every figure."""
    cmap = plt.get_cmap("tab10")
    others = [m for m in sorted(methods) if m != VANILLA]
    out: dict[str, Any] = {VANILLA: "black"}
    out.update({m: cmap(i % 10) for i, m in enumerate(others)})
    return out


def _title(t: dict[str, Any]) -> str:
    return f"{t['task']} / {t['scheduler']}  ({t['experiment']})"


@contextmanager
def _pdf(path: Path) -> Iterator[PdfPages]:
    with PdfPages(path) as pdf:
        yield pdf


_PNG: dict[str, Any] = {"path": None}


def _save(pdf: PdfPages, fig: Any) -> None:
    """Add a page; the first page of each kind is also written as PNG (for a README)."""
    pdf.savefig(fig)
    if _PNG["path"] is not None:
        fig.savefig(_PNG["path"], dpi=100)
        _PNG["written"].append(_PNG["path"])
        _PNG["path"] = None
    plt.close(fig)


def _text_page(pdf: PdfPages, title: str, text: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=13, wrap=True,
            bbox={"boxstyle": "round", "facecolor": "#f2f2f2", "edgecolor": "#888888"})
    _save(pdf, fig)


def best_so_far(analysis: dict[str, Any], pdf: PdfPages) -> None:
    for t in analysis["tuples"]:
        curves = t["curves"]
        col = colors(list(t["methods"]))
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
        panels = [(a, AXES[a], False) for a in AXES] + [("time", AXES["time"], True)]
        for ax, (axis, xlabel, test) in zip(axes.flat, panels):
            if axis not in curves:
                ax.text(0.5, 0.5, f"no {xlabel} data", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            grid = np.asarray(curves[axis]["grid"])
            for m, band in curves[axis]["methods"].items():
                b = band["test"] if test else band
                med = np.asarray(b["median"], dtype=float)
                n = t["methods"][m]["n_seeds"]
                ax.plot(grid, med, color=col[m], label=f"{m} (n={n})", drawstyle="steps-post")
                ax.fill_between(grid, np.asarray(b["q25"], dtype=float), np.asarray(b["q75"], dtype=float),
                                color=col[m], alpha=0.2, step="post", linewidth=0)
            if not test and np.isfinite(t["tau"]):
                ax.axhline(t["tau"], color="grey", linestyle="--", linewidth=1)
                ax.annotate(f"tau = {t['tau']:g}", xy=(0.99, t["tau"]), xycoords=("axes fraction", "data"),
                            ha="right", va="bottom", fontsize=8, color="grey")
            ax.set_xlabel(xlabel)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useOffset=False)
            ax.set_ylabel("incumbent's test metric" if test else f"best-so-far validation ({t['mode']})")
            ax.set_title("test metric of the incumbent" if test else f"best-so-far vs {xlabel}", fontsize=10)
            ax.grid(alpha=0.3)
        axes.flat[0].legend(fontsize=8, title="method", title_fontsize=8)
        fig.suptitle(f"{_title(t)}: median over seeds, band = IQR")
        fig.tight_layout()
        _save(pdf, fig)


def t_tau(analysis: dict[str, Any], pdf: PdfPages) -> None:
    """Kaplan-Meier curves of the fraction of seeds that have not yet reached tau, per arm.

    The curve crosses 0.5 at the tables' KM median; censored studies (never reached) are ticks
    at the budget, so arms with more censoring look worse, as they are.
    """
    studies: list[Study] = analysis["studies"]
    for t in analysis["tuples"]:
        key = (t["experiment"], t["task"], t["scheduler"])
        methods = list(t["methods"])
        col = colors(methods)
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        budget = t["budget"]
        for m in methods:
            ss = [s for s in studies if s.tuple_key == key and s.variant == m]
            times = np.array([s.m["t_tau"] for s in ss], dtype=float)
            reached = np.array([s.m["reached"] for s in ss], dtype=bool)
            ev, surv = metrics.km_curve(times, reached)
            x = np.concatenate([[0.0], ev, [budget if np.isfinite(budget) else (ev[-1] if ev.size else 1.0)]])
            y = np.concatenate([[1.0], surv, [surv[-1] if surv.size else 1.0]])
            ms = t["methods"][m]["t_tau"]
            med = ms["km_median"]
            ax.step(x, y, where="post", color=col[m],
                    label=f"{m}: {ms['n_reached']}/{ms['n']} reached, KM median "
                          + ("n.r." if not np.isfinite(med) else f"{med:.3g}"))
            cens = times[~reached]
            if cens.size:
                ax.plot(cens, np.full(cens.size, y[-1]), "|", color=col[m], markersize=12)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
        if np.isfinite(budget):
            ax.axvline(budget, color="grey", linestyle=":", linewidth=1, label="budget")
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.set_xlabel(f"time ({clock_unit(t['clock'])})")
        ax.set_ylabel("fraction of seeds not yet at tau")
        ax.legend(fontsize=7, loc="lower left")
        ax.set_title(f"{_title(t)}: time to tau = {t['tau']:g} (Kaplan-Meier; ticks = censored)", fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        _save(pdf, fig)


def survival(analysis: dict[str, Any], pdf: PdfPages) -> None:
    for t in analysis["tuples"]:
        sv = t["survival"]
        levels = np.asarray(sv["levels"], dtype=float)
        if levels.size == 0:
            _text_page(pdf, _title(t), "no fidelity levels reported")
            continue
        col = colors(list(t["methods"]))
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for m, band in sv["methods"].items():
            ax.plot(levels, band["median"], color=col[m], marker="o", markersize=3, drawstyle="steps-post",
                    label=f"{m} (n={t['methods'][m]['n_seeds']})")
            ax.fill_between(levels, band["q25"], band["q75"], color=col[m], alpha=0.2, step="post", linewidth=0)
        if levels.min() > 0 and levels.max() / levels.min() > 20:
            ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("fidelity level")
        ax.set_ylabel("fraction of trials reaching the level")
        ax.set_title(f"{_title(t)}: survival per rung (median, IQR band)", fontsize=10)
        ax.legend(fontsize=8, title="method", title_fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        _save(pdf, fig)


def gradnorm_benefit(analysis: dict[str, Any], pdf: PdfPages) -> None:
    from scipy.stats import spearmanr

    studies: list[Study] = analysis["studies"]
    by_variant: dict[str, list[tuple[float, float]]] = {}
    for s in studies:
        if s.trials.empty or "benefit" not in s.trials.columns:
            continue
        g = _col(s.trials, "ws.grad_norm_unit")
        b = _col(s.trials, "benefit")
        ok = np.isfinite(g) & np.isfinite(b) & (g > 0)
        if ok.any():
            by_variant.setdefault(s.variant, []).extend(zip(g[ok], b[ok]))
    analysis.setdefault("figure_numbers", {})["gradnorm_benefit"] = {}
    if not by_variant:
        _text_page(pdf, "hyper-gradient magnitude vs eventual benefit",
                   "no hyper-gradient norms (ws.grad_norm_unit) in these results")
        return
    for v, pairs in sorted(by_variant.items()):
        g, b = np.log10(np.array([p[0] for p in pairs])), np.array([p[1] for p in pairs])
        xbins = np.linspace(g.min(), g.max() if g.max() > g.min() else g.min() + 1, 9)
        ybins = np.linspace(0, 1, 6)
        h, _, _ = np.histogram2d(g, b, bins=[xbins, ybins])
        colsum = h.sum(axis=1, keepdims=True)
        frac = np.divide(h, colsum, out=np.zeros_like(h), where=colsum > 0)
        rho = spearmanr(g, b).statistic if g.size > 2 and np.ptp(g) > 0 and np.ptp(b) > 0 else math.nan
        analysis["figure_numbers"]["gradnorm_benefit"][v] = {"n_trials": int(g.size), "spearman_rho": float(rho)}
        fig, ax = plt.subplots(figsize=(8, 4.8))
        mesh = ax.pcolormesh(xbins, ybins, frac.T, cmap="viridis", vmin=0, vmax=max(frac.max(), 1e-9))
        for i in range(len(xbins) - 1):
            for j in range(len(ybins) - 1):
                if h[i, j]:
                    ax.text((xbins[i] + xbins[i + 1]) / 2, (ybins[j] + ybins[j + 1]) / 2, int(h[i, j]),
                            ha="center", va="center", fontsize=7, color="white" if frac[i, j] < 0.5 else "black")
        fig.colorbar(mesh, ax=ax, label="fraction of trials in the magnitude bin")
        ax.set_xlabel("log10 hyper-gradient norm (unit-cube coordinates)")
        ax.set_ylabel("eventual benefit (rank among rung peers, 1 = best)")
        ax.set_title(f"{v}: hyper-gradient magnitude vs eventual benefit\n"
                     f"n = {g.size} trials (cell: count), Spearman rho = {rho:.2f}", fontsize=10)
        fig.tight_layout()
        _save(pdf, fig)


def _unit(values: np.ndarray, hp: dict[str, Any]) -> np.ndarray:
    log = bool(hp.get("log"))
    lo, hi = metrics.to_unconstrained([float(hp["low"]), float(hp["high"])], log)
    return (metrics.to_unconstrained(values, log) - lo) / (hi - lo)


def hp_distributions(analysis: dict[str, Any], pdf: PdfPages) -> None:
    studies: list[Study] = analysis["studies"]
    for t in analysis["tuples"]:
        key = (t["experiment"], t["task"], t["scheduler"])
        ss = [s for s in studies if s.tuple_key == key]
        space = [hp for hp in ss[0].space if hp.get("low") is not None and hp.get("high") is not None]
        variants = [v for v in t["methods"] if v != VANILLA] or [VANILLA]
        if not space:
            _text_page(pdf, _title(t), "no search space recorded in study.json")
            continue
        col = colors(list(t["methods"]))
        fig, axes = plt.subplots(len(space), len(variants), squeeze=False,
                                 figsize=(max(8.0, 3.6 * len(variants)), 2.4 * len(space) + 1.0))
        bins = np.linspace(0, 1, 21)

        kl = {v: {r["hp"]: r for r in t["kl"].get(v, [])} for v in variants}
        for i, hp in enumerate(space):
            for j, v in enumerate(variants):
                ax = axes[i, j]
                arms = [(VANILLA, {"histtype": "step", "linewidth": 1.5})]
                if v != VANILLA:
                    arms.append((v, {"alpha": 0.45}))
                for m, style in arms:
                    z = _unit(hp_values([s for s in ss if s.variant == m], hp["name"], False), hp)
                    z = z[np.isfinite(z)]
                    if z.size:
                        ax.hist(z, bins=bins, density=True, color=col[m], label=f"{m} (all)", **style)
                    zc = _unit(hp_values([s for s in ss if s.variant == m], hp["name"], True), hp)
                    zc = zc[np.isfinite(zc)]
                    ax.plot(zc, np.zeros_like(zc), "|", color=col[m], markersize=14, markeredgewidth=2,
                            label=f"{m} (chosen)")
                r = kl[v].get(hp["name"]) if v in kl else None
                if r:
                    ax.annotate(f"KL all {metrics_fmt(r['kl_all'])}\nKL chosen {metrics_fmt(r['kl_chosen'])}",
                                xy=(0.98, 0.96), xycoords="axes fraction", ha="right", va="top", fontsize=7)
                ax.set_xlim(0, 1)
                ax.set_xlabel(f"{hp['name']} (unit cube{', log' if hp.get('log') else ''})", fontsize=8)
                ax.set_ylabel("density", fontsize=8)
                if i == 0:
                    ax.set_title(f"{VANILLA} vs {v}", fontsize=9)
                if i == 0 and j == 0:
                    ax.legend(fontsize=6)
        fig.suptitle(f"{_title(t)}\nevaluated (histograms) and chosen (ticks) hyperparameters, unit cube",
                     fontsize=10)
        fig.tight_layout()
        _save(pdf, fig)


def metrics_fmt(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3g}"


def eta_sensitivity(analysis: dict[str, Any], pdf: PdfPages) -> None:
    sweeps = analysis.get("eta_sweeps") or []
    if not sweeps:
        _text_page(pdf, "eta_h sensitivity", "no eta_h sweep in these results\n"
                   "(no warm-start setting was run with more than one eta_h)")
        return
    for sw in sweeps:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
        eta = np.asarray(sw["eta_h"], dtype=float)
        med = np.array([a["median"] for a in sw["auc"]], dtype=float)
        lo = np.array([a["q25"] for a in sw["auc"]], dtype=float)
        hi = np.array([a["q75"] for a in sw["auc"]], dtype=float)
        a1.errorbar(eta, med, yerr=[med - lo, hi - med], marker="o", capsize=3,
                    label=f"{sw['ws_variant']} ({sw['step_rule'] or 'default'} rule)")
        van = sw["vanilla_auc"]
        if np.isfinite(van["median"]):
            a1.axhline(van["median"], color="black", linestyle="--", label="vanilla median")
            a1.axhspan(van["q25"], van["q75"], color="black", alpha=0.1, label="vanilla IQR")
        a1.set_xscale("log")
        a1.set_xlabel("eta_h")
        a1.set_ylabel("normalised AUC (median, IQR)")
        a1.legend(fontsize=8)
        a1.grid(alpha=0.3)
        tm = np.array([x["median"] for x in sw["t_tau"]], dtype=float)
        fr = np.array([x["frac_reached"] for x in sw["t_tau"]], dtype=float)
        fin = np.isfinite(tm)
        a2.plot(eta[fin], tm[fin], marker="o", label="median T@tau")
        for e, m, f in zip(eta, tm, fr):
            a2.annotate(f"{100 * f:.0f}% reached" + ("" if np.isfinite(m) else " (n.r.)"),
                        xy=(e, m if np.isfinite(m) else 0), fontsize=7, ha="center", va="bottom")
        a2.set_xscale("log")
        a2.set_xlabel("eta_h")
        a2.set_ylabel("median T@tau (study clock, s)")
        a2.legend(fontsize=8)
        a2.grid(alpha=0.3)
        fig.suptitle(f"eta_h sensitivity: {sw['task']} / {sw['scheduler']} ({sw['experiment']})")
        fig.tight_layout()
        _save(pdf, fig)


def transfer(analysis: dict[str, Any], pdf: PdfPages) -> None:
    tr = analysis.get("transfer") or {}
    rows = tr.get("rows") or []
    if not rows:
        _text_page(pdf, "zero-tuning transfer", "no eta_h sweep in these results:\n"
                   "no default OHGW arm with a recorded eta_h and a vanilla pair")
        return
    fams = sorted({r["family"] for r in rows})
    cmap = plt.get_cmap("tab10")
    fcol = {f: cmap(i % 10) for i, f in enumerate(fams)}
    rows = sorted(rows, key=lambda r: (r["family"], r["task"], r["scheduler"], r["variant"]))
    x = np.arange(len(rows))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6, 1.1 * len(rows) + 2), 7), sharex=True)
    med = np.array([r["auc_gain"]["median"] for r in rows], dtype=float)
    lo = np.array([r["auc_gain"]["q25"] for r in rows], dtype=float)
    hi = np.array([r["auc_gain"]["q75"] for r in rows], dtype=float)
    a1.bar(x, np.nan_to_num(med), yerr=[np.nan_to_num(med - lo), np.nan_to_num(hi - med)], capsize=3,
           color=[fcol[r["family"]] for r in rows])
    a1.axhline(0, color="black", linewidth=0.8)
    a1.set_ylabel("AUC gain vs vanilla\n(paired median, IQR)")
    ratio = np.array([r["t_tau_ratio"] for r in rows], dtype=float)
    ci = np.array([r["t_tau_ratio_ci"] for r in rows], dtype=float).reshape(-1, 2)
    a2.bar(x, np.nan_to_num(ratio), color=[fcol[r["family"]] for r in rows],
           yerr=[np.nan_to_num(ratio - ci[:, 0]), np.nan_to_num(ci[:, 1] - ratio)], capsize=3)
    for i, v in enumerate(ratio):
        if not np.isfinite(v):
            a2.annotate("n/a", xy=(i, 0), ha="center", va="bottom", fontsize=7)
    a2.axhline(1 - metrics.CRITERIA["t_tau_reduction"], color="grey", linestyle="--", label="criterion (0.85)")
    a2.axhline(1.0, color="black", linewidth=0.8)
    a2.set_ylabel("paired T@tau ratio vs none\n(median, 95% CI)")
    a2.set_xticks(x, [f"{r['task']}\n{r['scheduler']}" for r in rows], rotation=30, ha="right", fontsize=7)
    a2.set_xlabel("task / scheduler")
    handles = [plt.Rectangle((0, 0), 1, 1, color=fcol[f]) for f in fams]
    a1.legend(handles, fams, title="task family", fontsize=8, title_fontsize=8)
    a2.legend(fontsize=8)
    fig.suptitle(f"zero-tuning transfer: eta_h = {tr['eta_h']:g} fixed across tasks")
    fig.tight_layout()
    _save(pdf, fig)


def write_all(analysis: dict[str, Any], folder: Path) -> list[Path]:
    """Write every figure kind to ``folder/<kind>.pdf`` and its first page to ``<kind>.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    makers = {"best_so_far": best_so_far, "t_tau": t_tau, "survival": survival,
              "gradnorm_benefit": gradnorm_benefit, "hp_distributions": hp_distributions,
              "eta_sensitivity": eta_sensitivity, "transfer": transfer}
    written: list[Path] = []
    _PNG["written"] = written
    for name in FIGURES:
        path = folder / f"{name}.pdf"
        _PNG["path"] = folder / f"{name}.png"
        with _pdf(path) as pdf:
            makers[name](analysis, pdf)
        written.append(path)
    _PNG["path"] = None
    return written
