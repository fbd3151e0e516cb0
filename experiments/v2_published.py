"""Eyeriss v2: the RS+ model against the published JETCAS19 results (batch 1, 200 MHz).

    python experiments/v2_published.py [--markdown report.md]

Published (shared/reference/eyeriss.md §3, seed 000): AlexNet, sparse AlexNet, MobileNet (width 0.5,
128×128) and sparse MobileNet: inference/s, inference/J, GOPS/W, DRAM MB and PE utilization.

Setup and assumptions (the papers do not give them in our reference):
* Architecture: `EyerissV2()` defaults (8×2 clusters of 3×4 PEs, 2 MAC datapaths, 8-b data, 20-b
  psums) with the 65 nm pJ table (`PJ_65NM`; hop = noc). Off-chip bandwidth unlimited
  (`eyejax.arch.dram.UNLIMITED_DRAM`, the `EyerissV2` default): JETCAS19 evaluated the chip with an
  off-chip interface that is not the bottleneck (eyeriss.md §3).
* Mappings: each layer's best RS+ mapping for energy × delay (`objective="edp"`).
* Whole networks at batch 1: AlexNet CONV1-5 + FC6-8 as Eyeriss ran it (CONV2/4/5 in 2 groups;
  724.4 M MACs, the published nominal count), MobileNet 0.5/128 (28 layers, 49.2 M MACs).
* Dense rows: all densities 1 (dense mode: no zero skipping, plain 8-b words). The chip ran them
  on real images, and the published AlexNet rate is above what any zero-free schedule reaches
  (`zero_free_bound`), so `relu_probe` also reports them with the sparse rows' activation zeros.
* Sparse AlexNet: the published model was pruned with energy-aware pruning (CVPR17) and cannot be
  downloaded. Rule used instead: magnitude pruning as reported for AlexNet by Han et al., NeurIPS
  2015 (shared/reference/seeds/003, "Weight Reduction: CONV layers 2.7x, FC layers 9.9x; Overall:
  Weights 9x"): weight density 1/2.7 in every CONV layer and 1/9.9 in every FC layer.
* Sparse MobileNet: no pruning statistics are published; ASSUMED weight density 0.5 in the 1×1 (and
  FC) layers and 1.0 in the first and the depthwise layers (3×3×1 filters have little to prune).
* Activations of the sparse rows: ASSUMED post-ReLU density 0.5 for every layer input but the image
  (density 1), as in experiments/v1_published.py; ofmaps written to DRAM with the next layer's
  input density. Zeros are i.i.d. (the model's expectations).
* inference/J is the chip's energy (everything but DRAM): the published figures are chip-level
  (their GOPS/W = 2 × MACs × inference/J, the same relation), and 71.9 MB of DRAM traffic at the
  table's 20 pJ/bit would alone exceed the published AlexNet energy per inference. Chip energy =
  data movement + MACs + clock network, control and leakage per cycle (`eyejax.dataflow.cost.overhead_energy` with
  `eyeriss_v2.V2_CHIP_PJ`, calibrated on the two dense rows; see there). The detail table keeps the
  movement + MAC figure beside it.
* Eyeriss v1 on the same network (`v1_same_network`): JETCAS19's "12.6x faster, 2.5x more energy
  efficient than Eyeriss v1" for sparse MobileNet implies v1's figures; the v1 model is held
  against them (v1 as built, pJ table, chip energy; off-chip interface ASSUMED not the bottleneck,
  the chip's 64-b 60 MHz link beside it).
* Utilization: time-weighted fraction of active PEs (Σ cycles·active_pes / Σ cycles / 192); the
  MAC-datapath utilization (MACs / (cycles · 384)) is printed in the detail table.
"""
from __future__ import annotations

import argparse

import numpy as np

import eyejax  # noqa: F401
from eyejax.arch.energy import PJ_65NM
from eyejax.arch.dram import DRAM_PRESETS, UNLIMITED_DRAM
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.workload import get_network

PUBLISHED = {
    "AlexNet": {"ips": 102.1, "ipj": 174.8, "gopsw": 253.2, "dram_mb": 71.9, "util": 1.00},
    "sparse AlexNet": {"ips": 278.7, "ipj": 664.6, "gopsw": 962.9, "dram_mb": 22.3, "util": 1.00},
    "MobileNet": {"ips": 1282.1, "ipj": 1969.8, "gopsw": 193.7, "dram_mb": 4.1, "util": 0.915},
    "sparse MobileNet": {"ips": 1470.6, "ipj": 2560.3, "gopsw": 251.7, "dram_mb": 3.9, "util": 0.915},
}
NETWORK = {"AlexNet": "alexnet", "sparse AlexNet": "alexnet", "MobileNet": "mobilenet_v1_0.5_128",
           "sparse MobileNet": "mobilenet_v1_0.5_128"}
LABELS = {"ips": "inference/s", "ipj": "inference/J (chip)", "gopsw": "GOPS/W", "dram_mb": "DRAM MB",
          "util": "PE utilization"}
ACT_DENSITY = 0.5
CONV_WEIGHT_DENSITY = 1 / 2.7      # Han et al. 2015 via seed 003: CONV weights 2.7x fewer
FC_WEIGHT_DENSITY = 1 / 9.9        # FC weights 9.9x fewer
MOBILENET_PW_WEIGHT_DENSITY = 0.5  # assumption (no published statistics)
OBJECTIVE = "edp"


def sparsity_for(row: str, net, relu_zeros: bool = False) -> Sparsity:
    """The row's densities; `relu_zeros` gives a dense (unpruned) row the sparse rows' activation
    assumption (a probe, `relu_probe`; the comparison keeps dense rows zero-free)."""
    L = len(net.layers)
    sparse = row.startswith("sparse")
    if not (sparse or relu_zeros):
        return Sparsity.dense(L)
    types = [l.type.value for l in net.layers]
    if not sparse:
        w = [1.0] * L
    elif "AlexNet" in row:
        w = [FC_WEIGHT_DENSITY if t == "FC" else CONV_WEIGHT_DENSITY for t in types]
    else:
        w = [1.0 if (i == 0 or t == "DWCONV") else MOBILENET_PW_WEIGHT_DENSITY
             for i, t in enumerate(types)]
    iact = [1.0] + [ACT_DENSITY] * (L - 1)
    return Sparsity.from_densities(L, iact=iact, weight=w, ofmap=[ACT_DENSITY] * L)


# JETCAS19 (eyeriss.md §3): with a 25,600 MB/s off-chip interface throughput drops by this much
PUBLISHED_DDR4_DROP = {"sparse AlexNet": 0.16, "sparse MobileNet": 0.24}


def arch(dram: str | None = None):
    return EyerissV2(energy=PJ_65NM, **(DRAM_PRESETS[dram] if dram else UNLIMITED_DRAM))


def model_figures(row: str, ddr4: bool = True, search: str = "fast", relu_zeros: bool = False) -> dict:
    """The model's figures for one published row; `search`: the mapping search (fast: the grid,
    what the comparison uses; exact: the model's own optimum, README "Mapping search");
    `relu_zeros`: see `sparsity_for`."""
    net = get_network(NETWORK[row], batch=1)
    sp = sparsity_for(row, net, relu_zeros)
    a = arch()
    res = evaluate(a, net, sp, objective=OBJECTIVE, space=search)
    arr = res.arrays()
    cycles = np.asarray(arr["cycles"][0], np.float64)
    movement_pj = float(np.sum(arr["energy_movement"][0]) - np.sum(arr["energy_dram"][0]))
    macs = float(net.macs)
    pes = a.cluster_rows * a.cluster_cols * a.cluster_pe_rows * a.cluster_pe_cols
    ips, ipj = chip_rates(arr, a.clock_mhz)
    out = {
        "ips": ips,
        "ipj": ipj,
        "gopsw": 2 * macs * ipj / 1e9,
        "dram_mb": float(np.sum(arr["dram_bits"][0])) / 8 / 1e6,
        "util": float(np.sum(cycles * arr["active_pes"][0]) / cycles.sum() / pes),
        "mac_util": float(arr["macs"][0].sum() / cycles.sum() / (pes * a.macs_per_pe)),
        "ipj_with_dram": 1e12 / float(np.sum(arr["energy"][0])),
        "ipj_movement": 1e12 / movement_pj,
        "clock_share": float(np.sum(arr["energy_clock"][0]) + np.sum(arr["energy_leakage"][0])) * ipj / 1e12,
        "feasible": bool(np.all(arr["feasible"][0])),
        "cycles_split": cycle_split(arr, pes, a.macs_per_pe),
    }
    if ddr4:   # the same network behind DDR4-3200 (25.6 GB/s)
        slow = evaluate(arch("ddr4_3200"), net, sp, objective=OBJECTIVE).arrays()
        out["ddr4_drop"] = 1.0 - cycles.sum() / float(np.sum(slow["cycles"][0]))
    return out


def chip_rates(arr, clock_mhz) -> tuple[float, float]:
    """(inferences/s, inferences/J) of one configuration's network: its cycles at the clock, and
    the chip's energy (everything but DRAM)."""
    cycles = float(np.sum(np.asarray(arr["cycles"][0], np.float64)))
    chip_pj = float(np.sum(arr["energy"][0]) - np.sum(arr["energy_dram"][0]))
    return clock_mhz * 1e6 / cycles, 1e12 / chip_pj


def cycle_split(arr, pes, macs_per_pe) -> dict:
    """Where the cycles go, summed over layers (each term in cycles; they add up to the total):
    peak (every MAC datapath busy), PE fill (active PEs < all), tiling (strip, filter-chunk and
    channel-chunk remainders and odd SIMD pairs: compute beyond the active PEs' peak; with zero
    skipping, sparse compute against the dense MAC count, hence negative), ramp (weight spad fill,
    pipeline fill, psum chain per pass), NoC (router bandwidth bound beyond compute + ramp), DRAM."""
    f = lambda k: np.asarray(arr[k][0], np.float64)
    macs, act, comp, ramp = f("macs"), f("active_pes"), f("compute_cycles"), f("ramp_cycles")
    peak = macs / (pes * macs_per_pe)
    at_active = macs / (np.maximum(act, 1) * macs_per_pe)
    busy = f("cycles") - f("dram_cycles")
    split = {"peak": peak, "PE fill": at_active - peak, "tiling": comp - at_active, "ramp": ramp,
             "NoC": busy - comp - ramp, "DRAM": f("dram_cycles")}
    return {k: float(v.sum()) for k, v in split.items()}


def comparison_rows(figures: dict | None = None):
    """(row, metric, published, eyejax, error %) for every published number."""
    figures = figures or {row: model_figures(row) for row in PUBLISHED}
    rows = []
    for row, pub in PUBLISHED.items():
        got = figures[row]
        for key, ref in pub.items():
            rows.append((row, LABELS[key], ref, got[key], (got[key] - ref) / ref * 100.0))
    return rows


def markdown(rows, figures=None) -> str:
    out = ["| network | metric | published | eyejax | error |", "|---|---|---|---|---|"]
    for name, label, ref, got, err in rows:
        out.append(f"| {name} | {label} | {ref:g} | {got:.4g} | {err:+.1f}% |")
    if figures:
        out += ["", "| network | MAC-datapath utilization | inference/J, movement + MACs only | "
                "clock, control, leakage share of chip energy | inference/J incl. DRAM | "
                "throughput drop at DDR4-3200 (published) | all layers feasible |",
                "|---|---|---|---|---|---|---|"]
        for row, f in figures.items():
            pub = PUBLISHED_DDR4_DROP.get(row)
            drop = (f"{f['ddr4_drop']:.0%}" if "ddr4_drop" in f else "–") + (
                f" ({pub:.0%})" if pub is not None else "")
            out.append(f"| {row} | {f['mac_util']:.3f} | {f['ipj_movement']:.4g} | "
                       f"{f['clock_share']:.0%} | {f['ipj_with_dram']:.4g} | {drop} | "
                       f"{f['feasible']} |")
        keys = list(next(iter(figures.values()))["cycles_split"])
        out += ["", "Where the cycles go (share of the model's cycles; `cycle_split`):", "",
                "| network | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for row, f in figures.items():
            tot = sum(f["cycles_split"].values())
            out.append(f"| {row} | " + " | ".join(f"{f['cycles_split'][k] / tot:+.0%}" if k != "peak"
                                                  else f"{f['cycles_split'][k] / tot:.0%}"
                                                  for k in keys) + " |")
    return "\n".join(out)


# JETCAS19 (eyeriss.md §3): sparse MobileNet on v2 is 12.6x faster and 2.5x more energy efficient
# than Eyeriss v1 running the same network, so v1 ran it at 1470.6 / 12.6 inferences/s and
# 2560.3 / 2.5 inferences/J.
V1_SPEEDUP, V1_EFFICIENCY = 12.6, 2.5


def v1_same_network(v2_row: dict | None = None) -> dict:
    """Eyeriss v1 on sparse MobileNet, against the v1 figures JETCAS19's ratios imply: a check of
    the v1 model (calibrated on AlexNet only) on a network it was not fitted to. v1 as built
    (`EyerissV1`, 65 nm pJ table, chip energy, its own `energy` objective, batch 1) with the sparse
    MobileNet row's densities (v1 gates zero ifmaps; it cannot skip them nor zero weights), with
    an off-chip interface that is not the bottleneck (ASSUMED, like the v2 rows: JETCAS19 does not
    say how v1 was run) and, beside it, the chip's own 64-b, 60 MHz link. `v2_row`: the model's
    sparse MobileNet figures (computed when None) for the model's own v2/v1 ratios."""
    net = get_network(NETWORK["sparse MobileNet"], batch=1)
    sp = sparsity_for("sparse MobileNet", net)
    v2_row = v2_row or model_figures("sparse MobileNet", ddr4=False)
    pub = PUBLISHED["sparse MobileNet"]
    out = {"implied_ips": pub["ips"] / V1_SPEEDUP, "implied_ipj": pub["ipj"] / V1_EFFICIENCY}
    chip = EyerissV1(energy=PJ_65NM)
    for key, a in (("unlimited", chip.replace(**UNLIMITED_DRAM)), ("chip_link", chip)):
        ips, ipj = chip_rates(evaluate(a, net, sp).arrays(), a.clock_mhz)
        out[key] = {"ips": ips, "ipj": ipj, "speedup": v2_row["ips"] / ips,
                    "efficiency": v2_row["ipj"] / ipj}
    return out


def v1_markdown(v1: dict) -> str:
    u, c = v1["unlimited"], v1["chip_link"]
    ips, ipj = v1["implied_ips"], v1["implied_ipj"]
    err = lambda got, ref: f"{got:.4g} ({(got - ref) / ref * 100:+.1f}%)"
    return "\n".join([
        "| Eyeriss v1 on sparse MobileNet (batch 1) | implied by JETCAS19 | eyejax v1, off-chip "
        "not the bottleneck | eyejax v1, the chip's 64-b 60 MHz link |", "|---|---|---|---|",
        f"| inference/s | {ips:.4g} (1470.6 / 12.6) | {err(u['ips'], ips)} | {err(c['ips'], ips)} |",
        f"| inference/J (chip) | {ipj:.4g} (2560.3 / 2.5) | {err(u['ipj'], ipj)} | "
        f"{err(c['ipj'], ipj)} |",
        f"| v2 / v1 speed, model / model | {V1_SPEEDUP:g}x | {u['speedup']:.3g}x | "
        f"{c['speedup']:.3g}x |",
        f"| v2 / v1 inference/J, model / model | {V1_EFFICIENCY:g}x | {u['efficiency']:.3g}x | "
        f"{c['efficiency']:.3g}x |"])


V1_NOTE = ("Eyeriss v1 on the same network (JETCAS19: sparse MobileNet runs 12.6x faster and 2.5x "
           "more energy efficiently on v2 than on v1), a check of the v1 model on a network it was "
           "not calibrated on (`v1_same_network`):")


def zero_free_bound(row: str) -> float:
    """Most inferences/s the chip can reach when it processes every iact (no zero skipping): each
    layer takes at least its MACs over the array's MAC datapaths, and at least its weights over the
    weight routers' delivery rate (every weight reaches a PE once, only through the weight routers,
    eyeriss.md §3; at batch 1 an FC weight feeds a single MAC). Architecture fields only."""
    net = get_network(NETWORK[row], batch=1)
    a = arch()
    clusters = a.cluster_rows * a.cluster_cols
    mac_rate = clusters * a.cluster_pe_rows * a.cluster_pe_cols * a.macs_per_pe
    weight_rate = clusters * a.weight_routers * a.weight_port_bits / a.data_bits
    cycles = sum(max(l.macs / mac_rate, l.M * (l.C // l.groups) * l.R * l.S / weight_rate)
                 for l in net.layers)
    return a.clock_mhz * 1e6 / cycles


def relu_probe() -> dict:
    """The dense rows under the sparse rows' activation assumption (unpruned 8-b weights, zero
    iacts skipped), with the zero-free bound (`zero_free_bound`); not the comparison."""
    return {row: dict(model_figures(row, ddr4=False, relu_zeros=True), bound=zero_free_bound(row))
            for row in PUBLISHED if not row.startswith("sparse")}


RELU_NOTE = ("The dense rows are compared zero-free (all densities 1). The chip ran real ImageNet "
             "data, and its sparse PE skips zero iacts whatever the weights' format; without "
             "skipping, no schedule reaches the published AlexNet rate (`zero_free_bound`: every layer at "
             "least its MACs at peak and its weights at the weight routers' rate). The same rows "
             "with the sparse rows' activation assumption (`relu_probe`; the chip-energy constants "
             "stay those calibrated zero-free):")


def relu_markdown(probe: dict, figures: dict) -> str:
    out = ["| network | published inference/s | most inference/s without zero skipping | "
           "eyejax zero-free (comparison) | eyejax with ReLU zeros skipped | inference/J, "
           "published / zero-free / ReLU zeros | DRAM MB, published / zero-free / ReLU zeros |",
           "|---|---|---|---|---|---|---|"]
    for row, f in probe.items():
        pub, z = PUBLISHED[row], figures[row]
        err = lambda got, key: f"{got:.4g} ({(got - pub[key]) / pub[key] * 100:+.1f}%)"
        out.append(f"| {row} | {pub['ips']:g} | {f['bound']:.4g} | {err(z['ips'], 'ips')} | "
                   f"{err(f['ips'], 'ips')} | {pub['ipj']:g} / {z['ipj']:.4g} / {f['ipj']:.4g} | "
                   f"{pub['dram_mb']:g} / {z['dram_mb']:.4g} / {f['dram_mb']:.4g} |")
    return "\n".join(out)


EXACT_KEYS = ("ips", "ipj", "dram_mb", "util")


def exact_markdown(figures: dict, exact: dict) -> str:
    """Errors against the published rows with the grid's mappings and with the model's exact
    optimum (search=exact): how much of each error the mapping search accounts for."""
    out = ["| network | metric | published | fast grid | error | exact optimum | error |",
           "|---|---|---|---|---|---|---|"]
    for row, pub in PUBLISHED.items():
        for key in EXACT_KEYS:
            ref, f, x = pub[key], figures[row][key], exact[row][key]
            out.append(f"| {row} | {LABELS[key]} | {ref:g} | {f:.4g} | {(f - ref) / ref * 100:+.1f}% "
                       f"| {x:.4g} | {(x - ref) / ref * 100:+.1f}% |")
    return "\n".join(out)


def report_section(outdir: str, reduced: bool) -> str:
    """The section `eyejax report` writes: the comparison, the detail tables (movement-only
    energy, DDR4-3200 drop, where the cycles go) and the error chart."""
    title = "Eyeriss v2 against the published numbers"
    if reduced:
        return f"## {title}\n\n(`python experiments/v2_published.py`; skipped in the reduced run.)\n"
    from eyejax.plots import error_chart

    figures = {row: model_figures(row) for row in PUBLISHED}
    exact = {row: model_figures(row, ddr4=False, search="exact") for row in PUBLISHED}
    rows = comparison_rows(figures)
    fig = error_chart(rows, outdir, "v2_published.png", title)
    return "\n".join([f"## {title}", "", "`python experiments/v2_published.py` (assumptions in its "
                      "docstring).", "", markdown(rows, figures), "", f"![{title}]({fig})", "",
                      RELU_NOTE, "", relu_markdown(relu_probe(), figures), "",
                      V1_NOTE, "", v1_markdown(v1_same_network(figures["sparse MobileNet"])), "",
                      "With the model's exact optimum instead of the grid's mappings "
                      "(`search=exact`; not used for the comparison above):", "",
                      exact_markdown(figures, exact), ""])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markdown", help="also write the table to this Markdown file")
    ap.add_argument("--exact", action="store_true",
                    help="also the model's exact optimum (search=exact; about a minute)")
    args = ap.parse_args(argv)
    figures = {row: model_figures(row) for row in PUBLISHED}
    table = markdown(comparison_rows(figures), figures)
    table += "\n\n" + RELU_NOTE + "\n\n" + relu_markdown(relu_probe(), figures)
    table += "\n\n" + V1_NOTE + "\n\n" + v1_markdown(v1_same_network(figures["sparse MobileNet"]))
    if args.exact:
        exact = {row: model_figures(row, ddr4=False, search="exact") for row in PUBLISHED}
        table += "\n\n" + exact_markdown(figures, exact)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
