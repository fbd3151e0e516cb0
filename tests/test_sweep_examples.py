"""The example sweeps in conf/sweep/: each one builds, and design and technology are swept apart
(a grid that crosses array/buffer sizes with energy per access ranks the cheapest memory first, so
its "best design" says nothing about the design)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from eyejax.app.runtime import CONF_DIR
from eyejax.app.sweep_cli import build_plan

SWEEPS = sorted(p.stem for p in (Path(CONF_DIR) / "sweep").glob("*.yaml") if p.stem != "none")
# Scale benchmarks with measured run times in the README: 10^6 configurations that cross design with
# one energy axis; their files say they are not design studies.
BENCHMARKS = ("v1_million", "v2_million")
TECHNOLOGY = ("arch.energy.", "arch.energy_table")


def cfg_of(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("name", SWEEPS)
def test_example_sweep_keeps_technology_apart_from_design(name):
    family = "eyeriss_v2" if name.startswith("v2") else "eyeriss_v1"
    plan = build_plan(cfg_of(f"sweep={name}", "workload=alexnet", f"arch={family}"))
    axes = list(plan.grid.names)
    assert plan.size > 1 and axes
    tech = [a for a in axes if a.startswith(TECHNOLOGY)]
    if name in BENCHMARKS:
        text = (Path(CONF_DIR) / "sweep" / f"{name}.yaml").read_text()
        assert "not a design study" in text
        return
    assert not tech or len(tech) == len(axes), f"{name} crosses design {axes} with technology {tech}"


def test_design_sweep_per_technology():
    # The README's way to compare designs under several technologies: one design sweep per value.
    sizes = set()
    for dram in (100, 400):
        plan = build_plan(cfg_of("sweep=v1_array_glb", "workload=alexnet", f"arch.energy.dram={dram}"))
        assert float(plan.grid.base_arch.energy.dram) == dram
        sizes.add(plan.size)
    assert sizes == {30}
    assert build_plan(cfg_of("sweep=v1_technology", "workload=alexnet")).size == 12
