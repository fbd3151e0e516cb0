"""Compressed sparse column (CSC) coding of Eyeriss v2 (JETCAS19; shared/reference/eyeriss.md §3).

Eyeriss v2 keeps weights and iacts CSC-compressed from DRAM down to the PE scratchpads. A matrix is
stored column by column in three vectors (seed 000's example):

    data vector:    {a, b, c, d, e, f, g, h, i, j, k, l}
    count vector:   {1, 0, 0, 0, 1, 2, 3, 1, 1, 0, 0, 0}
    address vector: {0, 2, 5, 6, 6, 7, 9, 9, 12}

* ``data``: the stored values, column after column, top to bottom;
* ``count``: for each stored value, the number of zeros before it within its column since the
  previous stored entry of that column (or since the top of the column);
* ``address``: ``num_cols + 1`` entries; ``address[j]`` is the index in ``data`` of column j's first
  stored entry and ``address[num_cols]`` the total number of stored entries, so column j occupies
  ``data[address[j]:address[j+1]]`` and an empty column repeats an address.

A data and a count form one 12-b CSC word (4-b count + 8-b data) in the hardware.

Count overflow (the exact rule)
-------------------------------
The count field has ``count_bits`` bits (4 on v2), so it holds at most ``K = 2**count_bits - 1``
(15) zeros. Within a column, a stored value preceded by a run of L zeros (counted from the previous
non-zero of the column, or from the top of the column) is stored as

    floor(L / (K + 1)) padding entries (data 0, count K), then the value with count L mod (K + 1).

Equivalently, scanning the column top to bottom with a counter c (reset to 0 at the top and after
every stored entry): a non-zero stores (c, value); a zero with c < K increments c; a zero met with
c == K (the 16th consecutive unstored zero) is itself stored as a padding entry (data 0, count K),
provided a non-zero follows it later in the same column. Trailing zeros of a column (no non-zero
below them) are never stored: the column's end is given by the address vector and the known number
of rows, so they need no padding. A padding entry is a real stored word: the data of each stored
entry sits ``count + 1`` rows below the previous one (so decoding is ``row = Σ (count + 1) - 1``
within the column), and **the address vector counts stored words, padding zeros included**
(it must, to index the data vector). ``nnz`` below is that number of stored words (non-zeros plus
padding zeros), i.e. ``address[-1]``.

Capacity: every stored entry occupies a distinct matrix position (a non-zero its own row, a padding
entry the zero row at which it is emitted), so a column never stores more than ``num_rows`` words
and a matrix never more than ``matrix.size``. The fixed-capacity arrays therefore have exactly
``matrix.size`` entries: the worst case including overflow entries (there is no configuration needing
more). Entries at index >= ``nnz`` are zero.

Expected words for i.i.d. zeros (`expected_csc_words`)
------------------------------------------------------
Let each value be non-zero independently with probability d, q = 1 - d, P = K + 1 (16), and a column
have R rows. The non-zeros contribute R·d words. A non-zero at row j (0-based) is preceded by a zero
run L_j truncated by the top of the column: P(L_j >= t) = q**t for t <= j and 0 for t > j. It brings
floor(L_j / P) padding words, and E[floor(L/P)] = Σ_{m>=1} P(L >= P·m) = Σ_{m=1}^{floor(j/P)} q**(P·m).
Whether row j is non-zero is independent of the run above it, so per column

    E[pads] = d · Σ_{j<R} Σ_{m=1}^{floor(j/P)} q**(P·m) = d · Σ_{m=1}^{floor((R-1)/P)} (R - P·m) · q**(P·m),

    E[data words] = num_cols · (R·d + E[pads]),    address words = num_cols + 1 (exact).

`column_words_pmf` gives the whole distribution of one column's stored words (a dynamic program over
the rows), used for cycle expectations; its mean equals the formula above.
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = [
    "CSC",
    "csc_encode",
    "csc_decode",
    "csc_coords",
    "csc_words",
    "csc_storage_bits",
    "csc_default_addr_bits",
    "expected_csc_words",
    "expected_csc_storage_bits",
    "column_words_pmf",
]

_INT = jnp.result_type(int)  # int64 under eyejax's x64 policy
_FLOAT = jnp.result_type(float)


@struct.dataclass
class CSC:
    """A CSC-coded matrix with fixed-capacity arrays (capacity = matrix.size, see module docstring).

    data:    [capacity] stored values (matrix dtype); valid in [:nnz], zero beyond.
    count:   [capacity] int32 zeros before each stored value within its column (<= 2**count_bits-1).
    address: [num_cols + 1] int32 start of each column in `data`; address[-1] == nnz.
    nnz:     int scalar, number of stored words: non-zeros plus padding zeros.

    A pytree: jit/vmap treat every field as an array (a vmapped encode gives batched fields).
    """

    data: jax.Array
    count: jax.Array
    address: jax.Array
    nnz: jax.Array

    @property
    def capacity(self) -> int:
        return self.data.shape[-1]

    @property
    def num_cols(self) -> int:
        return self.address.shape[-1] - 1


def _max_count(count_bits: int) -> int:
    if count_bits < 1:
        raise ValueError(f"count_bits must be >= 1, got {count_bits}")
    return (1 << count_bits) - 1


def _stored_mask(xt: jax.Array, count_bits: int):
    """For xt = matrix.T ([cols, rows]): (stored mask, count of each position if stored)."""
    K = _max_count(count_bits)
    P = K + 1
    R = xt.shape[1]
    i = jnp.arange(R)[None, :]
    nz = xt != 0
    # last non-zero at or before i (-1 if none); for a zero at i its offset in its zero run
    last_nz = jax.lax.cummax(jnp.where(nz, i, -1), axis=1)
    offset = i - last_nz - 1
    nz_after = jnp.sum(nz, axis=1, keepdims=True) - jnp.cumsum(nz, axis=1)  # non-zeros strictly below
    pad = (~nz) & (offset % P == K) & (nz_after > 0)
    stored = nz | pad
    # previous stored position strictly above i in the column (-1 if none)
    last_st = jax.lax.cummax(jnp.where(stored, i, -1), axis=1)
    prev_st = jnp.concatenate([jnp.full((xt.shape[0], 1), -1, last_st.dtype), last_st[:, :-1]], axis=1)
    count = (i - prev_st - 1).astype(jnp.int32)
    return stored, count


@partial(jax.jit, static_argnames=("count_bits",))
def csc_encode(matrix: jax.Array, count_bits: int = 4) -> CSC:
    """CSC-encode a 2-D `matrix` [num_rows, num_cols] column by column (see the module docstring).

    Pure and jit/vmap-able (static shapes: capacity = matrix.size). `data` keeps the matrix dtype
    (the hardware stores 8-b data; not checked here). Runs of >= 2**count_bits zeros before a value
    are padded with explicit (data 0, count 2**count_bits - 1) entries that the address counts.
    """
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2:
        raise ValueError(f"csc_encode expects a 2-D matrix, got shape {matrix.shape}")
    R, C = matrix.shape
    cap = R * C
    if cap == 0:
        return CSC(data=jnp.zeros((0,), matrix.dtype), count=jnp.zeros((0,), jnp.int32),
                   address=jnp.zeros((C + 1,), jnp.int32), nnz=jnp.zeros((), _INT))
    xt = matrix.T  # [cols, rows]: column-major scan order
    stored, count = _stored_mask(xt, count_bits)
    per_col = jnp.sum(stored, axis=1, dtype=jnp.int32)
    address = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(per_col, dtype=jnp.int32)])
    slot = address[:-1, None] + jnp.cumsum(stored, axis=1, dtype=jnp.int32) - 1
    target = jnp.where(stored, slot, cap).ravel()  # cap is out of bounds: dropped
    data = jnp.zeros((cap,), matrix.dtype).at[target].set(xt.ravel(), mode="drop")
    cnt = jnp.zeros((cap,), jnp.int32).at[target].set(count.ravel(), mode="drop")
    return CSC(data=data, count=cnt, address=address, nnz=address[-1].astype(_INT))


@jax.jit
def csc_coords(csc: CSC) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(row, col, valid) of every stored entry ([capacity] each; int32, int32, bool).

    row = Σ (count + 1) - 1 over the column's entries up to this one; col from the address vector
    (the column j with address[j] <= k < address[j+1]); valid = k < nnz. Invalid entries get row and
    col 0.
    """
    cap = csc.data.shape[0]
    C = csc.address.shape[0] - 1
    if cap == 0 or C == 0:
        z = jnp.zeros((cap,), jnp.int32)
        return z, z, jnp.zeros((cap,), bool)
    k = jnp.arange(cap, dtype=jnp.int32)
    nnz = csc.address[-1]
    valid = k < nnz
    col = jnp.clip(jnp.searchsorted(csc.address, k, side="right", method="scan_unrolled").astype(jnp.int32) - 1, 0, C - 1)
    g = jnp.cumsum(csc.count.astype(jnp.int32) + 1, dtype=jnp.int32)
    ex = jnp.concatenate([jnp.zeros((1,), jnp.int32), g])
    row = g - 1 - ex[jnp.clip(csc.address[col], 0, cap)]
    return jnp.where(valid, row, 0), jnp.where(valid, col, 0), valid


@partial(jax.jit, static_argnames=("shape",))
def csc_decode(csc: CSC, shape: tuple[int, int]) -> jax.Array:
    """Invert `csc_encode`: the dense matrix of static `shape` (num_rows, num_cols), dtype of data.

    Entries at index >= nnz are ignored; padding entries write their zero at their own row.
    """
    R, C = (int(s) for s in shape)
    if csc.address.shape[0] != C + 1:
        raise ValueError(f"address has {csc.address.shape[0]} entries, shape {shape} needs {C + 1}")
    if R * C == 0 or csc.data.shape[0] == 0:
        return jnp.zeros((R, C), csc.data.dtype)
    row, col, valid = csc_coords(csc)
    target = jnp.where(valid & (row < R), col * R + row, R * C)
    flat = jnp.zeros((R * C,), csc.data.dtype).at[target].set(csc.data, mode="drop")
    return flat.reshape(C, R).T


@partial(jax.jit, static_argnames=("count_bits",))
def csc_words(matrix: jax.Array, count_bits: int = 4) -> tuple[jax.Array, jax.Array]:
    """(data words, address words) of the CSC coding of `matrix` (int64 scalars).

    data words = stored 12-b (count + data) words, padding zeros included (= CSC.nnz);
    address words = num_cols + 1.
    """
    matrix = jnp.asarray(matrix)
    R, C = matrix.shape
    if R * C == 0:
        return jnp.zeros((), _INT), jnp.asarray(C + 1, _INT)
    stored, _ = _stored_mask(matrix.T, count_bits)
    return jnp.sum(stored, dtype=_INT), jnp.asarray(C + 1, _INT)


def csc_default_addr_bits(num_rows: int, num_cols: int) -> int:
    """Address width that can hold any address of a [num_rows, num_cols] matrix: ceil(log2(size + 1))."""
    return max(1, math.ceil(math.log2(num_rows * num_cols + 1)))


@partial(jax.jit, static_argnames=("data_bits", "count_bits", "addr_bits"))
def csc_storage_bits(matrix: jax.Array, data_bits: int = 8, count_bits: int = 4,
                     addr_bits: int | None = None) -> jax.Array:
    """Bits of the CSC coding: data_words·(data_bits + count_bits) + address_words·addr_bits.

    addr_bits defaults to `csc_default_addr_bits` (ceil(log2(matrix.size + 1))); pass the scratchpad
    width (v2: 7 for the weight address spad, 4 for the iact one) to size a PE's storage.
    """
    matrix = jnp.asarray(matrix)
    if addr_bits is None:
        addr_bits = csc_default_addr_bits(*matrix.shape)
    dw, aw = csc_words(matrix, count_bits=count_bits)
    return dw * (data_bits + count_bits) + aw * addr_bits


@partial(jax.jit, static_argnames=("num_rows", "num_cols", "count_bits"))
def expected_csc_words(num_rows: int, num_cols: int, density, count_bits: int = 4):
    """Expected (data words, address words) for i.i.d. values non-zero with probability `density`.

    data words = num_cols · (R·d + d · Σ_{m=1}^{floor((R-1)/P)} (R - P·m)·(1-d)**(P·m)), P = 2**count_bits
    (derivation in the module docstring); address words = num_cols + 1. `density` may be an array
    (broadcasts; smooth and differentiable in it). Float64.
    """
    d = jnp.asarray(density, _FLOAT)
    q = 1.0 - d
    R = int(num_rows)
    P = _max_count(count_bits) + 1
    pads = jnp.zeros_like(d)
    for m in range(1, (R - 1) // P + 1 if R > 0 else 1):
        pads = pads + (R - P * m) * q ** (P * m)
    per_col = R * d + d * pads
    return num_cols * per_col, jnp.asarray(num_cols + 1, _FLOAT)


@partial(jax.jit, static_argnames=("num_rows", "num_cols", "data_bits", "count_bits", "addr_bits"))
def expected_csc_storage_bits(num_rows: int, num_cols: int, density, data_bits: int = 8,
                              count_bits: int = 4, addr_bits: int | None = None):
    """Expected `csc_storage_bits` for i.i.d. zeros (same defaults)."""
    if addr_bits is None:
        addr_bits = csc_default_addr_bits(num_rows, num_cols)
    dw, aw = expected_csc_words(num_rows, num_cols, density, count_bits=count_bits)
    return dw * (data_bits + count_bits) + aw * addr_bits


@partial(jax.jit, static_argnames=("num_rows", "count_bits"))
def column_words_pmf(num_rows: int, density, count_bits: int = 4) -> jax.Array:
    """Distribution of one column's stored words (non-zeros + padding zeros) for i.i.d. zeros.

    Returns p[w] = P(stored words == w), w = 0..num_rows (float64 [num_rows + 1]). Dynamic program over
    the rows with state (L = zeros since the last non-zero, w = words so far): a zero moves L -> L + 1,
    a non-zero adds 1 + floor(L / 2**count_bits) words and resets L. For num_rows <= 2**count_bits no
    padding can occur and this is Binomial(num_rows, density). O(num_rows**3): meant for PE-sized
    columns (tens of rows). `density` must be a scalar (vmap for several).
    """
    R = int(num_rows)
    P = _max_count(count_bits) + 1
    d = jnp.asarray(density, _FLOAT)
    q = 1.0 - d
    # state p[L, w], L, w in 0..R
    p0 = jnp.zeros((R + 1, R + 1), _FLOAT).at[0, 0].set(1.0)
    L = np.arange(R + 1)
    shift = 1 + L // P  # words added by a non-zero after a run of L zeros
    w = np.arange(R + 1)
    src = w[None, :] - shift[:, None]  # [L, w']: w' = w + shift
    ok = jnp.asarray(src >= 0)
    src_c = jnp.asarray(np.clip(src, 0, R))

    def step(_, p):
        zero = jnp.concatenate([jnp.zeros((1, R + 1), _FLOAT), p[:-1]], axis=0) * q
        gathered = jnp.take_along_axis(p, src_c, axis=1)
        nzrow = jnp.sum(jnp.where(ok, gathered, 0.0), axis=0) * d
        return zero.at[0].add(nzrow)

    p = jax.lax.fori_loop(0, R, step, p0)
    return jnp.sum(p, axis=0)
