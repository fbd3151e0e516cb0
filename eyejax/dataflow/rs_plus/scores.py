"""RS+ candidate grid and its scores: every candidate mapping of the static grid, its feasibility,
and its energy and cycles, each term computed only on the grid axes it depends on (mesh hops and
the NoC bound approximated: the rs_plus package docstring, "Search")."""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow import rs
from eyejax.dataflow.mapping import RSPlusMapping
from eyejax.dataflow.rs_plus.dense import column_strip_cols
from eyejax.dataflow.rs_plus.encoding import arch_in, formats
from eyejax.dataflow.rs_plus.noc import approx_noc, psum_blocks_fit
from eyejax.dataflow.rs_plus.space import MAPPING_KEYS, RSPlusSearchSpace
from eyejax.dataflow.rs_plus.timing import blom_kappa, pass_time
from eyejax.dataflow.tiling import cdiv, clipped_cover, fdiv, tile_sum


def candidate_grid(shape, arch, sp, space: RSPlusSearchSpace, dtype):
    """Candidate RS+ mappings on the [e, r, g, q, p, n] grid; each parameter broadcasts to the grid
    and has size 1 on the axes it does not depend on (t, b, o, oc and m are derived). Returns
    (RSPlusMapping, feasibility mask)."""
    nax = len(space.axes)

    def axis(i):
        shp = [1] * nax
        shp[i] = len(space.axes[i])
        return jnp.asarray(space.axes[i], dtype).reshape(shp)

    e_split, r_opt, g_split, q_split, p_split, n_split = (axis(i) for i in range(nax))
    s = shape
    E, F, R, S, U, W_used, Cg, Mg, N, G = (s[k] for k in ("E", "F", "R", "S", "U", "W_used", "Cg",
                                                          "Mg", "N", "G"))
    a = arch_in(arch, dtype)
    one = jnp.ones((1,) * nax, dtype)
    d_i = jnp.asarray(sp.iact_density).astype(dtype)
    d_w = jnp.asarray(sp.weight_density).astype(dtype)
    sparse = (d_i < 1) | (d_w < 1)
    wi0 = jnp.where(sparse, jnp.maximum(d_i, 1e-3), 1.0)   # stored words per value, for the bounds
    ww0 = jnp.where(sparse, jnp.maximum(d_w, 1e-3), 1.0)
    h = jnp.minimum(R, a["cpes"]) * one
    e_base = jnp.maximum(fdiv(jnp.minimum(E, fdiv(a["cpes"], h)), e_split), 1)
    e = cdiv(E, cdiv(E, e_base))                                           # [e]
    k = fdiv(a["cpes"], h * e)                                             # [e] sets per cluster
    sets = k * a["clusters"]                                               # [e]
    q_max = fdiv(a["iact_spad_words"], S * wi0)
    # q at most the channels and what leaves room for one filter in the weight spad (a large iact
    # spad otherwise gave every q split more channels than the weight spad holds: no fit at all)
    q_top = jnp.minimum(Cg, jnp.maximum(fdiv(a["weight_spad_words"], S * ww0), 1))
    q = jnp.minimum(jnp.maximum(fdiv(q_max, q_split), 1), q_top)           # [q]
    r = jnp.maximum(jnp.minimum(r_opt, cdiv(Cg, q)), 1)                    # [r, q]
    # balanced channel split: the same channel tiles, evened out (never more compute; the last
    # tile keeps all r channel sets more often, which the psum chains' column rule needs)
    q = cdiv(Cg, r * cdiv(Cg, r * q))                                      # [r, q]
    p_max = jnp.minimum(jnp.minimum(a["psum_spad_words"], fdiv(a["weight_spad_words"], q * S * ww0)), Mg)
    g = jnp.minimum(G, jnp.maximum(fdiv(fdiv(sets, r), g_split), 1))       # [e, r, g, q]
    # p split 0 = balanced: the fewest filter chunks the free sets allow, each split evenly over
    # them, p rounded up to whole SIMD pairs (macs_per_pe filters share a weight column)
    t_room = jnp.maximum(fdiv(sets, r * g), 1)                            # [e, r, g, q]
    chunk = cdiv(Mg, cdiv(Mg, t_room * p_max))
    mpp = a["macs_per_pe"]
    p_bal = jnp.minimum(cdiv(cdiv(chunk, t_room), mpp) * mpp, p_max)
    p = jnp.where(p_split == 0, p_bal, fdiv(p_max, jnp.maximum(p_split, 1)))
    p = jnp.maximum(p, 1)                                                  # [e, r, g, q, p]
    t = jnp.maximum(jnp.minimum(fdiv(sets, r * g), cdiv(Mg, p)), 1)        # [e, r, g, q, p]
    n = jnp.maximum(cdiv(N, n_split), 1)                                   # [n]
    b = jnp.maximum(jnp.minimum(fdiv(sets, r * g * t), cdiv(N, n)), 1)     # full grid
    pt = p * t
    fm = formats(a, sp, q, p, dtype)
    m_fit = fdiv(fdiv(a["psum_glb_total"], a["psum_bits"]), g * n * b * e * F)
    m = jnp.minimum(fdiv(m_fit, pt) * pt, cdiv(Mg, pt) * pt)
    iact_block = g * n * b * q * r * rs.rows_glb(e, U, R) * W_used * fm["beta_i"]
    # the psum chains' column rule (noc.psum_chains_in_columns) on the first pass's sets: r, t
    # and g are capped here already (t by cdiv(Mg, p), g by G, r by cdiv(Cg, q) before the
    # balanced split, which only raises cdiv(Cg, q)), o by E/e
    L, rb = k * a["cluster_rows"], r * jnp.minimum(b, cdiv(N, n))
    o = strip_sets(E, e, sets, r * t * g * b, fdiv(m_fit, jnp.maximum(m, pt)),
                   fdiv(a["iact_glb_total"], iact_block), space, (L, r, rb, t * g)) \
        if space.strip_sets else jnp.ones_like(e)
    oc = column_strip_sets(F, U, S, fdiv(sets, r * t * g * b * o), o * iact_block / W_used,
                           a["iact_glb_total"], space, (L, r, rb * o, t * g)) \
        if space.strip_sets else jnp.ones_like(e)
    ok = (m >= pt) & (q_max >= 1) & (r * t * g * b <= sets)
    ok &= (q * S * fm["ratio_i"] <= a["iact_spad_words"])
    ok &= (p * q * S * fm["ratio_w"] <= a["weight_spad_words"])
    ok &= iact_block <= a["iact_glb_total"]
    ok &= psum_blocks_fit(r, rb * o, t * g, L)
    m = jnp.maximum(m, pt)
    return RSPlusMapping(h=h, e=e, r=r, t=t, g=g, b=b, p=p, q=q, n=n, m=m, o=o, oc=oc), ok


def equal_strips(D, room, tries: int, fits=None):
    """The most equal strips side by side among D (D/k for the least k >= D/room dividing D, k
    tried at `tries` values; 1 when none divides). `fits(x)`: a further legality mask of x strips."""
    k0 = cdiv(D, jnp.maximum(room, 1))
    x = jnp.ones_like(D * room)
    for j in reversed(range(tries)):
        # (divisibility as in noc.psum_blocks_fit, not jnp.mod; k0 + j > D gives xj = 0: no)
        xj = fdiv(D, k0 + j)
        ok = xj * (k0 + j) == D
        if fits is not None:
            ok &= fits(xj)
        x = jnp.where(ok, xj, x)
    return x


def column_strip_sets(F, U, S, room, col_block, iact_total, space: RSPlusSearchSpace, column):
    """The grid's column strip sets oc: the sets still idle after the strip sets (`room` per set
    taken) take equal strips of the F ofmap columns side by side (`equal_strips`), as far as the
    iact GLB holds their blocks, if the psum chains then stay in their columns (`column` = (L, r,
    r·b·o, t·g), noc.psum_chains_in_columns); 1 for windows that neither overlap nor touch
    (U > S). `col_block`: the strip tile's iact GLB words per padded ifmap column (all its blocks
    of whole rows hold W_used columns). x strips of F/x columns hold x·W_f = F·U + x·(S − U)
    columns, linear in x, so the GLB gives one bound on x (conservatively rounded: the recount's
    `feasible` decides exactly); the psum GLB holds the same psums whatever x."""
    L, r0, rbo, tg = column
    spare = iact_total * (1.0 - 2.0 ** -20) / col_block - F * U
    room = jnp.where(S > U, jnp.minimum(room, fdiv(spare, jnp.maximum(S - U, 1))), room)
    oc = equal_strips(F, room, space.strip_tries)
    # (the psum-column rule checked once, on the chosen count: cheaper on the full grid than per
    # try, at the price of whole rows where a smaller count would have kept the rule)
    return jnp.where((U <= S) & psum_blocks_fit(r0, rbo * oc, tg, L), oc, 1.0)


def strip_sets(E, e, sets, used, psum_room, iact_room, space: RSPlusSearchSpace, column=None):
    """The grid's strip sets o: the sets left after r·t·g·b (`used`) take further strips of the
    same images side by side, as far as the GLBs' spare room holds their blocks beside the
    candidate's m (`psum_room`, `iact_room`: no extra ifmap re-reads, m unchanged), in equal strip
    tiles: o = D/k for the least k >= D/room dividing the D = E/e strips, k tried at
    `space.strip_tries` values (none divides: o = 1; e not dividing E: o = 1). `column` = (L, r,
    r·b, t·g) of the first pass: an o that would lead its psum chains (blocks of r·b·o slots)
    across a column of L slots is skipped (noc.psum_chains_in_columns)."""
    room = jnp.maximum(jnp.minimum(fdiv(sets, used), jnp.minimum(psum_room, iact_room)), 1)
    De = fdiv(E, e)                       # (divisibility as in noc.psum_blocks_fit, not jnp.mod)
    D = jnp.where(De * e == E, De, 1.0)
    fits = None
    if column is not None:
        L, r0, rb, tg = column
        fits = lambda x: psum_blocks_fit(r0, rb * x, tg, L)
    return equal_strips(D, room, space.strip_tries, fits)


def candidate_active_pes(shape, mp: RSPlusMapping):
    """Active PEs of every candidate (the first pass's; as `counts`)."""
    s = shape
    h, e, r, t, g, b, p, q, n, m, o, oc = (getattr(mp, k) for k in MAPPING_KEYS)
    return (h * jnp.minimum(e, s["E"]) * jnp.minimum(r, cdiv(s["Cg"], q))
            * jnp.minimum(t, cdiv(s["Mg"], p)) * jnp.minimum(g, s["G"]) * jnp.minimum(b, cdiv(s["N"], n))
            * jnp.minimum(o, cdiv(s["E"], e)) * oc)


def candidate_scores(shape, arch, sp, first, mp: RSPlusMapping, objective: str, dtype,
                     with_hops: bool = True):
    """Energy and cycles of every grid candidate, each term on the axes it depends on.

    With hop energy 0 the energy equals `counts` + `energy` exactly (a test checks it); hops and the
    NoC bound are approximated (module docstring)."""
    s = shape
    N, Cg, Mg, E, F, R, S, U, P, G = (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "P", "G"))
    H = s["H"]
    h, e, r, t, g, b, p, q, n, m, o, oc = (getattr(mp, k) for k in MAPPING_KEYS)
    # a row's ifmap columns over its column strips (each its own W_f-column block) and the
    # columns a column strip set computes
    f = F / oc
    W_cols, real_cols = column_strip_cols(shape, oc, f)
    a = arch_in(arch, dtype)
    et = arch.energy
    fm = formats(a, sp, q, p, dtype)
    bi, bw, bo = fm["beta_i"], fm["beta_w"], fm["beta_o"]
    pb, u = a["psum_bits"], 1.0 / 16.0
    nb = n * b
    nnt, ns, nf = cdiv(N, nb), cdiv(E, e * o), cdiv(R, h)    # ns: strip tiles
    pt, qr = p * t, q * r
    nc, npt, nm = cdiv(Cg, qr), cdiv(Mg, pt), cdiv(Mg, m)
    sum_t_eff = tile_sum(Mg, pt, lambda x: cdiv(x, p))
    sum_r_eff = tile_sum(Cg, qr, lambda y: cdiv(y, q))
    sum_bk = tile_sum(N, nb, lambda z: cdiv(z, n))
    rows_glb_sum = tile_sum(E, e, lambda es: rs.rows_glb(es, U, R))
    rows_pass_sum = tile_sum(
        E, e, lambda es: tile_sum(R, h, lambda hk: jnp.minimum((es - 1) * U + hk, es * hk)))
    real = clipped_cover(E, e, U, R, P, H) * real_cols
    outputs = N * Mg * E * F
    macs = outputs * Cg * R * S
    filt = Mg * Cg * R * S
    # per group, then × G
    per_m = N * Cg * bi * (et.dram * real + et.glb * rows_glb_sum * W_cols)
    dram_f = nnt * ns * filt                                                        # dense words
    noc_f = filt * E * oc * sum_bk
    glb_ir = N * Cg * rows_pass_sum * npt * W_cols
    noc_i = N * Cg * E * R * sum_t_eff * W_cols
    glb_p = outputs * nc * nf
    noc_p = outputs * (sum_r_eff * R + nc * nf - 1)
    e_filter = bw * (et.dram * dram_f + (et.noc + et.rf) * noc_f)
    e_ifmap = bi * (et.glb * glb_ir + (et.noc + et.rf) * noc_i)
    e_psum = pb * (et.glb * 2 * glb_p + et.noc * noc_p)
    e_const = (et.dram * outputs * bo
               + et.rf * macs * (fm["d_mac"] * (fm["word_i"] + fm["ratio_w"] * fm["word_w"]) + 2 * fm["d_pair"] * pb)
               + et.alu * a["data_bits"] * macs * fm["d_pair"])
    energy_ = G * u * (nm * per_m + e_filter + e_ifmap + e_psum + e_const)
    noc = approx_noc({"filter": G * dram_f, "ifmap": G * glb_ir, "psum": G * glb_p},
                     h, e, r, t, g, b, p, q, n, o, shape, a, oc)
    if with_hops:
        energy_ = energy_ + u * et.hop * (bw * noc["hops_filter"] + bi * noc["hops_ifmap"]
                                          + pb * noc["hops_psum"])
    if objective == "energy":
        return energy_, None
    mpp = a["macs_per_pe"]
    sum_q = tile_sum(Cg, qr, lambda y: jnp.minimum(q, y))
    ngt = cdiv(G, g)
    sum_pc = tile_sum(Mg, pt, lambda x: cdiv(jnp.minimum(p, x), mpp))
    ramp = ngt * nnt * ns * (S * nf * sum_pc * sum_q + (R + nf * (a["pe_pipeline_stages"] - 1)) * nc * npt)
    active = candidate_active_pes(shape, mp)
    sum_nset = tile_sum(N, nb, lambda z: jnp.minimum(n, z))
    dense_c = ngt * S * f * ns * nf * sum_nset * sum_pc * sum_q
    # sparse: mean + imbalance of the full pass, times the passes (the recount sums the classes)
    sparse_c = (ngt * ns * nf * nnt * nc * npt
                * pass_time(jnp.minimum(n, N), jnp.minimum(q, Cg), jnp.minimum(p, Mg), f, S, U,
                             fm["d_mac"], fm["d_w"], mpp, blom_kappa(active)))
    compute = jnp.where(fm["sparse"], sparse_c, dense_c)
    # NoC bound: per-cluster loads of the approximation
    noc_c = jnp.maximum(jnp.maximum(
        noc["load_filter"] * bw / (a["weight_routers"] * a["weight_port_bits"]),
        noc["load_ifmap"] * bi / (a["iact_routers"] * a["iact_port_bits"])),
        noc["load_psum"] * pb / (a["psum_routers"] * a["psum_port_bits"]))
    words_bits = G * (nm * N * Cg * real * bi + dram_f * bw + outputs * bo)
    dram = words_bits * a["clock_mhz"] / (a["dram_bus_bits"] * a["dram_clock_mhz"])
    return energy_, jnp.maximum(compute + ramp, noc_c) + dram
