"""Energy per access, by storage/compute level, as a pytree that can be swept."""
from __future__ import annotations

from flax import struct

DATA_TYPES = ("ifmap", "filter", "psum")


@struct.dataclass
class EnergyTable:
    """Energy of one 16-bit access at each level (one MAC for `alu`).

    `unit` is "normalized" (multiples of one MAC) or "pJ"; it is static metadata, not a swept leaf.
    """

    alu: float
    rf: float
    noc: float
    glb: float
    dram: float
    hop: float = 2.0  # one word over one inter-cluster mesh link (Eyeriss v2's HM-NoC)
    unit: str = struct.field(pytree_node=False, default="normalized")


# ISCA16 Fig. 1 / PIEEE17 Fig. 22 (shared/reference/eyeriss.md §2 "Energy model"): normalized to one
# 16-bit MAC in 65 nm: RF (0.5 kB) 1x, PE-to-PE/NoC 2x, global buffer (>100 kB) 6x, DRAM 200x.
# A mesh hop between clusters is a 1-2 mm link like ISCA16's array level, so it gets the same 2x.
ISCA16_NORMALIZED = EnergyTable(alu=1.0, rf=1.0, noc=2.0, glb=6.0, dram=200.0, hop=2.0,
                                unit="normalized")


# --------------------------------------------------------------------------------------------------
# Absolute table for a 65 nm process: pJ per 16-bit access (alu: pJ per 16-bit MAC).
#
# No public absolute 65 nm Eyeriss table exists: the Eyeriss tables shipped with Accelergy
# (Accelergy-Project/accelergy, accelergy/share/estimation_plug_ins/eyeriss_tables*/data/*.csv) hold
# placeholder energies of 1, and Accelergy-Project/accelergy-table-based-plug-ins
# sets_of_tables/eyeriss.table.yaml points at a private data directory. The values below therefore
# start from Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014
# (45 nm, 0.9 V) and are scaled to 65 nm with one factor:
#   s = E_65nm(1.0 V) / E_45nm(0.9 V) = 1.332 / 0.844 = 1.58,
# from the Stillmaker & Baas energy polynomials (Integration, the VLSI Journal 58, 2017,
# E(V) = a V^2 + b V + c; 45 nm: 1.103, -0.362, 0.2767; 65 nm: 3.755, -4.398, 1.975), as tabulated in
# Accelergy-Project/accelergy-library-plug-in scaling.py. 0.9 V is Horowitz's supply; 1.0 V is the
# Eyeriss v1 core supply (shared/reference/eyeriss.md §2). Off-chip DRAM is not scaled.
# Derivation, ratios and cross-checks: docs/energy_65nm.md.
PJ_65NM = EnergyTable(
    # Horowitz 45 nm: 8b/32b int multiply 0.2/3.1 pJ, 8b/32b int add 0.03/0.1 pJ; 16-bit values by
    # geometric interpolation: mult sqrt(0.2*3.1) = 0.787, add sqrt(0.03*0.1) = 0.055 -> MAC 0.842 pJ;
    # x s (1.58) = 1.33 pJ.
    alu=1.33,
    # Horowitz 45 nm 32-bit register-file access 1 pJ (Han et al., NIPS 2015, Fig. 1; EIE, ISCA 2016,
    # Table I) -> 16-bit 0.5 pJ (linear in width); x s = 0.79 pJ (0.6x MAC; ISCA16 puts the 0.5 kB
    # RF at 1x).
    rf=0.79,
    # ISCA16 ratio (inter-PE / NoC transfer over 1-2 mm = 2x MAC) applied to alu: 2 x 1.33 = 2.66 pJ.
    # Bracketed by the 65 nm wire model in Accelergy's eyeriss_table.py (0.22 fF/um, alpha 0.2,
    # 1.2 V: ~1.0 pJ for 16 b x 2 mm, wire only) and the public Eyeriss-like ERT of
    # Accelergy-Project/timeloop-accelergy-exercises 04_eyeriss_like (40 nm; 16-bit ifmap GIN
    # transfer with ID compare 3.39 pJ).
    noc=2.66,
    # Horowitz 45 nm 64-bit SRAM read: 32 KB 20 pJ, 1 MB 100 pJ; log-log interpolation to the 108 kB
    # GLB: 20 * (108/32)^(ln 5/ln 32) = 35.2 pJ per 64-bit word -> 8.8 pJ per 16-bit word (the GLB is
    # 64 bits wide); x s = 13.9 pJ. Cross-check: the 40 nm ERT above gives 36.0 pJ per 64-bit
    # shared_glb read (CACTI, 25 banks x 512 x 64 b).
    glb=13.9,
    # Horowitz: DRAM 1.3-2.6 nJ per 64-bit access (~20-40 pJ/bit); low end as 32-bit 640 pJ in Han
    # et al. NIPS 2015 -> 320 pJ per 16-bit word. Not scaled: an off-chip DRAM's access energy does
    # not depend on the accelerator's process node.
    dram=320.0,
    # An inter-cluster mesh link is a NoC transfer of the same 1-2 mm class: the noc value.
    hop=2.66,
    unit="pJ",
)

ENERGY_TABLES: dict[str, EnergyTable] = {
    "isca16_normalized": ISCA16_NORMALIZED,
    "pj_65nm": PJ_65NM,
}


# Chip energy beyond data movement and MACs (the form: eyejax.dataflow.cost.overhead_energy);
# each family gives its parameters per energy-table unit (Family.chip_energy).
@struct.dataclass
class ChipEnergy:
    """Per-cycle energies beyond data movement (energy-table unit per core cycle)."""

    pe_clock: float = 0.0   # per active PE per cycle: clock leaves, pipeline registers, PE control
    fixed: float = 0.0      # per cycle for the whole chip: clock trunk, top-level control, GLB periphery
    leakage: float = 0.0    # per cycle: static power / core clock
    pe_gated: float = 0.0   # per active PE per cycle × MAC density: PE logic zero gating turns off


MOVEMENT_ONLY = ChipEnergy()


def energy_table(name: str) -> EnergyTable:
    """Return the named energy table ("isca16_normalized" or "pj_65nm")."""
    try:
        return ENERGY_TABLES[name]
    except (KeyError, TypeError):
        allowed = ", ".join(repr(k) for k in ENERGY_TABLES)
        raise ValueError(f"unknown energy table {name!r}; allowed: {allowed}") from None
