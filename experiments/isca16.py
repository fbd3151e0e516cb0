"""ISCA16 reproduction: RS against WS, OS_A, OS_B, OS_C and NLR under equal storage area.

    python experiments/isca16.py [--out DIR] [--pes 256,512,1024] [--batches 1,16,64] [--fc-batches 256]

AlexNet CONV1-5 and FC6-8 (the zoo's table, CONV2/4/5 grouped as in the original network), each
dataflow on its equal-area configuration (eyejax/arch/isca16.py: #PE × 512 B RF + #PE × 512 B buffer
of area, split per dataflow) with 256, 512 and 1024 PEs, batch 1, 16 and 64 (FC also 256), mappings
chosen for minimum energy as in the paper, ISCA16 normalized energy costs (DRAM 200, buffer 6,
array 2, RF 1, MAC 1). Writes figures like the paper's (energy per operation by dataflow, split by
level and by data type; DRAM accesses per operation; energy-delay product) and checks its claims
(shared/reference/eyeriss.md §2): RS is 1.4×-2.5× more energy efficient than the other dataflows on
CONV layers and at least 1.3× on FC layers at batch 16.

Delay for the EDP: ISCA16 assumes throughput proportional to the active PEs, so `edp_isca16` uses
delay = MACs / active PEs per layer; `edp_model` uses the model's cycles (ramp and DRAM stalls
included, DRAM at 64 b per core cycle).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

import eyejax  # noqa: F401
from eyejax.arch.energy import DATA_TYPES
from eyejax.arch.isca16 import ISCA16_DATAFLOWS, isca16_arch, storage_table
from eyejax.evaluate import evaluate
from eyejax.plots import LEVEL_COLORS
from eyejax.plots import TYPE_COLORS as DT_COLORS
from eyejax.workload import get_network

DATAFLOWS = ISCA16_DATAFLOWS            # rs, ws, os_a, os_b, os_c, nlr
LABELS = {"rs": "RS", "ws": "WS", "os_a": "OS_A", "os_b": "OS_B", "os_c": "OS_C", "nlr": "NLR"}
LEVELS = ("dram", "glb", "noc", "rf", "alu")
LEVEL_LABELS = {"dram": "DRAM", "glb": "buffer", "noc": "array", "rf": "RF", "alu": "ALU"}
PES = (256, 512, 1024)
BATCHES = (1, 16, 64)
FC_BATCHES = (256,)
CLAIM_CONV = (1.4, 2.5)     # ISCA16: RS 1.4x-2.5x more energy efficient on CONV layers
CLAIM_FC = 1.3              # ISCA16: at least 1.3x on FC layers at batch 16


def layer_rows(pes=PES, batches=BATCHES, fc_batches=FC_BATCHES, dataflows=DATAFLOWS) -> pd.DataFrame:
    """One row per (dataflow, pes, batch, layer) with energy by level × data type, MACs, DRAM
    accesses, active PEs and cycles. Each dataflow compiles once (scalar arch, same network size)."""
    rows = []
    base = get_network("alexnet")
    for df in dataflows:
        for p in pes:
            arch = isca16_arch(df, p)
            for n in sorted(set(batches) | set(fc_batches)):
                res = evaluate(arch, base.with_batch(n))
                a = res.arrays()
                for li, layer in enumerate(base.layers):
                    kind = layer.type.value
                    if n not in batches and kind != "FC":
                        continue
                    r = {"dataflow": df, "pes": p, "batch": n, "layer": layer.name, "kind": kind,
                         "macs": int(a["macs"][0, li]), "active_pes": int(a["active_pes"][0, li]),
                         "cycles": int(a["cycles"][0, li]), "feasible": bool(a["feasible"][0, li]),
                         "dram_accesses": int(a["dram_accesses"][0, li]), "energy": float(a["energy"][0, li])}
                    for lv in LEVELS[:-1]:
                        for dt in DATA_TYPES:
                            r[f"energy_{lv}_{dt}"] = float(a[f"energy_{lv}_{dt}"][0, li])
                    r["energy_alu"] = float(a["energy_alu"][0, li])
                    r["mapping"] = " ".join(f"{k}{int(a[f'map_{k}'][0, li])}" for k in res.mapping_keys)
                    rows.append(r)
    return pd.DataFrame(rows)


def totals(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (dataflow, pes, batch, kind): energy/op by level and data type, DRAM accesses/op, EDPs."""
    rows = rows.copy()
    rows["delay_isca16"] = rows["macs"] / rows["active_pes"].clip(lower=1)
    g = rows.groupby(["dataflow", "pes", "batch", "kind"], sort=False)
    num = [c for c in rows.columns if c.startswith("energy")] + ["macs", "dram_accesses", "cycles",
                                                                  "delay_isca16"]
    t = g[num].sum()
    t["feasible"] = g["feasible"].all()
    t["energy_per_op"] = t["energy"] / t["macs"]
    for lv in LEVELS:
        cols = [f"energy_{lv}_{dt}" for dt in DATA_TYPES] if lv != "alu" else ["energy_alu"]
        t[f"{lv}_per_op"] = t[cols].sum(axis=1) / t["macs"]
    for dt in DATA_TYPES:
        t[f"{dt}_per_op"] = t[[f"energy_{lv}_{dt}" for lv in LEVELS[:-1]]].sum(axis=1) / t["macs"]
    t["dram_acc_per_op"] = t["dram_accesses"] / t["macs"]
    t["edp_isca16"] = t["energy"] * t["delay_isca16"]
    t["edp_model"] = t["energy"] * t["cycles"]
    t = t.reset_index()
    rs = t[t.dataflow == "rs"].set_index(["pes", "batch", "kind"])
    key = list(zip(t.pes, t.batch, t.kind))
    t["vs_rs_energy"] = t["energy_per_op"].to_numpy() / rs.loc[key, "energy_per_op"].to_numpy()
    t["vs_rs_edp_isca16"] = t["edp_isca16"].to_numpy() / rs.loc[key, "edp_isca16"].to_numpy()
    t["vs_rs_edp_model"] = t["edp_model"].to_numpy() / rs.loc[key, "edp_model"].to_numpy()
    return t


def claims(t: pd.DataFrame) -> list[dict]:
    """The paper's claims, per (pes, batch) setting, as strict inequalities on the other dataflows'
    energy relative to RS's ("RS is x times more energy efficient" = their energy / RS's). The CONV
    range is checked as two claims: its lower end (every other dataflow at least 1.4x RS) and its
    upper end (none more than 2.5x)."""
    out = []
    others = t[(t.dataflow != "rs") & t.feasible]
    for (p, n, kind), grp in others.groupby(["pes", "batch", "kind"]):
        lo, hi = grp.vs_rs_energy.min(), grp.vs_rs_energy.max()
        best = grp.loc[grp.vs_rs_energy.idxmin(), "dataflow"]
        worst = grp.loc[grp.vs_rs_energy.idxmax(), "dataflow"]
        infeasible = ",".join(sorted(set(
            t[(t.pes == p) & (t.batch == n) & (t.kind == kind) & ~t.feasible].dataflow)))
        base = {"pes": p, "batch": n, "infeasible": infeasible}
        if kind == "CONV":
            out.append({**base, "claim": f"CONV: every other dataflow >= {CLAIM_CONV[0]}x RS",
                        "value": lo, "dataflow": best, "agrees": bool(lo >= CLAIM_CONV[0])})
            out.append({**base, "claim": f"CONV: no other dataflow > {CLAIM_CONV[1]}x RS",
                        "value": hi, "dataflow": worst, "agrees": bool(hi <= CLAIM_CONV[1])})
        elif n == 16:
            out.append({**base, "claim": f"FC, batch 16: every other dataflow >= {CLAIM_FC}x RS",
                        "value": lo, "dataflow": best, "agrees": bool(lo >= CLAIM_FC)})
    return out


def claims_markdown(cl) -> str:
    lines = ["| claim (ISCA16) | PEs | batch | model: energy / RS's energy | model agrees |",
             "|---|---|---|---|---|"]
    for c in cl:
        note = f" (infeasible: {c['infeasible']})" if c["infeasible"] else ""
        lines.append(f"| {c['claim']} | {c['pes']} | {c['batch']} | {c['value']:.2f}× "
                     f"({LABELS[c['dataflow']]}) | {'yes' if c['agrees'] else 'NO'}{note} |")
    return "\n".join(lines)


def summary_table(t: pd.DataFrame, pes=256, batch=16) -> str:
    sel = t[(t.pes == pes) & (t.batch == batch)]
    lines = ["| dataflow | CONV energy/op | ×RS | CONV DRAM acc./op | FC energy/op | ×RS | "
             "FC DRAM acc./op | CONV EDP ×RS (ISCA16 delay) |", "|---|---|---|---|---|---|---|---|"]
    for df in DATAFLOWS:
        c = sel[(sel.dataflow == df) & (sel.kind == "CONV")]
        f = sel[(sel.dataflow == df) & (sel.kind == "FC")]
        if c.empty or f.empty:
            continue
        c, f = c.iloc[0], f.iloc[0]
        lines.append(f"| {LABELS[df]} | {c.energy_per_op:.2f} | {c.vs_rs_energy:.2f} | "
                     f"{c.dram_acc_per_op:.4f} | {f.energy_per_op:.2f} | {f.vs_rs_energy:.2f} | "
                     f"{f.dram_acc_per_op:.4f} | {c.vs_rs_edp_isca16:.2f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ figures
# LEVEL_COLORS, DT_COLORS: the project's one palette (eyejax.plots), where levels and data types
# never share a colour.


def _stacked(ax, sel, parts, colors, labels, title, ylabel="normalized energy / op"):
    x = np.arange(len(sel))
    bottom = np.zeros(len(sel))
    for p in parts:
        v = sel[f"{p}_per_op"].to_numpy()
        ax.bar(x, v, bottom=bottom, color=colors[p], label=labels.get(p, p), width=0.7)
        bottom += v
    ax.set_xticks(x)
    ax.set_xticklabels([LABELS[d] for d in sel.dataflow], fontsize=8)
    ax.set_xlabel("dataflow", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)


def figures(t: pd.DataFrame, outdir: str, pes=256, batch=16) -> list[str]:
    """PNG figures like ISCA16 Figs. 10-13; returns the file names written."""
    from eyejax.plots import new_figure

    os.makedirs(outdir, exist_ok=True)
    written = []
    order = {d: i for i, d in enumerate(DATAFLOWS)}
    sel = t[(t.pes == pes) & (t.batch == batch)].sort_values("dataflow", key=lambda s: s.map(order))

    fig, axes = new_figure(2, 2, figsize=(11.5, 7))
    for col, kind in enumerate(("CONV", "FC")):
        s = sel[sel.kind == kind]
        _stacked(axes[0, col], s, LEVELS, LEVEL_COLORS, LEVEL_LABELS,
                 f"AlexNet {kind}: energy/op by level ({pes} PEs, batch {batch})")
        _stacked(axes[1, col], s, DATA_TYPES, DT_COLORS, {},
                 f"AlexNet {kind}: data-movement energy/op by data type")
    for row, title in ((0, "storage level"), (1, "data type")):
        axes[row, 1].legend(*axes[row, 0].get_legend_handles_labels(), fontsize=8, title=title,
                            loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    name = "isca16_energy_breakdown.png"
    fig.savefig(os.path.join(outdir, name), dpi=110)
    written.append(name)

    # energy/op and DRAM accesses/op vs PEs and batch, per dataflow
    fig, axes = new_figure(2, 2, figsize=(12.5, 7.2))
    for col, kind in enumerate(("CONV", "FC")):
        tk = t[t.kind == kind]
        settings = sorted(set(zip(tk.pes, tk.batch)))
        x = np.arange(len(settings))
        w = 0.8 / len(DATAFLOWS)
        for i, df in enumerate(DATAFLOWS):
            d = tk[tk.dataflow == df].set_index(["pes", "batch"])
            e = [d.loc[s, "energy_per_op"] if s in d.index and d.loc[s, "feasible"] else np.nan
                 for s in settings]
            dr = [d.loc[s, "dram_acc_per_op"] if s in d.index and d.loc[s, "feasible"] else np.nan
                  for s in settings]
            axes[0, col].bar(x + i * w, e, width=w, label=LABELS[df])
            axes[1, col].bar(x + i * w, dr, width=w, label=LABELS[df])
        for r, what in enumerate(("normalized energy / op", "DRAM accesses / op")):
            ax = axes[r, col]
            ax.set_xticks(x + 0.4 - w / 2)
            ax.set_xticklabels([f"{p}\nN={n}" for p, n in settings], fontsize=7)
            ax.set_xlabel("PEs and batch N", fontsize=8)
            ax.set_ylabel(what + (" (log)" if r == 1 or kind == "FC" else ""), fontsize=8)
            ax.set_title(f"AlexNet {kind}: {what}", fontsize=9)
            if r == 1 or kind == "FC":   # FC energy spans batch 1 (DRAM-bound) to batch 256
                ax.set_yscale("log")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="dataflow")
    name = "isca16_scaling.png"
    fig.savefig(os.path.join(outdir, name), dpi=110)
    written.append(name)

    # EDP normalized to RS
    fig, axes = new_figure(1, 2, figsize=(11, 3.8))
    axes = axes[0]
    for col, kind in enumerate(("CONV", "FC")):
        s = sel[sel.kind == kind]
        x = np.arange(len(s))
        axes[col].bar(x - 0.2, s.vs_rs_edp_isca16, width=0.4, label="delay = MACs / active PEs (ISCA16)")
        axes[col].bar(x + 0.2, s.vs_rs_edp_model, width=0.4, label="delay = model cycles")
        axes[col].set_xticks(x)
        axes[col].set_xticklabels([LABELS[d] for d in s.dataflow], fontsize=8)
        axes[col].set_yscale("log")
        axes[col].axhline(1, color="k", lw=0.8)
        axes[col].set_xlabel("dataflow", fontsize=8)
        axes[col].set_ylabel("EDP / RS's EDP (log)", fontsize=8)
        axes[col].set_title(f"AlexNet {kind}: energy-delay product / RS's ({pes} PEs, batch {batch})",
                            fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
               fontsize=8)
    name = "isca16_edp.png"
    fig.savefig(os.path.join(outdir, name), dpi=110)
    written.append(name)
    return written


def report_section(t, cl, figs, pes=256, batch=16) -> str:
    st = pd.DataFrame(storage_table(pes))
    storage = ["| dataflow | RF bytes / PE | buffer (kB) | total (kB) |", "|---|---|---|---|"]
    for _, r in st.iterrows():
        storage.append(f"| {LABELS[r.dataflow]} | {r.rf_bytes_per_pe} | {r.glb_kB:.1f} | {r.total_kB:.1f} |")
    agree = sum(c["agrees"] for c in cl)
    lines = [
        "## ISCA16: RS against the other dataflows under equal storage area",
        "",
        "`python experiments/isca16.py` · contract: [docs/isca16_dataflows.md](../docs/isca16_dataflows.md)."
        f" Equal-area storage at {pes} PEs (ISCA16 §VI-B; the split is an assumption fitted to the"
        " paper's 80 kB / 2.6× statements):",
        "",
        *storage,
        "",
        f"AlexNet, {pes} PEs, batch {batch} (normalized energy: MAC = 1):",
        "",
        summary_table(t, pes, batch),
        "",
        f"The paper's claims, setting by setting ({agree} of {len(cl)} checks agree):",
        "",
        claims_markdown(cl),
        "",
    ]
    for f in figs:
        lines += [f"![{f}]({f})", ""]
    return "\n".join(lines)


def run(outdir: str | None = None, pes=PES, batches=BATCHES, fc_batches=FC_BATCHES,
        dataflows=DATAFLOWS, verbose=True):
    rows = layer_rows(pes, batches, fc_batches, dataflows)
    t = totals(rows)
    cl = claims(t)
    p0 = 256 if 256 in pes else pes[0]
    b0 = 16 if 16 in batches else batches[0]
    figs = figures(t, outdir, p0, b0) if outdir else []
    if verbose:
        print(summary_table(t, p0, b0))
        print()
        for c in cl:
            verdict = "agrees" if c["agrees"] else "DISAGREES"
            print(f"{c['claim']:<45} {c['pes']:>5} PEs, batch {c['batch']:>3}: "
                  f"{c['value']:.2f}x ({LABELS[c['dataflow']]}) -> model {verdict}")
    if outdir:
        rows.to_csv(os.path.join(outdir, "isca16_layers.csv"), index=False)
        t.to_csv(os.path.join(outdir, "isca16_totals.csv"), index=False)
    return {"rows": rows, "totals": t, "claims": cl, "figures": figs,
            "markdown": report_section(t, cl, figs, p0, b0)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="report", help="folder for the figures and tables")
    ap.add_argument("--pes", default=",".join(map(str, PES)))
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--fc-batches", default=",".join(map(str, FC_BATCHES)))
    args = ap.parse_args(argv)
    ints = lambda s: tuple(int(x) for x in s.split(",") if x)
    out = run(args.out, ints(args.pes), ints(args.batches), ints(args.fc_batches))
    with open(os.path.join(args.out, "isca16.md"), "w") as f:
        f.write(out["markdown"] + "\n")
    print(f"\nwrote {args.out}/isca16.md and {', '.join(out['figures'])}")


if __name__ == "__main__":
    main()
