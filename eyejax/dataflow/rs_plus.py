"""Row-stationary plus (RS+) on Eyeriss v2 with the hierarchical-mesh NoC: closed-form cost.

The schedule, the slot placement and every count are defined in docs/rs_plus_model.md (which
extends docs/rs_model.md); `eyejax/sim/rs_plus_sim.py` executes the same contract on real tensors.
The interface is the one of `eyejax.dataflow.rs`: `search_layer` picks the best mapping of a static
candidate grid in float32, each cost term computed only on the grid axes it depends on, and
recounts the chosen mapping exactly in int64.

Dense counts (int64, exact, what the simulation compares with `layer_counts`)
------------------------------------------------------------------------------
Per group every RS count is the RS count with `n` replaced by `n·b` (`rs.counts` is reused as is),
except the filter NoC deliveries / RF writes, the passes, the cycles and the active PEs
(docs/rs_plus_model.md). Router transfers and mesh hops are exact closed forms per cluster
(`noc_routes`): the slot structure depends only on the pass's active counts (g_eff, t_eff, r_eff,
b_eff), which take at most 2 values each (full tile, remainder tile), so at most 16 pass classes;
the words a chain carries factor per dimension (image-set size × channel-set size for iacts, ...),
and the per-pass factors that do not touch the slots (fold h_k, strip e_s) factor out as exact tile
sums. The work is O(clusters) per pass class for a STATIC cluster bound
(`RSPlusSearchSpace.max_clusters`, at least the largest cluster count of the architecture batch;
`prepare_space` fills it in from the batch before jit, `evaluate` calls it).

Design choices where the contract leaves room (documented here, used by model and tests)
-------------------------------------------------------------------------------------------
* Bits. Energies are the table's per-16-bit values × bits/16. Dense mode: iacts, weights and ofmaps
  are `data_bits` words, psums `psum_bits`. Sparse mode (a layer whose iact or weight density is
  < 1): iacts and weights move as CSC from DRAM to the PE: per dense value
  `ratio·(data_bits + csc_count_bits) + addr_bits/column_height` bits, with `ratio` the expected
  stored CSC words per value (non-zeros plus count-overflow padding zeros, the closed form of
  `eyejax.sparse.csc.expected_csc_words`, written here for traced column heights) and one address
  entry per column (iact addresses 4 b, weight addresses 7 b: the v2 address scratchpad widths).
  A PE's weight matrix has one column per (channel, tap) of p rows (its filters), its iact rows one
  column per ifmap position of q rows (its channels); the full set's p and q are used for every
  set (remainder sets have shorter columns: an approximation that only matters above 16 rows, where
  padding appears, and for the address overhead). Ofmaps go to DRAM as CSC when their density is
  < 1 (columns of 16 channels: no padding), else plain.
* Zero skipping (sparse mode only): the ALU and psum RF read/write run for non-zero × non-zero pairs
  (fraction mac_density·weight_density); iact RF reads for non-zero iacts (mac_density); weight RF
  reads walk the stored words of the column (mac_density·ratio_w). Dense mode skips nothing.
* ALU energy per 8-b MAC = table alu × data_bits/16 (same bits/16 rule as the storage levels).
* Sparse compute cycles (expected, i.i.d. zeros). Per PE task K = ceil(W/macs_per_pe) per non-zero
  iact, W the stored words of its p_eff-row weight column (Binomial(p_eff, d_w) for p_eff <= 16):
  E[K] exact for macs_per_pe 1 and 2 ((E[W] + P(W odd))/2), otherwise E[W]/k + (k-1)/(2k)·P(W>0).
  The busiest PE of a pass (n_set images, q_eff channels, p_eff filters) takes
  T = Σ_{images, f, c, s} X·K with mean n·F·q·S·d·E[K] and variance (law of total variance, weights
  shared across windows and images) q·[Var K·S·(nF·d(1-d) + (nF·d)²) + E[K]²·d(1-d)·n·F·S·ρ],
  ρ = clip(S/U, 1, S) (interior reuse of an ifmap column; edges ignored). The slowest of the A active
  PEs: E[T] + κ(A)·sd(T), κ(A) = Φ⁻¹((A − 0.375)/(A + 0.25)) (Blom's expected maximum of A i.i.d.
  normals). The PEs of a pass share data, so they are positively correlated and this over-estimates
  the imbalance (see eyejax/sim/sparse_pe.py). A = the active PEs of the layer's first pass.
  Summed exactly over the (n_set, q_eff, p_eff) pass classes.
* NoC bound: W_d (per-cluster router transfers) × the mode's bits per value / (routers · port bits).
* DRAM cycles = ceil(DRAM bits × clock / (dram_bus_bits × dram_clock_mhz)); "unlimited" bandwidth is
  `UNLIMITED_DRAM` (2**20-bit bus at 10**5 MHz: a few cycles per layer at most).
* Search. The grid axes are e, r, g, q, p, n (`RSPlusSearchSpace`); t takes the sets left after
  r and g, b the sets left after r, g, t, and m is the largest multiple of p·t the psum GLB holds.
  Mesh hops are approximated in the search (router transfers cost no energy; the NoC bound is
  approximated too): a chain of L sets whose consecutive members are `stride` slots apart crosses
  (L − 1)·min(1, stride/k) cluster boundaries on average, each costing the Manhattan distance of a
  row-major step of max(stride/k, 1) clusters (a single step in a row costs 1; the (2c−1)/c average
  over row wraps is used for stride <= k). The recount is exact. A test checks that with hop
  energy 0 the search's energy equals the recount's on every feasible candidate.
* Spad capacity in sparse mode uses the expected stored words (not a worst case); the address
  scratchpads are not checked (the contract lists data scratchpads only).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.arch import eyeriss_v2
from eyejax.chip_energy import MOVEMENT_ONLY, chip_params, overhead_energy
from eyejax.dataflow import rs
from eyejax.dataflow.mapping import COUNT_KEYS, RSMapping, RSPlusMapping
from eyejax.dataflow.search import at_best, best_candidate, cast, objective_score
from eyejax.dataflow.tiling import cdiv, clipped_cover, fdiv, tile_sum
from eyejax.metrics import check_objective

FAMILIES = ("eyeriss_v2",)
MAPPING_KEYS = ("h", "e", "r", "t", "g", "b", "p", "q", "n", "m")
DATA_TYPES = ("ifmap", "filter", "psum")
NOC_MODES = ("unicast", "grouped_multicast", "interleaved_multicast", "broadcast")
EXTRA_KEYS = (
    "router_ifmap", "router_filter", "router_psum", "hops_ifmap", "hops_filter", "hops_psum",
    "noc_cycles_ifmap", "noc_cycles_filter", "noc_cycles_psum",
    "noc_mode_ifmap", "noc_mode_filter", "noc_mode_psum",
)
IACT_ADDR_BITS = 4      # v2 iact address spad: 9 x 4 b
WEIGHT_ADDR_BITS = 7    # v2 weight address spad: 16 x 7 b
OFMAP_COLUMN = 16       # ofmaps written to DRAM as CSC columns of 16 channels
# Off-chip bandwidth that never limits (scaling study): pass as arch fields.
UNLIMITED_DRAM = dict(dram_bus_bits=1 << 20, dram_clock_mhz=100_000)


@dataclasses.dataclass(frozen=True)
class RSPlusSearchSpace:
    """Static candidate grid (its size fixes the compiled shapes) and the static slot bound.

    Axes: e (`e_splits` of min(E, floor(cluster_pes/h)), balanced strips), r (`r_options`, capped by
    the channel sets), g (groups side by side: the sets left by r divided by each `g_splits`, capped
    by G; a huge split means one group at a time), q (`q_splits` of the iact-spad maximum, capped by
    Cg), p (`p_splits` of the weight/psum-spad maximum; 0 = balanced: the filters split evenly over
    the sets left after r·g in the fewest chunks the spads allow, rounded up to whole SIMD pairs,
    so that e.g. AlexNet CONV1's 96 filters fill 16 sets with p = 6 instead of leaving sets or
    filter-chunk remainders idle), n (images per set: ceil(N/k) for k in
    `n_splits`; n = 1 spreads the batch over sets, n = N keeps it in one set). Derived: t = the sets
    left after r·g (capped by the filter sets), b = the sets left after r·g·t (capped by the image
    sets), m = the largest multiple of p·t whose psums fit in the psum GLB.

    max_slots / max_clusters: the batch's largest set-slot and cluster counts; max_clusters is the
    static size of the exact router/hop closed form (0 = fill in from the architecture with
    `prepare_space`). noc_float32: run that closed form in float32. None lets `prepare_space`
    decide: True only when `noc_value_bound` proves float32 exact for the batch and workload;
    False always uses float64 (the same counts, slower). exact_noc=False replaces the exact
    counts in the recount by the search's approximation (`approx_noc`): router_*, hops_* and the
    NoC bound become estimates, every other count stays exact.
    """

    e_splits: tuple = (1, 2, 3)
    r_options: tuple = (1, 2, 4, 8, 16, 32)
    g_splits: tuple = (1, 1 << 30)
    q_splits: tuple = (1, 2, 4)
    p_splits: tuple = (1, 0)
    n_splits: tuple = (1, 1 << 30)
    max_slots: int = 0
    max_clusters: int = 0
    exact_noc: bool = True
    noc_float32: bool | None = None

    @property
    def axes(self) -> tuple:
        return (self.e_splits, self.r_options, self.g_splits, self.q_splits, self.p_splits,
                self.n_splits)

    @property
    def size(self) -> int:
        return int(np.prod([len(a) for a in self.axes]))


DEFAULT_SEARCH = RSPlusSearchSpace()


def slot_bounds(arch) -> tuple:
    """(max set slots, max clusters) over a (possibly batched) concrete architecture."""
    cl = np.asarray(arch.cluster_rows, np.int64) * np.asarray(arch.cluster_cols, np.int64)
    cp = np.asarray(arch.cluster_pe_rows, np.int64) * np.asarray(arch.cluster_pe_cols, np.int64)
    return int(np.max(cl * cp)), int(np.max(cl))


F32_EXACT = 1 << 24   # integers below this are exact in float32


def noc_value_bound(arch, layers, sparsity=None) -> int:
    """Upper bound on the integers `noc_routes` handles per pass class and cluster: (slot index
    bound) × (words one set receives) × (largest mesh distance + 1), over the batch and layers.
    A searched mapping has q <= min(Cg, iact_spad / (S·d)) (d the smallest iact density, at least
    1e-3 as in the search), p <= min(Mg, psum_spad), n <= N; a set receives at most q·p weights,
    q·n iacts and p·n psums per pass."""
    clusters = np.asarray(arch.cluster_rows, np.int64) * np.asarray(arch.cluster_cols, np.int64)
    cpes = np.asarray(arch.cluster_pe_rows, np.int64) * np.asarray(arch.cluster_pe_cols, np.int64)
    dist = np.asarray(arch.cluster_rows, np.int64) + np.asarray(arch.cluster_cols, np.int64) - 2
    slot_index = (int(np.max(clusters)) + 1) * int(np.max(cpes))
    d = 1.0
    if sparsity is not None:
        dens = np.concatenate([np.ravel(sparsity.iact_density), np.ravel(sparsity.weight_density)])
        if np.any(dens < 1):
            d = max(float(np.min(np.ravel(sparsity.iact_density))), 1e-3)
    iact_spad = int(np.max(arch.iact_spad_words))
    psum_spad = int(np.max(arch.psum_spad_words))
    N = np.asarray(layers.N, np.int64)
    Cg = np.asarray(layers.C, np.int64) // np.asarray(layers.G, np.int64)
    Mg = np.asarray(layers.M, np.int64) // np.asarray(layers.G, np.int64)
    S = np.asarray(layers.S, np.int64)
    q_hi = np.minimum(Cg, np.floor(iact_spad / (S * d)).astype(np.int64))
    p_hi = np.minimum(Mg, psum_spad)
    words = np.max(np.maximum(np.maximum(q_hi * p_hi, q_hi * N), p_hi * N))
    return slot_index * int(words) * (int(np.max(dist)) + 1)


def prepare_space(space, arch, layers=None, sparsity=None):
    """The search space with its static fields filled in from the concrete batch (before jit):
    the slot and cluster bounds; with the workload (`layers`: LayerArrays, `sparsity`), float32
    for the exact NoC counts when `noc_value_bound` proves it exact, and, with one group per
    layer, one group split (every split gives g = 1: the others are exact duplicates; image splits
    are dropped the same way for N = 1 by `eyejax.dataflow.prepare_search_space`)."""
    slots, clusters = slot_bounds(arch)
    space = DEFAULT_SEARCH if space is None else space
    space = dataclasses.replace(space, max_slots=max(space.max_slots, slots),
                                max_clusters=max(space.max_clusters, clusters))
    if layers is None:
        return space
    changes = {}
    if space.noc_float32 is not False:  # False stays: a fixed choice (e.g. a co-design run's)
        changes["noc_float32"] = bool(noc_value_bound(arch, layers, sparsity) < F32_EXACT)
    if int(np.max(layers.G)) == 1:
        changes["g_splits"] = tuple(space.g_splits[:1])
    return dataclasses.replace(space, **changes)


# ------------------------------------------------------------------------------------- helpers
def _arch(arch, dtype):
    names = ("cluster_rows", "cluster_cols", "cluster_pe_rows", "cluster_pe_cols",
             "iact_spad_words", "weight_spad_words", "psum_spad_words", "macs_per_pe",
             "iact_glb_banks", "iact_glb_bank_bits", "psum_glb_banks", "psum_glb_bank_bits",
             "iact_routers", "iact_port_bits", "weight_routers", "weight_port_bits",
             "psum_routers", "psum_port_bits", "data_bits", "psum_bits", "csc_count_bits",
             "clock_mhz", "dram_bus_bits", "dram_clock_mhz", "pe_pipeline_stages")
    a = {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in names}
    a["cpes"] = a["cluster_pe_rows"] * a["cluster_pe_cols"]
    a["clusters"] = a["cluster_rows"] * a["cluster_cols"]
    a["iact_glb_total"] = a["clusters"] * a["iact_glb_banks"] * a["iact_glb_bank_bits"]
    a["psum_glb_total"] = a["clusters"] * a["psum_glb_banks"] * a["psum_glb_bank_bits"]
    return a


def csc_words_per_value(rows, density, count_bits):
    """Expected stored CSC words per value of a column of `rows` rows, i.i.d. non-zeros of
    probability `density` (eyejax.sparse.csc.expected_csc_words / (rows·cols), traced `rows`):
    d + d/R · Σ_{m=1}^{M} (R − P·m)·x^m, x = (1−d)^P, P = 2**count_bits, M = floor((R−1)/P)."""
    d = jnp.asarray(density)
    R = jnp.asarray(rows).astype(d.dtype)
    P = jnp.exp2(jnp.asarray(count_bits).astype(d.dtype))
    M = jnp.maximum(fdiv(R - 1, P), 0)
    x = jnp.power(1.0 - d, P)
    near1 = x > 1.0 - 1e-6
    xs = jnp.where(near1, 0.5, x)
    xM = jnp.power(xs, M)
    s1 = jnp.where(near1, M, xs * (1.0 - xM) / (1.0 - xs))
    s2 = jnp.where(near1, M * (M + 1) / 2, xs * (1.0 - (M + 1) * xM + M * xM * xs) / (1.0 - xs) ** 2)
    pads = jnp.maximum(R * s1 - P * s2, 0.0)
    return d + d * pads / jnp.maximum(R, 1)


def _formats(a, sp, q, p, dtype):
    """Bits per dense value moved for each data type, and the zero-skipping fractions."""
    d_i = jnp.asarray(sp.iact_density).astype(dtype)
    d_w = jnp.asarray(sp.weight_density).astype(dtype)
    d_o = jnp.asarray(sp.ofmap_density).astype(dtype)
    sparse = (d_i < 1) | (d_w < 1)
    csc = a["data_bits"] + a["csc_count_bits"]
    q = jnp.asarray(q).astype(dtype)
    p = jnp.asarray(p).astype(dtype)
    ratio_i = jnp.where(sparse, csc_words_per_value(q, d_i, a["csc_count_bits"]), 1.0)
    ratio_w = jnp.where(sparse, csc_words_per_value(p, d_w, a["csc_count_bits"]), 1.0)
    f = {
        "sparse": sparse,
        "ratio_i": ratio_i,
        "ratio_w": ratio_w,
        "beta_i": jnp.where(sparse, ratio_i * csc + IACT_ADDR_BITS / jnp.maximum(q, 1), a["data_bits"]),
        "beta_w": jnp.where(sparse, ratio_w * csc + WEIGHT_ADDR_BITS / jnp.maximum(p, 1), a["data_bits"]),
        "beta_o": jnp.where(d_o < 1, d_o * csc + IACT_ADDR_BITS / OFMAP_COLUMN, a["data_bits"]),
        "word": jnp.where(sparse, csc, a["data_bits"]),
        "d_mac": jnp.where(sparse, jnp.asarray(sp.mac_density).astype(dtype), 1.0),
        "d_w": jnp.where(sparse, d_w, 1.0),
    }
    f["d_pair"] = f["d_mac"] * f["d_w"]
    return f


def _mp(mp, dtype):
    return [jnp.asarray(getattr(mp, k)).astype(dtype) for k in MAPPING_KEYS]


# ------------------------------------------------------------------------------ dense counts
def counts(shape, arch, mp, dtype):
    """Every dense access count and cycle term (COUNT_KEYS) of one layer under one RS+ mapping.

    Elementwise: any argument may carry extra (candidate or batch) dimensions."""
    s = shape
    N, Cg, Mg, E, F, R, S, G = (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "G"))
    h, e, r, t, g, b, p, q, n, m = _mp(mp, dtype)
    mpp = jnp.asarray(arch.macs_per_pe).astype(dtype)
    nb = n * b
    c = rs.counts(shape, None, RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=nb, m=m), dtype)
    ngt, nnt, ns, nf = cdiv(G, g), cdiv(N, nb), cdiv(E, e), cdiv(R, h)
    pt, qr = p * t, q * r
    nc, npt = cdiv(Cg, qr), cdiv(Mg, pt)
    sum_bk = tile_sum(N, nb, lambda z: cdiv(z, n))
    sum_nset = tile_sum(N, nb, lambda z: jnp.minimum(n, z))
    sum_pc = tile_sum(Mg, pt, lambda x: cdiv(jnp.minimum(p, x), mpp))
    sum_q = tile_sum(Cg, qr, lambda y: jnp.minimum(q, y))
    noc_filter = G * Mg * Cg * R * S * E * sum_bk
    c["noc_filter"] = noc_filter
    c["rf_filter_writes"] = noc_filter
    c["passes"] = ngt * nnt * ns * nf * nc * npt
    c["compute_cycles"] = ngt * S * F * ns * nf * sum_nset * sum_pc * sum_q
    stages = jnp.asarray(arch.pe_pipeline_stages).astype(dtype)
    c["ramp_cycles"] = ngt * nnt * ns * (S * nf * sum_pc * sum_q + (R + nf * (stages - 1)) * nc * npt)
    c["active_pes"] = (h * jnp.minimum(e, E) * jnp.minimum(r, cdiv(Cg, q)) * jnp.minimum(t, cdiv(Mg, p))
                       * jnp.minimum(g, G) * jnp.minimum(b, cdiv(N, n)))
    return {k: c[k] for k in COUNT_KEYS}


def feasible(shape, arch, sp, mp, dtype):
    """Capacity rules of docs/rs_plus_model.md (elementwise). `sp` None = dense."""
    s = shape
    E, F, R, S, U, W_used, Cg, Mg, N, G = (s[k] for k in ("E", "F", "R", "S", "U", "W_used", "Cg",
                                                          "Mg", "N", "G"))
    h, e, r, t, g, b, p, q, n, m = _mp(mp, dtype)
    a = _arch(arch, dtype)
    fm = _formats(a, sp, q, p, dtype) if sp is not None else None
    wi = 1.0 if fm is None else fm["ratio_i"]
    ww = 1.0 if fm is None else fm["ratio_w"]
    beta_i = a["data_bits"] if fm is None else fm["beta_i"]
    k = fdiv(a["cpes"], h * e)
    ok = (h == jnp.minimum(R, a["cpes"])) & (e >= 1) & (e <= E) & (h * e <= a["cpes"])
    ok &= (r >= 1) & (t >= 1) & (g >= 1) & (b >= 1) & (p >= 1) & (q >= 1) & (n >= 1) & (n <= N)
    ok &= r * t * g * b <= k * a["clusters"]
    ok &= (m >= p * t) & (m % (p * t) == 0) & (m <= cdiv(Mg, p * t) * p * t)
    ok &= (q * S * wi <= a["iact_spad_words"]) & (p * q * S * ww <= a["weight_spad_words"])
    ok &= p <= a["psum_spad_words"]
    ok &= g * n * b * q * r * rs.rows_glb(e, U, R) * W_used * beta_i <= a["iact_glb_total"]
    ok &= g * n * b * m * e * F * a["psum_bits"] <= a["psum_glb_total"]
    return ok


# ------------------------------------------------------------------ router transfers and hops
def _classes(D, T):
    """(sizes [2], counts [2]) of the full and remainder tiles of D by T (a safe size when absent)."""
    full = fdiv(D, T)
    rem = D - full * T
    size = jnp.stack([T, jnp.where(rem > 0, rem, T)])
    cnt = jnp.stack([full, (rem > 0).astype(full.dtype)])
    return size, cnt


def noc_routes(shape, arch, mp, max_clusters: int, dtype=jnp.float64):
    """Exact router transfers, hops and per-cluster maxima of one layer (docs/rs_plus_model.md,
    HM-NoC) in closed form per cluster: O(max_clusters) work per pass class, whatever the set count.

    Returns int64 scalars router_<t>, hops_<t>, load_<t> (the largest per-cluster router transfers)
    and the NoC modes of the first pass.

    How. In a pass of class (z, y, x) (full or remainder tile of the images, channels, filters) the
    active set slots j = ((gi·t_eff + ti)·r_eff + ri)·b_eff + bi run over [0, g_eff·A), A =
    b_eff·r_eff·t_eff, and slot j lives in cluster floor(j / k). Every word a slot receives is a
    product of per-index set sizes (n_b(bi), q_r(ri), p_t(ti): the full size except for the last
    index), so prefix sums over slots have closed forms in the mixed-radix digits of the prefix end.
    Router transfers into cluster c are (i) the words of chain starts in [ck, (c+1)k) (prefix
    differences at the cluster boundaries; for psums, the last set's write into its GLB) and (ii)
    chain continuations whose previous set, `stride` slots back, lies in an earlier cluster: exactly
    the slots in [ck, ck + min(stride, k)), a window inside at most two consecutive stride-blocks
    (stride = 1 weights, r_eff·b_eff iacts, b_eff psums). Their hops are the Manhattan distances
    from the previous set's cluster, which is c − ceil(stride/k) before slot (c − ceil(stride/k)
    + 1)·k + stride and one cluster later from there on.

    Precision. The per-class per-cluster values are integers bounded by (slots) × (words per slot)
    × (mesh distance + 1); `dtype` float32 is exact when that bound is below 2**24 (`prepare_space`
    proves it for a batch, else float64). Class and group-tile counts multiply in float64 (exact
    below 2**53), then the int64 per-pass multipliers.
    """
    i64, f64, ft = jnp.int64, jnp.float64, dtype
    s = {kk: jnp.asarray(v).astype(i64) for kk, v in shape.items()}
    N, Cg, Mg, E, F, R, S, G, U = (s[kk] for kk in ("N", "Cg", "Mg", "E", "F", "R", "S", "G", "U"))
    h, e, r, t, g, b, p, q, n, m = _mp(mp, i64)
    cc = jnp.asarray(arch.cluster_cols).astype(i64)
    cpes = jnp.asarray(arch.cluster_pe_rows).astype(i64) * jnp.asarray(arch.cluster_pe_cols).astype(i64)
    k = jnp.maximum(cpes // (h * e), 1)
    gv, gc = _classes(G, g)
    zv, zc = _classes(N, n * b)
    yv, yc = _classes(Cg, q * r)
    xv, xc = _classes(Mg, p * t)
    # class axes z [2,1,1,1], y [1,2,1,1], x [1,1,2,1]; cluster boundaries last
    Z, Y, X = (2, 1, 1, 1), (1, 2, 1, 1), (1, 1, 2, 1)
    cv = lambda v, shp=(): v.astype(ft).reshape(shp)
    be, re_, te = cv(cdiv(zv, n), Z), cv(cdiv(yv, q), Y), cv(cdiv(xv, p), X)
    Tb, Tr, Tt = cv(zv, Z), cv(yv, Y), cv(xv, X)        # words of all image / channel / filter sets
    nf_, qf, pf, kf, ccf = (cv(v) for v in (n, q, p, k, cc))
    n_last, q_last, p_last = Tb - (be - 1) * nf_, Tr - (re_ - 1) * qf, Tt - (te - 1) * pf

    def size(i, L, full, last):          # size of set i of L (full except the last)
        return jnp.where(i >= L - 1, last, full)

    def prefix(x, L, full, last):        # sizes of sets 0 .. x-1 (0 <= x <= L)
        return full * jnp.minimum(x, L - 1) + jnp.where(x >= L, last, 0.0)

    Fb = lambda x: prefix(x, be, nf_, n_last)
    Fr = lambda x: prefix(x, re_, qf, q_last)
    Ft = lambda x: prefix(x, te, pf, p_last)
    qr = lambda i: size(i, re_, qf, q_last)
    pt = lambda i: size(i, te, pf, p_last)

    def divmod_(a, d):
        qt = jnp.floor(a / d)
        return qt, a - qt * d

    C = max_clusters
    c_all = jnp.arange(C + 1, dtype=ft).reshape(1, 1, 1, C + 1)
    J = c_all * kf                                        # first slot of each cluster (and the end)
    u1, bi = divmod_(J, be)
    u2, ri = divmod_(u1, re_)
    gi, ti = divmod_(u2, te)
    A = be * re_ * te
    # Σ over slots j < J of the chain-start words (unclamped) and their total per group
    start = {
        "filter": gi * Tr * Tt + Ft(ti) * Tr + pt(ti) * Fr(ri) + jnp.where(bi > 0, qr(ri) * pt(ti), 0.0),
        "ifmap": (gi + (ti >= 1)) * Tr * Tb + jnp.where(ti == 0, Fr(ri) * Tb + qr(ri) * Fb(bi), 0.0),
        "psum": gi * Tt * Tb + Ft(ti) * Tb + jnp.where(ri == re_ - 1, pt(ti) * Fb(bi), 0.0),
    }
    per_group = {"filter": Tr * Tt, "ifmap": Tr * Tb, "psum": Tt * Tb}
    cl, Jc = c_all[..., :C], J[..., :C]
    bi0, ri0, ti0 = bi[..., :C], ri[..., :C], ti[..., :C]

    def dist(a, c):
        ar, ac = divmod_(jnp.maximum(a, 0.0), ccf)
        br, bc = divmod_(c, ccf)
        return jnp.abs(ar - br) + jnp.abs(ac - bc)

    def window(stride, o, pre, w0, w1):
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
        d1 = dist(a0 + 1, cl)
        return words, d1 * words + (dist(a0, cl) - d1) * near

    def pre_ifmap(x):                                  # in a t-block: channel sets, then image sets
        xr, xb = divmod_(x, be)
        return Fr(xr) * Tb + qr(xr) * Fb(xb)

    pt0 = pt(ti0)
    w_f = jnp.where(bi0 > 0, qr(ri0) * pt0, 0.0)       # a weight chain continues across ck
    win = {
        "filter": (w_f, dist(cl - 1, cl) * w_f),
        "ifmap": window(re_ * be, ri0 * be + bi0, pre_ifmap, (ti0 != 0).astype(ft),
                        (ti0 + 1 < te).astype(ft)),
        "psum": window(be, bi0, Fb, jnp.where(ri0 != 0, pt0, 0.0), jnp.where(ri0 + 1 < re_, pt0, 0.0)),
    }
    cls = zc.astype(f64).reshape(Z) * yc.astype(f64).reshape(Y) * xc.astype(f64).reshape(X)
    nfold = cdiv(R, h)
    rows_pass_sum = tile_sum(
        E, e, lambda es: tile_sum(R, h, lambda hk: jnp.minimum((es - 1) * U + hk, es * hk)))
    mult = {"filter": cdiv(E, e) * R * S, "ifmap": rows_pass_sum * s["W_used"], "psum": E * nfold * F}
    out = {}
    for dt in ("filter", "ifmap", "psum"):
        per_c = jnp.zeros((C,), f64)
        hops = jnp.zeros((), f64)
        for gsize, gcount in ((gv[0], gc[0]), (gv[1], gc[1])):
            act = cv(gsize) * A                         # active slots of the pass
            pcl = jnp.where(J < act, start[dt], cv(gsize) * per_group[dt])
            live = (Jc < act).astype(ft)
            words = pcl[..., 1:] - pcl[..., :C] + live * win[dt][0]          # [z, y, x, C]
            # weighted sum over the 8 classes as explicit slices: XLA:CPU runs this much faster
            # than a reduction over the small leading class axes
            wt = jnp.broadcast_to(cls * gcount.astype(f64), (2, 2, 2, 1)).reshape(8, 1)
            w8 = jnp.broadcast_to(words, (2, 2, 2, C)).reshape(8, C).astype(f64)
            h8 = jnp.broadcast_to(jnp.sum(live * win[dt][1], axis=-1, keepdims=True),
                                  (2, 2, 2, 1)).reshape(8).astype(f64)
            for i in range(8):
                per_c = per_c + wt[i] * w8[i]
                hops = hops + wt[i, 0] * h8[i]
        out[f"router_{dt}"] = mult[dt] * jnp.round(jnp.sum(per_c)).astype(i64)
        out[f"hops_{dt}"] = mult[dt] * jnp.round(hops).astype(i64)
        out[f"load_{dt}"] = mult[dt] * jnp.round(jnp.max(per_c)).astype(i64)
    out.update(noc_modes(shape, mp))
    return out


def noc_modes(shape, mp):
    """NoC mode per data type of the first pass (ints indexing NOC_MODES)."""
    i64 = jnp.int64
    s = shape
    N, Cg, Mg, G = (jnp.asarray(s[k]).astype(i64) for k in ("N", "Cg", "Mg", "G"))
    h, e, r, t, g, b, p, q, n, m = _mp(mp, i64)
    g0, t0 = jnp.minimum(g, G), jnp.minimum(t, cdiv(Mg, p))
    r0, b0 = jnp.minimum(r, cdiv(Cg, q)), jnp.minimum(b, cdiv(N, n))
    act = g0 * t0 * r0 * b0
    w = jnp.where(b0 == 1, 0, jnp.where(b0 == act, 3, 1))
    i = jnp.where(t0 == 1, 0, jnp.where(t0 == act, 3, jnp.where(r0 * b0 == 1, 1, 2)))
    ps = jnp.where(r0 == 1, 0, jnp.where(b0 == 1, 1, 2))
    return {"noc_mode_ifmap": i.astype(i64), "noc_mode_filter": w.astype(i64),
            "noc_mode_psum": ps.astype(i64)}


# ------------------------------------------------------------------------- sparse compute time
def _kappa(A):
    """Blom's approximation of the expected maximum of A i.i.d. standard normals (0 for A = 1)."""
    A = jnp.maximum(A, 1.0)
    return jax.scipy.special.ndtri((A - 0.375) / (A + 0.25))


def _k_moments(pe, d_w, mpp):
    """Mean and variance of ceil(W / mpp), W ~ stored words of a pe-row weight column."""
    ew = pe * d_w
    p_odd = 0.5 * (1.0 - jnp.power(1.0 - 2.0 * d_w, pe))
    p_any = 1.0 - jnp.power(1.0 - d_w, pe)
    approx = ew / mpp + (mpp - 1) / (2 * mpp) * p_any
    mu = jnp.where(mpp == 1, ew, jnp.where(mpp == 2, 0.5 * (ew + p_odd), approx))
    mu = jnp.where(d_w >= 1, cdiv(pe, mpp), mu)
    var = jnp.where(d_w >= 1, 0.0, pe * d_w * (1.0 - d_w) / (mpp * mpp))
    return mu, var


def _pass_time(nset, qe, pe, F, S, U, d, d_w, mpp, kappa):
    mu, var_k = _k_moments(pe, d_w, mpp)
    nF = nset * F
    rho = jnp.clip(S / U, 1.0, S)
    mean = nF * qe * S * d * mu
    var = qe * (var_k * S * (nF * d * (1 - d) + (nF * d) ** 2) + mu * mu * d * (1 - d) * nset * F * S * rho)
    return mean + kappa * jnp.sqrt(jnp.maximum(var, 0.0))


def sparse_compute_cycles(shape, arch, mp, fm, active, dtype):
    """Expected compute cycles (sparse mode), summed exactly over the (n_set, q_eff, p_eff) classes."""
    s = shape
    N, Cg, Mg, E, F, R, S, G, U = (jnp.asarray(s[k]).astype(dtype)
                                   for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "G", "U"))
    h, e, r, t, g, b, p, q, n, m = _mp(mp, dtype)
    mpp = jnp.asarray(arch.macs_per_pe).astype(dtype)
    kappa = _kappa(jnp.asarray(active).astype(dtype))
    d, d_w = fm["d_mac"], fm["d_w"]
    zv, zc = _classes(N, n * b)
    yv, yc = _classes(Cg, q * r)
    xv, xc = _classes(Mg, p * t)
    zv, zc = zv.reshape(2, 1, 1), zc.reshape(2, 1, 1)
    yv, yc = yv.reshape(1, 2, 1), yc.reshape(1, 2, 1)
    pt = _pass_time(jnp.minimum(n, zv), jnp.minimum(q, yv), jnp.minimum(p, xv), F, S, U, d, d_w,
                    mpp, kappa)                                        # [2, 2, 2] pass classes
    inner = jnp.sum(zc * yc * xc * pt)
    return cdiv(G, g) * cdiv(E, e) * cdiv(R, h) * inner


# ------------------------------------------------------------------------------------ energy
def energy(c, noc, arch, fm):
    """Energy by `<level>_<type>` plus `alu` (unit of arch.energy) from dense counts, hops and the
    formats of `_formats`."""
    et = arch.energy
    u = 1.0 / 16.0
    a_db = jnp.asarray(arch.data_bits).astype(jnp.float64)
    pb = jnp.asarray(arch.psum_bits).astype(jnp.float64)
    f = lambda k: jnp.asarray(c[k]).astype(jnp.float64)
    bi, bw, bo = fm["beta_i"], fm["beta_w"], fm["beta_o"]
    out = {
        "dram_ifmap": et.dram * u * f("dram_ifmap_reads") * bi,
        "dram_filter": et.dram * u * f("dram_filter_reads") * bw,
        "dram_psum": et.dram * u * (f("dram_psum_writes") * bo + f("dram_psum_reads") * pb),
        "glb_ifmap": et.glb * u * (f("glb_ifmap_reads") + f("glb_ifmap_writes")) * bi,
        "glb_filter": et.glb * u * (f("glb_filter_reads") + f("glb_filter_writes")) * bw,
        "glb_psum": et.glb * u * (f("glb_psum_reads") + f("glb_psum_writes")) * pb,
        "noc_ifmap": u * bi * (et.noc * f("noc_ifmap") + et.hop * noc["hops_ifmap"]),
        "noc_filter": u * bw * (et.noc * f("noc_filter") + et.hop * noc["hops_filter"]),
        "noc_psum": u * pb * (et.noc * f("noc_psum") + et.hop * noc["hops_psum"]),
        "rf_ifmap": et.rf * u * (f("rf_ifmap_reads") * fm["d_mac"] * fm["word"] + f("rf_ifmap_writes") * bi),
        "rf_filter": et.rf * u * (f("rf_filter_reads") * fm["d_mac"] * fm["ratio_w"] * fm["word"]
                                  + f("rf_filter_writes") * bw),
        "rf_psum": et.rf * u * (f("rf_psum_reads") + f("rf_psum_writes")) * fm["d_pair"] * pb,
        "alu": et.alu * u * a_db * f("macs") * fm["d_pair"],
    }
    return out


def dram_bits(c, fm):
    f = lambda k: jnp.asarray(c[k]).astype(jnp.float64)
    return (f("dram_ifmap_reads") * fm["beta_i"] + f("dram_filter_reads") * fm["beta_w"]
            + f("dram_psum_writes") * fm["beta_o"])


def _noc_cycles(noc, a, fm):
    rate = {"ifmap": (a["iact_routers"] * a["iact_port_bits"], fm["beta_i"]),
            "filter": (a["weight_routers"] * a["weight_port_bits"], fm["beta_w"]),
            "psum": (a["psum_routers"] * a["psum_port_bits"], a["psum_bits"])}
    return {f"noc_cycles_{dt}": jnp.ceil(noc[f"load_{dt}"].astype(jnp.float64) * bits / rb
                                         - 1e-9).astype(jnp.int64)
            for dt, (rb, bits) in rate.items()}


# ------------------------------------------------------------------------------ search grid
def candidate_grid(shape, arch, sp, space: RSPlusSearchSpace, dtype):
    """Candidate RS+ mappings on the [e, r, g, q, p, n] grid; each parameter broadcasts to the grid
    and has size 1 on the axes it does not depend on. Returns (RSPlusMapping, feasibility mask)."""
    nax = len(space.axes)

    def axis(i):
        shp = [1] * nax
        shp[i] = len(space.axes[i])
        return jnp.asarray(space.axes[i], dtype).reshape(shp)

    e_split, r_opt, g_split, q_split, p_split, n_split = (axis(i) for i in range(nax))
    s = shape
    E, F, R, S, U, W_used, Cg, Mg, N, G = (s[k] for k in ("E", "F", "R", "S", "U", "W_used", "Cg",
                                                          "Mg", "N", "G"))
    a = _arch(arch, dtype)
    one = jnp.ones((1,) * nax, dtype)
    d_i = jnp.asarray(sp.iact_density).astype(dtype)
    d_w = jnp.asarray(sp.weight_density).astype(dtype)
    sparse = (d_i < 1) | (d_w < 1)
    wi0 = jnp.where(sparse, jnp.maximum(d_i, 1e-3), 1.0)   # stored words per value, for the bounds
    ww0 = jnp.where(sparse, jnp.maximum(d_w, 1e-3), 1.0)
    h = jnp.minimum(R, a["cpes"]) * one
    e_base = jnp.maximum(fdiv(jnp.minimum(E, fdiv(a["cpes"], h)), e_split), 1)
    e = cdiv(E, cdiv(E, e_base))                                           # [e]
    sets = fdiv(a["cpes"], h * e) * a["clusters"]                          # [e]
    q_max = fdiv(a["iact_spad_words"], S * wi0)
    q = jnp.minimum(jnp.maximum(fdiv(q_max, q_split), 1), Cg)              # [q]
    p_max = jnp.minimum(jnp.minimum(a["psum_spad_words"], fdiv(a["weight_spad_words"], q * S * ww0)), Mg)
    r = jnp.maximum(jnp.minimum(r_opt, cdiv(Cg, q)), 1)                    # [r, q]
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
    fm = _formats(a, sp, q, p, dtype)
    m_fit = fdiv(fdiv(a["psum_glb_total"], a["psum_bits"]), g * n * b * e * F)
    m = jnp.minimum(fdiv(m_fit, pt) * pt, cdiv(Mg, pt) * pt)
    ok = (m >= pt) & (q_max >= 1) & (r * t * g * b <= sets)
    ok &= (q * S * fm["ratio_i"] <= a["iact_spad_words"])
    ok &= (p * q * S * fm["ratio_w"] <= a["weight_spad_words"])
    ok &= g * n * b * q * r * rs.rows_glb(e, U, R) * W_used * fm["beta_i"] <= a["iact_glb_total"]
    m = jnp.maximum(m, pt)
    return RSPlusMapping(h=h, e=e, r=r, t=t, g=g, b=b, p=p, q=q, n=n, m=m), ok


def _approx_hops(words, length, stride, k, cc):
    """Estimate of the mesh hops of `words` words each sent along a chain of `length` sets
    `stride` slots apart (module docstring)."""
    frac = jnp.minimum(stride / k, 1.0)
    delta = jnp.maximum(stride / k, 1.0)
    step = jnp.where(stride / k <= 1.0, (2.0 * cc - 1.0) / cc, fdiv(delta, cc) + delta - cc * fdiv(delta, cc))
    return words * (length - 1) * frac * step


def approx_noc(words, h, e, r, t, g, b, p, q, n, shape, a):
    """Router transfers, hops and per-cluster loads estimated from the words each type moves
    (`words`: dict filter/ifmap/psum of the words of all passes: DRAM filter reads, GLB ifmap
    reads, psum outputs per pass) and the first pass's chain lengths: a chain of L sets `stride`
    slots apart visits 1 + (L-1)·min(1, stride/k) clusters on average; the load is spread evenly
    over the clusters the first pass uses. Used by the search, and by the recount when
    `RSPlusSearchSpace.exact_noc` is False."""
    N, Cg, Mg, G = shape["N"], shape["Cg"], shape["Mg"], shape["G"]
    k = fdiv(a["cpes"], h * e)
    cc = a["cluster_cols"]
    t0, r0 = jnp.minimum(t, cdiv(Mg, p)), jnp.minimum(r, cdiv(Cg, q))
    b0, g0 = jnp.minimum(b, cdiv(N, n)), jnp.minimum(g, G)
    used = jnp.maximum(jnp.minimum(a["clusters"], cdiv(g0 * t0 * r0 * b0, k)), 1)
    chains = {"filter": (b0, 1.0), "ifmap": (t0, r0 * b0), "psum": (r0, b0)}
    out = {}
    for dt, (L, st) in chains.items():
        router = words[dt] * (1.0 + (L - 1) * jnp.minimum(st / k, 1.0))
        out[f"router_{dt}"] = router
        out[f"hops_{dt}"] = _approx_hops(words[dt], L, st, k, cc)
        out[f"load_{dt}"] = router / used
    return out


def candidate_active_pes(shape, mp: RSPlusMapping):
    """Active PEs of every candidate (the first pass's; as `counts`)."""
    s = shape
    h, e, r, t, g, b, p, q, n, m = (getattr(mp, k) for k in MAPPING_KEYS)
    return (h * jnp.minimum(e, s["E"]) * jnp.minimum(r, cdiv(s["Cg"], q))
            * jnp.minimum(t, cdiv(s["Mg"], p)) * jnp.minimum(g, s["G"]) * jnp.minimum(b, cdiv(s["N"], n)))


def candidate_scores(shape, arch, sp, first, mp: RSPlusMapping, objective: str, dtype,
                     with_hops: bool = True):
    """Energy and cycles of every grid candidate, each term on the axes it depends on.

    With hop energy 0 the energy equals `counts` + `energy` exactly (a test checks it); hops and the
    NoC bound are approximated (module docstring)."""
    s = shape
    N, Cg, Mg, E, F, R, S, U, P, G = (s[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U", "P", "G"))
    H, W, W_used = s["H"], s["W"], s["W_used"]
    h, e, r, t, g, b, p, q, n, m = (getattr(mp, k) for k in MAPPING_KEYS)
    a = _arch(arch, dtype)
    et = arch.energy
    fm = _formats(a, sp, q, p, dtype)
    bi, bw, bo = fm["beta_i"], fm["beta_w"], fm["beta_o"]
    pb, u = a["psum_bits"], 1.0 / 16.0
    nb = n * b
    nnt, ns, nf = cdiv(N, nb), cdiv(E, e), cdiv(R, h)
    pt, qr = p * t, q * r
    nc, npt, nm = cdiv(Cg, qr), cdiv(Mg, pt), cdiv(Mg, m)
    sum_t_eff = tile_sum(Mg, pt, lambda x: cdiv(x, p))
    sum_r_eff = tile_sum(Cg, qr, lambda y: cdiv(y, q))
    sum_bk = tile_sum(N, nb, lambda z: cdiv(z, n))
    rows_glb_sum = tile_sum(E, e, lambda es: rs.rows_glb(es, U, R))
    rows_pass_sum = tile_sum(
        E, e, lambda es: tile_sum(R, h, lambda hk: jnp.minimum((es - 1) * U + hk, es * hk)))
    real = clipped_cover(E, e, U, R, P, H) * (jnp.minimum(W_used, P + W) - P)
    outputs = N * Mg * E * F
    macs = outputs * Cg * R * S
    filt = Mg * Cg * R * S
    # per group, then × G
    per_m = N * Cg * bi * (et.dram * real + et.glb * rows_glb_sum * W_used)          # [e, q]
    dram_f = nnt * ns * filt                                                        # dense words
    noc_f = filt * E * sum_bk
    glb_ir = N * Cg * rows_pass_sum * W_used * npt
    noc_i = N * Cg * E * R * sum_t_eff * W_used
    glb_p = outputs * nc * nf
    noc_p = outputs * (sum_r_eff * R + nc * nf - 1)
    e_filter = bw * (et.dram * dram_f + (et.noc + et.rf) * noc_f)
    e_ifmap = bi * (et.glb * glb_ir + (et.noc + et.rf) * noc_i)
    e_psum = pb * (et.glb * 2 * glb_p + et.noc * noc_p)
    e_const = (et.dram * outputs * bo
               + et.rf * macs * (fm["d_mac"] * fm["word"] * (1.0 + fm["ratio_w"]) + 2 * fm["d_pair"] * pb)
               + et.alu * a["data_bits"] * macs * fm["d_pair"])
    energy_ = G * u * (nm * per_m + e_filter + e_ifmap + e_psum + e_const)
    noc = approx_noc({"filter": G * dram_f, "ifmap": G * glb_ir, "psum": G * glb_p},
                     h, e, r, t, g, b, p, q, n, shape, a)
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
    active = (h * jnp.minimum(e, E) * jnp.minimum(r, cdiv(Cg, q)) * jnp.minimum(t, cdiv(Mg, p))
              * jnp.minimum(g, G) * jnp.minimum(b, cdiv(N, n)))
    sum_nset = tile_sum(N, nb, lambda z: jnp.minimum(n, z))
    dense_c = ngt * S * F * ns * nf * sum_nset * sum_pc * sum_q
    # sparse: mean + imbalance of the full pass, times the passes (the recount sums the classes)
    mu, _ = _k_moments(p, fm["d_w"], mpp)
    sparse_c = (ngt * ns * nf * nnt * nc * npt
                * _pass_time(jnp.minimum(n, N), jnp.minimum(q, Cg), jnp.minimum(p, Mg), F, S, U,
                             fm["d_mac"], fm["d_w"], mpp, _kappa(active)))
    compute = jnp.where(fm["sparse"], sparse_c, dense_c)
    # NoC bound: per-cluster loads of the approximation
    noc_c = jnp.maximum(jnp.maximum(
        noc["load_filter"] * bw / (a["weight_routers"] * a["weight_port_bits"]),
        noc["load_ifmap"] * bi / (a["iact_routers"] * a["iact_port_bits"])),
        noc["load_psum"] * pb / (a["psum_routers"] * a["psum_port_bits"]))
    words_bits = G * (nm * N * Cg * real * bi + dram_f * bw + outputs * bo)
    dram = words_bits * a["clock_mhz"] / (a["dram_bus_bits"] * a["dram_clock_mhz"])
    return energy_, jnp.maximum(compute + ramp, noc_c) + dram


# ------------------------------------------------------------------------------------ recount
def evaluate_mapping(shape, arch, sp, mp, max_clusters: int, exact_noc: bool = True,
                     noc_float32: bool = False):
    """Exact int64 counts, router/hop counts, energies and cycles of one layer under one mapping.

    `shape` int64 (rs.layer_shape), `sp` one Sparsity row (None: dense)."""
    i64, f64 = jnp.int64, jnp.float64
    if sp is None:
        one = jnp.ones((), f64)
        from eyejax.sparsity import Sparsity

        sp = Sparsity(iact_density=one, weight_density=one, ofmap_density=one, mac_density=one,
                      ifmap_rlc_ratio=one, ofmap_rlc_ratio=one)
    mp = RSPlusMapping(**{k: jnp.asarray(getattr(mp, k)).astype(i64) for k in MAPPING_KEYS})
    c = counts(shape, arch, mp, i64)
    a = _arch(arch, f64)
    if exact_noc:
        noc = noc_routes(shape, arch, mp, max_clusters, jnp.float32 if noc_float32 else jnp.float64)
    else:
        shape64 = {kk: jnp.asarray(v).astype(f64) for kk, v in shape.items()}
        words = {"filter": c["dram_filter_reads"].astype(f64), "ifmap": c["glb_ifmap_reads"].astype(f64),
                 "psum": (c["dram_psum_writes"] * cdiv(shape["Cg"], mp.q * mp.r)
                          * cdiv(shape["R"], mp.h)).astype(f64)}
        noc = approx_noc(words, *(getattr(mp, kk).astype(f64) for kk in "hertgbpqn"), shape64, a)
        noc = {kk: jnp.round(v).astype(i64) for kk, v in noc.items()}
        noc.update(noc_modes(shape, mp))
    fm = _formats(a, sp, mp.q, mp.p, f64)
    en = energy(c, noc, arch, fm)
    dense_compute = c["compute_cycles"]
    shape64 = {k: jnp.asarray(v).astype(f64) for k, v in shape.items()}
    sc = sparse_compute_cycles(shape64, arch, mp, fm, c["active_pes"], f64)
    c["compute_cycles"] = jnp.where(fm["sparse"], jnp.round(sc).astype(i64), dense_compute)
    ncyc = _noc_cycles(noc, a, fm)
    bits = dram_bits(c, fm)
    dcyc = jnp.ceil(bits * a["clock_mhz"] / (a["dram_bus_bits"] * a["dram_clock_mhz"]) - 1e-9).astype(i64)
    busy = c["compute_cycles"] + c["ramp_cycles"]
    for v in ncyc.values():
        busy = jnp.maximum(busy, v)
    out = dict(c)
    out.update({k: noc[k] for k in ("router_ifmap", "router_filter", "router_psum",
                                    "hops_ifmap", "hops_filter", "hops_psum",
                                    "noc_mode_ifmap", "noc_mode_filter", "noc_mode_psum")})
    out.update(ncyc)
    out["dense_compute_cycles"] = dense_compute
    out["dram_bits"] = bits
    out["dram_cycles"] = dcyc
    out["cycles"] = busy + dcyc
    out["mac_pairs"] = c["macs"].astype(f64) * fm["d_pair"]
    return out, en


def search_layer(layer, arch, sp, first, objective: str = "energy",
                 space: RSPlusSearchSpace = DEFAULT_SEARCH):
    """Best RS+ mapping of one layer on one Eyeriss v2 architecture and its exact cost (scalars).

    `space.max_clusters` must be filled in (`prepare_space`; `evaluate` does it)."""
    check_objective(objective)
    if space.max_slots <= 0 or space.max_clusters <= 0:
        try:
            space = prepare_space(space, arch)
        except Exception as err:  # traced arch: the bound must be static
            raise ValueError("RSPlusSearchSpace.max_clusters is not set: call "
                             "rs_plus.prepare_space(space, arch) on the concrete architecture "
                             "before jit") from err
    f32 = jnp.float32
    arch32, sp32 = cast(arch, f32), cast(sp, f32)
    shape32 = rs.layer_shape(layer, f32)
    mp_k, ok = candidate_grid(shape32, arch32, sp32, space, f32)
    chip = chip_params(arch)          # static: zeros unless the energy table is in pJ
    with_chip = chip is not MOVEMENT_ONLY and objective != "latency"
    energy_k, cycles_k = candidate_scores(shape32, arch32, sp32, first, mp_k,
                                          "edp" if with_chip else objective, f32)
    if with_chip:   # the search ranks by chip energy: clock, control and leakage per cycle too
        ov = overhead_energy(cycles_k, candidate_active_pes(shape32, mp_k), cast(chip, f32))
        energy_k = energy_k + ov["clock"] + ov["leakage"]
    best, any_ok = best_candidate(objective_score(objective, energy_k, cycles_k), ok)
    i64 = jnp.int64
    pick = lambda v: jnp.round(at_best(v, best))
    mp = RSPlusMapping(**{k: pick(getattr(mp_k, k)).astype(i64) for k in MAPPING_KEYS})
    shape = rs.layer_shape(layer, i64)
    out, en = evaluate_mapping(shape, arch, sp, mp, space.max_clusters, space.exact_noc,
                               bool(space.noc_float32))
    zero = lambda x: jnp.where(any_ok, x, jnp.zeros_like(x))
    res = {k: zero(v) for k, v in out.items()}
    res.update({f"energy_{k}": zero(v) for k, v in en.items()})
    # chip energy beyond data movement and MACs (eyejax.chip_energy; parameters in
    # eyejax.chip_energy.chip_params): kept apart from the movement breakdown
    ov = overhead_energy(out["cycles"].astype(jnp.float64), out["active_pes"].astype(jnp.float64),
                         cast(chip, jnp.float64))
    res.update({f"energy_{k}": zero(jnp.broadcast_to(v, ()).astype(jnp.float64)) for k, v in ov.items()})
    res.update({f"map_{k}": zero(getattr(mp, k)) for k in MAPPING_KEYS})
    res["feasible"] = any_ok
    return res


def validate_arch(arch) -> None:
    eyeriss_v2.FAMILY.validate(arch)


_evaluate_mapping_jit = jax.jit(evaluate_mapping, static_argnums=(4, 5))


def layer_cost(layer, arch, mapping, sparsity=None, exact_noc: bool = True) -> tuple:
    """(counts, energies) of one layer (a LayerArrays row: `Layer.as_row()`) under an RS+
    mapping (any object with fields h, e, r, t, g, b, p, q, n, m) on one unbatched architecture.

    counts: int64 COUNT_KEYS (dense: they do not depend on the data), router_*, hops_*,
    noc_cycles_*, noc_mode_*, dram_cycles, cycles (and dram_bits, mac_pairs,
    dense_compute_cycles). With `sparsity` (one Sparsity row) compute_cycles, the NoC and DRAM
    terms and the energies are those of its mode. energies: by `<level>_<type>` and `alu`.
    Jitted (one compile per architecture structure and cluster count)."""
    shape = rs.layer_shape(layer, jnp.int64)
    _, clusters = slot_bounds(arch)
    mp = RSPlusMapping(**{k: jnp.asarray(getattr(mapping, k), jnp.int64) for k in MAPPING_KEYS})
    arch = jax.tree_util.tree_map(jnp.asarray, arch)
    return _evaluate_mapping_jit(shape, arch, sparsity, mp, clusters, bool(exact_noc))


def layer_counts(layer, arch, mapping, sparsity=None) -> dict:
    """Exact int64 dense counts of one layer under an RS+ mapping (see `layer_cost`): the numbers
    the functional simulation (eyejax/sim/rs_plus_sim.py) is compared with."""
    return layer_cost(layer, arch, mapping, sparsity)[0]


def mapping_is_feasible(layer, arch, mapping, sparsity=None) -> bool:
    return bool(feasible(rs.layer_shape(layer, jnp.int64), arch, sparsity, mapping, jnp.float64))
