"""Chip energy beyond data movement and MACs: clock network, control and leakage.

One documented form for every architecture family, so a family only supplies parameters:

    E_chip = E_movement + E_mac
           + cycles × active_PEs × (pe_clock + pe_gated × mac_density)   # PE clock leaves,
           + cycles × fixed                                              #   pipeline, PE control;
           + cycles × leakage                                            #   clock trunk, top-level
                                                                         #   control; leakage
(cycles at the core clock). Idle PEs are clock-gated (JSSC17 §IV-A), so only active PEs pay the
per-PE terms. `pe_gated` is the part of a PE's clocked logic that zero gating switches off with a
zero input activation (JSSC17: zero gating saves 45% of PE power), so it scales with the fraction
of MACs not gated (`mac_density`; 1 for a dense layer or a family without gating). Parameters are
in the unit of the family's energy table per core cycle; a table whose unit is "normalized"
carries zeros (the ISCA16 analysis is movement-only). The movement-only breakdown stays beside the
chip total.

Families register their parameters per energy-table unit in `CHIP_PARAMS` (`chip_params(arch)`
looks them up); an unregistered (family, unit) is movement-only.
"""
from __future__ import annotations

from flax import struct


@struct.dataclass
class ChipEnergy:
    """Per-cycle energies beyond data movement (energy-table unit per core cycle)."""

    pe_clock: float = 0.0   # per active PE per cycle: clock leaves, pipeline registers, PE control
    fixed: float = 0.0      # per cycle for the whole chip: clock trunk, top-level control, GLB periphery
    leakage: float = 0.0    # per cycle: static power / core clock
    pe_gated: float = 0.0   # per active PE per cycle × MAC density: PE logic zero gating turns off


MOVEMENT_ONLY = ChipEnergy()


def overhead_energy(cycles, active_pes, params: ChipEnergy, mac_density=1.0) -> dict:
    """Clock/control and leakage energy of a run of `cycles` with `active_pes` PEs clocked, a
    fraction `mac_density` of whose MACs are not zero-gated."""
    return {
        "clock": cycles * (active_pes * (params.pe_clock + params.pe_gated * mac_density)
                           + params.fixed),
        "leakage": cycles * params.leakage,
    }


# ------------------------------------------------------------------------------------------------
# Eyeriss v1, 65 nm pJ table (eyejax/arch/energy.py PJ_65NM), 200 MHz core clock.
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

# (family, energy-table unit) -> parameters. Other families add theirs here.
CHIP_PARAMS: dict = {
    ("eyeriss_v1", "pJ"): V1_PJ_65NM,
}


def chip_params(arch) -> ChipEnergy:
    """The family's parameters for the unit of its energy table (static: resolved at trace time);
    MOVEMENT_ONLY when none are registered (e.g. the normalized ISCA16 table)."""
    family = getattr(arch, "family", None)
    unit = getattr(getattr(arch, "energy", None), "unit", "normalized")
    return CHIP_PARAMS.get((family, unit), MOVEMENT_ONLY)
