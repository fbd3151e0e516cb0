"""Eyeriss v2 over Eyeriss v1 speed-up as the PE count scales: the model against JETCAS19.

    python experiments/v2_scaling.py [--markdown report.md]

Published (shared/reference/eyeriss.md §3; JETCAS19 / arXiv 1807.07928 abstract, seed 003 slide):
speed-up of v2 over v1 at 256, 1024 and 16384 PEs for AlexNet, GoogLeNet and MobileNet (1.0, 224);
dense, batch 1, 1 MAC/cycle/PE, unlimited off-chip bandwidth, both with their best mapping.

Setup: v2 = `scaled_v2(grid, 4, macs_per_pe=1)` (4×4-PE clusters in a 4×4, 8×8 or 32×32 grid; other
fields at the v2 defaults, so the GLB and the routers grow with the cluster count), v1 =
`scaled_v1(side)` (16×16, 32×32, 128×128 PEs; other fields at the v1 defaults: the 108 kB GLB,
its 8 kB filter buffer included, and the GIN buses do not grow). Both: off-chip bandwidth
unlimited, every layer's mapping chosen for
latency, whole networks (CONV + FC), batch 1, all densities 1. Speed-up = v1 cycles / v2 cycles
(same clock).

Also checked: JETCAS19's qualitative findings (`findings_rows`): v2 near-linear from 256 to 1024
PEs, above 85% of linear at 16384 (cycles at 256 PEs over cycles at 16384, divided by 64), and v1's
FC and depthwise layers gaining nothing from 256 to 16384 PEs (at most 10% faster).

Two v1 columns:
* "v1 RS model": the v1 contract as is (docs/rs_model.md): compute + ramp + DRAM, no NoC limit.
* "v1 + GIN bound" (this script only, not part of the v1 contract): the v1 global input networks
  move one bus word per cycle per data type, multicast to every PE whose ID matches (JSSC17;
  eyeriss.md §2: filter and psum buses 64 b, ifmap 16 b); a layer then takes at least
  max(GLB ifmap reads × 16 / ifmap_bus_bits, DRAM filter reads × 16 / filter_bus_bits,
  GLB psum reads + writes × 16 / psum_bus_bits) cycles. This is Eyexam's step 6 (bandwidth) for v1,
  and the reason JETCAS19 gives for v1 not scaling: its flat multicast NoC does not grow with the
  array.
"""
from __future__ import annotations

import argparse

import numpy as np

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v2 import scaled_v1, scaled_v2
from eyejax.dataflow.rs import RSSearchSpace
from eyejax.arch.dram import UNLIMITED_DRAM
from eyejax.dataflow.rs_plus import RSPlusSearchSpace
from eyejax.evaluate import evaluate
from eyejax.workload import get_network
from eyejax.workload.layer import LayerType

PES = (256, 1024, 16384)
V2_GRID = {256: 4, 1024: 8, 16384: 32}     # 4x4-PE clusters
V1_SIDE = {256: 16, 1024: 32, 16384: 128}
NETWORKS = {"AlexNet": "alexnet", "GoogLeNet": "googlenet", "MobileNet (1.0, 224)": "mobilenet_v1"}
PUBLISHED = {
    "AlexNet": (17.9, 71.5, 1086.7),
    "GoogLeNet": (10.4, 37.8, 448.8),
    "MobileNet (1.0, 224)": (15.7, 57.9, 873.0),
}
OBJECTIVE = "latency"
# Large arrays need more parallel sets than the default grids offer: more channel sets (r), and
# one filter / one channel per PE (p = 1, q = 1) so that more filter and channel sets exist.
V2_SPACE = RSPlusSearchSpace(r_options=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                             q_splits=(1, 2, 4, 1 << 30), p_splits=(1, 2, 4, 1 << 30))
V1_SPACE = RSSearchSpace(r_options=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                         q_splits=(1, 2, 4, 1 << 30), p_splits=(1, 2, 4, 1 << 30))


def v1_gin_cycles(arr, a) -> np.ndarray:
    """Per-layer lower bound of v1's cycles from its GIN bus bandwidth (module docstring)."""
    w = a.word_bits
    ifm = arr["glb_ifmap_reads"][0] * w / a.ifmap_bus_bits
    flt = arr["dram_filter_reads"][0] * w / a.filter_bus_bits
    psm = (arr["glb_psum_reads"][0] + arr["glb_psum_writes"][0]) * w / a.psum_bus_bits
    return np.ceil(np.maximum(np.maximum(ifm, flt), psm))


def layer_kinds(net) -> np.ndarray:
    """Per layer: "fc", "depthwise" (one channel per group) or "conv"."""
    return np.array(["fc" if l.type == LayerType.FC
                     else "depthwise" if l.groups > 1 and l.C == l.groups else "conv"
                     for l in net.layers])


# JETCAS19's qualitative findings (eyeriss.md §3 and issue 11): (label, test on one network's figures)
FINDINGS = (
    ("v2 near-linear from 256 to 1024 PEs (at least 85% of 4x)",
     lambda f: f[256]["v2_cycles"] / f[1024]["v2_cycles"] / 4.0, 0.85),
    ("v2 above 85% of linear at 16384 PEs (from 256)",
     lambda f: f[256]["v2_cycles"] / f[16384]["v2_cycles"] / 64.0, 0.85),
)
V1_FLAT = 1.10   # "gains nothing": at most 10% faster with 64x the PEs


def findings_rows(figures: dict) -> list:
    """(finding, network, model value, holds) for each qualitative finding and network."""
    rows = []
    for label, per in figures.items():
        for text, value, need in FINDINGS:
            v = value(per)
            rows.append((text, label, f"{v:.0%} of linear", bool(v >= need)))
        for kind in ("fc", "depthwise"):
            a, b = per[256][f"v1_{kind}_cycles"], per[16384][f"v1_{kind}_cycles"]
            if a > 0:
                gain = a / b
                rows.append((f"v1 {'FC' if kind == 'fc' else 'depthwise'} layers gain nothing from "
                             "256 to 16384 PEs", label, f"{gain:.2f}x faster", bool(gain <= V1_FLAT)))
    return rows


def findings_markdown(rows) -> str:
    out = ["| finding (JETCAS19) | network | model | holds |", "|---|---|---|---|"]
    out += [f"| {t} | {n} | {v} | {'yes' if ok else 'NO'} |" for t, n, v, ok in rows]
    return "\n".join(out)


def _layer_cycles(arr) -> np.ndarray:
    """Per-layer cycles, +inf where the layer has no feasible mapping."""
    return np.where(arr["feasible"][0], np.asarray(arr["cycles"][0], np.float64), np.inf)


def model_speedups(name: str) -> dict:
    """Per PE count: v1/v2 speed-ups (RS model and GIN-bound v1) and utilizations.

    A mapping of a smaller array is a mapping of a larger one (more sets, same or larger buffers;
    on v2 the same slots in the same clusters), but the static candidate grids cannot always choose
    to leave PEs idle (the sets left over go to t), so each layer takes the best of the array sizes
    up to the one evaluated (this matters for v1 AlexNet CONV1 on 128x128, which has no feasible
    grid mapping, and for layers too small to use a 16384-PE array)."""
    net = get_network(name, batch=1)
    out = {}
    best2 = best1 = best1g = None
    macs = float(net.macs)
    kinds = layer_kinds(net)
    for pes in PES:
        a2 = scaled_v2(V2_GRID[pes], 4, macs_per_pe=1, **UNLIMITED_DRAM)
        a1 = scaled_v1(V1_SIDE[pes], **UNLIMITED_DRAM)
        r2 = evaluate(a2, net, objective=OBJECTIVE, space=V2_SPACE).arrays()
        r1 = evaluate(a1, net, objective=OBJECTIVE, space=V1_SPACE).arrays()
        c2, c1 = _layer_cycles(r2), _layer_cycles(r1)
        busy1 = np.asarray(r1["compute_cycles"][0] + r1["ramp_cycles"][0], np.float64)
        g1 = np.maximum(busy1, v1_gin_cycles(r1, a1)) + r1["dram_cycles"][0]
        g1 = np.where(r1["feasible"][0], g1, np.inf)
        best2 = c2 if best2 is None else np.minimum(best2, c2)
        best1 = c1 if best1 is None else np.minimum(best1, c1)
        best1g = g1 if best1g is None else np.minimum(best1g, g1)
        t2, t1, t1g = best2.sum(), best1.sum(), best1g.sum()
        out[pes] = {"rs": t1 / t2, "gin": t1g / t2,
                    "v2_util": macs / t2 / pes, "v1_util": macs / t1 / pes,
                    "feasible": bool(np.isfinite(t2) and np.isfinite(t1)),
                    "v2_cycles": t2,
                    "v1_fc_cycles": float(best1[kinds == "fc"].sum()),
                    "v1_depthwise_cycles": float(best1[kinds == "depthwise"].sum()),
                    "v2_infeasible_here": int(np.sum(~r2["feasible"][0])),
                    "v1_infeasible_here": int(np.sum(~r1["feasible"][0]))}
    return out


def comparison_rows(figures: dict | None = None):
    """(network, PEs, published, eyejax (v1 RS model), error %, eyejax (v1 + GIN bound), error %)."""
    figures = figures or {label: model_speedups(name) for label, name in NETWORKS.items()}
    rows = []
    for label, pub in PUBLISHED.items():
        for pes, ref in zip(PES, pub):
            f = figures[label][pes]
            rows.append((label, pes, ref, f["rs"], (f["rs"] - ref) / ref * 100.0,
                         f["gin"], (f["gin"] - ref) / ref * 100.0))
    return rows


def markdown(rows, figures=None) -> str:
    out = ["| network | PEs | published v2/v1 | eyejax (v1 RS model) | error | eyejax (v1 + GIN bound) | error |",
           "|---|---|---|---|---|---|---|"]
    for label, pes, ref, rs_, e1, gin, e2 in rows:
        out.append(f"| {label} | {pes} | {ref:g}x | {rs_:.3g}x | {e1:+.1f}% | {gin:.4g}x | {e2:+.1f}% |")
    if figures:
        out += ["", "| network | PEs | v2 MAC utilization | v1 MAC utilization (RS model) | "
                "layers without a grid mapping at this size (v2, v1) |", "|---|---|---|---|---|"]
        for label, per in figures.items():
            for pes, f in per.items():
                out.append(f"| {label} | {pes} | {f['v2_util']:.3f} | {f['v1_util']:.3f} | "
                           f"{f['v2_infeasible_here']}, {f['v1_infeasible_here']} |")
    return "\n".join(out)


def report_section(outdir: str, reduced: bool) -> str:
    """The section `eyejax report` writes: the ratios side by side, their chart, and whether the
    paper's qualitative findings hold in the model."""
    title = "Scaling: Eyeriss v2 over v1 speed-up"
    if reduced:
        return f"## {title}\n\n(`python experiments/v2_scaling.py`; skipped in the reduced run.)\n"
    from eyejax.plots import error_chart

    figures = {label: model_speedups(name) for label, name in NETWORKS.items()}
    rows = comparison_rows(figures)
    fig = error_chart(rows, outdir, "v2_scaling.png", title)
    return "\n".join([f"## {title}", "", "`python experiments/v2_scaling.py` (assumptions in its "
                      "docstring).", "", markdown(rows), "", f"![{title}]({fig})", "",
                      "The paper's qualitative findings in the model (v2 cycles across PE counts; "
                      "v1 cycles of the FC and depthwise layers, 256 against 16384 PEs):", "",
                      findings_markdown(findings_rows(figures)), ""])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markdown", help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    figures = {label: model_speedups(name) for label, name in NETWORKS.items()}
    table = markdown(comparison_rows(figures), figures) + "\n\n" + findings_markdown(findings_rows(figures))
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
