"""Off-chip interfaces: (dram_bus_bits, dram_clock_mhz) presets shared by every family.

`dram_clock_mhz` is the bus's transfer rate (MT/s). The same presets are the Hydra group
conf/arch/dram/ (`arch/dram=<name>`), so a preset selects the same interface for v1 and v2.
"""
from __future__ import annotations

DRAM_PRESETS = {
    # never the bottleneck (2**20-bit bus at 10**5 MT/s: a few cycles per layer at most): JETCAS19
    # evaluates v2 with an off-chip interface that is not the bottleneck (eyeriss.md §3); the v2
    # default, and the setup of the v2/v1 scaling study for both chips
    "unlimited": dict(dram_bus_bits=1 << 20, dram_clock_mhz=100_000),
    # DDR4-3200, one 64-b channel, 25.6 GB/s: JETCAS19 quotes a 16-24% throughput drop with it
    "ddr4_3200": dict(dram_bus_bits=64, dram_clock_mhz=3200),
    # LPDDR4-3200, one 32-b channel, 12.8 GB/s
    "lpddr4_3200": dict(dram_bus_bits=32, dram_clock_mhz=3200),
    # Eyeriss v1's measured link, 64 b at 60 MHz (JSSC17), the v1 default
    "eyeriss_v1_link": dict(dram_bus_bits=64, dram_clock_mhz=60),
    # 64 b at the 200 MHz core clock: eyejax's v2 default before the paper's setup
    "core_64b": dict(dram_bus_bits=64, dram_clock_mhz=200),
}

UNLIMITED_DRAM = DRAM_PRESETS["unlimited"]

# Validated range of the two fields (every family): the widest preset fits.
DRAM_RANGES = {"dram_bus_bits": (1, 1 << 20), "dram_clock_mhz": (1, 100_000)}
