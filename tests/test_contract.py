"""The contract every registered dataflow keeps, checked the same way for each (a new dataflow is
checked by adding it to eyejax.dataflow.DATAFLOWS and a row to SWEPT and STARVED below): inputs are validated before any work with an
error naming the field; a batch gives the same rows as one configuration at a time; a configuration
where nothing fits is marked infeasible (zeros, never NaN) without disturbing the others; counts
and energies are finite and non-negative, and obey the physical invariants."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eyejax.arch import get_family
from eyejax.arch.isca16 import isca16_arch
from eyejax.dataflow import DATAFLOWS, get_dataflow
from eyejax.evaluate import evaluate
from eyejax.workload.layer import Layer
from eyejax.workload.network import Network

NET = Network("contract", (
    Layer("conv1", "CONV", N=2, C=3, M=8, H=15, W=15, R=3, S=3, stride=2, pad=1),
    Layer("conv2", "CONV", N=2, C=8, M=12, H=8, W=8, R=3, S=3, pad=1, groups=2),
    Layer("fc", "FC", N=2, C=12 * 8 * 8, M=10, H=1, W=1, R=1, S=1),
))


def default_arch(name: str):
    """The architecture a dataflow runs on by default: its family's chip (eyejax.arch registry), or
    its ISCA16 equal-area design for the families whose designs are built per dataflow."""
    family = get_family(get_dataflow(name).FAMILIES[0])
    if family.native_dataflow is None:
        return isca16_arch(name, 256)
    return family.arch_class()


# dataflow -> (a swept field and three values, fields that make nothing fit)
SWEPT = {"rs": ("pe_rows", [8, 12, 16]), "rs_plus": ("cluster_rows", [4, 8, 16])}
STARVED = {"rs": {"filter_spad_words": 1, "ifmap_spad_words": 1},
           "rs_plus": {"weight_spad_words": 1, "iact_spad_words": 1, "psum_spad_words": 1},
           }
ISCA16_SWEPT = ("pe_cols", [8, 16, 32])
ISCA16_STARVED = {"glb_words": 1}


def swept(name):
    return SWEPT.get(name, ISCA16_SWEPT)


def starved(name):
    return STARVED.get(name, ISCA16_STARVED)


def _frame(res):
    df = res.to_dataframe()
    keep = [c for c in df.columns if not c.startswith(("arch.", "config_id"))]
    return df[keep].reset_index(drop=True)


@pytest.fixture(scope="module", params=sorted(DATAFLOWS))
def name(request):
    return request.param


def test_every_registered_dataflow_is_covered():
    """A dataflow on its own family's designs needs its rows in SWEPT and STARVED (the ISCA16
    designs share theirs)."""
    for name in DATAFLOWS:
        family = get_family(get_dataflow(name).FAMILIES[0])
        assert family.native_dataflow is None or (name in SWEPT and name in STARVED), (
            f"add a row for dataflow {name!r} to SWEPT and STARVED in tests/test_contract.py")


def test_bad_field_is_named_before_any_work(name):
    arch = default_arch(name)
    field, _ = swept(name)
    with pytest.raises(ValueError, match=field):
        evaluate(arch.replace(**{field: 0}), NET, dataflow=name)
    with pytest.raises(ValueError, match="alu"):
        evaluate(arch.replace(energy=arch.energy.replace(alu=float("nan"))), NET, dataflow=name)


def test_batch_masking_and_invariants(name):
    """One batch: the default design, three values of a swept field, and a starved design. It must
    equal the five configurations evaluated one at a time; the starved one is infeasible where
    nothing fits (zeros, no NaN) without touching the others."""
    arch = default_arch(name)
    field, values = swept(name)
    starve = starved(name)
    configs = [{}] + [{field: v} for v in values] + [starve]
    keys = {field, *starve}
    columns = {k: np.asarray([c.get(k, getattr(arch, k)) for c in configs]) for k in keys}
    res = evaluate(arch.replace(**columns), NET, dataflow=name)
    df = res.to_dataframe()
    # each configuration alone, as a batch of copies of itself (the same compiled call)
    alone = lambda c: {k: np.full(len(configs), c.get(k, getattr(arch, k))) for k in keys}
    one_by_one = pd.concat([
        _frame(evaluate(arch.replace(**alone(c)), NET, dataflow=name)).iloc[:len(NET.layers)]
        for c in configs], ignore_index=True)
    pd.testing.assert_frame_equal(_frame(res), one_by_one, check_dtype=False)

    num = df.select_dtypes("number")
    if arch.energy.unit != "pJ":   # power needs an absolute energy table: NaN by design
        num = num.drop(columns=["power_mw"])
    assert np.isfinite(num.to_numpy(dtype=float)).all(), "NaN or inf in the results"
    assert df[df.config_id == 0]["feasible"].all()
    bad = df[(df.config_id == len(configs) - 1) & ~df["feasible"].astype(bool)]
    assert len(bad), f"starving {starve} left every layer feasible"
    assert (bad["macs"] == 0).all() and (bad["energy"] == 0).all() and (bad["cycles"] == 0).all()
    totals = res.network_totals()
    assert not bool(totals["feasible"].iloc[-1]) and bool(totals["feasible"].iloc[0])

    layers = {l.name: l for l in NET.layers}
    for _, row in df[df.config_id == 0].iterrows():
        layer = layers[row["layer"]]
        assert row["macs"] == layer.macs
        # every filter word comes from DRAM at least once; every output goes back at least once
        assert row["dram_filter_reads"] >= layer.M * (layer.C // layer.groups) * layer.R * layer.S
        assert row["dram_psum_writes"] >= layer.N * layer.M * layer.E * layer.F
        # the active PEs cannot do more than their MACs per cycle (v2 PEs have two)
        assert row["cycles"] * row["active_pes"] * 2 >= layer.macs
        assert row["energy"] > 0 and row["latency_ms"] > 0
    counts = [c for c in df.columns if c.startswith(("dram_", "glb_", "noc_", "rf_"))
              and pd.api.types.is_numeric_dtype(df[c])]
    assert (df[counts].to_numpy() >= 0).all()
