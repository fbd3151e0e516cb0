"""Exact sums over tiled loops, written once for any numeric dtype.

A dimension of size D tiled by T has floor(D/T) full tiles and, when T does not divide D, one
remainder tile. A sum over tiles of f(tile size) is therefore `full * f(T) + f(rem)`; sums over
several independently tiled dimensions of a product of per-dimension factors factorize. This is
what lets the analytical model count a loop nest exactly without iterating it.
"""
from __future__ import annotations

import jax.numpy as jnp


def fdiv(a, b):
    """Floor division for integer or integer-valued float arrays.

    For floats, floor(a / b) is exact whenever a < 2**24 (float32) or 2**53 (float64): the quotient
    is correctly rounded and cannot round up to the next integer. It is much cheaper than
    jnp.floor_divide's remainder-corrected float path, which matters on the search's hot path.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if jnp.issubdtype(jnp.result_type(a, b), jnp.floating):
        return jnp.floor(a / b)
    return a // b


def cdiv(a, b):
    """Ceiling division for integer or integer-valued float arrays."""
    return -fdiv(-jnp.asarray(a), b)


def tile_sum(D, T, f):
    """Σ over the tiles of D by T of f(tile size); f must accept an array of sizes."""
    full = fdiv(D, T)
    rem = D - full * T
    has_rem = rem > 0
    safe_rem = jnp.where(has_rem, rem, T)  # f is never called on a zero-size tile
    return full * f(T) + jnp.where(has_rem, f(safe_rem), jnp.zeros_like(f(safe_rem)))


def clipped_cover(num_out, e, U, K, P, size):
    """Real (non-padding) elements covered by strips of `e` outputs along one axis.

    Output o reads padded positions [o*U, o*U + K). A strip of e_s outputs starting at output s*e
    reads their union: the contiguous range [s*e*U, s*e*U + (e_s-1)*U + K) when U < K, otherwise
    e_s disjoint windows (counted as strips of one output). Returns Σ over strips of the strip's
    positions inside the real range [P, P + size). Assumes P < K (validated per layer), so every
    window starts before P + size and ends after P.
    """
    contiguous = U < K
    e = jnp.where(contiguous, e, jnp.ones_like(e))
    ns = cdiv(num_out, e)
    step = e * U
    length_sum = tile_sum(num_out, e, lambda es: (es - 1) * U + K)
    # Top padding: strips starting before P lose P - start positions each.
    k = jnp.minimum(ns, cdiv(P, step))
    top = k * P - step * fdiv(k * (k - 1), 2)
    # Bottom padding: strip ends past P + size lose the excess.
    end_limit = P + size
    c0 = (e - 1) * U + K - end_limit          # excess of full strip 0; grows by `step` per strip
    s_min = jnp.where(c0 > 0, jnp.zeros_like(c0), fdiv(-c0, step) + 1)
    cnt = jnp.maximum(ns - 1 - s_min, 0)      # full strips (all but the last) with an excess
    bottom_full = cnt * c0 + step * fdiv(cnt * (2 * s_min + cnt - 1), 2)
    last_end = (num_out - 1) * U + K
    bottom_last = jnp.maximum(last_end - end_limit, 0)
    return length_sum - top - bottom_full - bottom_last


def tile_classes(D, T):
    """(sizes [2], counts [2]) of the full and the remainder tiles of D by T, stacked on a new
    leading axis; where T divides D the remainder class has count 0 and the safe size T."""
    full = fdiv(D, T)
    rem = D - full * T
    size = jnp.stack([T, jnp.where(rem > 0, rem, T)])
    cnt = jnp.stack([full, (rem > 0).astype(full.dtype)])
    return size, cnt
