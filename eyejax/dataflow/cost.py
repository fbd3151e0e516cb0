"""Energy and time from access counts: shared by every dataflow model.

Energy = Σ accesses × energy per access of the level (ISCA16 model, shared/reference/eyeriss.md §2),
with CVPR17's refinements: zero-gated MACs and filter-RF reads cost nothing, and fmaps move to and
from DRAM in their RLC-compressed size.

Chip energy beyond data movement and MACs (clock network, control and leakage) has one form for
every architecture family, so a family only supplies parameters (`Family.chip_energy`):

    E_chip = E_movement + E_mac
           + cycles × active_PEs × (pe_clock + pe_gated × mac_density)   # PE clock leaves,
           + cycles × fixed                                              #   pipeline, PE control;
           + cycles × leakage                                            #   clock trunk, top-level
                                                                         #   control; leakage
(cycles at the core clock). Idle PEs are clock-gated (JSSC17 §IV-A), so only active PEs pay the
per-PE terms. `pe_gated` is the part of a PE's clocked logic that zero gating switches off with a
zero input activation (JSSC17: zero gating saves 45% of PE power), so it scales with the fraction
of MACs not gated (`mac_density`; 1 for a dense layer or a family without gating). Parameters are
in the unit of the family's energy table per core cycle; a "normalized" table is movement-only
(the ISCA16 analysis). The movement-only breakdown stays beside the chip total.
"""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.arch import family_of
from eyejax.arch.energy import ChipEnergy
from eyejax.dataflow.tiling import cdiv

# (level, data type) -> count keys summed for it.
ACCESS_GROUPS = {
    ("dram", "ifmap"): ("dram_ifmap_reads",),
    ("dram", "filter"): ("dram_filter_reads",),
    ("dram", "psum"): ("dram_psum_reads", "dram_psum_writes"),
    ("glb", "ifmap"): ("glb_ifmap_reads", "glb_ifmap_writes"),
    ("glb", "filter"): ("glb_filter_reads", "glb_filter_writes"),
    ("glb", "psum"): ("glb_psum_reads", "glb_psum_writes"),
    ("noc", "ifmap"): ("noc_ifmap",),
    ("noc", "filter"): ("noc_filter",),
    ("noc", "psum"): ("noc_psum",),
    ("rf", "ifmap"): ("rf_ifmap_reads", "rf_ifmap_writes"),
    ("rf", "filter"): ("rf_filter_reads", "rf_filter_writes"),
    ("rf", "psum"): ("rf_psum_reads", "rf_psum_writes"),
}


GATED_KEYS = ("rf_filter_reads",)  # zero gating skips these (and the MACs) for zero ifmaps


def rlc_ratios(sp, first):
    """(ifmap, ofmap) DRAM size ratios: RLC-compressed fmaps, except the first layer's input image."""
    return jnp.where(first, 1.0, sp.ifmap_rlc_ratio), sp.ofmap_rlc_ratio


def compressed_words(c, ifmap_ratio, ofmap_ratio, filter_ratio=None):
    """(ifmap, filter, ofmap) DRAM words at the given size ratios, not rounded (filters plain when
    `filter_ratio` is None)."""
    ifmap = c["dram_ifmap_reads"] * ifmap_ratio
    filt = c["dram_filter_reads"] if filter_ratio is None else c["dram_filter_reads"] * filter_ratio
    ofmap = (c["dram_psum_writes"] + c["dram_psum_reads"]) * ofmap_ratio
    return ifmap, filt, ofmap


def dram_traffic_words(c, sp, first):
    """DRAM words actually moved: fmaps RLC-compressed (not the first layer's input image), whole
    words."""
    ifmap, filt, ofmap = compressed_words(c, *rlc_ratios(sp, first))
    return jnp.ceil(ifmap), filt, jnp.ceil(ofmap)


def energy(c, arch, sp, first):
    """Energy by (level, data type) plus `alu`, in the unit of arch.energy."""
    return movement_energy(c, arch.energy, sp.mac_density, dram_traffic_words(c, sp, first))


def movement_energy(c, et, g, dram_words):
    """The energy formula: accesses × energy per access of the level (`et`: any object with the
    fields alu, rf, noc, glb, dram), with the GATED_KEYS reads and the MACs scaled by the fraction
    `g` that runs, and `dram_words` = (ifmap, filter, ofmap) words moved to and from DRAM. Energy by
    (level, data type) plus `alu`."""
    out = {}
    d_if, d_f, d_ps = dram_words
    out["dram_ifmap"] = et.dram * d_if
    out["dram_filter"] = et.dram * d_f
    out["dram_psum"] = et.dram * d_ps
    for (level, dt), keys in ACCESS_GROUPS.items():
        if level == "dram":
            continue
        n = 0.0
        for k in keys:
            w = g if k in GATED_KEYS else 1.0  # zero gating skips filter reads
            n = n + c[k] * w
        out[f"{level}_{dt}"] = getattr(et, level) * n
    out["alu"] = et.alu * c["macs"] * g
    return out


def total_energy(e):
    return sum(e.values())


def dram_cycles(c, arch, sp, first):
    """Core cycles to move the DRAM traffic over the DRAM bus (integer, rounded up)."""
    d_if, d_f, d_ps = dram_traffic_words(c, sp, first)
    return bus_cycles(d_if + d_f + d_ps, arch)


def bus_cycles(words, arch):
    """Core cycles to move `words` over the DRAM bus (integer, rounded up)."""
    bits = words * arch.word_bits
    return cdiv(bits * arch.clock_mhz, arch.dram_bus_bits * arch.dram_clock_mhz)


def dram_wait_cycles(c, arch, sp, first):
    """Core cycles the array waits for DRAM (JSSC17 §VI-A, total latency): the ifmap loads and the
    ofmap write-back over the DRAM bus; filters stream from DRAM while passes run (their DRAM time
    bounds each pass instead, docs/rs_model.md "Time")."""
    d_if, _, d_ps = dram_traffic_words(c, sp, first)
    return bus_cycles(d_if + d_ps, arch)


def chip_params(arch) -> ChipEnergy:
    """The architecture family's chip-energy parameters for its energy table's unit."""
    return family_of(arch).chip_params(arch)


def overhead_energy(cycles, active_pes, params: ChipEnergy, mac_density=1.0) -> dict:
    """Clock/control and leakage energy of a run of `cycles` with `active_pes` PEs clocked, a
    fraction `mac_density` of whose MACs are not zero-gated (the form in the module docstring)."""
    return {
        "clock": cycles * (active_pes * (params.pe_clock + params.pe_gated * mac_density)
                           + params.fixed),
        "leakage": cycles * params.leakage,
    }
