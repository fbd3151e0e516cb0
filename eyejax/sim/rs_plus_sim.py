"""Functional simulation of Eyeriss v2 running RS+ through the hierarchical mesh NoC (HM-NoC).

The simulation executes the schedule of docs/rs_plus_model.md (on top of docs/rs_model.md)
literally and counts what it moves:

* DRAM holds the unpadded ifmap (NCHW), the filters ([M, C/G, R, S]) and the ofmap (NCHW).
* The loop nest runs group tiles of g groups, image tiles of n·b images (cut into image sets of n),
  strip tiles of o·e ofmap rows × all F columns (cut into o·oc strip sets: row strip si of e rows
  × column strip ci of f = F/oc columns, strip set oi = si·oc + ci), m-tiles, channel chunks of
  q·r (the iact GLB load of every group and strip set of the tile: each strip set's padded ifmap
  block, its padded rows × its W_f = (f − 1)·U + S padded columns from ci·f·U, pads written as
  zeros), folds of h filter rows and filter chunks of p·t; the innermost body is one PASS.
* In a PASS every active set (group gi, filter set ti, channel set ri, image set bi, strip set oi)
  gets its slot in the layer's layout, the first pass's (((gi·T0 + ti)·R0 + ri)·B0 + bi)·O0 + oi
  (O0 = row strips × oc; a later pass leaves its missing sets' slots idle), hence its cluster
  slot // k, and h_k·e_s PEs of that cluster (e_s: its strip's rows); a PE computes its ofmap row
  at its column strip's f columns. Each active PE gets an ID:
  (group, filter set, channel set, strip set, image set, filter row i, column j).
* Delivery: every filter row read from DRAM and every ifmap row read from the GLB is a tagged
  message (its S or W_f words share one tag, hence one set of destinations); it reaches every
  PE whose ID matches its tag. From the PEs a message reaches come its
  destination sets, in slot order, hence the destination clusters D (repeats merged) that the
  routers forward the words through: |D| router transfers per word and the hops along D on the
  cluster grid (clusters numbered down the columns; Manhattan for iacts, along a row only for
  weights, down a column for psums, whose chains must stay in one column). Inside a cluster the
  all-to-all network delivers the words to the destination PEs (the noc_* counts). Psums chain
  through the r_eff·h_k PEs of their column across the channel sets (slot order, through the psum
  routers) and end in the GLB psum buffer, each chain word a psum of f columns.
* Each PE stores what it receives in arrival order (filter × channel and image × channel slots),
  and the simulation checks that the (weight, iact) pairs the PE kernel multiplies out of its
  scratchpads are exactly the pairs its assigned work needs (no missing, duplicate or mismatched
  operand; iact rows placed by padded row and first padded column), raising OperandError
  otherwise.

Every count is tallied from these movements (sizes of the blocks moved, PEs matched per message,
clusters and hops per message, pairs multiplied per PE); nothing uses the closed forms of the
contract. Per-cluster router transfers are counted at the destination cluster: a weight or iact
word counts once in each cluster of D; a psum word's |D| transfers are c_1→c_2, …, c_{k-1}→c_k and
c_k→GLB(c_k), so they count in c_2 … c_k and once more in c_k.

Implementation follows eyejax/sim/rs_sim.py: the loop nest runs in NumPy once per (layer, mapping,
arch) and records which DRAM/GLB word lands in which PE slot and which GLB psum row each chain reads
and writes; the data then flows through those index arrays in JAX, one `lax.scan` step per pass
(jit-able and vmap-able over ifmap and weights).

Counts: COUNT_KEYS, plus router_{ifmap,filter,psum}, hops_*, noc_cycles_*, noc_mode_* (0 unicast,
1 grouped multicast, 2 interleaved multicast, 3 broadcast; from the first pass), macs_zero (the
multiplied pairs with a zero operand; data dependent) and router_cluster_* (int64 [clusters]: the
router transfers of each type into each cluster over the layer).

Cycles: dense mode: each pass lasts as long as its busiest PE, which spends
ceil(p_eff/macs_per_pe) cycles per (image, channel, filter tap, ofmap column of its column strip)
(the MAC datapaths take filters of one weight column together). Ramp per pass: the busiest PE's
weight spad fill (one entry per cycle, an entry holding the weights of up to macs_per_pe filters
of one (channel, tap)), plus pe_pipeline_stages − 1 cycles of PE pipeline fill, plus h_k for the psum chain. Sparse mode (``sparse=True``): a PE spends, per
non-zero iact of each (image, channel, ofmap column, tap) window position, ceil(nnz(weight column of
that (channel, tap) over the PE's filters) / macs_per_pe) cycles; each pass lasts as long as its
slowest PE. compute_cycles is then data dependent; every other count keeps its dense value (the
schedule does not change; macs counts every multiplied pair, macs - macs_zero are the non-zero ×
non-zero pairs the sparse PE really runs).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.dataflow.mapping import COUNT_KEYS, RSPlusMapping, as_rs_plus_mapping
from eyejax.sim.common import (arch_int, arrivals, cdiv, datapath_arrays, distinct_rows,
                               load_ifmap_block, mapping_ints, multicast, strip_rows, tiles)
from eyejax.workload.layer import Layer

MAPPING_FIELDS = ("h", "e", "r", "t", "g", "b", "p", "q", "n", "m", "o", "oc")
DTYPES = ("ifmap", "filter", "psum")
NOC_KEYS = tuple(f"{a}_{d}" for a in ("router", "hops", "noc_cycles", "noc_mode") for d in DTYPES)
SIM_KEYS_V2 = COUNT_KEYS + NOC_KEYS + ("macs_zero",)
CLUSTER_KEYS = tuple(f"router_cluster_{d}" for d in DTYPES)


class OperandError(AssertionError):
    """A PE received operands that differ from what its assigned work needs."""


# --------------------------------------------------------------------------------------------
# Static plan and feasibility
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _PlanV2:
    N: int
    Cg: int
    Mg: int
    G: int
    H: int
    W: int
    R: int
    S: int
    U: int
    P: int
    E: int
    F: int
    W_used: int
    h: int
    e: int
    r: int
    t: int
    g: int
    b: int
    p: int
    q: int
    n: int
    m: int
    o: int
    oc: int
    cluster_rows: int
    cluster_cols: int
    cluster_pes: int
    iact_spad: int
    weight_spad: int
    psum_spad: int
    macs_per_pe: int
    pipeline_stages: int
    # router rates as (words·bits numerator, denominator): rate_d = routers·port_bits / word_bits
    rate_num: tuple
    rate_den: tuple

    @property
    def clusters(self) -> int:
        return self.cluster_rows * self.cluster_cols

    @property
    def k(self) -> int:
        return self.cluster_pes // (self.h * self.e)

    @property
    def f(self) -> int:
        """Ofmap columns per column strip."""
        return self.F // self.oc

    @property
    def W_f(self) -> int:
        """Padded ifmap columns a column strip reads (its block's row width; W_used when oc = 1)."""
        return (self.f - 1) * self.U + self.S

    @property
    def layout(self) -> tuple:
        """The first pass's filter, channel, image and strip set counts: the slot layout's radices
        (strip sets: row strips × the oc column strips)."""
        return (min(self.t, cdiv(self.Mg, self.p)), min(self.r, cdiv(self.Cg, self.q)),
                min(self.b, cdiv(self.N, self.n)), min(self.o, cdiv(self.E, self.e)) * self.oc)


_ARCH_FIELDS = ("cluster_rows", "cluster_cols", "cluster_pe_rows", "cluster_pe_cols",
                "iact_spad_words", "weight_spad_words", "psum_spad_words", "macs_per_pe",
                "iact_glb_banks", "iact_glb_bank_bits", "psum_glb_banks", "psum_glb_bank_bits",
                "iact_routers", "iact_port_bits", "weight_routers", "weight_port_bits",
                "psum_routers", "psum_port_bits", "data_bits", "psum_bits", "pe_pipeline_stages")


def check_mapping_v2(layer: Layer, mapping, arch: EyerissV2 = EyerissV2()) -> _PlanV2:
    """Validate an RS+ `mapping` for `layer` on `arch` (plain Python ints) before any work; raise
    ValueError naming the violated limit. Returns the static plan of the simulation."""
    v = mapping_ints(as_rs_plus_mapping(mapping), MAPPING_FIELDS)
    h, e, r, t, g, b, p, q, n, m, o, oc = (v[k] for k in MAPPING_FIELDS)
    A = {k: arch_int(arch, k) for k in _ARCH_FIELDS}
    for k, a in A.items():
        if a < 1:
            raise ValueError(f"arch.{k} = {a} must be >= 1")
    G = layer.groups
    Cg, Mg = layer.C // G, layer.M // G
    E, F, R, S, U = layer.E, layer.F, layer.R, layer.S, layer.stride
    W_used = (F - 1) * U + S
    cpes = A["cluster_pe_rows"] * A["cluster_pe_cols"]
    clusters = A["cluster_rows"] * A["cluster_cols"]
    if not 1 <= h <= min(R, cpes):
        raise ValueError(f"mapping.h = {h} must be in [1, min(R, cluster_pes) = {min(R, cpes)}]")
    if h * e > cpes:
        raise ValueError(f"cluster PEs: h*e = {h * e} exceeds cluster_pes = {cpes}")
    if e > E:
        raise ValueError(f"mapping.e = {e} exceeds the ofmap height E = {E}")
    if n > layer.N:
        raise ValueError(f"mapping.n = {n} exceeds the batch N = {layer.N}")
    if m % (p * t):
        raise ValueError(f"mapping.m = {m} must be a multiple of p*t = {p * t}")
    m_max = cdiv(Mg, p * t) * p * t
    if m > m_max:
        raise ValueError(f"mapping.m = {m} exceeds ceil(Mg/(p*t))*p*t = {m_max}")
    if q * S > A["iact_spad_words"]:
        raise ValueError(f"iact spad: q*S = {q * S} exceeds iact_spad_words = "
                         f"{A['iact_spad_words']}")
    if p * q * S > A["weight_spad_words"]:
        raise ValueError(f"weight spad: p*q*S = {p * q * S} exceeds weight_spad_words = "
                         f"{A['weight_spad_words']}")
    if p > A["psum_spad_words"]:
        raise ValueError(f"psum spad: p = {p} exceeds psum_spad_words = {A['psum_spad_words']}")
    if o > 1 and E % (o * e):
        raise ValueError(f"strip sets: o*e = {o * e} must divide the ofmap height E = {E} "
                         f"(equal strips) when mapping.o = {o} > 1")
    if oc > 1 and F % oc:
        raise ValueError(f"column strip sets: oc = {oc} must divide the ofmap width F = {F} "
                         f"(equal column strips)")
    if oc > 1 and U > S:
        # windows that neither overlap nor touch leave ifmap columns unread between strips
        raise ValueError(f"column strip sets: oc = {oc} > 1 needs stride U = {U} <= S = {S}")
    k = cpes // (h * e)
    if r * t * g * b * o * oc > k * clusters:
        raise ValueError(f"set slots: r*t*g*b*o*oc = {r * t * g * b * o * oc} exceeds k*clusters "
                         f"= {k}*{clusters} = {k * clusters}")
    f = F // oc
    W_f = (f - 1) * U + S                           # each column strip's padded ifmap columns
    iact_bits = g * n * b * o * oc * q * r * distinct_rows(e, U, R) * W_f * A["data_bits"]
    iact_cap = clusters * A["iact_glb_banks"] * A["iact_glb_bank_bits"]
    if iact_bits > iact_cap:
        raise ValueError(f"iact GLB: g*n*b*o*oc*q*r*rows_glb(e)*W_f*data_bits = {iact_bits} bits "
                         f"exceed clusters*iact_glb_banks*iact_glb_bank_bits = {iact_cap}")
    psum_bits = g * n * b * o * oc * m * e * f * A["psum_bits"]
    psum_cap = clusters * A["psum_glb_banks"] * A["psum_glb_bank_bits"]
    if psum_bits > psum_cap:
        raise ValueError(f"psum GLB: g*n*b*o*oc*m*e*f*psum_bits = {psum_bits} bits exceed "
                         f"clusters*psum_glb_banks*psum_glb_bank_bits = {psum_cap}")
    pl = _PlanV2(
        N=layer.N, Cg=Cg, Mg=Mg, G=G, H=layer.H, W=layer.W, R=R, S=S, U=U, P=layer.pad, E=E,
        F=F, W_used=W_used, h=h, e=e, r=r, t=t, g=g, b=b, p=p, q=q, n=n, m=m, o=o, oc=oc,
        cluster_rows=A["cluster_rows"], cluster_cols=A["cluster_cols"], cluster_pes=cpes,
        iact_spad=A["iact_spad_words"], weight_spad=A["weight_spad_words"],
        psum_spad=A["psum_spad_words"], macs_per_pe=A["macs_per_pe"],
        pipeline_stages=A["pe_pipeline_stages"],
        rate_num=(A["iact_routers"] * A["iact_port_bits"],
                  A["weight_routers"] * A["weight_port_bits"],
                  A["psum_routers"] * A["psum_port_bits"]),
        rate_den=(A["data_bits"], A["data_bits"], A["psum_bits"]))
    _check_psum_columns(pl)
    return pl


def _check_psum_columns(pl: _PlanV2) -> None:
    """Raise ValueError when a psum chain of some pass would leave its cluster column (the psum
    routers link only vertically, JETCAS19): walks every pass class's chains slot by slot in the
    layer's slot layout (`_PlanV2.layout`, the first pass's), with slot j in column j // (k·rows)
    (clusters numbered down the columns)."""
    sizes = lambda D, T: {size for _, size in tiles(D, T)}          # the tile classes that occur
    T0, R0, B0, O0 = pl.layout
    X0 = B0 * O0
    L = pl.k * pl.cluster_rows
    for gk in sizes(pl.G, pl.g):
        for z in sizes(pl.N, pl.n * pl.b):
            for y in sizes(pl.Cg, pl.q * pl.r):
                for x in sizes(pl.Mg, pl.p * pl.t):
                    live_x, re, te = O0 * cdiv(z, pl.n), cdiv(y, pl.q), cdiv(x, pl.p)
                    for gi in range(gk):
                        for ti in range(te):
                            for xi in range(live_x):
                                chain = [((gi * T0 + ti) * R0 + ri) * X0 + xi for ri in range(re)]
                                if chain[0] // L != chain[-1] // L:
                                    raise ValueError(
                                        f"psum chain: channel sets in set slots {chain[0]}..{chain[-1]} "
                                        f"span cluster columns {chain[0] // L} and {chain[-1] // L} "
                                        f"(a column holds cluster_rows*k = {L} slots); psum routers "
                                        f"link only vertically, so r*b*o*oc (first pass) must "
                                        f"divide {L} or the layer's sets must fit one column")


def is_feasible_v2(layer: Layer, mapping, arch: EyerissV2 = EyerissV2()) -> bool:
    try:
        check_mapping_v2(layer, mapping, arch)
    except ValueError:
        return False
    return True


def default_mapping_v2(layer: Layer, arch: EyerissV2 = EyerissV2()) -> RSPlusMapping:
    """A feasible RS+ mapping for small layers: the widest set e that fits, then the set slots
    filled greedily with groups, image sets (n = 1), filter sets and channel sets (p = q = 1,
    m = t). Falls back to narrower fills, then to one set; raises ValueError when nothing fits."""
    cpes = arch_int(arch, "cluster_pe_rows") * arch_int(arch, "cluster_pe_cols")
    clusters = arch_int(arch, "cluster_rows") * arch_int(arch, "cluster_cols")
    G = layer.groups
    Cg, Mg = layer.C // G, layer.M // G
    h = min(layer.R, cpes)
    last = None
    for e in range(min(layer.E, max(cpes // h, 1)), 0, -1):
        slots = (cpes // (h * e)) * clusters
        for fill in (slots, 1):
            g = max(1, min(G, fill))
            b = max(1, min(layer.N, fill // g))
            t = max(1, min(Mg, fill // (g * b)))
            r = max(1, min(Cg, fill // (g * b * t)))
            mp = RSPlusMapping(h=h, e=e, r=r, t=t, g=g, b=b, p=1, q=1, n=1, m=t)
            try:
                check_mapping_v2(layer, mp, arch)
                return mp
            except ValueError as err:
                last = err
    raise ValueError(f"layer {layer.name!r}: no feasible default RS+ mapping ({last})")


# --------------------------------------------------------------------------------------------
# The PE array of one pass
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _ArrayV2:
    """Active PEs of one pass: the set each belongs to, its place in the set and its work."""

    gi: np.ndarray      # group within the group tile
    ft: np.ndarray      # filter set
    cr: np.ndarray      # channel set
    os: np.ndarray      # strip set: os = si·oc + ci
    si: np.ndarray      # its row strip (ofmap rows si·e ..)
    ci: np.ndarray      # its column strip (ofmap columns ci·f .. ci·f + f − 1)
    bs: np.ndarray      # image set
    i: np.ndarray       # row in the set (filter row f·h + i)
    j: np.ndarray       # column in the set (ofmap row s·e + j)
    slot: np.ndarray    # set slot
    cluster: np.ndarray
    nfilt: np.ndarray   # filters / channels / images the PE is configured for
    nchan: np.ndarray
    nimg: np.ndarray
    sets: int           # active sets of the pass
    span: int           # slots of the layout the pass's groups occupy (idle ones included)


def _configure_array(pl: _PlanV2, g_k, b_k, z, h_k, e_ss, y, x) -> _ArrayV2:
    """e_ss: the rows of each row strip of the pass (all e but the last); each row strip runs as
    oc strip sets, one per column strip (column strips innermost)."""
    t_eff, r_eff, o_k = cdiv(x, pl.p), cdiv(y, pl.q), len(e_ss) * pl.oc
    gi, ft, cr, os, bs, i, j = (a.ravel() for a in np.meshgrid(
        np.arange(g_k), np.arange(t_eff), np.arange(r_eff), np.arange(o_k), np.arange(b_k),
        np.arange(h_k), np.arange(max(e_ss)), indexing="ij"))
    live = j < np.asarray(e_ss)[os // pl.oc]
    gi, ft, cr, os, bs, i, j = (a[live] for a in (gi, ft, cr, os, bs, i, j))
    # the layer's slot layout is its first pass's (routers are configured once per layer): a
    # later pass keeps every set's slot and leaves those of its missing sets idle
    T0, R0, B0, O0 = pl.layout
    slot = (((gi * T0 + ft) * R0 + cr) * B0 + bs) * O0 + os
    cluster = slot // pl.k
    local = (slot % pl.k) * (pl.h * pl.e) + i * pl.e + j      # any h·e PEs of the cluster
    if np.any(cluster >= pl.clusters) or np.any(local >= pl.cluster_pes):
        raise AssertionError("PE sets do not fit the array")          # excluded by check_mapping
    if np.unique(cluster * pl.cluster_pes + local).size != slot.size:
        raise AssertionError("two PE sets overlap")
    return _ArrayV2(gi=gi, ft=ft, cr=cr, os=os, si=os // pl.oc, ci=os % pl.oc, bs=bs, i=i, j=j,
                    slot=slot, cluster=cluster,
                    nfilt=np.minimum(pl.p, x - ft * pl.p), nchan=np.minimum(pl.q, y - cr * pl.q),
                    nimg=np.minimum(pl.n, z - bs * pl.n), sets=g_k * t_eff * r_eff * o_k * b_k,
                    span=g_k * T0 * R0 * B0 * O0)


# --------------------------------------------------------------------------------------------
# HM-NoC routing of one pass
# --------------------------------------------------------------------------------------------
def _route(pl: _PlanV2, set_match: np.ndarray, nsets: int, words: np.ndarray, reduction: bool,
           horizontal_only: bool = False):
    """Route K messages through the mesh. set_match [K, sets] marks each message's destination
    slots, words [K] the words per message. Clusters are numbered down the columns. Weights
    (`horizontal_only`) move only along a row and reach another row from that cluster's own
    off-chip input; psums (`reduction`) move only along a column (JETCAS19). Returns (router
    transfers, hops, per-cluster transfers [clusters], mode per message [K])."""
    if set_match.shape[0] == 0:
        return 0, 0, np.zeros(pl.clusters, np.int64), np.zeros(0, np.int64)
    nd = set_match.sum(axis=1)
    if np.any(nd == 0):
        raise AssertionError("a message has no destination set")
    # destination clusters D: the clusters of the destination slots in slot order, repeats merged
    # (slot // k is non-decreasing in the slot, so D is the sorted set of clusters)
    cmatch = np.zeros((set_match.shape[0], pl.clusters), bool)
    ks, ss = np.nonzero(set_match)
    cmatch[ks, ss // pl.k] = True
    msg, cl = np.nonzero(cmatch)                                  # D in order per msg
    w = words[msg]
    same = msg[1:] == msg[:-1]
    cc, rc = cl // pl.cluster_rows, cl % pl.cluster_rows
    dist = np.abs(np.diff(rc)) + np.abs(np.diff(cc))
    if horizontal_only:
        dist = np.where(np.diff(rc) == 0, dist, 0)
    if reduction and np.any((np.diff(cc) != 0) & same):
        raise AssertionError("a psum chain leaves its cluster column")   # excluded by check_mapping
    transfers = int(w.sum())                                      # |D| per word
    hops = int((dist * w[1:])[same].sum())
    first = np.concatenate([[True], ~same])
    last = np.concatenate([~same, [True]])
    per_cluster = np.zeros(pl.clusters, np.int64)
    if reduction:   # c_1→c_2, …, c_{k-1}→c_k, c_k→GLB(c_k): counted at c_2 … c_k and c_k
        np.add.at(per_cluster, cl[~first], w[~first])
        np.add.at(per_cluster, cl[last], w[last])
    else:           # one router delivery into each cluster of D
        np.add.at(per_cluster, cl, w)
    # mode of each message from its destination slots
    lo = np.argmax(set_match, axis=1)
    hi = set_match.shape[1] - 1 - np.argmax(set_match[:, ::-1], axis=1)
    contiguous = (hi - lo + 1) == nd
    mode = np.where(nd == 1, 0, np.where(contiguous, 1, 2))
    if not reduction:
        mode = np.where((nd == nsets) & (nd > 1), 3, mode)
    return transfers, hops, per_cluster, mode


def _set_match(pe_match: np.ndarray, arr: _ArrayV2) -> np.ndarray:
    """[K, PEs] message → PE matches to [K, sets] message → destination set."""
    out = np.zeros((pe_match.shape[0], arr.span), bool)
    k, pe = np.nonzero(pe_match)
    out[k, arr.slot[pe]] = True
    return out


def _uniform_mode(mode: np.ndarray, what: str) -> int:
    u = np.unique(mode)
    if u.size != 1:
        raise AssertionError(f"{what} messages of one pass use different router modes {u}")
    return int(u[0])


# --------------------------------------------------------------------------------------------
# The schedule (static, NumPy)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _ScheduleV2:
    counts: dict      # SIM_KEYS_V2 (but macs_zero) + CLUSTER_KEYS -> int / int64 array
    arrays: dict      # index arrays driving the data path


def _schedule(pl: _PlanV2) -> _ScheduleV2:
    N, G, Mg, Cg, R, U, E, oc, f = pl.N, pl.G, pl.Mg, pl.Cg, pl.R, pl.U, pl.E, pl.oc, pl.f
    M = G * Mg
    c = {k: 0 for k in COUNT_KEYS + NOC_KEYS}
    per_cluster = {d: np.zeros(pl.clusters, np.int64) for d in DTYPES}
    # GLB psum rows: f columns each, row ((image·M + filter)·E + ofmap row)·oc + column strip
    holds = np.zeros(N * M * E * oc, dtype=bool)     # GLB psum row holds a partial sum
    loads, passes, writeback = [], [], []
    nrows_glb = 0
    for gt0, g_k in tiles(G, pl.g):
        for n0, z in tiles(N, pl.n * pl.b):
            b_k = cdiv(z, pl.n)
            for o0, wy in tiles(E, pl.e * pl.o):
                strips = tiles(wy, pl.e)                  # (first row in the tile, rows) per set
                e_ss = [e_s for _, e_s in strips]
                bases = [(o0 + s0) * U for s0, _ in strips]
                for m0, m_t in tiles(Mg, pl.m):
                    for c0, y in tiles(Cg, pl.q * pl.r):
                        # ---- iact GLB load of every group and strip set of the tile: each strip
                        # set's padded rows (its own block, as strips in time would read them) ×
                        # its column strip's W_f padded columns, pads written as zeros by the GLB
                        # controller
                        msg_parts = []
                        for gi in range(g_k):
                            for oi in range(len(strips) * oc):
                                si, ci = divmod(oi, oc)
                                (m_img, m_ch, m_row, m_glb), nrows_glb = load_ifmap_block(
                                    pl, c, loads, strip_rows(bases[si], e_ss[si], U, R),
                                    n0 + np.arange(z), (gt0 + gi) * Cg + c0 + np.arange(y),
                                    nrows_glb, cols=ci * f * U + np.arange(pl.W_f))
                                msg_parts.append((np.full(m_img.size, gi), m_img, m_ch, m_row,
                                                  m_glb, np.full(m_img.size, oi),
                                                  np.full(m_img.size, ci * f * U)))
                        msgs = tuple(np.concatenate(a) for a in zip(*msg_parts))
                        for fr0, h_k in tiles(R, pl.h):
                            for k0, x in tiles(m_t, pl.p * pl.t):
                                passes.append(_schedule_pass(
                                    pl, c, per_cluster, holds, gt0, g_k, n0, z, b_k, o0, e_ss,
                                    np.asarray(bases), m0 + k0, y, c0, fr0, h_k, x, msgs,
                                    first=not passes))
                    # ---- finished ofmap blocks (one per group of the tile) GLB -> DRAM
                    for gi in range(g_k):
                        blk = (((n0 + np.arange(z))[:, None, None] * M + (gt0 + gi) * Mg + m0
                                + np.arange(m_t)[None, :, None]) * E + o0
                               + np.arange(wy))
                        blk = (blk[..., None] * oc + np.arange(oc)).ravel()
                        c["glb_psum_reads"] += blk.size * f
                        c["dram_psum_writes"] += blk.size * f
                        writeback.append(blk)
    c["passes"] = len(passes)
    c["active_pes"] = max(ps["npe"] for ps in passes)
    for di, d in enumerate(DTYPES):
        c[f"noc_cycles_{d}"] = cdiv(int(per_cluster[d].max()) * pl.rate_den[di],
                                     pl.rate_num[di])
    counts = dict(c)
    counts.update({f"router_cluster_{d}": per_cluster[d] for d in DTYPES})

    arrays = datapath_arrays(pl, passes, loads, writeback, ofmap_cols=f, psum_rows=N * M * E * oc)
    return _ScheduleV2(counts=counts, arrays=arrays)


def _check_operands(fdesc, idesc, need):
    """The pairs each PE's kernel multiplies out of its scratchpads against the pairs its work
    needs. fdesc [PE, p, q, 3] (filter, channel, filter row; -1 empty) and idesc [PE, n, q, 2 + a]
    (image, channel, then the a >= 1 coordinates placing the iact row: padded row, and optionally
    its first padded column; -1 empty) describe the spad slots, channels absolute
    (group·C/G + channel); the kernel multiplies filter slot (a, c) with iact slot (n, c) over the
    sliding window (all f·S (column, tap) pairs of the two rows). need [pairs, 5 + a]: (PE, image,
    filter, channel, filter row, then the iact row's coordinates as in idesc) of every pair the
    PE's work needs. Raises OperandError on a missing, duplicate, mismatched or unused operand."""
    fp, ip = fdesc[..., 0] >= 0, idesc[..., 0] >= 0                 # [PE, p, q], [PE, n, q]
    both = fp[:, :, None, :] & ip[:, None, :, :]                     # [PE, p, n, q]
    pe, a, nn, qq = np.nonzero(both)
    wf, wc, wr = (fdesc[pe, a, qq, t] for t in range(3))
    xi, xc = (idesc[pe, nn, qq, t] for t in range(2))
    if np.any(wc != xc):
        raise OperandError("a PE multiplies a weight with an iact of another channel")
    got = np.concatenate([np.stack([pe, xi, wf, wc, wr], axis=1), idesc[pe, nn, qq, 2:]], axis=1)
    want = np.asarray(need)
    if got.shape[0] != want.shape[0]:
        raise OperandError(f"PEs multiply {got.shape[0]} (weight row, iact row) pairs, their work "
                           f"needs {want.shape[0]}")
    gs = got[np.lexsort(got.T[::-1])]
    ws = want[np.lexsort(want.T[::-1])]
    if np.any(np.all(gs[1:] == gs[:-1], axis=1)):
        raise OperandError("a PE multiplies a (weight row, iact row) pair twice")
    if not np.array_equal(gs, ws):
        bad = gs[np.any(gs != ws, axis=1)][0]
        raise OperandError(f"PE {bad[0]} multiplies image {bad[1]} filter {bad[2]} channel "
                           f"{bad[3]} filter row {bad[4]} ifmap row (and column) {bad[5:]}, which "
                           f"its work does not need (or misses a needed pair)")
    # unpaired operands: a delivered weight or iact that no MAC uses
    if np.any(fp & ~ip.any(axis=1)[:, None, :]) or np.any(ip & ~fp.any(axis=1)[:, None, :]):
        raise OperandError("a PE holds an operand that none of its MACs uses")


def _schedule_pass(pl: _PlanV2, c, per_cluster, holds, gt0, g_k, n0, z, b_k, o0, e_ss, bases,
                   k_rel0, y, c0, fr0, h_k, x, msgs, first):
    """PASS over the groups gt0.. (g_k), images n0.. (z in b_k sets), filters k_rel0.. (x, within
    each group), channels c0.. (y), filter rows fr0.. (h_k), ofmap rows o0.. (row strips of e_ss
    rows, each cut into oc column strips of f columns; `bases`: the padded row under filter row 0
    at each row strip's first ofmap row)."""
    arr = _configure_array(pl, g_k, b_k, z, h_k, e_ss, y, x)
    npe = arr.gi.size
    modes = {}
    fidx, fdesc, fill_cycles, modes["filter"] = _deliver_filters(pl, c, per_cluster, arr, gt0, g_k,
                                                                 k_rel0, x, y, c0, fr0, h_k)
    iidx, idesc, modes["ifmap"] = _deliver_iacts(pl, c, per_cluster, arr, msgs, gt0, n0, c0, fr0,
                                                 bases)

    # ---- operand check: the pairs the PE kernels multiply = the pairs their work needs
    pe, need = _needed_pairs(pl, arr, gt0, n0, k_rel0, c0, fr0, bases)
    _check_operands(fdesc, idesc, need)

    # ---- the PE kernels: every multiplied (image, filter, channel) pair runs f·S MACs (the PE's
    # column strip)
    pairs_pe = np.bincount(pe, minlength=npe)
    macs = int(pairs_pe.sum()) * pl.f * pl.S
    for key in ("macs", "rf_ifmap_reads", "rf_filter_reads", "rf_psum_reads", "rf_psum_writes"):
        c[key] += macs
    cyc_pe = (arr.nimg * arr.nchan * pl.S * pl.f
              * ((arr.nfilt + pl.macs_per_pe - 1) // pl.macs_per_pe))
    c["compute_cycles"] += int(cyc_pe.max())
    # per pass: weight spad fill, the PE pipeline's fill, the psum chain through the h_k rows
    c["ramp_cycles"] += int(fill_cycles.max()) + (pl.pipeline_stages - 1) + h_k

    chain, pos, held, modes["psum"] = _chain_psums(pl, c, per_cluster, holds, arr, y, h_k, gt0,
                                                   n0, k_rel0, o0)
    if first:
        for d in DTYPES:
            c[f"noc_mode_{d}"] = modes[d]
    return dict(npe=npe, fidx=fidx, iidx=iidx, chain=chain, pos=pos, held=held)


def _deliver_filters(pl: _PlanV2, c, per_cluster, arr: _ArrayV2, gt0, g_k, k_rel0, x, y, c0, fr0,
                     h_k):
    """Filters of a pass: rows read from DRAM (bypassing the GLB), tagged (group, filter set,
    channel set, filter row) and delivered to every image set's PEs through the weight routers.
    Counts them; returns (DRAM row per weight spad slot [PE, p, q], the slots' (filter, absolute
    channel, filter row) [PE, p, q, 3], weight spad fill cycles per PE, router mode)."""
    Cg, R, S = pl.Cg, pl.R, pl.S
    f_g, f_k, f_c, f_r = (a.ravel() for a in np.meshgrid(
        np.arange(g_k), np.arange(x), np.arange(y), np.arange(h_k), indexing="ij"))
    f_kabs = (gt0 + f_g) * pl.Mg + k_rel0 + f_k
    f_cabs = c0 + f_c
    f_addr = (f_kabs * Cg + f_cabs) * R + fr0 + f_r
    c["dram_filter_reads"] += f_addr.size * S
    f_match = multicast(np.stack([f_g, f_k // pl.p, f_c // pl.q, f_r], axis=1),
                        np.stack([arr.gi, arr.ft, arr.cr, arr.i], axis=1))
    c["noc_filter"] += int(f_match.sum()) * S
    c["rf_filter_writes"] += int(f_match.sum()) * S
    tr, hp, pc, mode = _route(pl, _set_match(f_match, arr), arr.sets,
                              np.full(f_addr.size, S, np.int64), reduction=False,
                              horizontal_only=True)
    c["router_filter"] += tr
    c["hops_filter"] += hp
    per_cluster["filter"] += pc
    mode = _uniform_mode(mode, "filter")
    fmsg = arrivals(f_match, arr.nfilt, arr.nchan, (pl.p, pl.q))           # [PE, p, q]
    fidx = np.where(fmsg >= 0, f_addr[np.maximum(fmsg, 0)], -1)
    fdesc = np.stack([f_kabs, (gt0 + f_g) * Cg + f_cabs, fr0 + f_r],
                     axis=1)[np.maximum(fmsg, 0)]                        # absolute channel
    fdesc[fmsg < 0] = -1
    fill = (fmsg >= 0).sum(axis=(1, 2)) * S
    # weight spad entries written before the PE computes: one 24-b entry per cycle holds the weights
    # of up to macs_per_pe filters of one (channel, tap) (the SIMD pair the datapaths read together)
    entries = ((fmsg >= 0).sum(axis=1) + pl.macs_per_pe - 1) // pl.macs_per_pe   # [PE, q]
    fill_cycles = entries.sum(axis=1) * S
    if np.any(fill > pl.weight_spad) or np.any(arr.nchan * S > pl.iact_spad):
        raise AssertionError("scratchpad overflow")                   # excluded by check_mapping
    return fidx, fdesc, fill_cycles, mode


def _deliver_iacts(pl: _PlanV2, c, per_cluster, arr: _ArrayV2, msgs, gt0, n0, c0, fr0, bases):
    """Iacts of a pass: GLB rows of each strip set's block (W_f words each) tagged (group, image
    set, channel set, strip set, diagonal) and delivered to every filter set's PEs through the iact
    routers. Counts them; returns (GLB row per iact spad slot [PE, n, q], the slots' (image,
    absolute channel, padded row, first padded column) [PE, n, q, 4], router mode)."""
    Wf = pl.W_f
    m_gi, m_img, m_ch, m_row, m_glb, m_os, m_col = msgs
    i_match = multicast(np.stack([m_gi, m_img // pl.n, m_ch // pl.q, m_os,
                                  m_row - bases[m_os // pl.oc] - fr0], axis=1),
                        np.stack([arr.gi, arr.bs, arr.cr, arr.os, arr.i + pl.U * arr.j], axis=1))
    read = i_match.any(axis=1)                                     # rows this pass reads
    c["glb_ifmap_reads"] += int(read.sum()) * Wf
    c["noc_ifmap"] += int(i_match.sum()) * Wf
    c["rf_ifmap_writes"] += int(i_match.sum()) * Wf
    tr, hp, pc, mode = _route(pl, _set_match(i_match[read], arr), arr.sets,
                              np.full(int(read.sum()), Wf, np.int64), reduction=False)
    c["router_ifmap"] += tr
    c["hops_ifmap"] += hp
    per_cluster["ifmap"] += pc
    mode = _uniform_mode(mode, "iact")
    imsg = arrivals(i_match, arr.nimg, arr.nchan, (pl.n, pl.q))           # [PE, n, q]
    iidx = np.where(imsg >= 0, m_glb[np.maximum(imsg, 0)], -1)
    gch = (gt0 + m_gi) * pl.Cg + c0 + m_ch                               # absolute channel
    idesc = np.stack([n0 + m_img, gch, m_row, m_col], axis=1)[np.maximum(imsg, 0)]
    idesc[imsg < 0] = -1
    return iidx, idesc, mode


def _needed_pairs(pl: _PlanV2, arr: _ArrayV2, gt0, n0, k_rel0, c0, fr0, bases):
    """The (weight row, iact row) pairs the PEs' assigned work needs: (PE of each pair,
    need [pairs, 7] = (PE, image, filter, channel, filter row, padded ifmap row, first padded
    column of the PE's window: its column strip's)), absolute indices, as `_check_operands`
    expects."""
    npe = arr.gi.size
    pe, a, nn, qq = (v.ravel() for v in np.meshgrid(np.arange(npe), np.arange(pl.p),
                                                     np.arange(pl.n), np.arange(pl.q),
                                                     indexing="ij"))
    ok = (a < arr.nfilt[pe]) & (nn < arr.nimg[pe]) & (qq < arr.nchan[pe])
    pe, a, nn, qq = pe[ok], a[ok], nn[ok], qq[ok]
    need = np.stack([pe, n0 + arr.bs[pe] * pl.n + nn,
                     (gt0 + arr.gi[pe]) * pl.Mg + k_rel0 + arr.ft[pe] * pl.p + a,
                     (gt0 + arr.gi[pe]) * pl.Cg + c0 + arr.cr[pe] * pl.q + qq, fr0 + arr.i[pe],
                     bases[arr.si[pe]] + fr0 + arr.i[pe] + pl.U * arr.j[pe],
                     arr.ci[pe] * pl.f * pl.U], axis=1)
    return pe, need


def _chain_psums(pl: _PlanV2, c, per_cluster, holds, arr: _ArrayV2, y, h_k, gt0, n0, k_rel0, o0):
    """Psum chains of a pass: per (group, filter set, strip set, image set, set column), through
    the (channel set, row) PEs in slot order; the chain end goes to the GLB psum buffer (`holds` marks the GLB
    psum rows holding a partial sum). A chain word is a psum of the strip set's f ofmap columns.
    Counts them; returns (chain [chains, L] of PEs, GLB psum row per (chain, image, filter) or -1,
    whether that row is read back first, router mode)."""
    M, E, f = pl.G * pl.Mg, pl.E, pl.f
    order = np.lexsort((arr.i, arr.slot, arr.j, arr.bs, arr.os, arr.ft, arr.gi))
    L = cdiv(y, pl.q) * h_k                                           # r_eff · h_k
    chain = order.reshape(-1, L)
    key = np.stack([arr.gi, arr.ft, arr.os, arr.bs, arr.j], axis=1)
    if np.any(key[chain] != key[chain[:, :1]]):
        raise AssertionError("a psum chain crosses sets")
    h0 = chain[:, 0]
    nimg_c, nfilt_c = arr.nimg[h0], arr.nfilt[h0]
    c["noc_psum"] += int((nimg_c * nfilt_c).sum()) * f * (L - 1)          # PE-to-PE hops
    kk = (gt0 + arr.gi[h0])[:, None] * pl.Mg + k_rel0 + arr.ft[h0][:, None] * pl.p \
        + np.arange(pl.p)[None, :]                                        # [chains, p]
    ii = n0 + arr.bs[h0][:, None] * pl.n + np.arange(pl.n)[None, :]      # [chains, n]
    okc = ((np.arange(pl.n)[None, :, None] < nimg_c[:, None, None])
           & (np.arange(pl.p)[None, None, :] < nfilt_c[:, None, None]))
    row = (((ii[:, :, None] * M + kk[:, None, :]) * E + o0
            + (arr.si[h0] * pl.e + arr.j[h0])[:, None, None]) * pl.oc + arr.ci[h0][:, None, None])
    pos = np.where(okc, row, -1)
    held = okc & holds[np.maximum(pos, 0)]
    c["glb_psum_reads"] += int(held.sum()) * f
    c["noc_psum"] += int(held.sum()) * f
    c["glb_psum_writes"] += int(okc.sum()) * f
    c["noc_psum"] += int(okc.sum()) * f
    holds[pos[okc]] = True
    # psum words through the psum routers: each chain's rows share the chain's destination sets
    cs = np.zeros((chain.shape[0], arr.span), bool)
    cs[np.repeat(np.arange(chain.shape[0]), L), arr.slot[chain.ravel()]] = True
    tr, hp, pc, mode = _route(pl, cs, arr.sets, okc.sum(axis=(1, 2)).astype(np.int64) * f,
                              reduction=True)
    c["router_psum"] += tr
    c["hops_psum"] += hp
    per_cluster["psum"] += pc
    return chain, pos, held, _uniform_mode(mode, "psum")


# --------------------------------------------------------------------------------------------
# The data path: JAX, one scan step per pass
# --------------------------------------------------------------------------------------------
def _datapath(ifmap, weights, a, dims, macs_per_pe):
    """ifmap [N, C, H, W], weights [M, C/G, R, S] (DRAM); dims (N, M, E, F, oc). Returns the ofmap
    [N, M, E, F], the number of multiplied pairs with both operands non-zero, and the sparse-PE
    cycles (Σ over passes of the slowest PE). GLB psum rows hold f = F/oc columns, row
    ((image·M + filter)·E + ofmap row)·oc + column strip, so the rows in order are the ofmap."""
    N, M, E, F, oc = dims
    f = F // oc
    dtype = jnp.result_type(ifmap.dtype, weights.dtype)
    S = weights.shape[-1]
    x_dram = jnp.concatenate([ifmap.reshape(-1).astype(dtype), jnp.zeros((1,), dtype)])
    glb_ifmap = x_dram[a["load_idx"]]                              # [GLB rows + 1, W_f]
    w_dram = jnp.concatenate([weights.reshape(-1, S).astype(dtype), jnp.zeros((1, S), dtype)])
    win = a["win"]

    def one_pass(glb_psum, ps):
        fsp = w_dram[ps["fidx"]]                   # weight spads [PE, p, q, S]
        irow = glb_ifmap[ps["iidx"]]               # iact rows [PE, n, q, W_f]
        xw = irow[..., win]                        # sliding window [PE, n, q, f, S]
        psum = jnp.einsum("kabs,knbfs->knaf", fsp, xw)              # [PE, n, p, f]
        wnz, xnz = (fsp != 0).astype(jnp.int64), (xw != 0).astype(jnp.int64)
        nz = jnp.einsum("kabs,knbfs->", wnz, xnz)                   # non-zero × non-zero pairs
        col = (jnp.sum(wnz, axis=1) + macs_per_pe - 1) // macs_per_pe    # [PE, q, S]
        cyc = jnp.einsum("knbfs,kbs->k", xnz, col)                  # sparse PE cycles
        psum = jnp.concatenate([psum, jnp.zeros((1,) + psum.shape[1:], dtype)])
        acc = glb_psum[ps["rd"]] + jnp.sum(psum[ps["chain"]], axis=1, dtype=dtype)
        return glb_psum.at[ps["wr"]].set(acc), (nz, jnp.max(cyc))

    steps = {k: a[k] for k in ("fidx", "iidx", "chain", "rd", "wr")}
    glb_psum, (nz, cyc) = jax.lax.scan(one_pass, jnp.zeros((N * M * E * oc + 2, f), dtype),
                                       steps)
    wb = a["writeback"]
    ofmap = jnp.zeros((N * M * E * oc, f), dtype).at[wb].set(glb_psum[wb])
    return ofmap.reshape(N, M, E, F), jnp.sum(nz), jnp.sum(cyc)


_datapath_jit = jax.jit(_datapath, static_argnames=("dims", "macs_per_pe"))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
_SCHEDULES: dict = {}


def _get_schedule(pl: _PlanV2) -> _ScheduleV2:
    s = _SCHEDULES.get(pl)
    if s is None:
        if len(_SCHEDULES) > 256:
            _SCHEDULES.clear()
        s = _SCHEDULES[pl] = _schedule(pl)
    return s


def _simulate(pl: _PlanV2, sparse: bool, ifmap, weights):
    N, G, Cg, Mg = pl.N, pl.G, pl.Cg, pl.Mg
    ifmap, weights = jnp.asarray(ifmap), jnp.asarray(weights)
    if ifmap.shape != (N, G * Cg, pl.H, pl.W):
        raise ValueError(f"ifmap has shape {ifmap.shape}, expected {(N, G * Cg, pl.H, pl.W)}")
    if weights.shape != (G * Mg, Cg, pl.R, pl.S):
        raise ValueError(f"weights have shape {weights.shape}, expected {(G * Mg, Cg, pl.R, pl.S)}")
    sched = _get_schedule(pl)
    ofmap, nz, cyc = _datapath_jit(ifmap, weights, sched.arrays,
                                   (N, G * Mg, pl.E, pl.F, pl.oc), pl.macs_per_pe)
    counts = {k: jnp.asarray(v, dtype=jnp.int64) for k, v in sched.counts.items()}
    counts["macs_zero"] = counts["macs"] - nz
    if sparse:
        counts["compute_cycles"] = cyc.astype(jnp.int64)
    return ofmap, counts


def simulate_rs_plus(layer: Layer, mapping, ifmap, weights, arch: EyerissV2 = EyerissV2(), *,
                     sparse: bool = False):
    """Simulate `layer` on Eyeriss v2 under the RS+ `mapping` (an RSPlusMapping or any object with
    fields h, e, r, t, g, b, p, q, n, m and optionally o and oc, `as_rs_plus_mapping`).

    ifmap [N, C, H, W] (unpadded), weights [M, C/G, R, S]. Returns (ofmap [N, M, E, F], counts),
    counts a dict of int64 over SIM_KEYS_V2 (scalars) and CLUSTER_KEYS ([clusters]). With
    `sparse`, compute_cycles are the sparse PE's (data dependent). layer, mapping, arch and sparse
    are static; ifmap and weights may be traced and vmapped (see make_simulator_v2). Raises
    ValueError when the mapping is infeasible (checked before any work)."""
    pl = check_mapping_v2(layer, mapping, arch)
    return _simulate(pl, bool(sparse), ifmap, weights)


def simulate_rs_plus_counts(layer: Layer, mapping, arch: EyerissV2 = EyerissV2()) -> dict:
    """The data-independent counts simulate_rs_plus reports (dense mode), as Python ints (and
    int64 arrays for CLUSTER_KEYS), without running data. macs_zero is data dependent and absent."""
    pl = check_mapping_v2(layer, mapping, arch)
    return dict(_get_schedule(pl).counts)


def make_simulator_v2(layer: Layer, mapping, arch: EyerissV2 = EyerissV2(), *, jit: bool = True,
                      batched: bool = False, sparse: bool = False):
    """fn(ifmap, weights) -> (ofmap, counts) for a fixed layer/mapping/arch; with `batched`, fn maps
    over a leading axis of both ifmap and weights (every count then gets that axis too)."""
    pl = check_mapping_v2(layer, mapping, arch)
    _get_schedule(pl)
    fn = functools.partial(_simulate, pl, bool(sparse))
    if batched:
        fn = jax.vmap(fn)
    return jax.jit(fn) if jit else fn


def simulate_rs_plus_batch(layer: Layer, mapping, ifmaps, weights, arch: EyerissV2 = EyerissV2(),
                           *, jit: bool = True, sparse: bool = False):
    """simulate_rs_plus vmapped over a leading axis of ifmaps [B, N, C, H, W] and weights
    [B, M, C/G, R, S]."""
    return make_simulator_v2(layer, mapping, arch, jit=jit, batched=True, sparse=sparse)(
        ifmaps, weights)
