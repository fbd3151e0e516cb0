"""RS+ on the hierarchical-mesh NoC: router transfers, mesh hops, per-cluster loads and NoC modes,
exact (`noc_routes`, the recount) or estimated (`approx_noc`, the search), and the NoC-bound cycles.

How the exact closed form works (docs/rs_plus_model.md, HM-NoC). The layer's slot layout is its
first pass's: set (gi, ti, ri, bi, oi) sits in slot j = ((gi·T0 + ti)·R0 + ri)·X0 + xi with
xi = bi·O0 + oi over the X0 = B0·O0 image × strip sets (strip sets innermost, O0 row × column
strip sets; every strip set has e rows when o > 1: o·e divides E, and F/oc columns), and slot j
lives in cluster floor(j / k). A pass of class
(z, y, x) (full or remainder tile of the images, channels, filters) fills a prefix of each digit
(b_eff, r_eff, t_eff live sets) and leaves the other slots idle. Every word a slot receives is a
product of per-index set sizes (n_b(bi), q_r(ri), p_t(ti): the full size except for the last
live index, 0 beyond it; strip sets repeat the image sets' sizes), so prefix sums over slots have
closed forms in the mixed-radix digits of the prefix end. Router transfers into cluster c are (i)
the words of chain starts in [ck, (c+1)k) (prefix differences at the cluster boundaries; for
psums, the last set's write into its GLB) and (ii) chain continuations whose previous set,
`stride` slots back, lies in an earlier cluster: exactly the live slots in [ck, ck + min(stride,
k)), a window inside at most two consecutive stride-blocks (stride = 1 weights, R0·X0 iacts, X0
psums; a chain's live sets are a prefix of it). Their hops are the
mesh distances from the previous set's cluster (clusters numbered down the columns; Manhattan for
iacts and psums, along a row only for weights), which is c − ceil(stride/k) before slot
(c − ceil(stride/k) + 1)·k + stride and one cluster later from there on.

Precision. The per-class per-cluster values are integers bounded by (slots) × (words per slot) ×
(mesh distance + 1); `dtype` float32 is exact when that bound is below 2**24 (`prepare_space`
proves it for a batch, else float64). Class and group-tile counts multiply in float64 (exact below
2**53), then the int64 per-pass multipliers.
"""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow.rs_plus.space import mapping_values
from eyejax.dataflow.tiling import cdiv, fdiv, tile_classes, tile_sum

DATA_TYPES = ("ifmap", "filter", "psum")
EXTRA_KEYS = (
    "router_ifmap", "router_filter", "router_psum", "hops_ifmap", "hops_filter", "hops_psum",
    "noc_cycles_ifmap", "noc_cycles_filter", "noc_cycles_psum",
    "noc_mode_ifmap", "noc_mode_filter", "noc_mode_psum",
)
# class axes of a pass: image tile z, channel tile y, filter tile x; cluster boundaries last
Z_AXIS, Y_AXIS, X_AXIS = (2, 1, 1, 1), (1, 2, 1, 1), (1, 1, 2, 1)


def floor_divmod(a, d):
    """(floor(a / d), remainder) of integer-valued float arrays."""
    qt = jnp.floor(a / d)
    return qt, a - qt * d


def _row_col_steps(a, c, rows):
    """(|row difference|, |column difference|) between clusters a and c, numbered down the
    columns of a mesh of `rows` rows (cluster c sits in row c mod rows of column floor(c / rows))."""
    ac, ar = floor_divmod(jnp.maximum(a, 0.0), rows)
    bc, br = floor_divmod(c, rows)
    return jnp.abs(ar - br), jnp.abs(ac - bc)


def mesh_dist(a, c, rows):
    """Manhattan distance between clusters a and c (iacts; psums, whose chains stay in a column)."""
    dr, dc = _row_col_steps(a, c, rows)
    return dr + dc


def weight_dist(a, c, rows):
    """Weight-mesh hops from cluster a to cluster c: the weight routers link only horizontally
    (JETCAS19), so a word goes along its row (|column difference| hops) and reaches another row
    from that cluster's own off-chip input (0 hops)."""
    dr, dc = _row_col_steps(a, c, rows)
    return jnp.where(dr == 0, dc, 0.0)


def psum_blocks_fit(r0, block, blocks, L):
    """The column rule on the layout's numbers: chain blocks of `block` slots (r0 channel sets
    each), `blocks` of them, stay within columns of L slots iff r0 <= 1 (no chain), or they all
    lie in column 0, or `block` divides L (`psum_chains_in_columns`; divisibility as
    floor(L/block)·block = L: jnp.mod's float path is slow on the search grid)."""
    return (r0 <= 1) | (blocks * block <= L) | (fdiv(L, block) * block == L)


def psum_chains_in_columns(N, Cg, Mg, G, E, mp_values, k, rows):
    """Whether every psum reduction chain stays inside one cluster column: the psum routers link
    only vertically (JETCAS19). Column j holds the slots [jL, (j+1)L), L = k·rows. The layer's
    slot layout is its first pass's (docs/rs_plus_model.md "HM-NoC"): chains run through
    consecutive blocks of R0·X0 slots (R0 channel sets, X0 = B0·O0 image × strip sets), and a later
    pass uses a prefix of each chain. So the chains stay in columns iff R0 <= 1, or all the
    G0·T0·R0·X0 slots lie in column 0, or R0·X0 divides L. Elementwise, any numeric dtype."""
    h, e, r, t, g, b, p, q, n, m, o, oc = mp_values
    r0 = jnp.minimum(r, cdiv(Cg, q))
    block = r0 * jnp.minimum(o, cdiv(E, e)) * oc * jnp.minimum(b, cdiv(N, n))
    return psum_blocks_fit(r0, block, jnp.minimum(t, cdiv(Mg, p)) * jnp.minimum(g, G), k * rows)


def set_size(i, L, full, last):
    """Size of set i of L live sets (full except the last; 0 from L on: idle slots)."""
    return jnp.where(i >= L, 0.0, jnp.where(i >= L - 1, last, full))


def set_prefix(x, L, full, last):
    """Total size of sets 0 .. x-1 of L live sets (x >= 0; everything from x >= L)."""
    return full * jnp.minimum(x, L - 1) + jnp.where(x >= L, last, 0.0)


class PassSets:
    """Per pass class, the live set counts (be images, re channels, te filters: b_eff, r_eff,
    t_eff) and the words of all image / channel / filter sets (Tb, Tr, Tt), each on its class
    axis, with the per-set sizes and their prefix sums over set indices, in the layer's slot layout:
    radices X0 = B0·O0 (image sets, each with its O0 strip sets innermost), R0 and T0 of the first
    pass; a later pass leaves the slots of its missing sets idle. The o strip sets of an image set
    repeat its words: the image × strip sets carry TB = o·Tb image words (their rows factor out:
    equal strips)."""

    def __init__(self, N, Cg, Mg, n, b, q, r, p, t, o, ft):
        zv, _ = tile_classes(N, n * b)
        yv, _ = tile_classes(Cg, q * r)
        xv, _ = tile_classes(Mg, p * t)
        cv = lambda v, shp=(): v.astype(ft).reshape(shp)
        self.be, self.re, self.te = cv(cdiv(zv, n), Z_AXIS), cv(cdiv(yv, q), Y_AXIS), cv(cdiv(xv, p), X_AXIS)
        self.Tb, self.Tr, self.Tt = cv(zv, Z_AXIS), cv(yv, Y_AXIS), cv(xv, X_AXIS)
        self.n, self.q, self.p = (cv(v) for v in (n, q, p))
        self.n_last = self.Tb - (self.be - 1) * self.n
        self.q_last = self.Tr - (self.re - 1) * self.q
        self.p_last = self.Tt - (self.te - 1) * self.p
        self.O = cv(o)
        self.X = cv(jnp.minimum(b, cdiv(N, n))) * self.O   # layout: image × strip sets of a block
        self.R = cv(jnp.minimum(r, cdiv(Cg, q)))            # layout: channel sets
        self.T = cv(jnp.minimum(t, cdiv(Mg, p)))            # layout: filter sets
        self.live_x = self.be * self.O                      # live image × strip sets of a pass
        self.TB = self.O * self.Tb
        self.slots = self.X * self.R * self.T               # slots of one group
        self.per_group = {"filter": self.Tr * self.Tt, "ifmap": self.Tr * self.TB,
                          "psum": self.Tt * self.TB}

    def Fb(self, x):
        return set_prefix(x, self.be, self.n, self.n_last)

    def FB(self, x):
        """Image words of the image × strip sets 0 .. x-1 (0 <= x <= X; strip sets innermost)."""
        xb, xo = floor_divmod(x, self.O)
        return self.O * self.Fb(xb) + xo * self.nb(xb)

    def nb(self, i):
        return set_size(i, self.be, self.n, self.n_last)

    def Fr(self, x):
        return set_prefix(x, self.re, self.q, self.q_last)

    def Ft(self, x):
        return set_prefix(x, self.te, self.p, self.p_last)

    def qr(self, i):
        return set_size(i, self.re, self.q, self.q_last)

    def pt(self, i):
        return set_size(i, self.te, self.p, self.p_last)

    def pre_ifmap(self, x):
        """In-block prefix of the iact words of a t-block: channel sets, then image × strip sets."""
        xr, xb = floor_divmod(x, self.X)
        return self.Fr(xr) * self.TB + self.qr(xr) * self.FB(xb)


def class_weights(N, Cg, Mg, n, b, q, r, p, t):
    """How many passes of each (z, y, x) class a group tile runs (float64, on the class axes)."""
    f64 = jnp.float64
    zc, yc, xc = (tile_classes(D, T)[1] for D, T in ((N, n * b), (Cg, q * r), (Mg, p * t)))
    return zc.astype(f64).reshape(Z_AXIS) * yc.astype(f64).reshape(Y_AXIS) * xc.astype(f64).reshape(X_AXIS)


def chain_starts(ps: PassSets, J):
    """Σ over slots j < J of the chain-start words (unclamped), per data type, and the slot
    digits (gi, ti, ri, xi) of J (xi: the image × strip set), in the layer's slot layout."""
    u1, xi = floor_divmod(J, ps.X)
    u2, ri = floor_divmod(u1, ps.R)
    gi, ti = floor_divmod(u2, ps.T)
    TB, Tr, Tt = ps.TB, ps.Tr, ps.Tt
    start = {
        "filter": gi * Tr * Tt + ps.Ft(ti) * Tr + ps.pt(ti) * ps.Fr(ri)
        + jnp.where(xi > 0, ps.qr(ri) * ps.pt(ti), 0.0),
        "ifmap": (gi + (ti >= 1)) * Tr * TB + jnp.where(ti == 0, ps.Fr(ri) * TB + ps.qr(ri) * ps.FB(xi), 0.0),
        "psum": gi * Tt * TB + ps.Ft(ti) * TB
        + jnp.where(ri == ps.re - 1, ps.pt(ti) * ps.FB(xi), jnp.where(ri >= ps.re, ps.pt(ti) * TB, 0.0)),
    }
    return start, (gi, ti, ri, xi)


def continuation_window(stride, o, pre, w0, w1, cl, Jc, kf, crf):
    """(words, hops) of the chain continuations entering each cluster from an earlier one.
    o: in-block offset of ck; pre(x): in-block prefix of the words up to offset x; w0 / w1: the
    block's word scale × non-first indicator for the block holding ck and the next one."""
    ln = jnp.minimum(stride, kf)
    x1 = jnp.minimum(o + ln, stride)               # window part in this block: [o, x1)
    x2 = jnp.maximum(o + ln - stride, 0.0)         # and in the next block: [0, x2)
    a0 = cl - jnp.ceil(stride / kf)                # previous set's cluster before the split
    split = (a0 + 1) * kf + stride - (Jc - o)      # the split as an offset in this block
    y1 = jnp.clip(split, o, x1)
    y2 = jnp.clip(split - stride, 0.0, x2)
    p_o = pre(o)
    words = w0 * (pre(x1) - p_o) + w1 * pre(x2)
    near = w0 * (pre(y1) - p_o) + w1 * pre(y2)
    d1 = mesh_dist(a0 + 1, cl, crf)
    return words, d1 * words + (mesh_dist(a0, cl, crf) - d1) * near


def continuations(ps: PassSets, digits, cl, Jc, kf, crf, ft):
    """(words, hops) per data type of the chain continuations entering each cluster (`digits`:
    the slot digits (ti, ri, xi) of each cluster's first slot)."""
    ti0, ri0, xi0 = digits
    pt0 = ps.pt(ti0)
    # a weight chain continues across ck when ck is a live set but not its chain's first
    w_f = jnp.where((xi0 > 0) & (xi0 < ps.live_x), ps.qr(ri0) * pt0, 0.0)
    return {
        "filter": (w_f, weight_dist(cl - 1, cl, crf) * w_f),
        "ifmap": continuation_window(ps.R * ps.X, ri0 * ps.X + xi0, ps.pre_ifmap,
                                     ((ti0 != 0) & (ti0 < ps.te)).astype(ft),
                                     (ti0 + 1 < ps.te).astype(ft), cl, Jc, kf, crf),
        "psum": continuation_window(ps.X, xi0, ps.FB, jnp.where((ri0 != 0) & (ri0 < ps.re), pt0, 0.0),
                                    jnp.where(ri0 + 1 < ps.re, pt0, 0.0), cl, Jc, kf, crf),
    }


def cluster_words(start, per_group, win, slots, group_classes, cls, J, Jc, ft):
    """(router words into each cluster [C], hops) of one data type over every pass class and group
    tile, weighted by their counts (float64)."""
    f64 = jnp.float64
    C = Jc.shape[-1]
    gv, gc = group_classes
    per_c = jnp.zeros((C,), f64)
    hops = jnp.zeros((), f64)
    for gsize, gcount in ((gv[0], gc[0]), (gv[1], gc[1])):
        gs = gsize.astype(ft).reshape(())
        act = gs * slots                                # active slots of the pass
        pcl = jnp.where(J < act, start, gs * per_group)
        live = (Jc < act).astype(ft)
        words = pcl[..., 1:] - pcl[..., :C] + live * win[0]              # [z, y, x, C]
        # weighted sum over the 8 classes as explicit slices: XLA:CPU runs this much faster
        # than a reduction over the small leading class axes
        wt = jnp.broadcast_to(cls * gcount.astype(f64), (2, 2, 2, 1)).reshape(8, 1)
        w8 = jnp.broadcast_to(words, (2, 2, 2, C)).reshape(8, C).astype(f64)
        h8 = jnp.broadcast_to(jnp.sum(live * win[1], axis=-1, keepdims=True),
                              (2, 2, 2, 1)).reshape(8).astype(f64)
        for i in range(8):
            per_c = per_c + wt[i] * w8[i]
            hops = hops + wt[i, 0] * h8[i]
    return per_c, hops


def pass_multipliers(s, h, e, o, oc):
    """Per data type, the int64 factor every pass's words carry that does not touch the slots, per
    strip set: filter words × strip tiles × taps, iact rows of the strip tiles' passes × a column
    strip's W_f columns, psums × folds (exact tile sums; with o > 1 strip sets every strip has e
    rows, so the sums over strips divide by o exactly; oc divides F)."""
    E, F, R, S, U = (s[kk] for kk in ("E", "F", "R", "S", "U"))
    rows_pass_sum = tile_sum(
        E, e, lambda es: tile_sum(R, h, lambda hk: jnp.minimum((es - 1) * U + hk, es * hk)))
    w_f = (F // oc - 1) * U + S
    return {"filter": cdiv(E, e * o) * R * S, "ifmap": rows_pass_sum * w_f // o,
            "psum": E * cdiv(R, h) * F // (o * oc)}


def noc_routes(shape, arch, mp, max_clusters: int, dtype=jnp.float64):
    """Exact router transfers, hops and per-cluster maxima of one layer (docs/rs_plus_model.md,
    HM-NoC) in closed form per cluster: O(max_clusters) work per pass class, whatever the set count
    (how: the module docstring).

    Returns int64 scalars router_<t>, hops_<t>, load_<t> (the largest per-cluster router transfers)
    and the NoC modes of the first pass."""
    i64, ft = jnp.int64, dtype
    s = {kk: jnp.asarray(v).astype(i64) for kk, v in shape.items()}
    N, Cg, Mg, G, E = (s[kk] for kk in ("N", "Cg", "Mg", "G", "E"))
    h, e, r, t, g, b, p, q, n, m, o, oc = mapping_values(mp, i64)
    o = jnp.minimum(o, cdiv(E, e))                        # the row strip sets a pass fills
    cr = jnp.asarray(arch.cluster_rows).astype(i64)
    cpes = jnp.asarray(arch.cluster_pe_rows).astype(i64) * jnp.asarray(arch.cluster_pe_cols).astype(i64)
    k = jnp.maximum(cpes // (h * e), 1)
    ps = PassSets(N, Cg, Mg, n, b, q, r, p, t, o * oc, ft)     # strip sets: rows × columns
    cls = class_weights(N, Cg, Mg, n, b, q, r, p, t)
    kf, crf = k.astype(ft).reshape(()), cr.astype(ft).reshape(())
    C = max_clusters
    c_all = jnp.arange(C + 1, dtype=ft).reshape(1, 1, 1, C + 1)
    J = c_all * kf                                        # first slot of each cluster (and the end)
    start, (_, ti, ri, xi) = chain_starts(ps, J)
    cl, Jc = c_all[..., :C], J[..., :C]
    win = continuations(ps, (ti[..., :C], ri[..., :C], xi[..., :C]), cl, Jc, kf, crf, ft)
    mult = pass_multipliers(s, h, e, o, oc)
    out = {}
    for dt in ("filter", "ifmap", "psum"):
        per_c, hops = cluster_words(start[dt], ps.per_group[dt], win[dt], ps.slots,
                                    tile_classes(G, g), cls, J, Jc, ft)
        out[f"router_{dt}"] = mult[dt] * jnp.round(jnp.sum(per_c)).astype(i64)
        out[f"hops_{dt}"] = mult[dt] * jnp.round(hops).astype(i64)
        out[f"load_{dt}"] = mult[dt] * jnp.round(jnp.max(per_c)).astype(i64)
    out.update(noc_modes(shape, mp))
    return out

def noc_modes(shape, mp):
    """NoC mode per data type of the first pass (ints indexing NOC_MODES); strip and image sets
    alike receive the same weights and their own iacts and psums."""
    i64 = jnp.int64
    s = shape
    N, Cg, Mg, G, E = (jnp.asarray(s[k]).astype(i64) for k in ("N", "Cg", "Mg", "G", "E"))
    h, e, r, t, g, b, p, q, n, m, o, oc = mapping_values(mp, i64)
    g0, t0 = jnp.minimum(g, G), jnp.minimum(t, cdiv(Mg, p))
    r0 = jnp.minimum(r, cdiv(Cg, q))
    x0 = jnp.minimum(b, cdiv(N, n)) * jnp.minimum(o, cdiv(E, e)) * oc
    act = g0 * t0 * r0 * x0
    w = jnp.where(x0 == 1, 0, jnp.where(x0 == act, 3, 1))
    i = jnp.where(t0 == 1, 0, jnp.where(t0 == act, 3, jnp.where(r0 * x0 == 1, 1, 2)))
    ps = jnp.where(r0 == 1, 0, jnp.where(x0 == 1, 1, 2))
    return {"noc_mode_ifmap": i.astype(i64), "noc_mode_filter": w.astype(i64),
            "noc_mode_psum": ps.astype(i64)}


def _approx_hops(words, length, stride, k, rows):
    """Estimate of the mesh hops of `words` words each sent along a chain of `length` sets
    `stride` slots apart (the rs_plus package docstring, "Search"); clusters are numbered down
    the columns of `rows` rows."""
    frac = jnp.minimum(stride / k, 1.0)
    delta = jnp.maximum(stride / k, 1.0)
    step = jnp.where(stride / k <= 1.0, (2.0 * rows - 1.0) / rows,
                     fdiv(delta, rows) + delta - rows * fdiv(delta, rows))
    return words * (length - 1) * frac * step


def approx_noc(words, h, e, r, t, g, b, p, q, n, o, shape, a, oc=1):
    """Router transfers, hops and per-cluster loads estimated from the words each type moves
    (`words`: dict filter/ifmap/psum of the words of all passes: DRAM filter reads, GLB ifmap
    reads, psum outputs per pass) and the first pass's chain lengths: a chain of L sets `stride`
    slots apart visits 1 + (L-1)·min(1, stride/k) clusters on average; the load is spread evenly
    over the clusters the first pass uses. Used by the search, and by the recount when
    `RSPlusSearchSpace.exact_noc` is False."""
    N, Cg, Mg, G, E = shape["N"], shape["Cg"], shape["Mg"], shape["G"], shape["E"]
    k = fdiv(a["cpes"], h * e)
    rows = a["cluster_rows"]
    t0, r0 = jnp.minimum(t, cdiv(Mg, p)), jnp.minimum(r, cdiv(Cg, q))
    b0 = jnp.minimum(b, cdiv(N, n)) * jnp.minimum(o, cdiv(E, e)) * oc   # strip × image sets
    g0 = jnp.minimum(g, G)
    used = jnp.maximum(jnp.minimum(a["clusters"], cdiv(g0 * t0 * r0 * b0, k)), 1)
    chains = {"filter": (b0, 1.0), "ifmap": (t0, r0 * b0), "psum": (r0, b0)}
    out = {}
    for dt, (L, st) in chains.items():
        router = words[dt] * (1.0 + (L - 1) * jnp.minimum(st / k, 1.0))
        out[f"router_{dt}"] = router
        if dt == "filter":   # weights: consecutive clusters share a row only on a one-row mesh
            out[f"hops_{dt}"] = words[dt] * (L - 1) * jnp.minimum(1.0 / k, 1.0) * (rows == 1)
        else:
            out[f"hops_{dt}"] = _approx_hops(words[dt], L, st, k, rows)
        out[f"load_{dt}"] = router / used
    return out


def noc_cycles(noc, a, fm):
    """NoC-bound cycles per data type: the busiest cluster's router transfers × bits per value over
    the routers' port bits (`a` from encoding.arch_in, `fm` from encoding.formats)."""
    rate = {"ifmap": (a["iact_routers"] * a["iact_port_bits"], fm["beta_i"]),
            "filter": (a["weight_routers"] * a["weight_port_bits"], fm["beta_w"]),
            "psum": (a["psum_routers"] * a["psum_port_bits"], a["psum_bits"])}
    return {f"noc_cycles_{dt}": jnp.ceil(noc[f"load_{dt}"].astype(jnp.float64) * bits / rb
                                         - 1e-9).astype(jnp.int64)
            for dt, (rb, bits) in rate.items()}
