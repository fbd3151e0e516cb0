"""Layers searched in parts (eyejax.dataflow.partition_search_space): on Eyeriss v2 the ungrouped
layers of a network with grouped ones search without the group-split axis, and on both chips the
layers with one ofmap row (FC) without the set-width axis and those with one channel per group
(depthwise) without the channel splits. The parts must give exactly what one
search over every layer gives: every count and mapping bit for bit, every energy to an ulp, with repeated layers
(dedupe), swept [configs, layers] sparsity and a starved configuration."""
from __future__ import annotations

import numpy as np
import pytest

import eyejax.evaluate as ev
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.dataflow import get_dataflow, partition_search_space, prepare_search_space
from eyejax.sparsity import Sparsity
from eyejax.workload.layer import Layer
from eyejax.workload.network import Network

NET = Network("mixed", (
    Layer("conv1", "CONV", N=1, C=3, M=16, H=17, W=17, R=3, S=3, stride=2, pad=1),
    Layer("dw", "CONV", N=1, C=16, M=16, H=9, W=9, R=3, S=3, pad=1, groups=16),
    Layer("pw", "CONV", N=1, C=16, M=24, H=9, W=9, R=1, S=1),
    Layer("g2", "CONV", N=1, C=24, M=24, H=9, W=9, R=3, S=3, pad=1, groups=2),
    Layer("pw_again", "CONV", N=1, C=16, M=24, H=9, W=9, R=1, S=1),
    Layer("fc", "FC", N=1, C=24 * 9 * 9, M=10, H=1, W=1, R=1, S=1),
))


def test_parts_drop_only_duplicate_splits():
    layers = NET.arrays()
    space = prepare_search_space(get_dataflow("rs_plus"), None, EyerissV2(), layers)
    parts = partition_search_space(get_dataflow("rs_plus"), space, layers)
    assert [list(idx) for idx, _ in parts] == [[0, 2, 4], [1], [3], [5]]
    plain, dw, g2, fc = (part_space for _, part_space in parts)
    assert g2 == space and plain.size * 2 == space.size and fc.size * 6 == space.size
    assert dw.size * 18 == space.size and dw.g_splits == space.g_splits
    convs = Network("plain", tuple(l for l in NET.layers if l.name in ("conv1", "pw")))
    assert len(partition_search_space(get_dataflow("rs_plus"), space, convs.arrays())) == 1
    rs = get_dataflow("rs")
    v1_parts = partition_search_space(rs, rs.DEFAULT_SEARCH, layers)
    assert [list(idx) for idx, _ in v1_parts] == [[0, 2, 3, 4], [1], [5]]
    assert v1_parts[1][1].size * 18 == rs.DEFAULT_SEARCH.size
    assert v1_parts[2][1].size * 4 == rs.DEFAULT_SEARCH.size
    exact = prepare_search_space(rs, "exact", EyerissV1(), layers)
    assert len(partition_search_space(rs, exact, layers)) == 1


V2_BATCH = EyerissV2(cluster_rows=np.array([8, 4, 2, 8, 1, 8]),
                     iact_spad_words=np.array([16, 16, 8, 16, 16, 2]))   # the last: 3-wide filters do not fit
V1_BATCH = EyerissV1(pe_rows=np.array([12, 8, 4, 12, 2, 12]),
                     ifmap_spad_words=np.array([12, 12, 6, 12, 12, 2]))


@pytest.mark.parametrize("arch", [V2_BATCH, V1_BATCH], ids=["v2", "v1"])
def test_parts_equal_one_search(arch):
    B, L = 6, len(NET.layers)
    rng = np.random.default_rng(3)
    iact = rng.uniform(0.3, 1.0, (B, L))
    iact[:, 4] = iact[:, 2]                      # keep pw_again a repeat of pw
    rows = [Sparsity.from_densities(L, iact=iact[b], weight=np.linspace(0.4, 1.0, L),
                                    ofmap=np.full(L, 0.6)) for b in range(B)]
    sp = rows[0].replace(**{k: np.stack([getattr(r, k) for r in rows])    # swept: [B, L]
                            for k in ("iact_density", "mac_density", "ifmap_rlc_ratio")})
    layers = NET.arrays()
    parts = ev.evaluate_arrays(arch, layers, sp, objective="edp", search_parts=True)
    whole = ev.evaluate_arrays(arch, layers, sp, objective="edp", search_parts=False)
    assert parts.keys() == whole.keys()
    for k in whole:
        if np.issubdtype(np.asarray(whole[k]).dtype, np.floating):
            # the two programs share the recount's expressions, but XLA may fuse (and contract
            # into FMAs) differently in each: a float may move by an ulp
            np.testing.assert_allclose(parts[k], whole[k], rtol=1e-15, atol=0, err_msg=k)
        else:   # counts, cycles, mappings, feasibility: bit for bit
            np.testing.assert_array_equal(parts[k], whole[k], err_msg=k)
    assert not parts["feasible"][5].all() and parts["feasible"][0].all()
    if "map_g" in parts:
        assert (parts["map_g"][:, 1] > 1).any()  # the grouped layer does use its group split


def test_parts_automatic_from_the_configuration_count():
    cpu = ev.PARTS_MIN_CONFIGS["cpu"]
    assert not ev.use_search_parts(None, cpu - 1, devices=1)     # the tests run on the CPU
    assert ev.use_search_parts(None, cpu, devices=1)
    assert ev.use_search_parts(True, 1) and not ev.use_search_parts(False, 10 ** 9)
    with pytest.raises(ValueError, match="search_parts must be True, False or None"):
        ev.evaluate(EyerissV2(), NET, search_parts="yes")
