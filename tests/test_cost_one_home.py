"""One home for the energy formula: every specialized (factorized, for speed) scorer agrees with the
shared cost module (eyejax.dataflow.cost) on random layers and architectures.

* RS (v1): the search's float32 score of the chosen candidate equals `cost.energy` of the exact
  int64 counts of that mapping (float32 tolerance, plus the RLC word ceilings the search skips).
* RS+ (v2): with hop energy 0 the search's float32 score of the chosen candidate equals the
  recount's energy; and the v2 energy formula (`rs_plus.energy`) is `cost.energy` when every value
  is a 16-bit word, nothing is compressed or skipped and hops are free.
* Co-design (`codesign.differentiable.layer_costs`): at the searched mapping and the model's own
  sparsity terms it gives the evaluate() energy of that mapping (up to the ceilings).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eyejax  # noqa: F401  (enables x64)
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.codesign import differentiable as dif
from eyejax.dataflow import cost, rs, rs_plus
from eyejax.dataflow.mapping import RSMapping, RSPlusMapping
from eyejax.dataflow.search import at_best, best_candidate, cast
from eyejax.dataflow.shape import layer_shape
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.workload import Layer, Network
from eyejax.workload.layer import LayerArrays


def random_layers(rng, count):
    out = []
    for i in range(count):
        G = int(rng.choice([1, 1, 2]))
        R = int(rng.choice([1, 3, 5]))
        U = int(rng.choice([1, 2]))
        P = int(rng.integers(0, R // 2 + 1))
        H = int(rng.integers(max(R, 4), 16))
        out.append(Layer(f"l{i}", "CONV", int(rng.integers(1, 4)), G * int(rng.integers(1, 9)),
                         G * int(rng.integers(1, 13)), H, H, R, R, U, P, G))
    return out


def random_table(rng, table):
    return table.replace(**{k: float(getattr(table, k)) * float(rng.uniform(0.5, 2.0))
                            for k in ("alu", "rf", "noc", "glb", "dram")})


def stack(archs):
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *archs)


def row(tree, *idx):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)[idx]), tree)


def movement(raw, b, i):
    """Movement + MAC energy of one result (no chip overhead: normalized tables have none)."""
    keys = [k for k in raw if k.startswith("energy_") and k not in ("energy_clock", "energy_leakage",
                                                                   "energy_control")]
    return sum(float(raw[k][b, i]) for k in keys)


@jax.jit
def _rs_score(layer, arch, sp, first):
    f32 = jnp.float32
    shape = layer_shape(layer, f32)
    arch32, sp32 = cast(arch, f32), cast(sp, f32)
    mp, ok = rs.candidate_grid(shape, arch32, rs.DEFAULT_SEARCH, f32)
    energy, _ = rs.candidate_scores(shape, arch32, sp32, first, mp, "energy", f32)
    best, _ = best_candidate(energy, ok)
    return at_best(energy, best), {k: jnp.round(at_best(getattr(mp, k), best)) for k in rs.MAPPING_KEYS}


@pytest.mark.parametrize("seed", [0, 1])
def test_rs_scores_are_the_shared_cost(seed):
    rng = np.random.default_rng(seed)
    layers = random_layers(rng, 4)
    net = Network("random", layers)
    archs = [EyerissV1(pe_rows=int(rng.choice([4, 6, 12])), pe_cols=int(rng.choice([5, 8, 14])),
                       energy=random_table(rng, EyerissV1().energy)) for _ in range(3)]
    sp = Sparsity.from_densities(len(layers), iact=rng.uniform(0.3, 1.0, len(layers)))
    raw = evaluate(stack(archs), net, sp).raw
    arrays = LayerArrays.from_layers(layers)
    first = np.asarray(arrays.first)
    for b, arch in enumerate(archs):
        for i, layer in enumerate(layers):
            if not raw["feasible"][b, i]:
                continue
            spi = row(sp, i)
            score, mp = _rs_score(row(arrays, i), arch, spi, jnp.asarray(first[i]))
            for k in rs.MAPPING_KEYS:   # the scorer picks the mapping the search reports
                assert int(mp[k]) == int(raw[f"map_{k}"][b, i]), (b, i, k)
            mapping = RSMapping(**{k: jnp.int64(raw[f"map_{k}"][b, i]) for k in rs.MAPPING_KEYS})
            c = rs.layer_counts(layer.as_row(), arch, mapping)
            shared = cost.total_energy(cost.energy(c, arch, spi, first[i]))
            assert movement(raw, b, i) == pytest.approx(float(shared), rel=1e-12)
            # float32 scores; the search does not round RLC-compressed words up (<= 2 words)
            assert float(score) == pytest.approx(float(shared), rel=2e-6, abs=2 * arch.energy.dram)


SMALL_V2 = dict(cluster_rows=3, cluster_cols=3, cluster_pe_rows=2, cluster_pe_cols=3)


@jax.jit
def _rs_plus_score(layer, arch, sp):
    f32 = jnp.float32
    shape = layer_shape(layer, f32)
    arch32, sp32 = cast(arch, f32), cast(sp, f32)
    mp, ok = rs_plus.candidate_grid(shape, arch32, sp32, rs_plus.DEFAULT_SEARCH, f32)
    energy, _ = rs_plus.candidate_scores(shape, arch32, sp32, False, mp, "energy", f32)
    best, _ = best_candidate(energy, ok)
    return at_best(energy, best), {k: jnp.round(at_best(getattr(mp, k), best))
                                   for k in rs_plus.MAPPING_KEYS}


@pytest.mark.parametrize("dens", [(1.0, 1.0), (0.6, 0.4)], ids=["dense", "sparse"])
def test_rs_plus_scores_are_the_recount(dens):
    rng = np.random.default_rng(7)
    layers = random_layers(rng, 4)
    net = Network("random", layers)
    archs = [EyerissV2(**SMALL_V2, energy=random_table(rng, EyerissV2().energy).replace(hop=0.0))
             for _ in range(2)]
    sp = Sparsity.from_densities(len(layers), iact=dens[0], weight=dens[1])
    raw = evaluate(stack(archs), net, sp).raw
    arrays = LayerArrays.from_layers(layers)
    for b, arch in enumerate(archs):
        for i in range(len(layers)):
            if not raw["feasible"][b, i]:
                continue
            score, mp = _rs_plus_score(row(arrays, i), arch, row(sp, i))
            for k in rs_plus.MAPPING_KEYS:
                assert int(mp[k]) == int(raw[f"map_{k}"][b, i]), (b, i, k)
            assert float(score) == pytest.approx(movement(raw, b, i), rel=2e-6)


def test_rs_plus_energy_is_the_shared_cost_for_plain_words():
    rng = np.random.default_rng(11)
    layers = random_layers(rng, 3)
    one = jnp.ones((), jnp.float64)
    dense = Sparsity(iact_density=one, weight_density=one, ofmap_density=one, mac_density=one,
                     ifmap_rlc_ratio=one, ofmap_rlc_ratio=one)
    for _ in range(2):
        arch = EyerissV2(**SMALL_V2, data_bits=16, psum_bits=16,
                         energy=random_table(rng, EyerissV2().energy).replace(hop=0.0))
        raw = evaluate(arch, Network("random", layers)).raw
        for i, layer in enumerate(layers):
            if not raw["feasible"][0, i]:
                continue
            mp = RSPlusMapping(**{k: jnp.int64(raw[f"map_{k}"][0, i]) for k in rs_plus.MAPPING_KEYS})
            c = rs_plus.layer_counts(layer.as_row(), arch, mp)
            fm = rs_plus.formats(rs_plus.arch_in(arch, jnp.float64), dense, mp.q, mp.p, jnp.float64)
            zero = {f"hops_{d}": 0.0 for d in rs_plus.DATA_TYPES}
            v2 = rs_plus.energy(c, zero, arch, fm)
            shared = cost.energy(c, arch, dense, False)
            assert set(v2) == set(shared)
            for k in shared:
                assert float(v2[k]) == pytest.approx(float(shared[k]), rel=1e-12), k


@pytest.mark.parametrize("seed", [0, 3])
def test_differentiable_costs_are_the_evaluated_energy(seed):
    rng = np.random.default_rng(seed)
    layers = random_layers(rng, 4)
    net = Network("random", layers)
    arch = EyerissV1(pe_rows=int(rng.choice([6, 12])), energy=random_table(rng, EyerissV1().energy))
    iact = rng.uniform(0.3, 1.0, len(layers))
    fits = evaluate(arch, net).raw["feasible"][0]        # fix_mapping needs every layer to fit
    layers, iact = [l for l, ok in zip(layers, fits) if ok], iact[fits]
    net = Network("random", layers)
    sp = Sparsity.from_densities(len(layers), iact=iact)
    fixed = dif.fix_mapping(arch, net, sp)
    terms = {"mac_density": jnp.asarray(sp.mac_density),
             "ifmap_ratio": jnp.where(fixed.first, 1.0, jnp.asarray(sp.ifmap_rlc_ratio)),
             "ofmap_ratio": jnp.asarray(sp.ofmap_rlc_ratio),
             "filter_ratio": jnp.ones(len(layers))}
    per = dif.layer_costs(fixed, terms, dif.arch_params(arch))
    raw = evaluate(arch, net, sp).raw
    for i in range(len(layers)):
        # the counted model rounds the compressed DRAM words up (at most 2 words a layer)
        assert float(per["energy"][i]) == pytest.approx(movement(raw, 0, i), rel=1e-12,
                                                        abs=2 * arch.energy.dram)
    # v2: the fixed-mapping energy at the search's densities is the evaluated energy
    arch2 = EyerissV2(**SMALL_V2, energy=random_table(rng, EyerissV2().energy))
    f = dif.network_energy_fn(arch2, net, {"iact": 0.7, "weight": 0.5})
    raw2 = evaluate(arch2, net, Sparsity.from_densities(len(layers), iact=0.7, weight=0.5)).raw
    per2 = f.per_layer()
    for i in range(len(layers)):
        assert float(per2["energy"][i]) == pytest.approx(movement(raw2, 0, i), rel=1e-9)
