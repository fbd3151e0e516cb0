"""Differentiable energy/latency at a fixed mapping: agreement with the counted model, gradients
against central finite differences, and the envelope theorem on the searched model."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.codesign.differentiable import (ARCH_PARAMS, central_difference, network_energy_fn,
                                            soft_cap)
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.workload import Layer, Network

NET = Network("tiny", (
    Layer("c1", "CONV", 2, 3, 16, 16, 16, 3, 3, 1, 1),
    Layer("dw", "DWCONV", 2, 16, 16, 16, 16, 3, 3, 2, 1, 16),
    Layer("c2", "CONV", 2, 16, 24, 8, 8, 1, 1),
    Layer("fc", "FC", 2, 24 * 8 * 8, 10, 1, 1, 1, 1),
))
IACT = np.array([1.0, 0.45, 0.6, 0.3])   # away from the RLC break-even (d ≈ 0.75)
WEIGHT = np.array([0.9, 0.5, 0.35, 0.2])


@pytest.fixture(scope="module")
def fns():
    return {m: network_energy_fn(EyerissV1(), NET, {"iact": IACT, "weight": WEIGHT}, energy_model=m)
            for m in ("v1", "v1_cvpr17")}


def test_matches_counted_model_at_the_mapping_point():
    f = network_energy_fn(EyerissV1(), NET, {"iact": IACT}, cap="hard")
    res = evaluate(EyerissV1(), NET, Sparsity.from_densities(4, iact=IACT))
    arr = res.arrays()
    per = f.per_layer()
    # The only difference is the counted model's integer ceilings on the compressed DRAM words
    # (ifmap and ofmap: < 1 word each, at 200 per word) and on the DRAM cycles (those two words at
    # 0.83 cycles per word, plus < 1 cycle).
    dram_e = EyerissV1().energy.dram
    np.testing.assert_allclose(np.asarray(per["energy"]), arr["energy"][0], rtol=0, atol=2 * dram_e)
    assert np.all(np.asarray(per["energy"]) <= arr["energy"][0])
    np.testing.assert_allclose(np.asarray(per["latency_ms"]), arr["latency_ms"][0], rtol=0,
                               atol=3.0 / (EyerissV1().clock_mhz * 1e3))
    e, lat = f()
    assert float(e) == pytest.approx(res.network_totals().energy[0], rel=1e-3)
    assert float(lat) == pytest.approx(res.network_totals().latency_ms[0], rel=1e-3)


@pytest.mark.parametrize("model", ["v1", "v1_cvpr17"])
@pytest.mark.parametrize("output", [0, 1])
def test_density_gradients_match_finite_differences(fns, model, output):
    f = fns[model]
    d0 = {"iact": jnp.asarray(IACT), "weight": jnp.asarray(WEIGHT)}
    g = jax.grad(lambda d: f(d)[output])(d0)
    for key in ("iact", "weight"):
        def along(x, key=key):
            return f({**d0, key: jnp.asarray(x)})[output]
        fd = central_difference(along, d0[key], h=1e-5)
        scale = max(np.abs(fd).max(), 1e-300)
        np.testing.assert_allclose(np.asarray(g[key]), fd, rtol=1e-6, atol=1e-7 * scale)
    if model == "v1":   # the chip ignores weight zeros; latency never depends on gating
        assert np.all(np.asarray(g["weight"]) == 0)
    else:
        assert output == 1 or np.all(np.asarray(g["weight"]) > 0)


@pytest.mark.parametrize("output", [0, 1])
def test_arch_param_gradients_match_finite_differences(fns, output):
    f = fns["v1_cvpr17"]
    p0 = f.params0
    g = jax.grad(lambda p: f(None, p)[output])(p0)
    for k in ARCH_PARAMS:
        x0 = float(p0[k])
        h = 1e-6 * max(abs(x0), 1.0)
        fd = central_difference(lambda x, k=k: f(None, {**p0, k: jnp.asarray(x[0])})[output],
                                np.array([x0]), h=h)[0]
        assert float(g[k]) == pytest.approx(fd, rel=1e-6, abs=1e-12 * abs(float(f()[output]))), k
    if output == 0:   # energy is linear in the table and does not depend on clocks or buses
        assert float(g["dram"]) > 0 and float(g["clock_mhz"]) == 0
    else:
        assert float(g["clock_mhz"]) < 0 and float(g["dram_bus_bits"]) < 0 and float(g["alu"]) == 0


def test_envelope_theorem_on_the_searched_model():
    """Re-running the full search at perturbed energy-table entries: where the argmin does not move,
    its derivative is the fixed-mapping gradient (per layer); where two mappings tie, the searched
    energy has a kink, and since it is a minimum of functions linear in the table, the fixed-mapping
    gradient is still a supergradient: E*(θ') ≤ E(θ) + g·(θ' - θ) for every θ'."""
    f = network_energy_fn(EyerissV1(), NET, {"iact": IACT}, cap="hard")
    jac = jax.jacobian(lambda p: f.per_layer(None, p)["energy"])(f.params0)
    base = EyerissV1()
    sp = Sparsity.from_densities(4, iact=IACT)
    keys = ("alu", "rf", "noc", "glb", "dram")
    e0 = np.array([float(getattr(base.energy, k)) for k in keys])
    # one batched call (one compile): ±h on each entry, then 16 random ±20% tables
    h = 1e-3
    rng = np.random.default_rng(0)
    table = [e0 + s * h * np.eye(5)[i] for i in range(5) for s in (-1, 1)]
    table += list(e0 * rng.uniform(0.8, 1.2, (16, 5)))
    table = np.array(table)
    arch = base.replace(energy=base.energy.replace(**{k: table[:, i] for i, k in enumerate(keys)}))
    res = evaluate(arch, NET, sp)
    energy = res.arrays()["energy"]
    checked = 0
    for i, k in enumerate(keys):
        fd = (energy[2 * i + 1] - energy[2 * i]) / (2 * h)
        same = np.ones(4, bool)
        for m, vals in f.fixed.mapping.items():
            same &= (res.raw[f"map_{m}"][2 * i:2 * i + 2] == vals[None]).all(axis=0)
        # d/d(dram) is the compressed DRAM word count, which the counted model rounds up
        np.testing.assert_allclose(np.asarray(jac[k])[same], fd[same], rtol=1e-6,
                                   atol=2.0 if k == "dram" else 0.0, err_msg=k)
        checked += int(same.sum())
    assert checked >= 15   # of 20 (layer, parameter) pairs; ties move a few argmins
    searched = energy[10:].sum(axis=1)
    for b in range(16):
        p = {k: f.params0[k] * table[10 + b, i] / e0[i] for i, k in enumerate(keys)}
        linear = float(f(None, p)[0])   # = E(θ) + g·(θ' - θ): energy is linear in the table
        assert searched[b] <= linear * (1 + 1e-6) + 8 * table[10 + b, 4]   # + the ceilings


def test_soft_cap_is_a_close_smooth_lower_bound():
    r = jnp.linspace(0.0, 4.0 / 3.0, 401)
    soft, hard = soft_cap(r, "soft", 0.01), soft_cap(r, "hard")
    assert np.all(np.asarray(soft) <= np.asarray(hard) + 1e-15)
    assert float(jnp.max(hard - soft)) == pytest.approx(0.01 * np.log(2), rel=1e-3)
    dsoft = jax.vmap(jax.grad(lambda x: soft_cap(x, "soft", 0.01)))(r)
    assert np.all(np.isfinite(np.asarray(dsoft)))
    assert np.all(np.asarray(dsoft) >= 0) and np.all(np.asarray(dsoft) <= 1)
    with pytest.raises(ValueError, match="cap"):
        soft_cap(r, "wobbly")


def test_rejects_batches_and_unknown_models():
    with pytest.raises(ValueError, match="one architecture"):
        network_energy_fn(EyerissV1(pe_rows=np.array([8, 12])), NET)
    with pytest.raises(ValueError, match="energy_model"):
        network_energy_fn(EyerissV1(), NET, energy_model="v7")


def test_v2_energy_matches_the_model_and_gradients_match_finite_differences():
    from eyejax.arch.eyeriss_v2 import EyerissV2
    from eyejax.codesign.differentiable import V2_ARCH_PARAMS

    iact = np.array([0.95, 0.45, 0.6, 0.3])     # every layer sparse (CSC mode)
    f = network_energy_fn(EyerissV2(), NET, {"iact": iact, "weight": WEIGHT})
    assert f.energy_model == "v2"
    res = evaluate(EyerissV2(), NET, Sparsity.from_densities(4, iact=iact, weight=WEIGHT)).arrays()
    per = f.per_layer()
    np.testing.assert_allclose(np.asarray(per["energy"]), res["energy"][0], rtol=1e-12)
    # cycles: the model rounds the expected sparse compute cycles and ceils NoC and DRAM cycles
    np.testing.assert_allclose(np.asarray(per["cycles"]), res["cycles"][0], rtol=0, atol=3.0)
    d0 = {"iact": jnp.asarray(iact), "weight": jnp.asarray(WEIGHT)}
    for output in (0, 1):
        g = jax.grad(lambda d: f(d)[output])(d0)
        for key in ("iact", "weight"):
            fd = central_difference(lambda x, key=key: f({**d0, key: jnp.asarray(x)})[output],
                                    d0[key], h=1e-6)
            np.testing.assert_allclose(np.asarray(g[key]), fd, rtol=1e-6,
                                       atol=1e-7 * np.abs(fd).max())
        gp = jax.grad(lambda p: f(None, p)[output])(f.params0)
        for k in V2_ARCH_PARAMS:
            x0 = float(f.params0[k])
            fd = central_difference(lambda x, k=k: f(None, {**f.params0, k: jnp.asarray(x[0])})[output],
                                    np.array([x0]), h=1e-4 * max(abs(x0), 1.0))[0]
            assert float(gp[k]) == pytest.approx(fd, rel=1e-6, abs=1e-9), (output, k)
    with pytest.raises(ValueError, match="does not apply"):
        network_energy_fn(EyerissV2(), NET, energy_model="v1")
