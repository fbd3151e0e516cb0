"""RS+ dense counts and capacity rules of one layer under one mapping (docs/rs_plus_model.md): every
RS count with n replaced by n·b and an ifmap row's columns by its column strips' (`rs.counts`
reused), except the filter DRAM reads and deliveries, passes, cycles and active PEs (strip sets:
o row strips × oc column strips of a strip tile run side by side)."""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow import rs
from eyejax.dataflow.mapping import COUNT_KEYS, RSMapping
from eyejax.dataflow.rs_plus.encoding import arch_in, formats
from eyejax.dataflow.rs_plus.noc import psum_chains_in_columns
from eyejax.dataflow.rs_plus.space import mapping_values
from eyejax.dataflow.tiling import cdiv, fdiv, tile_sum


def counts(shape, arch, mp, dtype):
    """Every dense access count and cycle term (COUNT_KEYS) of one layer under one RS+ mapping.

    Elementwise: any argument may carry extra (candidate or batch) dimensions."""
    s = shape
    N, Cg, Mg, E, F, R, S, G = (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "G"))
    h, e, r, t, g, b, p, q, n, m, o, oc = mapping_values(mp, dtype)
    mpp = jnp.asarray(arch.macs_per_pe).astype(dtype)
    nb = n * b
    # column strip sets: each of the oc strips of f columns holds and reads its own W_f columns
    f = fdiv(F, oc)
    c = rs.counts(shape, None, RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=nb, m=m), dtype,
                  ifmap_cols=column_strip_cols(shape, oc, f))
    # strip tiles of o·e rows: their o strip sets run in one pass and share each weight read
    ngt, nnt, ns, nf = cdiv(G, g), cdiv(N, nb), cdiv(E, e * o), cdiv(R, h)
    pt, qr = p * t, q * r
    nc, npt = cdiv(Cg, qr), cdiv(Mg, pt)
    sum_bk = tile_sum(N, nb, lambda z: cdiv(z, n))
    sum_nset = tile_sum(N, nb, lambda z: jnp.minimum(n, z))
    sum_pc = tile_sum(Mg, pt, lambda x: cdiv(jnp.minimum(p, x), mpp))
    sum_q = tile_sum(Cg, qr, lambda y: jnp.minimum(q, y))
    noc_filter = G * Mg * Cg * R * S * E * oc * sum_bk
    c["noc_filter"] = noc_filter
    c["rf_filter_writes"] = noc_filter
    c["dram_filter_reads"] = G * nnt * ns * Mg * Cg * R * S
    c["passes"] = ngt * nnt * ns * nf * nc * npt
    c["compute_cycles"] = ngt * S * f * ns * nf * sum_nset * sum_pc * sum_q
    stages = jnp.asarray(arch.pe_pipeline_stages).astype(dtype)
    c["ramp_cycles"] = ngt * nnt * ns * (S * nf * sum_pc * sum_q + (R + nf * (stages - 1)) * nc * npt)
    c["active_pes"] = (h * jnp.minimum(e, E) * jnp.minimum(r, cdiv(Cg, q)) * jnp.minimum(t, cdiv(Mg, p))
                       * jnp.minimum(g, G) * jnp.minimum(b, cdiv(N, n)) * jnp.minimum(o, cdiv(E, e))
                       * oc)
    return {k: c[k] for k in COUNT_KEYS}


def column_strip_cols(shape, oc, f=None):
    """(padded, real) ifmap columns of one ifmap row's blocks, summed over its oc column strips of
    f = F/oc ofmap columns: strip j holds the W_f = (f − 1)·U + S padded columns from j·f·U, the
    real ones (inside [P, P + W)) read from DRAM. A strip loses max(0, P − j·f·U) columns to the
    left pad (P < S <= W_f) and, counted from the last strip (which ends at W_used), max(0,
    D − i·f·U) to the right one, D = W_used − P − W: two arithmetic series (as
    tiling.clipped_cover's, in fewer operations: this runs on the search's full grid). oc = 1
    gives RS's (W_used, min(W_used, P + W) − P). `f`: F/oc where the caller has it."""
    F, U, S, P, W, W_used = (shape[k] for k in ("F", "U", "S", "P", "W", "W_used"))
    f = fdiv(F, oc) if f is None else f
    step = f * U
    D = jnp.maximum(W_used - P - W, 0)

    def lost(x):            # Σ_{j < oc} max(0, x − j·step), x >= 0
        k = jnp.minimum(oc, cdiv(x, step))
        return k * x - step * fdiv(k * (k - 1), 2)

    padded = oc * ((f - 1) * U + S)
    return padded, padded - lost(P) - lost(D)


def feasible(shape, arch, sp, mp, dtype):
    """Capacity rules of docs/rs_plus_model.md (elementwise). `sp` None = dense."""
    s = shape
    E, F, R, S, U, Cg, Mg, N, G = (s[k] for k in ("E", "F", "R", "S", "U", "Cg",
                                                          "Mg", "N", "G"))
    h, e, r, t, g, b, p, q, n, m, o, oc = mapping_values(mp, dtype)
    a = arch_in(arch, dtype)
    # CSC column heights are the filters and channels that exist: p and q beyond Mg and Cg add
    # nothing (docs/rs_plus_model.md "Mapping search", reduction (R1))
    fm = formats(a, sp, jnp.minimum(q, Cg), jnp.minimum(p, Mg), dtype) if sp is not None else None
    wi = 1.0 if fm is None else fm["ratio_i"]
    ww = 1.0 if fm is None else fm["ratio_w"]
    beta_i = a["data_bits"] if fm is None else fm["beta_i"]
    k = fdiv(a["cpes"], h * e)
    ok = (h >= 1) & (h <= jnp.minimum(R, a["cpes"])) & (e >= 1) & (e <= E) & (h * e <= a["cpes"])
    ok &= (r >= 1) & (t >= 1) & (g >= 1) & (b >= 1) & (p >= 1) & (q >= 1) & (n >= 1) & (n <= N)
    # strip sets take equal strips: o > 1 only where o·e rows tile E exactly (divisibility as
    # floor(a/b)·b = a, like the grid's: jnp.mod's float path is slow)
    ok &= (o == 1) | ((o >= 1) & (fdiv(E, o * e) * (o * e) == E))
    # column strip sets take equal strips of f = F/oc columns, with overlapping or touching
    # windows (U <= S) so that a strip's block is one contiguous column range
    ok &= (oc == 1) | ((oc >= 1) & (fdiv(F, oc) * oc == F) & (U <= S))
    ok &= r * t * g * b * o * oc <= k * a["clusters"]
    ok &= psum_chains_in_columns(N, Cg, Mg, G, E, (h, e, r, t, g, b, p, q, n, m, o, oc), k,
                                 a["cluster_rows"])
    ok &= (m >= p * t) & (fdiv(m, p * t) * (p * t) == m) & (m <= cdiv(Mg, p * t) * p * t)
    ok &= (q * S * wi <= a["iact_spad_words"]) & (p * q * S * ww <= a["weight_spad_words"])
    ok &= p <= a["psum_spad_words"]
    W_f = (fdiv(F, oc) - 1) * U + S
    ok &= g * n * b * o * oc * q * r * rs.rows_glb(e, U, R) * W_f * beta_i <= a["iact_glb_total"]
    ok &= g * n * b * o * m * e * F * a["psum_bits"] <= a["psum_glb_total"]
    return ok
