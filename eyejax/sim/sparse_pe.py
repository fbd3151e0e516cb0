"""The Eyeriss v2 sparse PE: CSC-compressed iacts × CSC-compressed weights, counted cycle by cycle.

Sources: shared/reference/eyeriss.md §3 (JETCAS19 and seed 000); docs/rs_plus_model.md (Sparsity).
The seed slides (figures lost) give only the CSC vectors and "process in CSC format" / "latency gain";
the PE's procedure is from eyeriss.md §3: "the PE reads a non-zero iact, then walks the matching
weight column's non-zeros, so only non-zero × non-zero MACs take cycles".

Weight orientation
------------------
The PE's weights are a matrix with one **column per input** (input channel c; for a row convolution,
one column per (filter tap s, input channel c), column index j = s·C + c) and one **row per output
channel** m, stored CSC (`eyejax.sparse.csc`). A non-zero iact of input j selects weight column j
(two weight-address reads give its start and end), and the column's stored words are the weights
W[m, j] of every output channel m it feeds, each added into psum[m]. This is the only orientation
in which "the matching weight column" of one iact exists: the column index is the iact's input
index, the row index (recovered from the counts) is the psum address.

Matrix-vector kernel (`sparse_pe_matvec`), the cycle rule
---------------------------------------------------------
psum[m] += Σ_c iact[c] · W[m, c]. The PE reads the iact CSC (a single column: its stored words,
padding zeros included), and for each stored iact with non-zero data it reads the weight address
pair of column c and walks that column's stored words, `macs_per_cycle` (2) at a time: the two MAC
datapaths (SIMD) share the iact and take two consecutive weights of the same column per cycle, so an
odd leftover wastes one datapath for that cycle. Hence

    cycles = Σ_{non-zero iacts c} ( ceil(words(weight column c) / macs_per_cycle) + iact_overhead_cycles )

with `iact_overhead_cycles` = 0 by default: the iact / address fetches are pipelined under the
previous iact's MACs (7-stage pipeline), so only MAC cycles count, and a non-zero iact whose weight
column is empty costs nothing. `words` counts stored words, so a weight padding zero (a column of
more than 2**count_bits rows with a run of >= 16 zeros, see csc.py) takes a datapath slot (it is
read; its MAC is gated). For columns of <= 16 rows there is no padding and words == nnz, the rule of
docs/rs_plus_model.md. Padding zeros in the iact vector are read but skipped (no weight walk).

Counts (int64): macs (non-zero × non-zero pairs: the MACs that run), cycles,
iact_spad_reads (stored iact words read, padding included), iact_addr_reads (address entries of
the iact columns read: num_iact_cols + 1, each address read once), weight_addr_reads (2 per
processed non-zero iact), weight_spad_reads (stored weight words walked, padding included),
psum_spad_reads / psum_spad_writes (one read-modify-write per MAC).

Dense mode (`dense=True`): uncompressed data, the address scratchpads are bypassed and every
(input, output) pair runs: macs = C·M, weight_spad_reads = psum reads = psum writes = C·M,
iact_spad_reads = C, address reads 0. cycles = C · ceil(M / macs_per_cycle) with
dense_packing="column" (the default: two weights of the same column per cycle, as in the sparse
rule and in docs/rs_plus_model.md, "the 2 MAC datapaths work on two filters of the same weight
column"), or ceil(C·M / macs_per_cycle) with dense_packing="flat" (weights packed across columns).
The two agree when M is a multiple of macs_per_cycle.

Row convolution (`sparse_pe_conv_row`): RS inside the PE
--------------------------------------------------------
One ifmap row of C channels, [C, W_in], is CSC-coded with rows = channels and columns = ifmap
positions w; one filter row of M filters, [M, C, S], is the weight matrix [M, S·C] (column s·C + c,
`conv_row_weight_matrix`). Output column f (stride U) is the matvec of the window w in
[f·U, f·U + S): the iact at (c, w) is input j = (w - f·U)·C + c. The PE walks the window's iact
columns (S + 1 address reads, the window's stored words), so a value shared by several windows is
read once per window. psum[m, f] = Σ_{c,s} iact[c, f·U + s] · W[m, c, s]; counts are the sums of
the per-window matvec counts.

Layer simulation (`simulate_sparse_conv`)
-----------------------------------------
A batch-1 conv layer ([C, H, W] ifmap, [M, C, R, S] weights) is cut into PE tasks, each one row
primitive: (channel group cg of c_per_pe channels, filter group g of m_per_pe filters, filter row r,
ofmap row e), computing the psum row of filters g over channels cg from filter row r and padded
ifmap row e·U + r. Tasks are enumerated in the order (cg, g, r, e), e fastest, and dealt to the
PEs in that order: task t runs on PE t % num_pes in pass t // num_pes. A pass lasts as long as its
slowest PE (workload imbalance), and the layer takes Σ_passes max_PE cycles. psum rows of the
tasks that share (g, e) are summed outside the PEs (the psum network / GLB), giving the ofmap.

Scratchpad capacity (`PECapacity`, v2 defaults; words of the stored format):
  static, from the assignment: psum m_per_pe <= 32; sparse: S + 1 <= 9 iact address entries and
  c_per_pe·S + 1 <= 16 weight address entries; dense: c_per_pe·S <= 16 iact words and
  m_per_pe·c_per_pe·S <= 192 weight words.
  data-dependent (sparse): each task's weight CSC words <= 192 (96 × 24 b = 192 12-b words) and
  each window's iact CSC words <= 16 (the iact spad holds one window).
Any violation raises ValueError: the caller picks an assignment that fits. The defaults pick the
largest c_per_pe then m_per_pe whose worst case (dense data) fits, so they never raise.

Analytical expectation (`expected_pe_cycles`, `expected_pass_max`, `expected_sparse_conv_cycles`)
-------------------------------------------------------------------------------------------------
For i.i.d. zeros (iact density d_i, weight density d_w), weight column j costs
K_j = ceil(W_j / macs_per_cycle) + overhead per non-zero iact, with W_j the column's stored words
(pmf from `eyejax.sparse.csc.column_words_pmf`; Binomial(M, d_w) when M <= 16); the K_j are i.i.d.
with mean μ and variance σ². A row task with C channels, S taps, F outputs, stride U, ifmap
positions w with density d·1[w not padding] =: d_w' and reuse n_w = #{(s, f): f·U + s = w} costs
T = Σ_{c,w} X_{c,w} · Σ_{s: f·U+s=w} K_{c,s}, hence (exactly)

    E[T]   = C · μ · Σ_w d_w' n_w,
    Var[T] = C · Σ_w d_w'(1 - d_w')(n_w σ² + n_w² μ²)  +  C · σ² · Σ_s D_s²,   D_s = Σ_f d'_{f·U+s}

(law of total variance over the weights). For the matvec (S = W = F = 1): E = C·d_i·μ.

The slowest PE of a pass: with the tasks' cycles T_1..T_n of a pass, E[max] >= max_i E[T_i]
(Jensen; exact lower bound) and, modelling the T_i as independent normals N(E[T_i], Var[T_i]),
E[max] ≈ ∫_0^∞ (1 - Π_i Φ((x - E[T_i]) / sd_i)) dx (`expected_pass_max`, numerical). The PEs of a
pass share weights or overlapping ifmap rows; the T_i are non-decreasing functions of the same
independent non-zero indicators (adding a non-zero never removes a stored word), hence
non-negatively correlated (Harris/FKG), and for Gaussians with given means and variances
non-negative correlation can only lower E[max] (Sudakov-Fernique), so the independent-normal value
is an upper estimate (exact for the Gaussian approximation of independent PEs).
`expected_sparse_conv_cycles` sums both over the passes of `simulate_sparse_conv`'s schedule
(a task whose ifmap row is vertical padding costs 0).
"""
from __future__ import annotations

import dataclasses
import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.sim.common import cdiv
from eyejax.sparse.csc import CSC, column_words_pmf, csc_coords, csc_decode, csc_encode

__all__ = [
    "SPARSE_PE_KEYS",
    "PECapacity",
    "SparseConvResult",
    "conv_row_weight_matrix",
    "sparse_pe_matvec",
    "sparse_pe_conv_row",
    "simulate_sparse_conv",
    "default_assignment",
    "expected_pe_cycles",
    "expected_pass_max",
    "expected_sparse_conv_cycles",
]

SPARSE_PE_KEYS = (
    "macs", "cycles", "iact_spad_reads", "weight_spad_reads", "iact_addr_reads",
    "weight_addr_reads", "psum_spad_reads", "psum_spad_writes",
)

_INT = jnp.result_type(int)
_FLOAT = jnp.result_type(float)


def _counts(**kw) -> dict:
    return {k: jnp.asarray(kw[k], _INT) for k in SPARSE_PE_KEYS}


def _check_packing(dense_packing: str):
    if dense_packing not in ("column", "flat"):
        raise ValueError(f"dense_packing must be 'column' or 'flat', got {dense_packing!r}")


def _dense_cycles(num_inputs: int, num_outputs: int, macs_per_cycle: int, dense_packing: str) -> int:
    if dense_packing == "column":
        return num_inputs * cdiv(num_outputs, macs_per_cycle)
    return cdiv(num_inputs * num_outputs, macs_per_cycle)


# --------------------------------------------------------------------------------------------
# The walk: non-zero iacts × their weight columns
# --------------------------------------------------------------------------------------------
def _walk(jcol, vals, active, weight: CSC, w_rows, num_outputs: int, macs_per_cycle: int,
          overhead: int):
    """Process iact entries (weight column index jcol, value vals, active mask) against `weight`.

    Returns (psum [num_outputs], macs, cycles, weight_spad_reads, weight_addr_reads).
    """
    M = int(num_outputs)
    Cw = weight.address.shape[0] - 1
    capw = weight.data.shape[0]
    dt = jnp.result_type(vals.dtype, weight.data.dtype)
    n_active = jnp.sum(active, dtype=_INT)
    if M == 0 or Cw == 0 or capw == 0:
        return (jnp.zeros((M,), dt), jnp.zeros((), _INT), n_active * overhead,
                jnp.zeros((), _INT), 2 * n_active)
    j = jnp.clip(jcol, 0, Cw - 1)
    start = weight.address[j]
    end = weight.address[j + 1]
    nwords = jnp.where(active, end - start, 0)
    offs = jnp.arange(M, dtype=jnp.int32)  # a column stores at most num_rows == M words
    walk = offs[None, :] < nwords[:, None]
    e = jnp.clip(start[:, None] + offs[None, :], 0, capw - 1)
    wv = weight.data[e]
    wr = w_rows[e]
    prod = jnp.where(walk, vals[:, None].astype(dt) * wv.astype(dt), jnp.zeros((), dt))
    psum = jnp.zeros((M,), dt).at[jnp.where(walk, wr, M)].add(prod, mode="drop")
    macs = jnp.sum(walk & (wv != 0), dtype=_INT)
    cycles = jnp.sum(jnp.where(active, cdiv(nwords, macs_per_cycle) + overhead, 0), dtype=_INT)
    return psum, macs, cycles, jnp.sum(nwords, dtype=_INT), 2 * n_active


def _as_dense(x, shape):
    if isinstance(x, CSC):
        return csc_decode(x, tuple(int(s) for s in shape))
    x = jnp.asarray(x)
    return x.reshape(shape)


@partial(jax.jit, static_argnames=("num_outputs", "macs_per_cycle", "dense", "iact_overhead_cycles",
                                   "dense_packing"))
def sparse_pe_matvec(iact, weight, num_outputs: int, macs_per_cycle: int = 2, dense: bool = False,
                     iact_overhead_cycles: int = 0, dense_packing: str = "column"):
    """One PE: psums[m] = Σ_c iact[c] · W[m, c]. Returns (psums [num_outputs], counts dict).

    Sparse mode: `iact` is the CSC of the iact vector as a [C, 1] matrix, `weight` the CSC of the
    [num_outputs, C] weight matrix (one column per input channel). Dense mode: `iact` [C] and
    `weight` [num_outputs, C] arrays (CSC inputs are decoded first). Cycle rule and counts: module
    docstring. jit-able; vmap over the data.
    """
    _check_packing(dense_packing)
    M = int(num_outputs)
    if dense:
        if isinstance(weight, CSC):
            C = weight.address.shape[0] - 1
        else:
            C = jnp.asarray(weight).shape[-1]
        x = _as_dense(iact, (C, 1))[:, 0] if isinstance(iact, CSC) else jnp.asarray(iact).reshape(C)
        W = _as_dense(weight, (M, C))
        dt = jnp.result_type(x.dtype, W.dtype)
        psum = (W.astype(dt) * x.astype(dt)[None, :]).sum(axis=1).astype(dt)
        n = C * M
        return psum, _counts(macs=n, cycles=_dense_cycles(C, M, macs_per_cycle, dense_packing),
                             iact_spad_reads=C, weight_spad_reads=n, iact_addr_reads=0,
                             weight_addr_reads=0, psum_spad_reads=n, psum_spad_writes=n)
    if not (isinstance(iact, CSC) and isinstance(weight, CSC)):
        raise TypeError("sparse mode needs CSC iact and weight (use dense=True for arrays)")
    if iact.address.shape[0] != 2:
        raise ValueError(f"the iact CSC must have one column, got {iact.address.shape[0] - 1}")
    rows, _, valid = csc_coords(iact)
    active = valid & (iact.data != 0)
    w_rows, _, _ = csc_coords(weight)
    psum, macs, cycles, wreads, waddr = _walk(rows, iact.data, active, weight, w_rows, M,
                                              macs_per_cycle, iact_overhead_cycles)
    return psum, _counts(macs=macs, cycles=cycles, iact_spad_reads=iact.nnz, weight_spad_reads=wreads,
                         iact_addr_reads=2, weight_addr_reads=waddr, psum_spad_reads=macs,
                         psum_spad_writes=macs)


def conv_row_weight_matrix(weight_row) -> jax.Array:
    """[M, C, S] filter row -> the PE's weight matrix [M, S·C], column j = s·C + c."""
    w = jnp.asarray(weight_row)
    M, C, S = w.shape
    return jnp.transpose(w, (0, 2, 1)).reshape(M, S * C)


@partial(jax.jit, static_argnames=("num_outputs", "filter_width", "out_width", "stride",
                                   "macs_per_cycle", "dense", "iact_overhead_cycles",
                                   "dense_packing"))
def sparse_pe_conv_row(iact, weight, num_outputs: int, filter_width: int, out_width: int,
                       stride: int = 1, macs_per_cycle: int = 2, dense: bool = False,
                       iact_overhead_cycles: int = 0, dense_packing: str = "column"):
    """One PE running a 1-D row convolution (RS primitive). Returns (psum row [M, F], counts).

    Sparse mode: `iact` = CSC of the ifmap row [C, W_in] (rows channels, columns positions),
    `weight` = CSC of `conv_row_weight_matrix(filter_row)` [M, S·C]. Dense mode: the arrays
    [C, W_in] and [M, S·C]. psum[m, f] = Σ_{c,s} iact[c, f·stride + s] · W[m, c, s]. Each output
    column is the matvec of its window (module docstring); counts are summed over the F windows.
    """
    _check_packing(dense_packing)
    M, S, F, U = int(num_outputs), int(filter_width), int(out_width), int(stride)
    Cw = (weight.address.shape[0] - 1) if isinstance(weight, CSC) else jnp.asarray(weight).shape[-1]
    if Cw % S:
        raise ValueError(f"weight matrix has {Cw} columns, not a multiple of filter_width {S}")
    C = Cw // S
    W_in = (iact.address.shape[0] - 1) if isinstance(iact, CSC) else jnp.asarray(iact).shape[-1]
    if F < 1 or (F - 1) * U + S > W_in:
        raise ValueError(f"out_width {F} with stride {U} and filter_width {S} needs "
                         f"{(F - 1) * U + S} ifmap columns, the row has {W_in}")
    fs = jnp.arange(F)
    if dense:
        X = _as_dense(iact, (C, W_in))
        Wm = _as_dense(weight, (M, Cw))
        dt = jnp.result_type(X.dtype, Wm.dtype)
        # window of output f, flattened s-major: x_f[s·C + c] = X[c, f·U + s]
        cols = fs[:, None] * U + jnp.arange(S)[None, :]            # [F, S]
        win = jnp.transpose(X[:, cols], (1, 2, 0)).reshape(F, S * C)  # [F, S·C]
        psum = (win.astype(dt) @ Wm.astype(dt).T).T                 # [M, F]
        n = C * S * M * F
        return psum, _counts(macs=n, cycles=F * _dense_cycles(C * S, M, macs_per_cycle, dense_packing),
                             iact_spad_reads=C * S * F, weight_spad_reads=n, iact_addr_reads=0,
                             weight_addr_reads=0, psum_spad_reads=n, psum_spad_writes=n)
    if not (isinstance(iact, CSC) and isinstance(weight, CSC)):
        raise TypeError("sparse mode needs CSC iact and weight (use dense=True for arrays)")
    rows, cols, valid = csc_coords(iact)
    nz = valid & (iact.data != 0)
    w_rows, _, _ = csc_coords(weight)

    def window(f):
        lo = f * U
        inwin = (cols >= lo) & (cols < lo + S)
        j = (cols - lo) * C + rows
        psum, macs, cycles, wreads, waddr = _walk(j, iact.data, nz & inwin, weight, w_rows, M,
                                                  macs_per_cycle, iact_overhead_cycles)
        words = iact.address[lo + S] - iact.address[lo]
        return psum, jnp.stack([macs, cycles, words.astype(_INT), wreads, waddr])

    psums, c = jax.vmap(window)(fs)
    c = c.sum(axis=0)
    return psums.T, _counts(macs=c[0], cycles=c[1], iact_spad_reads=c[2], weight_spad_reads=c[3],
                            iact_addr_reads=F * (S + 1), weight_addr_reads=c[4], psum_spad_reads=c[0],
                            psum_spad_writes=c[0])


# --------------------------------------------------------------------------------------------
# Layer simulation
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PECapacity:
    """PE scratchpad sizes in stored words (Eyeriss v2 defaults, eyeriss.md §3)."""

    iact_data: int = 16      # iact data 16 × 12b
    iact_addr: int = 9       # iact address 9 × 4b
    weight_data: int = 192   # weight data 96 × 24b = 192 12-b words
    weight_addr: int = 16    # weight address 16 × 7b
    psum: int = 32           # psum 32 × 20b

    @classmethod
    def from_arch(cls, arch) -> "PECapacity":
        """From an unbatched `EyerissV2` (its *_spad_words / *_addr_words fields)."""
        g = lambda v: int(np.asarray(v))
        return cls(iact_data=g(arch.iact_spad_words), iact_addr=g(arch.iact_addr_words),
                   weight_data=g(arch.weight_spad_words), weight_addr=g(arch.weight_addr_words),
                   psum=g(arch.psum_spad_words))


@dataclasses.dataclass(frozen=True)
class SparseConvResult:
    """Output of `simulate_sparse_conv`. Cycle arrays are int64 numpy arrays."""

    output: np.ndarray          # [M, E, F] (or [1, M, E, F] if the ifmap had a batch axis)
    cycles: int                 # Σ over passes of the slowest PE
    pass_cycles: np.ndarray     # [num_passes]
    pe_cycles: np.ndarray       # [num_passes, num_pes] (0 for idle PEs of the last pass)
    task_cycles: np.ndarray     # [num_tasks], in task order
    tasks: np.ndarray           # [num_tasks, 4] = (cg, g, r, e)
    counts: dict                # SPARSE_PE_KEYS -> int, summed over tasks
    m_per_pe: int
    c_per_pe: int
    num_pes: int


def _conv_geometry(C, H, W, R, S, stride, pad):
    U, P = int(stride), int(pad)
    Hp, Wp = H + 2 * P, W + 2 * P
    E = (Hp - R) // U + 1
    F = (Wp - S) // U + 1
    if E < 1 or F < 1:
        raise ValueError(f"empty output: H={H} W={W} R={R} S={S} stride={U} pad={P}")
    return U, P, Hp, Wp, E, F


def default_assignment(C: int, M: int, S: int, capacity: PECapacity = PECapacity(),
                       dense: bool = False) -> tuple[int, int]:
    """(m_per_pe, c_per_pe): the largest c_per_pe, then m_per_pe, whose dense worst case fits."""
    cap = capacity
    if dense:
        cp = min(C, cap.iact_data // S)
    else:
        cp = min(C, (cap.weight_addr - 1) // S, cap.iact_data // S)
    if cp < 1:
        raise ValueError(f"filter width S={S} does not fit the PE scratchpads {cap}")
    mp = min(M, cap.psum, cap.weight_data // (cp * S))
    if mp < 1:
        raise ValueError(f"no filter fits the weight scratchpad with c_per_pe={cp}, S={S}")
    return mp, cp


def _resolve_assignment(C, M, S, m_per_pe, c_per_pe, capacity, dense):
    """Explicit values win; a missing m_per_pe is the largest whose dense worst case fits c_per_pe."""
    if c_per_pe is None:
        mp, cp = default_assignment(C, M, S, capacity, dense)
        if m_per_pe is not None:
            mp = int(m_per_pe)
    else:
        cp = int(c_per_pe)
        mp = int(m_per_pe) if m_per_pe is not None else \
            min(M, capacity.psum, capacity.weight_data // max(cp * S, 1))
    if cp < 1 or mp < 1:
        raise ValueError(f"m_per_pe={mp}, c_per_pe={cp} must be >= 1")
    return min(mp, M), min(cp, C)


def _check_static(S, mp, cp, cap: PECapacity, dense: bool):
    errs = []
    if mp > cap.psum:
        errs.append(f"m_per_pe={mp} psums > psum spad {cap.psum}")
    if dense:
        if cp * S > cap.iact_data:
            errs.append(f"dense window c_per_pe·S={cp * S} > iact spad {cap.iact_data}")
        if mp * cp * S > cap.weight_data:
            errs.append(f"dense weights m_per_pe·c_per_pe·S={mp * cp * S} > weight spad {cap.weight_data}")
    else:
        if S + 1 > cap.iact_addr:
            errs.append(f"window of S={S} columns needs {S + 1} iact addresses > {cap.iact_addr}")
        if cp * S + 1 > cap.weight_addr:
            errs.append(f"c_per_pe·S={cp * S} weight columns need {cp * S + 1} addresses > "
                        f"{cap.weight_addr}")
    if errs:
        raise ValueError("PE assignment does not fit: " + "; ".join(errs))


def _task_list(C, M, R, E, mp, cp):
    ncg, ng = cdiv(C, cp), cdiv(M, mp)
    return np.array([(cg, g, r, e) for cg in range(ncg) for g in range(ng) for r in range(R)
                     for e in range(E)], dtype=np.int64).reshape(-1, 4)


@functools.lru_cache(maxsize=None)
def _batched_kernel(M, S, F, U, mpc, dense, overhead, packing, count_bits):
    def one(iact_row, w_mat):
        if dense:
            return sparse_pe_conv_row(iact_row, w_mat, M, S, F, U, mpc, True, overhead, packing) + (
                jnp.zeros((), _INT), jnp.zeros((), _INT))
        ic = csc_encode(iact_row, count_bits=count_bits)
        wc = csc_encode(w_mat, count_bits=count_bits)
        psum, counts = sparse_pe_conv_row(ic, wc, M, S, F, U, mpc, False, overhead, packing)
        lo = jnp.arange(F) * U
        max_window = jnp.max(ic.address[lo + S] - ic.address[lo]).astype(_INT)
        return psum, counts, wc.nnz, max_window

    return jax.jit(jax.vmap(one))


def simulate_sparse_conv(ifmap, weights, stride: int = 1, pad: int = 0, num_pes: int = 12,
                         m_per_pe: int | None = None, c_per_pe: int | None = None,
                         capacity: PECapacity = PECapacity(), macs_per_cycle: int = 2,
                         dense: bool = False, iact_overhead_cycles: int = 0, count_bits: int = 4,
                         dense_packing: str = "column") -> SparseConvResult:
    """Run a batch-1 conv layer on `num_pes` sparse PEs (schedule and checks: module docstring).

    ifmap [C, H, W] (or [1, C, H, W]), weights [M, C, R, S]; symmetric zero padding `pad`, square
    `stride`. The output equals jax.lax.conv_general_dilated exactly on integer data. Host-level
    driver (raises ValueError on capacity violations); the PE kernels run jitted and vmapped.
    """
    _check_packing(dense_packing)
    x = np.asarray(ifmap)
    batched = x.ndim == 4
    if batched:
        if x.shape[0] != 1:
            raise ValueError(f"simulate_sparse_conv runs batch 1, got {x.shape[0]} images")
        x = x[0]
    w = np.asarray(weights)
    C, H, W = x.shape
    M, Cw, R, S = w.shape
    if Cw != C:
        raise ValueError(f"weights have {Cw} channels, ifmap {C}")
    if num_pes < 1:
        raise ValueError("num_pes must be >= 1")
    U, P, Hp, Wp, E, F = _conv_geometry(C, H, W, R, S, stride, pad)
    mp, cp = _resolve_assignment(C, M, S, m_per_pe, c_per_pe, capacity, dense)
    _check_static(S, mp, cp, capacity, dense)

    tasks = _task_list(C, M, R, E, mp, cp)
    T = tasks.shape[0]
    ncg, ng = cdiv(C, cp), cdiv(M, mp)
    dt = np.result_type(x.dtype, w.dtype)
    # Every task runs at the full (c_per_pe, m_per_pe) shape: the last channel / filter group is
    # padded with zero channels / filters. Zeros are never stored in CSC (they only extend a
    # column's trailing zeros, or add empty weight columns), so sparse outputs and counts are
    # unchanged, and one compiled kernel serves the whole layer. Dense counts use the true sizes.
    xp = np.zeros((ncg * cp, Hp, Wp), x.dtype)
    xp[:C, P:P + H, P:P + W] = x
    wp = np.zeros((ng * mp, ncg * cp, R, S), w.dtype)
    wp[:M, :C] = w
    cg, g, r, e = tasks.T
    ch = cg[:, None] * cp + np.arange(cp)[None, :]                       # [T, cp]
    mi = g[:, None] * mp + np.arange(mp)[None, :]                        # [T, mp]
    iact_rows = xp[ch, (e * U + r)[:, None], :]                          # [T, cp, Wp]
    w_rows = wp[mi[:, :, None], ch[:, None, :], r[:, None, None], :]     # [T, mp, cp, S]
    w_mats = np.transpose(w_rows, (0, 1, 3, 2)).reshape(T, mp, S * cp)  # column s·cp + c
    kern = _batched_kernel(mp, S, F, U, macs_per_cycle, dense, iact_overhead_cycles, dense_packing,
                           count_bits)
    psums, counts, wwords, maxwin = jax.device_get(kern(jnp.asarray(iact_rows), jnp.asarray(w_mats)))
    if dense:
        cps = np.minimum(C - cg * cp, cp)
        mps = np.minimum(M - g * mp, mp)
        n = F * cps * S * mps
        per_window = np.array([_dense_cycles(int(a) * S, int(b), macs_per_cycle, dense_packing)
                               for a, b in zip(cps, mps)], np.int64).reshape(T)
        counts = dict(macs=n, cycles=F * per_window, iact_spad_reads=F * cps * S,
                      weight_spad_reads=n, iact_addr_reads=np.zeros(T, np.int64),
                      weight_addr_reads=np.zeros(T, np.int64), psum_spad_reads=n, psum_spad_writes=n)
    else:
        bad_w = np.nonzero(wwords > capacity.weight_data)[0]
        bad_i = np.nonzero(maxwin > capacity.iact_data)[0]
        if bad_w.size:
            t = bad_w[0]
            raise ValueError(f"task (cg, g, r, e)={tuple(int(v) for v in tasks[t])}: {int(wwords[t])} "
                             f"weight CSC words > weight spad {capacity.weight_data} "
                             f"(m_per_pe={mp}, c_per_pe={cp}); pick a smaller assignment")
        if bad_i.size:
            t = bad_i[0]
            raise ValueError(f"task (cg, g, r, e)={tuple(int(v) for v in tasks[t])}: a window holds "
                             f"{int(maxwin[t])} iact CSC words > iact spad {capacity.iact_data} "
                             f"(c_per_pe={cp}, S={S}); pick a smaller c_per_pe")
    out = np.zeros((ng * mp, E, F), dt)
    np.add.at(out, (mi, e[:, None]), np.asarray(psums).astype(dt))
    out = out[:M]
    task_cycles = np.asarray(counts["cycles"], np.int64)
    totals = {k: int(np.sum(counts[k])) for k in SPARSE_PE_KEYS}
    num_passes = cdiv(T, num_pes)
    pe_cycles = np.zeros(num_passes * num_pes, np.int64)
    pe_cycles[:T] = task_cycles
    pe_cycles = pe_cycles.reshape(num_passes, num_pes)
    pass_cycles = pe_cycles.max(axis=1)
    return SparseConvResult(output=out[None] if batched else out, cycles=int(pass_cycles.sum()),
                            pass_cycles=pass_cycles, pe_cycles=pe_cycles, task_cycles=task_cycles,
                            tasks=tasks, counts=totals, m_per_pe=mp, c_per_pe=cp, num_pes=int(num_pes))


# --------------------------------------------------------------------------------------------
# Analytical expectation
# --------------------------------------------------------------------------------------------
def _row_geometry(filter_width, in_width, stride, pad):
    S, W, U, P = int(filter_width), int(in_width), int(stride), int(pad)
    Wp = W + 2 * P
    F = (Wp - S) // U + 1
    if F < 1:
        raise ValueError(f"empty output row: in_width={W} pad={P} S={S} stride={U}")
    real = np.zeros(Wp)
    real[P:P + W] = 1.0
    n_w = np.zeros(Wp)
    D = np.zeros(S)
    for f in range(F):
        for s in range(S):
            n_w[f * U + s] += 1
            D[s] += real[f * U + s]
    return real, n_w, D


@partial(jax.jit, static_argnames=("num_channels", "num_filters", "filter_width", "in_width",
                                   "stride", "pad", "macs_per_cycle", "iact_overhead_cycles",
                                   "count_bits"))
def expected_pe_cycles(num_channels: int, num_filters: int, iact_density, weight_density,
                       filter_width: int = 1, in_width: int = 1, stride: int = 1, pad: int = 0,
                       macs_per_cycle: int = 2, iact_overhead_cycles: int = 0, count_bits: int = 4):
    """Mean and variance of one PE task's cycles for i.i.d. zeros (formulas: module docstring).

    The defaults (filter_width = in_width = 1) give the matvec: num_channels inputs, num_filters
    outputs, E[cycles] = C · d_i · E[ceil(W/macs_per_cycle) + overhead], W ~ stored words of a
    num_filters-row column (Binomial(num_filters, d_w) when num_filters <= 2**count_bits).
    A row task: num_channels channels of an in_width-wide ifmap row (zero padding `pad` each side),
    filter_width taps, `stride`. Densities are traced scalars (jit/vmap/grad). Returns
    {"mean", "var", "std"} (float64).
    """
    C, M = int(num_channels), int(num_filters)
    real, n_w, D = _row_geometry(filter_width, in_width, stride, pad)
    di = jnp.asarray(iact_density, _FLOAT)
    pmf = column_words_pmf(M, weight_density, count_bits=count_bits)
    k = jnp.asarray(cdiv(np.arange(M + 1), macs_per_cycle) + iact_overhead_cycles, _FLOAT)
    mu = jnp.sum(pmf * k)
    var_k = jnp.maximum(jnp.sum(pmf * k * k) - mu * mu, 0.0)
    dw = di * jnp.asarray(real)
    n = jnp.asarray(n_w)
    mean = C * mu * jnp.sum(dw * n)
    var = C * jnp.sum(dw * (1.0 - dw) * (n * var_k + n * n * mu * mu)) \
        + C * var_k * di * di * jnp.sum(jnp.asarray(D) ** 2)
    return {"mean": mean, "var": var, "std": jnp.sqrt(var)}


@partial(jax.jit, static_argnames=("grid",))
def expected_pass_max(means, stds, grid: int = 2049):
    """E[max_i T_i] for independent normal T_i ~ N(means[i], stds[i]**2), over the last axis.

    = ∫_0^hi (1 - Π_i Φ((x - μ_i) / σ_i)) dx (trapezoid on `grid` points, hi = max(μ + 9σ)); a σ of 0
    is a point mass. The T_i are cycles (>= 0): the normal mass below 0 is ignored. Leading axes
    broadcast (one pass per row). An upper estimate of a pass's expected slowest PE when the PEs are
    positively correlated; max_i μ_i is the matching lower bound (module docstring).
    """
    mu = jnp.asarray(means, _FLOAT)
    sd = jnp.asarray(stds, _FLOAT)
    hi = jnp.max(mu + 9.0 * sd, axis=-1, keepdims=True) + 1.0           # [..., 1]
    t = jnp.linspace(0.0, 1.0, grid)
    x = hi * t                                                          # [..., G]
    z = (x[..., None, :] - mu[..., :, None]) / jnp.where(sd > 0, sd, 1.0)[..., :, None]
    cdf = jnp.where(sd[..., :, None] > 0, jax.scipy.special.ndtr(z),
                    (x[..., None, :] >= mu[..., :, None]).astype(_FLOAT))
    surv = 1.0 - jnp.prod(cdf, axis=-2)                                 # [..., G]
    dx = hi[..., 0] / (grid - 1)
    return dx * (jnp.sum(surv, axis=-1) - 0.5 * (surv[..., 0] + surv[..., -1]))


def expected_sparse_conv_cycles(in_shape, weight_shape, iact_density, weight_density,
                                stride: int = 1, pad: int = 0, num_pes: int = 12,
                                m_per_pe: int | None = None, c_per_pe: int | None = None,
                                capacity: PECapacity = PECapacity(), macs_per_cycle: int = 2,
                                iact_overhead_cycles: int = 0, count_bits: int = 4) -> dict:
    """Expected cycles of `simulate_sparse_conv` (same schedule) for i.i.d. zeros.

    in_shape (C, H, W), weight_shape (M, C, R, S). Returns a dict of float64 arrays:
    task_mean / task_std [num_tasks] (exact), total_mean (Σ task means, exact), lower
    (Σ_pass max_i E[T_i]: a lower bound of E[cycles]), upper (Σ_pass `expected_pass_max`: the
    independent-normal estimate, an upper estimate), balanced (total_mean / num_pes). The densities
    are traced (jit/vmap-able through the jnp ops; the schedule is static).
    """
    C, H, W = (int(v) for v in in_shape)
    M, C2, R, S = (int(v) for v in weight_shape)
    if C2 != C:
        raise ValueError(f"weights have {C2} channels, ifmap {C}")
    U, P, Hp, Wp, E, F = _conv_geometry(C, H, W, R, S, stride, pad)
    mp, cp = _resolve_assignment(C, M, S, m_per_pe, c_per_pe, capacity, False)
    tasks = _task_list(C, M, R, E, mp, cp)
    T = tasks.shape[0]
    cps = np.minimum(C - tasks[:, 0] * cp, cp)
    mps = np.minimum(M - tasks[:, 1] * mp, mp)
    row = tasks[:, 3] * U + tasks[:, 2]
    real_row = (row >= P) & (row < P + H)
    classes = sorted(set(zip(cps.tolist(), mps.tolist())))
    means, stds = [], []
    for cpt, mpt in classes:
        st = expected_pe_cycles(cpt, mpt, iact_density, weight_density, filter_width=S, in_width=W,
                                stride=U, pad=P, macs_per_cycle=macs_per_cycle,
                                iact_overhead_cycles=iact_overhead_cycles, count_bits=count_bits)
        means.append(st["mean"])
        stds.append(st["std"])
    cls_idx = np.array([classes.index(cm) for cm in zip(cps.tolist(), mps.tolist())])
    mask = jnp.asarray(real_row, _FLOAT)
    task_mean = jnp.stack(means)[cls_idx] * mask
    task_std = jnp.stack(stds)[cls_idx] * mask
    num_passes = cdiv(T, num_pes)
    padn = num_passes * num_pes - T
    pm = jnp.concatenate([task_mean, jnp.zeros(padn, _FLOAT)]).reshape(num_passes, num_pes)
    ps = jnp.concatenate([task_std, jnp.zeros(padn, _FLOAT)]).reshape(num_passes, num_pes)
    total = jnp.sum(task_mean)
    return {"task_mean": task_mean, "task_std": task_std, "total_mean": total,
            "lower": jnp.sum(jnp.max(pm, axis=1)), "upper": jnp.sum(expected_pass_max(pm, ps)),
            "balanced": total / num_pes}
