"""A new architecture family and its dataflow in one file plus registration (CONTRIBUTING.md).

`ToySystolic` is a TPU-like output-stationary array: each PE keeps one output pixel and its psum,
weights and ifmaps stream in from the global buffer; the mapping search picks how many output
channels share one load of the ifmap block (`k`, bounded by the buffer). Nothing here is a model
of a real chip: it only shows that registering a family and a dataflow is all it takes for
evaluate, the results tables, Eyexam, the area proxy and the family contract to work.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from eyejax import arch as arch_registry
from eyejax import dataflow as dataflow_registry
from eyejax import eyexam
from eyejax.arch.energy import ISCA16_NORMALIZED, EnergyTable
from eyejax.arch.family import Family, per_config
from eyejax.dataflow import cost
from eyejax.dataflow.mapping import COUNT_KEYS
from eyejax.dataflow.search import cast, choose, layer_result, objective_score
from eyejax.dataflow.shape import layer_shape
from eyejax.dataflow.tiling import cdiv
from eyejax.evaluate import evaluate
from eyejax.metrics import check_objective
from test_family_contract import NET, check_family


# ------------------------------------------------------------------------------------ the family
@struct.dataclass
class ToySystolic:
    rows: int = 8
    cols: int = 8
    glb_words: int = 32768
    word_bits: int = 16
    clock_mhz: int = 500
    dram_bus_bits: int = 64
    dram_clock_mhz: int = 500
    energy: EnergyTable = ISCA16_NORMALIZED

    @property
    def family(self) -> str:
        return "toy_systolic"

    def replace(self, **changes) -> "ToySystolic":
        return dataclasses.replace(self, **changes)


RANGES = {"rows": (1, 1024), "cols": (1, 1024), "glb_words": (1, 1 << 30), "word_bits": (1, 64),
          "clock_mhz": (1, 100_000), "dram_bus_bits": (1, 1 << 20), "dram_clock_mhz": (1, 100_000)}


def sample(batch, seed=0):
    rng = np.random.default_rng(seed)
    return ToySystolic(rows=rng.integers(2, 17, batch), cols=rng.integers(2, 17, batch),
                       glb_words=rng.integers(256, 65536, batch))


FAMILY = Family(
    name="toy_systolic", arch_class=ToySystolic, ranges=RANGES, title="a toy systolic array",
    native_dataflow="toy_os", pe_count=lambda a, n: per_config(a.rows, n) * per_config(a.cols, n),
    area=lambda a, n: {"pe_count": (per_config(a.rows, n) * per_config(a.cols, n)).astype(np.int64),
                       "sram_kb": per_config(a.glb_words, n) * per_config(a.word_bits, n) / 8192.0},
    sample=sample)


# ----------------------------------------------------------------------------------- the dataflow
class ToyOS:
    """Output stationary: one output pixel per PE, a pass covers rows·cols pixels of one channel."""

    FAMILIES = ("toy_systolic",)
    MAPPING_KEYS = ("k",)
    DEFAULT_SEARCH = (1, 2, 4, 8, 16)       # output channels per ifmap-block load

    @staticmethod
    def counts(s, a, k, dtype):
        pes = a.rows * a.cols
        pixels = s["N"] * s["E"] * s["F"]
        window = s["Cg"] * s["R"] * s["S"]
        macs = s["G"] * s["Mg"] * pixels * window
        passes = s["G"] * s["Mg"] * cdiv(pixels, pes)
        loads = s["G"] * cdiv(s["Mg"], k)                 # ifmap block reloads
        ifmap = s["N"] * s["Cg"] * s["H"] * s["W"]
        zero = jnp.zeros_like(macs)
        c = {key: zero for key in COUNT_KEYS}
        c.update(macs=macs, passes=passes, compute_cycles=passes * window,
                 active_pes=jnp.minimum(pes, pixels),
                 dram_ifmap_reads=loads * ifmap, dram_filter_reads=s["G"] * s["Mg"] * window,
                 dram_psum_writes=s["G"] * s["Mg"] * pixels,
                 glb_ifmap_writes=loads * ifmap, glb_ifmap_reads=macs, glb_filter_reads=macs,
                 noc_ifmap=macs, noc_filter=macs, noc_psum=s["G"] * s["Mg"] * pixels,
                 rf_psum_reads=macs, rf_psum_writes=macs)
        return {key: v.astype(dtype) for key, v in c.items()}

    @classmethod
    def feasible(cls, s, a, k):
        return k * s["Cg"] * s["R"] * s["S"] + s["Cg"] * s["H"] * s["W"] <= a.glb_words

    @classmethod
    def cost(cls, s, a, sp, first, k, dtype):
        c = cls.counts(s, a, k, dtype)
        en = cost.energy(c, a, sp, first)
        dcyc = cost.dram_cycles(c, a, sp, first)
        return c, en, dcyc, c["compute_cycles"] + dcyc

    @classmethod
    def search_layer(cls, layer, arch, sp, first, objective="energy", space=None):
        check_objective(objective)
        f32 = jnp.float32
        s32, a32, sp32 = layer_shape(layer, f32), cast(arch, f32), cast(sp, f32)
        k = jnp.asarray(space or cls.DEFAULT_SEARCH, f32)
        _, en, _, cyc = cls.cost(s32, a32, sp32, first, k, f32)
        score = objective_score(objective, cost.total_energy(en), cyc)
        mp, any_ok, _ = choose(score, cls.feasible(s32, a32, k), {"k": k})
        c, en, dcyc, cycles = cls.cost(layer_shape(layer, jnp.int64), arch, sp, first, mp["k"],
                                       jnp.int64)
        return layer_result(c, en, mp, any_ok, dcyc, cycles)

    @staticmethod
    def validate_arch(arch):
        FAMILY.validate(arch)

    @staticmethod
    def parallelism(s):
        return s["N"] * s["E"] * s["F"] * s["Mg"]

    physical_min_compute = None


@pytest.fixture(scope="module", autouse=True)
def registered():
    arch_registry.register(FAMILY)                        # the one registry line per kind
    dataflow_registry.register_dataflow("toy_os", ToyOS)
    yield
    arch_registry.unregister(FAMILY.name)
    dataflow_registry.unregister_dataflow("toy_os")


def test_toy_family_keeps_the_family_contract():
    check_family(FAMILY)


def test_toy_family_runs_everywhere_a_family_goes():
    res = evaluate(ToySystolic(rows=np.array([4, 8])), NET)
    tot = res.network_totals()
    assert tot["feasible"].all() and (tot["energy"] > 0).all()
    df = res.to_dataframe()
    assert (df["utilization"] <= 1).all() and set(df["map_k"]) <= set(ToyOS.DEFAULT_SEARCH)
    assert int(df["macs"].iloc[0]) == NET.layers[0].macs
    b = eyexam.bounds(res)                                 # Eyexam asks the dataflow
    assert np.all(np.isfinite(np.asarray(b["peak"], dtype=float)))
    starved = evaluate(ToySystolic(glb_words=8), NET).network_totals()
    assert not starved["feasible"].any()                   # infeasible, never NaN or a crash
