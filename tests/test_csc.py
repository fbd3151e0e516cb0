"""CSC coding of Eyeriss v2 (eyejax.sparse.csc)."""
import functools
import math

import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
import jax
import jax.numpy as jnp

from eyejax.sparse import (
    CSC,
    column_words_pmf,
    csc_coords,
    csc_decode,
    csc_default_addr_bits,
    csc_encode,
    csc_storage_bits,
    csc_words,
    expected_csc_storage_bits,
    expected_csc_words,
)

# Seed 000 (Eyeriss v2 slides), "Exploit sparsity": the CSC example.
SEED_DATA = list("abcdefghijkl")
SEED_COUNT = [1, 0, 0, 0, 1, 2, 3, 1, 1, 0, 0, 0]
SEED_ADDRESS = [0, 2, 5, 6, 6, 7, 9, 9, 12]


def from_vectors(data, count, address, num_rows=None):
    """Literal reading of the CSC vectors: in column j, each stored value lies count + 1 rows below
    the previous one (the first one count rows below the top). Returns a dense object matrix."""
    cols = len(address) - 1
    placed = []
    for j in range(cols):
        r = -1
        for k in range(address[j], address[j + 1]):
            r += count[k] + 1
            placed.append((r, j, data[k]))
    rows = num_rows if num_rows is not None else max(r for r, _, _ in placed) + 1
    m = np.zeros((rows, cols), dtype=object)
    for r, j, v in placed:
        m[r, j] = v
    return m


def ref_encode(m, count_bits=4):
    """Sequential reference of the documented rule (scan each column; pad a run of >= 2**b zeros
    before a non-zero with (data 0, count 2**b - 1) entries; trailing zeros are not stored)."""
    K = (1 << count_bits) - 1
    m = np.asarray(m)
    data, count, address = [], [], [0]
    for j in range(m.shape[1]):
        col = m[:, j]
        nz = np.nonzero(col)[0]
        last = nz[-1] if nz.size else -1
        c = 0
        for i in range(last + 1):
            v = col[i]
            if v != 0:
                data.append(v)
                count.append(c)
                c = 0
            elif c == K:
                data.append(0)
                count.append(K)
                c = 0
            else:
                c += 1
        address.append(len(data))
    return data, count, address


def rand_sparse(rng, shape, density, lo=1, hi=128):
    v = rng.integers(lo, hi, size=shape) * rng.choice([-1, 1], size=shape)
    return np.where(rng.random(shape) < density, v, 0).astype(np.int64)


@functools.partial(jax.jit, static_argnames=("count_bits",))
def round_trip(m, count_bits=4):
    """Everything the checks need, in one compile per (shape, count_bits): the tests reuse a few
    shapes ((4, 8), (74, 3)) so that the whole file compiles only a handful of programs."""
    c = csc_encode(m, count_bits=count_bits)
    return c, csc_decode(c, m.shape), csc_words(m, count_bits=count_bits), csc_coords(c)


@functools.partial(jax.jit, static_argnames=("count_bits",))
def round_trip_batch(ms, count_bits=4):
    return jax.vmap(lambda m: round_trip(m, count_bits))(ms)


def _check_one(m, c, dec, dw, aw, count_bits):
    d, cnt, a = ref_encode(m, count_bits)
    n = len(d)
    assert int(c.nnz) == n
    np.testing.assert_array_equal(np.asarray(c.address), a)
    np.testing.assert_array_equal(np.asarray(c.data[:n]), d)
    np.testing.assert_array_equal(np.asarray(c.count[:n]), cnt)
    assert not np.any(np.asarray(c.data[n:])) and not np.any(np.asarray(c.count[n:]))
    assert c.data.shape[-1] == m.size
    np.testing.assert_array_equal(np.asarray(dec), m)
    assert int(dw) == n and int(aw) == m.shape[1] + 1


def check_against_ref(m, count_bits=4):
    """Encode, decode, count words and locate entries; compare with the sequential reference."""
    c, dec, (dw, aw), coords = jax.device_get(round_trip(jnp.asarray(m), count_bits=count_bits))
    _check_one(m, c, dec, dw, aw, count_bits)
    return c, coords


def check_batch(ms, count_bits=4):
    """Same checks for a batch of same-shape matrices (one vmapped compile)."""
    out = jax.device_get(round_trip_batch(jnp.asarray(ms), count_bits=count_bits))
    cb, decb, (dwb, awb), _ = out
    for i, m in enumerate(ms):
        c = jax.tree_util.tree_map(lambda x: x[i], cb)
        _check_one(m, c, decb[i], dwb[i], awb[i], count_bits)
    return out


def test_seed_example_exact():
    m = from_vectors(SEED_DATA, SEED_COUNT, SEED_ADDRESS)
    # The example is a 4 x 8 matrix: the deepest column (column 1: c, d, 0, e) reaches row 3.
    assert m.shape == (4, 8)
    expected = np.array([
        ["0", "c", "0", "0", "0", "0", "0", "j"],
        ["a", "d", "0", "0", "0", "h", "0", "k"],
        ["b", "0", "f", "0", "0", "0", "0", "l"],
        ["0", "e", "0", "0", "g", "i", "0", "0"],
    ])
    assert (np.where(m == 0, "0", m).astype(str) == expected).all()
    letters = {ch: i + 1 for i, ch in enumerate(SEED_DATA)}
    num = np.vectorize(lambda v: letters.get(v, 0))(m).astype(np.int64)
    c, (rows, cols, valid) = check_against_ref(num)
    assert int(c.nnz) == 12
    assert [SEED_DATA[int(v) - 1] for v in c.data[:12]] == SEED_DATA
    assert c.count[:12].tolist() == SEED_COUNT
    assert c.address.tolist() == SEED_ADDRESS      # columns 3 and 6 are empty: 6, 6 and 9, 9
    assert valid.sum() == 12
    assert cols[:12].tolist() == [0, 0, 1, 1, 1, 2, 4, 5, 5, 7, 7, 7]
    assert rows[:12].tolist() == [1, 2, 0, 1, 3, 2, 3, 1, 3, 0, 1, 2]


def test_empty_columns():
    m = np.zeros((4, 8), np.int64)
    m[2, 1] = 7
    m[0, 4] = -3
    m[3, 4] = 2
    c, _ = check_against_ref(m)
    assert c.address.tolist() == [0, 0, 1, 1, 1, 3, 3, 3, 3]
    assert c.count[:3].tolist() == [2, 0, 2]


@pytest.mark.parametrize("zeros,expect_data,expect_count", [
    (15, [9], [15]),                     # fits the 4-b count: no padding
    (16, [0, 9], [15, 0]),               # the 16th zero is stored as a padding entry
    (20, [0, 9], [15, 4]),               # the brief's case: 20 zeros then a value
    (31, [0, 9], [15, 15]),
    (32, [0, 0, 9], [15, 15, 0]),
    (47, [0, 0, 9], [15, 15, 15]),
    (48, [0, 0, 0, 9], [15, 15, 15, 0]),
])
def test_count_overflow(zeros, expect_data, expect_count):
    m = np.zeros((74, 3), np.int64)   # the trailing zeros (>= 25) are never stored
    m[zeros, 0] = 9
    c, _ = check_against_ref(m)
    n = int(c.nnz)
    assert c.data[:n].tolist() == expect_data
    assert c.count[:n].tolist() == expect_count
    # the address counts the padding words
    assert c.address.tolist() == [0, len(expect_data), len(expect_data), len(expect_data)]
    # every stored entry sits count + 1 rows below the previous one
    assert sum(k + 1 for k in expect_count) - 1 == zeros


def test_overflow_between_values_and_columns():
    m = np.zeros((74, 3), np.int64)
    m[3, 0], m[40, 0] = 1, 2          # 36 zeros between: 2 pads, count 4
    m[59, 1] = 5                      # 59 zeros first: 3 pads, count 11
    m[:, 2] = 0                       # all-zero column of 74 rows: nothing stored
    c, _ = check_against_ref(m)
    n = int(c.nnz)
    assert c.data[:n].tolist() == [1, 0, 0, 2, 0, 0, 0, 5]
    assert c.count[:n].tolist() == [3, 15, 15, 4, 15, 15, 15, 11]
    assert c.address.tolist() == [0, 4, 8, 8]


@pytest.mark.parametrize("count_bits", [2, 5])
def test_other_count_widths(count_bits):
    rng = np.random.default_rng(count_bits)
    check_batch(np.stack([rand_sparse(rng, (74, 3), d) for d in (0.01, 0.05, 0.3, 0.8)]),
                count_bits=count_bits)


def test_all_zero_and_dense():
    z = np.zeros((4, 8), np.int64)
    c, _ = check_against_ref(z)
    assert int(c.nnz) == 0 and c.address.tolist() == [0] * 9
    dense = np.arange(1, 33, dtype=np.int64).reshape(4, 8)
    c, _ = check_against_ref(dense)
    assert int(c.nnz) == 32
    assert c.address.tolist() == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert not np.any(c.count)
    np.testing.assert_array_equal(c.data, dense.T.ravel())


def test_degenerate_shapes():
    for shape in [(0, 3), (3, 0), (0, 0)]:
        m = np.ones(shape, np.int64)
        c = csc_encode(jnp.asarray(m))
        assert c.address.shape == (shape[1] + 1,) and int(c.nnz) == 0
        np.testing.assert_array_equal(np.asarray(csc_decode(c, shape)), m)


RANDOM_DENSITIES = [0.0, 0.01, 0.03, 0.1, 0.25, 0.5, 0.75, 0.95, 1.0]


def _random_batch(shape, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rand_sparse(rng, shape, d) for d in RANDOM_DENSITIES for _ in range(4)])


def test_round_trip_random():
    for shape, seed in [((4, 8), 0), ((74, 3), 1)]:
        check_batch(_random_batch(shape, seed))


def test_jit_and_vmap():
    """The vmapped (batched) coding equals the one-matrix coding, field by field."""
    batch = _random_batch((4, 8), 0)
    cb, decb, wb, coordsb = jax.device_get(round_trip_batch(jnp.asarray(batch), count_bits=4))
    assert isinstance(cb, CSC) and cb.data.shape == (36, 32) and cb.address.shape == (36, 9)
    for i in range(0, batch.shape[0], 3):
        one = jax.device_get(round_trip(jnp.asarray(batch[i]), count_bits=4))
        for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves((cb, decb, wb, coordsb))):
            np.testing.assert_array_equal(a, b[i])


def test_storage_bits():
    rng = np.random.default_rng(2)
    m = rand_sparse(rng, (4, 8), 0.4)
    c, _ = check_against_ref(m)
    dw, aw = int(c.nnz), 9
    assert csc_default_addr_bits(4, 8) == math.ceil(math.log2(33)) == 6
    assert int(csc_storage_bits(jnp.asarray(m))) == dw * 12 + aw * 6
    assert int(csc_storage_bits(jnp.asarray(m), data_bits=16, count_bits=4, addr_bits=7)) == dw * 20 + aw * 7
    # v2 PE weight spad: 96 x 24 b data = 192 words, 16 x 7 b address: 7 bits hold address 96
    assert csc_default_addr_bits(32, 3) == 7
    e = expected_csc_storage_bits(4, 8, 0.4)
    dwe, awe = expected_csc_words(4, 8, 0.4)
    assert float(dwe) == pytest.approx(32 * 0.4) and float(awe) == 9.0
    assert float(e) == pytest.approx(float(dwe) * 12 + float(awe) * 6)


# One density vector for every expectation below, so each (R) compiles once.
DS = np.array([0.0, 0.01, 0.04, 0.1, 0.3, 0.6, 0.95, 1.0])


@functools.partial(jax.jit, static_argnums=0)
def pmfs(R, ds):
    return jax.vmap(lambda d: column_words_pmf(R, d))(ds)


def test_expected_words_formula_and_pmf():
    k_ = lambda R: np.arange(R + 1)
    # pmf is Binomial(R, d) when no padding is possible (R <= 16)
    for R in (5, 16):
        p = np.asarray(pmfs(R, jnp.asarray(DS)))
        for i, d in enumerate(DS):
            b = np.array([math.comb(R, k) * d ** k * (1 - d) ** (R - k) for k in range(R + 1)])
            np.testing.assert_allclose(p[i], b, atol=1e-12)
    # pmf mean equals the closed form, for columns long enough to pad
    for R in (40, 100):
        p = np.asarray(pmfs(R, jnp.asarray(DS)))
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(p @ k_(R), np.asarray(expected_csc_words(R, 1, jnp.asarray(DS))[0]),
                                   rtol=1e-10, atol=1e-12)
        e = np.asarray(expected_csc_words(R, 1, jnp.asarray(DS))[0])
        # end points: all-zero stores nothing, dense stores every value; padding only adds words
        assert e[0] == 0.0 and e[-1] == R
        assert np.all(e >= R * DS - 1e-12) and np.any(e > R * DS + 1e-3)
    # differentiable in the density
    g = jax.grad(lambda d: expected_csc_words(40, 1, d)[0])(0.3)
    assert np.isfinite(float(g)) and float(g) > 0


@pytest.mark.parametrize("R", [40, 100])
def test_expected_vs_measured_words(R):
    """Columns are i.i.d., so the total words over N columns has sd sqrt(N·Var_col) with Var_col
    from the exact pmf. Tolerance: |measured - expected| <= 4 sd (two-sided p ~ 6e-5 per check);
    d = 0 and d = 1 must match exactly."""
    N = 3000
    rng = np.random.default_rng(R)
    k = np.arange(R + 1)
    p = np.asarray(pmfs(R, jnp.asarray(DS)))
    exp_col = np.asarray(expected_csc_words(R, 1, jnp.asarray(DS))[0])
    enc = jax.jit(csc_encode)
    for i, d in enumerate(DS):
        m = rand_sparse(rng, (R, N), d)
        per_col = np.diff(np.asarray(enc(jnp.asarray(m)).address))
        measured = int(per_col.sum())
        expected = N * exp_col[i]
        var_col = (p[i] * k * k).sum() - (p[i] * k).sum() ** 2
        sd = math.sqrt(max(N * var_col, 0.0))
        assert abs(measured - expected) <= 4 * sd + 1e-6, (R, d, measured, expected, sd)
        # padding words alone: per-column pads are i.i.d. too; use their sample sd (4 standard
        # errors), where enough pads are expected for it to be estimated
        pads_expected = exp_col[i] - R * d
        if N * pads_expected >= 20:
            pads = per_col - (m != 0).sum(axis=0)
            se = pads.std(ddof=1) / math.sqrt(N)
            assert abs(pads.mean() - pads_expected) <= 4 * se, (R, d, pads.mean(), pads_expected)
