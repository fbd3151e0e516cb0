"""Eyexam: seven nested bounds per layer (eyejax/eyexam.py), on v1, the ISCA16 designs and v2."""
import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax import eyexam
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.isca16 import isca16_arch
from eyejax.evaluate import evaluate
from eyejax.workload import Layer, Network, get_network

WIDE_DRAM = dict(dram_bus_bits=1 << 14, dram_clock_mhz=200)   # bandwidth that never limits


def check_chain(b, raw):
    """Each step at most the previous one; the last equals the model's MACs / cycles."""
    for prev, nxt in zip(eyexam.STEPS[:-1], eyexam.STEPS[1:]):
        ok = np.isfinite(b[nxt])
        assert (b[nxt][ok] <= b[prev][ok] * (1 + 1e-12)).all(), (prev, nxt)
    work = np.asarray(raw.get("mac_pairs", raw["macs"]), dtype=float)
    feas = raw["feasible"]
    np.testing.assert_allclose(b["patterns"][feas], work[feas] / raw["cycles"][feas], rtol=1e-12)
    assert np.isnan(b["patterns"][~feas]).all()
    assert (b["pes"][feas] <= b["peak"][feas]).all()


DW112 = Layer("dw112", "DWCONV", N=1, C=32, M=32, H=112, W=112, R=3, S=3, stride=1, pad=1, groups=32)
DW7 = Layer("dw7", "DWCONV", N=1, C=1024, M=1024, H=7, W=7, R=3, S=3, stride=1, pad=1, groups=1024)


@pytest.fixture(scope="module")
def v1_result():
    """One compile: five layers on two v1 configurations, the chip (64 b at 60 MHz to DRAM) and the
    same array with DRAM bandwidth that never limits."""
    mb = get_network("mobilenet_v1", batch=1)
    net = Network("mix", (DW112, DW7, get_network("alexnet", batch=1)["FC6"], mb["Conv2d_0"],
                          mb["Conv2d_1_pw"]))
    arch = EyerissV1(dram_bus_bits=np.array([64, WIDE_DRAM["dram_bus_bits"]]),
                     dram_clock_mhz=np.array([60, WIDE_DRAM["dram_clock_mhz"]]))
    res = evaluate(arch, net)
    return res, eyexam.bounds(res)


def test_chain_is_monotone_and_ends_at_the_model(v1_result):
    check_chain(v1_result[1], v1_result[0].raw)


def test_depthwise_layer_on_v1_loses_at_the_array_or_dataflow_step(v1_result):
    """Hand-worked: 3×3 depthwise, stride 1, pad 1, on 12×14 PEs (DRAM bandwidth unlimited).

    E = 112: RS exposes D = R·E = 336 PEs per 2-D conv (one channel, one filter) -> step 3 = 168.
    With one channel and one filter per group only one set is used, but a set wider than the array
    is split into segments on different rows (JSSC17 §IV-A): 3×56 as four 3×14 segments on the
    12 rows, 168 PEs (2 strips) -> step 4 = 168 MACs/cycle, nothing lost at the array step.
    (Without segments it was e = 14, 42 PEs.)
    E = 7: D = 3·7 = 21 < 168 PEs -> the dataflow step limits, at 21 MACs/cycle.
    """
    b = v1_result[1]
    wide = 1
    assert b["dataflow"][wide, 0] == 336 and b["pes"][wide, 0] == 168
    assert b["array"][wide, 0] == pytest.approx(168.0, rel=1e-12)
    assert b["dataflow"][wide, 1] == 21 and b["array"][wide, 1] == pytest.approx(21.0)
    lim = eyexam.limiting_step(b)[wide]
    assert lim[0] not in ("array", "dataflow", "pes") and lim[1] == "dataflow"


def test_fc_at_batch_1_on_v1_is_bandwidth_bound(v1_result):
    """Hand-worked: AlexNet FC6 at batch 1 reads each weight once from DRAM: about one MAC per DRAM
    word. v1 moves 64 b at 60 MHz = 1.2 16-bit words per 200 MHz cycle, so step 6 is about
    1.2 MACs/cycle while the array could do over 100."""
    b = v1_result[1]
    chip, fc = 0, 2
    oi = b["operational_intensity"][chip, fc]
    assert oi == pytest.approx(1.0, rel=0.01)
    assert b["storage"][chip, fc] > 100
    assert b["bandwidth"][chip, fc] == pytest.approx(1.2 * oi, rel=1e-3)
    assert eyexam.limiting_step(b)[chip, fc] == "bandwidth"
    # with unlimited DRAM bandwidth it is bound by the next narrowest path: every weight, used once,
    # crosses the 64-b filter GIN (4 words per cycle), which the v1 model's passes now stall on
    # (docs/rs_model.md "Time"), so step 6 is 4 MACs/cycle
    assert b["bandwidth"][1, fc] == pytest.approx(4.0 * oi, rel=1e-2)
    assert b["bandwidth"][1, fc] < b["storage"][1, fc]


def test_isca16_dataflows_have_their_own_bounds():
    net = get_network("alexnet", batch=16)
    for name in ("ws", "nlr"):
        res = evaluate(isca16_arch(name, 256), net)
        b = eyexam.bounds(res)
        check_chain(b, res.raw)
        assert b["dataflow_name"] == name
        conv1 = net["CONV1"]
        D = {"ws": conv1.M * conv1.C * conv1.R * conv1.S, "nlr": conv1.M * conv1.C}[name]
        assert b["parallelism"][0, 0] == D


def test_table_and_figures(v1_result, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = v1_result[0]
    df = eyexam.table(res)
    assert list(df.layer[:3]) == ["dw112", "dw7", "FC6"] and len(df) == 10
    assert (df[[f"{k}_util" for k in eyexam.STEPS[2:]]].to_numpy() <= 1 + 1e-12).all()
    md = eyexam.markdown_table(df.head(3))
    assert md.count("\n") == 4 and "limited by" in md
    b = v1_result[1]
    for fn, name in ((eyexam.plot_roofline, "roof.png"), (eyexam.plot_waterfall, "fall.png")):
        ax = fn(b, res.network.names)
        ax.figure.savefig(tmp_path / name)
        plt.close(ax.figure)
        assert (tmp_path / name).stat().st_size > 10_000


def test_v2():
    from eyejax.arch.eyeriss_v2 import EyerissV2
    from eyejax.dataflow import rs_plus

    net = Network("two", tuple(get_network("mobilenet_v1_0.5_128", batch=1).layers[:2]))
    res = evaluate(EyerissV2(), net)
    b = eyexam.bounds(res)
    check_chain(b, res.raw)
    assert b["dataflow_name"] == "rs_plus" and rs_plus.FAMILIES == ("eyeriss_v2",)
    assert (b["peak"] == 384).all()      # 192 PEs × 2 MAC datapaths
