"""Inputs that used to end in a traceback (or run silently wrong) stop before any work with a
message naming the field: ISCA16 dataflow designs out of range or on the wrong family, output
files over existing ones or in missing directories, sweep directories that are files or foreign
folders, huge sweep axes and grids, eyejax-prune settings, and malformed ONNX models."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.app.config import ConfigError, build_inputs, check_run_config
from eyejax.sparsity import Sparsity
from eyejax.sweep import SweepError, build_grid
from eyejax.app.sweep_cli import build_plan

from test_sweep import cfg_of

REPO = Path(__file__).resolve().parents[1]


def _env(tmp: Path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               WANDB_SILENT="true", JAX_COMPILATION_CACHE_DIR=str(tmp / "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env.pop("WANDB_MODE", None)
    return env


def _cli(tmp: Path, *overrides, module="eyejax.app.cli", run_dir="run"):
    return subprocess.run([sys.executable, "-m", module, "wandb.mode=disabled",
                           f"hydra.run.dir={tmp / run_dir}", *overrides],
                          cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=300)


def _refused(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    for w in words:
        assert w in r.stderr, (w, r.stderr[-3000:])


@pytest.fixture(scope="module")
def one_fc(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("net") / "fc.csv"
    p.write_text("name,type,N,C,M,H,W,R,S,stride,pad,groups\nfc,FC,1,64,32,1,1,1,1,1,0,1\n")
    return p


# ----------------------------------------------------------------------------------------------
# dataflow group


@pytest.mark.parametrize("overrides,words", [
    (["dataflow=rs", "dataflow.num_pes=8192"], ["dataflow.num_pes = 8192", "filter_bus_bits"]),
    (["dataflow=ws", "dataflow.num_pes=1048573"], ["dataflow.num_pes = 1048573", "1 x 1048573",
                                                    "pe_cols"]),
    (["dataflow=rs", "arch=eyeriss_v2"], ["dataflow.name = 'rs'", "arch.family = 'eyeriss_v2'"]),
    (["dataflow=ws", "arch=eyeriss_v2"], ["dataflow.name = 'ws'", "arch.family = 'eyeriss_v2'"]),
])
def test_dataflow_designs_out_of_range_or_on_another_family_are_named(overrides, words):
    with pytest.raises(ConfigError) as e:
        build_inputs(cfg_of(*overrides))
    for w in words:
        assert w in str(e.value), str(e.value)


def test_dataflow_on_v2_exits_2_from_the_command(tmp_path):
    _refused(_cli(tmp_path, "dataflow=ws", "arch=eyeriss_v2"), "dataflow.name")


# ----------------------------------------------------------------------------------------------
# output files: a missing directory is created; an existing file is not replaced silently


def test_output_parquet_in_a_missing_directory_and_over_an_existing_file(tmp_path, one_fc):
    args = ("workload=custom", f"workload.path={one_fc}", "output.parquet=new/dir/r.parquet")
    r = _cli(tmp_path, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "run" / "new" / "dir" / "r.parquet"
    assert out.is_file()
    before = out.stat().st_mtime_ns
    _refused(_cli(tmp_path, *args), "output.parquet", "already exists", "output.overwrite=true")
    assert out.stat().st_mtime_ns == before
    r = _cli(tmp_path, *args, "output.overwrite=true")
    assert r.returncode == 0 and out.stat().st_mtime_ns != before, r.stderr[-3000:]


def test_output_path_through_a_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_run_config(cfg_of("output.parquet=f/r.parquet"))
    (tmp_path / "results.parquet").write_text("x")
    with pytest.raises(ConfigError, match="output.parquet.*already exists"):
        check_run_config(cfg_of())
    check_run_config(cfg_of("output.overwrite=true"))
    with pytest.raises(ConfigError, match="output.overwrite must be true or false"):
        check_run_config(cfg_of("output.overwrite=3"))


# ----------------------------------------------------------------------------------------------
# sweeps


def test_sweep_dir_at_a_file_or_a_foreign_folder_exits_2(tmp_path, one_fc):
    base = ["workload=custom", f"workload.path={one_fc}", "sweep.name=s",
            "+sweep.axes.arch.pe_rows=[8,12]"]
    (tmp_path / "a_file").write_text("x")
    _refused(_cli(tmp_path, *base, f"sweep.dir={tmp_path / 'a_file'}"), "is a file")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("mine")
    _refused(_cli(tmp_path, *base, f"sweep.dir={tmp_path / 'docs'}"), "not a sweep directory")
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["notes.md"]


def test_a_billion_value_axis_is_refused_before_it_is_built():
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match=r"arch.pe_rows has 1,000,000,000 values"):
        build_grid({"arch": {"pe_rows": {"start": 1, "stop": 4096, "num": 1_000_000_000}}}, None,
                   EyerissV1(), Sparsity.dense(1), 1)
    with pytest.raises(SweepError, match=r"arch.glb_bank_words has 16,777,216 values"):
        build_grid({"arch": {"glb_bank_words": {"start": 1, "stop": 1 << 24, "step": 1}}}, None,
                   EyerissV1(), Sparsity.dense(1), 1)
    assert time.perf_counter() - t0 < 5


def test_a_trillion_point_grid_is_planned_quickly_and_still_checked(one_fc):
    big = ["sweep.name=big", "+sweep.axes.arch.glb_bank_words={start:1,stop:1000000,step:1}",
           "+sweep.axes.arch.filter_spad_words={start:1,stop:1000000,step:1}"]
    t0 = time.perf_counter()
    plan = build_plan(cfg_of("workload=custom", f"workload.path={one_fc}", *big))
    assert plan.size == 10 ** 12 and time.perf_counter() - t0 < 60
    # the rule between fields is still found on a huge grid (checked on the axes' extremes)
    bad = ["sweep.name=bad", "+sweep.axes.arch.glb_banks={start:2,stop:65536,step:1}",
           "+sweep.axes.arch.glb_ifmap_banks={start:0,stop:65535,step:1}",
           "+sweep.axes.arch.pe_rows={start:1,stop:4096,step:1}"]   # 1.8e13 configurations
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match="glb_ifmap_banks"):
        build_plan(cfg_of("workload=custom", f"workload.path={one_fc}", *bad))
    assert time.perf_counter() - t0 < 60


# ----------------------------------------------------------------------------------------------
# eyejax-prune


@pytest.mark.parametrize("field,value,key", [
    ("val_fraction", 0, "data.val_fraction"), ("val_fraction", 1.5, "data.val_fraction"),
    ("hidden", 0, "model.hidden"), ("epochs", 2.5, "train.epochs"), ("seed", -1, "seed"),
    ("lr", float("nan"), "train.lr"), ("conv_features", (8,), "model.conv_features"),
    ("test_fraction", 0.8, "data.val_fraction + data.test_fraction"),
])
def test_prune_settings_are_range_checked(field, value, key):
    from eyejax.codesign.pruning import PruneConfig

    with pytest.raises(ValueError) as e:
        PruneConfig(**{field: value})
    assert str(e.value).startswith(key), str(e.value)


def test_prune_command_exits_2_naming_the_field(tmp_path):
    _refused(_cli(tmp_path, "train.epochs=2.5", module="eyejax.app.prune"),
             "eyejax-prune: error: train.epochs")


# ----------------------------------------------------------------------------------------------
# ONNX


def _conv_model(**attrs):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("attrs,words", [
    (dict(strides=[0, 0]), "strides [0, 0] must be 2 integer(s) >= 1"),
    (dict(strides=[0, 0], auto_pad="SAME_UPPER"), "strides [0, 0]"),
    (dict(dilations=[0, 1]), "dilations [0, 1]"),
    (dict(pads=[-1, 0, 0, 0]), "pads [-1, 0, 0, 0] must be >= 0"),
])
def test_onnx_conv_attributes_out_of_range_are_named(attrs, words):
    from eyejax.workload.importers import from_onnx

    with pytest.raises(ValueError) as e:
        from_onnx(_conv_model(**attrs))
    assert "Conv 'c'" in str(e.value) and words in str(e.value), str(e.value)


def test_onnx_garbage_file_is_a_clear_value_error(tmp_path):
    pytest.importorskip("onnx")
    from eyejax.workload.importers import from_onnx

    p = tmp_path / "garbage.onnx"
    p.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="garbage.onnx.*is not a readable ONNX model"):
        from_onnx(p)
