"""Run-length compression (eyejax.sparse.rlc) and zero gating (eyejax.sparse.gating)."""
import math

import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
import jax
import jax.numpy as jnp

from eyejax.sparse import (
    expected_pairs_per_value,
    expected_rlc_ratio,
    nonzero_mac_count,
    nonzero_mac_fraction,
    rlc_decode,
    rlc_encode,
    rlc_num_pairs,
    rlc_ratio,
    rlc_words,
)

enc = jax.jit(rlc_encode)
dec = jax.jit(rlc_decode, static_argnums=3)
exp_ratio = jax.jit(expected_rlc_ratio)
exp_ppv = jax.jit(expected_pairs_per_value)


@jax.jit
def round_trip(x):
    """Everything `check` needs from one 1-D stream, in one compile per (size, dtype)."""
    runs, levels, npairs = rlc_encode(x)
    y = rlc_decode(runs, levels, npairs, x.size)
    return runs, levels, npairs, y, rlc_num_pairs(x), rlc_words(x), rlc_ratio(x)


def ref_encode(x):
    """Literal sequential state machine of the documented semantics."""
    pairs, c = [], 0
    for v in np.ravel(x).tolist():
        if v != 0:
            pairs.append((c, v))
            c = 0
        elif c == 31:
            pairs.append((31, 0))
            c = 0
        else:
            c += 1
    if c > 0:
        pairs.append((c - 1, 0))
    return pairs


def sparse_ints(rng, n, density, dtype=np.int32):
    x = rng.integers(-32768, 32768, size=n).astype(dtype)
    x[x == 0] = 1
    return np.where(rng.random(n) < density, x, 0).astype(dtype)


def check(X):
    """Encode/decode each row of X (B, n) and compare with the reference; return the rows' pair lists.

    Tests reuse a few sizes (1, 2, 31, 32, 33, 100, 257, 1000) to keep the number of compiles down."""
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None]
    n = X.shape[1]
    out = []
    for x in X:
        runs, levels, p, y, p2, words, ratio = map(np.asarray, round_trip(jnp.asarray(x)))
        p = int(p)
        ref = ref_encode(x)
        assert p == len(ref) == int(p2)
        got = [(int(r), int(v)) for r, v in zip(runs[:p], levels[:p])]
        assert got == [(r, int(v)) for r, v in ref]
        assert runs.shape == levels.shape == (n,) and levels.dtype == x.dtype
        assert np.all(runs[p:] == 0) and np.all(levels[p:] == 0)
        assert np.all((runs >= 0) & (runs <= 31))
        assert int(np.sum(runs[:p] + 1)) == n  # every pair stands for run + 1 values
        np.testing.assert_array_equal(y, x)
        assert int(words) == math.ceil(p / 3) * 4
        assert float(ratio) == pytest.approx(math.ceil(p / 3) * 4 / n, rel=1e-15)
        out.append(got)
    return out


DENSITIES = [0.0, 0.01, 0.05, 0.3, 0.7, 1.0]


@pytest.mark.parametrize("n", [1, 2, 31, 32, 33, 100, 257, 1000])
def test_round_trip_random(n):
    rng = np.random.default_rng(n)
    check(np.stack([sparse_ints(rng, n, d) for d in DENSITIES for _ in range(3)]))


def test_all_zero_and_dense():
    zero, dense = check(np.stack([np.zeros(100, np.int32), np.arange(1, 101, dtype=np.int32)]))
    assert zero == [(31, 0), (31, 0), (31, 0), (3, 0)]  # 32 + 32 + 32 + 4 values
    assert dense == [(0, v) for v in range(1, 101)]
    (z32,) = check(np.zeros((1, 32), np.int32))  # exactly one overflow pair, no trailing pair
    assert z32 == [(31, 0)]
    (z1,) = check(np.zeros((1, 1), np.int32))
    assert z1 == [(0, 0)]
    ratio = float(jax.jit(rlc_ratio)(jnp.arange(1, 50)))
    assert ratio == pytest.approx(math.ceil(49 / 3) * 4 / 49) and ratio > 1.0


LONG_N = 1000


@pytest.mark.parametrize("nzs", [[30, 31, 32, 33, 63], [64, 65, 95, 96, 200]])
def test_long_zero_runs(nzs):
    rows, expect = [], []
    for nz in nzs:
        head = [7] + [0] * nz + [-5] + [0] * nz + [9]
        fill = list(range(1, LONG_N - len(head) + 1))
        rows.append(np.array(head + fill, np.int32))
        # a block of nz zeros before a non-zero: nz // 32 overflow pairs, then run nz % 32 on the value
        k = nz // 32
        runs = [0] + [31] * k + [nz % 32] + [31] * k + [nz % 32]
        levels = [7] + [0] * k + [-5] + [0] * k + [9]
        expect.append(list(zip(runs, levels)) + [(0, v) for v in fill])
    assert check(np.stack(rows)) == expect


TRAIL_N = 257


def test_trailing_zeros():
    rows, expect = [], []
    for nz in [1, 2, 31, 32, 33, 63, 64, 65, 70]:
        k, rem = divmod(nz, 32)
        tail = [(31, 0)] * k + ([(rem - 1, 0)] if rem else [])  # last zero becomes a level-0 pair
        fill = list(range(1, TRAIL_N - 3 - nz + 1))
        rows.append(np.array(fill + [3, 0, 4] + [0] * nz, np.int32))
        expect.append([(0, v) for v in fill] + [(0, 3), (1, 4)] + tail)
        # leading and trailing zeros around a single value, padded with non-zeros in the middle
        fill2 = list(range(1, TRAIL_N - 1 - 2 * nz + 1))
        rows.append(np.array([0] * nz + [1] + fill2 + [0] * nz, np.int32))
        expect.append([(31, 0)] * k + [(rem, 1)] + [(0, v) for v in fill2] + tail)
    assert check(np.stack(rows)) == expect


def test_float_int16_and_nd_inputs():
    rng = np.random.default_rng(0)
    x = sparse_ints(rng, 100, 0.2).reshape(4, 5, 5)
    runs, levels, p = enc(jnp.asarray(x))  # N-d input is flattened in C order
    assert runs.shape == (100,)
    np.testing.assert_array_equal(np.asarray(dec(runs, levels, p, 100)), x.ravel())
    check(np.where(rng.random((3, 100)) < 0.2, rng.normal(size=(3, 100)), 0.0))  # float64
    check(sparse_ints(rng, 2 * 257, 0.1, np.int16).reshape(2, 257))
    runs, levels, npairs = rlc_encode(jnp.zeros((0,), jnp.int32))
    assert runs.shape == (0,) and int(npairs) == 0
    assert rlc_decode(runs, levels, npairs, 0).shape == (0,)


def test_jit_and_vmap():
    """vmapped (inside one jit) and unbatched jitted round trips agree row by row."""
    rng = np.random.default_rng(1)
    B, n = 8, 100
    X = np.stack([sparse_ints(rng, n, d) for d in np.linspace(0.0, 1.0, B)])
    runs, levels, npairs, Y, p2, words, ratios = jax.jit(jax.vmap(round_trip))(jnp.asarray(X))
    assert runs.shape == (B, n) and npairs.shape == words.shape == ratios.shape == (B,)
    np.testing.assert_array_equal(np.asarray(Y), X)
    for b in range(B):
        one = round_trip(jnp.asarray(X[b]))
        for batched, single in zip((runs, levels, npairs, Y, p2, words, ratios), one):
            np.testing.assert_array_equal(np.asarray(batched[b]), np.asarray(single))


def test_expected_ratio_closed_form_and_edges():
    d = np.array([1e-6, 0.01, 0.1, 0.5, 0.9, 0.999])
    closed = d / (1 - (1 - d) ** 32)
    np.testing.assert_allclose(np.asarray(exp_ppv(d)), closed, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(exp_ratio(d)), closed * 4 / 3, rtol=1e-9)
    assert float(exp_ppv(0.0)) == pytest.approx(1 / 32, rel=1e-15)
    assert float(exp_ppv(1.0)) == pytest.approx(1.0, rel=1e-15)
    assert float(exp_ratio(0.0)) == pytest.approx(1 / 24)
    assert float(exp_ratio(1.0)) == pytest.approx(4 / 3)
    grid = jnp.linspace(0.0, 1.0, 101)
    vals = jax.jit(jax.vmap(expected_rlc_ratio))(grid)
    grads = jax.jit(jax.vmap(jax.grad(expected_rlc_ratio)))(grid)
    assert bool(jnp.all(jnp.isfinite(vals))) and bool(jnp.all(jnp.isfinite(grads)))
    assert bool(jnp.all(jnp.diff(vals) > 0))  # monotone in density
    # gradient at d = 0 matches the series 1/32 + (496/1024) d + ...
    assert float(jax.jit(jax.grad(expected_pairs_per_value))(0.0)) == pytest.approx(496 / 1024)
    assert float(jax.jit(jax.grad(expected_pairs_per_value))(1.0)) == pytest.approx(1.0)  # d/dd 1/(1+q+...) at q=0


@pytest.mark.parametrize("density", [0.0, 0.005, 0.03, 0.1, 0.3, 0.6, 0.9, 1.0])
def test_expected_ratio_matches_measured(density):
    """Statistical tolerance: pair lengths L = min(Geom(d), 32) are i.i.d. (renewal process), so the
    pair count over n values is asymptotically normal with mean n/mu and variance n*var(L)/mu**3. We
    allow 6 such standard deviations plus 8/n for the final pair and the ceil to whole 64-bit words."""
    n = 200_000
    rng = np.random.default_rng(int(1000 * density) + 7)
    x = sparse_ints(rng, n, density)
    measured = float(jax.jit(rlc_ratio)(jnp.asarray(x)))
    expected = float(exp_ratio(density))
    q = 1.0 - density
    k = np.arange(32)
    mu = np.sum(q**k)  # E[L]
    var = np.sum((2 * k + 1) * q**k) - mu**2  # E[L^2] - E[L]^2
    sd_ratio = math.sqrt(n * var / mu**3) * (4 / 3) / n
    assert abs(measured - expected) <= 6 * sd_ratio + 8 / n, (measured, expected, sd_ratio)


# ---------------------------------------------------------------- zero gating


def brute_nonzero_fraction(x, R, S, stride, pad):
    uh, uw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (pad, pad) if np.isscalar(pad) else pad
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    E = (H + 2 * ph - R) // uh + 1
    F = (W + 2 * pw - S) // uw + 1
    nz = total = 0
    for n in range(N):
        for c in range(C):
            for e in range(E):
                for f in range(F):
                    for r in range(R):
                        for s in range(S):
                            total += 1
                            nz += xp[n, c, e * uh + r, f * uw + s] != 0
    return nz, nz / total


@pytest.mark.parametrize(
    "shape,R,S,stride,pad",
    [
        ((1, 1, 5, 5), 3, 3, 1, 0),
        ((2, 3, 7, 6), 3, 3, 1, 1),
        ((1, 2, 9, 9), 5, 3, 2, 2),
        ((2, 2, 8, 11), 3, 4, (2, 3), (1, 2)),
        ((1, 4, 6, 6), 1, 1, 1, 0),
        ((1, 1, 11, 11), 11, 11, 4, 0),
    ],
)
@pytest.mark.parametrize("density", [0.0, 0.4, 1.0])
def test_nonzero_mac_fraction_brute_force(shape, R, S, stride, pad, density):
    rng = np.random.default_rng(hash((shape, R, S, density)) % 2**32)
    x = np.where(rng.random(shape) < density, rng.normal(size=shape), 0.0)
    nz, frac = brute_nonzero_fraction(x, R, S, stride, pad)
    assert float(nonzero_mac_count(jnp.asarray(x), R, S, stride, pad)) == nz
    got = float(nonzero_mac_fraction(jnp.asarray(x), R, S, stride, pad))
    assert got == pytest.approx(frac, rel=1e-12, abs=1e-15)
    jitted = jax.jit(nonzero_mac_fraction, static_argnums=(1, 2, 3, 4))
    assert float(jitted(jnp.asarray(x), R, S, stride, pad)) == pytest.approx(frac, rel=1e-12, abs=1e-15)


def test_nonzero_mac_fraction_padding_counts_as_zero():
    x = jnp.ones((1, 1, 4, 4))
    assert float(nonzero_mac_fraction(x, 3, 3, 1, 0)) == 1.0
    # pad 1: E = F = 4, 16 windows x 9 = 144 operands; non-zero = sum over pixels of windows covering them
    nz, frac = brute_nonzero_fraction(np.ones((1, 1, 4, 4)), 3, 3, 1, 1)
    assert nz == 100 and float(nonzero_mac_fraction(x, 3, 3, 1, 1)) == pytest.approx(100 / 144)
