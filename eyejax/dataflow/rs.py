"""Row-stationary (RS) dataflow on Eyeriss v1: mapping space and closed-form cost.

The schedule and every count are defined in docs/rs_model.md; `eyejax/sim` executes the same
schedule on real tensors and the tests assert both agree exactly.

The mapping search enumerates a fixed-size candidate set (static shape, `RSSearchSpace`), costs all
candidates at once in float32 (fast, exact for the integer sizes involved up to 2**24 and within
1e-7 relative beyond), picks the best per objective, and recounts the chosen mapping in int64.
"""
from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.dataflow.mapping import COUNT_KEYS, RSMapping
from eyejax.dataflow.tiling import cdiv, clipped_cover, tile_sum


@dataclasses.dataclass(frozen=True)
class RSSearchSpace:
    """Static description of the candidate set; its size fixes the compiled shapes.

    e: ofmap rows per PE set, from `min(E, pe_cols) // k` for k in `e_splits` (then balanced so
    strips are near-equal). r: PE sets on different channels (capped by the channels), t: the
    remaining sets go to different filters. q: channels per PE. p: filters per PE, the most the
    scratchpads allow divided by each of `p_splits`. n: images per pass, ceil(N / k) for k in
    `n_splits`. m (psums kept in the GLB) is not enumerated: the largest that fits is optimal, since
    only the ifmap re-fetch count depends on it.
    """

    e_splits: tuple = (1, 2, 3, 4)
    r_options: tuple = (1, 2, 4, 8, 16, 32)
    q_options: tuple = (1, 2, 3, 4, 6, 8, 12)
    p_splits: tuple = (1, 2)
    n_splits: tuple = (1, 2, 4, 1 << 30)

    @property
    def size(self) -> int:
        return (len(self.e_splits) * len(self.r_options) * len(self.q_options)
                * len(self.p_splits) * len(self.n_splits))

    def grid(self) -> dict:
        rows = list(itertools.product(self.e_splits, self.r_options, self.q_options,
                                      self.p_splits, self.n_splits))
        cols = np.asarray(rows, dtype=np.int64).T
        return dict(e_split=cols[0], r=cols[1], q=cols[2], p_split=cols[3], n_split=cols[4])


DEFAULT_SEARCH = RSSearchSpace()


def layer_shape(layer, dtype):
    """Per-group shape of a layer (LayerArrays leaves or a Layer), cast to dtype."""
    if not hasattr(layer, "U"):  # a workload.Layer rather than LayerArrays
        vals = dict(N=layer.N, C=layer.C, M=layer.M, H=layer.H, W=layer.W, R=layer.R, S=layer.S,
                    U=layer.stride, P=layer.pad, G=layer.groups)
    else:
        vals = {k: getattr(layer, k) for k in ("N", "C", "M", "H", "W", "R", "S", "U", "P", "G")}
    v = {k: jnp.asarray(x).astype(dtype) for k, x in vals.items()}
    v["Cg"] = v["C"] // v["G"]
    v["Mg"] = v["M"] // v["G"]
    v["E"] = (v["H"] + 2 * v["P"] - v["R"]) // v["U"] + 1
    v["F"] = (v["W"] + 2 * v["P"] - v["S"]) // v["U"] + 1
    v["W_used"] = (v["F"] - 1) * v["U"] + v["S"]
    return v


def rows_glb(es, U, R):
    return jnp.minimum((es - 1) * U + R, es * R)


def counts(shape, arch, mp: RSMapping, dtype):
    """Every access count and cycle term of one layer under one mapping (docs/rs_model.md).

    Works elementwise, so any argument may carry extra (candidate or batch) dimensions.
    """
    s = shape
    N, Cg, Mg, E, F, R, S, U, P, G = (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "P", "G"))
    H, W, W_used = s["H"], s["W"], s["W_used"]
    h, e, r, t, p, q, n, m = (jnp.asarray(getattr(mp, k)).astype(dtype)
                              for k in ("h", "e", "r", "t", "p", "q", "n", "m"))
    one = jnp.ones_like(h)

    nb = cdiv(N, n)
    ns = cdiv(E, e)
    nf = cdiv(R, h)
    pt = p * t
    qr = q * r
    nc = cdiv(Cg, qr)
    npt = cdiv(Mg, pt)
    nm = cdiv(Mg, m)

    sum_p_eff = tile_sum(Mg, pt, lambda x: jnp.minimum(p, x))
    sum_t_eff = tile_sum(Mg, pt, lambda x: cdiv(x, p))
    sum_q_eff = tile_sum(Cg, qr, lambda y: jnp.minimum(q, y))
    sum_r_eff = tile_sum(Cg, qr, lambda y: cdiv(y, q))

    rows_glb_sum = tile_sum(E, e, lambda es: rows_glb(es, U, R))
    rows_pass_sum = tile_sum(
        E, e, lambda es: tile_sum(R, h, lambda hk: jnp.minimum((es - 1) * U + hk, es * hk)))
    real_rows = clipped_cover(E, e, U, R, P, H)
    real_cols = jnp.minimum(W_used, P + W) - P

    outputs = N * Mg * E * F
    macs = outputs * Cg * R * S
    noc_filter = nb * Mg * Cg * R * S * E
    noc_ifmap = N * Cg * E * R * sum_t_eff * W_used

    c = {
        "macs": macs,
        "dram_ifmap_reads": nm * N * Cg * real_rows * real_cols,
        "dram_filter_reads": nb * ns * Mg * Cg * R * S,
        "dram_psum_reads": 0 * one,
        "dram_psum_writes": outputs * one,
        "glb_ifmap_reads": N * Cg * rows_pass_sum * W_used * npt,
        "glb_ifmap_writes": nm * N * Cg * rows_glb_sum * W_used,
        "glb_filter_reads": 0 * one,
        "glb_filter_writes": 0 * one,
        "glb_psum_reads": outputs * nc * nf,
        "glb_psum_writes": outputs * nc * nf,
        "noc_ifmap": noc_ifmap,
        "noc_filter": noc_filter,
        "noc_psum": outputs * (sum_r_eff * R + nc * nf - 1),
        "rf_ifmap_reads": macs,
        "rf_ifmap_writes": noc_ifmap,
        "rf_filter_reads": macs,
        "rf_filter_writes": noc_filter,
        "rf_psum_reads": macs,
        "rf_psum_writes": macs,
        "passes": nb * ns * nf * nc * npt,
        "compute_cycles": S * F * N * ns * nf * sum_p_eff * sum_q_eff,
        "ramp_cycles": nb * ns * (S * nf * sum_p_eff * sum_q_eff + R * nc * npt),
    }
    # Groups run one after another: every count scales with G; active PEs do not.
    c = {k: v * G for k, v in c.items()}
    c["active_pes"] = h * jnp.minimum(e, E) * jnp.minimum(r, cdiv(Cg, q)) * jnp.minimum(t, cdiv(Mg, p))
    return {k: c[k] for k in COUNT_KEYS}


def feasible(shape, arch, mp: RSMapping, dtype):
    """Capacity rules of docs/rs_model.md; elementwise like `counts`."""
    s = shape
    E, F, R, S, U, W_used, Cg, Mg, N = (s[k] for k in ("E", "F", "R", "S", "U", "W_used", "Cg", "Mg", "N"))
    h, e, r, t, p, q, n, m = (jnp.asarray(getattr(mp, k)).astype(dtype)
                              for k in ("h", "e", "r", "t", "p", "q", "n", "m"))
    a = {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in (
        "pe_rows", "pe_cols", "filter_spad_words", "ifmap_spad_words", "psum_spad_words",
        "glb_banks", "glb_bank_words", "glb_ifmap_banks")}
    ok = (p * q * S <= a["filter_spad_words"]) & (q * S <= a["ifmap_spad_words"])
    ok &= p <= a["psum_spad_words"]
    ok &= (h >= 1) & (h <= a["pe_rows"]) & (e >= 1) & (e <= a["pe_cols"]) & (e <= E)
    sets = (a["pe_rows"] // h) * (a["pe_cols"] // e)
    ok &= (r >= 1) & (t >= 1) & (p >= 1) & (q >= 1) & (n >= 1) & (n <= N) & (r * t <= sets)
    ok &= (m >= p * t) & (m % (p * t) == 0)
    ok &= (h == jnp.minimum(R, a["pe_rows"]))
    ifmap_banks = cdiv(n * q * r * rows_glb(e, U, R) * W_used, a["glb_bank_words"])
    psum_banks = cdiv(n * m * e * F, a["glb_bank_words"])
    split = a["glb_ifmap_banks"] > 0
    ok &= jnp.where(split,
                    (ifmap_banks <= a["glb_ifmap_banks"])
                    & (psum_banks <= a["glb_banks"] - a["glb_ifmap_banks"]),
                    ifmap_banks + psum_banks <= a["glb_banks"])
    return ok


def candidates(shape, arch, space: RSSearchSpace, dtype):
    """The candidate mappings of one layer on one architecture: RSMapping of [K] arrays + mask."""
    g = {k: jnp.asarray(v).astype(dtype) for k, v in space.grid().items()}
    s = shape
    E, F, R, S, U, W_used, Cg, Mg, N = (s[k] for k in ("E", "F", "R", "S", "U", "W_used", "Cg", "Mg", "N"))
    a = {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in (
        "pe_rows", "pe_cols", "filter_spad_words", "ifmap_spad_words", "psum_spad_words",
        "glb_banks", "glb_bank_words", "glb_ifmap_banks")}
    h = jnp.minimum(R, a["pe_rows"]) * jnp.ones_like(g["r"])
    e_base = jnp.maximum(jnp.minimum(E, a["pe_cols"]) // g["e_split"], 1)
    e = cdiv(E, cdiv(E, e_base))                      # balanced strips
    q = g["q"]
    p_max = jnp.minimum(jnp.minimum(a["psum_spad_words"], a["filter_spad_words"] // (q * S)), Mg)
    p = jnp.maximum(p_max // g["p_split"], 1)
    sets = (a["pe_rows"] // h) * (a["pe_cols"] // e)
    r = jnp.maximum(jnp.minimum(jnp.minimum(g["r"], cdiv(Cg, q)), sets), 1)
    t = jnp.maximum(jnp.minimum(sets // r, cdiv(Mg, p)), 1)
    n = jnp.maximum(cdiv(N, g["n_split"]), 1)
    pt = p * t
    # Largest m (multiple of p*t) whose psums fit next to the ifmap block.
    ifmap_banks = cdiv(n * q * r * rows_glb(e, U, R) * W_used, a["glb_bank_words"])
    psum_banks = jnp.where(a["glb_ifmap_banks"] > 0, a["glb_banks"] - a["glb_ifmap_banks"],
                           a["glb_banks"] - ifmap_banks)
    m_fit = (psum_banks * a["glb_bank_words"]) // (n * e * F)
    m = jnp.minimum((m_fit // pt) * pt, cdiv(Mg, pt) * pt)
    m = jnp.maximum(m, pt)  # infeasible when it does not fit; the mask below says so
    mp = RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=m)
    ok = feasible(shape, arch, mp, dtype) & ((q <= Cg) | (q == 1))
    return mp, ok


OBJECTIVES = ("energy", "latency", "edp")
MAPPING_KEYS = ("h", "e", "r", "t", "p", "q", "n", "m")


def _as(tree, dtype):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x).astype(dtype), tree)


def _cost(shape, arch, sp, first, mp, dtype):
    from eyejax import cost

    c = counts(shape, arch, mp, dtype)
    en = cost.energy(c, arch, sp, first)
    dcyc = cost.dram_cycles(c, arch, sp, first)
    cycles = c["compute_cycles"] + c["ramp_cycles"] + dcyc
    return c, en, dcyc, cycles


def _score(objective, en, cycles):
    from eyejax import cost

    total = cost.total_energy(en)
    if objective == "energy":
        return total
    if objective == "latency":
        return cycles
    return total * cycles


def search_layer(layer, arch, sp, first, objective: str = "energy",
                 space: RSSearchSpace = DEFAULT_SEARCH):
    """Best RS mapping of one layer on one architecture and its exact cost (scalars).

    `layer` is one row of LayerArrays, `sp` one row of Sparsity. Returns a flat dict.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    f32 = jnp.float32
    arch32, sp32 = _as(arch, f32), _as(sp, f32)
    shape32 = layer_shape(layer, f32)
    mp_k, ok = candidates(shape32, arch32, space, f32)
    _, en_k, _, cyc_k = _cost(shape32, arch32, sp32, first, mp_k, f32)
    score = jnp.where(ok, _score(objective, en_k, cyc_k), jnp.inf)
    best = jnp.argmin(score)
    any_ok = jnp.any(ok)

    i64 = jnp.int64
    mp = RSMapping(**{k: jnp.round(getattr(mp_k, k)[best]).astype(i64) for k in MAPPING_KEYS})
    shape = layer_shape(layer, i64)
    c, en, dcyc, cycles = _cost(shape, arch, sp, first, mp, i64)
    zero_i = lambda x: jnp.where(any_ok, x, jnp.zeros_like(x))
    out = {k: zero_i(v) for k, v in c.items()}
    out.update({f"energy_{k}": zero_i(v) for k, v in en.items()})
    out["dram_cycles"] = zero_i(jnp.asarray(dcyc).astype(i64))
    out["cycles"] = zero_i(jnp.asarray(cycles).astype(i64))
    out.update({f"map_{k}": zero_i(getattr(mp, k)) for k in MAPPING_KEYS})
    out["feasible"] = any_ok
    out["num_candidates_feasible"] = jnp.sum(ok)
    return out


def layer_counts(layer, arch, mapping: RSMapping) -> dict:
    """Exact int64 counts of one layer (a workload.Layer or a LayerArrays row) under a mapping."""
    shape = layer_shape(layer, jnp.int64)
    return counts(shape, arch, mapping, jnp.int64)


def mapping_is_feasible(layer, arch, mapping: RSMapping) -> bool:
    return bool(feasible(layer_shape(layer, jnp.int64), arch, mapping, jnp.int64))
