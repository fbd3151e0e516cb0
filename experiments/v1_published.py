"""Eyeriss v1: the model against the published JSSC17 measurements.

    python experiments/v1_published.py [--markdown report.md]

Published figures (shared/reference/eyeriss.md §2, seeds 001/004): AlexNet CONV1-5, batch 4, 200 MHz:
34.7 frames/s, 278 mW, 0.0029 DRAM accesses/MAC, 208.5 MB GLB and 15.4 MB DRAM traffic (16-bit
words, MB = 1e6 B). VGG-16 CONV layers, batch 3: 0.7 frames/s, 236 mW, 0.0035 DRAM accesses/MAC.

Assumptions (the papers do not give them in our reference): post-ReLU activations are 50% zeros
(density 0.5) for every layer input but the first (the image, dense); energy uses the 65 nm pJ table
(eyejax/arch/energy.py, docs/energy_65nm.md) plus the chip's clock, control and leakage
(eyejax.dataflow.cost.overhead_energy); power is chip power (DRAM excluded). The per-layer comparison with the
measured sparsity is experiments/v1_silicon.py.
"""
from __future__ import annotations

import argparse

import eyejax  # noqa: F401
from eyejax.arch.energy import PJ_65NM
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.workload import get_network

PUBLISHED = {
    "alexnet": {"fps": 34.7, "power_mw": 278.0, "dram_per_mac": 0.0029, "glb_mb": 208.5, "dram_mb": 15.4},
    "vgg16": {"fps": 0.7, "power_mw": 236.0, "dram_per_mac": 0.0035},
}
LABELS = {"fps": "frames/s", "power_mw": "power (mW)", "dram_per_mac": "DRAM accesses/MAC",
          "glb_mb": "GLB traffic (MB)", "dram_mb": "DRAM traffic (MB)"}
ACT_DENSITY = 0.5


def model_figures(name: str, act_density: float = ACT_DENSITY) -> dict:
    net = get_network(name).select(types=("CONV",))
    L = len(net.layers)
    sp = Sparsity.from_densities(L, iact=[1.0] + [act_density] * (L - 1), ofmap=[act_density] * L)
    res = evaluate(EyerissV1(energy=PJ_65NM), net, sp)
    tot = res.network_totals().iloc[0]
    df = res.to_dataframe()
    return {"fps": float(tot.fps), "power_mw": float(tot.power_mw),
            "dram_per_mac": float(tot.dram_accesses_per_mac),
            "glb_mb": float(df.glb_accesses.sum()) * 2 / 1e6,
            "dram_mb": float(tot.dram_accesses) * 2 / 1e6}


def comparison_rows():
    rows = []
    for name, pub in PUBLISHED.items():
        got = model_figures(name)
        for key, ref in pub.items():
            rows.append((name, LABELS[key], ref, got[key], (got[key] - ref) / ref * 100.0))
    return rows


def markdown(rows) -> str:
    out = ["| network | metric | published | eyejax | error |", "|---|---|---|---|---|"]
    for name, label, ref, got, err in rows:
        out.append(f"| {name} | {label} | {ref:g} | {got:.4g} | {err:+.1f}% |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markdown", help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    rows = comparison_rows()
    table = markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
