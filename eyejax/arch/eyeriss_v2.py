"""Eyeriss v2 parameters (JETCAS19; shared/reference/eyeriss.md §3) as a sweepable pytree."""
from __future__ import annotations

import dataclasses

import numpy as np
from flax import struct

from eyejax.arch.dram import DRAM_PRESETS, DRAM_RANGES  # noqa: F401  (DRAM_PRESETS: its old home)
from eyejax.arch.energy import ISCA16_NORMALIZED, ChipEnergy, EnergyTable
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.family import Family, per_config, random_energy_table, uniform_draws

# Address-scratchpad word widths, fixed by the chip (JETCAS19; eyeriss.md §3): iact address 9 × 4 b,
# weight address 16 × 7 b.
IACT_ADDR_BITS = 4
WEIGHT_ADDR_BITS = 7


@struct.dataclass
class EyerissV2:
    """Every leaf is numeric and may be a scalar or a batch of values (one per configuration)."""

    cluster_rows: int = 8            # eyeriss.md §3: 8×2 array of PE/GLB/router clusters
    cluster_cols: int = 2
    cluster_pe_rows: int = 3         # 3×4 = 12 PEs per cluster (192 PEs)
    cluster_pe_cols: int = 4
    iact_spad_words: int = 16        # iact data 16 × 12b
    iact_addr_words: int = 9         # iact address 9 × 4b
    weight_spad_words: int = 192     # weight data 96 × 24b = 192 12-b CSC words
    weight_addr_words: int = 16      # weight address 16 × 7b
    psum_spad_words: int = 32        # psum 32 × 20b
    macs_per_pe: int = 2             # 2 MAC datapaths (SIMD)
    pe_pipeline_stages: int = 7      # 7-stage PE pipeline: filled once per processing pass
    iact_glb_banks: int = 3          # per GLB cluster: 3 × 1.5 kB iact banks
    iact_glb_bank_bits: int = 12288
    psum_glb_banks: int = 4          # 4 × 1.875 kB psum banks
    psum_glb_bank_bits: int = 15360
    iact_routers: int = 3            # per router cluster: 3 iact routers, 4 ports, 24 b/port
    iact_router_ports: int = 4
    iact_port_bits: int = 24
    weight_routers: int = 3          # 3 weight routers, 2 ports, 24 b/port
    weight_router_ports: int = 2
    weight_port_bits: int = 24
    psum_routers: int = 4            # 4 psum routers, 3 ports, 40 b/port
    psum_router_ports: int = 3
    psum_port_bits: int = 40
    data_bits: int = 8               # 8-b weights and iacts
    psum_bits: int = 20              # 20-b psums
    csc_count_bits: int = 4          # 12-b CSC word = 4-b count + 8-b data
    clock_mhz: int = 200             # 200 MHz
    # Off-chip interface: the paper's setup, one that is not the bottleneck (JETCAS19 §V; eyeriss.md
    # §3): DRAM_PRESETS["unlimited"]. Realistic ones: DRAM_PRESETS (conf/arch/dram/ on the command
    # line). dram_clock_mhz is the bus's transfer rate (MT/s).
    dram_bus_bits: int = 1 << 20
    dram_clock_mhz: int = 100_000
    energy: EnergyTable = ISCA16_NORMALIZED

    @property
    def family(self) -> str:
        return "eyeriss_v2"

    def replace(self, **changes) -> "EyerissV2":
        return dataclasses.replace(self, **changes)




# Chip energy beyond data movement and MACs, in eyejax.dataflow.cost.overhead_energy's form, pJ per
# core cycle (65 nm, to go with the PJ_65NM table). JETCAS19 (eyeriss.md §3) reports chip energy
# (not DRAM), the HM-NoC at 6-10% of it, and the clock network as the main reason depthwise layers (little work per cycle)
# are the least efficient: energy paid every cycle whatever the work done. The papers give no
# split, so these values are an estimate CALIBRATED on the two dense published rows (the rows whose
# workload is known exactly): the published chip power is 584 mW on AlexNet (102.1 inf/s at 174.8
# inf/J) and 651 mW on MobileNet, of which the movement + MAC model accounts for about 240 and
# 340 mW at the model's own speed; about 235 mW of clock, control and leakage at a full array puts
# both dense rows within 10% on inference/J. Nothing is per network or per layer.
#   pe_clock 2.0 pJ per active PE per cycle: the clock leaves, the 7-stage pipeline registers and
#     the control of a clocked PE (a few hundred flip-flops at a few fJ each); idle PEs are
#     clock-gated (192 PEs: 77 mW).
#   fixed 750 pJ per cycle (150 mW): clock trunk, router- and GLB-cluster clocking, top control.
#   leakage 50 pJ per cycle (10 mW at 200 MHz): a 65 nm LP process's static power.
V2_CHIP_PJ = ChipEnergy(pe_clock=2.0, fixed=750.0, leakage=50.0)


V2_RANGES = {
    "cluster_rows": (1, 1024), "cluster_cols": (1, 1024),
    "cluster_pe_rows": (1, 64), "cluster_pe_cols": (1, 64),
    "iact_spad_words": (1, 1 << 16), "iact_addr_words": (1, 1 << 16),
    "weight_spad_words": (1, 1 << 16), "weight_addr_words": (1, 1 << 16),
    "psum_spad_words": (1, 1 << 16), "macs_per_pe": (1, 64), "pe_pipeline_stages": (1, 1024),
    "iact_glb_banks": (1, 1024), "iact_glb_bank_bits": (1, 1 << 30),
    "psum_glb_banks": (1, 1024), "psum_glb_bank_bits": (1, 1 << 30),
    "iact_routers": (1, 64), "iact_router_ports": (1, 64), "iact_port_bits": (1, 4096),
    "weight_routers": (1, 64), "weight_router_ports": (1, 64), "weight_port_bits": (1, 4096),
    "psum_routers": (1, 64), "psum_router_ports": (1, 64), "psum_port_bits": (1, 4096),
    "data_bits": (1, 64), "psum_bits": (1, 64), "csc_count_bits": (1, 16),
    "clock_mhz": (1, 100_000), **DRAM_RANGES,
}


def scaled_v2(cluster_grid: int, cluster_pe: int = 4, **changes) -> EyerissV2:
    """The scaling study's v2 (seed 003): square grids of square clusters, e.g. 4×4-PE clusters
    in a 4×4, 8×8 or 32×32 grid (256, 1024, 16384 PEs)."""
    return EyerissV2(cluster_rows=cluster_grid, cluster_cols=cluster_grid,
                     cluster_pe_rows=cluster_pe, cluster_pe_cols=cluster_pe, **changes)


def scaled_v1(side: int, **changes):
    """The scaling study's v1: a square side×side PE array."""
    return EyerissV1(pe_rows=side, pe_cols=side, **changes)


def pe_count(arch, n: int) -> np.ndarray:
    """Clusters × PEs per cluster."""
    return (per_config(arch.cluster_rows, n) * per_config(arch.cluster_cols, n)
            * per_config(arch.cluster_pe_rows, n) * per_config(arch.cluster_pe_cols, n))


def macs_per_pe(arch, n: int) -> np.ndarray:
    return per_config(arch.macs_per_pe, n)


def area(arch, n: int) -> dict[str, np.ndarray]:
    """Area proxy: PEs = clusters x cluster PEs; SRAM = iact + psum GLB banks + every PE's
    scratchpads in their own widths (iact 12 b, iact address 4 b, weight 12 b, weight address 7 b,
    psum 20 b: the chip's 192 kB GLB + 192 PEs x 0.42 kB = 246 kB, as published)."""
    b = lambda x: per_config(x, n)
    clusters = b(arch.cluster_rows) * b(arch.cluster_cols)
    pes = pe_count(arch, n)
    glb_bits = clusters * (b(arch.iact_glb_banks) * b(arch.iact_glb_bank_bits)
                           + b(arch.psum_glb_banks) * b(arch.psum_glb_bank_bits))
    csc = b(arch.data_bits) + b(arch.csc_count_bits)
    spad_bits = (b(arch.iact_spad_words) * csc + b(arch.iact_addr_words) * IACT_ADDR_BITS
                 + b(arch.weight_spad_words) * csc + b(arch.weight_addr_words) * WEIGHT_ADDR_BITS
                 + b(arch.psum_spad_words) * b(arch.psum_bits))
    return {"pe_count": pes.astype(np.int64), "sram_kb": (glb_bits + pes * spad_bits) / 8.0 / 1024.0}


def random_archs(batch: int, seed: int = 0) -> EyerissV2:
    """Random Eyeriss v2 variants for the benchmark: cluster grid and cluster shape, scratchpads,
    GLB banks, router widths, DRAM bus and the energy table (hop included)."""
    rng, u, f = uniform_draws(batch, seed)
    return EyerissV2(
        cluster_rows=u(2, 8), cluster_cols=u(2, 4), cluster_pe_rows=u(2, 4),
        cluster_pe_cols=u(3, 6), iact_spad_words=u(12, 24), weight_spad_words=u(96, 256),
        psum_spad_words=u(16, 48), iact_glb_banks=u(2, 6), psum_glb_banks=u(2, 6),
        iact_port_bits=rng.choice([16, 24, 48], batch), dram_bus_bits=rng.choice([32, 64, 128], batch),
        energy=random_energy_table(f, hop=True))


FAMILY = Family(name="eyeriss_v2", arch_class=EyerissV2, ranges=V2_RANGES, title="Eyeriss v2",
                native_dataflow="rs_plus", pe_count=pe_count, macs_per_pe=macs_per_pe, area=area,
                sample=random_archs, chip_energy={"pJ": V2_CHIP_PJ})
