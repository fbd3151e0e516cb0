"""Functional RS simulation of Eyeriss v1 (eyejax.sim.rs_sim): exact outputs against lax.conv, count
invariants, zero-MAC count against brute force, a hand-worked example, feasibility errors, jit and
vmap."""
import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
import jax
import jax.numpy as jnp

from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.dataflow.mapping import COUNT_KEYS, RSMapping
from eyejax.sim import (SIM_KEYS, check_mapping, default_mapping, make_simulator, simulate_rs,
                        simulate_rs_batch)
from eyejax.workload.layer import Layer

A12x14 = EyerissV1()
A3x4 = EyerissV1(pe_rows=3, pe_cols=4)
A2x2 = EyerissV1(pe_rows=2, pe_cols=2)
A5x3 = EyerissV1(pe_rows=5, pe_cols=3)


def L(name, N=1, C=1, M=1, H=5, W=5, R=3, S=3, U=1, P=0, G=1, kind="CONV"):
    return Layer(name, kind, N=N, C=C, M=M, H=H, W=W, R=R, S=S, stride=U, pad=P, groups=G)


def M_(h, e, r=1, t=1, p=1, q=1, n=1, m=None):
    return RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=p * t if m is None else m)


# (layer, arch, mapping or None for default_mapping)
CASES = [
    (L("conv3x3_p1", C=3, M=4, H=8, W=8, P=1), A12x14, None),
    (L("conv3x3_pqrt", C=4, M=6, H=7, W=6, P=1), A12x14, M_(3, 5, r=2, t=2, p=2, q=2, m=4)),
    (L("stride2_pad1", C=2, M=3, H=9, W=9, U=2, P=1), A3x4, M_(3, 3, r=1, t=1, p=2, q=1, m=2)),
    (L("stride3", C=2, M=2, H=11, W=10, U=3), A3x4, None),
    (L("stride3_R<U", N=2, C=2, M=3, H=10, W=11, R=2, S=2, U=3), A5x3,
     M_(2, 3, r=2, t=1, q=1, n=2)),
    (L("grouped", N=2, C=4, M=6, H=9, W=8, U=2, P=1, G=2), A3x4, M_(3, 2, t=2, q=2, n=2, m=2)),
    (L("depthwise", C=3, M=3, H=6, W=7, P=1, G=3, kind="DWCONV"), A12x14, M_(3, 6, p=1, q=1)),
    (L("depthwise_s2", N=2, C=4, M=4, H=9, W=9, U=2, P=1, G=4, kind="DWCONV"), A5x3, None),
    (L("fc", N=2, C=5, M=6, H=3, W=4, R=3, S=4, kind="FC"), A12x14,
     M_(3, 1, r=3, t=4, p=1, q=2, n=2)),
    (L("fc_fold", N=3, C=3, M=4, H=3, W=3, R=3, S=3, kind="FC"), A2x2, M_(2, 1, t=1, p=3, q=2, n=2,
                                                                               m=3)),
    (L("E_wide", C=2, M=2, H=16, W=6), A3x4, M_(3, 4, p=2, m=2)),
    (L("E_wide_partial", C=1, M=2, H=13, W=5, P=1), A3x4, M_(3, 3, p=1, t=1, m=2)),
    (L("R_fold", C=2, M=2, H=9, W=7, R=5, S=3, P=1), A3x4, M_(3, 2, r=1, t=2, m=2)),
    (L("R_fold_2x2", N=2, C=2, M=3, H=6, W=6, R=3, S=3, U=1), A2x2, M_(2, 2, q=2, n=1, m=2, p=2)),
    (L("R_fold_stride2", C=1, M=2, H=11, W=9, R=5, S=5, U=2, P=2), A2x2, M_(2, 2, p=2, m=2)),
    (L("partial_all", N=3, C=5, M=5, H=9, W=8, R=5, S=3, U=1, P=1), A3x4,
     M_(3, 3, r=1, t=1, p=2, q=2, n=2, m=4)),
    (L("partial_m_tiles", C=3, M=7, H=6, W=6, P=1), A12x14, M_(3, 4, r=1, t=3, p=1, q=3, m=3)),
    (L("m_big", C=2, M=5, H=5, W=5), A5x3, M_(3, 3, p=2, m=6)),
    (L("rect_filter", C=2, M=2, H=8, W=9, R=3, S=2, U=2), A5x3, M_(3, 1, r=1, t=2, p=1, q=2, m=2)),
    (L("one_by_one", N=2, C=4, M=3, H=4, W=5, R=1, S=1), A2x2, M_(1, 2, r=1, t=2, p=1, q=2, m=2)),
    (L("tiny_pad", C=2, M=2, H=2, W=2, P=1), A3x4, None),
    (L("e1", C=2, M=2, H=6, W=5, U=1), A5x3, M_(3, 1, r=1, t=1, q=2)),
    (L("full_array", C=4, M=8, H=8, W=8, R=3, S=3, P=1), A12x14, M_(3, 7, r=2, t=4, p=2, q=2, m=8)),
    (L("stride2_grouped_5x3", N=2, C=6, M=4, H=7, W=7, U=2, P=1, G=2), A5x3, M_(3, 3, q=3, n=2)),
]


def _ref(layer, x, w):
    return jax.lax.conv_general_dilated(x, w, (layer.stride,) * 2, [(layer.pad, layer.pad)] * 2,
                                        feature_group_count=layer.groups,
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))


def _data(layer, seed, zeros=0.3, dtype=jnp.int64):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (layer.N, layer.C, layer.H, layer.W))
    x[rng.random(x.shape) < zeros] = 0
    w = rng.integers(-3, 4, (layer.M, layer.C // layer.groups, layer.R, layer.S))
    return jnp.asarray(x, dtype), jnp.asarray(w, dtype)


def _zero_macs_brute(layer, x):
    """Count (output, channel, filter tap) triples whose ifmap operand (pads included) is 0."""
    x = np.asarray(x)
    P, U = layer.pad, layer.stride
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    Mg = layer.M // layer.groups
    total = 0
    for r in range(layer.R):
        for s in range(layer.S):
            win = xp[:, :, r:r + (layer.E - 1) * U + 1:U, s:s + (layer.F - 1) * U + 1:U]
            total += int((win == 0).sum()) * Mg   # every filter of the group uses the operand
    return total


def _check_invariants(layer, arch, c, x):
    c = {k: int(v) for k, v in c.items()}
    assert set(c) == set(SIM_KEYS)
    macs = layer.N * layer.M * layer.E * layer.F * layer.R * layer.S * (layer.C // layer.groups)
    assert c["macs"] == macs
    for k in ("rf_ifmap_reads", "rf_filter_reads", "rf_psum_reads", "rf_psum_writes"):
        assert c[k] == macs, k
    assert c["noc_filter"] == c["rf_filter_writes"]
    assert c["noc_ifmap"] == c["rf_ifmap_writes"]
    # DRAM ifmap reads cover at least every real element of the used rows and columns
    U, P = layer.stride, layer.pad
    rows_used = min((layer.E - 1) * U + layer.R, layer.H + 2 * P)
    cols_used = (layer.F - 1) * U + layer.S
    real_rows = len([r for r in range(rows_used) if P <= r < P + layer.H])
    real_cols = len([q for q in range(cols_used) if P <= q < P + layer.W])
    assert c["dram_ifmap_reads"] >= layer.N * layer.C * real_rows * real_cols
    assert c["glb_ifmap_writes"] >= c["dram_ifmap_reads"]
    assert c["glb_ifmap_reads"] >= layer.N * layer.C * real_rows * real_cols
    assert c["noc_ifmap"] >= c["glb_ifmap_reads"]          # multicast only fans out
    outs = layer.N * layer.M * layer.E * layer.F
    assert c["glb_psum_writes"] >= outs
    assert c["dram_psum_writes"] == outs
    assert c["dram_psum_reads"] == 0
    assert c["glb_filter_reads"] == c["glb_filter_writes"] == 0   # filters bypass the GLB
    weights = layer.M * (layer.C // layer.groups) * layer.R * layer.S
    assert c["dram_filter_reads"] >= weights and c["dram_filter_reads"] % weights == 0
    assert c["noc_filter"] >= c["dram_filter_reads"]
    # every GLB psum write but an element's first is followed by a read-back, plus one final read
    # per element for the write-back to DRAM
    assert c["glb_psum_reads"] == c["glb_psum_writes"]
    npes = int(arch.pe_rows) * int(arch.pe_cols)
    assert 1 <= c["active_pes"] <= npes
    assert c["passes"] >= 1
    assert c["compute_cycles"] * npes >= macs
    assert c["ramp_cycles"] >= c["passes"] * (layer.S + 1)
    assert c["macs_zero_ifmap"] == _zero_macs_brute(layer, x)


@pytest.mark.parametrize("layer,arch,mapping", CASES, ids=[c[0].name for c in CASES])
def test_matches_lax_conv_and_invariants(layer, arch, mapping):
    mapping = default_mapping(layer, arch) if mapping is None else mapping
    x, w = _data(layer, hash(layer.name) % 1000)
    out, counts = simulate_rs(layer, mapping, x, w, arch)
    ref = _ref(layer, x, w)
    assert out.shape == ref.shape == (layer.N, layer.M, layer.E, layer.F)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
    assert all(v.dtype == jnp.int64 and v.shape == () for v in counts.values())
    _check_invariants(layer, arch, counts, x)


def test_float64_and_int32():
    layer, arch, mp = CASES[2]
    x, w = _data(layer, 1, dtype=jnp.float64)
    out, _ = simulate_rs(layer, mp, x, w, arch)
    assert out.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(out), np.asarray(_ref(layer, x, w)))
    x32, w32 = x.astype(jnp.int32), w.astype(jnp.int32)
    out32, _ = simulate_rs(layer, mp, x32, w32, arch)
    assert out32.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(out32), np.asarray(_ref(layer, x32, w32)))


def test_hand_worked_single_pass():
    """4×4 input, 3×3 filter, one pass on a 3×2 PE set; every count worked out by hand."""
    layer = L("hand", H=4, W=4)
    x, w = _data(layer, 7, zeros=0.0)
    x = jnp.where(x == 0, 1, x).at[0, 0, 0, 0].set(0)   # one zero, used by one MAC only
    out, c = simulate_rs(layer, M_(3, 2), x, w)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(_ref(layer, x, w)))
    want = dict(macs=36, dram_ifmap_reads=16, dram_filter_reads=9, dram_psum_reads=0,
                dram_psum_writes=4, glb_ifmap_reads=16, glb_ifmap_writes=16, glb_filter_reads=0,
                glb_filter_writes=0, glb_psum_reads=4, glb_psum_writes=4, noc_ifmap=24,
                noc_filter=18, noc_psum=12, rf_ifmap_reads=36, rf_ifmap_writes=24,
                rf_filter_reads=36, rf_filter_writes=18, rf_psum_reads=36, rf_psum_writes=36,
                passes=1, compute_cycles=6, ramp_cycles=18, stall_cycles=10, active_pes=6,
                macs_zero_ifmap=1)
    # time (docs/rs_model.md "Time"): fill = 9 filter words over the 64-b filter GIN (3 cycles) +
    # the first S=3 columns of the 4 ifmap rows over the 16-b ifmap GIN (12); drain = h = 3 -> 18.
    # The pass streams 16 ifmap words at one per cycle (16 > 6 MACs; psums 4/4 = 1; the 9 filter
    # words from DRAM at 1.2 per cycle: 8), so it stalls 16 - 6 = 10 cycles.
    assert {k: int(v) for k, v in c.items()} == want


def test_fold_and_channel_chunks_partial_sums():
    """Two folds × two channel chunks: the GLB psum block is read back after the first pass."""
    layer = L("psums", C=2, M=1, H=5, W=3, R=5, S=1)          # E=1, F=3, h=3 -> folds of 3 and 2
    out, c = simulate_rs(layer, M_(3, 1), *_data(layer, 3), A3x4)
    c = {k: int(v) for k, v in c.items()}
    assert c["passes"] == 4
    assert c["glb_psum_writes"] == 4 * 3
    assert c["glb_psum_reads"] == 3 * 3 + 3               # 3 read-backs + the final write-back
    # hops: folds of 3 and 2 rows -> 2 and 1 hop per psum; + 4 to the GLB + 3 from the GLB
    assert c["noc_psum"] == 3 * (2 + 1 + 2 + 1) + 3 * 4 + 3 * 3
    # per pass: 1 cycle of filter fill + h_k first-window ifmap words (S = 1) + h_k drain
    assert c["ramp_cycles"] == (1 + 3 + 3) * 2 + (1 + 2 + 2) * 2


def test_jit_matches_eager():
    layer, arch, mp = CASES[5]
    x, w = _data(layer, 11)
    o1, c1 = simulate_rs(layer, mp, x, w, arch)
    o2, c2 = jax.jit(simulate_rs, static_argnums=(0, 1, 4))(layer, mp, x, w, arch)
    np.testing.assert_array_equal(np.asarray(o1), np.asarray(o2))
    assert {k: int(v) for k, v in c1.items()} == {k: int(v) for k, v in c2.items()}


def test_vmap_over_data():
    layer, arch, mp = CASES[4]
    xs, ws = zip(*[_data(layer, s, zeros=0.1 * s) for s in range(3)])
    xs, ws = jnp.stack(xs), jnp.stack(ws)
    outs, counts = simulate_rs_batch(layer, mp, xs, ws, arch)
    outs2, counts2 = jax.vmap(lambda a, b: simulate_rs(layer, mp, a, b, arch))(xs, ws)
    np.testing.assert_array_equal(np.asarray(outs), np.asarray(outs2))
    for b in range(3):
        np.testing.assert_array_equal(np.asarray(outs[b]), np.asarray(_ref(layer, xs[b], ws[b])))
        assert int(counts["macs_zero_ifmap"][b]) == _zero_macs_brute(layer, xs[b])
        assert int(counts2["macs_zero_ifmap"][b]) == _zero_macs_brute(layer, xs[b])
        assert int(counts["macs"][b]) == layer.macs
    sim = make_simulator(layer, mp, arch, jit=False)
    o, _ = sim(xs[1], ws[1])
    np.testing.assert_array_equal(np.asarray(o), np.asarray(outs[1]))


def test_counts_do_not_depend_on_data_except_zero_macs():
    layer, arch, mp = CASES[1]
    _, c1 = simulate_rs(layer, mp, *_data(layer, 1, zeros=0.0), arch)
    _, c2 = simulate_rs(layer, mp, *_data(layer, 2, zeros=0.9), arch)
    for k in COUNT_KEYS:
        assert int(c1[k]) == int(c2[k]), k
    assert int(c1["macs_zero_ifmap"]) < int(c2["macs_zero_ifmap"])


@pytest.mark.parametrize("mapping,arch,msg", [
    (M_(3, 4, p=12, q=12, m=12), A12x14, "filter spad"),     # p*q*S = 432 > 224
    (M_(3, 4, q=5), A12x14, "ifmap spad"),                    # q*S = 15 > 12
    (M_(3, 4, p=25, m=25), A12x14, "psum spad"),              # p = 25 > 24
    (M_(3, 4, r=2, t=1), A3x4, "PE array"),                   # 1 set of 3x4 fits a 3x4 array
    (M_(4, 4), A12x14, "mapping.h"),                          # h <= min(R, pe_rows)
    (M_(3, 9), A12x14, "mapping.e"),                          # e <= min(E=8, pe_cols)
    (M_(3, 4, p=2, m=3), A12x14, "multiple of p\\*t"),
    (M_(3, 4, n=2), A12x14, "mapping.n"),
    (M_(3, 8), EyerissV1(glb_banks=1, glb_bank_words=64), "GLB"),
])
def test_infeasible_mapping_raises(mapping, arch, msg):
    layer = L("big", C=16, M=32, H=10, W=10)
    with pytest.raises(ValueError, match=msg):
        check_mapping(layer, mapping, arch)
    with pytest.raises(ValueError, match=msg):
        simulate_rs(layer, mapping, jnp.zeros((1, 16, 10, 10)), jnp.zeros((32, 16, 3, 3)), arch)


def test_default_mapping():
    layer = L("d", C=2, M=2, H=20, W=20)
    mp = default_mapping(layer, A12x14)
    assert (mp.h, mp.e, mp.r, mp.t, mp.p, mp.q, mp.n, mp.m) == (3, 14, 1, 1, 1, 1, 1, 1)
    small_glb = EyerissV1(glb_banks=2, glb_bank_words=64)     # 14 and 13 wide blocks do not fit
    mp = default_mapping(layer, small_glb)
    assert mp.e < 14
    check_mapping(layer, mp, small_glb)
    with pytest.raises(ValueError, match="no feasible"):
        default_mapping(layer, EyerissV1(glb_banks=1, glb_bank_words=8))
