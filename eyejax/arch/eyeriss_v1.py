"""Eyeriss v1 parameters (JSSC17; shared/reference/eyeriss.md §2) as a sweepable pytree."""
from __future__ import annotations

import dataclasses

import numpy as np
from flax import struct

from eyejax.arch.dram import DRAM_RANGES, UNLIMITED_DRAM  # noqa: F401  (its earlier home)
from eyejax.arch.energy import ISCA16_NORMALIZED, ChipEnergy, EnergyTable
from eyejax.arch.errors import ArchError
from eyejax.arch.family import Family, per_config, random_energy_table, uniform_draws


@struct.dataclass
class EyerissV1:
    """Every leaf is numeric and may be a scalar or a batch of values (one per configuration)."""

    pe_rows: int = 12               # JSSC17: 12 x 14 PE array
    pe_cols: int = 14
    filter_spad_words: int = 224    # JSSC17: filter spad 224 x 16b (SRAM)
    ifmap_spad_words: int = 12      # ifmap spad 12 x 16b (registers)
    psum_spad_words: int = 24       # psum spad 24 x 16b (registers)
    glb_banks: int = 25             # JSSC17: 100 kB ifmap/psum GLB in 25 banks of 4 kB
    glb_bank_words: int = 2048      # 4 kB bank / 16-bit words
    glb_ifmap_banks: int = 0        # banks given to ifmaps; 0 = chosen per layer, as on the chip
    filter_buffer_words: int = 4096  # JSSC17: filters have their own 8 kB of the 108 kB GLB (16-b
    #                                  words); a pass's filters are prefetched into it. 0 = no limit
    word_bits: int = 16             # 16-bit fixed point
    clock_mhz: int = 200            # measured at 200 MHz core clock
    dram_bus_bits: int = 64         # 64-bit DRAM bus on a 60 MHz link clock
    dram_clock_mhz: int = 60
    filter_bus_bits: int = 64       # GIN widths: filter 64 b, ifmap 16 b, psum 64 b
    ifmap_bus_bits: int = 16
    psum_bus_bits: int = 64
    energy: EnergyTable = ISCA16_NORMALIZED

    @property
    def family(self) -> str:
        return "eyeriss_v1"

    def replace(self, **changes) -> "EyerissV1":
        return dataclasses.replace(self, **changes)


# Allowed ranges checked before any work: field -> (low, high) inclusive.
V1_RANGES = {
    "pe_rows": (1, 4096), "pe_cols": (1, 4096),
    "filter_spad_words": (1, 1 << 20), "ifmap_spad_words": (1, 1 << 20),
    "psum_spad_words": (1, 1 << 20),
    "glb_banks": (1, 1 << 16), "glb_bank_words": (1, 1 << 24), "glb_ifmap_banks": (0, 1 << 16),
    "filter_buffer_words": (0, 1 << 24), "word_bits": (1, 64), "clock_mhz": (1, 100_000),
    **DRAM_RANGES,
    "filter_bus_bits": (1, 1 << 16), "ifmap_bus_bits": (1, 1 << 16), "psum_bus_bits": (1, 1 << 16),
}


# Chip energy beyond movement (eyejax.dataflow.cost.overhead_energy), 65 nm pJ table (PJ_65NM),
# 200 MHz core clock.
#
# Calibrated once on AlexNet CONV1-5 as a set (JSSC17 Table V measured chip power, batch 4, the
# chip's own mapping of Table III, measured ifmap zeros), nothing per layer:
# - fixed: ISSCC16's AlexNet power breakdown leaves 3.9% of chip power outside the PE array
#   (77.8%), the NoC (15.6%) and the buffer (2.7%): clock trunk and top-level control. 3.9% of the
#   278 mW average at 200 MHz = 54 pJ per cycle.
# - pe_clock, pe_gated: the rest of the measured power that the movement table does not explain
#   (JSSC17: data movement is at most 45% of power in CONV1/CONV5 and ALUs under 10%, so over half
#   is clocking and control), split into a part every active PE pays and a part that zero gating
#   turns off with the ifmap zeros (JSSC17: zero gating saves 45% of PE power). Least squares of
#   the relative error over the five layers: 3.1 and 4.6 pJ per active PE per cycle. With them,
#   CONV1-5 come out at +3%, -4%, -6%, +2%, +3% of the measured power, and gating a layer with
#   80% zeros saves about 40% of PE-array power (RF, ALU and PE clock terms), near JSSC17's 45%.
# - leakage: the papers do not separate it (65 nm LP, 1 V); whatever there is lies in the fitted
#   per-cycle terms, so it is 0 here.
V1_PJ_65NM = ChipEnergy(pe_clock=3.1, fixed=54.0, leakage=0.0, pe_gated=4.6)


def check_glb_split(arch) -> None:
    """The ifmap banks leave at least one bank for psums (0 = split per layer, as on the chip)."""
    if np.any(np.asarray(arch.glb_ifmap_banks) >= np.asarray(arch.glb_banks)):
        raise ArchError("arch.glb_ifmap_banks must be 0 (split per layer) or in [1, glb_banks-1]")


def pe_count(arch, n: int) -> np.ndarray:
    return per_config(arch.pe_rows, n) * per_config(arch.pe_cols, n)


def area(arch, n: int) -> dict[str, np.ndarray]:
    """Area proxy: PEs = rows x cols; SRAM = GLB banks x bank words + filter buffer words + PEs x
    (filter + ifmap + psum spad words), at word_bits (the chip: 168 PEs, 100 kB ifmap/psum GLB +
    8 kB filter buffer + 87.4 kB of spads = 195.4 kB)."""
    pes = pe_count(arch, n)
    spad = (per_config(arch.filter_spad_words, n) + per_config(arch.ifmap_spad_words, n)
            + per_config(arch.psum_spad_words, n))
    words = (per_config(arch.glb_banks, n) * per_config(arch.glb_bank_words, n)
             + per_config(arch.filter_buffer_words, n) + pes * spad)
    return {"pe_count": pes.astype(np.int64),
            "sram_kb": words * per_config(arch.word_bits, n) / 8.0 / 1024.0}


def random_archs(batch: int, seed: int = 0) -> EyerissV1:
    """Random Eyeriss v1 variants for the benchmark: array shape, scratchpads, GLB banks, DRAM bus
    and the energy table."""
    rng, u, f = uniform_draws(batch, seed)
    return EyerissV1(
        pe_rows=u(8, 16), pe_cols=u(8, 16), filter_spad_words=u(64, 512),
        ifmap_spad_words=u(8, 24), psum_spad_words=u(8, 48), glb_banks=u(8, 64),
        dram_bus_bits=rng.choice([32, 64, 128], batch), energy=random_energy_table(f))


FAMILY = Family(name="eyeriss_v1", arch_class=EyerissV1, ranges=V1_RANGES, title="Eyeriss v1",
                native_dataflow="rs", pe_count=pe_count, area=area, sample=random_archs,
                check=check_glb_split, chip_energy={"pJ": V1_PJ_65NM})
