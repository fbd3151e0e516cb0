"""No local reuse (NLR, ISCA16 §IV-C / §VI-A) on an ISCA16Spatial architecture (no RF).

The array is c_s groups of m_s PEs. In one step every PE of group i multiplies the same ifmap value
(channel i, one filter position, one output pixel) by its own weight (filter j, read from the GLB);
the products of the c_s groups add up across the array, and the m_s sums go back to the GLB, where
the psums accumulate over channel tiles and the R·S filter positions. Counting contract:
docs/isca16_dataflows.md §NLR.
"""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow import isca16_base as base
from eyejax.dataflow.tiling import cdiv, fdiv

MAPPING_KEYS = ("m_s", "c_s", "n", "e")


def _shape(s):
    return (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "W_used"))


def radices(shape, arch, storage=True):
    """e in [1, E] (T(E) under (F6)), n in T(N), c_s in T(Cg); m_s in closed form
    (docs/isca16_dataflows.md §NLR)."""
    tc = base.tset_len(shape["Cg"])
    return (base.e_radix(shape), base.tset_len(shape["N"]), tc) if storage else (tc,)


def grid(shape, arch, space, dtype, storage=True):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    pes = a["pe_rows"] * a["pe_cols"]
    d = base.digits(space.size if storage else space.phys_size, radices(shape, a, storage), dtype)
    c_s = base.tset(Cg, d[2] if storage else d[0])
    e, n, ifmap, room = base.block_room(shape, a["glb_words"], d[0], d[1 if storage else 0], c_s,
                                        storage)
    # m_s: the most filters the array (m_s·c_s <= PEs) and the GLB (weights + psums) hold
    cap = jnp.minimum(jnp.minimum(Mg, fdiv(pes, c_s)), fdiv(room, Cg * R * S + 1))
    m_s = base.snap(Mg, cap)
    ok_a = (cap >= 1) & (m_s * c_s <= pes)
    glb = ifmap + m_s * Cg * R * S + m_s
    ok_s = glb <= a["glb_words"]
    if not storage:
        ok_s = jnp.ones_like(ok_a)
    return {"m_s": m_s, "c_s": c_s, "n": n, "e": e}, ok_a, ok_s


def counts(shape, arch, mp, dtype):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    m_s, c_s, n, e = (jnp.asarray(mp[k]).astype(dtype) for k in MAPPING_KEYS)
    one = jnp.ones_like(m_s * c_s * n * e)
    b = base.block_terms(shape, n, e)
    nb, ns = b["nb"], b["ns"]
    nm, nc = cdiv(Mg, m_s), cdiv(Cg, c_s)
    outputs = N * Mg * E * F
    macs = outputs * Cg * R * S
    loads = nb * ns * Mg * Cg * R * S
    steps_per_output = nc * R * S                      # GLB round trips of each psum
    c = {
        "macs": macs * one,
        "dram_ifmap_reads": b["dram_ifmap_reads"] * one,
        "dram_filter_reads": loads * one,
        "dram_psum_reads": 0 * one,
        "dram_psum_writes": outputs * one,
        "glb_ifmap_reads": N * E * F * nm * Cg * R * S,  # once per step, broadcast to its group
        "glb_ifmap_writes": b["glb_ifmap_writes"] * one,
        "glb_filter_reads": macs * one,                # every weight for every output pixel
        "glb_filter_writes": loads * one,
        "glb_psum_reads": outputs * steps_per_output,  # incl. the final read for the write-back
        "glb_psum_writes": outputs * steps_per_output,
        "noc_ifmap": macs * one,
        "noc_filter": macs * one,
        "noc_psum": outputs * (Cg * R * S + steps_per_output - 1),
        "rf_ifmap_reads": 0 * one, "rf_ifmap_writes": 0 * one,
        "rf_filter_reads": 0 * one, "rf_filter_writes": 0 * one,
        "rf_psum_reads": 0 * one, "rf_psum_writes": 0 * one,
        "passes": nb * ns * nm,
        "compute_cycles": N * E * F * nm * nc * R * S,
        "ramp_cycles": nb * ns * nm * jnp.minimum(c_s, Cg),   # adder chain across the groups
    }
    active = jnp.minimum(m_s, Mg) * jnp.minimum(c_s, Cg)
    return base.finish(c, shape["G"], active)


def parallelism(shape):
    """Eyexam step 2: one PE per (filter, channel) pair."""
    return shape["Mg"] * shape["Cg"]


NLR = base.Dataflow("nlr", grid, counts, parallelism, MAPPING_KEYS, radices, __doc__)
DEFAULT_SEARCH = NLR.DEFAULT_SEARCH
prepare_space = NLR.prepare_space
FAMILIES = base.FAMILIES
search_layer = NLR.search_layer
validate_arch = NLR.validate_arch
