"""Sparsity inputs: densities and real tensors, checked against the functional simulation."""
import jax
import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.dataflow.mapping import RSMapping
from eyejax.dataflow.rs import MAPPING_KEYS
from eyejax.evaluate import evaluate
from eyejax.sim import simulate_rs
from eyejax.sparsity import Sparsity, SparsityError
from eyejax.workload import Layer, Network

NET = Network("two", (Layer("c1", "CONV", 2, 3, 6, 12, 12, 3, 3, 1, 1, 1),
                      Layer("c2", "CONV", 2, 6, 8, 12, 12, 3, 3, 2, 1, 2)))


def relu_tensor(rng, shape, density):
    x = rng.integers(1, 9, shape)
    return np.where(rng.random(shape) < density, x, 0).astype(np.int64)


def test_real_tensors_drive_gating_exactly():
    """energy_alu with tensor-driven sparsity equals e_alu × the simulation's non-zero MACs."""
    rng = np.random.default_rng(0)
    x1 = relu_tensor(rng, (2, 3, 12, 12), 1.0)
    x2 = relu_tensor(rng, (2, 6, 12, 12), 0.4)
    w1 = rng.integers(-3, 4, (6, 3, 3, 3))
    w2 = rng.integers(-3, 4, (8, 3, 3, 3))
    sp = Sparsity.from_tensors(NET, [x1, x2], weights=[w1, w2])
    arch = EyerissV1(pe_rows=6, pe_cols=7)
    df = evaluate(arch, NET, sp).to_dataframe()
    for i, (layer, x, w) in enumerate(zip(NET.layers, [x1, x2], [w1, w2])):
        row = df.iloc[i]
        mp = RSMapping(**{k: int(row[f"map_{k}"]) for k in MAPPING_KEYS})
        out, c = simulate_rs(layer, mp, x, w, arch)
        nonzero_macs = int(c["macs"]) - int(c["macs_zero_ifmap"])
        assert row["energy_alu"] == pytest.approx(arch.energy.alu * nonzero_macs, rel=1e-12)
        ref = jax.lax.conv_general_dilated(x, w, (layer.stride,) * 2, [(layer.pad, layer.pad)] * 2,
                                           dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                           feature_group_count=layer.groups)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
    assert sp.ifmap_rlc_ratio[1] < 1.0 and sp.mac_density[1] < 0.5


def test_densities_match_tensors_on_iid_data():
    rng = np.random.default_rng(1)
    big = Network("big", (Layer("a", "CONV", 4, 16, 8, 64, 64, 3, 3, 1, 0, 1),
                          Layer("b", "CONV", 4, 8, 8, 62, 62, 3, 3, 1, 0, 1)))
    xs = [relu_tensor(rng, (4, 16, 64, 64), 0.3), relu_tensor(rng, (4, 8, 62, 62), 0.3)]
    exact = Sparsity.from_tensors(big, xs)
    model = Sparsity.from_densities(2, iact=0.3)
    np.testing.assert_allclose(exact.mac_density, model.mac_density, atol=0.01)
    np.testing.assert_allclose(exact.ifmap_rlc_ratio, model.ifmap_rlc_ratio, atol=0.02)


def test_sparsity_lowers_energy_and_dram_traffic():
    dense = evaluate(EyerissV1(), NET).network_totals().iloc[0]
    sparse = evaluate(EyerissV1(), NET, Sparsity.from_densities(2, iact=[1.0, 0.3])).network_totals().iloc[0]
    assert sparse.energy < dense.energy and sparse.dram_accesses < dense.dram_accesses
    assert sparse.cycles <= dense.cycles   # zero gating saves energy, not time (JSSC17)


@pytest.mark.parametrize("kw,field", [({"iact": 1.5}, "iact_density"), ({"weight": -0.1}, "weight_density"),
                                      ({"iact": [0.5, 0.5, 0.5]}, "iact_density")])
def test_bad_densities_name_the_field(kw, field):
    with pytest.raises(SparsityError, match=field):
        Sparsity.from_densities(2, **kw)


def test_bad_tensor_shape_names_the_layer():
    with pytest.raises(SparsityError, match="c1"):
        Sparsity.from_tensors(NET, [np.ones((1, 3, 12, 12)), np.ones((2, 6, 12, 12))])
