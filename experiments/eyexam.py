"""Eyexam on several designs: the seven bounds per layer as tables, rooflines and waterfalls.

    python experiments/eyexam.py [--out DIR] [--reduced]

Designs (each evaluated with its own dataflow and the energy objective, dense data):
- Eyeriss v1 (the chip: 12×14 PEs, 64 b DRAM at 60 MHz) on AlexNet, batch 4;
- Eyeriss v1 on MobileNet v1 (1.0, 224), batch 1: depthwise layers expose little parallelism;
- Eyeriss v2 (RS+, 192 PEs × 2 MACs) on MobileNet v1 (0.5, 128), batch 1, when the RS+ model is
  in this checkout;
- the ISCA16 equal-area designs (256 PEs) on AlexNet, batch 16: RS, WS, OS_A, OS_B, OS_C, NLR.
Bounds and their definitions: eyejax/eyexam.py.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

import eyejax  # noqa: F401
from eyejax import eyexam
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.arch.isca16 import ISCA16_DATAFLOWS, isca16_arch
from eyejax.evaluate import evaluate
from eyejax.workload import get_network


def designs(reduced: bool = False):
    """(key, title, result) of every design analysed."""
    out = [("v1_alexnet", "Eyeriss v1, AlexNet, batch 4",
            evaluate(EyerissV1(), get_network("alexnet", batch=4)))]
    if not reduced:
        out.append(("v1_mobilenet", "Eyeriss v1, MobileNet v1 (1.0, 224), batch 1",
                    evaluate(EyerissV1(), get_network("mobilenet_v1", batch=1))))
        out.append(("v2_mobilenet", "Eyeriss v2 (RS+), MobileNet v1 (0.5, 128), batch 1",
                    evaluate(EyerissV2(), get_network("mobilenet_v1_0.5_128", batch=1))))
    return out


def isca16_summary(dataflows=ISCA16_DATAFLOWS, pes=256, batch=16):
    """Per dataflow: the network's MACs/cycle after each step (total MACs / total cycles implied by
    each step's per-layer bound) on AlexNet at the ISCA16 setting."""
    net = get_network("alexnet", batch=batch)
    rows = []
    for df in dataflows:
        res = evaluate(isca16_arch(df, pes), net)
        b = eyexam.bounds(res)
        macs = b["macs"][0]
        r = {"dataflow": df}
        for k in eyexam.STEPS[2:]:
            r[k] = macs.sum() / np.nansum(macs / b[k][0])
        lim = pd.Series(eyexam.limiting_step(b)[0]).value_counts()
        r["most_limited_by"] = ", ".join(f"{k} ({v})" for k, v in lim.items())
        rows.append(r)
    return pd.DataFrame(rows)


def isca16_markdown(df: pd.DataFrame, pes=256, batch=16) -> str:
    head = ["dataflow", *[eyexam.STEP_TITLES[k] for k in eyexam.STEPS[2:]], "layers limited by"]
    out = [f"Network MACs/cycle after each step, AlexNet (CONV + FC), batch {batch}, {pes} PEs:", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        out.append("| " + " | ".join([r.dataflow.upper(), *[f"{r[k]:.1f}" for k in eyexam.STEPS[2:]],
                                      r.most_limited_by]) + " |")
    return "\n".join(out)


def figures_for(key, title, res, outdir):
    b = eyexam.bounds(res)
    names = list(res.network.names)
    files = []
    for fn, suffix in ((eyexam.plot_roofline, "roofline"), (eyexam.plot_waterfall, "waterfall")):
        ax = fn(b, names, title=f"{title}: {suffix}")
        name = f"eyexam_{key}_{suffix}.png"
        ax.figure.savefig(os.path.join(outdir, name), dpi=110)
        files.append(name)
    return b, files


def run(outdir: str | None = None, reduced: bool = False, verbose: bool = True):
    sections = ["## Eyexam: where each layer's throughput goes", "",
                "Seven nested bounds in MACs/cycle per layer (eyeriss.md §4; definitions in "
                "`eyejax/eyexam.py`): 1 every MAC in parallel, 2 the dataflow's parallelism, "
                "3 the number of PEs (fragmentation), 4 the array's rows and columns, 5 storage "
                "(the chosen mapping's compute time), 6 average DRAM (and, on v2, NoC) bandwidth, "
                "7 the model's throughput (ramp, stalls). Each is at most the previous one; step 7 "
                "equals the model's MACs / cycles. `python experiments/eyexam.py`.", ""]
    figs = []
    for key, title, res in designs(reduced):
        df = eyexam.table(res, config=0)
        if outdir:
            os.makedirs(outdir, exist_ok=True)
            b, f = figures_for(key, title, res, outdir)
            figs += f
            df.to_csv(os.path.join(outdir, f"eyexam_{key}.csv"), index=False)
        if verbose:
            print(f"\n{title}")
            print(df[["layer", *eyexam.STEPS[1:], "limited_by"]].round(2).to_string(index=False))
        sections += [f"### {title}", "", eyexam.markdown_table(df), ""]
        if outdir:
            sections += [f"![roofline](eyexam_{key}_roofline.png)",
                         f"![waterfall](eyexam_{key}_waterfall.png)", ""]
    dfs = ("rs", "ws", "nlr") if reduced else ISCA16_DATAFLOWS
    summ = isca16_summary(dfs)
    if verbose:
        print()
        print(summ.round(1).to_string(index=False))
    sections += ["### ISCA16 equal-area designs", "", isca16_markdown(summ), ""]
    return {"markdown": "\n".join(sections), "figures": figs, "isca16": summ}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="report")
    ap.add_argument("--reduced", action="store_true", help="one design, three ISCA16 dataflows")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    out = run(args.out, args.reduced)
    with open(os.path.join(args.out, "eyexam.md"), "w") as f:
        f.write(out["markdown"] + "\n")
    print(f"\nwrote {args.out}/eyexam.md and {len(out['figures'])} figures")


if __name__ == "__main__":
    main()
