"""RS+ recount of one chosen mapping: exact int64 counts, router and hop counts, energies and cycles
(docs/rs_plus_model.md). `energy` is the v2 form of eyejax.dataflow.cost's formula (energy per
16-bit access × bits per value / 16, CSC formats, zero skipping, mesh hops); with 16-bit words,
nothing compressed or skipped and free hops it is cost.energy (tests/test_cost_one_home.py)."""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow import cost
from eyejax.dataflow.mapping import RSPlusMapping
from eyejax.dataflow.rs_plus.dense import counts
from eyejax.dataflow.rs_plus.encoding import arch_in, formats
from eyejax.dataflow.rs_plus.noc import DATA_TYPES, approx_noc, noc_cycles, noc_modes, noc_routes
from eyejax.dataflow.rs_plus.space import MAPPING_KEYS
from eyejax.dataflow.rs_plus.timing import sparse_compute_cycles
from eyejax.dataflow.search import cast
from eyejax.dataflow.tiling import cdiv
from eyejax.sparsity import Sparsity


def energy(c, noc, arch, fm):
    """Energy by `<level>_<type>` plus `alu` (unit of arch.energy) from dense counts, hops and the
    bits per value of `encoding.formats`."""
    et = arch.energy
    u = 1.0 / 16.0
    a_db = jnp.asarray(arch.data_bits).astype(jnp.float64)
    pb = jnp.asarray(arch.psum_bits).astype(jnp.float64)
    f = lambda k: jnp.asarray(c[k]).astype(jnp.float64)
    bi, bw, bo = fm["beta_i"], fm["beta_w"], fm["beta_o"]
    out = {
        "dram_ifmap": et.dram * u * f("dram_ifmap_reads") * bi,
        "dram_filter": et.dram * u * f("dram_filter_reads") * bw,
        "dram_psum": et.dram * u * (f("dram_psum_writes") * bo + f("dram_psum_reads") * pb),
        "glb_ifmap": et.glb * u * (f("glb_ifmap_reads") + f("glb_ifmap_writes")) * bi,
        "glb_filter": et.glb * u * (f("glb_filter_reads") + f("glb_filter_writes")) * bw,
        "glb_psum": et.glb * u * (f("glb_psum_reads") + f("glb_psum_writes")) * pb,
        "noc_ifmap": u * bi * (et.noc * f("noc_ifmap") + et.hop * noc["hops_ifmap"]),
        "noc_filter": u * bw * (et.noc * f("noc_filter") + et.hop * noc["hops_filter"]),
        "noc_psum": u * pb * (et.noc * f("noc_psum") + et.hop * noc["hops_psum"]),
        "rf_ifmap": et.rf * u * (f("rf_ifmap_reads") * fm["d_mac"] * fm["word_i"] + f("rf_ifmap_writes") * bi),
        "rf_filter": et.rf * u * (f("rf_filter_reads") * fm["d_mac"] * fm["ratio_w"] * fm["word_w"]
                                  + f("rf_filter_writes") * bw),
        "rf_psum": et.rf * u * (f("rf_psum_reads") + f("rf_psum_writes")) * fm["d_pair"] * pb,
        "alu": et.alu * u * a_db * f("macs") * fm["d_pair"],
    }
    return out


def dram_bits(c, fm):
    f = lambda k: jnp.asarray(c[k]).astype(jnp.float64)
    return (f("dram_ifmap_reads") * fm["beta_i"] + f("dram_filter_reads") * fm["beta_w"]
            + f("dram_psum_writes") * fm["beta_o"])


def evaluate_mapping(shape, arch, sp, mp, max_clusters: int, exact_noc: bool = True,
                     noc_float32: bool = False, with_noc: bool = True):
    """Exact int64 counts, router/hop counts, energies and cycles of one layer under one mapping.

    `shape` int64 (dataflow.shape.layer_shape), `sp` one Sparsity row (None: dense).
    with_noc=False leaves the mesh out (no hops, no NoC bound: every router and hop count 0), the
    same expressions otherwise, so its energy and cycles are lower bounds of the full ones, term by
    term and in floating point (the exact search's pruning bound, rs_plus/exact.py)."""
    i64, f64 = jnp.int64, jnp.float64
    if sp is None:
        one = jnp.ones((), f64)
        sp = Sparsity(iact_density=one, weight_density=one, ofmap_density=one, mac_density=one,
                      ifmap_rlc_ratio=one, ofmap_rlc_ratio=one)
    mp = RSPlusMapping(**{k: jnp.asarray(getattr(mp, k)).astype(i64) for k in MAPPING_KEYS})
    c = counts(shape, arch, mp, i64)
    a = arch_in(arch, f64)
    if not with_noc:
        zero = jnp.zeros((), i64)
        noc = {f"{kind}_{dt}": zero for kind in ("router", "hops", "load") for dt in DATA_TYPES}
        noc.update(noc_modes(shape, mp))
    elif exact_noc:
        noc = noc_routes(shape, arch, mp, max_clusters, jnp.float32 if noc_float32 else jnp.float64)
    else:
        shape64 = {kk: jnp.asarray(v).astype(f64) for kk, v in shape.items()}
        words = {"filter": c["dram_filter_reads"].astype(f64), "ifmap": c["glb_ifmap_reads"].astype(f64),
                 "psum": (c["dram_psum_writes"] * cdiv(shape["Cg"], mp.q * mp.r)
                          * cdiv(shape["R"], mp.h)).astype(f64)}
        noc = approx_noc(words, *(getattr(mp, kk).astype(f64) for kk in "hertgbpqno"), shape64, a,
                         mp.oc.astype(f64))
        noc = {kk: jnp.round(v).astype(i64) for kk, v in noc.items()}
        noc.update(noc_modes(shape, mp))
    fm = formats(a, sp, jnp.minimum(mp.q, shape["Cg"]), jnp.minimum(mp.p, shape["Mg"]), f64)
    en = energy(c, noc, arch, fm)
    dense_compute = c["compute_cycles"]
    shape64 = {k: jnp.asarray(v).astype(f64) for k, v in shape.items()}
    sc = sparse_compute_cycles(shape64, arch, mp, fm, c["active_pes"], f64)
    c["compute_cycles"] = jnp.where(fm["sparse"], jnp.round(sc).astype(i64), dense_compute)
    ncyc = noc_cycles(noc, a, fm)
    bits = dram_bits(c, fm)
    dcyc = jnp.ceil(bits * a["clock_mhz"] / (a["dram_bus_bits"] * a["dram_clock_mhz"]) - 1e-9).astype(i64)
    busy = c["compute_cycles"] + c["ramp_cycles"]
    for v in ncyc.values():
        busy = jnp.maximum(busy, v)
    out = dict(c)
    out.update({k: noc[k] for k in ("router_ifmap", "router_filter", "router_psum",
                                    "hops_ifmap", "hops_filter", "hops_psum",
                                    "noc_mode_ifmap", "noc_mode_filter", "noc_mode_psum")})
    out.update(ncyc)
    out["dense_compute_cycles"] = dense_compute
    out["dram_bits"] = bits
    out["dram_cycles"] = dcyc
    out["cycles"] = busy + dcyc
    out["mac_pairs"] = c["macs"].astype(f64) * fm["d_pair"]
    return out, en


def chip_overhead(out, arch) -> dict:
    """Clock/control and leakage energy of a recount `out` (cost.overhead_energy; parameters: the
    family's chip_energy)."""
    return cost.overhead_energy(out["cycles"].astype(jnp.float64),
                                out["active_pes"].astype(jnp.float64),
                                cast(cost.chip_params(arch), jnp.float64))
