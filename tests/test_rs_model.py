"""The closed-form RS model: internal consistency, invariants, precision, infeasibility."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
from eyejax.arch.errors import ArchError
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.dataflow import cost, rs
from eyejax.dataflow.mapping import RSMapping
from eyejax.dataflow.search import cast
from eyejax.dataflow.shape import layer_shape
from eyejax.dataflow.tiling import clipped_cover
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.workload import Layer, Network, get_network


def brute_cover(num_out, e, U, K, P, size):
    total = 0
    contiguous = U < K
    e = e if contiguous else 1
    for s0 in range(0, num_out, e):
        es = min(e, num_out - s0)
        rows = set()
        for j in range(es):
            rows.update(range((s0 + j) * U, (s0 + j) * U + K))
        total += sum(1 for y in rows if P <= y < P + size)
    return total


@pytest.mark.parametrize("K,U,P,size", [(3, 1, 1, 7), (11, 4, 0, 227), (5, 1, 2, 27), (3, 2, 1, 9),
                                        (1, 2, 0, 8), (7, 2, 3, 20), (3, 3, 1, 10), (2, 3, 1, 10),
                                        (4, 1, 3, 5)])
def test_clipped_cover_matches_brute_force(K, U, P, size):
    num_out = (size + 2 * P - K) // U + 1
    for e in range(1, num_out + 1):
        got = int(clipped_cover(jnp.int64(num_out), jnp.int64(e), U, K, P, size))
        assert got == brute_cover(num_out, e, U, K, P, size), (e, num_out)


SMALL_LAYERS = [
    Layer("a", "CONV", 2, 6, 8, 9, 9, 3, 3, 1, 1, 1),
    Layer("b", "CONV", 1, 4, 6, 11, 11, 3, 3, 2, 1, 2),
    Layer("c", "DWCONV", 1, 8, 8, 10, 10, 3, 3, 1, 1, 8),
    Layer("d", "FC", 3, 16, 10, 2, 2, 2, 2, 1, 0, 1),
    Layer("e", "CONV", 1, 3, 5, 20, 20, 5, 5, 1, 2, 1),
    Layer("f", "CONV", 2, 5, 7, 12, 12, 1, 1, 2, 0, 1),
]


@pytest.mark.parametrize("layer", SMALL_LAYERS, ids=lambda l: l.name)
@pytest.mark.parametrize("objective", ["energy", "latency"])
def test_factorized_scores_equal_counts(layer, objective):
    """The search's per-axis cost terms add up to the same totals as `counts` + `cost`."""
    arch = EyerissV1(pe_rows=4, pe_cols=5, glb_banks=8, glb_bank_words=64)
    shape = layer_shape(layer.as_row(), jnp.float64)
    arch64 = cast(arch, jnp.float64)
    sp = Sparsity.from_densities(1, iact=0.6)
    sp1 = jax.tree_util.tree_map(lambda x: jnp.asarray(x[0]), sp)
    first = jnp.asarray(False)
    mp, ok = rs.candidate_grid(shape, arch64, rs.DEFAULT_SEARCH, jnp.float64)
    energy, cycles = rs.candidate_scores(shape, arch64, sp1, first, mp, objective, jnp.float64)
    full = ok.shape
    mpf = RSMapping(**{k: jnp.broadcast_to(getattr(mp, k), full) for k in rs.MAPPING_KEYS})
    c = rs.counts(shape, arch64, mpf, jnp.float64)
    en = cost.energy(c, arch64, sp1, first)
    # the search does not round compressed DRAM words up: compare before rounding
    d_if = c["dram_ifmap_reads"] * sp1.ifmap_rlc_ratio
    d_of = c["dram_psum_writes"] * sp1.ofmap_rlc_ratio
    ref = cost.total_energy(en) - en["dram_ifmap"] - en["dram_psum"] + arch.energy.dram * (d_if + d_of)
    assert bool(ok.any())
    np.testing.assert_allclose(np.asarray(energy)[np.asarray(ok)], np.asarray(ref)[np.asarray(ok)], rtol=1e-12)
    # every feasible candidate passes the model's own capacity check
    assert bool(jnp.all(jnp.where(ok, rs.feasible(shape, arch64, mpf, jnp.float64), True)))
    if cycles is not None:
        # total latency: processing (compute + ramp + NoC/DRAM-filter stalls) + the DRAM wait for
        # ifmap loads and ofmap write-back (filters stream during the passes)
        words = c["dram_ifmap_reads"] * sp1.ifmap_rlc_ratio + d_of
        dram = words * 16 * 200 / (64 * 60)
        ref_c = c["compute_cycles"] + c["ramp_cycles"] + c["stall_cycles"] + dram
        np.testing.assert_allclose(np.asarray(cycles)[np.asarray(ok)], np.asarray(ref_c)[np.asarray(ok)], rtol=1e-12)


def _real_extent(l):
    E, F = l.E, l.F
    rows = set(y for o in range(E) for y in range(o * l.stride, o * l.stride + l.R) if l.pad <= y < l.pad + l.H)
    cols = min((F - 1) * l.stride + l.S, l.pad + l.W) - l.pad
    return len(rows), cols


@pytest.mark.parametrize("name", ["alexnet", "mobilenet_v1_0.5_128", "vgg16"])
def test_physical_invariants(name):
    net = get_network(name)
    df = evaluate(EyerissV1(), net).to_dataframe()
    assert df["feasible"].all()
    for l, row in zip(net.layers, df.itertuples()):
        rows, cols = _real_extent(l)
        assert row.macs == l.macs
        assert row.dram_ifmap_reads >= l.N * l.C * rows * cols          # every used input read
        assert row.dram_filter_reads >= l.M * (l.C // l.groups) * l.R * l.S
        assert row.dram_psum_writes == l.N * l.M * l.E * l.F            # each output written once
        assert row.rf_ifmap_reads == row.rf_filter_reads == row.rf_psum_writes == l.macs
        assert row.noc_filter == row.rf_filter_writes and row.noc_ifmap == row.rf_ifmap_writes
        assert row.glb_psum_writes >= l.N * l.M * l.E * l.F
        assert row.compute_cycles * row.active_pes >= l.macs            # no PE does >1 MAC/cycle
        assert 0 < row.utilization <= 1
        assert row.processing_cycles == row.compute_cycles + row.ramp_cycles + row.stall_cycles
        assert row.cycles == row.processing_cycles + row.dram_wait_cycles
        assert row.stall_cycles >= 0 and row.dram_wait_cycles <= row.dram_cycles


def test_counts_exact_past_2_to_the_32():
    """int64 counts stay exact where float32 (24-bit mantissa) and int32 would not."""
    net = get_network("vgg16")
    df = evaluate(EyerissV1(), net).to_dataframe()
    total_macs = int(df["macs"].sum())
    assert total_macs == sum(l.macs for l in net.layers) > 2**32
    assert df["rf_ifmap_reads"].dtype == np.int64
    counts = df[[c for c in df.columns if c.startswith(("rf_", "noc_", "glb_"))]].to_numpy().ravel()
    assert counts.max() > 2**31                                  # int32 would overflow
    alex = evaluate(EyerissV1(), get_network("alexnet")).network_totals()
    sums = alex[["glb_accesses", "noc_accesses", "rf_accesses", "cycles"]].to_numpy().ravel()
    assert any(int(np.float32(v)) != int(v) for v in sums)       # float32 would round
    big = df.loc[df["macs"].idxmax()]
    assert int(big["rf_psum_reads"]) == int(big["macs"])


def test_infeasible_marked_not_nan():
    net = Network("t", (SMALL_LAYERS[0], SMALL_LAYERS[4]))
    arch = EyerissV1(filter_spad_words=np.array([224, 2, 224]), ifmap_spad_words=np.array([12, 12, 2]))
    res = evaluate(arch, net)
    df = res.to_dataframe()
    feas = df.pivot(index="config_id", columns="layer", values="feasible")
    assert feas.loc[0].all() and not feas.loc[1].any() and not feas.loc[2].any()
    assert not df.select_dtypes("number").drop(columns=["power_mw"]).isna().any().any()
    assert (df.loc[~df.feasible, "energy"] == 0).all()
    tot = res.network_totals()
    assert list(tot["feasible"]) == [True, False, False]


def test_batch_equals_individual_runs():
    net = get_network("mobilenet_v1_0.5_128")
    rows = np.array([8, 12, 16])
    batch = evaluate(EyerissV1(pe_rows=rows, glb_banks=np.array([25, 10, 40])), net).to_dataframe()
    for i, (r, g) in enumerate(zip(rows, [25, 10, 40])):
        one = evaluate(EyerissV1(pe_rows=int(r), glb_banks=g), net).to_dataframe()
        part = batch[batch.config_id == i].reset_index(drop=True)
        for col in ("energy", "cycles", "dram_accesses", "map_e", "map_p", "map_m", "feasible"):
            np.testing.assert_array_equal(part[col].to_numpy(), one[col].to_numpy())


def test_objectives_trade_off():
    net = get_network("alexnet")
    e = evaluate(EyerissV1(), net, objective="energy").to_dataframe()
    l = evaluate(EyerissV1(), net, objective="latency").to_dataframe()
    assert (l["cycles"] <= e["cycles"] * (1 + 1e-6)).all()
    assert (e["energy"] <= l["energy"] * (1 + 1e-6)).all()


@pytest.mark.parametrize("field,value", [("pe_rows", 0), ("glb_banks", -3), ("clock_mhz", 0)])
def test_bad_arch_names_field(field, value):
    with pytest.raises(ArchError, match=field):
        evaluate(EyerissV1(**{field: value}), get_network("alexnet"))


def test_bad_objective():
    with pytest.raises(ValueError, match="objective"):
        evaluate(EyerissV1(), get_network("alexnet"), objective="speed")

