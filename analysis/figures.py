"""The report's figures: one PDF per kind, and a PNG of every page (``<kind>.png`` for the first,
``<kind>-p<k>.png`` for page k), so each figure a README shows is a whole figure.

Layout: one panel per (experiment, task, scheduler) tuple on a grid, at most four arms per
panel (:data:`ARMS_PER_PAGE`): vanilla plus up to three others per page, the rest on companion
pages, each arm in the same colour on every page. Figures draw what the tables report: curves
stop at the budget (reports after it are not in ``Study.valid``); T@tau is drawn as Kaplan-Meier
curves, whose median (:func:`ohgw_bench.metrics.km_median`) is the one median of every table and
figure; ratios are drawn on a log axis centred on 1, always with their 95% bootstrap interval.
The study clock is the only time axis (wall clocks of a loaded, instrumented machine are not
evidence of anything). Axes start at their natural origin (0 for times and fractions) unless a
log axis is used.

A figure whose data is absent from the results (no eta_h sweep, no hyper-gradient records)
is still written, as a page that says what is missing, so the set of files is always the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

from analysis.common import VANILLA, Study, _col, clock_unit, span  # noqa: E402
from ohgw_bench import metrics  # noqa: E402

FIGURES = ("t_tau", "best_so_far", "best_so_far_test", "survival", "hp_shift", "gradnorm_benefit",
           "eta_sensitivity", "transfer", "step_length")
#: arms per panel: vanilla and up to three others
ARMS_PER_PAGE = 4
#: the order arms are grouped onto pages: the headline arms first (and the oracle, their upper bound), then controls
ARM_ORDER = ("ohgw-normalized", "ohgw", "oracle-normalized", "sham", "random-normalized", "prior-normalized",
             "sham-normalized", "random", "prior")
PANEL_W, PANEL_H, MAX_COLS = 3.4, 2.7, 4


def colors(methods: list[str]) -> dict[str, Any]:
    """Vanilla in black, the others from tab10 in sorted order, the same in every figure."""
    cmap = plt.get_cmap("tab10")
    others = [m for m in sorted(methods) if m != VANILLA]
    out: dict[str, Any] = {VANILLA: "black"}
    out.update({m: cmap(i % 10) for i, m in enumerate(others)})
    return out


def arm_groups(methods: list[str] | set[str], per_page: int = ARMS_PER_PAGE) -> list[list[str]]:
    """Arms split into pages of at most ``per_page``: vanilla on every page, the others in
    :data:`ARM_ORDER` then alphabetical order."""
    others = sorted({m for m in methods if m != VANILLA},
                    key=lambda m: (ARM_ORDER.index(m) if m in ARM_ORDER else len(ARM_ORDER), m))
    lead = [VANILLA] if VANILLA in methods else []
    k = per_page - len(lead)
    pages = [lead + others[i:i + k] for i in range(0, len(others), k)]
    return pages or [lead]


def _label(t: dict[str, Any]) -> str:
    return f"{t['task']} / {t['scheduler']}" + (f" ({t['experiment']})" if t.get("_multi_exp") else "")


def _metric(t: dict[str, Any]) -> str:
    return str(t.get("metric") or "validation metric")


@contextmanager
def _pdf(path: Path) -> Iterator[PdfPages]:
    with PdfPages(path) as pdf:
        yield pdf


_PNG: dict[str, Any] = {"stem": None, "page": 0, "written": []}


def _save(pdf: PdfPages, fig: Any) -> None:
    """Add a page to the PDF and write the same page as a PNG (``<kind>.png``, ``<kind>-p2.png``, ...)."""
    pdf.savefig(fig)
    stem = _PNG["stem"]
    if stem is not None:
        _PNG["page"] += 1
        k = _PNG["page"]
        path = stem.with_name(stem.name + (".png" if k == 1 else f"-p{k}.png"))
        fig.savefig(path, dpi=110)
        _PNG["written"].append(path)
    plt.close(fig)


def _text_page(pdf: PdfPages, title: str, text: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=13, wrap=True,
            bbox={"boxstyle": "round", "facecolor": "#f2f2f2", "edgecolor": "#888888"})
    _save(pdf, fig)


def _suptitle(fig: Any, text: str, fontsize: float = 10) -> int:
    """A figure title wrapped to the figure's width (about 11 characters per inch at 10 pt);
    returns the number of lines, for the layout's top margin."""
    import textwrap

    width = max(30, int(fig.get_figwidth() * 11 * 10 / fontsize))
    lines = textwrap.wrap(text, width)
    fig.suptitle("\n".join(lines), fontsize=fontsize)
    return len(lines)


def _grid(n: int) -> tuple[Any, np.ndarray]:
    cols = min(MAX_COLS, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_W * cols, PANEL_H * rows + 1.1), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, axes


def _legend(fig: Any, arms: list[str], col: dict[str, Any], extra: list[tuple[Any, str]] | None = None) -> None:
    handles = [plt.Line2D([], [], color=col[m], linewidth=2) for m in arms]
    labels = list(arms)
    for h, lab in extra or []:
        handles.append(h)
        labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)


def _paged(analysis: dict[str, Any], pdf: PdfPages, title: str, draw: Callable[[Any, dict[str, Any], list[str]], None],
           extra: list[tuple[Any, str]] | None = None) -> None:
    """One page per arm group; on each page one panel per tuple, drawn by ``draw(ax, tuple, arms)``."""
    tuples = analysis["tuples"]
    multi = len({t["experiment"] for t in tuples}) > 1
    methods = sorted({m for t in tuples for m in t["methods"]})
    col = colors(methods)
    groups = arm_groups(methods)
    for k, arms in enumerate(groups, 1):
        fig, axes = _grid(len(tuples))
        for ax, t in zip(axes.flat, tuples):
            t = {**t, "_multi_exp": multi}
            present = [m for m in arms if m in t["methods"]]
            draw(ax, t, present)
            ax.set_title(_label(t), fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        page = f" (arms page {k} of {len(groups)})" if len(groups) > 1 else ""
        n_lines = _suptitle(fig, title + page)
        _legend(fig, arms, col, extra)
        top = 1.0 - 0.045 * n_lines * 3.8 / fig.get_figheight()
        fig.tight_layout(rect=(0, 0.07 * 3.8 / fig.get_figheight(), 1, top))
        _save(pdf, fig)


def t_tau(analysis: dict[str, Any], pdf: PdfPages) -> None:
    """Kaplan-Meier curves of the fraction of seeds not yet at tau, per arm and tuple.

    The curve crosses 0.5 at the tables' KM median (the legend's number); censored studies
    (never reached) are ticks at the budget, so arms with more censoring look worse, as they are.
    """
    studies: list[Study] = analysis["studies"]
    col = colors(sorted({m for t in analysis["tuples"] for m in t["methods"]}))

    def draw(ax: Any, t: dict[str, Any], arms: list[str]) -> None:
        key = (t["experiment"], t["task"], t["scheduler"])
        budget = t["budget"]
        for m in arms:
            ss = [s for s in studies if s.tuple_key == key and s.variant == m]
            times = np.array([s.m["t_tau"] for s in ss], dtype=float)
            reached = np.array([s.m["reached"] for s in ss], dtype=bool)
            ev, surv = metrics.km_curve(times, reached)
            end = budget if np.isfinite(budget) else (ev[-1] if ev.size else 1.0)
            x = np.concatenate([[0.0], ev, [end]])
            y = np.concatenate([[1.0], surv, [surv[-1] if surv.size else 1.0]])
            ms = t["methods"][m]["t_tau"]
            med = ms["km_median"]
            ax.step(x, y, where="post", color=col[m], linewidth=1.4,
                    label=f"{ms['n_reached']}/{ms['n']}, median " + ("n.r." if not np.isfinite(med) else f"{med:.3g}"))
            cens = times[~reached]
            if cens.size:
                ax.plot(cens, np.full(cens.size, y[-1]), "|", color=col[m], markersize=9)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel(f"study clock ({clock_unit(t['clock'])})", fontsize=8)
        ax.set_ylabel(f"seeds not yet at tau = {t['tau']:g}", fontsize=8)
        ax.legend(fontsize=6, loc="best", title="reached, KM median", title_fontsize=6)

    _paged(analysis, pdf, "Time to tau: Kaplan-Meier estimate of the fraction of seeds that have not reached tau "
           "(ticks = censored at the budget)", draw)


def _best_so_far(analysis: dict[str, Any], pdf: PdfPages, test: bool) -> None:
    if not any((t.get("curves") or {}).get("time") for t in analysis["tuples"]):
        _text_page(pdf, "best-so-far curves", "no report rows in this analysis\n(a report rebuilt from "
                   "studies.csv alone has no curves)")
        return
    col = colors(sorted({m for t in analysis["tuples"] for m in t["methods"]}))

    def draw(ax: Any, t: dict[str, Any], arms: list[str]) -> None:
        curves = t.get("curves", {}).get("time")
        if not curves:
            ax.text(0.5, 0.5, "no study-clock data", ha="center", va="center", transform=ax.transAxes)
            return
        grid = np.asarray(curves["grid"])
        for m in arms:
            band = curves["methods"].get(m)
            if band is None:
                continue
            b = band["test"] if test else band
            ax.plot(grid, np.asarray(b["median"], dtype=float), color=col[m], drawstyle="steps-post", linewidth=1.3)
            ax.fill_between(grid, np.asarray(b["q25"], dtype=float), np.asarray(b["q75"], dtype=float),
                            color=col[m], alpha=0.15, step="post", linewidth=0)
        if not test and np.isfinite(t["tau"]):
            ax.axhline(t["tau"], color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, grid[-1])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel(f"study clock ({clock_unit(t['clock'])})", fontsize=8)
        name = t.get("test_metric") or _metric(t) if test else _metric(t)
        ax.set_ylabel(f"{name}, {'test (incumbent)' if test else 'best validation'}\n"
                      f"({'lower' if t['mode'] == 'min' else 'higher'} is better)", fontsize=7)

    what = ("Test metric of the incumbent (best validation config so far)" if test
            else "Best validation metric so far (dashed: tau)")
    _paged(analysis, pdf, f"{what}: median over seeds, band = interquartile range", draw)


def best_so_far(analysis: dict[str, Any], pdf: PdfPages) -> None:
    _best_so_far(analysis, pdf, test=False)


def best_so_far_test(analysis: dict[str, Any], pdf: PdfPages) -> None:
    _best_so_far(analysis, pdf, test=True)


def survival(analysis: dict[str, Any], pdf: PdfPages) -> None:
    if not any(t["survival"]["levels"] for t in analysis["tuples"]):
        _text_page(pdf, "survival per rung", "no fidelity levels reported\n(a report rebuilt from "
                   "studies.csv alone has no trial rows)")
        return
    col = colors(sorted({m for t in analysis["tuples"] for m in t["methods"]}))

    def draw(ax: Any, t: dict[str, Any], arms: list[str]) -> None:
        sv = t["survival"]
        levels = np.asarray(sv["levels"], dtype=float)
        if levels.size == 0:
            ax.text(0.5, 0.5, "no fidelity levels reported", ha="center", va="center", transform=ax.transAxes)
            return
        for m in arms:
            band = sv["methods"].get(m)
            if band is None:
                continue
            ax.plot(levels, band["median"], color=col[m], marker="o", markersize=2.5, drawstyle="steps-post")
            ax.fill_between(levels, band["q25"], band["q75"], color=col[m], alpha=0.15, step="post", linewidth=0)
        if levels.min() > 0 and levels.max() / levels.min() > 20:
            ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        unit = t.get("fidelity_unit") or "training units (epochs or steps)"
        ax.set_xlabel(f"fidelity level ({unit})", fontsize=8)
        ax.set_ylabel("fraction of trials\nreaching the level", fontsize=8)

    _paged(analysis, pdf, "Survival per rung: fraction of a study's trials trained to each fidelity "
           "(median over seeds, band = IQR)", draw)


def hp_shift(analysis: dict[str, Any], pdf: PdfPages) -> None:
    """The bias test as a forest plot: per hyperparameter, the shift of the chosen configs' mean
    (arm - none, fraction of the range) with its bootstrap interval and the equivalence margin."""
    th = metrics.CRITERIA
    tuples = [t for t in analysis["tuples"] if any(t["kl"].values())]
    if not tuples:
        _text_page(pdf, "hyperparameter bias", "no chosen configs to compare: no arm compared with none,\n"
                   "no search space recorded, or a report rebuilt from studies.csv alone")
        return
    col = colors(sorted({m for t in analysis["tuples"] for m in t["methods"]}))

    def draw(ax: Any, t: dict[str, Any], arms: list[str]) -> None:
        rows = {v: {r["hp"]: r for r in t["kl"].get(v, [])} for v in arms if v != VANILLA}
        hps = sorted({h for r in rows.values() for h in r})
        if not hps:
            ax.text(0.5, 0.5, "no bias rows", ha="center", va="center", transform=ax.transAxes)
            return
        k = max(len(rows), 1)
        for j, (v, by_hp) in enumerate(rows.items()):
            for i, h in enumerate(hps):
                r = by_hp.get(h)
                if r is None or not np.isfinite(r.get("mean_shift_chosen", math.nan)):
                    continue
                y = i + (j - (k - 1) / 2) * 0.8 / k
                lo, hi = r.get("shift_ci_low", math.nan), r.get("shift_ci_high", math.nan)
                x = r["mean_shift_chosen"]
                ax.errorbar([x], [y], xerr=[[x - lo], [hi - x]] if np.isfinite(lo) else None, fmt="o",
                            color=col[v], markersize=3, capsize=2, linewidth=1)
        m = th["bias_margin"]
        ax.axvspan(-m, m, color="green", alpha=0.08)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(hps)), hps, fontsize=7)
        ax.set_ylim(-0.6, len(hps) - 0.4)
        lim = max(0.3, *(abs(r.get(c, 0.0)) for by in rows.values() for r in by.values()
                         for c in ("shift_ci_low", "shift_ci_high") if np.isfinite(r.get(c, math.nan))))
        ax.set_xlim(-min(lim * 1.1, 1.0), min(lim * 1.1, 1.0))
        ax.set_xlabel("shift of chosen configs' mean\n(arm - none, fraction of range)", fontsize=7)

    sub = {**analysis, "tuples": tuples}
    _paged(sub, pdf, f"Hyperparameter bias: shift with {th['margin_level']:.0%} bootstrap interval; "
           f"green band = no-bias margin +-{th['bias_margin']:g}", draw)


def gradnorm_benefit(analysis: dict[str, Any], pdf: PdfPages) -> None:
    """Per tuple, each trial's hyper-gradient norm against its eventual rank among its rung peers.

    This shows whether the hyper-gradient's size tracks config quality within a study, not the
    nudge's effect (that needs the same config with and without the nudge: the paired-trial
    experiment). One page per arm with recorded norms; Spearman rho per panel.
    """
    from scipy.stats import spearmanr

    studies: list[Study] = analysis["studies"]
    per: dict[str, dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]] = {}
    for s in studies:
        if s.trials.empty or "benefit" not in s.trials.columns:
            continue
        g, b = _col(s.trials, "ws.grad_norm_unit"), _col(s.trials, "benefit")
        ok = np.isfinite(g) & np.isfinite(b) & (g > 0)
        if ok.any():
            old = per.setdefault(s.variant, {}).get(s.tuple_key, (np.array([]), np.array([])))
            per[s.variant][s.tuple_key] = (np.append(old[0], g[ok]), np.append(old[1], b[ok]))
    numbers: dict[str, Any] = {}
    analysis.setdefault("figure_numbers", {})["gradnorm_benefit"] = numbers
    if not per:
        _text_page(pdf, "hyper-gradient magnitude vs eventual benefit",
                   "no hyper-gradient norms (ws.grad_norm_unit) in these results")
        return
    for v in sorted(per, key=lambda m: (ARM_ORDER.index(m) if m in ARM_ORDER else len(ARM_ORDER), m)):
        keys = sorted(per[v])
        fig, axes = _grid(len(keys))
        numbers[v] = {"n_trials": int(sum(per[v][k][0].size for k in keys)), "per_tuple": {}}
        for ax, key in zip(axes.flat, keys):
            g, b = per[v][key]
            rho = spearmanr(g, b).statistic if g.size > 2 and np.ptp(g) > 0 and np.ptp(b) > 0 else math.nan
            numbers[v]["per_tuple"]["/".join(key)] = {"n_trials": int(g.size), "spearman_rho": float(rho)}
            ax.scatter(np.log10(g), b, s=5, alpha=0.35, color="tab:blue", linewidths=0)
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"{key[1]} / {key[2]}\nn = {g.size}, Spearman rho = {rho:.2f}", fontsize=8)
            ax.set_xlabel("log10 hyper-gradient norm\n(unit-cube coordinates)", fontsize=7)
            ax.set_ylabel("rank among rung peers\n(1 = best)", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        n_lines = _suptitle(fig, f"{v}: hyper-gradient size vs the trial's eventual rank (association with config "
                                 f"quality, not the nudge's effect)")
        fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.045 * n_lines * 3.8 / fig.get_figheight()))
        _save(pdf, fig)


def eta_sensitivity(analysis: dict[str, Any], pdf: PdfPages) -> None:
    sweeps = analysis.get("eta_sweeps") or []
    if not sweeps:
        _text_page(pdf, "eta_h sensitivity", "no eta_h sweep in these results\n"
                   "(no warm-start setting was run with more than one eta_h)")
        return
    clock = {(t["experiment"], t["task"], t["scheduler"]): (t["clock"], t["budget"]) for t in analysis["tuples"]}
    for sw in sweeps:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
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
        a1.set_ylim(0, 1)
        a1.set_xlabel("eta_h (hyper-step size)")
        a1.set_ylabel("normalised AUC of best-so-far\n(median, IQR; 0-1, higher is better)")
        a1.legend(fontsize=8)
        a1.grid(alpha=0.3)
        ck, budget = clock.get((sw["experiment"], sw["task"], sw["scheduler"]), ("", math.nan))
        tm = np.array([x["median"] for x in sw["t_tau"]], dtype=float)
        fr = np.array([x["frac_reached"] for x in sw["t_tau"]], dtype=float)
        fin = np.isfinite(tm)
        a2.plot(eta[fin], tm[fin], marker="o", label="Kaplan-Meier median T@tau (as in the tables)")
        top = budget if np.isfinite(budget) else (np.nanmax(tm[fin]) * 1.1 if fin.any() else 1.0)
        for e, m, f in zip(eta, tm, fr):
            a2.annotate(f"{100 * f:.0f}% reached" + ("" if np.isfinite(m) else " (n.r.)"),
                        xy=(e, m if np.isfinite(m) else top), fontsize=7, ha="center", va="bottom")
        a2.set_xscale("log")
        a2.set_ylim(0, top * 1.08)
        a2.set_xlabel("eta_h (hyper-step size)")
        a2.set_ylabel(f"median T@tau ({clock_unit(ck)})")
        a2.legend(fontsize=8, loc="lower left")
        a2.grid(alpha=0.3)
        fig.suptitle(f"eta_h sensitivity: {sw['task']} / {sw['scheduler']} ({sw['experiment']})")
        fig.tight_layout()
        _save(pdf, fig)


def _log_ratio_axis(ax: Any, values: np.ndarray) -> None:
    """A log y-axis centred on 1, wide enough for every value, with plain tick labels."""
    v = values[np.isfinite(values) & (values > 0)]
    span = max(float(np.max(np.abs(np.log(v)))) if v.size else 0.0, math.log(1.25)) * 1.15
    ax.set_yscale("log")
    ax.set_ylim(math.exp(-span), math.exp(span))
    ticks = [t for t in (0.25, 0.5, 0.67, 0.8, 0.85, 1.0, 1.25, 1.5, 2.0, 4.0) if math.exp(-span) <= t <= math.exp(span)]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())


def transfer(analysis: dict[str, Any], pdf: PdfPages) -> None:
    """The default OHGW arm (one eta_h) across tasks: paired T@tau ratio and AUC gain against
    vanilla, each with its 95% bootstrap interval; ratios on a log axis centred on 1."""
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
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6, 0.9 * len(rows) + 2.5), 7), sharex=True)
    ratio = np.array([r["t_tau_ratio"] for r in rows], dtype=float)
    ci = np.array([r["t_tau_ratio_ci"] for r in rows], dtype=float).reshape(-1, 2)
    for i, r in enumerate(rows):
        c = fcol[r["family"]]
        if np.isfinite(ratio[i]):
            a1.errorbar([i], [ratio[i]], yerr=[[ratio[i] - ci[i, 0]], [ci[i, 1] - ratio[i]]], fmt="o", color=c, capsize=3)
        else:
            a1.annotate("n/a", xy=(i, 1.0), ha="center", va="bottom", fontsize=7)
    a1.axhline(1.0, color="black", linewidth=0.8)
    a1.axhline(1 - metrics.CRITERIA["t_tau_reduction"], color="grey", linestyle="--", linewidth=0.8,
               label=f"criterion ({1 - metrics.CRITERIA['t_tau_reduction']:.2f})")
    _log_ratio_axis(a1, np.concatenate([ratio, ci.ravel()]))
    a1.set_ylabel("paired median T@tau ratio vs none\n(95% bootstrap CI, log scale)")
    a1.legend(fontsize=8, loc="upper right")
    a1.grid(alpha=0.3, which="major")
    med = np.array([r["auc_gain"]["median"] for r in rows], dtype=float)
    lo = np.array([r["auc_gain"].get("ci_low", math.nan) for r in rows], dtype=float)
    hi = np.array([r["auc_gain"].get("ci_high", math.nan) for r in rows], dtype=float)
    for i, r in enumerate(rows):
        if np.isfinite(med[i]):
            err = [[med[i] - lo[i]], [hi[i] - med[i]]] if np.isfinite(lo[i]) else None
            a2.errorbar([i], [med[i]], yerr=err, fmt="o", color=fcol[r["family"]], capsize=3)
    a2.axhline(0, color="black", linewidth=0.8)
    lim = max(0.02, float(np.nanmax(np.abs(np.concatenate([med, lo, hi])))) * 1.15) if np.isfinite(med).any() else 0.05
    a2.set_ylim(-lim, lim)
    a2.set_ylabel("paired median AUC gain vs none\n(95% bootstrap CI; > 0 = better)")
    a2.set_xticks(x, [f"{r['task']}\n{r['scheduler']}" for r in rows], rotation=30, ha="right", fontsize=7)
    a2.set_xlabel("task / scheduler")
    a2.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=fcol[f], marker="o", linestyle="") for f in fams]
    a2.legend(handles, fams, title="task family", fontsize=8, title_fontsize=8, loc="upper right")
    fig.suptitle(f"zero-tuning transfer: {rows[0]['variant']} with eta_h = {tr['eta_h']:g} fixed across tasks")
    fig.tight_layout()
    _save(pdf, fig)


def step_length(analysis: dict[str, Any], pdf: PdfPages) -> None:
    """The step-length sweep: per tuple, each nudge's paired median T@tau ratio against none at each
    trust-region radius rho, with its 95% bootstrap interval (log axis centred on 1)."""
    sweeps = analysis.get("step_sweeps") or []
    if not sweeps:
        _text_page(pdf, "step-length sweep", "no step-length sweep in these results\n"
                   "(no nudge was run with the normalized step at two or more radii rho)")
        return
    panels: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for sw in sweeps:
        panels.setdefault((sw["experiment"], sw["task"], sw["scheduler"]), []).append(sw)
    nudges = sorted({sw["nudge"] for sw in sweeps})
    cmap = plt.get_cmap("tab10")
    col = {n: cmap(i % 10) for i, n in enumerate(nudges)}
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.5, 4.2 * len(panels) + 0.6), 4.0), squeeze=False)
    for ax, ((exp, task, sched), lines) in zip(axes[0], sorted(panels.items())):
        everything = []
        for k, sw in enumerate(lines):
            rho = np.asarray(sw["rho"], dtype=float) * (1.0 + 0.04 * (k - (len(lines) - 1) / 2))  # side by side
            med, lo, hi = (np.asarray(sw[key], dtype=float) for key in ("ratio", "ci_low", "ci_high"))
            fin = np.isfinite(med)
            ax.errorbar(rho[fin], med[fin], yerr=[med[fin] - lo[fin], hi[fin] - med[fin]], marker="o", capsize=3,
                        color=col[sw["nudge"]], label=f"{sw['nudge']} ({span(sw['pairs'])} pairs)")
            everything += [med, lo, hi]
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(1 - metrics.CRITERIA["t_tau_reduction"], color="grey", linestyle="--", linewidth=0.8,
                   label=f"criterion ({1 - metrics.CRITERIA['t_tau_reduction']:.2f})")
        _log_ratio_axis(ax, np.concatenate(everything))
        ax.set_yticks([t for t in ax.get_yticks() if t != 0.85], [f"{t:g}" for t in ax.get_yticks() if t != 0.85])
        ax.set_xscale("log")
        ticks = sorted({r for sw in lines for r in sw["rho"]})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("trust-region radius rho (unit cube)")
        ax.set_title(f"{task} / {sched}" + (f" ({exp})" if len({p[0] for p in panels}) > 1 else ""), fontsize=9)
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("paired median T@tau ratio vs none\n(95% bootstrap CI, log scale; < 1 = faster)")
    fig.suptitle("step-length sweep: T@tau bought by a normalized nudge of each length", fontsize=10)
    fig.tight_layout()
    _save(pdf, fig)


def write_all(analysis: dict[str, Any], folder: Path) -> list[Path]:
    """Write every figure kind to ``folder/<kind>.pdf`` and each of its pages as a PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    makers = {"t_tau": t_tau, "best_so_far": best_so_far, "best_so_far_test": best_so_far_test,
              "survival": survival, "hp_shift": hp_shift, "gradnorm_benefit": gradnorm_benefit,
              "eta_sensitivity": eta_sensitivity, "transfer": transfer, "step_length": step_length}
    written: list[Path] = []
    for name in FIGURES:
        path = folder / f"{name}.pdf"
        _PNG.update(stem=folder / name, page=0, written=[])
        with _pdf(path) as pdf:
            makers[name](analysis, pdf)
        written.append(path)
        written += _PNG["written"]
    _PNG.update(stem=None, page=0, written=[])
    return written
