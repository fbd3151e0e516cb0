"""Chip energy beyond data movement and MACs: clock network, control and leakage.

One documented form for every architecture family, so a family only supplies parameters:

    E_chip = E_movement + E_mac
           + cycles × (pe_clock × active_PEs + fixed)      # clock leaves of active PEs, clock trunk
           + cycles × leakage                                 #   and control; leakage (per cycle at
                                                              #   the core clock)

Idle PEs are clock-gated (JSSC17 §IV-A), so only active PEs pay `pe_clock`. Parameters are in the
unit of the family's energy table per core cycle; a table whose unit is "normalized" carries zeros
(the ISCA16 analysis is movement-only). The movement-only breakdown stays beside the chip total.
"""
from __future__ import annotations

from flax import struct


@struct.dataclass
class ChipEnergy:
    """Per-cycle energies beyond data movement (energy-table unit per core cycle)."""

    pe_clock: float = 0.0   # per active PE per cycle: clock leaves, pipeline registers, PE control
    fixed: float = 0.0      # per cycle for the whole chip: clock trunk, top-level control, GLB periphery
    leakage: float = 0.0    # per cycle: static power / core clock


MOVEMENT_ONLY = ChipEnergy()


def overhead_energy(cycles, active_pes, params: ChipEnergy) -> dict:
    """Clock/control and leakage energy of a run of `cycles` with `active_pes` PEs clocked."""
    return {
        "clock": cycles * (params.pe_clock * active_pes + params.fixed),
        "leakage": cycles * params.leakage,
    }
