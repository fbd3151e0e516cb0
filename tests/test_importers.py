"""Importers: JAX / Flax jaxprs and ONNX graphs → Network (eyejax.workload.importers)."""
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eyejax.workload import LayerType, WorkloadError
from eyejax.workload.importers import (ApproximationWarning, UnsupportedOpsWarning, from_flax,
                                       from_jax, from_onnx)


def _shape_fields(layer):
    return (layer.type, layer.N, layer.C, layer.M, layer.H, layer.W, layer.R, layer.S,
            layer.stride, layer.pad, layer.groups)


def _import_quietly(fn, *args, **kw):
    """Call an importer and return (network, {warning category: message})."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        net = fn(*args, **kw)
    return net, {w.category: str(w.message) for w in rec}


# ---------------------------------------------------------------------------------------------
# Flax / JAX
class SmallCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(16, (3, 3), strides=2, padding=((1, 1), (1, 1)))(x))  # 32 -> 16
        x = nn.relu(nn.Conv(16, (3, 3), padding=1, feature_group_count=16)(x))    # depthwise
        x = nn.relu(nn.Conv(32, (1, 1), feature_group_count=4)(x))                # grouped 1x1
        x = nn.relu(nn.Conv(32, (3, 3), strides=2, padding="VALID")(x))           # 16 -> 7
        x = nn.max_pool(x, (1, 1))                                                 # ignored
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def flax_cnn():
    model, x = SmallCNN(), jnp.ones((2, 32, 32, 3))
    variables = model.init(jax.random.key(0), x)
    net, caught = _import_quietly(from_flax, model, variables, x)
    return model, variables, x, net, caught


def test_flax_cnn_layers_and_macs_by_hand(flax_cnn):
    _, _, _, net, caught = flax_cnn
    assert caught == {}  # everything symmetric and supported: no warning
    assert net.name == "SmallCNN"
    assert net.names == ["Conv_0", "Conv_1", "Conv_2", "Conv_3", "Dense_0"]
    expect = [  # type, N, C, M, H, W, R, S, stride, pad, groups
        (LayerType.CONV, 2, 3, 16, 32, 32, 3, 3, 2, 1, 1),
        (LayerType.DWCONV, 2, 16, 16, 16, 16, 3, 3, 1, 1, 16),
        (LayerType.CONV, 2, 16, 32, 16, 16, 1, 1, 1, 0, 4),
        (LayerType.CONV, 2, 32, 32, 16, 16, 3, 3, 2, 0, 1),
        (LayerType.FC, 2, 7 * 7 * 32, 10, 1, 1, 1, 1, 1, 0, 1),
    ]
    assert [_shape_fields(l) for l in net] == expect
    macs = (2 * 16 * 16 * 16 * 3 * 3 * 3        # conv0: N E F M R S C
            + 2 * 16 * 16 * 16 * 3 * 3 * 1      # depthwise: C/groups = 1
            + 2 * 16 * 16 * 32 * 1 * 1 * 4      # 1x1 with groups 4: C/groups = 4
            + 2 * 7 * 7 * 32 * 3 * 3 * 32       # valid, stride 2
            + 2 * 1568 * 10)                    # dense
    assert macs == 1_294_976 == net.macs


def test_flax_cnn_output_shapes_match(flax_cnn):
    model, variables, x, net, _ = flax_cnn
    _, state = model.apply(variables, x, capture_intermediates=True)
    inter = state["intermediates"]
    for layer in net:
        (out,) = inter[layer.name]["__call__"]
        if layer.type is LayerType.FC:
            assert out.shape == (layer.N, layer.M)
        else:
            assert out.shape == (layer.N, layer.E, layer.F, layer.M)


def test_imported_network_evaluates(flax_cnn):
    from eyejax.arch.eyeriss_v1 import EyerissV1
    from eyejax.evaluate import evaluate

    net = flax_cnn[3]
    res = evaluate(EyerissV1(), net)
    a = res.arrays()
    assert a["macs"].shape == (1, len(net))
    np.testing.assert_array_equal(a["macs"][0], [l.macs for l in net])
    assert np.all(np.isfinite(a["energy"])) and np.all(a["energy"] > 0)


def test_weights_as_argument_need_weight_argnums(flax_cnn):
    model, variables, x, net, _ = flax_cnn
    with pytest.warns(UnsupportedOpsWarning, match=r"dot_general x1 .*weight_argnums"):
        convs_only = from_jax(model.apply, variables, x)
    assert [l.type for l in convs_only].count(LayerType.FC) == 0
    assert len(convs_only) == 4
    named = from_jax(model.apply, variables, x, weight_argnums=0, name="cnn")
    assert [_shape_fields(l) for l in named] == [_shape_fields(l) for l in net]
    assert named.names[0] == "SmallCNN/Conv_0"  # from_jax keeps the whole scope path
    closed = from_jax(lambda x: model.apply(variables, x), x)
    assert closed.macs == net.macs


def test_attention_matmuls_are_listed():
    k = jax.random.split(jax.random.key(1), 4)
    wq, wk, wv, wo = (jax.random.normal(kk, (16, 16)) for kk in k)

    def attn(x):  # x [B, T, D]; projections are dense, the two score/value products are not
        q, kk, v = x @ wq, x @ wk, x @ wv
        p = jax.nn.softmax(jnp.einsum("btd,bsd->bts", q, kk) / 4.0, axis=-1)
        return jnp.einsum("bts,bsd->btd", p, v) @ wo

    net, caught = _import_quietly(from_jax, attn, jnp.ones((2, 8, 16)), name="attn")
    assert [(l.type, l.N, l.C, l.M) for l in net] == [(LayerType.FC, 16, 16, 16)] * 4
    assert net.names == ["dense0", "dense1", "dense2", "dense3"]
    msg = caught[UnsupportedOpsWarning]
    assert "dot_general x2" in msg and "attention-like" in msg
    assert ApproximationWarning not in caught


def test_nhwc_and_nchw_give_the_same_layer():
    x_nhwc = jnp.ones((3, 20, 20, 8))
    w_hwio = jnp.ones((5, 5, 2, 12))  # groups = 4
    specs = {
        ("NHWC", "HWIO", "NHWC"): (x_nhwc, w_hwio),
        ("NCHW", "OIHW", "NCHW"): (x_nhwc.transpose(0, 3, 1, 2), w_hwio.transpose(3, 2, 0, 1)),
        ("NHWC", "OIHW", "NCHW"): (x_nhwc, w_hwio.transpose(3, 2, 0, 1)),
    }
    got = []
    for dn, (x, w) in specs.items():
        def f(x, w=w, dn=dn):
            return jax.lax.conv_general_dilated(x, w, (2, 2), ((2, 2), (2, 2)),
                                                dimension_numbers=dn, feature_group_count=4)
        (layer,) = from_jax(f, x).layers
        got.append(_shape_fields(layer))
    assert got[0] == (LayerType.CONV, 3, 8, 12, 20, 20, 5, 5, 2, 2, 4)
    assert got[0] == got[1] == got[2]


def _conv_out(x, w, **kw):
    return jax.lax.conv_general_dilated(x, w, dimension_numbers=("NHWC", "HWIO", "NHWC"), **kw)


@pytest.mark.parametrize("kw, fields, note", [
    # 'SAME', stride 2 on an even input: pads (0, 1) -> pad 0 and the extra row/col folded in.
    (dict(window_strides=(2, 2), padding="SAME"), dict(H=17, W=17, R=3, pad=0, stride=2),
     "padding ((0, 1), (0, 1))"),
    # 'SAME' with kernel 4: pads (1, 2) -> pad 1, one extra row/col.
    (dict(window_strides=(1, 1), padding="SAME", w_shape=(4, 4, 4, 8)),
     dict(H=17, W=17, R=4, pad=1, stride=1), "padding ((1, 2), (1, 2))"),
    # Dilation 2: zero-inserted 5x5 filter.
    (dict(window_strides=(1, 1), padding=((2, 2), (2, 2)), rhs_dilation=(2, 2)),
     dict(H=16, W=16, R=5, pad=2, stride=1), "rhs_dilation (2, 2)"),
    # Unequal strides: the vertical one is kept, the width rebuilt as (F-1)*2 + 3 = 29 so F = 14.
    (dict(window_strides=(2, 1), padding="VALID"), dict(H=16, W=29, R=3, pad=0, stride=2),
     "strides (2, 1) unequal"),
])
def test_approximated_convs_keep_the_output_size(kw, fields, note):
    w_shape = kw.pop("w_shape", (3, 3, 4, 8))
    x, w = jnp.ones((1, 16, 16, 4)), jnp.ones(w_shape)
    net, caught = _import_quietly(from_jax, lambda x: _conv_out(x, w, **kw), x)
    (layer,) = net.layers
    out = jax.eval_shape(lambda x: _conv_out(x, w, **kw), x).shape
    assert (layer.N, layer.E, layer.F, layer.M) == out
    assert {k: getattr(layer, k) for k in fields} == fields
    assert note in caught[ApproximationWarning]
    assert UnsupportedOpsWarning not in caught
    if "rhs_dilation" in note:  # MACs of the zero-inserted filter: 25/9 of the dense count
        assert layer.macs * 9 == 25 * (out[1] * out[2] * 8 * 3 * 3 * 4)
        assert "x2.78" in caught[ApproximationWarning]
    else:
        assert layer.macs == out[1] * out[2] * 8 * w_shape[0] * w_shape[1] * 4


def test_sub_jaxprs_are_walked_and_control_flow_is_reported():
    w1, w2, w3, w4 = jnp.ones((3, 3, 3, 8)), jnp.ones((8 * 8 * 8, 32)), jnp.ones((32, 16)), \
        jnp.ones((16, 16))

    @jax.custom_jvp
    def act(x):
        return jnp.tanh(x)
    act.defjvp(lambda p, t: (act(p[0]), t[0]))

    @jax.custom_vjp
    def dense3(h):
        return h @ w3
    dense3.defvjp(lambda h: (dense3(h), None), lambda _, g: (g @ w3.T,))

    @jax.jit
    def conv(x):
        return _conv_out(x, w1, window_strides=(2, 2), padding=((1, 1), (1, 1)))

    def f(x):
        h = act(conv(x))
        h = jax.checkpoint(lambda h: h.reshape(h.shape[0], -1) @ w2)(h)
        h = dense3(h)
        _, ys = jax.lax.scan(lambda c, r: (c, r @ w4), 0.0, h)  # body not unrolled
        return ys

    net, caught = _import_quietly(from_jax, f, jnp.ones((4, 16, 16, 3)))
    assert [(l.name, l.type, l.N, l.C, l.M) for l in net] == [
        ("conv0", LayerType.CONV, 4, 3, 8), ("dense1", LayerType.FC, 4, 512, 32),
        ("dense2", LayerType.FC, 4, 32, 16)]
    assert "dot_general x1 (1x inside scan" in caught[UnsupportedOpsWarning]


def test_one_dimensional_conv():
    w = jnp.ones((5, 4, 6))  # WIO
    f = lambda x: jax.lax.conv_general_dilated(x, w, (2,), ((2, 2),),  # noqa: E731
                                               dimension_numbers=("NWC", "WIO", "NWC"))
    net, caught = _import_quietly(from_jax, f, jnp.ones((2, 30, 4)))
    (layer,) = net.layers
    assert (layer.H, layer.R, layer.W, layer.S, layer.stride, layer.pad) == (1, 1, 34, 5, 2, 0)
    assert (layer.E, layer.F) == (1, 15) == (1, f(jnp.ones((2, 30, 4))).shape[1])
    assert "padding ((0, 0), (2, 2))" in caught[ApproximationWarning]


def test_nothing_to_import_raises():
    with pytest.raises(WorkloadError, match="no CONV, DWCONV or FC layer"):
        from_jax(lambda x: jnp.tanh(x) * 2, jnp.ones((3, 3)))


# ---------------------------------------------------------------------------------------------
# ONNX
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _init(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _small_cnn_onnx(extra_nodes=(), extra_inits=(), extra_outputs=()):
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="stem", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),                   # 32 -> 16
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="grouped", group=4,
                         pads=[1, 1, 1, 1]),                                  # 16 -> 32 ch
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3"], ["c3"], name="dw", group=32, strides=[2, 2],
                         pads=[1, 1, 1, 1]),                                  # 16 -> 8
        helper.make_node("MaxPool", ["c3"], ["p3"], kernel_shape=[2, 2], strides=[2, 2]),  # 4
        helper.make_node("Flatten", ["p3"], ["f"]),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["y"], name="fc", transB=1),
        *extra_nodes,
    ]
    inits = [_init("w1", (16, 3, 3, 3)), _init("b1", (16,)), _init("w2", (32, 4, 3, 3)),
             _init("w3", (32, 1, 3, 3)), _init("wfc", (10, 512)), _init("bfc", (10,)),
             *extra_inits]
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10]), *extra_outputs],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


ONNX_EXPECT = [  # name, type, C, M, H, W, R, S, stride, pad, groups
    ("stem", LayerType.CONV, 3, 16, 32, 32, 3, 3, 2, 1, 1),
    ("grouped", LayerType.CONV, 16, 32, 16, 16, 3, 3, 1, 1, 4),
    ("dw", LayerType.DWCONV, 32, 32, 16, 16, 3, 3, 2, 1, 32),
    ("fc", LayerType.FC, 512, 10, 1, 1, 1, 1, 1, 0, 1),
]


def test_onnx_round_trip(tmp_path):
    path = tmp_path / "small_cnn.onnx"
    onnx.save(_small_cnn_onnx(), path)
    net, caught = _import_quietly(from_onnx, path, batch=4)
    assert caught == {}
    assert net.name == "small_cnn"
    assert [(l.name, l.type, l.C, l.M, l.H, l.W, l.R, l.S, l.stride, l.pad, l.groups)
            for l in net] == ONNX_EXPECT
    assert {l.N for l in net} == {4}
    macs = 4 * (16 * 16 * 16 * 9 * 3 + 16 * 16 * 32 * 9 * 4 + 8 * 8 * 32 * 9 * 1 + 512 * 10)
    assert net.macs == macs
    # The symbolic batch dimension defaults to 1; a ModelProto works as well as a path.
    assert {l.N for l in from_onnx(_small_cnn_onnx())} == {1}
    # Output sizes agree with ONNX's own shape inference.
    inferred = onnx.shape_inference.infer_shapes(_small_cnn_onnx())
    dims = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in inferred.graph.value_info}
    for layer, out in zip(net.layers[:3], ("c1", "c2", "c3")):
        assert dims[out][1:] == [layer.M, layer.E, layer.F]


def test_onnx_matmul_and_unsupported_ops():
    # MatMul with an initializer is a dense layer; MatMul of two activations and ConvTranspose
    # are compute ops the model does not cover; SAME_UPPER with an even input is asymmetric.
    extra = [
        helper.make_node("MatMul", ["y", "wm"], ["z"]),
        helper.make_node("MatMul", ["z", "zt"], ["zz"]),
        helper.make_node("Transpose", ["z"], ["zt"]),
        helper.make_node("ConvTranspose", ["c3", "wt"], ["u"]),
        helper.make_node("Conv", ["c3", "ws"], ["s"], name="same", auto_pad="SAME_UPPER",
                         strides=[2, 2]),
    ]
    # Transpose must precede its consumer: keep the graph topologically sorted.
    extra[1], extra[2] = extra[2], extra[1]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in (
        ("zz", ["batch", "batch"]), ("u", ["batch", 8, 10, 10]), ("s", ["batch", 8, 4, 4]))]
    model = _small_cnn_onnx(extra, [_init("wm", (10, 6)), _init("wt", (32, 8, 3, 3)),
                                    _init("ws", (8, 32, 3, 3))], outs)
    net, caught = _import_quietly(from_onnx, model, batch=2)
    assert net.names == ["stem", "grouped", "dw", "fc", "dense4", "same"]
    assert (net["dense4"].N, net["dense4"].C, net["dense4"].M) == (2, 10, 6)
    same = net["same"]  # 8x8 input, k3 s2: out 4, pads (0, 1) -> pad 0 and one extra row/col
    assert (same.E, same.F, same.H, same.W, same.pad, same.stride) == (4, 4, 9, 9, 0, 2)
    msg = caught[UnsupportedOpsWarning]
    assert "MatMul x1" in msg and "ConvTranspose x1" in msg
    assert "padding ((0, 1), (0, 1))" in caught[ApproximationWarning]
