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

import dataclasses

import jax.numpy as jnp

from eyejax.dataflow import isca16_base as base
from eyejax.dataflow.rs import rows_glb
from eyejax.dataflow.tiling import cdiv, fdiv, tile_sum


def cols_glb(a, U, S):
    """Ifmap columns an a-wide output segment reads (its union of windows)."""
    return jnp.minimum((a - 1) * U + S, a * S)


def _shape(s):
    return (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "W_used"))


def _n_e_axes(shape, space, i_n, i_e, nax, dtype):
    N, E = shape["N"], shape["E"]
    one = jnp.ones((1,) * nax, dtype)
    n = jnp.maximum(cdiv(N, base.axis(space.n_splits, i_n, nax, dtype)), 1) * one
    e = base.balanced(E, fdiv(E, base.axis(space.e_splits, i_e, nax, dtype))) * one
    return n, e


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
@dataclasses.dataclass(frozen=True)
class OSASearchSpace:
    """Grid [a_e split, a_f split, strip multiple j, n]: region a_e = about min(E, rows)/split rows
    by a_f = about min(F, cols)/split columns (balanced); the GLB strip is j regions tall."""

    ae_splits: tuple = (1, 2, 4)
    af_splits: tuple = (1, 2, 4)
    strip_regions: tuple = (1, 2, 4, 8, 1 << 20)
    n_splits: tuple = (1, 2, 4, 16, 1 << 30)


OSA_KEYS = ("a_e", "a_f", "n", "e")


def osa_grid(shape, arch, space, dtype):
    nax = 4
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    one = jnp.ones((1,) * nax, dtype)
    a_e = base.balanced(E, base.split(jnp.minimum(E, a["pe_rows"]),
                                      base.axis(space.ae_splits, 0, nax, dtype))) * one
    a_f = base.balanced(F, base.split(jnp.minimum(F, a["pe_cols"]),
                                      base.axis(space.af_splits, 1, nax, dtype))) * one
    j = base.axis(space.strip_regions, 2, nax, dtype)
    e = jnp.minimum(a_e * j, cdiv(E, a_e) * a_e)                 # a multiple of a_e
    n = jnp.maximum(cdiv(N, base.axis(space.n_splits, 3, nax, dtype)), 1) * one
    ok_a = (a_e <= a["pe_rows"]) & (a_f <= a["pe_cols"])
    glb = base.block_terms(shape, n, e)["ifmap_block_words"] + Cg * R * S
    ok_s = ((a["rf_ifmap_words"] >= cols_glb(a_f, U, S)) & (a["rf_psum_words"] >= 1)
            & (glb <= a["glb_words"]))
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
@dataclasses.dataclass(frozen=True)
class OSBSearchSpace:
    """Grid [a_f split, m split, n, e]: a_f = about min(F, cols)/split pixels per segment, m_s =
    min(Mg, rows·floor(cols/a_f)) / m split filters."""

    af_splits: tuple = (1, 2, 4, 8)
    m_splits: tuple = (1, 2, 4, 8, 16, 32, 64, 256)
    n_splits: tuple = (1, 2, 4, 16, 1 << 30)
    e_splits: tuple = (1, 2, 4, 8, 16, 1 << 30)


OSB_KEYS = ("m_s", "a_f", "n", "e")


def osb_grid(shape, arch, space, dtype):
    nax = 4
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    one = jnp.ones((1,) * nax, dtype)
    a_f = base.balanced(F, base.split(jnp.minimum(F, a["pe_cols"]),
                                      base.axis(space.af_splits, 0, nax, dtype))) * one
    cap = a["pe_rows"] * fdiv(a["pe_cols"], a_f)
    m_s = base.balanced(Mg, base.split(jnp.minimum(Mg, cap), base.axis(space.m_splits, 1, nax, dtype)))
    n, e = _n_e_axes(shape, space, 2, 3, nax, dtype)
    ok_a = (a_f <= a["pe_cols"]) & (m_s <= cap)
    glb = base.block_terms(shape, n, e)["ifmap_block_words"] + m_s * Cg * R * S
    ok_s = (a["rf_ifmap_words"] >= S) & (a["rf_psum_words"] >= 1) & (glb <= a["glb_words"])
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
@dataclasses.dataclass(frozen=True)
class OSCSearchSpace:
    """Grid [m split, n, e]: m_s = min(Mg, PEs) / m split filters (balanced)."""

    m_splits: tuple = (1, 2, 4, 8, 16, 32, 64, 256)
    n_splits: tuple = (1, 2, 4, 16, 1 << 30)
    e_splits: tuple = (1, 2, 4, 8, 16, 1 << 30)


OSC_KEYS = ("m_s", "n", "e")


def osc_grid(shape, arch, space, dtype):
    nax = 3
    N, Cg, Mg, E, F, R, S, U, W_used = _shape(shape)
    a = base.arch_ints(arch, dtype)
    pes = a["pe_rows"] * a["pe_cols"]
    one = jnp.ones((1,) * nax, dtype)
    m_s = base.balanced(Mg, base.split(jnp.minimum(Mg, pes),
                                       base.axis(space.m_splits, 0, nax, dtype))) * one
    n, e = _n_e_axes(shape, space, 1, 2, nax, dtype)
    ok_a = m_s <= pes
    glb = base.block_terms(shape, n, e)["ifmap_block_words"] + m_s * Cg * R * S
    ok_s = (a["rf_psum_words"] >= 1) & (glb <= a["glb_words"])
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


OS_A = base.Dataflow("os_a", osa_grid, osa_counts, osa_parallelism, OSA_KEYS, OSASearchSpace(),
                     "OS_A (SOC-MOP): " + __doc__)
OS_B = base.Dataflow("os_b", osb_grid, osb_counts, osb_parallelism, OSB_KEYS, OSBSearchSpace(),
                     "OS_B (MOC-MOP): " + __doc__)
OS_C = base.Dataflow("os_c", osc_grid, osc_counts, osc_parallelism, OSC_KEYS, OSCSearchSpace(),
                     "OS_C (MOC-SOP): " + __doc__)
