"""The RS+ exact search (search=exact, eyejax.dataflow.rs_plus.exact) returns the model's optimum:
on random small layers × Eyeriss v2 variants (dense and sparse), every integer mapping up to the
architecture's limits is listed with itertools (q, p, r, t, g, b, o, oc beyond the layer, every fold
height and every multiple m of p·t included), kept when `rs_plus.feasible` (the contract) accepts
it, and costed with the exact recount (routes and hops included); the search's objective must
equal the brute-force minimum for energy (movement-only and chip energy), latency and EDP. The
pruning bound (the recount without the mesh) is never above a candidate's objective; the fast
grid never beats the optimum and is feasible exactly where a legal mapping exists. And doubling a
capacity never loses a layer in either mode, nor raises the exact optimum where it only relaxes a
limit (spads, GLB)."""
from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from small_layers import random_small_layer, result_objective

from eyejax.arch.energy import ISCA16_NORMALIZED, PJ_65NM
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.dataflow import rs_plus, search_space
from eyejax.dataflow.mapping import RSPlusMapping
from eyejax.dataflow.rs_plus import exact as rs_plus_exact
from eyejax.dataflow.search import cast
from eyejax.dataflow.shape import layer_shape
from eyejax.evaluate import in_axes_of
from eyejax.metrics import OBJECTIVES, objective_value
from eyejax.sparsity import Sparsity
from eyejax.workload.layer import LayerArrays

CASES = 110       # per energy table: 220 random layers × architectures
ARCH_KEYS = ("cluster_rows", "cluster_cols", "cluster_pe_rows", "cluster_pe_cols",
             "iact_spad_words", "weight_spad_words", "psum_spad_words", "iact_glb_bank_bits",
             "psum_glb_bank_bits", "macs_per_pe", "iact_routers", "psum_routers")
TABLES = {"normalized": ISCA16_NORMALIZED, "pj": PJ_65NM}


def cdiv(a, b):
    return -(-a // b)


def random_case(rng, i):
    layer = random_small_layer(rng, i, r_hi=4, h_hi=8, w_hi=7, m_hi=6)
    while True:
        arch = dict(cluster_rows=int(rng.integers(1, 3)), cluster_cols=int(rng.integers(1, 3)),
                    cluster_pe_rows=int(rng.integers(1, 3)), cluster_pe_cols=int(rng.integers(1, 3)),
                    iact_spad_words=int(rng.integers(1, 7)),
                    weight_spad_words=int(rng.integers(1, 17)),
                    psum_spad_words=int(rng.integers(1, 5)),
                    iact_glb_bank_bits=int(rng.choice([64, 256, 1024])),
                    psum_glb_bank_bits=int(rng.choice([64, 256, 1024])),
                    macs_per_pe=int(rng.choice([1, 2])), iact_routers=int(rng.choice([1, 3])),
                    psum_routers=int(rng.choice([1, 4])))
        if arch["cluster_rows"] * arch["cluster_cols"] * arch["cluster_pe_rows"] * arch["cluster_pe_cols"] <= 8:
            break
    dens = (1.0, 1.0) if rng.random() < 0.5 else (float(rng.uniform(0.5, 1.0)),
                                                  float(rng.uniform(0.5, 1.0)))
    return layer, arch, dens


def mappings(layer, a, dens):
    """Every integer mapping up to the architecture's limits (a superset of the legal space)."""
    E = (layer.H + 2 * layer.pad - layer.R) // layer.stride + 1
    Mg = layer.M // layer.groups
    cpes = a["cluster_pe_rows"] * a["cluster_pe_cols"]
    clusters = a["cluster_rows"] * a["cluster_cols"]
    sparse = min(dens) < 1
    lo_i, lo_w = (dens if sparse else (1.0, 1.0))
    q_lim = int(a["iact_spad_words"] / (layer.S * lo_i))
    p_lim = min(a["psum_spad_words"], int(a["weight_spad_words"] / (layer.S * lo_w)))
    for h, e in itertools.product(range(1, min(layer.R, cpes) + 1), range(1, E + 1)):
        sets = (cpes // (h * e)) * clusters
        if sets < 1:
            continue
        for r, t, g, b, o, oc in itertools.product(*(range(1, sets + 1),) * 6):
            if r * t * g * b * o * oc > sets:
                continue
            for q, p, n in itertools.product(range(1, q_lim + 1), range(1, p_lim + 1),
                                             range(1, layer.N + 1)):
                pt = p * t
                for k in range(1, cdiv(Mg, pt) + 2):
                    yield dict(h=h, e=e, r=r, t=t, g=g, b=b, p=p, q=q, n=n, m=k * pt, o=o, oc=oc)


def arch_of(rows, table):
    return EyerissV2(**{k: np.array([r[k] for r in rows]) for k in ARCH_KEYS}, energy=table)


def sparsity_of(dens):
    d = np.asarray(dens)
    return Sparsity.from_densities(len(d), iact=d[:, 0], weight=d[:, 1], ofmap=d[:, 0])


def take(tree, sel):
    """The rows `sel` of every batched leaf (scalars stay)."""
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v)[sel] if np.ndim(v) else v, tree)


def _scores(rows_shape, arch, sp, mp, clusters, with_noc):
    """[row] (energy, cycles... as objective inputs) of the exact recount, chunked."""
    def one(shape, a, s, m):
        out, en = rs_plus.evaluate_mapping(shape, a, s, m, clusters, True, False, with_noc)
        ov = rs_plus.chip_overhead(out, a)
        return sum(en.values()) + ov["clock"] + ov["leakage"], out["cycles"].astype(jnp.float64)
    f = jax.jit(jax.vmap(one, in_axes=(0, in_axes_of(arch), 0, 0)))
    n = mp.h.shape[0]
    chunk = 1 << 15
    parts = []
    for lo in range(0, n, chunk):
        sl = slice(lo, lo + chunk)
        parts.append(f(take(rows_shape, sl), take(arch, sl), take(sp, sl), take(mp, sl)))
    return tuple(np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(2))


def brute_force(cases, table):
    """[case] minimum of each objective over every legal mapping (inf: none)."""
    rows = [(i, layer, a, dens, mp) for i, (layer, a, dens) in enumerate(cases)
            for mp in mappings(layer, a, dens)]
    idx = np.array([r[0] for r in rows])
    shape = layer_shape(LayerArrays.from_layers([r[1] for r in rows]), jnp.int64)
    arch = arch_of([r[2] for r in rows], table)
    sp = cast(sparsity_of([r[3] for r in rows]), jnp.float64)
    mp = RSPlusMapping(**{k: jnp.asarray([r[4][k] for r in rows], jnp.int64)
                          for k in rs_plus.MAPPING_KEYS})
    ok = np.asarray(rs_plus.feasible(shape, arch, sp, mp, jnp.float64))
    keep = np.nonzero(ok)[0]
    sub = lambda tree: take(tree, keep)
    clusters = max(c[1]["cluster_rows"] * c[1]["cluster_cols"] for c in cases)
    energy, cycles = _scores(sub(shape), sub(arch), sub(sp), sub(mp), clusters, True)
    lb_energy, lb_cycles = _scores(sub(shape), sub(arch), sub(sp), sub(mp), clusters, False)
    best = {}
    for obj in OBJECTIVES:
        score = np.asarray(objective_value(obj, energy, cycles))
        lower = np.asarray(objective_value(obj, lb_energy, lb_cycles))
        assert (lower <= score).all(), (table, obj)       # the pruning bound, exactly
        b = np.full(len(cases), np.inf)
        np.minimum.at(b, idx[keep], score)
        best[obj] = b
    return best, len(rows), keep.size


# One static space per mode for every batch here (the largest bounds the cases and their doubled
# capacities can reach), so each (mode, table, batch size) compiles once.
SPACES = {
    "fast": dataclasses.replace(rs_plus.DEFAULT_SEARCH, max_slots=16, max_clusters=8,
                                noc_float32=False),
    "exact": rs_plus_exact.RSPlusExactSpace(h_max=3, sets_max=16, r_max=4, t_max=5, g_max=2,
                                            b_max=2, o_max=10, oc_values=tuple(range(1, 17)),
                                            max_clusters=8),
}


@functools.lru_cache(maxsize=None)
def _searcher(mode, table, objectives):
    space = SPACES[mode]

    def one(layer, a, s):
        out = {}
        for obj in objectives:
            res = rs_plus.search_layer(layer, a, s, False, obj, space)
            out[obj] = (result_objective(obj, res), res["feasible"])
        return out

    axes = in_axes_of(arch_of([{k: 1 for k in ARCH_KEYS}] * 2, TABLES[table]))
    return jax.jit(jax.vmap(one, in_axes=(0, axes, 0)))


def search_all(cases, mode, table, objectives=OBJECTIVES):
    """[case] the search's objective and feasibility per objective, one compiled call."""
    la = LayerArrays.from_layers([c[0] for c in cases])
    arch = arch_of([c[1] for c in cases], TABLES[table])
    sp = sparsity_of([c[2] for c in cases])
    res = _searcher(mode, table, tuple(objectives))(la, arch, sp)
    return jax.tree_util.tree_map(np.asarray, res)


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(20261206)
    return [random_case(rng, i) for i in range(CASES)]


# every objective with the pJ table (chip energy); energy alone with the movement-only table (the
# exact search compiles once per objective: this keeps the test near a minute)
OBJECTIVES_OF = {"pj": OBJECTIVES, "normalized": ("energy",)}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_exact_search_equals_brute_force_optimum(table, cases):
    want, n_rows, n_legal = brute_force(cases, TABLES[table])
    objectives = OBJECTIVES_OF[table]
    got = search_all(cases, "exact", table, objectives)
    fast = search_all(cases, "fast", table, objectives)
    feasible = np.isfinite(want["energy"])
    assert 0.3 * len(cases) < feasible.sum() < len(cases), feasible.sum()   # both kinds tested
    assert n_legal > 10 * len(cases), (n_rows, n_legal)
    for obj in objectives:
        score, ok = got[obj]
        np.testing.assert_array_equal(ok, feasible, err_msg=f"{table} {obj} feasibility")
        bad = np.nonzero(feasible & ~np.isclose(score, want[obj], rtol=1e-12, atol=0))[0]
        assert bad.size == 0, (table, obj, [(cases[i], score[i], want[obj][i]) for i in bad[:3]])
        f_score, f_ok = fast[obj]
        np.testing.assert_array_equal(f_ok, feasible, err_msg=f"fast {table} {obj} feasibility")
        assert (f_score[feasible] >= want[obj][feasible] * (1 - 1e-9)).all(), (table, obj)


def test_search_modes_by_name():
    assert isinstance(search_space(rs_plus, "exact"), rs_plus_exact.RSPlusExactSpace)
    assert search_space(rs_plus, "fast") is rs_plus.DEFAULT_SEARCH


# ------------------------------------------------------------------ monotone in the hardware
GROW = ("cluster_rows", "cluster_cols", "cluster_pe_rows", "cluster_pe_cols", "iact_spad_words",
        "weight_spad_words", "psum_spad_words", "iact_glb_bank_bits", "psum_glb_bank_bits")
# Fields that only relax a limit: a mapping costs the same with more of them. The cluster grid
# and size also move where the sets sit on the mesh (slot j in cluster floor(j / k), row-major),
# so the same mapping's routes and hops change with them: only feasibility is monotone there.
RELAX = ("iact_spad_words", "weight_spad_words", "psum_spad_words", "iact_glb_bank_bits",
         "psum_glb_bank_bits")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), field=st.sampled_from(GROW))
def test_doubling_a_capacity_never_loses_a_layer(seed, field):
    rng = np.random.default_rng(seed)
    layers = [random_case(rng, i) for i in range(4)]
    grown = [(layer, {**a, field: 2 * a[field]}, dens) for layer, a, dens in layers]
    for mode in ("fast", "exact"):
        small = search_all(layers, mode, "pj", ("energy",))["energy"]
        big = search_all(grown, mode, "pj", ("energy",))["energy"]
        (s_score, s_ok), (b_score, b_ok) = small, big
        assert (b_ok >= s_ok).all(), (mode, field, layers)
        if mode == "exact" and field in RELAX:
            assert (b_score[s_ok] <= s_score[s_ok] * (1 + 1e-12)).all(), (field, layers)


def test_exact_space_is_prepared_from_the_batch():
    """What `evaluate(..., space="exact")` compiles with: the dataflow's prepare_space hands the
    exact space to its own `prepare`, which sizes it by the batch (largest fold height, set
    slots, Cg, Mg, G, N, E, clusters) so every layer of every configuration is covered."""
    from eyejax.workload import Layer

    layers = LayerArrays.from_layers([
        Layer("c1", "CONV", N=2, C=3, M=8, H=9, W=9, R=3, S=3, pad=1),
        Layer("dw", "DWCONV", N=2, C=8, M=8, H=9, W=9, R=5, S=5, pad=2, groups=8)])
    arch = EyerissV2(cluster_rows=np.array([2, 1]), cluster_cols=np.array([2, 3]),
                     cluster_pe_rows=np.array([3, 2]), cluster_pe_cols=2)
    space = rs_plus.prepare_space(search_space(rs_plus, "exact"), arch, layers, None)
    assert isinstance(space, rs_plus_exact.RSPlusExactSpace)
    assert (space.h_max, space.sets_max, space.max_clusters) == (5, 24, 4)
    assert (space.r_max, space.t_max, space.g_max, space.b_max, space.o_max) == (3, 8, 8, 2, 9)
    assert space.oc_values == (1, 3, 9)                  # the divisors of both layers' F = 9
    assert space.chunk_hint >= 1
    tab = space.table
    assert (np.prod(tab, axis=1) <= 24).all() and len({tuple(r) for r in tab}) == len(tab)
    assert (tab.max(axis=0) <= [3, 8, 8, 2, 9, 9]).all()
    assert set(tab[:, 5]) == {1, 3, 9}
