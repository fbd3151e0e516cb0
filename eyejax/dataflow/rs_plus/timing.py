"""RS+ sparse compute time: the expected cycles of the busiest PE of a pass, summed exactly over the
pass classes (the rs_plus package docstring, "Sparse compute cycles")."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from eyejax.dataflow.rs_plus.space import mapping_values
from eyejax.dataflow.tiling import cdiv, tile_classes


def blom_kappa(A):
    """Blom's approximation of the expected maximum of A i.i.d. standard normals (0 for A = 1)."""
    A = jnp.maximum(A, 1.0)
    return jax.scipy.special.ndtri((A - 0.375) / (A + 0.25))


def k_moments(pe, d_w, mpp):
    """Mean and variance of ceil(W / mpp), W ~ stored words of a pe-row weight column."""
    ew = pe * d_w
    p_odd = 0.5 * (1.0 - jnp.power(1.0 - 2.0 * d_w, pe))
    p_any = 1.0 - jnp.power(1.0 - d_w, pe)
    approx = ew / mpp + (mpp - 1) / (2 * mpp) * p_any
    mu = jnp.where(mpp == 1, ew, jnp.where(mpp == 2, 0.5 * (ew + p_odd), approx))
    mu = jnp.where(d_w >= 1, cdiv(pe, mpp), mu)
    var = jnp.where(d_w >= 1, 0.0, pe * d_w * (1.0 - d_w) / (mpp * mpp))
    return mu, var


def pass_time(nset, qe, pe, F, S, U, d, d_w, mpp, kappa):
    """Expected cycles of the busiest of the pass's PEs: mean + kappa · standard deviation of one
    PE's time (n_set images, qe channels, pe filters; the rs_plus package docstring)."""
    mu, var_k = k_moments(pe, d_w, mpp)
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
    h, e, r, t, g, b, p, q, n, m, o, oc = mapping_values(mp, dtype)
    F = F / oc                              # a column strip set's columns (oc divides F)
    mpp = jnp.asarray(arch.macs_per_pe).astype(dtype)
    kappa = blom_kappa(jnp.asarray(active).astype(dtype))
    d, d_w = fm["d_mac"], fm["d_w"]
    zv, zc = tile_classes(N, n * b)
    yv, yc = tile_classes(Cg, q * r)
    xv, xc = tile_classes(Mg, p * t)
    zv, zc = zv.reshape(2, 1, 1), zc.reshape(2, 1, 1)
    yv, yc = yv.reshape(1, 2, 1), yc.reshape(1, 2, 1)
    pt = pass_time(jnp.minimum(n, zv), jnp.minimum(q, yv), jnp.minimum(p, xv), F, S, U, d, d_w,
                   mpp, kappa)                                         # [2, 2, 2] pass classes
    inner = jnp.sum(zc * yc * xc * pt)
    return cdiv(G, g) * cdiv(E, e * o) * cdiv(R, h) * inner
