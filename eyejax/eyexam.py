"""Eyexam: seven nested performance bounds per layer and design (eyeriss.md §4; arXiv 1807.07928).

Each step tightens an upper bound on a layer's throughput (MACs per cycle) by one more constraint, so
each loss can be attributed. Every bound is computed from the model's own quantities, steps are
running minima (each is at most the previous one by construction), and the last one is exactly the
model's throughput, macs / cycles. For a layer with MACs total work, P MAC units, and the dataflow's
logical parallelism D (how many PEs it could keep busy with unbounded PEs, each on an indivisible
unit of MACs / D MACs of work):

1. layer shape and size: every MAC in parallel (psums reduced spatially): MACs.
2. dataflow: D, the parallelism the dataflow exposes for this shape (RS: R·E PEs per 2-D conv ×
   Cg·Mg convs of one group; WS: one weight per PE; OS_A: one ofmap plane; ...; see `PARALLELISM`).
3. number of PEs: D / ceil(D / P): D units on P PEs take ceil(D/P) rounds (fragmentation).
4. physical array dimensions: MACs / T4, with T4 the fewest compute cycles of any mapping that fits
   the array's rows and columns, storage ignored (RS on v1: h×e sets on floor(rows/h)·floor(cols/e)
   slots, searched over every strip count and channel/filter split; the other dataflows: their own
   search grid without the storage checks), and never more than the chosen mapping's.
5. storage capacity: MACs / compute_cycles of the mapping the model chose under its RF/GLB limits
   (this also carries the objective's choice: an energy-optimal mapping may use fewer PEs).
6. average bandwidth: the DRAM roofline. Moving the layer's DRAM words (as moved, RLC included) at
   the DRAM bandwidth takes dram_cycles, so MACs / max(compute_cycles, dram_cycles) =
   min(compute bound, bandwidth × operational intensity). Where the model's cycles include NoC
   transfer time (RS+ on v2: its routers' port widths), that time joins the max.
7. varying access patterns and imbalance: MACs / cycles, the model's throughput: cycles add the
   per-pass ramp (fill/drain) and the DRAM transfers that do not overlap compute.

On v1 the GIN bandwidths (ifmap 16 b, filter 64 b, psum GIN/GON 64 b per cycle) are in step 6:
the RS model's passes stall on them (docs/rs_model.md "Time"), and step 6 uses the same words over
the same widths, summed over the layer. On the ISCA16 designs the NoC bound is only reported, as
`noc_bound`: their models' cycles do not stall on it. On Eyeriss v2, "MACs" are the MACs performed (non-zero pairs when
its PEs skip zeros), and step 4 loses nothing (RS+ has no physical-array search here; the
cluster's all-to-all network lets a set take any PEs of its cluster), so step 5 carries the loss.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from eyejax.arch import family_of
from eyejax.dataflow import cost, dataflow_for
from eyejax.dataflow.shape import layer_shape
from eyejax.evaluate import in_axes_of
from eyejax.plots import new_figure

STEPS = ("shape", "dataflow", "pes", "array", "storage", "bandwidth", "patterns")
STEP_TITLES = {
    "shape": "1 layer shape", "dataflow": "2 dataflow", "pes": "3 number of PEs",
    "array": "4 array dims", "storage": "5 storage", "bandwidth": "6 avg bandwidth",
    "patterns": "7 access patterns",
}


def dataflow_name(module) -> str:
    return getattr(module, "name", None) or module.__name__.rsplit(".", 1)[-1]


def _parts(module):
    """(parallelism(shape) per group, physical_min_compute(layer, arch) or None): the dataflow's
    own (eyejax.dataflow protocol); None (RS+: no physical-array search) means step 4 loses
    nothing."""
    return module.parallelism, module.physical_min_compute


def peak_macs(arch, B: int) -> np.ndarray:
    """MAC units of each configuration (PEs × MACs per PE)."""
    return family_of(arch).mac_units(arch, B)


def _noc_cycles(raw, arch, B):
    """Cycles to move each data type over its GLB->array bus (v1 and ISCA16 designs), else NaN."""
    if not all(hasattr(arch, k) for k in ("ifmap_bus_bits", "filter_bus_bits", "psum_bus_bits")):
        return np.full(np.shape(raw["macs"]), np.nan)
    bc = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), (B,))[:, None]
    wb = bc(arch.word_bits)
    ifm = raw["glb_ifmap_reads"] * wb / bc(arch.ifmap_bus_bits)
    fil = (raw["dram_filter_reads"] + raw["glb_filter_reads"]) * wb / bc(arch.filter_bus_bits)
    # psums come in over the psum GIN and leave over the GON, two networks of the same width
    # (JSSC17), so the larger direction bounds them
    ps = np.maximum(raw["glb_psum_reads"], raw["glb_psum_writes"]) * wb / bc(arch.psum_bus_bits)
    return np.maximum(np.maximum(ifm, fil), ps)


# ------------------------------------------------------------------------------------ the analysis
@functools.lru_cache(maxsize=32)
def _compiled(fn, axes_leaves, treedef):
    axes = jax.tree_util.tree_unflatten(treedef, axes_leaves)
    over_layers = jax.vmap(lambda l, a: fn(l, a), in_axes=(0, None))
    return jax.jit(jax.vmap(over_layers, in_axes=(None, axes)))


def _vmapped(fn, arch, layers):
    """fn(layer, arch) over every (configuration, layer): [B, L] (compiled once per fn and arch
    structure)."""
    leaves, treedef = jax.tree_util.tree_flatten(in_axes_of(arch), is_leaf=lambda x: x is None)
    return np.asarray(_compiled(fn, tuple(leaves), treedef)(layers, arch))


def bounds(result, dataflow: str | None = None) -> dict:
    """The seven bounds (MACs/cycle) of every (configuration, layer) of an evaluate() result.

    Returns a dict of float64 arrays [B, L]: one per name in STEPS, plus `peak` (MAC units),
    `parallelism` (D), `operational_intensity` (MACs per DRAM word moved), `dram_words_per_cycle`,
    `noc_bound`, `macs`, `feasible`. Infeasible layers get NaN bounds.
    """
    module = dataflow_for(result.arch, dataflow)
    par_fn, phys_fn = _parts(module)
    raw, arch, B = result.raw, result.arch, result.batch
    layers = result.network.arrays()
    L = layers.num_layers
    # Work = MACs actually performed: the dense count, or the non-zero MAC pairs where the design
    # skips zeros in time (Eyeriss v2's sparse PEs), so that no bound exceeds the MAC units.
    macs = np.asarray(raw.get("mac_pairs", raw["macs"]), dtype=np.float64)
    feasible = np.asarray(raw["feasible"], bool)
    comp = raw["compute_cycles"].astype(np.float64)
    dram = raw["dram_cycles"].astype(np.float64)
    cyc = raw["cycles"].astype(np.float64)
    # NoC transfer time where the model's cycles include it (RS+ on v2: busy = max(compute + ramp,
    # noc)); elsewhere the NoC bound is only reported (`noc_bound`).
    noc_keys = [k for k in ("noc_cycles_ifmap", "noc_cycles_filter", "noc_cycles_psum") if k in raw]
    noc_in_model = np.max([raw[k].astype(np.float64) for k in noc_keys], axis=0) if noc_keys \
        else np.zeros_like(comp)
    if "stall_cycles" in raw:
        # RS on v1: its passes stall on the GIN widths (docs/rs_model.md "Time"), so the same NoC
        # terms, summed over the layer, are the average-bandwidth bound of step 6
        noc_keys = ["gin"]
        noc_in_model = _noc_cycles(raw, arch, B)
    peak = peak_macs(arch, B)[:, None] * np.ones((1, L))

    shapes = layer_shape(layers, jnp.float64)
    D = np.broadcast_to(np.asarray(par_fn(shapes)), (B, L)).astype(np.float64)
    T4 = None if phys_fn is None else np.minimum(_vmapped(phys_fn, arch, layers),
                                                  comp)

    safe = lambda x: np.where(x > 0, x, np.nan)
    s = {}
    s["shape"] = macs
    s["dataflow"] = np.minimum(s["shape"], D)
    s["pes"] = np.minimum(s["dataflow"], D / np.ceil(D / peak))
    # no physical-array search for this dataflow: step 4 loses nothing, step 5 takes it all
    s["array"] = s["pes"] if T4 is None else np.minimum(s["pes"], macs / safe(T4))
    s["storage"] = np.minimum(s["array"], macs / safe(comp))
    s["bandwidth"] = np.minimum(s["storage"],
                                macs / safe(np.maximum(np.maximum(comp, dram), noc_in_model)))
    s["patterns"] = np.minimum(s["bandwidth"], macs / safe(cyc))
    for k in STEPS:
        s[k] = np.where(feasible, s[k], np.nan)

    words = _dram_words(result)
    out = dict(s)
    out.update({
        "peak": peak, "parallelism": D, "macs": macs, "feasible": feasible,
        "dram_words_per_cycle": np.where(dram > 0, words / safe(dram), np.nan),
        "operational_intensity": macs / safe(words),
        "noc_bound": macs / safe(noc_in_model if noc_keys else _noc_cycles(raw, arch, B)),
        "noc_in_model": bool(noc_keys),
        "dataflow_name": dataflow_name(module),
    })
    return out


def _dram_words(result) -> np.ndarray:
    """[B, L] DRAM words as moved (16-bit words; v2: data_bits-wide words from its DRAM bits)."""
    raw = result.raw
    if "dram_bits" in raw:
        bits = np.asarray(result.arch.data_bits, dtype=np.float64)   # dram_bits: RS+ on v2 only
        bits = np.broadcast_to(bits, (result.batch,))[:, None]
        return np.asarray(raw["dram_bits"], dtype=np.float64) / bits
    first = np.asarray(result.network.arrays().first)
    words = cost.dram_traffic_words(raw, result.sparsity, first)
    return np.asarray(sum(words), dtype=np.float64)


def limiting_step(b: dict) -> np.ndarray:
    """[B, L] name of the step with the largest loss. Steps 1-3 are first capped at the peak (a
    dataflow exposing more parallelism than there are PEs loses nothing), so the dataflow step's
    loss is peak / min(D, peak), the PE step's is the fragmentation, and each later step's is its
    ratio to the previous bound. "none" when nothing is lost."""
    peak = b["peak"]
    capped = [np.minimum(b[k], peak) if i < 3 else b[k] for i, k in enumerate(STEPS)]
    prev, nxt = np.stack(capped[:-1]), np.stack(capped[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.log(prev / nxt)
    loss = np.nan_to_num(loss, nan=-1.0)
    idx = np.argmax(loss, axis=0)
    names = np.asarray(STEPS[1:])[idx]
    return np.where(np.max(loss, axis=0) > 1e-9, names, "none")


def table(result, dataflow: str | None = None, config: int | None = None) -> pd.DataFrame:
    """One row per (config_id, layer): the seven bounds (MACs/cycle), each as a fraction of the
    peak too, the loss-leading step, operational intensity and the NoC bound."""
    b = bounds(result, dataflow)
    B, L = b["macs"].shape
    names = list(result.network.names)
    lim = limiting_step(b)
    cols = {"config_id": np.repeat(np.arange(B), L), "layer": np.tile(names, B),
            "dataflow": b["dataflow_name"], "peak": b["peak"].reshape(-1)}
    for k in STEPS:
        cols[k] = b[k].reshape(-1)
    for k in STEPS:
        cols[f"{k}_util"] = (b[k] / b["peak"]).reshape(-1)
    cols["limited_by"] = lim.reshape(-1)
    cols["operational_intensity"] = b["operational_intensity"].reshape(-1)
    cols["noc_bound"] = b["noc_bound"].reshape(-1)
    cols["feasible"] = b["feasible"].reshape(-1)
    df = pd.DataFrame(cols)
    if config is not None:
        df = df[df.config_id == config].reset_index(drop=True)
    return df


def markdown_table(df: pd.DataFrame) -> str:
    """The bounds as a Markdown table (MACs/cycle, 3 significant digits)."""
    head = ["layer", *[STEP_TITLES[k] for k in STEPS], "limited by", "MACs/DRAM word"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        vals = [f"{r[k]:.3g}" if np.isfinite(r[k]) else "-" for k in STEPS]
        oi = r["operational_intensity"]
        out.append("| " + " | ".join([str(r["layer"]), *vals, str(r["limited_by"]),
                                      f"{oi:.3g}" if np.isfinite(oi) else "-"]) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ figures
STEP_COLORS = {"shape": "#999999", "dataflow": "#8c564b", "pes": "#9467bd", "array": "#1f77b4",
               "storage": "#2ca02c", "bandwidth": "#ff7f0e", "patterns": "#d62728"}


def _new_axes(figsize):
    return new_figure(1, 1, figsize=figsize)[1][0, 0]


def _label_points(ax, xs, ys, names, fontsize=7, max_names=3, obstacles=()):
    """Labels for points without overprinting: layers at the same spot share one label
    ("CONV3, CONV4, CONV5"; more than max_names as "first +k"), and each label takes the first
    free place of a few around its point (a thin leader line when it moves away)."""
    ax.autoscale_view()
    if hasattr(ax.figure, "draw_without_rendering"):  # run the layout: final axes position
        ax.figure.draw_without_rendering()
    tr = ax.transData
    pts = tr.transform(np.column_stack([xs, ys]))
    groups: list[list[int]] = []
    for i, p in enumerate(pts):  # points within 6 px are one spot
        for g in groups:
            if np.hypot(*(pts[g[0]] - p)) < 6:
                g.append(i)
                break
        else:
            groups.append([i])
    char_w, line_h = 0.6 * fontsize * ax.figure.dpi / 72, 1.25 * fontsize * ax.figure.dpi / 72
    placed = [(p[0] - 4, p[1] - 4, p[0] + 4, p[1] + 4) for p in pts]  # keep off the markers
    for ox, oy in obstacles:  # e.g. the bound ticks: (x, y) data points, 14 x 4 px
        q = tr.transform([(ox, oy)])[0]
        if np.all(np.isfinite(q)):
            placed.append((q[0] - 7, q[1] - 2, q[0] + 7, q[1] + 2))
    frame = ax.bbox.extents  # labels stay inside the axes
    offsets = [(5, -12), (5, 5), (-5, 5), (-5, -12), (5, -26), (5, 19), (-5, 19), (-5, -26),
               (5, -40), (5, 33), (-5, -40), (-5, 33), (5, -54), (5, 47), (-5, -54), (-5, 47)]
    pt2px = ax.figure.dpi / 72
    for g in sorted(groups, key=lambda g: (pts[g[0]][0], -pts[g[0]][1])):
        ns = [str(names[i]) for i in g]
        text = ", ".join(ns) if len(ns) <= max_names else f"{', '.join(ns[:2])} +{len(ns) - 2}"
        w, h = len(text) * char_w, line_h
        x0, y0 = pts[g[0]]
        for dx, dy in offsets:
            left = x0 + dx * pt2px - (w if dx < 0 else 0)
            box = (left, y0 + dy * pt2px, left + w, y0 + dy * pt2px + h)
            inside = (box[0] >= frame[0] and box[2] <= frame[2] and box[1] >= frame[1]
                      and box[3] <= frame[3])
            if inside and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3]
                                  and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        far = abs(dy) > 12
        ann = ax.annotate(text, (xs[g[0]], ys[g[0]]), textcoords="offset points", xytext=(dx, dy),
                          fontsize=fontsize, ha="right" if dx < 0 else "left", va="bottom",
                          arrowprops=dict(arrowstyle="-", lw=0.4, color="0.5") if far else None)
        ann.set_in_layout(False)  # placed for the final layout; must not move it


def plot_roofline(b: dict, names, config: int = 0, ax=None, title: str | None = None):
    """Roofline: MACs/cycle vs MACs per DRAM word; the peak, the DRAM slope, and each layer's step
    bounds 3-7 stacked at its operational intensity (step 7 = the model's throughput). Layers at
    the same spot share a label; labels move aside instead of overprinting."""
    if ax is None:
        ax = _new_axes((7.5, 4.8))
    oi = b["operational_intensity"][config]
    peak = float(np.nanmax(b["peak"][config]))
    bw = float(b["dram_words_per_cycle"][config, 0])
    ok = np.isfinite(oi) & b["feasible"][config]
    xs = np.geomspace(max(np.nanmin(oi[ok]) / 3, 1e-2), np.nanmax(oi[ok]) * 3, 100) if ok.any() \
        else np.geomspace(0.1, 1e4, 100)
    ax.plot(xs, np.minimum(peak, bw * xs), "k-", lw=1.5, label=f"roofline (peak {peak:g}, "
                                                                  f"{bw:.3g} words/cycle)")
    for k, marker in (("pes", "_"), ("array", "_"), ("storage", "_"), ("bandwidth", "_"),
                      ("patterns", "o")):
        ax.scatter(oi[ok], b[k][config][ok], marker=marker, s=140 if marker == "_" else 30,
                   color=STEP_COLORS[k], label=f"bound {STEP_TITLES[k]}" if marker == "_"
                   else f"{STEP_TITLES[k]} = model throughput", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (MACs per DRAM word)")
    ax.set_ylabel("MACs / cycle")
    ax.set_title(title or "Eyexam roofline")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if ok.any():
        ticks = [(x, y) for k in ("pes", "array", "storage", "bandwidth")
                 for x, y in zip(oi[ok], b[k][config][ok])]
        _label_points(ax, oi[ok], b["patterns"][config][ok], np.asarray(names)[ok],
                      obstacles=ticks)
    return ax


def plot_waterfall(b: dict, names, config: int = 0, ax=None, title: str | None = None):
    """Per-layer waterfall on a log axis: a black tick at the model's throughput (step 7) and,
    above it, one floating segment per step 7..4 from its bound up to the previous step's bound
    (the throughput that step loses), ending at the PE-count bound (step 3). Every segment starts
    and ends at a bound, none at the axis. The dataflow bound (step 2) is a marker where it lies
    inside the plot; legend entries only for what is drawn."""
    L = len(names)
    if ax is None:
        ax = _new_axes((max(6.5, 0.45 * L + 3.5), 4.5))
    x = np.arange(L)
    order = ("patterns", "bandwidth", "storage", "array", "pes")
    model = np.asarray(b["patterns"][config], dtype=float)
    model = np.where(model > 0, model, np.nan)
    peak = float(np.nanmax(b["peak"][config]))
    for below, k in zip(order[:-1], order[1:]):
        top = np.asarray(b[k][config], dtype=float)
        lowv = np.asarray(b[below][config], dtype=float)
        h = top - lowv
        drawn = np.isfinite(h) & (h > 1e-9 * np.maximum(np.abs(top), 1))
        if drawn.any():
            ax.bar(x[drawn], h[drawn], bottom=lowv[drawn], color=STEP_COLORS[below], width=0.7,
                   label=f"lost at {STEP_TITLES[below]}")
    ax.scatter(x, model, marker="_", s=420, linewidths=2.5, color="k", zorder=4,
               label="model throughput (step 7)")
    ax.axhline(peak, color="k", lw=1, ls="--", label=f"peak ({peak:g})")
    ax.set_yscale("log")
    lo = np.nanmin(model) if np.isfinite(model).any() else 1e-3
    ymin, ymax = max(lo / 2, 1e-3), peak * 3
    df = np.asarray(b["dataflow"][config], dtype=float)
    inside = np.isfinite(df) & (df <= ymax) & (df >= ymin)
    if inside.any():
        ax.scatter(x[inside], df[inside], marker="v", color=STEP_COLORS["dataflow"], zorder=3,
                   label="bound 2 dataflow")
    n_above = int(np.sum(np.isfinite(df) & (df > ymax)))
    ax.set_ylim(ymin, ymax)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("MACs / cycle (log)")
    ax.set_title(title or "Eyexam waterfall (losses per step)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              title=(f"dataflow bound above the plot\nfor {n_above} of {L} layers" if n_above
                     else None), title_fontsize=6)
    return ax
