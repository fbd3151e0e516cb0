"""Eyeriss v1 against the silicon (experiments/v1_silicon.py): JSSC17 Table V per layer with the
searched and the chip's mapping, and the issue's targets. Pins the model's figures so a change to
the model that moves them shows up here (update with a reason)."""
from __future__ import annotations

import numpy as np
import pytest

from eyejax.app.report import load_experiment

mod = load_experiment("v1_silicon")

# the model's figures per layer CONV1-5 (pinned; relative tolerance below)
PINNED = {
    "searched": {
        "active_pes": (154, 135, 156, 156, 156),
        "processing_latency_ms": (15.8954, 36.528, 21.2045, 15.9034, 10.4861),
        "total_latency_ms": (22.9839, 39.5752, 23.6184, 17.4213, 11.994),
        "glb_mb": (19.9538, 77.568, 44.286, 33.2145, 22.143),
        "dram_mb": (5.6327, 3.9203, 2.9281, 2.0557, 1.6086),
        "power_mw": (343.689, 278.226, 250.0104, 238.259, 233.5604),
    },
    "chip": {
        "active_pes": (154, 135, 156, 156, 156),
        "processing_latency_ms": (15.8954, 37.1328, 22.224, 15.7306, 10.487),
        "total_latency_ms": (22.9839, 40.18, 24.1091, 16.9498, 11.3487),
        "glb_mb": (19.9538, 79.0441, 71.9831, 39.4476, 26.2984),
        "dram_mb": (5.6327, 3.9203, 2.6743, 1.9123, 1.2983),
        "power_mw": (343.689, 277.1378, 252.0012, 240.7719, 243.7155),
    },
}
# VGG-16 CONV, batch 3, whole network (50% zeros assumed): fps, chip power, DRAM accesses/MAC.
# Far from the chip's 0.7 fps (README); pinned so that any change shows. 2026-12-05: the filter
# buffer capacity (docs/rs_model.md "Capacity") moved them from 1.04861 fps, 192.024 mW, 0.0041782.
VGG_PINNED = {"fps": 1.25529, "power_mw": 232.232, "dram_per_mac": 0.0044504}


@pytest.fixture(scope="module")
def runs():
    return {"searched": mod.alexnet_layers(None), "chip": mod.alexnet_layers("alexnet_jssc17"),
            "exact": mod.alexnet_layers(None, search="exact")}


def test_exact_optimum_is_below_the_grid_and_slower_than_the_chip(runs):
    """search=exact: no layer costs more chip energy than the fast grid's choice; the optimum uses
    fewer PEs than the chip on CONV1 and CONV2 (README "Mapping search": not a target)."""
    exact, fast = runs["exact"], runs["searched"]
    assert (exact["energy"].to_numpy() <= fast["energy"].to_numpy() * (1 + 1e-9)).all()
    assert exact["energy"].sum() < 0.96 * fast["energy"].sum()
    assert list(exact["active_pes"]) == [55, 90, 156, 156, 156]


@pytest.mark.parametrize("which", ["searched", "chip"])
def test_pinned(runs, which):
    df = runs[which]
    for k, want in PINNED[which].items():
        if want is not None:
            np.testing.assert_allclose(df[k].to_numpy(float), want, rtol=1e-4, err_msg=k)


def test_searched_mapping_meets_the_targets(runs):
    """Issue 10's targets: active PEs exact; latencies, GLB and DRAM within ±10% and chip power
    within ±15%, as the mean (signed, and also absolute) error over CONV1-5."""
    err = mod.errors(runs["searched"])
    assert list(runs["searched"]["active_pes"]) == list(mod.TABLE_V["active_pes"])
    for k, tol in mod.TARGETS.items():
        if tol:
            assert abs(err[k].mean()) <= tol, (k, err[k])
            assert np.abs(err[k]).mean() <= tol, (k, err[k])


def test_chip_mapping_is_table_iii_and_close(runs):
    df = runs["chip"]
    assert df["mapping_fixed"].all()
    err = mod.errors(df)
    for k, tol in mod.TARGETS.items():
        assert np.abs(err[k]).mean() <= max(tol, 0.0) + (0 if k == "active_pes" else 5.0), (k, err[k])


def test_vgg16_whole_network_pinned():
    res = mod.vgg_result()
    got = mod.vgg_figures(result=res)
    # the per-layer prediction table the report prints: one row per CONV layer, Table V's columns
    table = mod.vgg_layer_markdown(res).splitlines()
    assert len(table) == 2 + 13 and table[2].startswith("| CONV1-1 | h3 ")
    assert all(label in table[0] for label in mod.LABELS.values())
    for k, want in VGG_PINNED.items():
        assert got[k] == pytest.approx(want, rel=1e-3), k
    # the targets it misses (README): power within +-5%, DRAM +27%, frame rate +79%
    assert abs(got["power_mw"] / mod.VGG_PUBLISHED["power_mw"] - 1) < 0.05
    assert abs(got["dram_per_mac"] / mod.VGG_PUBLISHED["dram_per_mac"] - 1) < 0.3
    assert got["fps"] > mod.VGG_PUBLISHED["fps"]
