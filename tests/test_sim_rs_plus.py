"""Functional RS+ simulation of Eyeriss v2 through the HM-NoC (eyejax.sim.rs_plus_sim): exact
outputs against lax.conv, per-PE operand checks, count invariants, NoC counts against a walk of the
contract's placement rules, hand-worked mesh examples, zero MACs and sparse cycles against brute
force, column strip sets (oc) against the same mapping on whole rows, feasibility errors, jit and
vmap."""
import itertools

import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
import jax
import jax.numpy as jnp

from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.dataflow.mapping import COUNT_KEYS
from eyejax.sim import rs_plus_sim
from eyejax.sim.rs_plus_sim import (CLUSTER_KEYS, SIM_KEYS_V2, OperandError, RSPlusMapping,
                                    check_mapping_v2, default_mapping_v2, is_feasible_v2,
                                    make_simulator_v2, simulate_rs_plus, simulate_rs_plus_batch,
                                    simulate_rs_plus_counts)
from eyejax.workload.layer import Layer


def V2(cr, cc, pr, pc, **kw):
    return EyerissV2(cluster_rows=cr, cluster_cols=cc, cluster_pe_rows=pr, cluster_pe_cols=pc, **kw)


A222 = V2(2, 2, 2, 2)        # 2×2 clusters of 2×2 PEs
A3234 = V2(3, 2, 3, 4)       # 3×2 clusters of 3×4 PEs
A1423 = V2(1, 4, 2, 3)       # 1×4 clusters of 2×3 PEs
A11 = V2(1, 1, 3, 4)         # one cluster: no mesh hops
ADEF = EyerissV2()           # 8×2 clusters of 3×4 PEs
A4234 = V2(4, 2, 3, 4)       # 4×2 clusters of 3×4 PEs
A2234 = V2(2, 2, 3, 4)       # 2×2 clusters of 3×4 PEs


def L(name, N=1, C=1, M=1, H=5, W=5, R=3, S=3, U=1, P=0, G=1, kind="CONV"):
    return Layer(name, kind, N=N, C=C, M=M, H=H, W=W, R=R, S=S, stride=U, pad=P, groups=G)


def M_(h, e, r=1, t=1, g=1, b=1, p=1, q=1, n=1, m=None, o=1, oc=1):
    return RSPlusMapping(h=h, e=e, r=r, t=t, g=g, b=b, p=p, q=q, n=n, m=p * t if m is None else m,
                         o=o, oc=oc)


# (layer, arch, mapping or None for default_mapping_v2)
CASES = [
    (L("conv3x3_p1", C=3, M=4, H=8, W=8, P=1), A3234, None),
    (L("conv_pqrt", C=4, M=6, H=7, W=6, P=1), A3234, M_(3, 2, r=2, t=2, p=2, q=2, m=4)),
    (L("grouped_g2_b2", N=3, C=4, M=6, H=7, W=6, P=1, G=2), A3234, M_(3, 1, t=2, g=2, b=2, p=2)),
    (L("depthwise_g4", C=4, M=4, H=6, W=7, P=1, G=4, kind="DWCONV"), A222, M_(3, 1, g=4)),
    (L("depthwise_s2_b2", N=2, C=6, M=6, H=9, W=9, U=2, P=1, G=6, kind="DWCONV"), A1423,
     M_(3, 2, g=2, b=2)),
    (L("fc", N=4, C=5, M=6, H=3, W=4, R=3, S=4, kind="FC"), A3234, M_(3, 1, r=3, t=2, b=2, q=2)),
    (L("fc_1x1_b4", N=5, C=8, M=5, H=1, W=1, R=1, S=1, kind="FC"), A222,
     M_(1, 1, r=2, t=2, b=4, p=2, q=2, m=4)),
    (L("fold_R5_on_4pe", C=2, M=2, H=9, W=7, R=5, S=3, P=1), A222, M_(4, 1, r=2, t=2)),
    (L("fold_stride2", M=2, H=11, W=9, R=5, S=5, U=2, P=2), A1423, M_(5, 1, t=2)),
    (L("fold_R7_on_4pe", C=2, M=3, H=9, W=3, R=7, S=1), A222, M_(4, 1, t=2, b=1, q=2, m=2)),
    (L("stride3_R<U", N=2, C=2, M=3, H=10, W=11, R=2, S=2, U=3), A3234, M_(2, 3, r=2, b=2)),
    (L("partial_all", N=3, C=5, M=5, H=9, W=8, R=5, S=3, P=1), A4234,
     M_(5, 2, r=2, b=2, p=2, q=2, m=4)),
    (L("E_wide", C=2, M=2, H=16, W=6), A1423, M_(3, 2, t=2)),
    (L("batch_b3_n2", N=5, C=2, M=2, H=5, W=5), A3234, M_(3, 2, b=3, n=2)),
    (L("grouped3", C=6, M=9, H=6, W=6, P=1, G=3), A222, M_(3, 1, g=3, p=2, q=2)),
    (L("group_tiles_partial", C=5, M=5, H=6, W=5, P=1, G=5, kind="DWCONV"), A1423, M_(3, 2, g=3)),
    (L("one_by_one", N=2, C=4, M=3, H=4, W=5, R=1, S=1), A1423,
     M_(1, 2, r=3, t=3, q=1, m=3)),
    (L("one_by_one_b2", N=2, C=4, M=3, H=4, W=5, R=1, S=1), A1423,
     M_(1, 2, t=3, b=2, q=2, m=3)),
    (L("tiny_pad", C=2, M=2, H=2, W=2, P=1), A222, None),
    (L("one_cluster", N=2, C=3, M=4, H=6, W=6, P=1), A11, M_(3, 1, r=2, t=2, b=1)),
    (L("default_arch", N=2, C=4, M=8, H=8, W=8, P=1), ADEF,
     M_(3, 4, r=2, t=4, b=2, p=2, q=2, m=8)),
    (L("depthwise_default_arch", C=16, M=16, H=8, W=8, P=1, G=16, kind="DWCONV"), ADEF,
     M_(3, 4, g=16)),
    (L("iact_broadcast", M=8, H=6, W=6), A222, M_(3, 1, t=4, p=2)),
    (L("filter_broadcast", N=4, H=6, W=6), A222, M_(3, 1, b=4)),
    (L("rect_filter_s2", C=2, M=2, H=8, W=9, R=3, S=2, U=2), A3234, M_(3, 2, t=2, q=2)),
    (L("m_big", C=2, M=5, H=5, W=5), A1423, M_(3, 2, p=2, m=6)),
    (L("all_dims_default", N=3, C=6, M=4, H=7, W=6, U=2, P=1, G=2), A3234, None),
]
IDS = [c[0].name for c in CASES]

# column strip sets: each strip of e ofmap rows cut into oc strips of F/oc columns side by side
OC_CASES = [
    (L("oc2_s1_p0", C=2, M=3, H=7, W=8), A3234, M_(3, 1, t=3, oc=2)),
    (L("oc3_s1_p1_rt", N=2, C=3, M=4, H=6, W=9, P=1), A3234, M_(3, 2, r=2, t=2, oc=3)),
    (L("oc2_s2_p1_o5_b2", N=2, C=2, M=2, H=9, W=11, U=2, P=1), A4234, M_(3, 1, b=2, o=5, oc=2)),
    (L("oc3_s2_p0", C=2, M=2, H=11, W=13, U=2), A3234, M_(3, 1, t=2, q=2, oc=3)),
    (L("oc2_s2_S2_touching", C=2, M=2, H=8, W=9, R=3, S=2, U=2), A3234, M_(3, 2, t=2, q=2, oc=2)),
    (L("oc2_1x1", N=2, C=4, M=3, H=4, W=6, R=1, S=1), A1423, M_(1, 2, t=3, q=2, oc=2)),
    (L("oc3_1x1_b2_n2", N=4, C=3, M=2, H=3, W=6, R=1, S=1), A3234,
     M_(1, 3, t=2, b=2, n=2, oc=3)),
    (L("oc2_grouped", C=4, M=6, H=6, W=8, P=1, G=2), A3234, M_(3, 1, t=2, g=2, p=2, oc=2)),
    (L("oc2_depthwise_g3_of_4", C=4, M=4, H=6, W=6, P=1, G=4, kind="DWCONV"), A3234,
     M_(3, 1, g=3, oc=2)),
    (L("oc2_o2_remainders", N=3, C=5, M=5, H=10, W=8, P=1), A4234,
     M_(3, 1, r=2, t=2, b=2, p=2, q=2, m=4, o=2, oc=2)),
    (L("oc2_fold_R5", C=2, M=2, H=9, W=10, R=5, S=3, P=1), A222, M_(4, 1, t=2, oc=2)),
    (L("oc4_n2", N=2, C=2, M=2, H=5, W=10), A2234, M_(3, 1, t=2, n=2, oc=4)),
    (L("oc2_default_arch", N=2, C=4, M=8, H=8, W=8, P=1), ADEF,
     M_(3, 4, r=2, t=4, p=2, q=2, m=8, oc=2)),
]
OC_IDS = [c[0].name for c in OC_CASES]
ALL_CASES, ALL_IDS = CASES + OC_CASES, IDS + OC_IDS


def _data(layer, seed=0, lo=-3, hi=4):
    rng = np.random.default_rng(seed)
    x = rng.integers(lo, hi, (layer.N, layer.C, layer.H, layer.W))
    w = rng.integers(lo, hi, (layer.M, layer.C // layer.groups, layer.R, layer.S))
    return jnp.asarray(x, jnp.int64), jnp.asarray(w, jnp.int64)


def _conv(layer, x, w):
    return jax.lax.conv_general_dilated(x, w, (layer.stride,) * 2, [(layer.pad, layer.pad)] * 2,
                                        feature_group_count=layer.groups)


def _mp(layer, arch, mp):
    return default_mapping_v2(layer, arch) if mp is None else mp


def _cd(a, b):
    return -(-a // b)


def _tiles(d, t):
    return [(k * t, min(t, d - k * t)) for k in range(_cd(d, t))]


# --------------------------------------------------------------------------------------------
# A walk of the contract's placement rules (slot formula, destination sets as the contract lists
# them), independent of the simulation's tag matching: router transfers, hops, per-cluster totals.
# --------------------------------------------------------------------------------------------
def _contract_noc(layer, mp, arch):
    G, N = layer.groups, layer.N
    Cg, Mg = layer.C // G, layer.M // G
    E, F, R, S, U = layer.E, layer.F, layer.R, layer.S, layer.stride
    h, e, r, t, g, b, p, q, n, m = (getattr(mp, k) for k in "hertgbpqnm")
    o, oc = getattr(mp, "o", 1), getattr(mp, "oc", 1)
    f = F // oc                                    # ofmap columns per column strip
    Wf = (f - 1) * U + S                           # a column strip's padded ifmap columns
    mesh_rows = int(arch.cluster_rows)
    k = int(arch.cluster_pe_rows * arch.cluster_pe_cols) // (h * e)
    ncl = mesh_rows * int(arch.cluster_cols)
    # the layer's slot layout: its first pass's set counts (strip sets: row × column strips)
    T0, R0, B0 = min(t, _cd(Mg, p)), min(r, _cd(Cg, q)), min(b, _cd(N, n))
    O0 = min(o, _cd(E, e)) * oc
    out = {f"{a}_{d}": 0 for a in ("router", "hops") for d in ("ifmap", "filter", "psum")}
    per = {d: np.zeros(ncl, np.int64) for d in ("ifmap", "filter", "psum")}
    modes = None

    def dist(d, a, c):
        """Clusters numbered down the columns; weights move only along a row (another row: the
        cluster's own off-chip input), iacts and psums the Manhattan way."""
        (ac, ar), (cc, cr) = divmod(a, mesh_rows), divmod(c, mesh_rows)
        if d == "filter":
            return abs(ac - cc) if ar == cr else 0
        return abs(ac - cc) + abs(ar - cr)

    def add(d, slots, words, reduction=False):
        D = sorted({s // k for s in slots})
        out[f"router_{d}"] += len(D) * words
        out[f"hops_{d}"] += words * sum(dist(d, a, c) for a, c in zip(D, D[1:]))
        if reduction:
            for c in D[1:] + D[-1:]:
                per[d][c] += words
        else:
            for c in D:
                per[d][c] += words

    for _, g_k in _tiles(G, g):
        for _, z in _tiles(N, n * b):
            b_k = _cd(z, n)
            for _, wy in _tiles(E, e * o):
                # strip set oi: row strip oi // oc (its e_s rows), column strip oi % oc
                e_ss = [e_s for _, e_s in _tiles(wy, e) for _ in range(oc)]
                o_k = len(e_ss)
                for _, m_t in _tiles(Mg, m):
                    for _, y in _tiles(Cg, q * r):
                        for _, h_k in _tiles(R, h):
                            for _, x in _tiles(m_t, p * t):
                                te, re = _cd(x, p), _cd(y, q)
                                sets = g_k * te * re * b_k * o_k

                                def slot(gi, ti, ri, bi, oi):
                                    return (((gi * T0 + ti) * R0 + ri) * B0 + bi) * O0 + oi
                                nf = [min(p, x - ti * p) for ti in range(te)]
                                nc = [min(q, y - ri * q) for ri in range(re)]
                                ni = [min(n, z - bi * n) for bi in range(b_k)]
                                for gi in range(g_k):
                                    for ti in range(te):
                                        for ri in range(re):
                                            add("filter", [slot(gi, ti, ri, bi, oi)
                                                           for bi in range(b_k)
                                                           for oi in range(o_k)],
                                                nf[ti] * nc[ri] * h_k * S)
                                    for ri in range(re):
                                        for bi in range(b_k):
                                            for oi, e_s in enumerate(e_ss):
                                                rows = len({i + U * j for i in range(h_k)
                                                            for j in range(e_s)})
                                                add("ifmap", [slot(gi, ti, ri, bi, oi)
                                                              for ti in range(te)],
                                                    ni[bi] * nc[ri] * rows * Wf)
                                    for ti in range(te):
                                        for bi in range(b_k):
                                            for oi, e_s in enumerate(e_ss):
                                                add("psum", [slot(gi, ti, ri, bi, oi)
                                                             for ri in range(re)],
                                                    ni[bi] * nf[ti] * e_s * f, reduction=True)
                                if modes is None:
                                    xs = b_k * o_k        # image and strip sets share weights
                                    wm = 0 if xs == 1 else 3 if xs == sets else 1
                                    im = (0 if te == 1 else 3 if te == sets
                                          else 1 if re * xs == 1 else 2)
                                    pm = 0 if re == 1 else 1 if xs == 1 else 2
                                    modes = dict(noc_mode_ifmap=im, noc_mode_filter=wm,
                                                 noc_mode_psum=pm)
    out.update(modes)
    for d in per:
        out[f"router_cluster_{d}"] = per[d]
    return out


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------
def test_enough_cases():
    assert len(CASES) >= 20
    grids = {(int(a.cluster_rows), int(a.cluster_cols), int(a.cluster_pe_rows),
              int(a.cluster_pe_cols)) for _, a, _ in CASES}
    assert len(grids) >= 4
    mps = [_mp(layer, a, mp) for layer, a, mp in CASES]
    assert any(mp.g > 1 for mp in mps) and any(mp.b > 1 for mp in mps)
    assert any(layer.R > int(a.cluster_pe_rows * a.cluster_pe_cols) for layer, a, _ in CASES)
    assert any(layer.stride > 1 for layer, _, _ in CASES)
    assert any(layer.type.value == "FC" for layer, _, _ in CASES)


@pytest.mark.parametrize("layer,arch,mapping", ALL_CASES, ids=ALL_IDS)
def test_output_equals_lax_conv(layer, arch, mapping):
    mp = _mp(layer, arch, mapping)
    x, w = _data(layer)
    out, counts = simulate_rs_plus(layer, mp, x, w, arch)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(_conv(layer, x, w)))
    assert set(SIM_KEYS_V2 + CLUSTER_KEYS) == set(counts)
    assert all(counts[k].dtype == jnp.int64 for k in counts)
    # macs_zero: every MAC of the layer runs exactly once, so brute force over the layer's MACs
    xp = np.pad(np.asarray(x), ((0, 0), (0, 0), (layer.pad,) * 2, (layer.pad,) * 2))
    U, G = layer.stride, layer.groups
    Cg, Mg = layer.C // G, layer.M // G
    zero = 0
    for gi in range(G):
        for r in range(layer.R):
            for s in range(layer.S):
                win = xp[:, gi * Cg:(gi + 1) * Cg, r:r + U * (layer.E - 1) + 1:U,
                         s:s + U * (layer.F - 1) + 1:U]                      # [N, Cg, E, F]
                wz = np.asarray(w)[gi * Mg:(gi + 1) * Mg, :, r, s]           # [Mg, Cg]
                nz = np.einsum("nchw,mc->", (win != 0).astype(np.int64),
                               (wz != 0).astype(np.int64))
                zero += layer.N * Mg * Cg * layer.E * layer.F - nz
    assert int(counts["macs_zero"]) == zero


# --------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer,arch,mapping", ALL_CASES, ids=ALL_IDS)
def test_count_invariants(layer, arch, mapping):
    mp = _mp(layer, arch, mapping)
    c = simulate_rs_plus_counts(layer, mp, arch)
    assert c["macs"] == layer.macs
    for k in ("rf_ifmap_reads", "rf_filter_reads", "rf_psum_reads", "rf_psum_writes"):
        assert c[k] == c["macs"]
    assert c["noc_filter"] == c["rf_filter_writes"]
    assert c["noc_ifmap"] == c["rf_ifmap_writes"]
    assert c["dram_psum_writes"] == layer.N * layer.M * layer.E * layer.F
    assert c["dram_psum_reads"] == c["glb_filter_reads"] == c["glb_filter_writes"] == 0
    # every distinct word of a pass takes at least one router transfer
    assert c["router_filter"] >= c["dram_filter_reads"]
    assert c["router_ifmap"] >= c["glb_ifmap_reads"]
    assert c["router_psum"] >= c["glb_psum_writes"]
    # each cluster of D takes a word's delivery; hops at least |D| - 1 per word (not for weights:
    # a weight reaches a cluster of another row from that cluster's own off-chip input)
    assert 0 <= c["hops_filter"] <= (c["router_filter"] - c["dram_filter_reads"]) * int(arch.cluster_cols)
    assert c["hops_ifmap"] >= c["router_ifmap"] - c["glb_ifmap_reads"]
    assert c["hops_psum"] >= c["router_psum"] - c["glb_psum_writes"]
    rates = {"ifmap": (arch.iact_routers * arch.iact_port_bits, arch.data_bits),
             "filter": (arch.weight_routers * arch.weight_port_bits, arch.data_bits),
             "psum": (arch.psum_routers * arch.psum_port_bits, arch.psum_bits)}
    for d, (num, den) in rates.items():
        pc = c[f"router_cluster_{d}"]
        assert pc.shape == (int(arch.cluster_rows * arch.cluster_cols),)
        assert int(pc.sum()) == c[f"router_{d}"]
        assert c[f"noc_cycles_{d}"] == _cd(int(pc.max()) * int(den), int(num))
    clusters = int(arch.cluster_rows * arch.cluster_cols)
    if clusters == 1:
        for d in ("ifmap", "filter", "psum"):
            assert c[f"hops_{d}"] == 0
        assert c["router_filter"] == c["dram_filter_reads"]
        assert c["router_ifmap"] == c["glb_ifmap_reads"]
        assert c["router_psum"] == c["glb_psum_writes"]
    # active PEs fit the array; passes count group tiles once
    assert c["active_pes"] <= int(arch.cluster_pe_rows * arch.cluster_pe_cols) * clusters
    G, N = layer.groups, layer.N
    assert c["passes"] == (_cd(G, mp.g) * _cd(N, mp.n * mp.b) * _cd(layer.E, mp.e * mp.o)
                           * _cd(layer.R, mp.h) * _cd(layer.C // G, mp.q * mp.r)
                           * _cd(layer.M // G, mp.p * mp.t))


@pytest.mark.parametrize("layer,arch,mapping", ALL_CASES, ids=ALL_IDS)
def test_noc_counts_follow_contract_placement(layer, arch, mapping):
    """Router transfers, hops, per-cluster totals and modes from tag-matched delivery equal a direct
    walk of the contract's slot formula and destination-set rules."""
    mp = _mp(layer, arch, mapping)
    c = simulate_rs_plus_counts(layer, mp, arch)
    ref = _contract_noc(layer, mp, arch)
    for k, v in ref.items():
        np.testing.assert_array_equal(np.asarray(c[k]), np.asarray(v), err_msg=k)


def test_modes_broadcast_when_one_kind_of_set():
    c = simulate_rs_plus_counts(*[CASES[IDS.index("iact_broadcast")][i] for i in (0, 2, 1)])
    assert (c["noc_mode_ifmap"], c["noc_mode_filter"], c["noc_mode_psum"]) == (3, 0, 0)
    c = simulate_rs_plus_counts(*[CASES[IDS.index("filter_broadcast")][i] for i in (0, 2, 1)])
    assert (c["noc_mode_ifmap"], c["noc_mode_filter"], c["noc_mode_psum"]) == (0, 3, 0)
    # r and b > 1: psums interleaved (stride b_eff), iacts interleaved, weights grouped
    layer = L("ib", N=2, C=2, M=2, H=5, W=5)
    c = simulate_rs_plus_counts(layer, M_(3, 1, r=2, t=2, b=2), A3234)
    assert (c["noc_mode_ifmap"], c["noc_mode_filter"], c["noc_mode_psum"]) == (2, 1, 2)
    c = simulate_rs_plus_counts(layer, M_(3, 1, r=2, t=2, b=1), A3234)
    assert (c["noc_mode_ifmap"], c["noc_mode_filter"], c["noc_mode_psum"]) == (2, 0, 1)
    c = simulate_rs_plus_counts(layer, M_(3, 1, r=1, t=2, b=1, g=1), A3234)
    assert c["noc_mode_ifmap"] == 3


def test_hand_worked_mesh_examples():
    """2×2 clusters of 2×2 PEs, h = e = 2: one set per cluster; clusters are numbered down the
    columns, 0..3 at (row, column) (0,0), (1,0), (0,1), (1,1)."""
    # b = 4 image sets: each weight word goes to all four clusters, D = [0, 1, 2, 3]; weights move
    # only along rows, and each step changes row: every cluster takes it from its own off-chip
    # input, no hop
    layer = L("w4", N=4, H=3, W=3, R=2, S=2)                # E = F = 2, one pass
    c = simulate_rs_plus_counts(layer, M_(2, 2, b=4), A222)
    assert c["passes"] == 1 and c["dram_filter_reads"] == 4
    assert (c["router_filter"], c["hops_filter"]) == (16, 0)
    assert c["router_cluster_filter"].tolist() == [4, 4, 4, 4]
    assert c["noc_cycles_filter"] == 1                       # ceil(4 · 8 / (3 · 24))
    assert c["noc_filter"] == 4 * 4 * 2                      # 4 sets × 4 words × e_s = 2 PEs
    assert c["hops_ifmap"] == c["hops_psum"] == 0
    assert c["noc_mode_filter"] == 3
    # r = 2 channel sets: each psum word chains down column 0, cluster 0 → 1 → GLB(1): 1 hop
    layer = L("p2", C=2, H=3, W=3, R=2, S=2)
    c = simulate_rs_plus_counts(layer, M_(2, 2, r=2), A222)
    assert c["glb_psum_writes"] == 4
    assert (c["router_psum"], c["hops_psum"]) == (8, 4)
    assert c["router_cluster_psum"].tolist() == [0, 8, 0, 0]
    assert c["noc_psum"] == 4 * (2 * 2 - 1 + 1)              # 3 PE-to-PE + 1 to the GLB
    assert c["noc_mode_psum"] == 1
    assert c["router_filter"] == c["dram_filter_reads"] == 8 and c["hops_filter"] == 0
    # r = 4 would chain from column 0 into column 1: psum routers link only vertically
    with pytest.raises(ValueError, match="psum chain"):
        simulate_rs_plus_counts(L("p4", C=4, H=3, W=3, R=2, S=2), M_(2, 2, r=4), A222)
    # 1×4 clusters of 2×3 PEs, h = 2, e = 1: k = 3 sets per cluster; b = 4 image sets fill
    # slots 0..3 in clusters 0, 0, 0, 1: D = [0, 1] (repeats merged), 1 hop
    layer = L("row", N=4, H=3, W=3, R=2, S=2)
    c = simulate_rs_plus_counts(layer, M_(2, 1, b=4), A1423)
    words = c["dram_filter_reads"]
    assert (c["router_filter"], c["hops_filter"]) == (2 * words, words)


@pytest.mark.parametrize("oc", [1, 2, 3])
def test_cycles_dense(oc):
    """Dense cycles: each pass takes its busiest PE: n_set·ceil(p_eff/2)·q_eff·S·f (f = F/oc,
    the columns of a column strip); the ramp does not depend on oc."""
    layer = L("cyc", N=3, C=3, M=5, H=6, W=6, P=1)
    mp = M_(3, 2, r=1, t=2, b=2, p=3, q=2, n=2, m=6, oc=oc)
    c = simulate_rs_plus_counts(layer, mp, A3234)
    total = ramp = 0
    for _, z in _tiles(3, 4):
        for _ in _tiles(layer.E, 2):
            for _, y in _tiles(3, 2):
                for _, x in _tiles(5, 6):
                    total += min(2, z) * _cd(min(3, x), 2) * min(2, y) * 3 * (layer.F // oc)
                    # weight spad fill in SIMD-pair entries + 7-stage pipeline fill + h_k = 3
                    ramp += _cd(min(3, x), 2) * min(2, y) * 3 + (7 - 1) + 3
    assert c["compute_cycles"] == total
    assert c["ramp_cycles"] == ramp


# --------------------------------------------------------------------------------------------
# Sparse cycles against a brute force over the contract's PE assignment
# --------------------------------------------------------------------------------------------
def _sparse_cycles_ref(layer, mp, arch, x, w):
    x, w = np.asarray(x), np.asarray(w)
    G, N = layer.groups, layer.N
    Cg, Mg = layer.C // G, layer.M // G
    E, F, R, S, U, P = layer.E, layer.F, layer.R, layer.S, layer.stride, layer.pad
    macs = int(arch.macs_per_pe)
    f = F // mp.oc                       # a column strip's ofmap columns
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    total = 0
    for g0, g_k in _tiles(G, mp.g):
        for n0, z in _tiles(N, mp.n * mp.b):
            for st0, wy in _tiles(E, mp.e * mp.o):
                # strip sets: (first ofmap row, rows, first ofmap column)
                ss = [(st0 + s0, e_s, ci * f) for s0, e_s in _tiles(wy, mp.e)
                      for ci in range(mp.oc)]
                for m0, m_t in _tiles(Mg, mp.m):
                    for c0, y in _tiles(Cg, mp.q * mp.r):
                        for f0, h_k in _tiles(R, mp.h):
                            for k0, xx in _tiles(m_t, mp.p * mp.t):
                                slow = 0
                                for gi, (ti0, _), (ci0, nc), (bi0, ni), (o0, e_s, col0) in (
                                        itertools.product(range(g_k), _tiles(xx, mp.p),
                                                          _tiles(y, mp.q), _tiles(z, mp.n), ss)):
                                    for i in range(h_k):
                                        for j in range(e_s):
                                            gg = g0 + gi
                                            ks = gg * Mg + m0 + k0 + ti0 + np.arange(
                                                min(mp.p, xx - ti0))
                                            cs = c0 + ci0 + np.arange(nc)
                                            row = (o0 + j) * U + f0 + i
                                            wc = w[ks][:, cs, f0 + i, :]  # [p, q, S]
                                            col = -(-(wc != 0).sum(0) // macs)
                                            cyc = 0
                                            for im in range(n0 + bi0, n0 + bi0 + ni):
                                                for fc in range(col0, col0 + f):
                                                    a = xp[im, gg * Cg + cs, row,
                                                           fc * U:fc * U + S]
                                                    cyc += int(((a != 0) * col).sum())
                                            slow = max(slow, cyc)
                                total += slow
    return total


SPARSE_CASES = [CASES[IDS.index(k)] for k in ("conv_pqrt", "grouped_g2_b2", "fold_R5_on_4pe",
                                              "partial_all", "batch_b3_n2", "m_big")] + [
    OC_CASES[OC_IDS.index(k)] for k in ("oc3_s1_p1_rt", "oc2_s2_p1_o5_b2", "oc2_o2_remainders",
                                        "oc4_n2")]


@pytest.mark.parametrize("layer,arch,mapping", SPARSE_CASES, ids=[c[0].name for c in SPARSE_CASES])
def test_sparse_cycles(layer, arch, mapping):
    mp = _mp(layer, arch, mapping)
    rng = np.random.default_rng(7)
    x, w = _data(layer, seed=3)
    x = x * jnp.asarray(rng.random(x.shape) < 0.5)
    w = w * jnp.asarray(rng.random(w.shape) < 0.4)
    out, c = simulate_rs_plus(layer, mp, x, w, arch, sparse=True)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(_conv(layer, x, w)))
    assert int(c["compute_cycles"]) == _sparse_cycles_ref(layer, mp, arch, x, w)
    dense = simulate_rs_plus_counts(layer, mp, arch)
    assert int(c["compute_cycles"]) <= dense["compute_cycles"]
    # without zeros the sparse PE takes the dense time (pads are zero iacts: they are skipped)
    x1, w1 = _data(layer, seed=4, lo=1, hi=3)
    _, c1 = simulate_rs_plus(layer, mp, x1, w1, arch, sparse=True)
    assert int(c1["compute_cycles"]) == _sparse_cycles_ref(layer, mp, arch, x1, w1)
    if layer.pad == 0:
        assert int(c1["compute_cycles"]) == dense["compute_cycles"]
    elif mp.oc < 3:
        # every PE's window covers a pad column; a middle column strip's need not (oc >= 3)
        assert int(c1["compute_cycles"]) < dense["compute_cycles"]
    else:
        assert int(c1["compute_cycles"]) <= dense["compute_cycles"]
    # all-zero weights: nothing to compute
    _, c0 = simulate_rs_plus(layer, mp, x1, jnp.zeros_like(w1), arch, sparse=True)
    assert int(c0["compute_cycles"]) == 0 and int(c0["macs_zero"]) == dense["macs"]


# --------------------------------------------------------------------------------------------
# Operand checks: a wrong delivery is caught
# --------------------------------------------------------------------------------------------
def _swap_destinations(monkeypatch, nth, pick):
    """Make the simulation's `nth` multicast (1-based) swap the destinations of the two messages
    `pick(tags, match)` returns, on a fresh schedule."""
    real = rs_plus_sim.multicast
    calls = []

    def swapped(tags, ids):
        match = real(tags, ids)
        calls.append(1)
        if len(calls) == nth:
            a, b = pick(tags, match)
            match[[a, b]] = match[[b, a]]
        return match

    rs_plus_sim._SCHEDULES.clear()
    monkeypatch.setattr(rs_plus_sim, "multicast", swapped)
    return real


def test_wrong_delivery_raises(monkeypatch):
    layer, arch, mp = CASES[IDS.index("conv_pqrt")]
    # the first pass's filters (its first multicast): a row of filter set 0 and a row of filter
    # set 1 swap destinations; every PE receives the right number of rows, but some the wrong
    # filter
    real = _swap_destinations(monkeypatch, 1,
                              lambda tags, _: (0, int(np.nonzero(tags[:, 1] != tags[0, 1])[0][0])))
    with pytest.raises(OperandError):
        simulate_rs_plus_counts(layer, mp, arch)

    def drop_one(tags, ids):
        match = real(tags, ids)
        match[0, np.argmax(match[0])] = False
        return match

    monkeypatch.setattr(rs_plus_sim, "multicast", drop_one)
    with pytest.raises(AssertionError):
        simulate_rs_plus_counts(layer, mp, arch)
    monkeypatch.undo()
    rs_plus_sim._SCHEDULES.clear()
    simulate_rs_plus_counts(layer, mp, arch)


def test_check_operands_duplicates_and_channel_mismatch():
    # one PE, p = 1, q = 2, n = 1: weights (filter 0, channels 0 and 1, row 0), iacts (image 0,
    # channels 0 and 1, row 0)
    fdesc = np.array([[[[0, 0, 0], [0, 1, 0]]]])
    idesc = np.array([[[[0, 0, 0], [0, 1, 0]]]])
    need = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]])
    rs_plus_sim._check_operands(fdesc, idesc, need)
    with pytest.raises(OperandError):     # iact of the wrong channel in slot 1
        rs_plus_sim._check_operands(fdesc, np.array([[[[0, 0, 0], [0, 0, 0]]]]), need)
    with pytest.raises(OperandError):     # the same weight twice
        rs_plus_sim._check_operands(np.array([[[[0, 0, 0], [0, 0, 0]]]]),
                                    np.array([[[[0, 0, 0], [0, 0, 0]]]]), need)
    with pytest.raises(OperandError):     # a missing iact
        rs_plus_sim._check_operands(fdesc, np.array([[[[0, 0, 0], [-1, -1, -1]]]]), need)
    with pytest.raises(OperandError):     # wrong ifmap row
        rs_plus_sim._check_operands(fdesc, np.array([[[[0, 0, 1], [0, 1, 1]]]]), need)


# --------------------------------------------------------------------------------------------
# Feasibility
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mapping,arch,needle", [
    (M_(4, 1), A3234, "mapping.h"),     # h above min(R, cluster PEs) = 3
    (M_(3, 5), A3234, "cluster PEs"),
    (M_(3, 1, q=6), A3234, "iact spad"),
    (M_(3, 1, p=13, q=5, m=13), A3234, "weight spad"),
    (M_(3, 1, p=40, m=40), A3234.replace(weight_spad_words=4096), "psum spad"),
    (M_(3, 2, r=2, t=2, g=1, b=4), A3234, "set slots"),
    (M_(3, 1, p=2, m=3), A3234, "multiple of p"),
    (M_(3, 1, n=3), A3234, "batch"),
    (M_(3, 2, b=2, q=2, r=2), A3234.replace(iact_glb_bank_bits=64), "iact GLB"),
    (M_(3, 2, t=2, b=2, p=2, m=4), A3234.replace(psum_glb_bank_bits=64, iact_glb_bank_bits=10 ** 6),
     "psum GLB"),
])
def test_infeasible_mapping_raises(mapping, arch, needle):
    layer = L("f", N=2, C=4, M=4, H=8, W=8, P=1)
    with pytest.raises(ValueError, match=needle):
        check_mapping_v2(layer, mapping, arch)
    x, w = _data(layer)
    with pytest.raises(ValueError, match=needle):
        simulate_rs_plus(layer, mapping, x, w, arch)


def test_default_mapping_fills_slots():
    layer = L("dw", C=8, M=8, H=6, W=6, P=1, G=8, kind="DWCONV")
    mp = default_mapping_v2(layer, A222)
    assert mp.g == 4 and check_mapping_v2(layer, mp, A222)
    with pytest.raises(ValueError, match="no feasible"):
        default_mapping_v2(L("wide", H=20, W=20, R=3, S=20), A222)


# --------------------------------------------------------------------------------------------
# Column strip sets (oc)
# --------------------------------------------------------------------------------------------
def test_enough_oc_cases():
    assert len(OC_CASES) >= 10 and all(mp.oc > 1 for _, _, mp in OC_CASES)
    assert {mp.oc for _, _, mp in OC_CASES} >= {2, 3, 4}
    for field in "ortbg":
        assert any(getattr(mp, field) > 1 for _, _, mp in OC_CASES), field
    assert {layer.stride for layer, _, _ in OC_CASES} >= {1, 2}
    assert {layer.pad for layer, _, _ in OC_CASES} >= {0, 1}
    assert any(layer.R == layer.S == 1 for layer, _, _ in OC_CASES)
    assert any(layer.N > 1 for layer, _, _ in OC_CASES)
    assert all(check_mapping_v2(layer, mp, arch) for layer, arch, mp in OC_CASES)


@pytest.mark.parametrize("layer,arch,mapping", OC_CASES, ids=OC_IDS)
def test_column_strips_scale_counts(layer, arch, mapping):
    """oc column strip sets against the same mapping on whole rows (oc = 1): the same MACs, psums,
    weight reads, passes and ramp; every strip set's PEs take the filter rows (×oc) and each PE
    computes f = F/oc columns (compute ×1/oc); each strip set loads and sends its own block of W_f
    padded columns (×oc·W_f/W_used)."""
    oc = mapping.oc
    c = simulate_rs_plus_counts(layer, mapping, arch)
    c1 = simulate_rs_plus_counts(layer, mapping.replace(oc=1), arch)
    F, U, S, P = layer.F, layer.stride, layer.S, layer.pad
    f = F // oc
    Wu, Wf = (F - 1) * U + S, (f - 1) * U + S
    for k in ("macs", "rf_ifmap_reads", "rf_filter_reads", "rf_psum_reads", "rf_psum_writes",
              "glb_psum_reads", "glb_psum_writes", "noc_psum", "dram_psum_writes",
              "dram_filter_reads", "passes", "ramp_cycles"):
        assert c[k] == c1[k], k
    for k in ("noc_filter", "rf_filter_writes", "active_pes"):
        assert c[k] == oc * c1[k], k
    assert c["compute_cycles"] * oc == c1["compute_cycles"]
    for k in ("glb_ifmap_writes", "glb_ifmap_reads", "noc_ifmap", "rf_ifmap_writes"):
        assert c[k] * Wu == c1[k] * oc * Wf, k
    # DRAM reads: the real words of each block (its rows × its columns), so the real columns of
    # the oc column strips against those of the W_used columns scale the count
    def real(lo, hi):
        return len(set(range(lo, hi)) & set(range(P, P + layer.W)))
    strips = sum(real(ci * f * U, ci * f * U + Wf) for ci in range(oc))
    assert c["dram_ifmap_reads"] * real(0, Wu) == c1["dram_ifmap_reads"] * strips
    if P == 0:
        assert c["dram_ifmap_reads"] == c["glb_ifmap_writes"]


def _least(arch, field, layer, mp):
    """The least value of arch.<field> with which `mp` is legal (a GLB limit: monotone)."""
    lo, hi = 1, 1 << 30
    while lo < hi:
        mid = (lo + hi) // 2
        if is_feasible_v2(layer, mp, arch.replace(**{field: mid})):
            hi = mid
        else:
            lo = mid + 1
    return lo


@pytest.mark.parametrize("oc", [1, 2, 3])
def test_column_strips_glb_capacity(oc):
    """iact GLB: g·n·b·o·oc·q·r·rows_glb(e)·W_f words; psum GLB: g·n·b·o·m·e·F psums
    (= g·n·b·o·oc·m·e·f)."""
    layer = L("glb", N=2, C=4, M=4, H=6, W=12, P=1)                 # E = 6, F = 12
    mp = M_(3, 2, b=2, p=2, q=2, m=4, oc=oc)
    big = 1 << 24
    clusters = int(A3234.cluster_rows * A3234.cluster_cols)
    Wf = (layer.F // oc - 1) * layer.stride + layer.S
    rows_glb = len({j * layer.stride + i for j in range(2) for i in range(3)})
    iact = 2 * oc * 2 * rows_glb * Wf * int(A3234.data_bits)
    arch = A3234.replace(psum_glb_bank_bits=big)
    assert _least(arch, "iact_glb_bank_bits", layer, mp) == _cd(
        iact, clusters * int(A3234.iact_glb_banks))
    psum = 2 * 4 * 2 * layer.F * int(A3234.psum_bits)
    arch = A3234.replace(iact_glb_bank_bits=big)
    assert _least(arch, "psum_glb_bank_bits", layer, mp) == _cd(
        psum, clusters * int(A3234.psum_glb_banks))


@pytest.mark.parametrize("layer,mapping,arch,needle", [
    (L("F7", C=2, M=2, H=7, W=9), M_(3, 1, oc=2), A3234,
     "oc = 2 must divide the ofmap width F = 7"),
    (L("U3_S2", C=2, M=2, H=11, W=11, R=3, S=2, U=3), M_(3, 1, oc=2), A3234,
     "oc = 2 > 1 needs stride U = 3 <= S = 2"),
    (L("1x1_U2", C=2, M=2, H=8, W=8, R=1, S=1, U=2), M_(1, 2, oc=2), A3234,
     "oc = 2 > 1 needs stride U = 2 <= S = 1"),
    (L("slots", C=2, M=4, H=8, W=8), M_(3, 3, t=4, oc=2), A3234,
     r"set slots: r\*t\*g\*b\*o\*oc = 8 exceeds"),
    (L("oc0", C=2, M=2, H=8, W=8), M_(3, 2, oc=0), A3234, "mapping.oc = 0"),
    (L("iact", C=2, M=2, H=8, W=8), M_(3, 2, oc=3), A3234.replace(iact_glb_bank_bits=10),
     r"iact GLB: g\*n\*b\*o\*oc"),
    # r = 2 alone chains down column 0 (test_hand_worked_mesh_examples); two column strips
    # make the chain block R0·O0 = 4 slots, which a column of 2 slots does not hold
    (L("chain", C=2, H=3, W=5, R=2, S=2), M_(2, 2, r=2, oc=2), A222, "psum chain"),
])
def test_column_strips_illegal(layer, mapping, arch, needle):
    with pytest.raises(ValueError, match=needle):
        check_mapping_v2(layer, mapping, arch)
    assert mapping.oc == 0 or is_feasible_v2(layer, mapping.replace(oc=1), arch.replace(
        iact_glb_bank_bits=max(int(arch.iact_glb_bank_bits), 12288)))


def test_default_mapping_keeps_whole_rows():
    for layer, arch, _ in OC_CASES:
        assert default_mapping_v2(layer, arch).oc == 1


def test_check_operands_column_windows():
    # one PE, p = q = n = 1: iact (image 0, channel 0, padded row 2, first padded column 4)
    fdesc = np.array([[[[0, 0, 0]]]])
    need = np.array([[0, 0, 0, 0, 0, 2, 4]])
    rs_plus_sim._check_operands(fdesc, np.array([[[[0, 0, 2, 4]]]]), need)
    with pytest.raises(OperandError):     # the same row of another column strip
        rs_plus_sim._check_operands(fdesc, np.array([[[[0, 0, 2, 0]]]]), need)


def test_wrong_column_strip_raises(monkeypatch):
    """Two iact rows that differ only in their column strip swap destinations: every PE gets the
    right rows in the right number, but of the other column strip's columns."""
    layer, arch, mp = OC_CASES[OC_IDS.index("oc2_s1_p0")]

    def column_twins(tags, match):
        a = int(np.nonzero((tags[:, 3] == 0) & match.any(axis=1))[0][0])
        other = tags.copy()
        other[:, 3] = 0
        return a, int(np.nonzero((tags[:, 3] == 1) & np.all(other == tags[a], axis=1))[0][0])

    _swap_destinations(monkeypatch, 2, column_twins)   # the first pass's iacts (after filters)
    with pytest.raises(OperandError, match="column"):
        simulate_rs_plus_counts(layer, mp, arch)
    monkeypatch.undo()
    rs_plus_sim._SCHEDULES.clear()
    simulate_rs_plus_counts(layer, mp, arch)


# --------------------------------------------------------------------------------------------
# jit / vmap
# --------------------------------------------------------------------------------------------
def test_jit_and_vmap():
    layer, arch, mp = CASES[IDS.index("grouped_g2_b2")]
    xs, ws = zip(*[_data(layer, seed=s) for s in range(3)])
    xs, ws = jnp.stack(xs), jnp.stack(ws)
    outs, counts = simulate_rs_plus_batch(layer, mp, xs, ws, arch)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(outs[i]), np.asarray(_conv(layer, xs[i], ws[i])))
    assert counts["macs"].shape == (3,) and counts["router_cluster_psum"].shape == (3, 6)
    fn = make_simulator_v2(layer, mp, arch, sparse=True)
    out, c = fn(xs[0], ws[0])
    _, c_eager = simulate_rs_plus(layer, mp, xs[0], ws[0], arch, sparse=True)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(_conv(layer, xs[0], ws[0])))
    for k in COUNT_KEYS + ("macs_zero",):
        assert int(c[k]) == int(c_eager[k])
    # float data also runs
    out_f, _ = simulate_rs_plus(layer, mp, xs[0].astype(jnp.float32), ws[0].astype(jnp.float32),
                                arch)
    np.testing.assert_allclose(np.asarray(out_f), np.asarray(_conv(layer, xs[0], ws[0])),
                               rtol=1e-5)


def test_shape_errors():
    layer, arch, mp = CASES[0]
    mp = _mp(layer, arch, mp)
    x, w = _data(layer)
    with pytest.raises(ValueError, match="ifmap has shape"):
        simulate_rs_plus(layer, mp, x[:, :1], w, arch)
    with pytest.raises(ValueError, match="weights have shape"):
        simulate_rs_plus(layer, mp, x, w[:1], arch)
