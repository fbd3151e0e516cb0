"""The ISCA16 dataflows' search is exact (docs/isca16_dataflows.md, "Mapping search"): on random
small layers × architectures, every legal integer mapping of the dataflow's contract is enumerated
with itertools and costed with the module's own `counts` and `isca16_base.cost_of`; the search's
optimum must equal the brute-force minimum of each objective (energy, latency, EDP). And the optimum
is monotone in the hardware: doubling any capacity never loses a layer nor raises its energy."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eyejax.arch.isca16 import ISCA16Spatial, isca16_arch
from eyejax.dataflow import isca16_base as base
from eyejax.dataflow.nlr import NLR
from eyejax.dataflow.os import OS_A, OS_B, OS_C
from eyejax.dataflow.search import cast
from eyejax.dataflow.shape import layer_shape
from eyejax.dataflow.ws import WS
from eyejax.evaluate import evaluate_arrays, in_axes_of
from eyejax.metrics import OBJECTIVES
from eyejax.sparsity import Sparsity
from eyejax.workload import Layer
from eyejax.workload.layer import LayerArrays

DATAFLOWS = {"ws": WS, "os_a": OS_A, "os_b": OS_B, "os_c": OS_C, "nlr": NLR}
CASES = 200
ARCH_KEYS = ("pe_rows", "pe_cols", "rf_ifmap_words", "rf_filter_words", "rf_psum_words",
             "glb_words", "dram_bus_bits")


def cdiv(a, b):
    return -(-a // b)


def dims(layer):
    Hp, Wp = layer.H + 2 * layer.pad, layer.W + 2 * layer.pad
    E, F = (Hp - layer.R) // layer.stride + 1, (Wp - layer.S) // layer.stride + 1
    return dict(N=layer.N, Cg=layer.C // layer.groups, Mg=layer.M // layer.groups, E=E, F=F,
                R=layer.R, S=layer.S, U=layer.stride, W_used=(F - 1) * layer.stride + layer.S)


def random_case(rng, i):
    G = int(rng.choice([1, 1, 2]))
    if i % 3 == 0:   # padding beyond the stride: strips are enumerated height by height
        R, S, U = int(rng.integers(3, 5)), int(rng.integers(3, 5)), 1
        pad = int(rng.integers(2, min(R, S)))
    else:
        R, S = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        pad = int(rng.integers(0, min(R, S)))
        U = int(rng.integers(1, 3))
    H = int(rng.integers(max(R - 2 * pad, 1), 10))
    W = int(rng.integers(max(S - 2 * pad, 1), 10))
    layer = Layer(f"l{i}", "CONV", N=int(rng.integers(1, 4)), C=G * int(rng.integers(1, 5)),
                  M=G * int(rng.integers(1, 7)), H=H, W=W, R=R, S=S, stride=U, pad=pad, groups=G)
    arch = dict(pe_rows=int(rng.integers(1, 6)), pe_cols=int(rng.integers(1, 6)),
                rf_ifmap_words=int(rng.integers(0, 13)),
                rf_filter_words=int(rng.choice([0, 1, 1, 2])),
                rf_psum_words=int(rng.choice([0, 1, 1, 2])),
                glb_words=int(np.exp(rng.uniform(np.log(8), np.log(2000)))),
                dram_bus_bits=int(rng.choice([16, 64])))
    return layer, arch, bool(rng.integers(0, 2))


def legal_mappings(name, d, a):
    """Every legal integer mapping of the dataflow's contract (docs/isca16_dataflows.md)."""
    N, Cg, Mg, E, F, R, S, U = (d[k] for k in ("N", "Cg", "Mg", "E", "F", "R", "S", "U"))
    rows, cols = a["pe_rows"], a["pe_cols"]
    rows_glb = lambda e: min((e - 1) * U + R, e * R)
    cols_glb = lambda x: min((x - 1) * U + S, x * S)
    block = lambda n, e: n * Cg * rows_glb(e) * d["W_used"]
    glb, crs = a["glb_words"], Cg * R * S
    out = []
    ne = list(itertools.product(range(1, N + 1), range(1, E + 1)))
    if name == "ws":
        for h in range(1, min(R, rows) + 1):
            regions = (rows // h) * (cols // S)
            for m, c, (n, e) in itertools.product(range(1, Mg + 1), range(1, Cg + 1), ne):
                if (m * c <= regions and a["rf_filter_words"] >= 1
                        and block(n, e) + n * m * e * F + m * c * h * S <= glb):
                    out.append(dict(h=h, m_s=m, c_s=c, n=n, e=e))
    elif name == "os_a":
        for ae, af, (n, e) in itertools.product(range(1, min(E, rows) + 1),
                                                range(1, min(F, cols) + 1), ne):
            if ((e % ae == 0 or e == E) and a["rf_ifmap_words"] >= cols_glb(af)
                    and a["rf_psum_words"] >= 1 and block(n, e) + crs <= glb):
                out.append(dict(a_e=ae, a_f=af, n=n, e=e))
    elif name == "os_b":
        for af in range(1, min(F, cols) + 1):
            for m, (n, e) in itertools.product(range(1, min(Mg, rows * (cols // af)) + 1), ne):
                if (a["rf_ifmap_words"] >= S and a["rf_psum_words"] >= 1
                        and block(n, e) + m * crs <= glb):
                    out.append(dict(m_s=m, a_f=af, n=n, e=e))
    elif name == "os_c":
        for m, (n, e) in itertools.product(range(1, min(Mg, rows * cols) + 1), ne):
            if a["rf_psum_words"] >= 1 and block(n, e) + m * crs <= glb:
                out.append(dict(m_s=m, n=n, e=e))
    else:
        for m, c, (n, e) in itertools.product(range(1, Mg + 1), range(1, Cg + 1), ne):
            if m * c <= rows * cols and block(n, e) + m * crs + m <= glb:
                out.append(dict(m_s=m, c_s=c, n=n, e=e))
    return out


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(20261204)
    return [random_case(rng, i) for i in range(CASES)]


def brute_force(name, df, cases):
    """[case] minimum energy, latency and EDP over every legal mapping (inf: none), costed in one
    elementwise call of the module's counts and cost_of over all (case, mapping) rows."""
    rows, seg = [], []
    for i, (layer, a, first) in enumerate(cases):
        for mp in legal_mappings(name, dims(layer), a):
            rows.append((i, layer, a, first, mp))
    idx = np.array([r[0] for r in rows])
    la = LayerArrays.from_layers([r[1] for r in rows])
    shape = layer_shape(la, jnp.float64)
    arch = ISCA16Spatial(**{k: np.array([r[2][k] for r in rows]) for k in ARCH_KEYS},
                         dataflow=name)
    sp = Sparsity.dense(len(rows))
    first = jnp.asarray([r[3] for r in rows])
    mp = {k: jnp.asarray([r[4][k] for r in rows], jnp.float64) for k in df.MAPPING_KEYS}
    archd = cast(arch, jnp.float64)
    c = df.counts(shape, archd, mp, jnp.float64)
    en, _, cyc = base.cost_of(c, archd, cast(sp, jnp.float64), first)
    energy, cyc = np.asarray(sum(en.values())), np.asarray(cyc)
    best = {}
    for obj, score in (("energy", energy), ("latency", cyc), ("edp", energy * cyc)):
        b = np.full(len(cases), np.inf)
        np.minimum.at(b, idx, score)
        best[obj] = b
    return best


def search_all(df, cases):
    """[case] the search's energy, cycles and feasibility per objective, one compiled call."""
    la = LayerArrays.from_layers([c[0] for c in cases])
    la = la.replace(first=np.array([c[2] for c in cases]))
    arch = ISCA16Spatial(**{k: np.array([c[1][k] for c in cases]) for k in ARCH_KEYS},
                         dataflow=df.name)
    sp = Sparsity.dense(len(cases))
    space = df.prepare_space(None, arch, la)

    def one(layer, a, s, first):
        out = {}
        for obj in OBJECTIVES:
            r = df.search_layer(layer, a, s, first, obj, space)
            energy = sum(v for k, v in r.items() if k.startswith("energy_"))
            out[obj] = (energy, r["cycles"], r["feasible"])
        return out

    res = jax.jit(jax.vmap(one, in_axes=(0, in_axes_of(arch), 0, 0)))(la, arch, sp,
                                                                    jnp.asarray(la.first))
    return jax.tree_util.tree_map(np.asarray, res), space


@pytest.mark.parametrize("name", sorted(DATAFLOWS))
def test_search_equals_brute_force_optimum(name, cases):
    df = DATAFLOWS[name]
    want = brute_force(name, df, cases)
    got, space = search_all(df, cases)
    feasible = np.isfinite(want["energy"])
    assert 0.3 * len(cases) < feasible.sum() < len(cases), feasible.sum()   # both kinds tested
    for obj in OBJECTIVES:
        energy, cycles, ok = got[obj]
        np.testing.assert_array_equal(ok, feasible, err_msg=f"{name} {obj} feasibility")
        score = {"energy": energy, "latency": cycles.astype(np.float64),
                 "edp": energy * cycles}[obj]
        bad = np.nonzero(feasible & ~np.isclose(score, want[obj], rtol=1e-12, atol=0))[0]
        assert bad.size == 0, (name, obj, [(cases[i], score[i], want[obj][i]) for i in bad[:3]])
    # the search costs fewer candidates than the legal space has mappings
    assert space.size > 0


# ----------------------------------------------------------------------------- monotone hardware
CAPACITIES = ("pe_rows", "pe_cols", "rf_ifmap_words", "rf_filter_words", "rf_psum_words",
              "glb_words")
MONO_LAYERS = 3
# one static search size for every example (no recompile): covers the strategy's largest layers
MONO_SPACE = {}


def mono_space(df):
    if df.name not in MONO_SPACE:
        big = Layer("big", "CONV", N=4, C=8, M=8, H=12, W=12, R=3, S=3, stride=1, pad=2)
        la = LayerArrays.from_layers([big] * MONO_LAYERS)
        MONO_SPACE[df.name] = df.prepare_space(None, None, la)
    return MONO_SPACE[df.name]


layer_st = st.builds(
    lambda n, c, m, hw, rs, u, p: Layer("l", "CONV", N=n, C=c, M=m, H=hw, W=hw, R=rs, S=rs,
                                        stride=u, pad=min(p, rs - 1)),
    st.integers(1, 4), st.integers(1, 8), st.integers(1, 8), st.integers(3, 12),
    st.integers(1, 3), st.integers(1, 2), st.integers(0, 2))
arch_st = st.fixed_dictionaries({
    "pe_rows": st.integers(1, 6), "pe_cols": st.integers(1, 6),
    "rf_ifmap_words": st.integers(0, 12), "rf_filter_words": st.integers(0, 2),
    "rf_psum_words": st.integers(0, 2), "glb_words": st.integers(4, 3000)})


@pytest.mark.parametrize("name", sorted(DATAFLOWS))
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(layer_st, min_size=MONO_LAYERS, max_size=MONO_LAYERS), a=arch_st)
def test_doubling_a_capacity_never_loses_a_layer_nor_raises_its_energy(name, layers, a):
    df = DATAFLOWS[name]
    base_arch = isca16_arch(name, 16)
    vals = {k: [a[k]] + [a[k] * (2 if k == j else 1) for j in CAPACITIES] for k in CAPACITIES}
    arch = base_arch.replace(**{k: np.array(v) for k, v in vals.items()})
    la = LayerArrays.from_layers(layers)
    res = evaluate_arrays(arch, la, Sparsity.dense(MONO_LAYERS), space=mono_space(df),
                          dedupe_layers=False)     # one compiled shape for every example
    energy = sum(v for k, v in res.items() if k.startswith("energy_")).astype(np.float64)
    ok = res["feasible"]
    for j, k in enumerate(CAPACITIES, start=1):
        assert (ok[j] | ~ok[0]).all(), (name, k, "lost a layer")
        worse = ok[0] & (energy[j] > energy[0] * (1 + 1e-12))
        assert not worse.any(), (name, k, energy[0], energy[j])
