"""Output stationary dataflows (ISCA16 §IV-B / §VI-A) on an ISCA16Spatial architecture.

Each PE accumulates one ofmap value in its RF over all channels and filter positions; the value
leaves the PE once, finished. The three variants pick which ofmaps share the array (ISCA16 Fig. 3):

- OS_A (SOC-MOP): one output channel, an a_e×a_f region of one ofmap plane on the array's rows and
  columns. Weights are broadcast to the region; ifmaps enter once per pass and shift between
  neighbouring PEs through their RF row buffers (2-D convolutional reuse).
- OS_B (MOC-MOP): m_s output channels × a_f pixels of one ofmap row. A PE row holds floor(cols/a_f)
  (filter, segment) groups; weights are multicast to the a_f PEs of their segment, ifmaps broadcast to
  all filters and shifted along the segment (1-D convolutional reuse + ifmap reuse).
- OS_C (MOC-SOP): m_s output channels of one pixel. Each ifmap value is broadcast to all m_s PEs
  (ifmap reuse); every weight is read from the GLB for every output pixel.

Counting contract: docs/isca16_dataflows.md §OS.
"""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow import isca16_base as base
from eyejax.dataflow.rs import rows_glb
from eyejax.dataflow.tiling import cdiv, fdiv, tile_sum


def cols_glb(a, U, S):
    """Ifmap columns an a-wide output segment reads (its union of windows)."""
    return jnp.minimum((a - 1) * U + S, a * S)


def _shape(s):
    return (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "W_used"))


def _common(shape, n, e, one):
    """Counts every OS variant shares: MACs, block loads, RF psum accumulation, finished ofmaps."""
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    b = base.block_terms(shape, n, e)
    outputs = N * Mg * E * F
    macs = outputs * Cg * R * S
    loads = b["nb"] * b["ns"] * Mg * Cg * R * S     # every filter once per block, into the GLB
    c = {
        "macs": macs * one,
        "dram_ifmap_reads": b["dram_ifmap_reads"] * one,
        "dram_filter_reads": loads * one,
        "glb_ifmap_writes": b["glb_ifmap_writes"] * one,
        "glb_filter_writes": loads * one,
        "noc_ifmap": macs * one,
        "noc_filter": macs * one,                    # one weight delivery per MAC
        "rf_filter_reads": macs * one,               # operands pass through the RF (ISCA16 Eq. 3,
        "rf_filter_writes": macs * one,              # reuse d = 1): written once, read once

        "rf_psum_reads": macs * one,                 # accumulate in the RF
        "rf_psum_writes": macs * one,
    }
    c.update(base.outputs_terms(outputs, one))
    return c, b


# ------------------------------------------------------------------------------------------- OS_A
OSA_KEYS = ("a_e", "a_f", "n", "e")


def _n_closed(shape, a, e, other, storage):
    """The most images per block the GLB holds next to `other` words, snapped to T(N), and the
    cap before snapping (< 1: nothing fits)."""
    N = shape["N"]
    if not storage:
        return jnp.ones_like(e), jnp.ones_like(e)
    per_image = base.block_terms(shape, 1, e)["ifmap_block_words"]
    cap = jnp.minimum(N, fdiv(a["glb_words"] - other, per_image))
    return base.snap(N, cap), cap


def osa_radices(shape, arch, storage=True):
    """e in [1, E]; a_e, a_f and n in closed form (docs/isca16_dataflows.md §OS_A search)."""
    return (shape["E"],) if storage else (jnp.ones_like(shape["E"]),)


def osa_grid(shape, arch, space, dtype, storage=True):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    # a_e: the largest region height <= min(rows, E) that divides the strip (any, for e = E)
    X = jnp.minimum(a["pe_rows"], E)
    if storage:
        e = base.digits(space.size, osa_radices(shape, a), dtype)[0] + 1
        dv = jnp.arange(1, space.size + 1, dtype=dtype)
        divides = (e[:, None] - fdiv(e[:, None], dv) * dv == 0) & (dv <= X)
        a_e = jnp.where(e >= E, X, jnp.max(jnp.where(divides, dv, 1), axis=1))
    else:                       # array only: the strip is the whole plane
        e = E * jnp.ones((1,), dtype)
        a_e = X * jnp.ones((1,), dtype)
    # a_f: the widest segment <= min(cols, F) whose ifmap row segment fits the RF
    rf = a["rf_ifmap_words"]
    rf_cap = jnp.where(U < S, fdiv(rf - S, U) + 1, fdiv(rf, S)) if storage else jnp.inf
    a_f = jnp.maximum(jnp.minimum(jnp.minimum(F, a["pe_cols"]), rf_cap), 1) * jnp.ones_like(e)
    n, n_cap = _n_closed(shape, a, e, Cg * R * S, storage)
    ok_a = (a_e >= 1) & (a_e <= a["pe_rows"]) & (a_f <= a["pe_cols"])
    glb = base.block_terms(shape, n, e)["ifmap_block_words"] + Cg * R * S
    ok_s = ((a["rf_ifmap_words"] >= cols_glb(a_f, U, S)) & (a["rf_psum_words"] >= 1)
            & (n_cap >= 1) & (glb <= a["glb_words"]))
    if not storage:
        ok_s = jnp.ones_like(ok_a)
    return {"a_e": a_e, "a_f": a_f, "n": n, "e": e}, ok_a, ok_s


def osa_counts(shape, arch, mp, dtype):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a_e, a_f, n, e = (jnp.asarray(mp[k]).astype(dtype) for k in OSA_KEYS)
    one = jnp.ones_like(a_e * a_f * n * e)
    c, b = _common(shape, n, e, one)
    nre, nrf = cdiv(E, a_e), cdiv(F, a_f)
    passes = N * Mg * nre * nrf                     # (image, filter, region)
    c.update({
        "glb_filter_reads": passes * Cg * R * S,    # each weight once per pass, broadcast
        "glb_ifmap_reads": N * Mg * Cg * tile_sum(E, a_e, lambda x: rows_glb(x, U, R))
                           * tile_sum(F, a_f, lambda x: cols_glb(x, U, S)),
        "rf_ifmap_reads": c["macs"],                # ifmaps pass through the RF row buffers
        "rf_ifmap_writes": c["macs"],
        "passes": passes,
        "compute_cycles": passes * Cg * R * S,
        "ramp_cycles": N * Mg * (nrf * E + nre * F),   # systolic skew a_e + a_f per pass
    })
    active = jnp.minimum(a_e, E) * jnp.minimum(a_f, F)
    return base.finish(c, shape["G"], active)


def osa_parallelism(shape):
    return shape["E"] * shape["F"]


# ------------------------------------------------------------------------------------------- OS_B
OSB_KEYS = ("m_s", "a_f", "n", "e")


def osb_radices(shape, arch, storage=True):
    """e in [1, E] (T(E) under (F6)), a_f in T(F), n in T(N); m_s in closed form
    (docs/isca16_dataflows.md §OS_B)."""
    tf = base.tset_len(shape["F"])
    return (base.e_radix(shape), tf, base.tset_len(shape["N"])) if storage else (tf,)


def _m_closed(Mg, cap_array, room, per_filter):
    """The most filters the array (cap_array) and the GLB room (per_filter words each) hold,
    at most Mg, snapped to T(Mg), and the cap before snapping (< 1: nothing fits)."""
    cap = jnp.minimum(jnp.minimum(Mg, cap_array), fdiv(room, per_filter))
    return base.snap(Mg, cap), cap


def osb_grid(shape, arch, space, dtype, storage=True):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    d = base.digits(space.size if storage else space.phys_size, osb_radices(shape, a, storage),
                    dtype)
    a_f = base.tset(F, d[1] if storage else d[0])
    e, n, ifmap, room = base.block_room(shape, a["glb_words"], d[0], d[2 if storage else 0], a_f,
                                        storage)
    cap = a["pe_rows"] * fdiv(a["pe_cols"], a_f)
    m_s, m_cap = _m_closed(Mg, cap, room, Cg * R * S)
    ok_a = (a_f <= a["pe_cols"]) & (m_cap >= 1) & (m_s <= cap)
    glb = ifmap + m_s * Cg * R * S
    ok_s = (a["rf_ifmap_words"] >= S) & (a["rf_psum_words"] >= 1) & (glb <= a["glb_words"])
    if not storage:
        ok_s = jnp.ones_like(ok_a)
    return {"m_s": m_s, "a_f": a_f, "n": n, "e": e}, ok_a, ok_s


def osb_counts(shape, arch, mp, dtype):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    m_s, a_f, n, e = (jnp.asarray(mp[k]).astype(dtype) for k in OSB_KEYS)
    one = jnp.ones_like(m_s * a_f * n * e)
    c, b = _common(shape, n, e, one)
    nm, nrf = cdiv(Mg, m_s), cdiv(F, a_f)
    passes = N * E * nm * nrf                       # (m tile, image, ofmap row, segment)
    c.update({
        "glb_filter_reads": N * E * nrf * Mg * Cg * R * S,
        "glb_ifmap_reads": N * E * nm * Cg * R * tile_sum(F, a_f, lambda x: cols_glb(x, U, S)),
        "rf_ifmap_reads": c["macs"],
        "rf_ifmap_writes": c["macs"],
        "passes": passes,
        "compute_cycles": passes * Cg * R * S,
        "ramp_cycles": N * E * nm * F * one,         # shift-in skew a_f per pass
    })
    active = jnp.minimum(m_s, Mg) * jnp.minimum(a_f, F)
    return base.finish(c, shape["G"], active)


def osb_parallelism(shape):
    return shape["Mg"] * shape["F"]


# ------------------------------------------------------------------------------------------- OS_C
OSC_KEYS = ("m_s", "n", "e")


def osc_radices(shape, arch, storage=True):
    """e in [1, E] (T(E) under (F6)), n in T(N); m_s in closed form (docs/isca16_dataflows.md)."""
    return ((base.e_radix(shape), base.tset_len(shape["N"])) if storage
            else (jnp.ones_like(shape["E"]),))


def osc_grid(shape, arch, space, dtype, storage=True):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    pes = a["pe_rows"] * a["pe_cols"]
    d = base.digits(space.size if storage else 1, osc_radices(shape, a, storage), dtype)
    e, n, ifmap, room = base.block_room(shape, a["glb_words"], d[0], d[1 if storage else 0], d[0],
                                        storage)
    m_s, m_cap = _m_closed(Mg, pes, room, Cg * R * S)
    ok_a = (m_cap >= 1) & (m_s <= pes)
    glb = ifmap + m_s * Cg * R * S
    ok_s = (a["rf_psum_words"] >= 1) & (glb <= a["glb_words"])
    if not storage:
        ok_s = jnp.ones_like(ok_a)
    return {"m_s": m_s, "n": n, "e": e}, ok_a, ok_s


def osc_counts(shape, arch, mp, dtype):
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    m_s, n, e = (jnp.asarray(mp[k]).astype(dtype) for k in OSC_KEYS)
    one = jnp.ones_like(m_s * n * e)
    c, b = _common(shape, n, e, one)
    nm = cdiv(Mg, m_s)
    passes = N * E * F * nm                         # (m tile, output pixel)
    c.update({
        "glb_filter_reads": c["macs"],              # unicast: every weight for every pixel
        "glb_ifmap_reads": passes * Cg * R * S,     # each value once per pass, broadcast
        "rf_ifmap_reads": c["macs"],
        "rf_ifmap_writes": c["macs"],
        "passes": passes,
        "compute_cycles": passes * Cg * R * S,
        "ramp_cycles": passes * one,
    })
    active = jnp.minimum(m_s, Mg)
    return base.finish(c, shape["G"], active)


def osc_parallelism(shape):
    return shape["Mg"]


OS_A = base.Dataflow("os_a", osa_grid, osa_counts, osa_parallelism, OSA_KEYS, osa_radices,
                     "OS_A (SOC-MOP): " + __doc__)
OS_B = base.Dataflow("os_b", osb_grid, osb_counts, osb_parallelism, OSB_KEYS, osb_radices,
                     "OS_B (MOC-MOP): " + __doc__)
OS_C = base.Dataflow("os_c", osc_grid, osc_counts, osc_parallelism, OSC_KEYS, osc_radices,
                     "OS_C (MOC-SOP): " + __doc__)
