"""Weight stationary (WS, ISCA16 §IV-A / §VI-A) on an ISCA16Spatial architecture.

Each PE holds one weight. An h×S plane of one filter's channel (h = min(R, pe_rows) filter rows) sits
on an h×S region of PEs; the array holds floor(rows/h)·floor(cols/S) such regions, filled with m_s
filters × c_s channels. Each ifmap value is read once from the GLB per pass and broadcast to the PEs
that use it; psums flow PE to PE (a systolic chain over the c_t·h_k·S PEs of a filter) and then to
the GLB, where they accumulate across channel tiles and R folds. Counting contract:
docs/isca16_dataflows.md §WS.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from eyejax.dataflow import isca16_base as base
from eyejax.dataflow.tiling import cdiv, fdiv, tile_sum


@dataclasses.dataclass(frozen=True)
class WSSearchSpace:
    """Grid [mode, split, n, e]: mode 0 fills the regions with channels first (c_s = regions //
    split, m_s the rest), mode 1 with filters first; n = ceil(N / n_split) images per block;
    e = about E / e_split ofmap rows per strip (balanced)."""

    splits: tuple = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    n_splits: tuple = (1, 2, 4, 16, 1 << 30)
    e_splits: tuple = (1, 2, 4, 8, 16, 1 << 30)


DEFAULT_SEARCH = WSSearchSpace()
MAPPING_KEYS = ("h", "m_s", "c_s", "n", "e")


def _shape(s):
    return (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "W_used"))


def grid(shape, arch, space, dtype):
    nax = 4
    mode = base.axis((0, 1), 0, nax, dtype)
    k = base.axis(space.splits, 1, nax, dtype)
    nk = base.axis(space.n_splits, 2, nax, dtype)
    ek = base.axis(space.e_splits, 3, nax, dtype)
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    one = jnp.ones((1,) * nax, dtype)
    h = jnp.minimum(R, a["pe_rows"]) * one
    regions = fdiv(a["pe_rows"], h) * fdiv(a["pe_cols"], S)
    reg = jnp.maximum(regions, 1)
    c1 = jnp.minimum(Cg, base.split(reg, k))
    m1 = jnp.maximum(jnp.minimum(Mg, fdiv(reg, c1)), 1)
    m2 = jnp.minimum(Mg, base.split(reg, k))
    c2 = jnp.maximum(jnp.minimum(Cg, fdiv(reg, m2)), 1)
    c_s = jnp.where(mode == 0, c1, c2)
    m_s = jnp.where(mode == 0, m1, m2)
    n = jnp.maximum(cdiv(N, nk), 1) * one
    e = base.balanced(E, fdiv(E, ek)) * one
    ok_a = (regions >= 1) & (m_s * c_s <= regions)
    glb = (base.block_terms(shape, n, e)["ifmap_block_words"] + n * m_s * e * F
           + m_s * c_s * h * S)
    ok_s = (a["rf_filter_words"] >= 1) & (glb <= a["glb_words"])
    return {"h": h, "m_s": m_s, "c_s": c_s, "n": n, "e": e}, ok_a, ok_s


def counts(shape, arch, mp, dtype):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    G = shape["G"]
    h, m_s, c_s, n, e = (jnp.asarray(mp[k]).astype(dtype) for k in MAPPING_KEYS)
    one = jnp.ones_like(h * m_s * c_s * n * e)
    b = base.block_terms(shape, n, e)
    nb, ns = b["nb"], b["ns"]
    nf, nm, nc = cdiv(R, h), cdiv(Mg, m_s), cdiv(Cg, c_s)
    outputs = N * Mg * E * F
    macs = outputs * Cg * R * S
    loads = nb * ns * Mg * Cg * R * S          # every weight once per block
    rows_pass_sum = tile_sum(
        E, e, lambda es: tile_sum(R, h, lambda hk: jnp.minimum((es - 1) * U + hk, es * hk)))
    c = {
        "macs": macs * one,
        "dram_ifmap_reads": b["dram_ifmap_reads"] * one,
        "dram_filter_reads": loads * one,
        "dram_psum_reads": 0 * one,
        "dram_psum_writes": outputs * one,
        "glb_ifmap_reads": N * Cg * W_used * nm * rows_pass_sum,
        "glb_ifmap_writes": b["glb_ifmap_writes"] * one,
        "glb_filter_reads": loads * one,       # staged through the GLB on the way to the RFs
        "glb_filter_writes": loads * one,
        "glb_psum_reads": outputs * nc * nf,
        "glb_psum_writes": outputs * nc * nf,
        "noc_ifmap": macs * one,               # one delivery per MAC (broadcast, per receiver)
        "noc_filter": loads * one,
        "noc_psum": outputs * (Cg * R * S + nc * nf - 1),
        "rf_ifmap_reads": macs * one,          # operands pass through the RF (ISCA16 Eq. 3, d = 1)
        "rf_ifmap_writes": macs * one,
        "rf_filter_reads": macs * one,
        "rf_filter_writes": loads * one,
        "rf_psum_reads": 0 * one,
        "rf_psum_writes": 0 * one,
        "passes": nb * ns * nm * nc * nf,
        "compute_cycles": N * E * F * nm * nc * nf,
        "ramp_cycles": nb * ns * nm * Cg * R * S * one,   # psum chain fill/drain per pass
    }
    active = h * S * jnp.minimum(m_s, Mg) * jnp.minimum(c_s, Cg)
    return base.finish(c, G, active)


def parallelism(shape):
    """Eyexam step 2: one weight per PE, all weights of a group at once."""
    return shape["Mg"] * shape["Cg"] * shape["R"] * shape["S"]


WS = base.Dataflow("ws", grid, counts, parallelism, MAPPING_KEYS, DEFAULT_SEARCH, __doc__)
FAMILIES = base.FAMILIES
search_layer = WS.search_layer
validate_arch = WS.validate_arch
