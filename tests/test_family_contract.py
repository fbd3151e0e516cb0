"""The contract every registered architecture family keeps (eyejax.arch registry), checked the same
way for each, so a new family is checked by registering it: its defaults are valid and report the
family; every ranged field out of range is refused before any work, naming the field and range;
PE and MAC-unit counts and the area proxy are one value per configuration; its random sampler
draws valid architectures; its native dataflow runs it, and a batch gives the same rows as one
configuration at a time. `check_family` is reused by tests/test_toy_family.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eyejax.arch import families, family_of
from eyejax.arch.errors import ArchError
from eyejax.evaluate import evaluate
from eyejax.sweep.area import AREA_COLUMNS
from eyejax.workload.layer import Layer
from eyejax.workload.network import Network

NET = Network("family", (
    Layer("conv1", "CONV", N=1, C=3, M=8, H=12, W=12, R=3, S=3, pad=1),
    Layer("fc", "FC", N=1, C=8 * 12 * 12, M=10, H=1, W=1, R=1, S=1),
))


def check_validation(family):
    arch = family.arch_class()
    family.validate(arch)
    assert family_of(arch) is family
    for field, (lo, hi) in family.ranges.items():
        for bad in (lo - 1, hi + 1):
            with pytest.raises(ArchError, match=rf"arch\.{field}\b"):
                family.validate(arch.replace(**{field: bad}))
    with pytest.raises(ArchError, match=r"arch\.energy\.alu"):
        family.validate(arch.replace(energy=arch.energy.replace(alu=float("nan"))))


def check_sizes(family, n=3):
    arch = family.sample(n, 0) if family.sample is not None else family.arch_class()
    pes, macs = family.num_pes(arch, n), family.mac_units(arch, n)
    assert pes.shape == macs.shape == (n,) and np.all(pes >= 1) and np.all(macs >= pes)
    if family.area is not None:
        area = family.area(arch, n)
        assert tuple(area) == AREA_COLUMNS
        assert all(np.shape(v) == (n,) and np.all(np.asarray(v) > 0) for v in area.values())


def _frame(res):
    df = res.to_dataframe()
    keep = [c for c in df.columns if not c.startswith(("arch.", "config_id"))]
    return df[keep].reset_index(drop=True)


def check_batch_equals_single(family, n=2):
    """A batch of the family's random draws (or its defaults) equals each evaluated alone."""
    if family.sample is None:
        arch = family.arch_class()
        res = evaluate(arch, NET)
        assert res.network_totals()["feasible"].all()
        return
    arch = family.sample(n, 7)
    family.validate(arch)
    batch = _frame(evaluate(arch, NET))
    L = len(NET.layers)
    for i in range(n):
        one = arch.replace(**{f: np.asarray(getattr(arch, f))[i] for f in family.fields()
                              if np.ndim(getattr(arch, f))})
        one = one.replace(energy=type(arch.energy)(**{
            k: (np.asarray(v)[i] if np.ndim(v) else v) for k, v in vars(arch.energy).items()}))
        single = _frame(evaluate(one, NET))
        pd.testing.assert_frame_equal(batch.iloc[i * L:(i + 1) * L].reset_index(drop=True), single,
                                      check_dtype=False)
    util = evaluate(arch, NET).to_dataframe()["utilization"]
    assert np.all((util >= 0) & (util <= 1))


def check_family(family):
    check_validation(family)
    check_sizes(family)
    check_batch_equals_single(family)


@pytest.mark.parametrize("name", list(families()))
def test_registered_family_keeps_the_contract(name):
    check_family(families()[name])


def test_unknown_family_is_named():
    class NotAnArch:
        family = "tpu_v9"

    with pytest.raises(ArchError, match="tpu_v9.*known"):
        family_of(NotAnArch())
