"""Row-stationary (RS) dataflow on Eyeriss v1: mapping space and closed-form cost.

The schedule and every count are defined in docs/rs_model.md; `eyejax/sim` executes the same
schedule on real tensors and the tests assert both agree exactly.

The mapping search enumerates a fixed-size candidate set (static shape, `RSSearchSpace`), costs all
candidates at once in float32 (fast, exact for the integer sizes involved up to 2**24 and within
1e-7 relative beyond), picks the best per objective, and recounts the chosen mapping in int64.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from eyejax.arch import eyeriss_v1
from eyejax.arch.energy import MOVEMENT_ONLY
from eyejax.dataflow import cost
from eyejax.dataflow.mapping import COUNT_KEYS, RS_EXTRA_KEYS, RSMapping
from eyejax.dataflow.search import cast, choose, layer_result, objective_score, parts_by_rules
from eyejax.dataflow.shape import layer_shape
from eyejax.dataflow.tiling import cdiv, clipped_cover, fdiv, tile_sum
from eyejax.metrics import check_objective


@dataclasses.dataclass(frozen=True)
class RSSearchSpace:
    """Static description of the candidate set; its size fixes the compiled shapes.

    The candidates form a grid over five axes:
    e (ofmap rows per PE set): `min(E, pe_cols) // k` for k in `e_splits`, then balanced so the
      strips are near-equal; with `e_segmented`, one more: the widest set the array holds when a
      set wider than the array is split into segments on different rows (JSSC17 §IV-A, CONV2's
      5×27 as 5×14 + 5×13), `min(E, pe_cols · floor(pe_rows / h))`, balanced likewise;
    r (PE sets on different channels): each of `r_options`, capped by the channel count and by the
      set slots of one column (their psums chain vertically, docs/rs_model.md "Array");
    q (channels per PE): `floor(ifmap_spad / S) // k` for k in `q_splits`, at most Cg;
    p (filters per PE): the most the filter and psum scratchpads allow, divided by each `p_splits`,
      then balanced so the ceil(Mg/(p·t)) filter chunks are near-equal (JSSC17's CONV1 runs
      p = 16 with t = 2: 96 filters in three equal chunks of 32);
    n (images per pass): ceil(N / k) for k in `n_splits`.
    t (sets on different filters) takes the remaining PE sets, or, where one image's psums for all
    of them do not fit the GLB, as many as do; where a pass's filters would overflow the filter
    buffer, p falls first (then t) until they fit; m (psums kept in the GLB) is the largest multiple of
    p*t that fits: only the ifmap re-fetch count depends on m, so the largest is optimal and need
    not be enumerated. Where no candidate fits, the search takes the least mapping (`fast_choice`).
    The exact search is `eyejax.dataflow.rs_exact` (docs/rs_model.md, "Mapping search").
    """

    e_splits: tuple = (1, 2, 3)
    e_segmented: bool = True
    r_options: tuple = (1, 2, 4, 8, 16, 32)
    q_splits: tuple = (1, 2, 4)
    p_splits: tuple = (1, 2)
    n_splits: tuple = (1, 2, 1 << 30)

    @property
    def axes(self) -> tuple:
        # 0 on the e axis stands for the segmented candidate
        e_axis = tuple(self.e_splits) + ((0,) if self.e_segmented else ())
        return (e_axis, self.r_options, self.q_splits, self.p_splits, self.n_splits)

    @property
    def size(self) -> int:
        return int(np.prod([len(a) for a in self.axes]))


DEFAULT_SEARCH = RSSearchSpace()


def rows_glb(es, U, R):
    return jnp.minimum((es - 1) * U + R, es * R)


# the architecture's capacity fields (integers) the mapping rules read
ARCH_INT_FIELDS = ("pe_rows", "pe_cols", "filter_spad_words", "ifmap_spad_words",
                   "psum_spad_words", "glb_banks", "glb_bank_words", "glb_ifmap_banks",
                   "filter_buffer_words")


def filter_buffer_fits(x, y, h, S, buffer_words):
    """A pass's filters (x filters, y channels, h rows of S weights) fit the filter buffer they are
    prefetched into from DRAM and filled from into the spads (docs/rs_model.md "Capacity";
    JSSC17: filters have their own 8 kB of the GLB). buffer_words 0: no separate limit."""
    return (buffer_words == 0) | (x * y * h * S <= buffer_words)


def glb_room(shape, a, e, q, r, n):
    """(ifmap GLB banks, most psums m·e·F·n that fit as m) of an ifmap block of n images, q·r
    channels and strips of e rows: the banks the ifmaps take (or the fixed split) leave the rest
    to psums; `a` holds the GLB fields of ARCH_INT_FIELDS. m_fit may be negative: nothing fits."""
    bank = a["glb_bank_words"]
    ifmap_banks = cdiv(n * q * r * rows_glb(e, shape["U"], shape["R"]) * shape["W_used"], bank)
    psum_banks = jnp.where(a["glb_ifmap_banks"] > 0, a["glb_banks"] - a["glb_ifmap_banks"],
                           a["glb_banks"] - ifmap_banks)
    return ifmap_banks, fdiv(psum_banks * bank, n * e * shape["F"])


def largest_m(Mg, m_fit, pt):
    """The largest multiple of p·t that fits (m_fit), never past cdiv(Mg, p·t)·p·t: every
    objective falls with m, so it is optimal (docs/rs_model.md, (R2))."""
    return jnp.minimum(fdiv(m_fit, pt) * pt, cdiv(Mg, pt) * pt)


def set_slots(h, e, pe_rows, pe_cols):
    """(segments, set_rows, set_cols) of h×e PE sets on the array (docs/rs_model.md "Array").

    A set wider than the array is split into `segments = ceil(e / pe_cols)` segments of h rows,
    placed on different rows (JSSC17 §IV-A: CONV2's 5×27 set runs as 5×14 + 5×13). Sets then take
    slots of (segments·h) rows × min(e, pe_cols) columns: set_rows slots down, set_cols across.
    """
    seg = cdiv(e, pe_cols)
    set_rows = fdiv(pe_rows, h * seg)
    set_cols = fdiv(pe_cols, jnp.minimum(e, pe_cols))
    return seg, set_rows, set_cols




def pass_time_terms(nk, es, x, y, hk, s, a, mp, dtype):
    """(fill + drain, streaming time, compute) cycles of one PASS(n_k, e_s, y, h_k, x)
    (docs/rs_model.md "Time"). `a` holds the arch's bus widths and clocks in `dtype`.

    fill: the pass's filters go from the filter buffer over the 64-b filter GIN into the spads, and
      the first S columns of every ifmap row the pass reads (one image) over the 16-b ifmap GIN,
      before the first MAC (JSSC17 §VI-A: each pass ramps up, data loaded before it runs);
    stream: the pass runs at the pace of its slowest resource: the busiest PE (1 MAC/cycle), the
      ifmap GIN (every GLB ifmap word of the pass, multicast by ID), the psum GIN/GON (psums in
      from and out to the GLB, one word per chain end; reads never exceed writes, so the write side
      bounds both), and the next pass's filters streamed from DRAM at the DRAM bandwidth;
    drain: h_k cycles for the last psums to pass down the vertical chain.
    """
    S, F, U, W_used = s["S"], s["F"], s["U"], s["W_used"]
    p, q = mp.p, mp.q
    wb = a["word_bits"]
    rows_pass = jnp.minimum((es - 1) * U + hk, es * hk)
    f_words = x * y * hk * S
    compute = nk * jnp.minimum(p, x) * jnp.minimum(q, y) * S * F
    ifmap = cdiv(nk * y * rows_pass * W_used * wb, a["ifmap_bus_bits"])
    psum = cdiv(nk * x * es * F * wb, a["psum_bus_bits"])
    fdram = cdiv(f_words * wb * a["clock_mhz"], a["dram_bus_bits"] * a["dram_clock_mhz"])
    stream = jnp.maximum(jnp.maximum(compute, ifmap), jnp.maximum(psum, fdram))
    fill = cdiv(f_words * wb, a["filter_bus_bits"]) + cdiv(y * rows_pass * S * wb, a["ifmap_bus_bits"])
    return fill + hk, stream, compute


TIME_ARCH_FIELDS = ("word_bits", "ifmap_bus_bits", "filter_bus_bits", "psum_bus_bits", "clock_mhz",
                    "dram_bus_bits", "dram_clock_mhz")


def time_sums(shape, arch, mp: RSMapping, dtype):
    """(Σ fill + drain, Σ stream) over every pass of one group, exactly: the pass time depends on
    the five tile sizes (n_k, e_s, x, y, h_k), so the sum nests the five tile sums (32 terms)."""
    s = shape
    N, Cg, Mg, E, R = s["N"], s["Cg"], s["Mg"], s["E"], s["R"]
    a = {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in TIME_ARCH_FIELDS}
    h, e, r, t, p, q, n = (jnp.asarray(getattr(mp, k)).astype(dtype) for k in "hertpqn")
    mpd = RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=h)

    # Each dimension's tiles as (size, multiplicity) pairs on its own leading axis of length 2
    # (full tiles, then the remainder tile with multiplicity 0 when there is none), so one
    # broadcast evaluation covers all 32 combinations (a small graph to compile).
    bshape = jnp.broadcast_shapes(*(jnp.shape(v) for v in (N, Cg, Mg, E, R, h, e, r, t, p, q, n)))

    def tiles(D, T, axis):
        full = fdiv(D, T)
        rem = D - full * T
        b = lambda v: jnp.broadcast_to(v, bshape)
        size = jnp.stack([b(T), b(jnp.where(rem > 0, rem, T))])
        mult = jnp.stack([b(full), b((rem > 0).astype(full.dtype))])
        shape = [1] * 5
        shape[axis] = 2
        expand = lambda v: v.reshape(tuple(shape) + v.shape[1:])
        return expand(size), expand(mult)

    (nk, w1), (es, w2), (x, w3), (y, w4), (hk, w5) = (
        tiles(N, n, 0), tiles(E, e, 1), tiles(Mg, p * t, 2), tiles(Cg, q * r, 3), tiles(R, h, 4))
    ramp, stream, _ = pass_time_terms(nk, es, x, y, hk, s, a, mpd, dtype)
    w = w1 * w2 * w3 * w4 * w5
    return jnp.sum(w * ramp, axis=(0, 1, 2, 3, 4)), jnp.sum(w * stream, axis=(0, 1, 2, 3, 4))


def counts(shape, arch, mp: RSMapping, dtype, ifmap_cols=None):
    """Every access count and cycle term of one layer under one mapping (docs/rs_model.md).

    Works elementwise, so any argument may carry extra (candidate or batch) dimensions.
    `ifmap_cols` (RS+ column strips, docs/rs_plus_model.md): (padded, real) ifmap columns a row's
    blocks hold and read from DRAM, summed over the row's column strips; default one strip of
    W_used padded columns.
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
    if ifmap_cols is not None:
        W_used, real_cols = ifmap_cols

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
    }
    keys = COUNT_KEYS + RS_EXTRA_KEYS
    if arch is None:
        # counts only, no time model (RS+ reuses these counts and times its passes itself):
        # filter-spad fill + drain per pass, no stalls
        c["ramp_cycles"] = nb * ns * (S * nf * sum_p_eff * sum_q_eff + R * nc * npt)
        keys = COUNT_KEYS
    else:
        ramp, stream = time_sums(shape, arch, mp, dtype)
        c["ramp_cycles"] = ramp * one
        c["stall_cycles"] = stream - c["compute_cycles"]
    # Groups run one after another: every count scales with G; active PEs do not.
    c = {k: v * G for k, v in c.items()}
    c["active_pes"] = h * jnp.minimum(e, E) * jnp.minimum(r, cdiv(Cg, q)) * jnp.minimum(t, cdiv(Mg, p))
    return {k: c[k] for k in keys}


def feasible(shape, arch, mp: RSMapping, dtype):
    """Capacity rules of docs/rs_model.md; elementwise like `counts`."""
    s = shape
    E, F, R, S, U, W_used, Cg, Mg, N = (s[k] for k in ("E", "F", "R", "S", "U", "W_used", "Cg", "Mg", "N"))
    h, e, r, t, p, q, n, m = (jnp.asarray(getattr(mp, k)).astype(dtype)
                              for k in ("h", "e", "r", "t", "p", "q", "n", "m"))
    a = {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in ARCH_INT_FIELDS}
    ok = (p * q * S <= a["filter_spad_words"]) & (q * S <= a["ifmap_spad_words"])
    ok &= p <= a["psum_spad_words"]
    ok &= (h >= 1) & (h <= a["pe_rows"]) & (e >= 1) & (e <= E)
    _, set_rows, set_cols = set_slots(h, jnp.maximum(e, 1), a["pe_rows"], a["pe_cols"])
    ok &= (r >= 1) & (t >= 1) & (p >= 1) & (q >= 1) & (n >= 1) & (n <= N)
    # channel sets stack in one column (psums chain down the local links); filter sets fill the
    # remaining slots of that column, then the other columns
    ok &= (set_rows >= 1) & (r <= set_rows) & (t <= fdiv(set_rows, r) * set_cols)
    ok &= (m >= p * t) & (m % (p * t) == 0)
    ok &= h <= R   # h < min(R, pe_rows) folds the filter rows like h = pe_rows < R does
    ok &= filter_buffer_fits(jnp.minimum(p * t, Mg), jnp.minimum(q * r, Cg), h, S,
                             a["filter_buffer_words"])
    ifmap_banks = cdiv(n * q * r * rows_glb(e, U, R) * W_used, a["glb_bank_words"])
    psum_banks = cdiv(n * m * e * F, a["glb_bank_words"])
    split = a["glb_ifmap_banks"] > 0
    ok &= jnp.where(split,
                    (ifmap_banks <= a["glb_ifmap_banks"])
                    & (psum_banks <= a["glb_banks"] - a["glb_ifmap_banks"]),
                    ifmap_banks + psum_banks <= a["glb_banks"])
    return ok


FAMILIES = ("eyeriss_v1",)
# search modes by name (eyejax.dataflow.search_space): the fast grid above, or every legal mapping
SEARCH_MODES = {"fast": "eyejax.dataflow.rs:DEFAULT_SEARCH",
                "exact": "eyejax.dataflow.rs_exact:EXACT_SEARCH"}
MAPPING_KEYS = ("h", "e", "r", "t", "p", "q", "n", "m")


def candidate_grid(shape, arch, space: RSSearchSpace, dtype):
    """Candidate mappings on the [e, r, q, p, n] grid of `space` (docstring of RSSearchSpace).

    Each mapping parameter is an array that broadcasts to the grid and has size 1 on the axes it
    does not depend on, so the cost terms below are computed only over the axes they need.
    Returns (RSMapping of broadcastable arrays, feasibility mask of the full grid shape).
    """
    nax = len(space.axes)

    def axis(i):
        shp = [1] * nax
        shp[i] = len(space.axes[i])
        return jnp.asarray(space.axes[i], dtype).reshape(shp)

    e_split, r_opt, q_split, p_split, n_split = (axis(i) for i in range(nax))
    segmented = e_split == 0
    s = shape
    E, R, S, Cg, Mg, N = (s[k] for k in ("E", "R", "S", "Cg", "Mg", "N"))
    a = {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in ARCH_INT_FIELDS}
    one = jnp.ones((1,) * nax, dtype)
    h = jnp.minimum(R, a["pe_rows"]) * one
    e_seg = jnp.minimum(E, a["pe_cols"] * jnp.maximum(fdiv(a["pe_rows"], h), 1))
    e_base = jnp.where(segmented, e_seg,
                       jnp.maximum(fdiv(jnp.minimum(E, a["pe_cols"]), jnp.maximum(e_split, 1)), 1))
    e = cdiv(E, cdiv(E, e_base))                                   # balanced strips  [e]
    q_max = fdiv(a["ifmap_spad_words"], S)
    # q beyond the channels counts like q = Cg and fits worse (docs/rs_model.md, (R1)); beyond
    # what leaves room for one filter in the filter spad nothing fits
    q = jnp.clip(fdiv(q_max, q_split), 1, jnp.minimum(Cg, jnp.maximum(
        fdiv(a["filter_spad_words"], S), 1)))                      # [q]
    p_max = jnp.minimum(jnp.minimum(a["psum_spad_words"], fdiv(a["filter_spad_words"], q * S)), Mg)
    p = jnp.maximum(fdiv(p_max, p_split), 1)                       # [q, p]
    _, set_rows, set_cols = set_slots(h, e, a["pe_rows"], a["pe_cols"])   # [e]
    r = jnp.maximum(jnp.minimum(jnp.minimum(r_opt, cdiv(Cg, q)), set_rows), 1)   # [e, r, q]
    t = jnp.maximum(jnp.minimum(fdiv(set_rows, r) * set_cols, cdiv(Mg, p)), 1)  # [e, r, q, p]
    # balanced filter chunks: the fewest filters per PE that keeps the same number of p·t chunks,
    # so the last chunk is not a ragged one that leaves sets idle (like the balanced strips of e)
    balanced = lambda t: cdiv(Mg, t * cdiv(Mg, t * p))
    # a pass carries no more filters than the filter buffer holds (x_max, where it holds fewer
    # than Mg): fewer filters per PE first, keeping the sets (the chip's CONV1: 2 sets of 16
    # filters of 11x11 = 3872 words); fewer sets only below one filter per PE. Candidates that fit
    # are unchanged: where p·t > x_max but the balanced p' fits, p' <= x_max // t <= p keeps the
    # number of filter chunks, so balancing gives p' again.
    fb, filter_words = a["filter_buffer_words"], jnp.minimum(q * r, Cg) * h * S   # [e, r, q]
    x_max = fdiv(fb, filter_words)
    cap = (fb > 0) & (x_max < Mg)
    t = jnp.where(cap, jnp.maximum(jnp.minimum(t, x_max), 1), t)
    p = jnp.where(cap, jnp.maximum(jnp.minimum(p, fdiv(x_max, t)), 1), p)
    # no more filter sets than one image's psums can keep in the GLB (m >= p·t): with every set
    # taken, large arrays left no candidate that fits (candidates that fit are unchanged)
    _, m_fit_1 = glb_room(s, a, e, q, r, 1)                        # [e, r, q]
    t = jnp.where(balanced(t) * t <= m_fit_1, t, jnp.maximum(jnp.minimum(t, fdiv(m_fit_1, p)), 1))
    p = balanced(t)                                                # [e, r, q, p]
    n = jnp.maximum(cdiv(N, n_split), 1)                           # [n]
    pt = p * t
    ifmap_banks, m_fit = glb_room(s, a, e, q, r, n)                # [e, r, q, n]
    m = largest_m(Mg, m_fit, pt)                                   # full grid
    ok = (m >= pt) & (p * q * S <= a["filter_spad_words"]) & (q_max >= 1) & (set_rows >= 1)
    ok &= t <= fdiv(set_rows, r) * set_cols
    ok &= (fb == 0) | (x_max >= 1)          # p·t <= x_max after the cap, unless no filter fits
    ok &= jnp.where(a["glb_ifmap_banks"] > 0, ifmap_banks <= a["glb_ifmap_banks"], True)
    m = jnp.maximum(m, pt)  # keep the arithmetic finite where infeasible; the mask rules it out
    return RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=m), ok


def candidate_scores(shape, arch, sp, first, mp: RSMapping, objective: str, dtype):
    """Energy and cycles of every grid candidate, each term on the axes it depends on.

    Algebraically the same totals as `counts` + `cost.energy` (a test checks this), except that
    RLC-compressed DRAM words and DRAM cycles are not rounded up.
    """
    s = shape
    N, Cg, Mg, E, F, R, S, U, P, G = (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "P", "G"))
    H, W, W_used = s["H"], s["W"], s["W_used"]
    h, e, r, t, p, q, n, m = (getattr(mp, k) for k in MAPPING_KEYS)
    et = arch.energy
    nb, ns, nf = cdiv(N, n), cdiv(E, e), cdiv(R, h)
    pt, qr = p * t, q * r
    nc, npt, nm = cdiv(Cg, qr), cdiv(Mg, pt), cdiv(Mg, m)
    sum_t_eff = tile_sum(Mg, pt, lambda x: cdiv(x, p))
    sum_r_eff = tile_sum(Cg, qr, lambda y: cdiv(y, q))
    rows_glb_sum = tile_sum(E, e, lambda es: rows_glb(es, U, R))
    rows_pass_sum = tile_sum(
        E, e, lambda es: tile_sum(R, h, lambda hk: jnp.minimum((es - 1) * U + hk, es * hk)))
    real = clipped_cover(E, e, U, R, P, H) * (jnp.minimum(W_used, P + W) - P)
    if_ratio, of_ratio = (jnp.asarray(x).astype(dtype) for x in cost.rlc_ratios(sp, first))
    g = jnp.asarray(sp.mac_density).astype(dtype)
    outputs = N * Mg * E * F
    macs = outputs * Cg * R * S
    filt = Mg * Cg * R * S

    per_m = N * Cg * (et.dram * if_ratio * real + et.glb * rows_glb_sum * W_used)       # [e]
    per_en = nb * filt * (et.dram * ns + (et.noc + et.rf) * E)                          # [e, n]
    per_erqp = N * Cg * W_used * (et.glb * rows_pass_sum * npt + (et.noc + et.rf) * E * R * sum_t_eff)
    per_rq = outputs * (et.glb * 2 * nc * nf + et.noc * (sum_r_eff * R + nc * nf - 1))
    const = et.dram * outputs * of_ratio + et.rf * macs * (3 + g) + et.alu * macs * g
    energy = G * (nm * per_m + per_en + per_erqp + per_rq + const)
    chip = cost.chip_params(arch)
    chip = None if chip == MOVEMENT_ONLY else chip
    if objective == "energy" and chip is None:
        return energy, None
    ramp, stream = time_sums(shape, arch, mp, dtype)
    # the array waits for the ifmap loads and the ofmap write-back (filters stream, "Time")
    wait_words = nm * N * Cg * real * if_ratio + outputs * of_ratio
    wait = wait_words * (arch.word_bits * arch.clock_mhz / (arch.dram_bus_bits * arch.dram_clock_mhz))
    cycles = G * (ramp + stream + wait)
    if chip is not None:
        # chip energy: clock, control and leakage over the layer's time (eyejax.dataflow.cost.overhead_energy)
        active = h * jnp.minimum(e, E) * jnp.minimum(r, cdiv(Cg, q)) * jnp.minimum(t, cdiv(Mg, p))
        over = cost.overhead_energy(cycles, active, chip, g)
        energy = energy + over["clock"] + over["leakage"]
    return energy, cycles


def cost_of(shape, arch, sp, first, mp, dtype):
    """(counts, energy by level and type, DRAM cycles, total cycles) of one mapping; elementwise."""
    c = counts(shape, arch, mp, dtype)
    en = cost.energy(c, arch, sp, first)
    dcyc = cost.dram_cycles(c, arch, sp, first)
    c["processing_cycles"] = c["compute_cycles"] + c["ramp_cycles"] + c["stall_cycles"]
    c["dram_wait_cycles"] = cost.dram_wait_cycles(c, arch, sp, first)
    cycles = c["processing_cycles"] + c["dram_wait_cycles"]
    # chip energy beyond movement: clock, control, leakage (eyejax.dataflow.cost.overhead_energy)
    en.update(cost.overhead_energy(cycles, c["active_pes"], cost.chip_params(arch), sp.mac_density))
    return c, en, dcyc, cycles


def search_layer(layer, arch, sp, first, objective: str = "energy",
                 space: RSSearchSpace = DEFAULT_SEARCH, fixed=None):
    """Best RS mapping of one layer on one architecture and its exact cost (scalars).

    `layer` is one row of LayerArrays, `sp` one row of Sparsity. Returns a flat dict.
    fixed: None, or (RSMapping row, use flag): where `use` is set the given mapping is costed
    instead of the searched one (h = 0 stands for min(R, pe_rows)), and `feasible` says whether it
    fits (eyejax.dataflow.mapping_file checks this before any work and names the broken limit).
    """
    check_objective(objective)
    if not isinstance(space, RSSearchSpace):   # another search mode (SEARCH_MODES), e.g. exact
        return space.search_layer(layer, arch, sp, first, objective, fixed)
    mp, any_ok = choose_mapping(layer, arch, sp, first, objective, space)
    return finish(layer, arch, sp, first, mp, any_ok, fixed)


def choose_mapping(layer, arch, sp, first, objective: str, space: RSSearchSpace = DEFAULT_SEARCH):
    """`search_layer`'s first half: the fast grid's choice and whether any mapping fits."""
    return fast_choice(layer, arch, sp, first, objective, space, with_flag=True)


def finish_mapping(layer, arch, sp, first, mp: RSMapping, any_ok, space=None):
    """`search_layer`'s second half (searched mappings): the exact recount of the choice."""
    return finish(layer, arch, sp, first, mp, any_ok)


def partition_space(space, layers) -> list:
    """[(layer indices, space)]: splits that can only give one candidate on a layer are dropped
    there. Every set width gives e = 1 on a layer with one ofmap row (FC); every channel split and
    channel-set option gives q = r = 1 on a layer with one channel per group (depthwise). The
    search keeps the first of equal scores and a candidate's duplicates come after it, so no
    result changes; AlexNet's FC layers then cost a quarter of the grid, depthwise layers an
    eighteenth."""
    if not isinstance(space, RSSearchSpace):
        return [(np.arange(layers.num_layers), space)]
    s = layer_shape(layers, jnp.int64)
    return parts_by_rules(space, [
        (s["E"] == 1, dict(e_splits=tuple(space.e_splits[:1]), e_segmented=False)),
        (s["Cg"] == 1, dict(r_options=tuple(space.r_options[:1]),
                            q_splits=tuple(space.q_splits[:1])))])


def fast_choice(layer, arch, sp, first, objective: str, space: RSSearchSpace = DEFAULT_SEARCH,
                with_flag: bool = False):
    """The fast grid's best mapping (int64 RSMapping; and whether any candidate is feasible)."""
    f32 = jnp.float32
    arch32, sp32 = cast(arch, f32), cast(sp, f32)
    shape32 = layer_shape(layer, f32)
    mp_k, ok = candidate_grid(shape32, arch32, space, f32)
    energy_k, cycles_k = candidate_scores(shape32, arch32, sp32, first, mp_k, objective, f32)
    mp, any_ok, _ = choose(objective_score(objective, energy_k, cycles_k), ok,
                           {k: getattr(mp_k, k) for k in MAPPING_KEYS})
    # Where no grid candidate fits, the least mapping (one filter row fold of min(R, pe_rows) rows,
    # fewer where the filter buffer holds fewer filter rows, every other parameter 1): every
    # capacity term is smallest there, so it fits whenever any legal mapping does, and the fast
    # search is feasible exactly where the exact one is (a feasible layer stays feasible when a
    # capacity grows; the grid alone lost some).
    i64 = jnp.int64
    shape = layer_shape(layer, i64)
    h = jnp.minimum(shape["R"], jnp.asarray(arch.pe_rows).astype(i64))
    fb = jnp.asarray(arch.filter_buffer_words).astype(i64)
    h = jnp.where(fb > 0, jnp.minimum(h, jnp.maximum(fb // shape["S"], 1)), h)
    one = jnp.ones_like(h)
    least = RSMapping(h=h, e=one, r=one, t=one, p=one, q=one, n=one, m=one)
    least_ok = feasible(shape, arch, least, i64)
    mp = RSMapping(**{k: jnp.where(any_ok, mp[k], getattr(least, k)) for k in MAPPING_KEYS})
    any_ok = any_ok | least_ok
    return (mp, any_ok) if with_flag else mp


def finish(layer, arch, sp, first, mp: RSMapping, any_ok, fixed=None):
    """The flat result of a search's choice `mp` (any_ok: whether any candidate was feasible): a
    fixed mapping replaces it where its `use` flag is set (h = 0 stands for min(R, pe_rows)), and
    the choice is recounted exactly in int64."""
    i64 = jnp.int64
    shape = layer_shape(layer, i64)
    if fixed is not None:
        fmp, use = fixed
        fvals = {k: jnp.asarray(getattr(fmp, k)).astype(i64) for k in MAPPING_KEYS}
        fvals["h"] = jnp.where(fvals["h"] > 0, fvals["h"],
                               jnp.minimum(shape["R"], jnp.asarray(arch.pe_rows).astype(i64)))
        fmp = RSMapping(**fvals)
        mp = RSMapping(**{k: jnp.where(use, getattr(fmp, k), getattr(mp, k)) for k in MAPPING_KEYS})
        any_ok = jnp.where(use, feasible(shape, arch, fmp, i64), any_ok)
    c, en, dcyc, cycles = cost_of(shape, arch, sp, first, mp, i64)
    return layer_result(c, en, {k: getattr(mp, k) for k in MAPPING_KEYS}, any_ok, dcyc, cycles)


def prepare_space(space, arch, layers=None, sparsity=None):
    """A search mode's static bounds from the concrete batch (the exact search has some)."""
    prepare = getattr(space, "prepare", None)
    return space if prepare is None else prepare(arch, layers)


def validate_arch(arch) -> None:
    eyeriss_v1.FAMILY.validate(arch)


def layer_counts(layer, arch, mapping: RSMapping) -> dict:
    """Exact int64 counts of one layer (a LayerArrays row: `Layer.as_row()`) under a mapping."""
    shape = layer_shape(layer, jnp.int64)
    return counts(shape, arch, mapping, jnp.int64)


def mapping_is_feasible(layer, arch, mapping: RSMapping) -> bool:
    return bool(feasible(layer_shape(layer, jnp.int64), arch, mapping, jnp.int64))


# ---------------------------------------------------------------------------- Eyexam (eyejax.eyexam)
def parallelism(s):
    """Eyexam step 2: the MACs RS can run at once per group (R·E PE rows and columns of a logical
    set, over every channel and filter)."""
    return s["R"] * s["E"] * s["Cg"] * s["Mg"]


_NS = np.arange(1, 257)
_R = np.concatenate([np.arange(1, 65), 2 ** np.arange(7, 15)])
_H = np.arange(1, 33)     # fold heights below min(R, rows) the exact search may take


def physical_min_compute(layer, arch):
    """Eyexam step 4: fewest compute cycles of RS on v1's rows×cols, storage ignored (float64).

    Sets are h×e with h = min(R, rows) or a smaller fold height (h ≤ 32); e = ceil(E/ns) for
    every strip count ns (a set wider than the array split into segments on different rows,
    `set_slots`); r sets on channels stacked in one column of set slots × t on filters in the
    remaining slots (docs/rs_model.md "Array"). The busiest PE does ceil(Cg/r)·ceil(Mg/t) 1-D
    convolutions of F·S MACs per image, per strip and R fold.
    """
    f = jnp.float64
    s = layer_shape(layer, f)
    rows, cols = jnp.asarray(arch.pe_rows, f), jnp.asarray(arch.pe_cols, f)
    N, Cg, Mg, E, F, R, S, G = (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "G"))
    h_top = jnp.minimum(R, rows)
    h = jnp.concatenate([jnp.atleast_1d(h_top), jnp.minimum(jnp.asarray(_H, f), h_top)])
    h = h[:, None, None]
    nf = cdiv(R, h)
    ns = jnp.asarray(_NS, f)[None, :, None]
    e = cdiv(E, jnp.minimum(ns, E))
    strips = cdiv(E, e)
    _, set_rows, set_cols = set_slots(h, e, rows, cols)
    r = jnp.asarray(_R, f)[None, None, :]
    t = jnp.minimum(fdiv(set_rows, r) * set_cols, Mg)
    ok = (set_rows >= 1) & (r <= set_rows) & (t >= 1)
    T = G * N * F * S * strips * nf * cdiv(Cg, jnp.minimum(r, Cg)) * cdiv(Mg, jnp.maximum(t, 1))
    return jnp.min(jnp.where(ok, T, jnp.inf))
