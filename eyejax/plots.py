"""Figures and tables of evaluation results: Pareto fronts, per-layer energy breakdowns, Markdown.

Everything here takes pandas DataFrames as written by eyejax (``NetworkResult.network_totals`` /
``to_dataframe``, sweep parts) and writes PNG or Markdown. Figures are built with matplotlib's
object API (``matplotlib.figure.Figure``), never through pyplot: no display is needed and a
notebook's backend and open figures are left alone. Nothing prints.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

LEVELS = ("dram", "glb", "noc", "rf", "alu")
LEVEL_LABELS = {"dram": "DRAM", "glb": "GLB (buffer)", "noc": "NoC (array)", "rf": "RF (spads)",
                "alu": "ALU (MACs)"}
LEVEL_COLORS = {"dram": "#4c72b0", "glb": "#dd8452", "noc": "#55a868", "rf": "#c44e52",
                "alu": "#8172b3"}
DATA_TYPES = ("ifmap", "filter", "psum")
TYPE_COLORS = {"ifmap": "#64b5cd", "filter": "#ccb974", "psum": "#8c8c8c", "alu": "#8172b3"}
AXIS_LABELS = {"energy": "energy", "latency_ms": "latency (ms)", "sram_kb": "on-chip SRAM (kB)",
               "pe_count": "PEs", "edp": "energy x latency"}


def new_figure(nrows: int = 1, ncols: int = 1, figsize=(6.4, 4.8), layout="constrained", **kw):
    """(figure, axes array) without pyplot: the figure belongs to no backend or notebook and is
    saved with ``fig.savefig`` (PNG through Agg). Used by every eyejax figure."""
    from matplotlib.figure import Figure  # lazy: matplotlib is heavy and only figures need it

    fig = Figure(figsize=figsize, layout=layout)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


# --------------------------------------------------------------------------------------------------
# Pareto fronts


def pareto_mask(x, y) -> np.ndarray:
    """Non-dominated points when minimizing both x and y (NaNs never on the front). Among equal
    points only the first (lowest index) is kept."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    mask = np.zeros(len(x), dtype=bool)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return mask
    order = idx[np.lexsort((idx, y[idx], x[idx]))]
    ys = y[order]
    prev_min = np.concatenate([[np.inf], np.minimum.accumulate(ys)[:-1]])
    mask[order[ys < prev_min]] = True
    return mask


def pareto_front(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows of df on the (x, y) front, sorted by x."""
    if x not in df or y not in df:
        return df.iloc[:0]
    return df[pareto_mask(df[x], df[y])].sort_values([x, y], kind="stable")


def _log_if_wide(ax, v, which):
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) and v.max() / v.min() > 30:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")


def plot_pareto(points: pd.DataFrame, fronts: Mapping[tuple, pd.DataFrame], path,
                title: str = "", best: pd.Series | None = None, unit: str = "",
                num_configs: int | None = None, num_infeasible: int = 0) -> Path:
    """One panel per front: the feasible points of ``points`` (grey, a sample for large sweeps),
    the front (red, staircase) and the best configuration (star). ``fronts``: {(x, y): front rows}.
    ``num_infeasible`` configurations (of ``num_configs``) have a layer no mapping fits: they have
    no energy or latency, so they are not drawn, and the figure says how many there are."""
    items = [(k, f) for k, f in fronts.items() if len(f)]
    n = max(len(items), 1)
    fig, axes = new_figure(1, n, figsize=(5.2 * n, 4.6))
    for ax, ((x, y), front) in zip(axes[0], items):
        if x in points and y in points:
            shown = (f"feasible configurations ({len(points):,})" if num_configs is None
                     or len(points) >= num_configs - num_infeasible
                     else f"feasible configurations (a sample of {len(points):,})")
            ax.scatter(points[x], points[y], s=6, c="0.72", lw=0, label=shown, rasterized=True)
        f = front.sort_values(x)
        ax.step(f[x], f[y], where="post", color="#c44e52", lw=1.2)
        ax.scatter(f[x], f[y], s=22, color="#c44e52", zorder=3, label=f"Pareto front ({len(f)})")
        if best is not None and x in best and y in best:
            ax.scatter([best[x]], [best[y]], marker="*", s=180, color="#f2b701", edgecolor="k",
                       zorder=4, label=f"best (config {int(best['config_id'])})")
        _log_if_wide(ax, points[x] if x in points else f[x], "x")
        _log_if_wide(ax, points[y] if y in points else f[y], "y")
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(AXIS_LABELS.get(y, y) + (f" [{unit}]" if y == "energy" and unit else ""))
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
        ax.set_title(f"{AXIS_LABELS.get(y, y)} vs {AXIS_LABELS.get(x, x)}", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    if num_infeasible:
        total = f" of {num_configs:,}" if num_configs is not None else ""
        verb = "is" if num_infeasible == 1 else "are"
        fig.supxlabel(f"not drawn: {num_infeasible:,}{total} configurations {verb} infeasible (a "
                      f"layer has no mapping that fits), so they have no energy or latency",
                      fontsize=8, color="#a03030")
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------------------------------
# per-layer energy breakdown (as in the Eyeriss papers' per-layer figures)


def plot_breakdown(layers: pd.DataFrame, path, title: str = "", unit: str = "") -> Path:
    """Stacked bars per layer of one configuration: energy by level (DRAM, GLB, NoC, RF, ALU) and
    by data type (ifmap, filter, psum, plus the MACs). ``layers``: per-layer rows of one config."""
    names = list(layers["layer"].astype(str))
    L = len(names)
    xs = np.arange(L)
    width = max(8.0, min(0.28 * L + 3.0, 24.0)) + 1.6  # + the legends' column at the right
    fig, axes = new_figure(2, 1, figsize=(width, 7.2), sharex=True)
    axes = axes[:, 0]
    scale, suffix = _energy_scale(layers["energy"].max() if "energy" in layers else 1.0)
    for ax, parts, colors, labels, what in (
            (axes[0], [f"energy_{lv}" for lv in LEVELS], [LEVEL_COLORS[lv] for lv in LEVELS],
             [LEVEL_LABELS[lv] for lv in LEVELS], "by level"),
            (axes[1], [f"energy_{dt}" for dt in DATA_TYPES] + ["energy_alu"],
             [TYPE_COLORS[dt] for dt in DATA_TYPES] + [TYPE_COLORS["alu"]],
             list(DATA_TYPES) + ["ALU (MACs)"], "by data type")):
        bottom = np.zeros(L)
        for col, color, label in zip(parts, colors, labels):
            if col not in layers:
                continue
            v = layers[col].to_numpy(dtype=float) / scale
            ax.bar(xs, v, 0.75, bottom=bottom, color=color, label=label, edgecolor="none")
            bottom += v
        ax.set_ylabel(f"energy{suffix}" + (f" [{unit}]" if unit else ""))
        ax.set_title(f"per-layer energy {what}", fontsize=10, loc="left")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0)
        ax.grid(axis="y", alpha=0.3, lw=0.5)
    axes[1].set_xticks(xs)
    axes[1].set_xticklabels(names, rotation=90 if L > 8 else 0, fontsize=7 if L > 20 else 8)
    axes[1].set_xlim(-0.6, L - 0.4)
    if title:
        wrapped = "\n".join(textwrap.fill(t, width=int(width * 11)) for t in title.split("\n"))
        fig.suptitle(wrapped, fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def _energy_scale(vmax) -> tuple[float, str]:
    try:
        vmax = float(vmax)
    except (TypeError, ValueError):
        return 1.0, ""
    if not math.isfinite(vmax) or vmax <= 0:
        return 1.0, ""
    e = int(math.floor(math.log10(vmax) / 3) * 3)
    return (10.0 ** e, f" (x1e{e})") if e else (1.0, "")


# --------------------------------------------------------------------------------------------------
# Markdown


def _cell(v, floatfmt: str, whole: bool = True) -> str:
    """One table cell; `whole`: the column's floats are all whole numbers (written 1,234)."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "-"
        if whole and float(v).is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return format(float(v), floatfmt)
    return str(v).replace("|", "\\|")


def _whole_column(values) -> bool:
    """A column is written as whole numbers only if every finite float in it is one, so one
    column never mixes 22,290,956,718 with 2.2293e+10."""
    floats = [float(v) for v in values if isinstance(v, (float, np.floating)) and math.isfinite(v)]
    return all(f.is_integer() and abs(f) < 1e15 for f in floats)


def markdown_table(df: pd.DataFrame, columns: Iterable[str] | None = None,
                   floatfmt: str = ".5g") -> str:
    """A GitHub-flavoured Markdown table of df (no index)."""
    cols = [c for c in (columns or df.columns) if c in df]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    whole = [_whole_column(df[c].tolist()) for c in cols]
    for row in df[cols].itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, floatfmt, w) for v, w in zip(row, whole)) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["error_chart", "pareto_mask", "pareto_front", "plot_pareto", "plot_breakdown", "markdown_table",
           "new_figure"]


def error_chart(rows, outdir, name, title):
    """Published and modelled values side by side, one group of bars per row (log axis, since rows
    differ in scale), each labelled with its value; the model's bars also with model / published.
    ``rows``: (network, label, published, model, error %) or, for two model variants, (network,
    label, published, model A, error A %, model B, error B %) as in experiments/v2_scaling.py."""
    two = len(rows[0]) >= 7 if rows else False
    series = [("published", 2, "#7f7f7f")]
    series += ([("eyejax (v1 RS model)", 3, "#4c72b0"), ("eyejax (v1 + GIN bound)", 5, "#dd8452")]
               if two else [("eyejax", 3, "#4c72b0")])
    k = len(series)
    h = 0.8 / k
    fig, axes = new_figure(1, 1, figsize=(8.5, 0.2 * k * len(rows) + 1.4))
    ax = axes[0, 0]
    y = np.arange(len(rows))
    for j, (label, idx, color) in enumerate(series):
        vals = np.array([float(r[idx]) for r in rows])
        pos = y + (j - (k - 1) / 2) * h
        ax.barh(pos, vals, h, color=color, label=label)
        for yy, v, r in zip(pos, vals, rows):
            txt = f"{v:.3g}" + ("" if idx == 2 else f"  ({v / float(r[2]):.2g}x published)")
            ax.annotate(txt, (v, yy), textcoords="offset points", xytext=(3, 0), va="center",
                        fontsize=6)
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r[0]}: {r[1]}" + (" PEs" if isinstance(r[1], (int, np.integer)) else "")
                        for r in rows], fontsize=7)
    ax.invert_yaxis()
    lo = min(float(r[i]) for r in rows for _, i, _ in series)
    hi = max(float(r[i]) for r in rows for _, i, _ in series)
    ax.set_xlim(lo / 2, hi * 12)  # room for the labels
    ax.set_xlabel("value (log scale; each row in its own unit)")
    ax.set_title(title, fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=k, fontsize=7)
    ax.grid(axis="x", which="both", alpha=0.3, lw=0.5)
    fig.savefig(Path(outdir) / name, dpi=110)
    return name
