"""Run-length compression (RLC) of feature maps, as Eyeriss v1 applies it on the DRAM link.

Eyeriss v1 (JSSC17; shared/reference/eyeriss.md §2) compresses fmaps to and from DRAM as
(run, level) pairs: a 5-bit run (0..31 zeros) followed by a 16-bit level; three 21-bit pairs are
packed into one 64-bit word (the spare bit is a terminator flag). RLC is not applied to filters nor to
the first layer's input image; that policy belongs to the caller, these functions only code a stream.

Pair semantics (exact, shared by `rlc_encode` and `rlc_decode`)
---------------------------------------------------------------
The flattened input is scanned in order with a run counter c (initially 0):

* a non-zero value v emits the pair (c, v) and resets c to 0;
* a zero while c < 31 increments c (it is absorbed into the next pair's run);
* a zero while c == 31 (the 32nd consecutive zero) emits (31, 0): the level is that zero itself, and
  c resets to 0. Run overflow therefore never needs a 6th bit, and every pair consumes
  run + 1 <= 32 input values;
* trailing zeros: if the stream ends with c > 0 pending zeros, one final pair (c - 1, 0) is emitted, i.e.
  the last zero of the stream becomes a level-0 pair. Hence every pair, the last one included, stands for
  exactly run + 1 values, and sum(run + 1) == x.size: the decoder reproduces the exact length without a
  separate length field. (A stream ending in exactly a multiple of 32 zeros after the last non-zero is
  already closed by a (31, 0) pair and gets no extra pair.)

So a level of 0 appears only in the (31, 0) overflow pairs and possibly in the last pair.

The encoder is vectorized (no sequential scan): value i closes a pair iff it is non-zero, or it is a zero
whose offset inside its block of consecutive zeros is 31 mod 32, or it is the last value. Pair k then sits
at the k-th closing position e_k, and its run is e_k - e_{k-1} - 1. Outputs have the static length x.size
(the worst case: one pair per value) and are zero-padded beyond `num_pairs`.

Compressed size: ceil(num_pairs / 3) 64-bit words = ceil(num_pairs / 3) * 4 sixteen-bit-word equivalents.

Expected ratio for i.i.d. sparsity
----------------------------------
Let each value be non-zero independently with probability d (density), q = 1 - d. After any pair the
encoder is in its initial state (c = 0), so pair lengths L are i.i.d. (a renewal process): L = min(G, 32)
with G ~ Geometric(d) the index of the first non-zero (P(G > k) = q**k). Then

    E[L] = sum_{k=0}^{31} P(L > k) = sum_{k=0}^{31} q**k = (1 - q**32) / d,

and by the renewal theorem the pairs per value tend to 1 / E[L] = d / (1 - (1 - d)**32). The sum form
is a polynomial in q that is >= 1 on [0, 1], so it is evaluated by Horner's rule: finite with finite
gradients everywhere, equal to 32 at d = 0 (pairs per value 1/32: all-zero data codes 32 zeros per
pair) and to 1 at d = 1 (one pair per value). The expected ratio is pairs_per_value * 4 / 3
(compressed 16-bit words per original 16-bit value, ignoring the final word's rounding); it exceeds 1
for dense data (max 4/3 at d = 1, since a 21-bit pair is stored per 16-bit value).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

MAX_RUN = 31  # 5-bit run field
PAIRS_PER_WORD = 3  # three 21-bit pairs in a 64-bit word
WORDS16_PER_WORD = 4  # a 64-bit word is four 16-bit words

__all__ = [
    "MAX_RUN",
    "PAIRS_PER_WORD",
    "WORDS16_PER_WORD",
    "rlc_encode",
    "rlc_decode",
    "rlc_num_pairs",
    "rlc_words",
    "rlc_ratio",
    "expected_pairs_per_value",
    "expected_rlc_ratio",
]


_INT = jnp.result_type(int)  # int64 under eyejax's x64 policy (counts are exact int64)


def _pair_ends(x: jax.Array) -> jax.Array:
    """Boolean mask of the positions that close a pair (see module docstring)."""
    n = x.shape[0]
    idx = jnp.arange(n)
    nz = x != 0
    # index of the last non-zero at or before i (-1 if none); for a zero at i its offset in the zero
    # block is i - last_nz - 1.
    last_nz = jax.lax.cummax(jnp.where(nz, idx, -1), axis=0)
    zero_offset = idx - last_nz - 1
    overflow = (~nz) & (zero_offset % (MAX_RUN + 1) == MAX_RUN)
    return nz | overflow | (idx == n - 1)


@jax.jit
def rlc_num_pairs(x: jax.Array) -> jax.Array:
    """Number of (run, level) pairs `rlc_encode` emits for the flattened `x` (int scalar)."""
    x = jnp.ravel(jnp.asarray(x))
    if x.shape[0] == 0:
        return jnp.zeros((), _INT)
    return jnp.sum(_pair_ends(x), dtype=_INT)


@jax.jit
def rlc_encode(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Run-length encode the flattened `x` into (runs, levels, num_pairs).

    runs: int32[x.size], each in 0..31; levels: x.dtype[x.size]; both valid in [:num_pairs] and zero
    beyond. num_pairs: int scalar (int64 under x64). See the module docstring for the exact pair semantics (overflow
    pairs (31, 0); trailing zeros end with a level-0 pair). Pure, jit- and vmap-able (static shapes).
    Levels keep x's dtype; the hardware stores 16-bit levels, which this function does not check.
    """
    x = jnp.ravel(jnp.asarray(x))
    n = x.shape[0]
    if n == 0:
        return jnp.zeros((0,), jnp.int32), jnp.zeros((0,), x.dtype), jnp.zeros((), _INT)
    idx = jnp.arange(n)
    ends = _pair_ends(x)
    pair_idx = jnp.cumsum(ends, dtype=jnp.int32) - 1  # pair index of the pair closed at i
    # previous closing position strictly before i (-1 if none)
    last_end_incl = jax.lax.cummax(jnp.where(ends, idx, -1), axis=0)
    prev_end = jnp.concatenate([jnp.array([-1], last_end_incl.dtype), last_end_incl[:-1]])
    run = (idx - prev_end - 1).astype(jnp.int32)
    target = jnp.where(ends, pair_idx, n)  # n is out of bounds: dropped
    runs = jnp.zeros((n,), jnp.int32).at[target].set(run, mode="drop")
    levels = jnp.zeros((n,), x.dtype).at[target].set(x, mode="drop")
    num_pairs = jnp.sum(ends, dtype=_INT)
    return runs, levels, num_pairs


@partial(jax.jit, static_argnums=3)
def rlc_decode(runs: jax.Array, levels: jax.Array, num_pairs, size: int) -> jax.Array:
    """Invert `rlc_encode`: rebuild the flat stream of static length `size` (dtype of `levels`).

    Pair k's level lands at position sum_{j<=k}(runs[j] + 1) - 1; everything else is zero. Pairs at
    index >= num_pairs are ignored, so padded encoder outputs (or longer buffers) decode correctly.
    """
    runs = jnp.asarray(runs)
    levels = jnp.asarray(levels)
    if runs.shape[0] == 0:
        return jnp.zeros((size,), levels.dtype)
    pos = jnp.cumsum(runs.astype(jnp.int32) + 1) - 1
    valid = jnp.arange(runs.shape[0]) < num_pairs
    target = jnp.where(valid, pos, size)
    return jnp.zeros((size,), levels.dtype).at[target].set(levels, mode="drop")


@jax.jit
def rlc_words(x: jax.Array) -> jax.Array:
    """Compressed size of `x` in 16-bit-word equivalents: ceil(num_pairs / 3) * 4 (int64 scalar under x64)."""
    p = rlc_num_pairs(x)
    return ((p + PAIRS_PER_WORD - 1) // PAIRS_PER_WORD) * WORDS16_PER_WORD


@jax.jit
def rlc_ratio(x: jax.Array) -> jax.Array:
    """Compressed / uncompressed size, in 16-bit words: rlc_words(x) / x.size (> 1 for dense data).

    Returns 0.0 for an empty input.
    """
    x = jnp.asarray(x)
    return rlc_words(x).astype(jnp.result_type(float)) / max(x.size, 1)


@jax.jit
def expected_pairs_per_value(density) -> jax.Array:
    """Expected RLC pairs per input value for i.i.d. values non-zero with probability `density`.

    = d / (1 - (1 - d)**32) = 1 / sum_{k=0}^{31} (1 - d)**k (see the module docstring); 1/32 at d = 0 and
    1 at d = 1. Evaluated by Horner's rule on the sum, so it is smooth, NaN-free and differentiable on
    the whole of [0, 1], and broadcasts elementwise (vmap/grad friendly). `density` should lie in [0, 1].
    """
    d = jnp.asarray(density, dtype=jnp.result_type(float))
    q = 1.0 - d
    s = jnp.ones_like(q)
    for _ in range(MAX_RUN):  # s = 1 + q + ... + q**31
        s = 1.0 + q * s
    return 1.0 / s


@jax.jit
def expected_rlc_ratio(density) -> jax.Array:
    """Expected `rlc_ratio` for i.i.d. sparsity with non-zero probability `density`, as n -> inf.

    = expected_pairs_per_value(d) * 4 / 3: from 1/24 at d = 0 up to 4/3 at d = 1 (break-even with
    the uncompressed size at about d = 0.75).
    """
    return expected_pairs_per_value(density) * (WORDS16_PER_WORD / PAIRS_PER_WORD)
