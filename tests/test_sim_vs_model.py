"""The closed-form RS model (eyejax.dataflow.rs) against the functional simulation (eyejax.sim):
every count of COUNT_KEYS (cycles included) must agree exactly, and so must feasibility."""
import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
import jax
import jax.numpy as jnp

from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.dataflow.mapping import COUNT_KEYS, RSMapping
from eyejax.dataflow.mapping import RS_EXTRA_KEYS
from eyejax.dataflow.rs import layer_counts, mapping_is_feasible
from eyejax.sim import is_feasible, simulate_rs, simulate_rs_counts
from eyejax.workload.layer import Layer, LayerArrays

A12x14 = EyerissV1()
A3x4 = EyerissV1(pe_rows=3, pe_cols=4)
A2x2 = EyerissV1(pe_rows=2, pe_cols=2)
A5x3 = EyerissV1(pe_rows=5, pe_cols=3)
A4x6_split = EyerissV1(pe_rows=4, pe_cols=6, glb_banks=8, glb_bank_words=128, glb_ifmap_banks=3)
ARCHES = (A12x14, A3x4, A2x2, A5x3, A4x6_split)


def L(name, N=1, C=1, M=1, H=5, W=5, R=3, S=3, U=1, P=0, G=1, kind="CONV"):
    return Layer(name, kind, N=N, C=C, M=M, H=H, W=W, R=R, S=S, stride=U, pad=P, groups=G)


def M_(h, e, r=1, t=1, p=1, q=1, n=1, m=None):
    return RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=p * t if m is None else m)


# Hand-picked (layer, arch, mapping): strides > 1, grouped, depthwise, FC, E wider than the array,
# R taller than the array, batch > 1, partial tiles in every dimension.
NAMED = [
    (L("conv3x3_p1", C=3, M=4, H=8, W=8, P=1), A12x14, M_(3, 8)),
    (L("conv_pqrt", C=4, M=6, H=7, W=6, P=1), A12x14, M_(3, 5, r=2, t=2, p=2, q=2, m=4)),
    (L("stride2_pad1", C=2, M=3, H=9, W=9, U=2, P=1), A3x4, M_(3, 3, p=2, m=2)),
    (L("stride3", C=2, M=2, H=11, W=10, U=3), A3x4, M_(3, 3)),
    (L("stride3_R<U", N=2, C=2, M=3, H=10, W=11, R=2, S=2, U=3), A5x3, M_(2, 3, r=2, n=2)),
    (L("stride4_R<U", C=3, M=2, H=13, W=13, R=3, S=2, U=4, P=1), A12x14, M_(3, 4, r=2, t=2, q=3)),
    (L("grouped", N=2, C=4, M=6, H=9, W=8, U=2, P=1, G=2), A3x4, M_(3, 2, t=2, q=2, n=2, m=2)),
    (L("grouped3", C=6, M=9, H=6, W=6, P=1, G=3), A5x3, M_(3, 3, p=2, q=2, m=4)),
    (L("depthwise", C=3, M=3, H=6, W=7, P=1, G=3, kind="DWCONV"), A12x14, M_(3, 6)),
    (L("depthwise_s2", N=2, C=4, M=4, H=9, W=9, U=2, P=1, G=4, kind="DWCONV"), A5x3, M_(3, 3, n=2)),
    (L("fc", N=2, C=5, M=6, H=3, W=4, R=3, S=4, kind="FC"), A12x14, M_(3, 1, r=3, t=4, q=2, n=2)),
    (L("fc_fold", N=3, C=3, M=4, H=3, W=3, R=3, S=3, kind="FC"), A2x2,
     M_(2, 1, p=3, q=2, n=2, m=3)),
    (L("fc_1x1", N=4, C=8, M=5, H=1, W=1, R=1, S=1, kind="FC"), A2x2, M_(1, 1, r=2, t=2, p=2, q=4,
                                                                         n=3, m=4)),
    (L("E_wide", C=2, M=2, H=16, W=6), A3x4, M_(3, 4, p=2, m=2)),
    (L("E_wide_partial", M=2, H=13, W=5, P=1), A3x4, M_(3, 3, m=2)),
    (L("E_wide_12x14", C=2, M=3, H=33, W=9, P=1), A12x14, M_(3, 14, r=2, t=2, m=2)),
    (L("R_fold", C=2, M=2, H=9, W=7, R=5, S=3, P=1), A3x4, M_(3, 2, t=2, m=2)),
    (L("R_fold_2x2", N=2, C=2, M=3, H=6, W=6), A2x2, M_(2, 2, q=2, p=2, m=2)),
    (L("R_fold_stride2", M=2, H=11, W=9, R=5, S=5, U=2, P=2), A2x2, M_(2, 2, p=2, m=2)),
    (L("R_13_on_12", C=2, M=2, H=14, W=5, R=13, S=2, P=1), A12x14, M_(12, 4, q=2, t=2)),
    (L("partial_all", N=3, C=5, M=5, H=9, W=8, R=5, S=3, P=1), A3x4, M_(3, 3, p=2, q=2, n=2, m=4)),
    (L("partial_m_tiles", C=3, M=7, H=6, W=6, P=1), A12x14, M_(3, 4, t=3, q=3, m=3)),
    (L("m_big", C=2, M=5, H=5, W=5), A5x3, M_(3, 3, p=2, m=6)),
    (L("rect_filter", C=2, M=2, H=8, W=9, R=3, S=2, U=2), A5x3, M_(3, 1, t=2, q=2, m=2)),
    (L("one_by_one", N=2, C=4, M=3, H=4, W=5, R=1, S=1), A2x2, M_(1, 2, t=2, q=2, m=2)),
    (L("tiny_pad", C=2, M=2, H=2, W=2, P=1), A3x4, M_(3, 2)),
    (L("full_array", C=4, M=8, H=8, W=8, P=1), A12x14, M_(3, 7, r=2, t=4, p=2, q=2, m=8)),
    # channel sets stack vertically (psums chain down the local links): r=2 needs two set rows
    (L("glb_split", N=2, C=4, M=4, H=7, W=7, R=2, S=3, P=1), A4x6_split,
     M_(2, 3, r=2, p=2, q=2, n=2, m=2)),
    (L("glb_split_s2", C=3, M=6, H=9, W=9, U=2), A4x6_split, M_(3, 3, t=2, p=3, m=6)),
    # sets wider than the array, split into segments on different rows (JSSC17 CONV2: 5x27 as
    # 5x14 + 5x13, 135 PEs)
    (L("segmented_conv2", N=2, C=4, M=4, H=27, W=6, R=5, S=3, P=2), A12x14,
     M_(5, 27, q=2, p=2, m=4)),
    (L("segmented_3", C=2, M=3, H=9, W=5, R=2, S=2), A5x3, M_(2, 6, p=2, m=2)),
    (L("segmented_rt", C=4, M=6, H=24, W=4, R=1, S=2), A12x14, M_(1, 20, r=2, t=3, q=2, m=3)),
    (L("segmented_s2", N=2, C=2, M=3, H=20, W=6, R=2, S=2, U=2), A5x3, M_(2, 6, p=2, n=2, m=2)),
]


def _random_cases(count, seed):
    """Deterministic random small layers and feasible mappings over ARCHES."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        arch = ARCHES[rng.integers(len(ARCHES))]
        G = int(rng.choice([1, 1, 2, 3]))
        Cg, Mg = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        R, S, U = int(rng.integers(1, 6)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
        P = int(rng.integers(0, min(R, S)))
        H, W = int(rng.integers(max(1, R - 2 * P), 12)), int(rng.integers(max(1, S - 2 * P), 10))
        N = int(rng.integers(1, 4))
        layer = L(f"rand{len(out)}", N=N, C=G * Cg, M=G * Mg, H=H, W=W, R=R, S=S, U=U, P=P, G=G)
        pr, pc = int(arch.pe_rows), int(arch.pe_cols)
        # h below min(R, pe_rows) folds the filter rows too (docs/rs_model.md "Exact search")
        h = int(rng.choice([min(R, pr), rng.integers(1, min(R, pr) + 1)]))
        e = int(rng.integers(1, min(layer.E, 2 * pc) + 1))
        p, q = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        sets = max(1, (pr // h) * (pc // e))
        r = int(rng.integers(1, sets + 1))
        t = int(rng.integers(1, sets // r + 1))
        n = int(rng.integers(1, N + 1))
        m = p * t * int(rng.integers(1, -(-Mg // (p * t)) + 1))
        mp = RSMapping(h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=m)
        if is_feasible(layer, mp, arch):
            out.append((layer, arch, mp))
    return out


CASES = NAMED + _random_cases(40, seed=2024)


def _model(layer, arch, mp):
    return {k: int(v) for k, v in layer_counts(layer.as_row(), arch, mp).items()
            if k in COUNT_KEYS + RS_EXTRA_KEYS}


def _diff(sim, model):
    return {k: (sim[k], model.get(k)) for k in COUNT_KEYS + RS_EXTRA_KEYS
            if sim[k] != model.get(k)}


def test_enough_cases():
    assert len(CASES) >= 50
    assert all(is_feasible(layer, mp, arch) for layer, arch, mp in CASES)


@pytest.mark.parametrize("layer,arch,mapping", CASES, ids=[c[0].name for c in CASES])
def test_counts_match_model(layer, arch, mapping):
    sim = simulate_rs_counts(layer, mapping, arch)
    model = _model(layer, arch, mapping)
    assert set(COUNT_KEYS) <= set(model)
    assert not _diff(sim, model), f"{layer} {mapping}: key: (sim, model) {_diff(sim, model)}"


@pytest.mark.parametrize("layer,arch,mapping", NAMED[::3], ids=[c[0].name for c in NAMED[::3]])
def test_full_simulation_matches_model(layer, arch, mapping):
    """The counts simulate_rs returns alongside real data (and its exact output) match the model."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(-2, 3, (layer.N, layer.C, layer.H, layer.W)), jnp.int64)
    w = jnp.asarray(rng.integers(-2, 3, (layer.M, layer.C // layer.groups, layer.R, layer.S)),
                    jnp.int64)
    out, c = simulate_rs(layer, mapping, x, w, arch)
    ref = jax.lax.conv_general_dilated(x, w, (layer.stride,) * 2, [(layer.pad, layer.pad)] * 2,
                                       feature_group_count=layer.groups)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
    sim = {k: int(c[k]) for k in COUNT_KEYS + RS_EXTRA_KEYS}
    assert not _diff(sim, _model(layer, arch, mapping))


def test_layer_arrays_row():
    """The model also takes a LayerArrays row; its counts are the same."""
    layers = [c[0] for c in NAMED[:6]]
    la = LayerArrays.from_layers(layers)
    for i, (layer, arch, mp) in enumerate(NAMED[:6]):
        row = jax.tree_util.tree_map(lambda a: a[i], la)
        model = {k: int(v) for k, v in layer_counts(row, arch, mp).items()
                 if k in COUNT_KEYS + RS_EXTRA_KEYS}
        assert not _diff(simulate_rs_counts(layer, mp, arch), model), layer.name


def test_feasibility_matches_model():
    """check_mapping (simulation) and mapping_is_feasible (model) accept the same mappings."""
    rng = np.random.default_rng(7)
    arches = ARCHES + (EyerissV1(glb_banks=3, glb_bank_words=64), EyerissV1(filter_buffer_words=40))
    seen = {True: 0, False: 0}
    for _ in range(150):
        arch = arches[rng.integers(len(arches))]
        layer = L("f", N=int(rng.integers(1, 4)), C=int(rng.integers(1, 6)),
                  M=int(rng.integers(1, 6)), H=int(rng.integers(5, 14)),
                  W=int(rng.integers(5, 14)), R=int(rng.integers(1, 6)), S=int(rng.integers(1, 5)),
                  U=int(rng.integers(1, 3)))
        pr, pc = int(arch.pe_rows), int(arch.pe_cols)
        p, t = int(rng.integers(1, 30)), int(rng.integers(1, 5))
        mp = RSMapping(h=int(rng.integers(1, min(layer.R, pr) + 1)), e=int(rng.integers(1, min(layer.E, 2 * pc) + 1)),
                       r=int(rng.integers(1, 6)), t=t, p=p, q=int(rng.integers(1, 6)),
                       n=int(rng.integers(1, layer.N + 1)),
                       m=p * t * int(rng.integers(1, -(-layer.M // (p * t)) + 1)))
        ok = is_feasible(layer, mp, arch)
        assert ok == mapping_is_feasible(layer.as_row(), arch, mp), (layer, mp, arch)
        seen[ok] += 1
    assert seen[True] > 10 and seen[False] > 10
