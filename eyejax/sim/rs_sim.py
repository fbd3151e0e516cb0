"""Functional simulation of Eyeriss v1 running the row-stationary (RS) dataflow.

The simulation executes the schedule of docs/rs_model.md literally and counts what it moves:

* DRAM holds the unpadded ifmap (NCHW), the filters ([M, C/G, R, S]) and the ofmap (NCHW).
* For every (batch tile, strip, m-tile, channel chunk) the GLB controller loads the *padded* ifmap
  block (pads written as zeros) from DRAM into a GLB array.
* For every PASS the PE array is configured: each active PE gets a physical (row, col) position, a
  filter ID (filter set, channel set, filter row) and an ifmap ID (channel set, diagonal i + U·j).
  Filter rows read from DRAM and ifmap rows read from the GLB are sent as tagged messages; a message
  reaches every PE whose ID matches its tag (multicast). A PE stores what it receives in arrival
  order.
* Every active PE runs the 1D row primitive (sliding window of its filter rows over its ifmap
  rows, stride U, for its p filters × q channels × n images); psums then chain vertically through
  the r_eff·h_k PEs of each column (starting from the GLB's partial sum when there is one) and the
  result is written back into the GLB psum buffer.
* When an ofmap block is finished it is read from the GLB and written to the DRAM ofmap array.

The counts are tallied from these movements: sizes of the blocks read and written, number of PEs
each multicast reaches, hops of each psum chain, MACs executed by the PE kernels. Nothing here uses
the closed forms of the contract.

Implementation: layer, mapping and arch are static, so the loop nest (groups one after another,
then batch tiles, strips, m-tiles, channel chunks, folds, filter chunks) runs in NumPy once per
(layer, mapping, arch): it configures the array of every pass, resolves the multicasts by ID
matching and records which DRAM/GLB word lands in which PE slot and which GLB psum row each chain
reads and writes. The data then flows through those index arrays in JAX: one gather per GLB load,
and a `lax.scan` with one step per pass (spad fills, sliding-window MACs, chains, GLB psum
read-modify-write), then the write-back to the DRAM ofmap. The data path is jit-able and vmap-able
over the data (ifmap, weights), and its compiled size does not grow with the number of passes.

Counts follow eyejax.dataflow.mapping.COUNT_KEYS, plus ``macs_zero_ifmap``: the MACs whose ifmap
operand is zero (zero gating skips their filter RF read and their MAC; ``rf_filter_reads`` and
``macs`` report the ungated numbers, as the contract's per-MAC accounting does).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.dataflow.mapping import COUNT_KEYS, RS_EXTRA_KEYS, RSMapping
from eyejax.sim.common import (arch_int, arrivals, cdiv, datapath_arrays, distinct_rows,
                               load_ifmap_block, mapping_ints, multicast, stack_passes, strip_rows,
                               tiles)
from eyejax.workload.layer import Layer

EXTRA_KEYS = ("macs_zero_ifmap",)
SIM_KEYS = COUNT_KEYS + RS_EXTRA_KEYS + EXTRA_KEYS


# --------------------------------------------------------------------------------------------
# Static plan and feasibility
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Plan:
    # layer (per group)
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
    # mapping
    h: int
    e: int
    r: int
    t: int
    p: int
    q: int
    n: int
    m: int
    # arch
    pe_rows: int
    pe_cols: int
    filter_spad: int
    ifmap_spad: int
    psum_spad: int
    # buses and clocks (docs/rs_model.md "Time")
    word_bits: int = 16
    ifmap_bus: int = 16
    filter_bus: int = 64
    psum_bus: int = 64
    clock_mhz: int = 200
    dram_bus: int = 64
    dram_clock_mhz: int = 60
    filter_buffer: int = 0          # words; 0 = no separate limit (docs/rs_model.md "Capacity")

    @property
    def segments(self) -> int:
        """Segments of one PE set: a set wider than the array is split into pieces of at most
        pe_cols columns placed on different rows (JSSC17 §IV-A, CONV2's 5×27 as 5×14 + 5×13)."""
        return cdiv(self.e, self.pe_cols)

    @property
    def set_rows(self) -> int:
        return self.pe_rows // (self.h * self.segments)

    @property
    def set_cols(self) -> int:
        return self.pe_cols // min(self.e, self.pe_cols)


def check_mapping(layer: Layer, mapping: RSMapping, arch: EyerissV1 = EyerissV1()) -> _Plan:
    """Validate `mapping` for `layer` on `arch` with plain Python ints; raise ValueError naming the
    violated limit. Returns the static plan of the simulation."""
    names = ("h", "e", "r", "t", "p", "q", "n", "m")
    vals = mapping_ints(mapping, names)
    h, e, r, t, p, q, n, m = (vals[k] for k in names)
    G = layer.groups
    Cg, Mg = layer.C // G, layer.M // G
    E, F, R, S, U = layer.E, layer.F, layer.R, layer.S, layer.stride
    W_used = (F - 1) * U + S
    A = {k: arch_int(arch, k) for k in ("pe_rows", "pe_cols", "filter_spad_words",
                                        "ifmap_spad_words", "psum_spad_words", "glb_banks",
                                        "glb_bank_words", "glb_ifmap_banks",
                                        "filter_buffer_words")}
    pe_rows, pe_cols = A["pe_rows"], A["pe_cols"]
    if not 1 <= h <= min(R, pe_rows):
        raise ValueError(f"mapping.h = {h} must be in [1, min(R, pe_rows) = {min(R, pe_rows)}]")
    if e > E:
        raise ValueError(f"mapping.e = {e} exceeds the ofmap height E = {E}")
    seg = cdiv(e, pe_cols)
    if h * seg > pe_rows:
        raise ValueError(f"PE array: a {h}x{e} set needs {seg} segments of {h} rows = {h * seg} "
                         f"rows > pe_rows = {pe_rows}")
    if n > layer.N:
        raise ValueError(f"mapping.n = {n} exceeds the batch N = {layer.N}")
    if m % (p * t):
        raise ValueError(f"mapping.m = {m} must be a multiple of p*t = {p * t}")
    m_max = cdiv(Mg, p * t) * p * t
    if m > m_max:
        raise ValueError(f"mapping.m = {m} exceeds ceil(Mg/(p*t))*p*t = {m_max}")
    if p * q * S > A["filter_spad_words"]:
        raise ValueError(f"filter spad: p*q*S = {p * q * S} exceeds filter_spad_words = "
                         f"{A['filter_spad_words']}")
    if q * S > A["ifmap_spad_words"]:
        raise ValueError(f"ifmap spad: q*S = {q * S} exceeds ifmap_spad_words = "
                         f"{A['ifmap_spad_words']}")
    if p > A["psum_spad_words"]:
        raise ValueError(f"psum spad: p = {p} exceeds psum_spad_words = {A['psum_spad_words']}")
    # the first pass carries the most filters: min(p*t, Mg) filters of min(q*r, Cg) channels
    pass_filters, pass_channels = min(p * t, Mg), min(q * r, Cg)
    if A["filter_buffer_words"] and pass_filters * pass_channels * h * S > A["filter_buffer_words"]:
        raise ValueError(f"filter buffer: a pass's filters take min(p*t, Mg)*min(q*r, Cg)*h*S = "
                         f"{pass_filters}*{pass_channels}*{h}*{S} = "
                         f"{pass_filters * pass_channels * h * S} words > filter_buffer_words = "
                         f"{A['filter_buffer_words']}")
    set_rows, set_cols = pe_rows // (h * seg), pe_cols // min(e, pe_cols)
    if r > set_rows:
        raise ValueError(f"PE array: r = {r} channel sets must stack in one column (psums chain "
                         f"vertically), but only {set_rows} sets of {h * seg} rows fit in "
                         f"pe_rows = {pe_rows}")
    if t > (set_rows // r) * set_cols:
        raise ValueError(f"PE array: t = {t} filter sets exceed floor(set_rows/r)*set_cols = "
                         f"{(set_rows // r) * set_cols} slots (set_rows = {set_rows}, set_cols = "
                         f"{set_cols}, r = {r})")
    bank = A["glb_bank_words"]
    ifmap_words = n * q * r * distinct_rows(e, U, R) * W_used
    psum_words = n * m * e * F
    ib, pb = cdiv(ifmap_words, bank), cdiv(psum_words, bank)
    if A["glb_ifmap_banks"] > 0:
        if ib > A["glb_ifmap_banks"]:
            raise ValueError(f"GLB: ifmap block needs {ib} banks > glb_ifmap_banks = "
                             f"{A['glb_ifmap_banks']}")
        if pb > A["glb_banks"] - A["glb_ifmap_banks"]:
            raise ValueError(f"GLB: psum block needs {pb} banks > glb_banks - glb_ifmap_banks = "
                             f"{A['glb_banks'] - A['glb_ifmap_banks']}")
    elif ib + pb > A["glb_banks"]:
        raise ValueError(f"GLB: ifmap ({ib}) + psum ({pb}) banks exceed glb_banks = "
                         f"{A['glb_banks']}")
    T = {k: arch_int(arch, k) for k in ("word_bits", "ifmap_bus_bits", "filter_bus_bits",
                                        "psum_bus_bits", "clock_mhz", "dram_bus_bits",
                                        "dram_clock_mhz")}
    return _Plan(N=layer.N, Cg=Cg, Mg=Mg, G=G, H=layer.H, W=layer.W, R=R, S=S, U=U, P=layer.pad,
                 E=E, F=F, W_used=W_used, h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=m,
                 pe_rows=pe_rows, pe_cols=pe_cols, filter_spad=A["filter_spad_words"],
                 ifmap_spad=A["ifmap_spad_words"], psum_spad=A["psum_spad_words"],
                 word_bits=T["word_bits"], ifmap_bus=T["ifmap_bus_bits"],
                 filter_bus=T["filter_bus_bits"], psum_bus=T["psum_bus_bits"],
                 clock_mhz=T["clock_mhz"], dram_bus=T["dram_bus_bits"],
                 dram_clock_mhz=T["dram_clock_mhz"], filter_buffer=A["filter_buffer_words"])


def is_feasible(layer: Layer, mapping: RSMapping, arch: EyerissV1 = EyerissV1()) -> bool:
    try:
        check_mapping(layer, mapping, arch)
    except ValueError:
        return False
    return True


def default_mapping(layer: Layer, arch: EyerissV1 = EyerissV1()) -> RSMapping:
    """A feasible mapping for small layers: the widest set e ≤ min(E, pe_cols) that fits,
    r=t=p=q=n=1, m = p*t = 1. Raises ValueError when none fits."""
    pe_rows, pe_cols = arch_int(arch, "pe_rows"), arch_int(arch, "pe_cols")
    h = min(layer.R, pe_rows)
    last = None
    for e in range(min(layer.E, pe_cols), 0, -1):
        mp = RSMapping(h=h, e=e, r=1, t=1, p=1, q=1, n=1, m=1)
        try:
            check_mapping(layer, mp, arch)
            return mp
        except ValueError as err:
            last = err
    raise ValueError(f"layer {layer.name!r}: no feasible default RS mapping ({last})")


# --------------------------------------------------------------------------------------------
# The PE array of one pass
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Array:
    """Static configuration of the PE array for one pass (only active PEs are listed)."""

    row: np.ndarray     # physical PE row
    col: np.ndarray     # physical PE column
    ft: np.ndarray      # filter set of the PE
    cr: np.ndarray      # channel set of the PE
    i: np.ndarray       # row inside the set (filter row f*h + i)
    j: np.ndarray       # column inside the set (ofmap row s*e + j)
    nfilt: np.ndarray   # filters the PE is configured for
    nchan: np.ndarray   # channels the PE is configured for


def _configure_array(pl: _Plan, h_k: int, e_s: int, y: int, x: int) -> _Array:
    t_eff, r_eff = cdiv(x, pl.p), cdiv(y, pl.q)
    ft, cr, i, j = (a.ravel() for a in np.meshgrid(
        np.arange(t_eff), np.arange(r_eff), np.arange(h_k), np.arange(e_s), indexing="ij"))
    # Channel sets of one filter set are stacked vertically in one column of set slots, so their
    # psums chain down the local links; filter sets fill the column's remaining slots, then the
    # next columns. A set wider than the array is cut into segments of pe_cols columns; segment
    # `sg` of every set lies in its own band of set_rows slots, so each segment's channel sets are
    # still adjacent. A pass with h_k < h rows per set packs its sets h_k rows apart.
    fpc = pl.set_rows // pl.r                      # filter sets per column of set slots
    slot_row = (ft % fpc) * pl.r + cr
    slot_col = ft // fpc
    sg = j // pl.pe_cols
    row = (sg * pl.set_rows + slot_row) * h_k + i
    col = slot_col * min(pl.e, pl.pe_cols) + j % pl.pe_cols
    if np.any(row >= pl.pe_rows) or np.any(col >= pl.pe_cols):
        raise AssertionError("PE sets do not fit the array")            # excluded by check_mapping
    if len(set(zip(row.tolist(), col.tolist()))) != row.size:
        raise AssertionError("two PE sets overlap")
    nfilt = np.minimum(pl.p, x - ft * pl.p)
    nchan = np.minimum(pl.q, y - cr * pl.q)
    return _Array(row=row, col=col, ft=ft, cr=cr, i=i, j=j, nfilt=nfilt, nchan=nchan)


# --------------------------------------------------------------------------------------------
# The schedule: the loop nest of docs/rs_model.md run on the PE array model (static, NumPy)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Schedule:
    """What the run moves where (index arrays driving the data path) and its counts."""

    counts: dict          # COUNT_KEYS -> int (data-independent)
    arrays: dict          # see _datapath


def _schedule(pl: _Plan) -> _Schedule:
    N, G, Mg, Cg, R, U, E, F = pl.N, pl.G, pl.Mg, pl.Cg, pl.R, pl.U, pl.E, pl.F
    M = G * Mg
    n, Y = pl.n, pl.q * pl.r
    c = {k: 0 for k in COUNT_KEYS + RS_EXTRA_KEYS}
    # GLB psum buffer, addressed by ofmap row (image, filter, ofmap row): holds a partial sum?
    holds = np.zeros(N * M * E, dtype=bool)
    loads, passes, writeback = [], [], []
    nrows_glb = 0                    # GLB ifmap rows stored so far (all loads, one after another)
    for g in range(G):               # groups run one after another as independent convolutions
        for n0, n_k in tiles(N, n):
            for o0, e_s in tiles(E, pl.e):
                base = o0 * U            # padded row under filter row 0 at ofmap row o0
                for m0, m_t in tiles(Mg, pl.m):
                    for c0, y in tiles(Cg, Y):
                        # ---- ifmap block DRAM -> GLB: padded rows of the strip, W_used columns;
                        # the GLB controller writes the pads as zeros
                        # GLB messages: one per stored (image, channel, row), W_used words each
                        (m_img, m_ch, m_row, m_glb), nrows_glb = load_ifmap_block(
                            pl, c, loads, strip_rows(base, e_s, U, R), n0 + np.arange(n_k),
                            g * Cg + c0 + np.arange(y), nrows_glb)
                        msgs = (m_ch, m_row, m_glb)
                        for fr0, h_k in tiles(R, pl.h):
                            for k0, x in tiles(m_t, pl.p * pl.t):
                                passes.append(_schedule_pass(
                                    pl, c, holds, n0, n_k, o0, e_s, base, g * Mg + m0 + k0, y,
                                    c0, fr0, h_k, x, msgs))
                    # ---- finished ofmap block GLB -> DRAM
                    blk = (((n0 + np.arange(n_k))[:, None, None] * M + g * Mg + m0
                            + np.arange(m_t)[None, :, None]) * E + o0 + np.arange(e_s)).ravel()
                    c["glb_psum_reads"] += blk.size * F
                    c["dram_psum_writes"] += blk.size * F
                    writeback.append(blk)
    c["passes"] = len(passes)
    c["active_pes"] = max(ps["npe"] for ps in passes)

    arrays = datapath_arrays(pl, passes, loads, writeback)
    # filters using each ifmap row slot (zero gating)
    arrays["zw"] = stack_passes(passes, "zw", arrays["fidx"].shape[1:2] + (pl.n, pl.q), 0)
    return _Schedule(counts=c, arrays=arrays)


def _schedule_pass(pl: _Plan, c: dict, holds, n0, n_k, o0, e_s, base, k_abs0, y, c0, fr0, h_k, x,
                   msgs):
    """PASS(n_k, e_s, y, h_k, x) with filters k_abs0.. (absolute) and the group's channels c0..:
    configure the array, multicast filters and ifmaps, run the kernels, chain psums; count."""
    arr = _configure_array(pl, h_k, e_s, y, x)
    npe = arr.row.size
    before = {k: c[k] for k in ("dram_filter_reads", "glb_ifmap_reads", "glb_psum_writes")}
    fidx, fmsg = _deliver_filters(pl, c, arr, k_abs0, y, c0, fr0, h_k, x)
    iidx, imsg = _deliver_ifmaps(pl, c, arr, msgs, n_k, base, fr0)

    # ---- the PE kernels: every (image, filter, channel) of a PE runs F*S MACs
    pairs = fmsg >= 0
    macs_pe = pairs.sum(axis=(1, 2)) * n_k * pl.F * pl.S
    macs = int(macs_pe.sum())
    for k in ("macs", "rf_ifmap_reads", "rf_filter_reads", "rf_psum_reads", "rf_psum_writes"):
        c[k] += macs
    zw = np.where(imsg >= 0, pairs.sum(axis=1)[:, None, :], 0)            # filters per ifmap slot
    busiest = int(macs_pe[int(np.argmax(macs_pe))])
    c["compute_cycles"] += busiest

    chain, pos, held = _chain_psums(pl, c, holds, arr, n0, n_k, o0, e_s, k_abs0, h_k, x)
    _pass_time(pl, c, {k: c[k] - v for k, v in before.items()}, busiest, n_k, h_k)
    return dict(npe=npe, fidx=fidx, iidx=iidx, zw=zw, chain=chain, pos=pos, held=held)


def _deliver_filters(pl: _Plan, c: dict, arr: _Array, k_abs0, y, c0, fr0, h_k, x):
    """Filters of a pass: rows read from DRAM (bypassing the GLB), multicast on (filter set,
    channel set, filter row). Counts them; returns (DRAM filter row per spad slot [PE, p, q] or
    -1, message index per slot)."""
    S = pl.S
    f_k, f_c, f_r = (a.ravel() for a in np.meshgrid(np.arange(x), np.arange(y), np.arange(h_k),
                                                     indexing="ij"))
    f_addr = ((k_abs0 + f_k) * pl.Cg + c0 + f_c) * pl.R + fr0 + f_r      # DRAM filter row address
    c["dram_filter_reads"] += f_addr.size * S
    if pl.filter_buffer and f_addr.size * S > pl.filter_buffer:     # excluded by check_mapping
        raise AssertionError("filter buffer overflow")
    f_match = multicast(np.stack([f_k // pl.p, f_c // pl.q, f_r], axis=1),
                        np.stack([arr.ft, arr.cr, arr.i], axis=1))
    c["noc_filter"] += int(f_match.sum()) * S
    c["rf_filter_writes"] += int(f_match.sum()) * S
    fmsg = arrivals(f_match, arr.nfilt, arr.nchan, (pl.p, pl.q))           # [npe, p, q]
    fidx = np.where(fmsg >= 0, f_addr[np.maximum(fmsg, 0)], -1)
    fill = (fmsg >= 0).sum(axis=(1, 2)) * S                                # filter spad words
    if np.any(fill > pl.filter_spad):
        raise AssertionError("filter spad overflow")
    return fidx, fmsg


def _deliver_ifmaps(pl: _Plan, c: dict, arr: _Array, msgs, n_k, base, fr0):
    """Ifmaps of a pass: GLB rows multicast on (channel set, diagonal i + U*j). Counts them;
    returns (GLB ifmap row per spad slot [PE, n_k, q] or -1, message index per slot)."""
    Wu = pl.W_used
    m_ch, m_row, m_glb = msgs
    i_match = multicast(np.stack([m_ch // pl.q, m_row - base - fr0], axis=1),
                        np.stack([arr.cr, arr.i + pl.U * arr.j], axis=1))
    c["glb_ifmap_reads"] += int(i_match.any(axis=1).sum()) * Wu            # rows the pass reads
    c["noc_ifmap"] += int(i_match.sum()) * Wu
    c["rf_ifmap_writes"] += int(i_match.sum()) * Wu
    imsg = arrivals(i_match, np.full(arr.row.size, n_k), arr.nchan, (n_k, pl.q))   # [npe, n_k, q]
    iidx = np.where(imsg >= 0, m_glb[np.maximum(imsg, 0)], -1)
    return iidx, imsg


def _chain_psums(pl: _Plan, c: dict, holds, arr: _Array, n0, n_k, o0, e_s, k_abs0, h_k, x):
    """Psum chains of a pass: per (filter set, set column), down the (channel set, row) PEs of one
    column, starting from the GLB's partial sum where `holds` says there is one; the chain end
    goes to the GLB psum buffer. Counts them; returns (chain [chains, L] of PEs, GLB psum row per
    (chain, image, filter) or -1, whether that row is read back first)."""
    M, E, F = pl.G * pl.Mg, pl.E, pl.F
    t_eff, r_eff = int(arr.ft.max()) + 1, int(arr.cr.max()) + 1
    order = np.lexsort((arr.i, arr.cr, arr.j, arr.ft))
    L = r_eff * h_k
    chain = order.reshape(t_eff * e_s, L)
    ft_c, j_c = arr.ft[chain[:, 0]], arr.j[chain[:, 0]]
    if np.any(arr.ft[chain] != ft_c[:, None]) or np.any(arr.j[chain] != j_c[:, None]):
        raise AssertionError("a psum chain crosses sets")
    # the local psum link joins vertically adjacent PEs only: every chain runs down one column
    if np.any(arr.col[chain] != arr.col[chain[:, :1]]) or np.any(np.diff(arr.row[chain], axis=1) != 1):
        raise AssertionError("a psum chain is not a run of vertically adjacent PEs")
    c["noc_psum"] += int((n_k * arr.nfilt[chain[:, 0]] * F).sum()) * (L - 1)   # PE-to-PE hops
    kk = ft_c[:, None] * pl.p + np.arange(pl.p)[None, :]                     # filter in the pass
    ok = np.broadcast_to((kk < x)[:, None, :], (chain.shape[0], n_k, pl.p))
    row = (((n0 + np.arange(n_k))[None, :, None] * M + k_abs0 + kk[:, None, :]) * E
           + o0 + j_c[:, None, None])                                       # [chains, n_k, p]
    pos = np.where(ok, row, -1)
    held = ok & holds[np.maximum(pos, 0)]
    c["glb_psum_reads"] += int(held.sum()) * F                             # partial sums read back
    c["noc_psum"] += int(held.sum()) * F                                   # ... to the chain top
    c["glb_psum_writes"] += int(ok.sum()) * F
    c["noc_psum"] += int(ok.sum()) * F                                     # chain end -> GLB
    holds[pos[ok]] = True
    return chain, pos, held


def _pass_time(pl: _Plan, c: dict, moved: dict, busiest: int, n_k, h_k) -> None:
    """Ramp and stall cycles of a pass (docs/rs_model.md "Time") from what it moved (`moved`: its
    dram_filter_reads, glb_ifmap_reads, glb_psum_writes) and its busiest PE's MACs."""
    wb = pl.word_bits
    f_words = moved["dram_filter_reads"]                                   # filters of the pass
    first_window = moved["glb_ifmap_reads"] // pl.W_used // n_k * pl.S    # one image, S columns
    fill = cdiv(f_words * wb, pl.filter_bus) + cdiv(first_window * wb, pl.ifmap_bus)
    stream = max(busiest,                                                  # busiest PE
                 cdiv(moved["glb_ifmap_reads"] * wb, pl.ifmap_bus),       # ifmap GIN
                 cdiv(moved["glb_psum_writes"] * wb, pl.psum_bus),        # psum GON (>= GIN)
                 cdiv(f_words * wb * pl.clock_mhz, pl.dram_bus * pl.dram_clock_mhz))  # DRAM
    c["ramp_cycles"] += fill + h_k
    c["stall_cycles"] += stream - busiest


# --------------------------------------------------------------------------------------------
# The data path: JAX, one scan step per pass
# --------------------------------------------------------------------------------------------
def _datapath(ifmap, weights, a, dims):
    """Run the data through the schedule `a`: ifmap [N, C, H, W] and weights [M, C/G, R, S] are the
    DRAM arrays. Returns the DRAM ofmap [N, M, E, F] and the MACs whose ifmap operand is zero."""
    N, M, E, F = dims
    dtype = jnp.result_type(ifmap.dtype, weights.dtype)
    S = weights.shape[-1]
    # DRAM -> GLB ifmap blocks (every load, one after another; index N*C*H*W is a pad, i.e. 0)
    x_dram = jnp.concatenate([ifmap.reshape(-1).astype(dtype), jnp.zeros((1,), dtype)])
    glb_ifmap = x_dram[a["load_idx"]]                              # [GLB rows + 1, W_used]
    w_dram = jnp.concatenate([weights.reshape(-1, S).astype(dtype), jnp.zeros((1, S), dtype)])
    win = a["win"]

    def one_pass(glb_psum, ps):
        fsp = w_dram[ps["fidx"]]                   # filter spads [PE, p, q, S] (multicast, DRAM)
        irow = glb_ifmap[ps["iidx"]]               # ifmap rows [PE, n, q, W_used] (multicast, GLB)
        xw = irow[..., win]                        # 1D primitive: sliding window, stride U
        psum = jnp.einsum("kabs,knbfs->knaf", fsp, xw)              # psum rows [PE, n, p, F]
        zmacs = jnp.sum(jnp.where(xw == 0, ps["zw"][..., None, None], 0), dtype=jnp.int64)
        psum = jnp.concatenate([psum, jnp.zeros((1,) + psum.shape[1:], dtype)])  # "no PE"
        # each chain starts from the GLB's partial sum (or 0), every PE down the column adds its
        # psum row, and the chain end goes back to the GLB psum buffer
        acc = glb_psum[ps["rd"]] + jnp.sum(psum[ps["chain"]], axis=1, dtype=dtype)
        return glb_psum.at[ps["wr"]].set(acc), zmacs

    steps = {k: a[k] for k in ("fidx", "iidx", "zw", "chain", "rd", "wr")}
    glb_psum, zm = jax.lax.scan(one_pass, jnp.zeros((N * M * E + 2, F), dtype), steps)
    wb = a["writeback"]                            # finished blocks GLB -> DRAM
    ofmap = jnp.zeros((N * M * E, F), dtype).at[wb].set(glb_psum[wb])
    return ofmap.reshape(N, M, E, F), jnp.sum(zm, dtype=jnp.int64)


_datapath_jit = jax.jit(_datapath, static_argnames=("dims",))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
_SCHEDULES: dict = {}


def _get_schedule(pl: _Plan) -> _Schedule:
    s = _SCHEDULES.get(pl)
    if s is None:
        if len(_SCHEDULES) > 256:
            _SCHEDULES.clear()
        s = _SCHEDULES[pl] = _schedule(pl)
    return s


def _simulate(pl: _Plan, ifmap, weights):
    N, G, Cg, Mg = pl.N, pl.G, pl.Cg, pl.Mg
    ifmap = jnp.asarray(ifmap)
    weights = jnp.asarray(weights)
    if ifmap.shape != (N, G * Cg, pl.H, pl.W):
        raise ValueError(f"ifmap has shape {ifmap.shape}, expected {(N, G * Cg, pl.H, pl.W)}")
    if weights.shape != (G * Mg, Cg, pl.R, pl.S):
        raise ValueError(f"weights have shape {weights.shape}, expected {(G * Mg, Cg, pl.R, pl.S)}")
    sched = _get_schedule(pl)
    ofmap, zm = _datapath_jit(ifmap, weights, sched.arrays, (N, G * Mg, pl.E, pl.F))
    counts = {k: jnp.asarray(v, dtype=jnp.int64) for k, v in sched.counts.items()}
    counts["macs_zero_ifmap"] = zm
    return ofmap, counts


def simulate_rs(layer: Layer, mapping: RSMapping, ifmap, weights, arch: EyerissV1 = EyerissV1()):
    """Simulate `layer` on Eyeriss v1 under the RS `mapping`.

    ifmap [N, C, H, W] (unpadded), weights [M, C/G, R, S]. Returns (ofmap [N, M, E, F], counts) with
    counts a dict of int64 scalars over COUNT_KEYS + ("macs_zero_ifmap",). layer, mapping and arch
    are static (jit with static_argnums=(0, 1, 4), or use `make_simulator`); ifmap and weights may
    be traced and vmapped. Raises ValueError when the mapping is infeasible (checked before any
    work).
    """
    pl = check_mapping(layer, mapping, arch)
    return _simulate(pl, ifmap, weights)


def simulate_rs_counts(layer: Layer, mapping: RSMapping, arch: EyerissV1 = EyerissV1()) -> dict:
    """The counts of COUNT_KEYS (Python ints) that simulate_rs reports, without running data: they
    come from the simulated schedule (array configuration, multicasts, chains, GLB/DRAM transfers),
    which does not depend on the data. (macs_zero_ifmap does and is not included.)"""
    pl = check_mapping(layer, mapping, arch)
    return dict(_get_schedule(pl).counts)


def make_simulator(layer: Layer, mapping: RSMapping, arch: EyerissV1 = EyerissV1(), *,
                   jit: bool = True, batched: bool = False):
    """fn(ifmap, weights) -> (ofmap, counts) for a fixed layer/mapping/arch; with `batched`, fn maps
    over a leading axis of both ifmap and weights (every count then gets that axis too)."""
    pl = check_mapping(layer, mapping, arch)
    _get_schedule(pl)
    fn = functools.partial(_simulate, pl)
    if batched:
        fn = jax.vmap(fn)
    return jax.jit(fn) if jit else fn


def simulate_rs_batch(layer: Layer, mapping: RSMapping, ifmaps, weights,
                      arch: EyerissV1 = EyerissV1(), *, jit: bool = True):
    """simulate_rs vmapped over a leading batch axis of ifmaps [B, N, C, H, W] and weights
    [B, M, C/G, R, S] (different data, same layer and mapping)."""
    return make_simulator(layer, mapping, arch, jit=jit, batched=True)(ifmaps, weights)
