"""No silent int64 overflow (eyejax.limits): layers and networks whose counts could pass 2**62 are
refused before any work, naming the layer and field, from the API and from the command (exit 2);
at the edge the counts are exact. Energy tables and Sparsity pytrees are range-checked in every
family."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax.arch.energy import ISCA16_NORMALIZED
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.arch.isca16 import isca16_arch
from eyejax.dataflow import dataflow_for
from eyejax.evaluate import evaluate
from eyejax.limits import ACCESS_FACTOR, COUNT_LIMIT, LimitError, arch_factors, check_counts, layer_work
from eyejax.sparsity import Sparsity
from eyejax.workload import Layer, Network, get_network

REPO = Path(__file__).resolve().parents[1]


def fc(n, c=1024, m=1024, name="fc"):
    return Layer(name, "FC", N=n, C=c, M=m, H=1, W=1, R=1, S=1)


def edge_batch(arch, c=1024, m=1024) -> int:
    """The largest batch of an FC layer whose bound stays below the limit on arch."""
    t_layer = arch_factors(arch)[0]
    per_image = layer_work(fc(2, c, m)) - layer_work(fc(1, c, m))     # W = n x per_image + M x C
    n = int((COUNT_LIMIT / (ACCESS_FACTOR * t_layer) - m * c) / per_image)
    below = lambda k: ACCESS_FACTOR * layer_work(fc(k, c, m)) * t_layer < COUNT_LIMIT
    while not below(n):
        n -= 1
    while below(n + 1):
        n += 1
    return n


@pytest.mark.parametrize("arch", [EyerissV1(),
                                  EyerissV1(word_bits=64, clock_mhz=100_000, dram_bus_bits=1,
                                            dram_clock_mhz=1)],
                         ids=["v1_chip", "v1_slowest_dram"])
def test_layer_bound_at_the_edge_is_exact_and_one_past_is_refused(arch):
    n = edge_batch(arch)
    check_counts(arch, Network("edge", (fc(n),)))
    with pytest.raises(LimitError, match=r"layer 'fc'.*workload.batch = %d" % (n + 1)):
        check_counts(arch, Network("edge", (fc(n + 1),)))
    with pytest.raises(LimitError):
        evaluate(arch, Network("past", (fc(n + 1),)))
    # at the edge the int64 counts are exact: MACs as Python ints, nothing wrapped negative
    res = evaluate(arch, Network("edge", (fc(n),)))
    raw = {k: np.asarray(v) for k, v in res.raw.items()}
    assert raw["feasible"].all()
    assert int(raw["macs"][0, 0]) == n * 1024 * 1024
    for k, v in raw.items():
        if np.issubdtype(v.dtype, np.integer):
            assert (v >= 0).all(), k
    assert int(raw["cycles"][0, 0]) >= int(raw["dram_cycles"][0, 0]) > 0


def test_network_totals_are_bounded():
    arch = EyerissV1(word_bits=1, clock_mhz=1, dram_bus_bits=1, dram_clock_mhz=1)  # T = 2
    n = int(0.3 * COUNT_LIMIT / (ACCESS_FACTOR * 2 * (layer_work(fc(2)) - layer_work(fc(1)))))
    check_counts(arch, Network("one", (fc(n, name="a"),)))
    with pytest.raises(LimitError, match=r"network 'four': its totals over 4 layers"):
        check_counts(arch, Network("four", tuple(fc(n, name=x) for x in "abcd")))


def test_access_factor_covers_the_measured_counts():
    """Every count <= ACCESS_FACTOR / 4 x W x T on a small and the default design (RS; the limits
    module documents the wider measurement, over every dataflow, it was chosen from)."""
    net = get_network("alexnet", batch=1)
    tiny = EyerissV1(pe_rows=np.array([2, 12]), pe_cols=np.array([3, 14]),
                     filter_spad_words=np.array([16, 224]), psum_spad_words=np.array([4, 24]))
    for arch in (tiny,):
        res = evaluate(arch, net)
        w = np.array([layer_work(l) for l in net.layers], dtype=float)
        t_layer, t_total, _ = arch_factors(arch)
        for k, v in res.raw.items():
            v = np.asarray(v)
            if np.issubdtype(v.dtype, np.integer) and not k.startswith("map_"):
                assert (v <= ACCESS_FACTOR / 4 * w * t_total).all(), k


def _cli(tmp_path, *overrides):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "eyejax.app.cli", "wandb.mode=disabled",
                           f"hydra.run.dir={tmp_path / 'run'}", *overrides],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_command_refuses_overflowing_workloads(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("name,type,N,C,M,H,W,R,S,stride,pad,groups\n"
                   "conv,CONV,1000,1000000,1000000,56,56,3,3,1,1,1\n")
    r = _cli(tmp_path, "workload=custom", f"workload.path={csv}")
    assert r.returncode == 2 and "layer 'conv'" in r.stderr and "2**62" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and not (tmp_path / "run" / "results.parquet").exists()
    r = _cli(tmp_path, "workload=vgg16", "workload.batch=150000000")
    assert r.returncode == 2 and "workload.batch = 150000000" in r.stderr, r.stderr[-2000:]


ARCHS = {"eyeriss_v1": EyerissV1(), "eyeriss_v2": EyerissV2(), "isca16_ws": isca16_arch("ws", 256)}


@pytest.mark.parametrize("family", sorted(ARCHS))
@pytest.mark.parametrize("field", ["alu", "rf", "noc", "glb", "dram", "hop"])
@pytest.mark.parametrize("value", [-5.0, float("nan"), float("inf")])
def test_every_energy_field_is_range_checked_in_every_family(family, field, value):
    arch = ARCHS[family]
    bad = arch.replace(energy=dataclasses.replace(ISCA16_NORMALIZED, **{field: value}))
    with pytest.raises(ValueError, match=rf"arch\.energy\.{field} must be finite"):
        dataflow_for(bad).validate_arch(bad)


def test_energy_hop_from_the_command(tmp_path):
    r = _cli(tmp_path, "arch=eyeriss_v2", "arch.energy.hop=-5")
    assert r.returncode == 2 and "arch.energy.hop" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("field,value", [("mac_density", np.nan), ("iact_density", 1.5),
                                         ("weight_density", -0.1), ("ofmap_rlc_ratio", np.inf)])
def test_sparsity_built_directly_is_validated(field, value):
    good = Sparsity.dense(3)
    leaves = {f.name: np.asarray(getattr(good, f.name)) for f in dataclasses.fields(good)}
    leaves[field] = np.array([1.0, value, 1.0])
    with pytest.raises(ValueError, match=rf"Sparsity\.{field} must be finite and in \[0, 1\]"):
        Sparsity(**leaves)
    with pytest.raises(ValueError, match=rf"Sparsity\.{field}"):
        dataclasses.replace(good, **{field: leaves[field]})


def test_sweep_grid_is_bounded_at_its_largest_values():
    from eyejax.sweep import build_grid, make_plan

    net = Network("edge", (fc(edge_batch(EyerissV1())),))
    grid = build_grid({"arch": {"clock_mhz": [200, 100_000]}}, None, EyerissV1(),
                      Sparsity.dense(1), 1)
    with pytest.raises(LimitError, match=r"sweep grid \(largest values of every axis\): layer 'fc'"):
        make_plan(grid, net)
