"""Importers a user can find: ONNX and Flax networks through `eyejax workload=custom
workload.path=...`, and the ONNX importer reading shapes only (weights in external data files are
never loaded). The ONNX model here is written in another style than the project's own: built node
by node with onnx.helper, BatchNormalization after convs, an explicit Pad op, a depthwise conv, a
residual Add, a Concat of two branches, a symbolic batch, weights saved as external data."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eyejax.workload import LayerType, WorkloadError, resolve_workload
from eyejax.workload.importers import from_onnx

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _w(name, *shape):
    rng = np.random.default_rng(len(name))
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _bn(x, c, out, inits):
    names = [f"{out}_{k}" for k in ("scale", "bias", "mean", "var")]
    for n in names:
        inits.append(numpy_helper.from_array(np.ones(c, np.float32), n))
    return helper.make_node("BatchNormalization", [x, *names], [out], epsilon=1e-5)


def residual_net() -> onnx.ModelProto:
    """x[N,3,32,32] -> stem 3x3/2 (16) + BN + Relu -> Pad 1 -> depthwise 3x3 (16) + BN + Relu
    -> pointwise 1x1 (16) + residual Add with the stem -> two branches (1x1 -> 24, 3x3 -> 8, pads 1)
    concatenated (32) -> GlobalAveragePool -> Flatten -> Gemm (transB) 10."""
    inits = [_w("w_stem", 16, 3, 3, 3), _w("w_dw", 16, 1, 3, 3), _w("w_pw", 16, 16, 1, 1),
             _w("w_b1", 24, 16, 1, 1), _w("w_b2", 8, 16, 3, 3), _w("w_fc", 10, 32), _w("b_fc", 10),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")]
    n = [
        helper.make_node("Conv", ["x", "w_stem"], ["s0"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        _bn("s0", 16, "s1", inits),
        helper.make_node("Relu", ["s1"], ["s"]),
        helper.make_node("Pad", ["s", "pads"], ["sp"], mode="constant"),
        helper.make_node("Conv", ["sp", "w_dw"], ["d0"], group=16),          # no pads attribute
        _bn("d0", 16, "d1", inits),
        helper.make_node("Relu", ["d1"], ["d"]),
        helper.make_node("Conv", ["d", "w_pw"], ["p"]),
        helper.make_node("Add", ["p", "s"], ["r"]),
        helper.make_node("Conv", ["r", "w_b1"], ["b1"]),
        helper.make_node("Conv", ["r", "w_b2"], ["b2"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["b1", "b2"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w_fc", "b_fc"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        n, "residual_net",  # nodes are unnamed: layers get conv{i} / dense{i}
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


EXPECT = [  # type, C, M, H, W, R, S, stride, pad, groups
    (LayerType.CONV, 3, 16, 32, 32, 3, 3, 2, 1, 1),
    (LayerType.DWCONV, 16, 16, 18, 18, 3, 3, 1, 0, 16),   # after the explicit Pad: 16 + 2
    (LayerType.CONV, 16, 16, 16, 16, 1, 1, 1, 0, 1),
    (LayerType.CONV, 16, 24, 16, 16, 1, 1, 1, 0, 1),
    (LayerType.CONV, 16, 8, 16, 16, 3, 3, 1, 1, 1),
    (LayerType.FC, 32, 10, 1, 1, 1, 1, 1, 0, 1),
]


@pytest.fixture()
def onnx_with_external_weights(tmp_path):
    """residual_net.onnx with its weights in weights.bin (ONNX's default threshold: tensors of 1 kB
    and more), which is then deleted: an importer that read the weights would fail."""
    path = tmp_path / "residual_net.onnx"
    onnx.save_model(residual_net(), path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin")
    assert (tmp_path / "weights.bin").stat().st_size > 5_000
    (tmp_path / "weights.bin").unlink()
    return path


def test_onnx_every_tensor_external(tmp_path):
    # Every tensor external (the Pad's pads too): the small integer ones are read for shape
    # inference; the float weights are not read.
    path = tmp_path / "all_external.onnx"
    onnx.save_model(residual_net(), path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="all.bin", size_threshold=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = from_onnx(path)
    assert _layers(net) == EXPECT


def _layers(net):
    return [(l.type, l.C, l.M, l.H, l.W, l.R, l.S, l.stride, l.pad, l.groups) for l in net]


def test_onnx_other_style_shapes_only(onnx_with_external_weights):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BN, Pad, Add, Concat, pooling: ignored without a warning
        net = from_onnx(onnx_with_external_weights)
    assert _layers(net) == EXPECT
    assert {l.N for l in net} == {1}  # the symbolic batch "N" is taken as 1
    assert [l.name for l in net][:2] == ["conv0", "conv1"]
    net4 = resolve_workload(str(onnx_with_external_weights), batch=4)
    assert _layers(net4) == EXPECT and {l.N for l in net4} == {4}
    assert net4.macs == 4 * net.macs


def test_python_workload_file(tmp_path):
    (tmp_path / "bad.py").write_text("x = 1\n")
    with pytest.raises(WorkloadError, match="network()"):
        resolve_workload(str(tmp_path / "bad.py"))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["WANDB_SILENT"] = "true"
    return env


FLAX_FILE = textwrap.dedent("""
    # A Flax model for `eyejax workload=custom workload.path=flax_net.py`
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from eyejax.workload.importers import from_flax


    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3), strides=(2, 2))(x))
            x = nn.Conv(8, (3, 3), feature_group_count=8)(x)
            return nn.Dense(10)(x.reshape(x.shape[0], -1))


    def network():
        x = jnp.zeros((1, 16, 16, 3))
        model = Net()
        return from_flax(model, model.init(jax.random.PRNGKey(0), x), x, name="flax_net")
""")


@pytest.mark.parametrize("kind", ["onnx", "flax"])
def test_cli_custom_workload_from_onnx_and_flax(kind, tmp_path, onnx_with_external_weights):
    if kind == "onnx":
        rel, n_layers = os.path.relpath(onnx_with_external_weights, tmp_path), len(EXPECT)
    else:
        (tmp_path / "flax_net.py").write_text(FLAX_FILE)
        rel, n_layers = "flax_net.py", 3
    run_dir = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "eyejax.app.cli", "workload=custom",
                        f"workload.path={rel}", "workload.batch=2", "wandb.mode=disabled",
                        f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_parquet(run_dir / "results.parquet")
    assert len(df) == n_layers and df["feasible"].all() and (df["energy"] > 0).all()
    assert "network totals:" in p.stdout
    if kind == "flax":
        assert p.stdout.splitlines()[0].startswith("eyejax: flax_net (3 layers")
