"""Eyeriss v2 through the configuration layer and the `eyejax` command."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.app.config import ConfigError, arch_from_config


def test_v2_family_builds_and_sweeps():
    arch, swept = arch_from_config(OmegaConf.create(
        {"family": "eyeriss_v2", "cluster_rows": [4, 8], "energy": {"hop": [1.0, 3.0]}}))
    assert isinstance(arch, EyerissV2)
    assert list(swept) == ["arch.cluster_rows", "arch.energy.hop"]
    np.testing.assert_array_equal(swept["arch.cluster_rows"], [4, 4, 8, 8])
    np.testing.assert_array_equal(arch.energy.hop, [1.0, 3.0, 1.0, 3.0])


@pytest.mark.parametrize("cfg,needle", [
    ({"family": "eyeriss_v3"}, "arch.family"),
    ({"family": "eyeriss_v2", "pe_rows": 12}, "pe_rows"),          # a v1 field on v2
    ({"family": "eyeriss_v2", "cluster_pe_cols": 0}, "cluster_pe_cols"),
    ({"family": "eyeriss_v2", "macs_per_pe": []}, "macs_per_pe"),
])
def test_v2_bad_config_names_the_field(cfg, needle):
    with pytest.raises((ConfigError, ValueError), match=needle):
        arch_from_config(OmegaConf.create(cfg))


def test_eyejax_command_runs_v2(tmp_path):
    env = dict(os.environ, WANDB_SILENT="true")
    out = subprocess.run(
        [sys.executable, "-m", "eyejax.app.cli", "arch=eyeriss_v2", "workload=mobilenet_v1_0.5_128",
         "sparsity=relu50", "wandb.mode=disabled", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert len(df) == 28 and df["feasible"].all()
    for col in ("noc_mode_ifmap_name", "router_ifmap", "hops_psum", "sparsity_iact_density",
                "energy_noc", "utilization", "map_g", "map_b"):
        assert col in df.columns
    assert set(df["noc_mode_filter_name"]) <= {"unicast", "grouped_multicast",
                                               "interleaved_multicast", "broadcast"}


def test_v2_sweep_plan_takes_static_bounds_from_the_grid_corner():
    """Every chunk of a sweep shares one compiled function: the plan's search space is prepared
    from the grid's bounding corner (largest cluster grid), not per chunk."""
    from eyejax.sparsity import Sparsity
    from eyejax.sweep import build_grid, make_plan
    from eyejax.workload import get_network

    net = get_network("resnet50")
    grid = build_grid({"arch": {"cluster_rows": [1, 2, 8], "cluster_pe_cols": [3, 6]}}, None,
                      EyerissV2(), Sparsity.dense(len(net.layers)), len(net.layers))
    corner, _ = grid.corner()
    assert (int(corner.cluster_rows), int(corner.cluster_pe_cols)) == (8, 6)
    plan = make_plan(grid, net, part_size=2)
    space = plan.space
    assert (space.max_clusters, space.max_slots) == (16, 8 * 2 * 3 * 6)
    assert space.noc_float32 and space.n_splits == (1,) and space.g_splits == (1,)


@pytest.mark.parametrize("overrides,want", [
    (["arch=eyeriss_v2"], (1 << 20, 100_000)),                      # the paper's setup: unlimited
    (["arch=eyeriss_v2", "arch/dram=ddr4_3200"], (64, 3200)),        # 25.6 GB/s
    (["arch=eyeriss_v2", "arch/dram=lpddr4_3200"], (32, 3200)),
    (["arch=eyeriss_v2", "arch/dram=ddr4_3200", "arch.dram_bus_bits=128"], (128, 3200)),
    ([], (64, 60)),                                                  # v1 keeps its measured link
    (["arch/dram=ddr4_3200"], (64, 3200)),
    (["arch/dram=unlimited"], (1 << 20, 100_000)),                   # every preset fits v1 too
])
def test_dram_presets_compose(overrides, want):
    from hydra import compose, initialize_config_dir

    from eyejax.app.runtime import CONF_DIR
    from eyejax.arch.dram import DRAM_PRESETS

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    arch, _ = arch_from_config(cfg.arch)
    assert (int(arch.dram_bus_bits), int(arch.dram_clock_mhz)) == want
    d = EyerissV2()
    assert dict(dram_bus_bits=d.dram_bus_bits, dram_clock_mhz=d.dram_clock_mhz) == DRAM_PRESETS["unlimited"]
    for name, preset in DRAM_PRESETS.items():     # the Hydra presets are the Python ones
        with open(os.path.join(CONF_DIR, "arch", "dram", f"{name}.yaml")) as f:
            assert OmegaConf.to_container(OmegaConf.create(f.read())) == preset


@pytest.mark.parametrize("arch_cfg, axes", [
    ({"family": "eyeriss_v1", "pe_rows": [8, 12], "glb_banks": [25, 50, 60],
      "energy": {"dram": [100, 200]}},
     {"arch": {"pe_rows": [8, 12], "glb_banks": [25, 50, 60], "energy": {"dram": [100, 200]}}}),
    ({"family": "eyeriss_v2", "cluster_rows": [4, 8], "energy": {"hop": [1.0, 3.0]}},
     {"arch": {"cluster_rows": [4, 8], "energy": {"hop": [1.0, 3.0]}}}),
])
def test_list_valued_fields_sweep_like_a_sweep_grid(arch_cfg, axes):
    """`eyejax arch.<field>=[...]` and `eyejax sweep.axes...` decode the same configurations."""
    from eyejax.sparsity import Sparsity
    from eyejax.sweep.grid import build_grid

    arch, swept = arch_from_config(OmegaConf.create(arch_cfg))
    base, _ = arch_from_config(OmegaConf.create({"family": arch_cfg["family"]}))
    g = build_grid(axes, None, base, Sparsity.from_densities(1), 1)
    idx = np.arange(g.size)
    assert list(swept) == g.names and len(next(iter(swept.values()))) == g.size
    for k, v in g.columns(idx).items():
        np.testing.assert_array_equal(swept[k], v)
    import jax

    for a, b in zip(jax.tree_util.tree_leaves(arch), jax.tree_util.tree_leaves(g.arch(idx))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("family", ["eyeriss_v1", "eyeriss_v2"])
def test_every_dram_preset_is_valid_for_every_chip(family):
    """`arch/dram=<name>` works with either chip: every preset is inside both families' ranges."""
    from eyejax.arch import get_family
    from eyejax.arch.dram import DRAM_PRESETS

    fam = get_family(family)
    for preset in DRAM_PRESETS.values():
        fam.validate(fam.arch_class(**preset))
