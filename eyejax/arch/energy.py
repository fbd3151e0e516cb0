"""Energy per access, by storage/compute level, as a pytree that can be swept."""
from __future__ import annotations

from flax import struct

LEVELS = ("dram", "glb", "noc", "rf", "alu")
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
    unit: str = struct.field(pytree_node=False, default="normalized")


# ISCA16 Fig. 1 / PIEEE17 Fig. 22 (shared/reference/eyeriss.md §2 "Energy model"): normalized to one
# 16-bit MAC in 65 nm: RF (0.5 kB) 1x, PE-to-PE/NoC 2x, global buffer (>100 kB) 6x, DRAM 200x.
ISCA16_NORMALIZED = EnergyTable(alu=1.0, rf=1.0, noc=2.0, glb=6.0, dram=200.0, unit="normalized")
