"""Weight stationary (WS, ISCA16 §IV-A / §VI-A) on an ISCA16Spatial architecture.

Each PE holds one weight. An h×S plane of one filter's channel (h ≤ min(R, pe_rows) filter rows) sits
on an h×S region of PEs; the array holds floor(rows/h)·floor(cols/S) such regions, filled with m_s
filters × c_s channels. Each ifmap value is read once from the GLB per pass and broadcast to the PEs
that use it; psums flow PE to PE (a systolic chain over the c_t·h_k·S PEs of a filter) and then to
the GLB, where they accumulate across channel tiles and R folds. Counting contract:
docs/isca16_dataflows.md §WS.
"""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow import isca16_base as base
from eyejax.dataflow.tiling import cdiv, fdiv, tile_sum

MAPPING_KEYS = ("h", "m_s", "c_s", "n", "e")


def _shape(s):
    return (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "W_used"))


def radices(shape, arch, storage=True):
    """Per-layer radices of the exact search (docs/isca16_dataflows.md §WS search): h in
    [1, min(R, rows)], then (storage) e in [1, E] (T(E) under (F6)) and n in T(N), and the T of whichever
    of Mg, Cg has fewer (the other in closed form). arch None: static bounds (h up to R)."""
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    hr = R if arch is None else jnp.maximum(jnp.minimum(R, arch["pe_rows"]), 1)
    tk = jnp.minimum(base.tset_len(Mg), base.tset_len(Cg))
    return (hr, base.e_radix(shape), base.tset_len(N), tk) if storage else (hr, tk)


def grid(shape, arch, space, dtype, storage=True):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    rad = radices(shape, a, storage)
    d = base.digits(space.size if storage else space.phys_size, rad, dtype)
    h = d[0] + 1
    if storage:
        e, n, j = base.e_value(shape, d[1]), base.tset(N, d[2]), d[3]
    else:                       # compute cycles do not depend on the block (n, e)
        e, n, j = E * jnp.ones_like(h), jnp.ones_like(h), d[1]
    regions = fdiv(a["pe_rows"], h) * fdiv(a["pe_cols"], S)
    ifmap = base.block_terms(shape, n, e)["ifmap_block_words"]
    room = a["glb_words"] - ifmap if storage else jnp.inf
    by_c = base.tset_len(Cg) < base.tset_len(Mg)   # enumerate T(Cg), filters in closed form
    # enumerate c_s: m_s = the largest with m_s·c_s <= regions and GLB room (n·m_s·e·F psums and
    # m_s·c_s·h·S staged weights), snapped to T(Mg)
    c_e = base.tset(Cg, j)
    m_cap = jnp.minimum(jnp.minimum(Mg, fdiv(regions, c_e)), fdiv(room, n * e * F + c_e * h * S))
    # enumerate m_s: c_s = the largest likewise, snapped to T(Cg)
    m_e = base.tset(Mg, j)
    c_cap = jnp.minimum(jnp.minimum(Cg, fdiv(regions, m_e)),
                        fdiv(room - n * m_e * e * F, m_e * h * S))
    m_s = jnp.where(by_c, base.snap(Mg, m_cap), m_e)
    c_s = jnp.where(by_c, c_e, base.snap(Cg, c_cap))
    cap_ok = jnp.where(by_c, m_cap, c_cap) >= 1
    ok_a = cap_ok & (regions >= 1) & (m_s * c_s <= regions)
    glb = ifmap + n * m_s * e * F + m_s * c_s * h * S
    ok_s = (a["rf_filter_words"] >= 1) & (glb <= a["glb_words"])
    if not storage:
        ok_s = jnp.ones_like(ok_a)
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


WS = base.Dataflow("ws", grid, counts, parallelism, MAPPING_KEYS, radices, __doc__)
DEFAULT_SEARCH = WS.DEFAULT_SEARCH
prepare_space = WS.prepare_space
FAMILIES = base.FAMILIES
search_layer = WS.search_layer
validate_arch = WS.validate_arch
