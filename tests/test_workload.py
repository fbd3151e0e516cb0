"""eyejax.workload: built-in networks, MAC totals, validation messages, CSV/YAML I/O."""
import re

import numpy as np
import pytest

from eyejax.workload import (NETWORKS, Layer, LayerArrays, LayerType, Network, WorkloadError,
                             get_network, load_network, resolve_workload, save_network_csv,
                             save_network_yaml)
from eyejax.workload.zoo import resnet50_layers


def per_image(net: Network) -> float:
    ns = {l.N for l in net}
    assert len(ns) == 1
    return net.macs / ns.pop()


def assert_rounds_to(value: float, published: float, unit: float):
    """`published` is `value` rounded to a multiple of `unit`: |value - published| <= unit/2."""
    assert abs(value - published) <= unit / 2 + 1e-9 * unit, (value, published, unit)


# MAC totals ----------------------------------------------------------------------------------
# The published numbers (shared/reference/layers/README.md) are given to 4 significant digits for
# AlexNet and MobileNet (0.1 M) and 3 for VGG-16 (0.1 G), so each check is "rounds to the published
# number": within half a unit of its last digit.

def test_alexnet_macs():
    net = get_network("alexnet")
    assert {l.N for l in net} == {4}  # the JSSC17 batch
    assert [l.groups for l in net] == [1, 2, 1, 2, 2, 1, 1, 1]  # grouped CONV2/4/5 as Eyeriss ran it
    assert_rounds_to(per_image(net) / 1e6, 724.4, 0.1)  # CONV + FC
    assert per_image(net) == 724_406_816


def test_vgg16_conv_macs():
    net = get_network("vgg16")
    assert {l.N for l in net} == {3}
    assert_rounds_to(per_image(net.conv_only()) / 1e9, 15.3, 0.1)  # CONV layers only
    assert per_image(net.conv_only()) == 15_346_630_656


def test_mobilenet_macs():
    # The two MobileNet figures in the README are not on the same basis: 567.7 M for width 1.0 is
    # without the FC (568.7 M with it), 49.2 M for 0.5-128 is with the FC (48.6 M without it).
    m10 = get_network("mobilenet_v1")
    assert_rounds_to(per_image(m10.conv_only()) / 1e6, 567.7, 0.1)
    assert per_image(m10) == 568_740_352
    m05 = get_network("mobilenet_v1_0.5_128")
    assert_rounds_to(per_image(m05) / 1e6, 49.2, 0.1)
    assert per_image(m05.conv_only()) == 48_648_192


def test_googlenet_macs():
    # No published total in the README; pin the shipped table (1.58 G, 57 CONV + 1 FC).
    net = get_network("googlenet")
    assert len(net.select("CONV")) == 57 and len(net.select("FC")) == 1
    assert net.macs == 1_582_671_872


def test_resnet50_macs():
    # He et al.'s v1 (stride on the first 1x1 of a downsampling block): 3,855,925,248 conv MACs,
    # which rounds to the published 3.86 G (to 0.01 G; 0.11% below it). FC excluded.
    net = get_network("resnet50")
    assert {l.N for l in net} == {1}
    assert len(net.select("CONV")) == 53 and len(net.select("FC")) == 1
    conv = net.conv_only().macs
    assert conv == 3_855_925_248
    assert_rounds_to(conv / 1e9, 3.86, 0.01)
    assert abs(conv / 3.86e9 - 1) < 0.01
    assert net["fc1000"].macs == 2048 * 1000
    # The torchvision v1.5 variant (stride on the 3x3) is the 4.09 G of torchvision (with FC).
    v15 = Network("resnet50_v1.5", tuple(resnet50_layers(stride_on_3x3=True)))
    assert_rounds_to(v15.macs / 1e9, 4.09, 0.01)


def test_resnet50_structure_and_shipped_csv(tmp_path):
    net = get_network("resnet50")
    conv1 = net["conv1"]
    assert (conv1.C, conv1.M, conv1.H, conv1.R, conv1.stride, conv1.pad, conv1.E) == (
        3, 64, 224, 7, 2, 3, 112)
    assert net["res2a_branch2a"].H == 56  # after the (non-layer) max pool
    shortcuts = [l.name for l in net if l.name.endswith("branch1")]
    assert shortcuts == ["res2a_branch1", "res3a_branch1", "res4a_branch1", "res5a_branch1"]
    assert net["res3a_branch2a"].stride == 2 and net["res3a_branch2b"].stride == 1
    assert net["res5c_branch2c"].E == 7 and net["res5c_branch2c"].M == 2048
    # The shipped CSV is exactly what the generator produces.
    assert net.layers == tuple(resnet50_layers())


@pytest.mark.parametrize("name", NETWORKS)
def test_builtins_validate(name):
    net = get_network(name)
    assert net.name == name and len(net) > 0
    assert len(set(net.names)) == len(net)
    for l in net:
        assert l.replace() == l  # re-running Layer's validation raises nothing
        assert l.E >= 1 and l.F >= 1
    a = net.arrays()
    assert isinstance(a, LayerArrays) and a.num_layers == len(net)
    assert bool(a.first[0]) and not np.asarray(a.first[1:]).any()
    A = {k: np.asarray(getattr(a, k)) for k in ("N", "C", "M", "H", "W", "R", "S", "U", "P", "G")}
    E = (A["H"] + 2 * A["P"] - A["R"]) // A["U"] + 1
    F = (A["W"] + 2 * A["P"] - A["S"]) // A["U"] + 1
    assert int(np.sum(A["N"] * A["M"] * E * F * A["R"] * A["S"] * (A["C"] // A["G"]))) == net.macs


def test_batch_override():
    net = get_network("alexnet", batch=1)
    assert {l.N for l in net} == {1}
    assert net.macs == 724_406_816
    assert get_network("alexnet").macs == 4 * 724_406_816  # the cached default is untouched
    assert {l.N for l in get_network("vgg16").with_batch(7)} == {7}
    with pytest.raises(WorkloadError, match="batch"):
        get_network("vgg16", batch=0)


def test_unknown_network_lists_names():
    with pytest.raises(WorkloadError) as e:
        get_network("lenet")
    for n in NETWORKS:
        assert n in str(e.value)


# Network -------------------------------------------------------------------------------------
def _conv(name="c", **kw):
    args = dict(type="CONV", N=1, C=8, M=16, H=10, W=10, R=3, S=3, stride=1, pad=1, groups=1)
    args.update(kw)
    return Layer(name=name, **args)


def test_network_container():
    net = get_network("mobilenet_v1")
    assert net[0].name == "Conv2d_0" and net[-1].type is LayerType.FC
    assert net["Conv2d_1_dw"] is net[1]
    assert "Conv2d_1_dw" in net and "nope" not in net
    assert list(net) == list(net.layers) and net.names[:2] == ["Conv2d_0", "Conv2d_1_dw"]
    with pytest.raises(KeyError, match="nope"):
        net["nope"]
    dw = net.select(types=("DWCONV",))
    assert len(dw) == 13 and all(l.type is LayerType.DWCONV for l in dw)
    assert net.select("CONV").names == [n for n in net.names if net[n].type is LayerType.CONV]
    assert len(net.conv_only()) == 27  # CONV + DWCONV, FC dropped
    with pytest.raises(WorkloadError, match="no layers of type"):
        get_network("vgg16").select("DWCONV")


def test_network_checks():
    with pytest.raises(WorkloadError, match="no layers"):
        Network("empty", ())
    with pytest.raises(WorkloadError, match="duplicate layer name 'a'"):
        Network("dup", (_conv("a"), _conv("b"), _conv("a")))
    assert isinstance(Network("list", [_conv("a")]).layers, tuple)


# Layer validation messages name the layer and the field --------------------------------------
@pytest.mark.parametrize("changes, field", [
    (dict(H=0), "H"),                                  # non-positive size
    (dict(M=-2), "M"),
    (dict(R=13, S=3, pad=1), "R"),                     # filter larger than padded input
    (dict(S=11, R=3, pad=0, W=9), "S"),
    (dict(C=10, M=16, groups=4), "C"),                 # channels not divisible by groups
    (dict(C=8, M=10, groups=4), "M"),
    (dict(stride=0), "stride"),
    (dict(type="POOL"), "type"),                       # unknown type
    (dict(type="DWCONV", C=8, M=8, groups=4), "groups"),  # DWCONV needs groups = C = M
    (dict(N=2.0), "N"),
])
def test_bad_layer_messages(changes, field):
    with pytest.raises(WorkloadError) as e:
        _conv("badlayer", **changes)
    msg = str(e.value)
    assert "'badlayer'" in msg
    assert re.search(rf"\b{field}\b", msg), msg


# CSV / YAML ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["alexnet", "mobilenet_v1_0.5_128", "resnet50"])
def test_csv_round_trip(tmp_path, name):
    net = get_network(name)
    p = tmp_path / f"{name}.csv"
    save_network_csv(net, p)
    back = load_network(p)
    assert back == net


@pytest.mark.parametrize("name", ["alexnet", "mobilenet_v1"])
def test_yaml_round_trip(tmp_path, name):
    net = get_network(name)
    p = tmp_path / "net.yaml"
    save_network_yaml(net, p)
    assert load_network(p) == net


def test_yaml_hand_written_with_defaults(tmp_path):
    p = tmp_path / "tiny.yml"
    p.write_text(
        "layers:\n"
        "  - {name: conv1, type: conv, N: 2, C: 3, M: 16, H: 32, W: 32, R: 3, S: 3, pad: 1}\n"
        "  - {name: fc, type: FC, N: 2, C: 16, M: 10, H: 32, W: 32, R: 32, S: 32}\n")
    net = load_network(p)
    assert net.name == "tiny" and net["conv1"].stride == 1 and net["conv1"].groups == 1
    assert net["conv1"].type is LayerType.CONV
    assert resolve_workload(str(p), batch=5)[1].N == 5


def test_csv_optional_columns(tmp_path):
    p = tmp_path / "short.csv"
    p.write_text("# a comment\nname,type,N,C,M,H,W,R,S,pad\n\nc1,CONV,1,3,8,8,8,3,3,1\n"
                 "c2,CONV,1,8,8,8,8,1,1,\n")
    net = load_network(p)
    assert net.name == "short"
    assert [(l.stride, l.pad, l.groups) for l in net] == [(1, 1, 1), (1, 0, 1)]


HEADER = "name,type,N,C,M,H,W,R,S,stride,pad,groups\n"
GOOD = "c1,CONV,1,3,8,8,8,3,3,1,1,1\n"


@pytest.mark.parametrize("text, must_contain", [
    ("name,type,N,C,M,H,W,R\n" + "c1,CONV,1,3,8,8,8,3\n", ["line 1", "missing column S"]),
    ("name,type,N,C,M,H,W,R,S,strides\n", ["unknown column", "'strides'"]),
    (HEADER + GOOD + "c2,CONV,1,8,x,8,8,3,3,1,1,1\n", ["line 3", "'c2'", "field M", "not an integer"]),
    (HEADER + GOOD + "c2,CONV,1,8,2.5,8,8,3,3,1,1,1\n", ["line 3", "field M"]),
    (HEADER + GOOD + "c2,CONV,1,8,,8,8,3,3,1,1,1\n", ["line 3", "field M is empty"]),
    (HEADER + "c1,POOL,1,3,8,8,8,3,3,1,1,1\n", ["line 2", "'c1'", "field type", "'POOL'"]),
    (HEADER + "c1,CONV,1,3,8,8,8,3,3,1,1\n", ["line 2", "expected 12 fields"]),
    (HEADER + "c1,CONV,1,3,8,8,8,3,3,0,1,1\n", ["line 2", "'c1'", "field stride"]),
    (HEADER + "c1,CONV,1,3,8,2,8,7,3,1,1,1\n", ["line 2", "'c1'", "field R"]),
    (HEADER + GOOD + GOOD, ["duplicate layer name 'c1'"]),
    (HEADER, ["has no layers"]),
    ("", ["no header row"]),
])
def test_malformed_csv_messages(tmp_path, text, must_contain):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(WorkloadError) as e:
        load_network(p)
    msg = str(e.value)
    assert str(p) in msg, msg
    for s in must_contain:
        assert s in msg, (s, msg)


@pytest.mark.parametrize("text, must_contain", [
    ("layers: []\n", ["field layers"]),
    ("layers:\n  - {name: a, type: CONV, N: 1, C: 3, M: 8, H: 8, W: 8, R: 3}\n",
     ["layer #1 ('a')", "missing field S"]),
    ("layers:\n  - {name: a, type: CONV, N: 1, C: 3, M: '8', H: 8, W: 8, R: 3, S: 3}\n",
     ["layer #1 ('a')", "field M", "not an integer"]),
    ("layers:\n  - {name: a, type: CONV, N: 1, C: 3, M: 8, H: 8, W: 8, R: 3, S: 3, strid: 2}\n",
     ["unknown field 'strid'"]),
    ("layers:\n  - {name: a, type: FC, N: 1, C: 3, M: 8, H: 8, W: 8, R: 3, S: 3}\n",
     ["layer #1", "'a'", "FC"]),
    ("layers: [1, 2\n", ["not valid YAML"]),
])
def test_malformed_yaml_messages(tmp_path, text, must_contain):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(WorkloadError) as e:
        load_network(p)
    msg = str(e.value)
    assert str(p) in msg, msg
    for s in must_contain:
        assert s in msg, (s, msg)


def test_resolve_workload(tmp_path):
    assert resolve_workload("vgg16").name == "vgg16"
    assert {l.N for l in resolve_workload("alexnet", batch=2)} == {2}
    p = tmp_path / "mine.csv"
    save_network_csv(get_network("googlenet"), p)
    assert resolve_workload(str(p)).layers == get_network("googlenet").layers
    assert resolve_workload(p, batch=3)[0].N == 3
    with pytest.raises(WorkloadError, match="resnet50"):
        resolve_workload("resnet-51")
    with pytest.raises(WorkloadError, match="does not exist"):
        resolve_workload(str(tmp_path / "missing.yaml"))
