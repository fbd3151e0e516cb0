"""Zero gating of MACs on zero ifmap values (Eyeriss v1; shared/reference/eyeriss.md §2).

A zero ifmap value, flagged in the PE's zero buffer, skips its filter-scratchpad read and its MAC (power
saving, no speed-up). The fraction of a convolution's MACs that still run is the fraction whose ifmap
operand is non-zero; padding values are zeros and are therefore gated too.

For an NCHW ifmap, an R x S filter, stride (U_h, U_w) and padding (P_h, P_w), each output position
(n, e, f) of any filter reads the C*R*S window values; the number of its non-zero operands is the
convolution of the non-zero indicator with an all-ones 1 x C x R x S kernel. The result is the same for
all M filters, so M cancels in the fraction:

    fraction = sum_{n,e,f} (1[x != 0] * ones_{C,R,S})[n, e, f] / (N * C * E * F * R * S),
    E = (H + 2 P_h - R) // U_h + 1,   F = (W + 2 P_w - S) // U_w + 1.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp

__all__ = ["nonzero_mac_count", "nonzero_mac_fraction", "conv_output_size"]


def _pair(v) -> tuple[int, int]:
    if isinstance(v, Sequence):
        if len(v) != 2:
            raise ValueError(f"expected an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv_output_size(H: int, W: int, R: int, S: int, stride=1, pad=0) -> tuple[int, int]:
    """(E, F) of a convolution with the given (symmetric) padding and stride (static ints)."""
    uh, uw = _pair(stride)
    ph, pw = _pair(pad)
    E = (H + 2 * ph - R) // uh + 1
    F = (W + 2 * pw - S) // uw + 1
    if E <= 0 or F <= 0:
        raise ValueError(f"empty output: H={H} W={W} R={R} S={S} stride={stride} pad={pad}")
    return E, F


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _nonzero_count(x: jax.Array, R: int, S: int, stride: tuple[int, int], pad: tuple[int, int]):
    C = x.shape[1]
    ftype = jnp.result_type(float)
    ind = (x != 0).astype(ftype)
    kernel = jnp.ones((1, C, R, S), ftype)
    out = jax.lax.conv_general_dilated(
        ind,
        kernel,
        window_strides=stride,
        padding=((pad[0], pad[0]), (pad[1], pad[1])),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=jax.lax.Precision.HIGHEST,
    )
    return jnp.sum(out)


def nonzero_mac_count(ifmap: jax.Array, R: int, S: int, stride=1, pad=0) -> jax.Array:
    """Number of (n, c, e, f, r, s) MAC operands of one filter that are non-zero (float, exact < 2**53).

    ifmap: N x C x H x W. stride and pad: an int or an (vertical, horizontal) pair; padding is symmetric
    zero padding. Multiply by M for the whole layer's non-gated MACs. R, S, stride, pad are static.
    """
    x = jnp.asarray(ifmap)
    if x.ndim != 4:
        raise ValueError(f"ifmap must be NCHW, got shape {x.shape}")
    _, _, H, W = x.shape
    conv_output_size(H, W, R, S, stride, pad)  # validates
    return _nonzero_count(x, int(R), int(S), _pair(stride), _pair(pad))


def nonzero_mac_fraction(ifmap: jax.Array, R: int, S: int, stride=1, pad=0) -> jax.Array:
    """Exact fraction of a convolution's MACs whose ifmap operand is non-zero (padding counts as zero).

    = nonzero_mac_count / (N*C*E*F*R*S); 1 - fraction is the share of MACs (and filter-spad reads)
    that zero gating skips. Pure and jit-able with R, S, stride, pad static.
    """
    x = jnp.asarray(ifmap)
    N, C, H, W = x.shape
    E, F = conv_output_size(H, W, R, S, stride, pad)
    return nonzero_mac_count(x, R, S, stride, pad) / (N * C * E * F * R * S)
