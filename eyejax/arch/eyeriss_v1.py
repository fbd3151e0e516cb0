"""Eyeriss v1 parameters (JSSC17; shared/reference/eyeriss.md §2) as a sweepable pytree."""
from __future__ import annotations

import dataclasses

import numpy as np
from flax import struct

from eyejax.arch.energy import ISCA16_NORMALIZED, EnergyTable
from eyejax.arch.errors import ArchError


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
    "word_bits": (1, 64), "clock_mhz": (1, 100_000),
    "dram_bus_bits": (1, 1 << 16), "dram_clock_mhz": (1, 100_000),
    "filter_bus_bits": (1, 1 << 16), "ifmap_bus_bits": (1, 1 << 16), "psum_bus_bits": (1, 1 << 16),
}
ENERGY_RANGE = (0.0, 1e12)


def validate_arch(arch, ranges=None) -> None:
    """Raise ArchError naming the field and its allowed range; works on scalars or batches."""
    ranges = V1_RANGES if ranges is None else ranges
    for name, (lo, hi) in ranges.items():
        v = np.asarray(getattr(arch, name))
        if v.size == 0:
            raise ArchError(f"arch.{name} is empty")
        if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
            raise ArchError(f"arch.{name} must be numeric, got {v.dtype}")
        if np.any(v != np.round(v)):
            raise ArchError(f"arch.{name} must be an integer in [{lo}, {hi}], got {v.ravel()[:4]}")
        if np.any(v < lo) or np.any(v > hi):
            bad = v[(v < lo) | (v > hi)].ravel()[0]
            raise ArchError(f"arch.{name} = {bad} is outside the allowed range [{lo}, {hi}]")
    if "glb_ifmap_banks" in ranges:
        if np.any(np.asarray(arch.glb_ifmap_banks) >= np.asarray(arch.glb_banks)):
            raise ArchError("arch.glb_ifmap_banks must be 0 (split per layer) or in [1, glb_banks-1]")
    # every numeric field of the energy table (alu, rf, noc, glb, dram, hop, ...), in every family
    for f in dataclasses.fields(arch.energy):
        name = f.name
        if name == "unit":
            continue
        try:
            v = np.asarray(getattr(arch.energy, name), dtype=float)
        except (TypeError, ValueError):
            raise ArchError(f"arch.energy.{name} must be a number, got "
                            f"{getattr(arch.energy, name)!r}") from None
        lo, hi = ENERGY_RANGE
        if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < lo) or np.any(v > hi):
            bad = v[~np.isfinite(v) | (v < lo) | (v > hi)].ravel()
            raise ArchError(f"arch.energy.{name} must be finite and in [{lo}, {hi}]"
                            + (f", got {bad[0]}" if bad.size else ""))
