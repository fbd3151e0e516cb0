"""The ISCA16 equal-area spatial architecture (one per dataflow) as a sweepable pytree.

ISCA16 (Chen, Emer, Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient Dataflow for CNNs",
§VI-B, read from the paper text) compares dataflows "under the same hardware area and processing
parallelism": every dataflow gets the same number of PEs and the same *storage area*, the area of
`#PE × 512 B RF + a (#PE × 512 B) global buffer` (256 PEs: 512 B RF per PE + 128 kB buffer). Each
dataflow splits that area differently between its RFs and the buffer; NLR has no RF at all. Because
a byte of RF costs more area than a byte of buffer, dataflows with small RFs get a larger buffer.

What the paper text gives, and what eyejax assumes (docs/isca16_dataflows.md):
- RS keeps 512 B of RF and the 128 kB buffer (the baseline itself).
- "The difference in total on-chip storage size can go up to 80 kB. For the global buffer alone, the
  size difference is up to 2.6×." NLR gives its whole RF area to the buffer, so it has the largest
  buffer and total: at 256 PEs 128 kB × 2.6 ≈ 336 kB = (128 kB RF + 128 kB buffer) + 80 kB. Both
  figures give the same area ratio: one RF byte has the area of KAPPA = 1.625 buffer bytes (128 kB
  of RF -> 208 kB of buffer). ASSUMPTION: the ratio is the same at every size (ISCA16 Fig. 7a has
  the real, size-dependent curve).
- The RF each other dataflow keeps follows its definition in ISCA16 §VI-A (ASSUMPTION on the exact
  words): WS holds one weight per PE; OS_C one psum; OS_B one psum and a 1-D ifmap shift buffer
  (15 words); OS_A one psum and an ifmap row buffer for 2-D convolutional reuse, as large as RS's RF
  (§VI-D: "except for RS and OSA, the other dataflows [have smaller RFs]").
- Array shapes: 256 PEs = 16×16, 512 = 16×32, 1024 = 32×32 (the most square power-of-two split;
  ISCA16 does not say).
- DRAM: 64 b per core cycle (ASSUMPTION; ISCA16 assumes bandwidth is hidden and throughput ∝ active
  PEs). NoC buses: one word per PE per cycle for each data type (likewise "not a bottleneck").

RS under the same rule runs the existing RS model (eyejax.dataflow.rs) on an Eyeriss v1 pytree
built to the RS split: 16×16 array, spads 220 + 12 + 24 words (512 B), 32 GLB banks of 4 kB
(128 kB), no separate filter buffer (ISCA16's storage is the RF and the one buffer; Eyeriss v1's
8 kB filter buffer is not part of that budget: `filter_buffer_words = 0`); see `isca16_arch`.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from flax import struct

from eyejax.arch.dram import DRAM_RANGES
from eyejax.arch.energy import ISCA16_NORMALIZED, EnergyTable
from eyejax.arch.errors import ArchError
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.family import Family, per_config

ISCA16_DATAFLOWS = ("rs", "ws", "os_a", "os_b", "os_c", "nlr")
BASELINE_RF_BYTES = 512          # ISCA16 §VI-B: 512 B RF per PE ...
BASELINE_GLB_BYTES_PER_PE = 512  # ... and a #PE × 512 B global buffer
KAPPA = 1.625                    # area of one RF byte in buffer bytes (derived above; ASSUMPTION)
WORD_BYTES = 2                   # 16-bit words

# Per-PE RF split in 16-bit words: (ifmap, filter, psum). See the module docstring.
RF_SPLIT = {
    "rs": (12, 220, 24),    # Eyeriss v1's spads scaled to exactly 512 B (v1: 12 / 224 / 24 words)
    "ws": (0, 1, 0),        # one stationary weight
    "os_a": (255, 0, 1),    # one psum + an ifmap row buffer (2-D convolutional reuse): 512 B
    "os_b": (15, 0, 1),     # one psum + a 1-D ifmap shift buffer: 32 B
    "os_c": (0, 0, 1),      # one psum
    "nlr": (0, 0, 0),       # no RF
}

ARRAY_SHAPES = {256: (16, 16), 512: (16, 32), 1024: (32, 32)}


@struct.dataclass
class ISCA16Spatial:
    """One ISCA16 spatial architecture. Every numeric leaf may be a scalar or a batch of values.

    `dataflow` is static metadata: the dataflow this storage split was built for (the default one
    `evaluate` runs on it).
    """

    pe_rows: int = 16
    pe_cols: int = 16
    rf_ifmap_words: int = 0          # per-PE RF split (16-bit words)
    rf_filter_words: int = 1
    rf_psum_words: int = 0
    glb_words: int = 171_008         # global buffer (16-bit words); WS at 256 PEs by default
    word_bits: int = 16
    clock_mhz: int = 200
    dram_bus_bits: int = 64          # ASSUMPTION: 64 b per core cycle (see module docstring)
    dram_clock_mhz: int = 200
    filter_bus_bits: int = 4096      # GLB -> array buses: one word per PE per cycle
    ifmap_bus_bits: int = 4096
    psum_bus_bits: int = 4096
    energy: EnergyTable = ISCA16_NORMALIZED
    dataflow: str = struct.field(pytree_node=False, default="ws")

    @property
    def family(self) -> str:
        return "isca16"

    @property
    def native_dataflow(self) -> str:
        return self.dataflow

    def replace(self, **changes) -> "ISCA16Spatial":
        return dataclasses.replace(self, **changes)


ISCA16_RANGES = {
    "pe_rows": (1, 4096), "pe_cols": (1, 4096),
    "rf_ifmap_words": (0, 1 << 20), "rf_filter_words": (0, 1 << 20), "rf_psum_words": (0, 1 << 20),
    "glb_words": (1, 1 << 30), "word_bits": (1, 64), "clock_mhz": (1, 100_000),
    **DRAM_RANGES,
    "filter_bus_bits": (1, 1 << 24), "ifmap_bus_bits": (1, 1 << 24), "psum_bus_bits": (1, 1 << 24),
}


def check_dataflow(arch) -> None:
    """The design names one of the ISCA16 comparison dataflows (RS runs on an Eyeriss v1 pytree)."""
    if arch.dataflow not in ISCA16_DATAFLOWS[1:]:
        raise ArchError(f"ISCA16Spatial.dataflow must be one of {ISCA16_DATAFLOWS[1:]}, "
                        f"got {arch.dataflow!r}")


def pe_count(arch, n: int) -> np.ndarray:
    return per_config(arch.pe_rows, n) * per_config(arch.pe_cols, n)


# Not an `arch.family` of the Hydra config: the CLI builds these designs from `dataflow=<name>
# dataflow.num_pes=<n>` (isca16_arch). No area proxy: the designs are equal-area by construction.
FAMILY = Family(name="isca16", arch_class=ISCA16Spatial, ranges=ISCA16_RANGES,
                title="the ISCA16 equal-area design", pe_count=pe_count, check=check_dataflow,
                configurable=False)


def array_shape(num_pes: int) -> tuple[int, int]:
    """(rows, cols): the table above, else the most square split with rows <= cols."""
    if num_pes in ARRAY_SHAPES:
        return ARRAY_SHAPES[num_pes]
    rows = int(np.floor(np.sqrt(num_pes)))
    while num_pes % rows:
        rows -= 1
    return rows, num_pes // rows


def rf_bytes(dataflow: str) -> int:
    return WORD_BYTES * sum(RF_SPLIT[dataflow])


def glb_bytes(dataflow: str, num_pes: int) -> int:
    """Equal-area buffer: baseline buffer + the RF area the dataflow does not use, in buffer bytes."""
    spare_rf = (BASELINE_RF_BYTES - rf_bytes(dataflow)) * num_pes
    return int(BASELINE_GLB_BYTES_PER_PE * num_pes + np.floor(spare_rf * KAPPA))


def storage_table(num_pes: int = 256):
    """Per dataflow: RF bytes per PE, buffer kB, total on-chip kB (1 kB = 1024 B)."""
    rows = []
    for df in ISCA16_DATAFLOWS:
        rf = rf_bytes(df)
        gb = glb_bytes(df, num_pes)
        rows.append({"dataflow": df, "rf_bytes_per_pe": rf, "glb_kB": gb / 1024,
                     "total_kB": (gb + rf * num_pes) / 1024})
    return rows


def isca16_arch(dataflow: str, num_pes: int = 256, **changes):
    """The ISCA16 equal-area configuration of `dataflow` with `num_pes` PEs.

    rs -> an EyerissV1 (the RS model runs on it); every other dataflow -> an ISCA16Spatial.
    `changes` override fields of the returned pytree.
    """
    if dataflow not in ISCA16_DATAFLOWS:
        raise ValueError(f"dataflow must be one of {ISCA16_DATAFLOWS}, got {dataflow!r}")
    rows, cols = array_shape(int(num_pes))
    bus = 16 * rows * cols
    if dataflow == "rs":
        i, f, p = RF_SPLIT["rs"]
        bank_words = 2048
        banks = glb_bytes("rs", rows * cols) // (WORD_BYTES * bank_words)
        base = dict(pe_rows=rows, pe_cols=cols, filter_spad_words=f, ifmap_spad_words=i,
                    psum_spad_words=p, glb_banks=int(banks), glb_bank_words=bank_words,
                    dram_bus_bits=64, dram_clock_mhz=200, filter_bus_bits=bus, ifmap_bus_bits=bus,
                    psum_bus_bits=bus, energy=ISCA16_NORMALIZED,
                    filter_buffer_words=0)   # ISCA16's storage: RF + one buffer, no filter buffer
        base.update(changes)
        return EyerissV1(**base)
    i, f, p = RF_SPLIT[dataflow]
    base = dict(pe_rows=rows, pe_cols=cols, rf_ifmap_words=i, rf_filter_words=f, rf_psum_words=p,
                glb_words=glb_bytes(dataflow, rows * cols) // WORD_BYTES, filter_bus_bits=bus,
                ifmap_bus_bits=bus, psum_bus_bits=bus, dataflow=dataflow)
    base.update(changes)
    return ISCA16Spatial(**base)
