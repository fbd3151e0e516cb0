"""Build the notebooks in this folder from the cell sources below (with empty outputs).

    python notebooks/make_notebooks.py            # rewrite notebooks/*.ipynb
    python notebooks/make_notebooks.py --check    # exit 1 if a notebook differs from its source

Edit the cells here, not in Jupyter, and re-run this script, so the notebooks stay reproducible and
reviewable. Every notebook reads EYEJAX_NOTEBOOK_SMALL in its first cell: "1" runs it at reduced
size (what tests/test_notebooks.py does in CI).
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = """\
import os

# CI runs every notebook top to bottom at reduced size with EYEJAX_NOTEBOOK_SMALL=1.
SMALL = os.environ.get("EYEJAX_NOTEBOOK_SMALL", "0") == "1"

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import eyejax  # enables float64/int64 in JAX
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.workload import Network, get_network

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)
print("small mode" if SMALL else "full size")
"""


def md(s):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(s).strip("\n"))


def code(s):
    return nbformat.v4.new_code_cell(textwrap.dedent(s).strip("\n"))


# ------------------------------------------------------------------------------------------------
GETTING_STARTED = [
    md("""
    # Getting started with eyejax

    eyejax estimates what a DNN costs on the Eyeriss accelerators: energy by memory level, access
    counts, cycles and the mapping chosen for each layer. This notebook evaluates AlexNet and
    MobileNet (width 0.5, 128×128) on Eyeriss v1 (row-stationary dataflow, 12×14 PEs), plots where
    the energy goes, and compares v1 with Eyeriss v2.
    """),
    code(SETUP),
    md("""
    ## Two networks on the Eyeriss v1 chip

    Activations after ReLU are taken to be 50% zeros (the input image dense): zero ifmaps are
    gated and feature maps move RLC-compressed to and from DRAM. AlexNet runs its CONV layers at
    batch 4 (as published for the chip), MobileNet at batch 1.
    """),
    code("""
    nets = {
        "AlexNet CONV": get_network("alexnet", batch=1 if SMALL else 4).conv_only(),
        "MobileNet 0.5-128": get_network("mobilenet_v1_0.5_128", batch=1),
    }
    if SMALL:  # the first layers only
        nets = {k: Network(v.name, v.layers[:5]) for k, v in nets.items()}

    def relu50(net):
        L = len(net.layers)
        return Sparsity.from_densities(L, iact=[1.0] + [0.5] * (L - 1))

    arch = EyerissV1()
    results = {name: evaluate(arch, net, relu50(net)) for name, net in nets.items()}
    totals = pd.concat({name: r.network_totals() for name, r in results.items()}, names=["network"])
    totals[["macs", "energy", "energy_per_image", "latency_ms", "fps", "dram_accesses_per_mac"]]
    """),
    md("""
    ## Per-layer results

    Each row is one layer: the mapping the search chose (`map_*`, see `docs/rs_model.md`), active PEs,
    cycles and energy by level.
    """),
    code("""
    df = results["AlexNet CONV"].to_dataframe()
    df[["layer", "macs", "map_e", "map_r", "map_t", "map_p", "map_q", "map_n", "map_m", "active_pes",
        "utilization", "cycles", "energy", "energy_dram", "energy_glb", "energy_rf"]]
    """),
    code("""
    levels = ["energy_alu", "energy_rf", "energy_noc", "energy_glb", "energy_dram"]
    fig, axes = plt.subplots(1, len(results), figsize=(13, 4))
    for ax, (name, r) in zip(np.atleast_1d(axes), results.items()):
        d = r.to_dataframe()
        bottom = np.zeros(len(d))
        for lv in levels:
            ax.bar(d.layer, d[lv], bottom=bottom, label=lv.removeprefix("energy_"))
            bottom += d[lv].to_numpy()
        ax.set_title(f"{name}: energy by level")
        ax.set_ylabel("normalized energy (1 = one MAC)")
        ax.tick_params(axis="x", rotation=90)
        ax.legend()
    fig.tight_layout()
    """),
    md("""
    ## Utilization and latency

    Depthwise layers use few PEs on v1: a 3×3 depthwise filter fills 3 rows of the array and a
    single channel per set, which is what Eyeriss v2's RS+ dataflow addresses.
    """),
    code("""
    fig, axes = plt.subplots(1, len(results), figsize=(13, 3.5))
    for ax, (name, r) in zip(np.atleast_1d(axes), results.items()):
        d = r.to_dataframe()
        ax.bar(d.layer, d.utilization)
        ax.set_title(f"{name}: active PEs / 168")
        ax.tick_params(axis="x", rotation=90)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    """),
    md("""
    ## Eyeriss v1 vs v2

    Eyeriss v2 (JETCAS19) has 192 PEs in 16 clusters on a hierarchical mesh NoC, runs the RS+
    dataflow (it also spreads groups, images and filters over the array, so depthwise layers fill
    it) and keeps sparse iacts and weights CSC-compressed from DRAM to the PE, where only
    non-zero × non-zero MACs take cycles. Both chips at batch 1, dense and "sparse" (50% zero
    activations after ReLU and 50% zero weights; v1 gains only from the activation zeros). v2
    moves 8-bit data, v1 16-bit; energies use the same normalized table (per 16 bits).
    """),
    code("""
    from eyejax.arch.eyeriss_v2 import EyerissV2

    def dense_and_sparse(net):
        # [2, L] sparsity: dense, then 50% zero activations (input image dense), 50% zero weights
        L = len(net.layers)
        rows = [Sparsity.dense(L), Sparsity.from_densities(L, iact=[1.0] + [0.5] * (L - 1), weight=0.5)]
        return Sparsity(**{f: np.stack([np.asarray(getattr(r, f)) for r in rows])
                           for f in ("iact_density", "weight_density", "ofmap_density", "mac_density",
                                     "ifmap_rlc_ratio", "ofmap_rlc_ratio")})

    compare = {"MobileNet 0.5-128": nets["MobileNet 0.5-128"]}
    if not SMALL:
        compare["AlexNet CONV"] = get_network("alexnet", batch=1).conv_only()
    chips = {"v1": EyerissV1(clock_mhz=np.array([200, 200])),
             "v2": EyerissV2(clock_mhz=np.array([200, 200]))}
    rows = []
    for name, net in compare.items():
        sp2 = dense_and_sparse(net)
        for chip, arch in chips.items():       # one call per chip: dense and sparse together
            t = evaluate(arch, net, sp2).network_totals()
            for i, mode in enumerate(("dense", "sparse")):
                rows.append({"network": name, "chip": chip, "mode": mode,
                             "energy": t.energy[i], "latency_ms": t.latency_ms[i], "fps": t.fps[i]})
    cmp = pd.DataFrame(rows)
    cmp
    """),
    code("""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    labels = [f"{r.network}\\n{r.mode}" for r in cmp[cmp.chip == "v1"].itertuples()]
    x = np.arange(len(labels))
    for j, chip in enumerate(chips):
        d = cmp[cmp.chip == chip]
        axes[0].bar(x + 0.4 * j - 0.2, d.energy, 0.4, label=chip)
        axes[1].bar(x + 0.4 * j - 0.2, d.fps, 0.4, label=chip)
    axes[0].set(title="energy per inference (normalized)", yscale="log")
    axes[1].set(title="inferences per second", yscale="log")
    for ax in axes:
        ax.set_xticks(x, labels)
        ax.legend()
    fig.tight_layout()
    """),
]

# ------------------------------------------------------------------------------------------------
SWEEP = [
    md("""
    # Sweeping the architecture

    Any field of the architecture pytree can be a batch; `eyejax.app.config.grid` builds the cartesian
    product of swept fields and one `evaluate` call runs every configuration (vmapped and jitted).
    Here: PE array shape × global buffer size on AlexNet's CONV layers, then a sweep of activation
    sparsity.
    """),
    code(SETUP),
    code("""
    from eyejax.app.config import grid

    net = get_network("alexnet", batch=1 if SMALL else 4).conv_only()
    L = len(net.layers)
    sp = Sparsity.from_densities(L, iact=[1.0] + [0.5] * (L - 1))

    sizes = [8, 12, 16] if SMALL else [6, 8, 10, 12, 14, 16, 20, 24, 32]
    banks = [25] if SMALL else [12, 25, 50]
    arch, swept = grid(pe_rows=sizes, pe_cols=sizes, glb_banks=banks)
    res = evaluate(arch, net, sp)
    tot = res.network_totals(swept)
    print(len(tot), "configurations")
    tot.sort_values("energy").head()[["arch.pe_rows", "arch.pe_cols", "arch.glb_banks", "energy",
                                      "latency_ms", "fps"]]
    """),
    md("## Energy and latency over the array shape (GLB of 25 banks = 100 kB)"),
    code("""
    t = tot[tot["arch.glb_banks"] == 25]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ["energy", "latency_ms"]):
        m = t.pivot(index="arch.pe_rows", columns="arch.pe_cols", values=key)
        im = ax.imshow(m.to_numpy(), origin="lower", cmap="viridis")
        ax.set_xticks(range(len(m.columns)), m.columns)
        ax.set_yticks(range(len(m.index)), m.index)
        ax.set(xlabel="PE columns", ylabel="PE rows", title=key)
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    """),
    md("## Energy–latency trade-off (every configuration; the Pareto front in red)"),
    code("""
    pes = tot["arch.pe_rows"] * tot["arch.pe_cols"]
    e, l = tot.energy.to_numpy(), tot.latency_ms.to_numpy()
    order = np.argsort(l)
    front = order[np.minimum.accumulate(e[order]) == e[order]]
    fig, ax = plt.subplots(figsize=(6, 4))
    sc = ax.scatter(l, e, c=pes, cmap="plasma", s=18)
    ax.plot(l[front], e[front], "r.-")
    ax.set(xlabel="latency (ms)", ylabel="energy (normalized)", xscale="log")
    fig.colorbar(sc, label="PEs")
    tot.iloc[front][["arch.pe_rows", "arch.pe_cols", "arch.glb_banks", "energy", "latency_ms"]]
    """),
    md("""
    ## Sweeping sparsity

    Sparsity leaves can be batched too ([B, L]): here one architecture with activation densities
    from 0.1 to 1, all in one call. Energy falls with zero gating and RLC; latency does not (zero
    gating saves energy, not time, on v1), except for the DRAM transfer time.
    """),
    code("""
    dens = np.linspace(0.1, 1.0, 4 if SMALL else 10)
    rows = [Sparsity.from_densities(L, iact=[1.0] + [d] * (L - 1)) for d in dens]
    sp_b = Sparsity(**{f: np.stack([np.asarray(getattr(r, f)) for r in rows])
                       for f in ("iact_density", "weight_density", "ofmap_density", "mac_density",
                                 "ifmap_rlc_ratio", "ofmap_rlc_ratio")})
    arch_b = EyerissV1(pe_rows=np.full(len(dens), 12))
    t = evaluate(arch_b, net, sp_b).network_totals()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(dens, t.energy / t.energy.iloc[-1], "o-")
    ax[0].set(xlabel="activation density", ylabel="energy / dense")
    ax[1].plot(dens, t.latency_ms, "o-")
    ax[1].set(xlabel="activation density", ylabel="latency (ms)")
    fig.tight_layout()
    """),
]

# ------------------------------------------------------------------------------------------------
CODESIGN = [
    md("""
    # Co-design: differentiable energy, energy-aware pruning, design search

    1. Energy and latency as differentiable functions of per-layer densities and continuous
       architecture parameters (`eyejax.codesign.differentiable`), checked against finite differences,
       and a toy pruning schedule optimized by gradient.
    2. Energy-aware pruning of a small CNN on scikit-learn's digits, against magnitude pruning
       (`eyejax.codesign.pruning`, also the `eyejax-prune` command).
    3. An ask/tell design problem and an evolution strategy that finds a better Eyeriss v2 variant
       for MobileNet within the area of the chip (`eyejax.codesign.problem`, `eyejax.codesign.search`).
    """),
    code(SETUP),
    md("""
    ## 1. Differentiable energy

    The mapping search is an argmin over a discrete grid, so the searched energy is piecewise
    smooth. `network_energy_fn` searches once, holds each layer's mapping fixed and recomputes
    energy and latency in float64 from the access counts, with zero gating and RLC as smooth
    functions of the densities. By the envelope theorem its gradient is the gradient of the searched
    energy where the argmin is unique. `energy_model="v1_cvpr17"` also skips zero-weight MACs and
    compresses filters (how CVPR17 estimates energy), so weight densities matter.
    """),
    code("""
    import jax
    import jax.numpy as jnp
    from eyejax.codesign.differentiable import central_difference, network_energy_fn

    net = get_network("alexnet", batch=1)
    if SMALL:
        net = Network(net.name, net.layers[:4])
    L = len(net.layers)
    iact = np.array([1.0] + [0.5] * (L - 1))
    f = network_energy_fn(EyerissV1(), net, {"iact": iact, "weight": 0.6},
                          energy_model="v1_cvpr17")
    energy, latency = f()
    print(f"energy {float(energy):.4g}, latency {float(latency):.4g} ms")

    g = jax.grad(lambda d: f(d)[0])(f.densities0)
    weights = np.array([l.M * (l.C // l.groups) * l.R * l.S for l in net.layers])
    grads = pd.DataFrame({"layer": net.names, "dE/d iact density": np.asarray(g["iact"]),
                          "dE/d weight density": np.asarray(g["weight"]),
                          "dE/d weight density per weight": np.asarray(g["weight"]) / weights})
    grads
    """),
    code("""
    # finite-difference check of the weight-density gradient
    fd = central_difference(lambda x: f({"iact": iact, "weight": jnp.asarray(x)})[0],
                            np.full(L, 0.6), h=1e-5)
    print("max relative error:", np.max(np.abs(fd - np.asarray(g["weight"])) / np.abs(fd)))

    # gradients with respect to continuous architecture parameters
    gp = jax.grad(lambda p: f(None, p)[1])(f.params0)
    pd.Series({k: float(v) for k, v in gp.items()}, name="d latency_ms / d param")
    """),
    md("""
    ### A pruning schedule by gradient (a toy)

    Choose per-layer weight densities d to minimize E(d)/E(1) + λ·Σ_l w_l·(−log d_l), where the
    second term is a stand-in for the accuracy lost by pruning layer l (w_l: the layer's share of
    the weights). Gradient descent (Adam) on the logits of d, from d = 0.5; the energy gradient
    steers pruning to the layers whose weights cost the most energy. The objective is not convex:
    RLC only pays below about 75% density (above it filters move raw), so from d near 1 the
    descent stays at 1. The penalty is a proxy, not a measured accuracy; section 2 prunes a real
    network.
    """),
    code("""
    import optax

    E1 = float(f({"iact": iact, "weight": jnp.ones(L)})[0])
    share = jnp.asarray(weights / weights.sum())
    lam = 0.2

    def loss(z):
        d = 0.02 + 0.98 * jax.nn.sigmoid(z)
        return f({"iact": iact, "weight": d})[0] / E1 - lam * jnp.sum(share * jnp.log(d))

    z = jnp.zeros(L)
    opt = optax.adam(0.1)
    state = opt.init(z)

    @jax.jit
    def step(z, state):
        l, g = jax.value_and_grad(loss)(z)
        upd, state = opt.update(g, state)
        return optax.apply_updates(z, upd), state, l

    for i in range(50 if SMALL else 300):
        z, state, l = step(z, state)
    d_opt = 0.02 + 0.98 * jax.nn.sigmoid(z)
    print(f"energy / dense: {float(f({'iact': iact, 'weight': d_opt})[0]) / E1:.3f}")
    pd.DataFrame({"layer": net.names, "weights": weights, "density": np.asarray(d_opt)})
    """),
    md("""
    ## 2. Energy-aware pruning on digits

    A small CNN (conv 3×3×8 → conv 3×3×16 → pool → dense 32 → dense 10) is trained on
    scikit-learn's digits (shipped with the package). Each layer's energy is estimated on Eyeriss v1
    (and v2, when installed) from the model's real activation and weight sparsity; layers are
    pruned by magnitude, one at a
    time, in energy order (`energy_aware`: highest energy first, as CVPR17; `energy_saving`: the
    largest predicted saving first), fine-tuning after each step, while the validation accuracy
    stays within 1% of the dense model. The baseline prunes with one global magnitude threshold.
    `eyejax-prune` runs the same at full size and logs to W&B.
    """),
    code("""
    from IPython.display import Image, display
    from eyejax.app.prune import plot_report
    from eyejax.codesign.pruning import PruneConfig, run_pruning

    small = dict(steps=1, epochs=3, finetune_epochs=1, sparsity_images=16,
                 energy_model="v1_cvpr17", energy_models=("v1", "v1_cvpr17"))
    cfg = PruneConfig(**small) if SMALL else PruneConfig()
    res = run_pruning(cfg)
    print(f"dense validation accuracy {res.dense_val_acc:.4f}, budget {res.budget:.4f}")
    res.totals
    """),
    code("""
    res.final
    """),
    code("""
    import tempfile
    out = tempfile.mkdtemp()
    for p in plot_report(res, out):
        display(Image(filename=p))
    """),
    md("""
    ## 3. Design search

    `Problem` turns integer architecture fields with bounds into an ask/tell problem: `ask` draws
    candidates, `eval` scores a whole batch with one `evaluate` call. The fitness is energy × delay
    per image; candidates larger than the chip's area proxy (SRAM bytes + 256 per MAC datapath)
    are rejected. The evolution strategy starts from the chip itself, so it can only improve on
    it. The search varies Eyeriss v2's cluster grid, cluster size, scratchpads and GLB banks for
    MobileNet 0.5-128.
    """),
    code("""
    from eyejax.codesign.problem import Problem, area_proxy
    from eyejax.codesign.search import search
    from eyejax.arch.eyeriss_v2 import EyerissV2

    mnet = get_network("mobilenet_v1_0.5_128", batch=1)
    if SMALL:
        mnet = Network(mnet.name, mnet.layers[:6])
    base = EyerissV2()
    bounds = {"cluster_rows": (2, 16), "cluster_cols": (1, 4), "cluster_pe_rows": (2, 4),
              "cluster_pe_cols": (2, 6), "iact_spad_words": (8, 32), "weight_spad_words": (64, 384),
              "psum_spad_words": (16, 64), "iact_glb_banks": (1, 6), "psum_glb_banks": (1, 8)}
    problem = Problem(mnet, base, bounds, objective="edp")
    print(f"{base.family}: area proxy of the chip {problem.area_budget:,.0f}")
    gens, pop = (2, 8) if SMALL else (15, 48)
    runs = {m: search(problem, generations=gens, popsize=pop, seed=0, method=m)
            for m in ("es", "random")}
    for m, r in runs.items():
        print(f"{m:>6}: base EDP {r.base_fitness:.4g} -> best {r.best_fitness:.4g} "
              f"({r.improvement:.3f}x), {r.num_evaluations} evaluations")
    pd.DataFrame({"chip": runs["es"].base, "es best": runs["es"].best,
                  "random best": runs["random"].best})
    """),
    code("""
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, r in runs.items():
        best = r.history.groupby("generation").fitness.min().cummin()
        ax.plot(best.index, best / r.base_fitness, "o-", label=m)
    ax.set(xlabel="generation", ylabel="best EDP / chip",
           title=f"MobileNet 0.5-128 on {base.family} variants")
    ax.legend()
    runs["es"].best_row()
    """),
]

NOTEBOOKS = {
    "01_getting_started.ipynb": GETTING_STARTED,
    "02_sweep.ipynb": SWEEP,
    "03_codesign.ipynb": CODESIGN,
}


def build(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    # deterministic cell ids, so regenerating gives byte-identical files
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(NOTEBOOKS[name])) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        path = HERE / name
        text = render(name)
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print("wrote", path)
    if stale:
        print("out of date (run python notebooks/make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
