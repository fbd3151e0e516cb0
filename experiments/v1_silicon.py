"""Eyeriss v1 against the silicon, layer by layer (JSSC17 Table V) and VGG-16 whole network.

    python experiments/v1_silicon.py [--markdown out.md] [--no-vgg]

Reference: shared/reference/eyeriss_v1_alexnet_silicon.md (JSSC17 Tables III and V). AlexNet
CONV1-5 as Eyeriss ran it (grouped CONV2/4/5), batch 4, 200 MHz, the 65 nm pJ table, and the
measured zeros in each layer's ifmaps (Table V) as the iact density; a layer's ofmap density (for
RLC on the write-back) is the next layer's iact density (CONV5's: its own). Two mappings:
"searched" (the model's own choice with the default fast grid, objective = chip energy) and "chip"
(JSSC17 Table III, preset `alexnet_jssc17`); and, for comparison only, the model's exact optimum
(`search=exact`), which is not what the chip ran (README "Mapping search"). Chip power excludes DRAM, as the paper measures it. MB = 1e6 bytes of 16-bit
accesses.

VGG-16 (CONV layers, batch 3): only the whole-network figures are public (0.7 frames/s, 236 mW,
0.0035 DRAM accesses/MAC); its per-layer measurements are the held-out test and are not used.
Its sparsity is not given in our reference: post-ReLU activations are taken as 50% zeros (the input
image dense), as in experiments/v1_published.py.

Nothing here is fitted per layer: the chip-energy parameters (eyejax.dataflow.cost.overhead_energy) were
calibrated once on AlexNet CONV1-5 as a set with the chip's mapping.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import eyejax  # noqa: F401
from eyejax.arch.energy import PJ_65NM
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.workload import get_network

# JSSC17 Table V (batch 4)
LAYERS = ("CONV1", "CONV2", "CONV3", "CONV4", "CONV5")
IFMAP_ZEROS = (0.0001, 0.387, 0.725, 0.793, 0.776)
TABLE_V = {
    "active_pes": (154, 135, 156, 156, 156),
    "processing_latency_ms": (16.5, 39.2, 21.8, 16.0, 10.0),
    "total_latency_ms": (20.9, 41.9, 23.6, 18.4, 10.5),
    "glb_mb": (18.5, 77.6, 50.2, 37.4, 24.9),
    "dram_mb": (5.0, 4.0, 3.0, 2.1, 1.3),
    "power_mw": (332.0, 288.0, 266.0, 235.0, 236.0),
}
LABELS = {"active_pes": "active PEs", "processing_latency_ms": "processing latency (ms)",
          "total_latency_ms": "total latency (ms)", "glb_mb": "GLB accesses (MB)",
          "dram_mb": "DRAM accesses (MB)", "power_mw": "chip power (mW)"}
# issue targets: mean error over CONV1-5 with the searched mapping
TARGETS = {"active_pes": 0.0, "processing_latency_ms": 10.0, "total_latency_ms": 10.0,
           "glb_mb": 10.0, "dram_mb": 10.0, "power_mw": 15.0}
VGG_PUBLISHED = {"fps": 0.7, "power_mw": 236.0, "dram_per_mac": 0.0035}
VGG_LABELS = {"fps": "frames/s", "power_mw": "chip power (mW)", "dram_per_mac": "DRAM accesses/MAC"}
ARCH = EyerissV1(energy=PJ_65NM)


def alexnet_sparsity() -> Sparsity:
    d = [1.0 - z for z in IFMAP_ZEROS]
    return Sparsity.from_densities(len(d), iact=d, ofmap=d[1:] + d[-1:])


def alexnet_layers(mapping: str | None = None, search: str = "fast") -> pd.DataFrame:
    """Per layer: the model's figures for the searched (mapping=None; `search` = fast | exact) or
    given mapping."""
    net = get_network("alexnet").select(types=("CONV",))
    assert tuple(net.names) == LAYERS
    return table_v_frame(evaluate(ARCH, net, alexnet_sparsity(), mapping=mapping, space=search))


def table_v_frame(result) -> pd.DataFrame:
    """A result's per-layer table with Table V's traffic columns: GLB and DRAM MB (16-bit words,
    MB = 10^6 bytes)."""
    df = result.to_dataframe()
    df["glb_mb"] = df["glb_accesses"] * 2 / 1e6
    df["dram_mb"] = df["dram_accesses"] * 2 / 1e6
    return df


def errors(df: pd.DataFrame) -> dict:
    """metric -> per-layer % errors vs Table V (array of 5)."""
    return {k: (df[k].to_numpy(float) - np.asarray(ref)) / np.asarray(ref) * 100.0
            for k, ref in TABLE_V.items()}


def vgg_result(search: str = "fast"):
    """VGG-16's CONV layers at batch 3 (the NetworkResult; ifmap density 0.5 after the image)."""
    net = get_network("vgg16").select(types=("CONV",))
    L = len(net.layers)
    sp = Sparsity.from_densities(L, iact=[1.0] + [0.5] * (L - 1), ofmap=[0.5] * L)
    return evaluate(ARCH, net, sp, space=search)


def vgg_figures(search: str = "fast", result=None) -> dict:
    """VGG-16's whole-network figures (those JSSC17 publishes)."""
    tot = (vgg_result(search) if result is None else result).network_totals().iloc[0]
    return {"fps": float(tot.fps), "power_mw": float(tot.power_mw),
            "dram_per_mac": float(tot.dram_accesses_per_mac)}


def vgg_layer_markdown(result) -> str:
    """The model's per-layer predictions for VGG-16 (searched mapping), in Table V's columns, for
    whoever holds JSSC17's per-layer VGG-16 measurements (held out of this project)."""
    cols = ["layer", "mapping (h e r t p q n m)", *(LABELS[k] for k in TABLE_V)]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table_v_frame(result).iterrows():
        vals = [f"{r[k]:.4g}" for k in TABLE_V]
        out.append(f"| {r['layer']} | {mapping_str(r, 'hertpqnm')} | " + " | ".join(vals) + " |")
    return "\n".join(out)


def mapping_str(r, keys: str = "ertpqnm") -> str:
    return " ".join(f"{k}{int(r[f'map_{k}'])}" for k in keys)


def layer_markdown(df: pd.DataFrame, title: str) -> str:
    err = errors(df)
    head = ["metric", *LAYERS, "mean error", "mean abs error"]
    out = [f"**{title}** (model vs Table V, error)", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out.append("| mapping (e r t p q n m) | " + " | ".join(mapping_str(r) for _, r in df.iterrows())
               + " | | |")
    for k, ref in TABLE_V.items():
        cells = [f"{v:.4g} vs {r:g} ({e:+.1f}%)" for v, r, e in zip(df[k], ref, err[k])]
        out.append(f"| {LABELS[k]} | " + " | ".join(cells)
                   + f" | {err[k].mean():+.1f}% | {np.abs(err[k]).mean():.1f}% |")
    return "\n".join(out)


def vgg_markdown(got: dict, exact: dict | None = None) -> str:
    err = lambda v, ref: f"{(v - ref) / ref * 100:+.1f}%"
    head = "| VGG-16 CONV, batch 3 | published (JSSC17) | eyejax | error |"
    rule = "|---|---|---|---|"
    if exact is not None:
        head += " eyejax, exact search | error |"
        rule += "---|---|"
    out = [head, rule]
    for k, ref in VGG_PUBLISHED.items():
        row = f"| {VGG_LABELS[k]} | {ref:g} | {got[k]:.4g} | {err(got[k], ref)} |"
        if exact is not None:
            row += f" {exact[k]:.4g} | {err(exact[k], ref)} |"
        out.append(row)
    return "\n".join(out)


def summary_markdown(searched: pd.DataFrame, chip: pd.DataFrame,
                     exact: pd.DataFrame | None = None) -> str:
    """Mean (mean absolute) errors: searched (fast grid) and chip's mappings, and the model's exact
    optimum when given (search=exact; not a target: README "Mapping search")."""
    cols = [("searched mapping", errors(searched)), ("chip's mapping", errors(chip))]
    if exact is not None:
        cols.append(("exact optimum (search=exact)", errors(exact)))
    out = ["| AlexNet CONV1-5, batch 4 | target | "
           + " | ".join(f"{name}: mean (mean abs)" for name, _ in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for k in TABLE_V:
        tgt = "exact" if TARGETS[k] == 0 else f"±{TARGETS[k]:g}%"
        out.append(f"| {LABELS[k]} | {tgt} | "
                   + " | ".join(f"{e[k].mean():+.1f}% ({np.abs(e[k]).mean():.1f}%)" for _, e in cols)
                   + " |")
    return "\n".join(out)


def run(vgg: bool = True) -> dict:
    searched = alexnet_layers(None)
    chip = alexnet_layers("alexnet_jssc17")
    exact = alexnet_layers(None, search="exact")
    parts = [summary_markdown(searched, chip, exact), "",
             layer_markdown(searched, "Searched mapping"), "",
             layer_markdown(chip, "The chip's mapping (JSSC17 Table III)"), "",
             layer_markdown(exact, "The model's exact optimum (search=exact)"), ""]
    got = got_exact = None
    if vgg:
        res = vgg_result()
        got, got_exact = vgg_figures(result=res), vgg_figures("exact")
        parts += [vgg_markdown(got, got_exact), "",
                  "The model's VGG-16 predictions per layer (searched mapping, batch 3; JSSC17's "
                  "per-layer measurements are held out of this project):", "",
                  vgg_layer_markdown(res), ""]
    return {"searched": searched, "chip": chip, "exact": exact, "vgg": got,
            "vgg_exact": got_exact, "markdown": "\n".join(parts)}


def report_section(outdir: str, reduced: bool) -> str:
    """The report's section (eyejax.app.report): AlexNet per layer; VGG-16 in the full run only."""
    out = run(vgg=not reduced)
    return "\n".join(["## Eyeriss v1 against the silicon, layer by layer", "",
                      "`python experiments/v1_silicon.py` (assumptions in its docstring).", "",
                      out["markdown"]])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markdown", help="also write the tables to this Markdown file")
    ap.add_argument("--no-vgg", action="store_true", help="skip VGG-16 (the slow part)")
    args = ap.parse_args(argv)
    out = run(vgg=not args.no_vgg)
    print(out["markdown"])
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(out["markdown"] + "\n")


if __name__ == "__main__":
    main()
