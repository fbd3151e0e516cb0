"""Eyeriss v2 sparse PE (eyejax.sim.sparse_pe): outputs, counts, capacity checks, and the analytical
cycle expectation against simulation.

Statistical tolerances (fixed seeds, so the tests are deterministic):
* a Monte Carlo mean of N i.i.d. samples must lie within 3 standard errors of the model mean, the SE
  being the model's sd / sqrt(N);
* a sample variance must lie within 4 standard errors of the model variance, SE estimated from the
  sample's fourth central moment: sqrt((m4 - s**4) / N);
* layer cycles (slowest PE per pass, summed) averaged over seeds must lie in
  [lower - 3 SE, upper + 3 SE] with the model's Jensen lower bound and independent-normal upper
  estimate, SE the sample sd over seeds / sqrt(seeds); the summed task cycles (no max) must match the
  exact expectation within 3 SE.
"""
import math

import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
import jax
import jax.numpy as jnp

from eyejax.sim import (
    SPARSE_PE_KEYS,
    PECapacity,
    conv_row_weight_matrix,
    default_assignment,
    expected_pass_max,
    expected_pe_cycles,
    expected_sparse_conv_cycles,
    simulate_sparse_conv,
    sparse_pe_conv_row,
    sparse_pe_matvec,
)
from eyejax.sparse import csc_encode


def rand_sparse(rng, shape, density):
    v = rng.integers(1, 8, size=shape) * rng.choice([-1, 1], size=shape)
    return np.where(rng.random(shape) < density, v, 0).astype(np.int64)


def col_words(col, count_bits=4):
    """Stored CSC words of one column: each non-zero plus floor(L / 16) pads for its zero run L."""
    P = 1 << count_bits
    words, prev = 0, -1
    for i in np.nonzero(np.asarray(col))[0]:
        words += 1 + (i - prev - 1) // P
        prev = i
    return words


def ref_matvec_counts(x, W, mpc=2, overhead=0):
    active = np.nonzero(x)[0]
    ww = [col_words(W[:, c]) for c in active]
    macs = int(sum((W[:, c] != 0).sum() for c in active))
    return dict(macs=macs, cycles=sum(-(-w // mpc) + overhead for w in ww),
                iact_spad_reads=col_words(x), weight_spad_reads=sum(ww), iact_addr_reads=2,
                weight_addr_reads=2 * len(active), psum_spad_reads=macs, psum_spad_writes=macs)


def ref_conv_row(x, w, U, mpc=2):
    """x [C, Win], w [M, C, S]: psum row and counts by literal loops."""
    M, C, S = w.shape
    F = (x.shape[1] - S) // U + 1
    out = np.zeros((M, F), np.int64)
    cnt = dict.fromkeys(SPARSE_PE_KEYS, 0)
    for f in range(F):
        cnt["iact_addr_reads"] += S + 1
        for s in range(S):
            cnt["iact_spad_reads"] += col_words(x[:, f * U + s])
            for c in range(C):
                v = x[c, f * U + s]
                out[:, f] += v * w[:, c, s]
                if v != 0:
                    wcol = w[:, c, s]
                    words = col_words(wcol)
                    cnt["cycles"] += -(-words // mpc)
                    cnt["weight_spad_reads"] += words
                    cnt["weight_addr_reads"] += 2
                    cnt["macs"] += int((wcol != 0).sum())
    cnt["psum_spad_reads"] = cnt["psum_spad_writes"] = cnt["macs"]
    return out, cnt


def as_ints(counts):
    return {k: int(v) for k, v in counts.items()}


@jax.jit
def _matvec_batch(xs, Ws):
    def one(x, W):
        return sparse_pe_matvec(csc_encode(x[:, None]), csc_encode(W), W.shape[0])
    return jax.vmap(one)(xs, Ws)


# --------------------------------------------------------------------------------------------
# matvec kernel
# --------------------------------------------------------------------------------------------
def test_matvec_matches_dense_and_counts():
    rng = np.random.default_rng(0)
    C, M = 12, 40   # M > 16: weight columns can hold padding words
    cases = [(di, dw) for di in (0.0, 0.2, 0.6, 1.0) for dw in (0.0, 0.05, 0.3, 0.8, 1.0)]
    xs = np.stack([rand_sparse(rng, (C,), di) for di, _ in cases])
    Ws = np.stack([rand_sparse(rng, (M, C), dw) for _, dw in cases])
    psums, counts = jax.device_get(_matvec_batch(jnp.asarray(xs), jnp.asarray(Ws)))
    padded = 0
    for i in range(len(cases)):
        np.testing.assert_array_equal(psums[i], Ws[i] @ xs[i])
        ref = ref_matvec_counts(xs[i], Ws[i])
        assert {k: int(counts[k][i]) for k in SPARSE_PE_KEYS} == ref, cases[i]
        padded += ref["weight_spad_reads"] > ref["macs"]
    assert padded > 0  # the padding-word path was exercised


# The hand example: 40 outputs (so a column can need a padding word), 4 inputs.
HAND_W = np.zeros((40, 4), np.int64)
HAND_W[[0, 1, 3], 0] = [1, 2, 4]      # column 0: 3 non-zeros
HAND_W[25, 1] = 6                     # column 1: 25 zeros then a value -> padding word + value
HAND_W[2, 2] = 3                      # column 2: 1 non-zero, but iact 2 is zero
HAND_W[:4, 3] = 1                     # column 3: 4 non-zeros
HAND_X = np.array([2, 5, 0, 3], np.int64)


def test_matvec_cycle_rule_by_hand():
    ic, wc = csc_encode(HAND_X[:, None]), csc_encode(HAND_W)
    p, c = sparse_pe_matvec(ic, wc, 40)
    np.testing.assert_array_equal(np.asarray(p), HAND_W @ HAND_X)
    c = as_ints(c)
    # non-zero iacts 0, 1, 3: ceil(3/2) + ceil(2/2) + ceil(4/2) = 2 + 1 + 2. Column 0's odd
    # leftover wastes a datapath; column 1's padding word takes a slot but runs no MAC.
    assert c["cycles"] == 5 and c["macs"] == 3 + 1 + 4
    assert c["weight_addr_reads"] == 6 and c["weight_spad_reads"] == 3 + 2 + 4
    assert c["iact_spad_reads"] == 3 and c["iact_addr_reads"] == 2
    assert c["psum_spad_reads"] == c["psum_spad_writes"] == 8
    assert c == ref_matvec_counts(HAND_X, HAND_W)
    assert as_ints(sparse_pe_matvec(ic, wc, 40, macs_per_cycle=1)[1])["cycles"] == 3 + 2 + 4
    # a per-iact overhead is charged once per non-zero iact (3 of them)
    assert as_ints(sparse_pe_matvec(ic, wc, 40, iact_overhead_cycles=1)[1])["cycles"] == 5 + 3


def test_dense_mode():
    C, M = 4, 40
    p, c = sparse_pe_matvec(jnp.asarray(HAND_X), jnp.asarray(HAND_W), M, dense=True)
    np.testing.assert_array_equal(np.asarray(p), HAND_W @ HAND_X)
    c = as_ints(c)
    assert c == dict(macs=160, cycles=C * math.ceil(M / 2), iact_spad_reads=4, weight_spad_reads=160,
                     iact_addr_reads=0, weight_addr_reads=0, psum_spad_reads=160, psum_spad_writes=160)
    # odd M: column packing wastes a slot per column, flat packing does not
    W7 = HAND_W[:7]
    _, cc = sparse_pe_matvec(jnp.asarray(HAND_X), jnp.asarray(W7), 7, dense=True)
    _, cf = sparse_pe_matvec(jnp.asarray(HAND_X), jnp.asarray(W7), 7, dense=True, dense_packing="flat")
    assert int(cc["cycles"]) == 4 * 4 and int(cf["cycles"]) == math.ceil(4 * 7 / 2) == 14
    # CSC inputs are decoded in dense mode
    p2, c2 = sparse_pe_matvec(csc_encode(HAND_X[:, None]), csc_encode(HAND_W), M, dense=True)
    np.testing.assert_array_equal(np.asarray(p2), HAND_W @ HAND_X)
    assert as_ints(c2) == c


# --------------------------------------------------------------------------------------------
# row convolution
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("U", [1, 2])
def test_conv_row(U):
    rng = np.random.default_rng(U)
    C, M, S, Win = 4, 6, 3, 11
    F = (Win - S) // U + 1
    kern = jax.jit(lambda x, w: sparse_pe_conv_row(csc_encode(x), csc_encode(w), M, S, F, U))
    dkern = jax.jit(lambda x, w: sparse_pe_conv_row(x, w, M, S, F, U, dense=True))
    for di, dw in [(0.2, 0.3), (0.5, 0.7), (1.0, 1.0), (0.0, 0.5)]:
        x = rand_sparse(rng, (C, Win), di)
        w = rand_sparse(rng, (M, C, S), dw)
        wm = conv_row_weight_matrix(w)
        psum, counts = kern(jnp.asarray(x), wm)
        ref, rc = ref_conv_row(x, w, U)
        np.testing.assert_array_equal(np.asarray(psum), ref)
        assert as_ints(counts) == rc
        if U == 2:   # dense mode (one compile is enough)
            dp, dc = dkern(jnp.asarray(x), wm)
            np.testing.assert_array_equal(np.asarray(dp), ref)
            assert as_ints(dc)["cycles"] == F * C * S * math.ceil(M / 2)
            assert as_ints(dc)["macs"] == F * C * S * M


# --------------------------------------------------------------------------------------------
# layer simulation
# --------------------------------------------------------------------------------------------
def lax_conv(x, w, U, P):
    return np.asarray(jax.lax.conv_general_dilated(
        jnp.asarray(x)[None], jnp.asarray(w), (U, U), [(P, P)] * 2,
        dimension_numbers=("NCHW", "OIHW", "NCHW"))[0])


def nonzero_pairs(x, w, U, P):
    """Number of non-zero × non-zero MACs of the convolution (padded positions are zeros)."""
    xi = (x != 0).astype(np.int64)
    wi = (w != 0).astype(np.int64)
    # Σ_{m,c,r,s} 1[w != 0] · Σ_{e,f} 1[x_pad[c, eU+r, fU+s] != 0] = sum of the indicator conv
    return int(lax_conv(xi, wi, U, P).sum())


@pytest.mark.parametrize("C,H,W,M,R,S,U,P,num_pes,dens,check_dense", [
    (6, 7, 8, 12, 3, 3, 1, 1, 12, (0.4, 0.5), True),   # 2 channel groups (5 + 1)
    (3, 9, 9, 40, 2, 3, 2, 2, 7, (0.6, 0.3), False),   # 2 filter groups (21 + 19 rows: padding possible); R != S
    (8, 5, 6, 4, 1, 1, 1, 0, 5, (0.5, 0.5), True),     # 1x1 conv: the matvec case
    (6, 7, 8, 12, 3, 3, 1, 1, 12, (1.0, 1.0), False),  # fully dense data fits the default assignment
])
def test_simulate_conv_matches_lax(C, H, W, M, R, S, U, P, num_pes, dens, check_dense):
    rng = np.random.default_rng(C * 100 + M)
    x = rand_sparse(rng, (C, H, W), dens[0])
    w = rand_sparse(rng, (M, C, R, S), dens[1])
    ref = lax_conv(x, w, U, P)
    for dense in (False, True) if check_dense else (False,):
        r = simulate_sparse_conv(x, w, stride=U, pad=P, num_pes=num_pes, dense=dense)
        np.testing.assert_array_equal(r.output, ref)
        assert r.output.dtype == ref.dtype
        assert r.pe_cycles.shape == (math.ceil(len(r.tasks) / num_pes), num_pes)
        np.testing.assert_array_equal(r.pass_cycles, r.pe_cycles.max(axis=1))
        assert r.cycles == r.pass_cycles.sum() == r.pe_cycles.max(axis=1).sum()
        assert r.task_cycles.sum() == r.counts["cycles"] == r.pe_cycles.sum()
        assert r.cycles >= r.counts["cycles"] / num_pes
        E, F = ref.shape[1:]
        if dense:
            assert r.counts["macs"] == M * C * R * S * E * F
        else:
            assert r.counts["macs"] == nonzero_pairs(x, w, U, P)
            assert r.counts["macs"] <= 2 * r.counts["cycles"]
    # batch axis in, batch axis out
    r4 = simulate_sparse_conv(x[None], w, stride=U, pad=P, num_pes=num_pes)
    np.testing.assert_array_equal(r4.output, ref[None])


def test_default_assignment_fits_worst_case():
    cap = PECapacity()
    assert default_assignment(64, 64, 3, cap) == (12, 5)   # 5·3 + 1 = 16 addresses; 12·15 = 180 <= 192
    assert default_assignment(64, 64, 1, cap) == (12, 15)
    assert default_assignment(64, 64, 3, cap, dense=True) == (12, 5)
    assert default_assignment(3, 40, 3, cap) == (21, 3)     # 9 columns; 21·9 = 189 <= 192


def test_capacity_errors():
    rng = np.random.default_rng(6)
    x = rand_sparse(rng, (5, 4, 6), 0.9)
    w_dense = rand_sparse(rng, (32, 5, 3, 3), 0.9)
    # 32 filters × 15 columns: ~430 weight words > 192
    with pytest.raises(ValueError, match="weight CSC words"):
        simulate_sparse_conv(x, w_dense, m_per_pe=32, c_per_pe=5)
    # the same assignment fits once the weights are sparse enough (the point of CSC in the spad)
    w_sparse = rand_sparse(rng, (32, 5, 3, 3), 0.15)
    r = simulate_sparse_conv(x, w_sparse, m_per_pe=32, c_per_pe=5)
    np.testing.assert_array_equal(r.output, lax_conv(x, w_sparse, 1, 0))
    # iact window words: a 4-word iact spad cannot hold a dense 5 × 3 window
    with pytest.raises(ValueError, match="iact CSC words"):
        simulate_sparse_conv(x, w_sparse, m_per_pe=32, c_per_pe=5, capacity=PECapacity(iact_data=4))
    # static checks
    with pytest.raises(ValueError, match="psum"):
        simulate_sparse_conv(x, rand_sparse(rng, (40, 5, 3, 3), 0.1), m_per_pe=33, c_per_pe=1)
    with pytest.raises(ValueError, match="weight columns"):   # 6·3 + 1 = 19 addresses > 16
        simulate_sparse_conv(rand_sparse(rng, (6, 4, 6), 0.5), rand_sparse(rng, (4, 6, 3, 3), 0.1),
                             m_per_pe=4, c_per_pe=6)
    w9 = rand_sparse(rng, (2, 1, 1, 9), 0.5)
    with pytest.raises(ValueError, match="iact addresses"):
        simulate_sparse_conv(rand_sparse(rng, (1, 2, 12), 0.5), w9, m_per_pe=2, c_per_pe=1)
    with pytest.raises(ValueError, match="dense weights"):
        simulate_sparse_conv(x, w_dense, m_per_pe=32, c_per_pe=5, dense=True)


# --------------------------------------------------------------------------------------------
# analytical expectation vs simulation
# --------------------------------------------------------------------------------------------
def check_moments(samples, mean, var, what):
    n = samples.size
    se_mean = math.sqrt(var / n)
    assert abs(samples.mean() - mean) <= 3 * se_mean + 1e-12, (what, samples.mean(), mean, se_mean)
    s2 = samples.var(ddof=1)
    m4 = ((samples - samples.mean()) ** 4).mean()
    se_var = math.sqrt(max(m4 - s2 * s2, 0.0) / n)
    assert abs(s2 - var) <= 4 * se_var + 1e-12, (what, s2, var, se_var)


def test_expected_matvec_closed_form():
    """For M <= 16 (no padding) E[ceil(W/2)] with W ~ Binomial(M, d) is (M·d + P(W odd)) / 2,
    P(W odd) = (1 - (1 - 2d)**M) / 2."""
    for M in (7, 16):
        for di, dw in [(0.3, 0.2), (1.0, 0.55), (0.8, 1.0)]:
            e = expected_pe_cycles(10, M, di, dw)
            ek = (M * dw + (1 - (1 - 2 * dw) ** M) / 2) / 2
            assert float(e["mean"]) == pytest.approx(10 * di * ek, rel=1e-12)
    # dense data: every iact walks ceil(M/2) words
    e = expected_pe_cycles(10, 7, 1.0, 1.0)
    assert float(e["mean"]) == 10 * 4 and float(e["var"]) == pytest.approx(0.0, abs=1e-9)


def test_expected_matvec_vs_monte_carlo():
    """M = 40 > 16: the stored-word pmf (with padding), not a binomial, enters the model."""
    N, C, M = 4000, 12, 40
    rng = np.random.default_rng(M)
    for di, dw in [(0.1, 0.1), (0.5, 0.3), (0.9, 0.05), (0.7, 0.8)]:
        xs = rand_sparse(rng, (N, C), di)
        Ws = rand_sparse(rng, (N, M, C), dw)
        cyc = np.asarray(_matvec_batch(jnp.asarray(xs), jnp.asarray(Ws))[1]["cycles"], float)
        e = expected_pe_cycles(C, M, di, dw)
        check_moments(cyc, float(e["mean"]), float(e["var"]), (M, di, dw))


def test_expected_conv_row_vs_monte_carlo():
    """A padded, strided row task: the reuse n_w and the weight sharing across windows enter the
    variance (law of total variance), checked against 3000 simulated rows."""
    N, C, M, S, Win, U, P = 3000, 5, 10, 3, 9, 2, 1
    F = (Win + 2 * P - S) // U + 1
    rng = np.random.default_rng(11)
    kern = jax.jit(jax.vmap(lambda x, w: sparse_pe_conv_row(csc_encode(x), csc_encode(w), M, S, F, U)[1]))
    for di, dw in [(0.3, 0.4), (0.8, 0.15)]:
        xs = np.pad(rand_sparse(rng, (N, C, Win), di), ((0, 0), (0, 0), (P, P)))
        ws = rand_sparse(rng, (N, M, C, S), dw)
        wm = jax.vmap(conv_row_weight_matrix)(jnp.asarray(ws))
        cyc = np.asarray(kern(jnp.asarray(xs), wm)["cycles"], float)
        e = expected_pe_cycles(C, M, di, dw, filter_width=S, in_width=Win, stride=U, pad=P)
        check_moments(cyc, float(e["mean"]), float(e["var"]), (di, dw))


def test_expected_pass_max():
    # one PE: its mean; two i.i.d. N(μ, σ²): μ + σ/sqrt(pi); point masses: the largest
    assert float(expected_pass_max(jnp.array([50.0]), jnp.array([4.0]))) == pytest.approx(50.0, abs=1e-3)
    v = float(expected_pass_max(jnp.array([50.0, 50.0]), jnp.array([4.0, 4.0])))
    assert v == pytest.approx(50.0 + 4.0 / math.sqrt(math.pi), abs=1e-3)
    assert float(expected_pass_max(jnp.array([3.0, 9.0, 0.0]), jnp.zeros(3))) == pytest.approx(9.0, abs=1e-2)
    # 12 i.i.d. standard normals: E[max] = 1.6292 (tabulated)
    v = float(expected_pass_max(jnp.full(12, 100.0), jnp.ones(12)))
    assert v == pytest.approx(101.6292, abs=2e-3)


@pytest.mark.parametrize("di,dw", [(0.35, 0.5), (0.8, 0.2)])
def test_layer_cycles_vs_model(di, dw):
    """Slowest PE per pass: simulation over seeds against the model's bounds (module docstring)."""
    C, H, W, M, R, S, U, P, num_pes = 6, 7, 8, 12, 3, 3, 1, 1, 12   # 42 row tasks, 4 passes
    seeds = 40
    rng = np.random.default_rng(int(di * 100 + dw * 10))
    e = expected_sparse_conv_cycles((C, H, W), (M, C, R, S), di, dw, stride=U, pad=P, num_pes=num_pes)
    lay, tot, per_task = [], [], []
    for _ in range(seeds):
        x = rand_sparse(rng, (C, H, W), di)
        w = rand_sparse(rng, (M, C, R, S), dw)
        r = simulate_sparse_conv(x, w, stride=U, pad=P, num_pes=num_pes)
        lay.append(r.cycles)
        tot.append(r.task_cycles.sum())
        per_task.append(r.task_cycles)
    lay, tot, per_task = np.array(lay, float), np.array(tot, float), np.array(per_task, float)
    se_tot = tot.std(ddof=1) / math.sqrt(seeds)
    assert abs(tot.mean() - float(e["total_mean"])) <= 3 * se_tot
    # tasks on vertical padding rows cost exactly 0, as the model says
    zero = np.asarray(e["task_mean"]) == 0
    assert zero.any() and not per_task[:, zero].any()
    se = lay.std(ddof=1) / math.sqrt(seeds)
    lower, upper = float(e["lower"]), float(e["upper"])
    assert lower - 3 * se <= lay.mean() <= upper + 3 * se, (lower, lay.mean(), upper, se)
    assert lower < upper
    # imbalance is real: the layer takes longer than a perfectly balanced split
    assert lay.mean() > float(e["balanced"])
