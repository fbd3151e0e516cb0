"""The RS exact search (search=exact, eyejax.dataflow.rs_exact) returns the model's optimum: on
random small layers × Eyeriss v1 variants, every integer mapping up to the architecture's limits is
listed with itertools (q, p, r, t beyond the layer and every multiple m of p·t included), kept when
`rs.feasible` (the contract) accepts it, and costed with `rs.cost_of`; the search's objective must
equal the brute-force minimum for energy (movement-only and chip energy), latency and EDP. And the
optimum is monotone in the hardware: doubling any capacity never loses a layer nor raises its
energy. The fast grid is compared too: never below the optimum, and its excess is reported."""
from __future__ import annotations

import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from small_layers import random_small_layer, result_objective

from eyejax.arch.energy import ISCA16_NORMALIZED, PJ_65NM
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.dataflow import get_dataflow, rs, rs_exact, search_space
from eyejax.dataflow.mapping import RSMapping
from eyejax.dataflow.search import cast
from eyejax.dataflow.shape import layer_shape
from eyejax.evaluate import evaluate_arrays, in_axes_of
from eyejax.metrics import OBJECTIVES, objective_value
from eyejax.sparsity import Sparsity
from eyejax.workload import Layer
from eyejax.workload.layer import LayerArrays

CASES = 120       # per energy table: 240 random layers × architectures
ARCH_KEYS = ("pe_rows", "pe_cols", "filter_spad_words", "ifmap_spad_words", "psum_spad_words",
             "glb_banks", "glb_bank_words", "glb_ifmap_banks", "dram_bus_bits", "ifmap_bus_bits",
             "psum_bus_bits", "filter_buffer_words")
TABLES = {"normalized": ISCA16_NORMALIZED, "pj": PJ_65NM}


def cdiv(a, b):
    return -(-a // b)


def dims(layer):
    E = (layer.H + 2 * layer.pad - layer.R) // layer.stride + 1
    return dict(N=layer.N, Cg=layer.C // layer.groups, Mg=layer.M // layer.groups, E=E,
                R=layer.R, S=layer.S)


def random_case(rng, i):
    layer = random_small_layer(rng, i)
    banks = int(rng.integers(2, 7))
    arch = dict(pe_rows=int(rng.integers(1, 6)), pe_cols=int(rng.integers(1, 5)),
                filter_spad_words=int(rng.integers(1, 25)),
                ifmap_spad_words=int(rng.integers(1, 9)),
                psum_spad_words=int(rng.integers(1, 7)),
                glb_banks=banks, glb_bank_words=int(rng.choice([8, 32, 128])),
                glb_ifmap_banks=int(rng.choice([0, 0, int(rng.integers(1, banks))])),
                dram_bus_bits=int(rng.choice([16, 64])), ifmap_bus_bits=int(rng.choice([16, 32])),
                psum_bus_bits=int(rng.choice([16, 64])))
    # the filter buffer from its own stream, so the other draws stay those of earlier versions:
    # no limit, the chip's 4096 words, or small enough to bind on these layers
    fb_rng = np.random.default_rng(i)
    arch["filter_buffer_words"] = int(fb_rng.choice([0, 4096, int(fb_rng.integers(4, 80))]))
    density = float(rng.choice([1.0, rng.uniform(0.2, 1.0)]))
    return layer, arch, bool(rng.integers(0, 2)), density


def mappings(layer, a):
    """Every integer mapping up to the architecture's limits (a superset of the legal space)."""
    d = dims(layer)
    rows, cols = a["pe_rows"], a["pe_cols"]
    for h, e in itertools.product(range(1, min(d["R"], rows) + 1), range(1, d["E"] + 1)):
        seg = cdiv(e, cols)
        set_rows, set_cols = rows // (h * seg), cols // min(e, cols)
        if set_rows < 1:
            continue
        for q in range(1, a["ifmap_spad_words"] // d["S"] + 1):
            for p in range(1, min(a["psum_spad_words"], a["filter_spad_words"] // (q * d["S"])) + 1):
                for r, n in itertools.product(range(1, set_rows + 1), range(1, d["N"] + 1)):
                    for t in range(1, (set_rows // r) * set_cols + 1):
                        pt = p * t
                        for k in range(1, cdiv(d["Mg"], pt) + 2):
                            yield dict(h=h, e=e, r=r, t=t, p=p, q=q, n=n, m=k * pt)


def arch_of(rows, table):
    return EyerissV1(**{k: np.array([r[k] for r in rows]) for k in ARCH_KEYS}, energy=table)


def sparsity_of(densities):
    d = np.asarray(densities)
    return Sparsity.from_densities(len(d), iact=d, ofmap=d)   # per case, not the next row's


def brute_force(cases, table):
    """[case] minimum of each objective over every legal mapping (inf: none), in one elementwise
    call of rs.feasible and rs.cost_of over all (case, mapping) rows."""
    rows = [(i, layer, a, first, dens, mp) for i, (layer, a, first, dens) in enumerate(cases)
            for mp in mappings(layer, a)]
    idx = np.array([r[0] for r in rows])
    shape = layer_shape(LayerArrays.from_layers([r[1] for r in rows]), jnp.float64)
    arch = cast(arch_of([r[2] for r in rows], table), jnp.float64)
    sp = cast(sparsity_of([r[4] for r in rows]), jnp.float64)
    first = jnp.asarray([r[3] for r in rows])
    mp = RSMapping(**{k: jnp.asarray([r[5][k] for r in rows], jnp.float64)
                      for k in rs.MAPPING_KEYS})
    ok = np.asarray(rs.feasible(shape, arch, mp, jnp.float64))
    _, en, _, cycles = rs.cost_of(shape, arch, sp, first, mp, jnp.float64)
    energy, cycles = np.asarray(sum(en.values())), np.asarray(cycles)
    a = {k: getattr(arch, k) for k in ARCH_KEYS + ("glb_bank_words",)}
    unit = (mp.h, mp.e, mp.q, mp.r)
    t_range, p_range, _ = rs_exact._unit_terms(shape, a, *unit)
    best = {}
    for obj in OBJECTIVES:
        score = np.where(ok, np.asarray(objective_value(obj, energy, cycles)), np.inf)
        # the pruning bound of a candidate's unit never exceeds the candidate's objective
        lower = np.asarray(rs_exact.unit_lower_bound(shape, arch, sp, first, obj, *unit,
                                                     t_range, p_range))
        assert (lower[ok] <= score[ok] * (1 + 1e-12)).all(), (table, obj)
        b = np.full(len(cases), np.inf)
        np.minimum.at(b, idx, score)
        best[obj] = b
    return best, len(rows)


def search_all(cases, table, space):
    """[case] the search's objective and feasibility per objective, one compiled call."""
    la = LayerArrays.from_layers([c[0] for c in cases])
    la = la.replace(first=np.array([c[2] for c in cases]))
    arch = arch_of([c[1] for c in cases], table)
    sp = sparsity_of([c[3] for c in cases])
    space = space.prepare(arch, la) if hasattr(space, "prepare") else space

    def one(layer, a, s, first):
        out = {}
        for obj in OBJECTIVES:
            res = rs.search_layer(layer, a, s, first, obj, space)
            out[obj] = (result_objective(obj, res), res["feasible"])
        return out

    res = jax.jit(jax.vmap(one, in_axes=(0, in_axes_of(arch), 0, 0)))(
        la, arch, sp, jnp.asarray(la.first))
    return jax.tree_util.tree_map(np.asarray, res)


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(20261205)
    return [random_case(rng, i) for i in range(CASES)]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_exact_search_equals_brute_force_optimum(table, cases):
    want, n_rows = brute_force(cases, TABLES[table])
    got = search_all(cases, TABLES[table], rs_exact.EXACT_SEARCH)
    fast = search_all(cases, TABLES[table], rs.DEFAULT_SEARCH)
    feasible = np.isfinite(want["energy"])
    assert 0.3 * len(cases) < feasible.sum() < len(cases), feasible.sum()   # both kinds tested
    for obj in OBJECTIVES:
        score, ok = got[obj]
        np.testing.assert_array_equal(ok, feasible, err_msg=f"{table} {obj} feasibility")
        bad = np.nonzero(feasible & ~np.isclose(score, want[obj], rtol=1e-12, atol=0))[0]
        assert bad.size == 0, (table, obj, [(cases[i], score[i], want[obj][i]) for i in bad[:3]])
        # the fast grid never beats the optimum (it searches a subset of the same space)
        f_score, f_ok = fast[obj]
        # ... and is feasible exactly where a legal mapping exists (its least-mapping fallback)
        np.testing.assert_array_equal(f_ok, feasible, err_msg=f"fast {table} {obj} feasibility")
        both = f_ok & feasible
        assert (f_score[both] >= want[obj][both] * (1 - 1e-6)).all(), (table, obj)
    assert n_rows > 10 * len(cases)


def test_search_modes_by_name():
    assert search_space(rs, "exact") is rs_exact.EXACT_SEARCH
    assert search_space(rs, "fast") is rs.DEFAULT_SEARCH
    assert getattr(search_space(rs, "exact"), "exact", False)
    assert not getattr(search_space(rs, "fast"), "exact", False)
    with pytest.raises(ValueError, match="search must be one of"):
        search_space(rs, "greedy")
    ws = get_dataflow("ws")                      # one search, already exact: both names give it
    assert search_space(ws, "exact") is search_space(ws, "fast") is ws.DEFAULT_SEARCH
    assert getattr(search_space(get_dataflow("rs_plus"), "exact"), "exact", False)
    plugin = types.SimpleNamespace(__name__="plugin_df", DEFAULT_SEARCH=object())
    with pytest.raises(ValueError, match="plugin_df"):   # a dataflow with only a grid says so
        search_space(plugin, "exact")


# ----------------------------------------------------------------------------- monotone hardware
CAPACITIES = ("pe_rows", "pe_cols", "filter_spad_words", "ifmap_spad_words", "psum_spad_words",
              "glb_banks", "glb_bank_words", "filter_buffer_words")
MONO_LAYERS = 2


def mono_space():
    """One static space for every example (no recompile): it covers the strategies' largest
    layers and doubled architectures."""
    big = [Layer("big", "CONV", N=2, C=6, M=6, H=9, W=9, R=k, S=k, stride=1, pad=0)
           for k in (1, 4)]
    la = LayerArrays.from_layers(big)
    arch = EyerissV1(pe_rows=12, pe_cols=10, filter_spad_words=96, ifmap_spad_words=24,
                     psum_spad_words=12)
    return rs_exact.EXACT_SEARCH.prepare(arch, la)


MONO_SPACE = mono_space()

layer_st = st.builds(
    lambda n, c, m, hw, k, u, p: Layer("l", "CONV", N=n, C=c, M=m, H=hw, W=hw, R=k, S=k,
                                       stride=u, pad=min(p, k - 1)),
    st.integers(1, 2), st.integers(1, 6), st.integers(1, 6), st.integers(4, 9),
    st.integers(1, 4), st.integers(1, 2), st.integers(0, 1))
arch_st = st.fixed_dictionaries({
    "pe_rows": st.integers(1, 6), "pe_cols": st.integers(1, 5),
    "filter_spad_words": st.integers(1, 48), "ifmap_spad_words": st.integers(1, 12),
    "psum_spad_words": st.integers(1, 6), "glb_banks": st.integers(2, 6),
    "glb_bank_words": st.sampled_from([16, 64, 256]), "filter_buffer_words": st.integers(4, 80)})


@pytest.mark.parametrize("mode", ["exact", "fast"])
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(layer_st, min_size=MONO_LAYERS, max_size=MONO_LAYERS), a=arch_st)
def test_doubling_a_capacity_never_loses_a_layer_nor_raises_its_energy(mode, layers, a):
    """Both searches keep every feasible layer feasible; the exact optimum never rises (the fast
    grid's candidates move with the capacities, so its energy may: docs/rs_model.md)."""
    vals = {k: [a[k]] + [a[k] * (2 if k == j else 1) for j in CAPACITIES] for k in CAPACITIES}
    arch = EyerissV1(**{k: np.array(v) for k, v in vals.items()})
    la = LayerArrays.from_layers(layers)
    space = MONO_SPACE if mode == "exact" else rs.DEFAULT_SEARCH
    res = evaluate_arrays(arch, la, Sparsity.dense(MONO_LAYERS), space=space,
                          dedupe_layers=False)     # one compiled shape for every example
    energy = sum(v for k, v in res.items() if k.startswith("energy_")).astype(np.float64)
    ok = res["feasible"]
    for j, k in enumerate(CAPACITIES, start=1):
        assert (ok[j] | ~ok[0]).all(), (mode, k, "lost a layer")
        worse = ok[0] & (energy[j] > energy[0] * (1 + 1e-12))
        assert mode == "fast" or not worse.any(), (k, energy[0], energy[j])
