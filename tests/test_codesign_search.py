"""Ask/tell design problem (one batched evaluate per generation) and the searches over it."""
import jax
import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.codesign.problem import MAC_BYTES, Problem, area_proxy
from eyejax.codesign.search import search
from eyejax.evaluate import evaluate
from eyejax.workload import Layer, Network

NET = Network("small", (
    Layer("c1", "CONV", 1, 3, 16, 32, 32, 3, 3, 1, 1),
    Layer("dw", "DWCONV", 1, 16, 16, 32, 32, 3, 3, 2, 1, 16),
    Layer("pw", "CONV", 1, 16, 32, 16, 16, 1, 1),
    Layer("fc", "FC", 1, 32 * 16 * 16, 10, 1, 1, 1, 1),
))
BOUNDS = {"pe_rows": (4, 24), "pe_cols": (4, 24), "glb_banks": (4, 64), "psum_spad_words": (8, 48)}


def test_area_proxy_of_eyeriss_v1():
    # 168 PEs × (224 + 12 + 24) words + 25 × 2048 GLB words + the 4096-word filter buffer, 16 b
    # each, + 256 per MAC
    assert area_proxy(EyerissV1()) == (168 * 260 + 25 * 2048 + 4096) * 2 + MAC_BYTES * 168 == 240_960
    batch = area_proxy(EyerissV1(pe_rows=np.array([12, 24])))
    assert batch[1] > batch[0]


def test_area_proxy_of_eyeriss_v2():
    from eyejax.arch.eyeriss_v2 import EyerissV2

    # 16 clusters × (3 × 12288 + 4 × 15360) GLB bits + 192 PEs × 3284 spad bits, + 256 × 384 MACs
    sram = (16 * (3 * 12288 + 4 * 15360) + 192 * (16 * 12 + 9 * 4 + 192 * 12 + 16 * 7 + 32 * 20)) / 8
    assert area_proxy(EyerissV2()) == sram + MAC_BYTES * 192 * 2 == 373_728


def test_ask_is_deterministic_and_within_bounds():
    p = Problem(NET, EyerissV1(), BOUNDS)
    a, b = p.ask(jax.random.PRNGKey(3), 50), p.ask(jax.random.PRNGKey(3), 50)
    for k, (lo, hi) in BOUNDS.items():
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].min() >= lo and a[k].max() <= hi and a[k].dtype == np.int64
    assert "glb_banks" in p.log_scale and "pe_rows" not in p.log_scale
    np.testing.assert_array_equal(p.from_unit(p.to_unit(a))["glb_banks"], a["glb_banks"])


def test_eval_is_one_batched_evaluate_and_applies_area_budget():
    p = Problem(NET, EyerissV1(), BOUNDS, objective="edp")
    batch = p.ask(jax.random.PRNGKey(0), 12)
    batch["pe_rows"][0], batch["pe_cols"][0] = 24, 24      # larger than the base: over budget
    ev = p.eval(batch)
    tot = evaluate(p.arch_of(batch), NET, objective="edp").network_totals()
    energy = tot.energy.to_numpy()
    np.testing.assert_allclose(ev.energy[ev.feasible], energy[ev.feasible])
    assert not ev.within_area[0] and ev.fitness[0] == np.inf
    ok = ev.feasible & ev.within_area
    np.testing.assert_allclose(ev.fitness[ok], (ev.energy * ev.latency_ms)[ok])
    assert np.all(np.isinf(ev.fitness[~ok]))
    with pytest.raises(ValueError, match="not an integer field"):
        Problem(NET, EyerissV1(), {"energy": (1, 2)})


@pytest.mark.parametrize("method", ["es", "random"])
def test_search_never_worse_than_base_and_deterministic(method):
    p = Problem(NET, EyerissV1(), BOUNDS, objective="edp")
    r1 = search(p, generations=4, popsize=16, seed=1, method=method)
    r2 = search(p, generations=4, popsize=16, seed=1, method=method)
    assert r1.best == r2.best and r1.best_fitness == r2.best_fitness
    assert r1.base == {"pe_rows": 12, "pe_cols": 14, "glb_banks": 25, "psum_spad_words": 24}
    assert r1.best_fitness <= r1.base_fitness and np.isfinite(r1.best_fitness)
    assert len(r1.history) == 64 and r1.num_evaluations == 64
    best = r1.best_row()
    assert best.within_area and best.feasible
