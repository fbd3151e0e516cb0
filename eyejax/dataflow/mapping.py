"""Mapping pytrees shared by the analytical model and the functional simulation."""
from __future__ import annotations

import dataclasses

from flax import struct

# Names of the access counts every dataflow model and simulation reports (int64).
COUNT_KEYS = (
    "macs",
    "dram_ifmap_reads", "dram_filter_reads", "dram_psum_reads", "dram_psum_writes",
    "glb_ifmap_reads", "glb_ifmap_writes", "glb_filter_reads", "glb_filter_writes",
    "glb_psum_reads", "glb_psum_writes",
    "noc_ifmap", "noc_filter", "noc_psum",
    "rf_ifmap_reads", "rf_ifmap_writes", "rf_filter_reads", "rf_filter_writes",
    "rf_psum_reads", "rf_psum_writes",
    "passes", "compute_cycles", "ramp_cycles", "active_pes",
)
RS_EXTRA_KEYS = ("stall_cycles",)   # RS counts beyond COUNT_KEYS (model and simulation agree)
# HM-NoC router modes (JETCAS19): the `noc_mode_<type>` results index these names
NOC_MODES = ("unicast", "grouped_multicast", "interleaved_multicast", "broadcast")


@struct.dataclass
class RSMapping:
    """One row-stationary mapping (docs/rs_model.md): h filter rows per PE set, e set width,
    r/t sets on different channels/filters, p/q filters/channels per PE, n images per pass,
    m ofmap channels whose psums stay in the GLB (a multiple of p*t)."""

    h: int
    e: int
    r: int
    t: int
    p: int
    q: int
    n: int
    m: int


@struct.dataclass
class RSPlusMapping:
    """One RS+ mapping on Eyeriss v2 (docs/rs_plus_model.md): RS's h, e, r, t, p, q, n, m plus
    g (sets on different groups), b (sets on different image sets), o (sets on different strips
    of e ofmap rows: the ofmap rows tiled spatially; 1 = strips one after another) and oc (sets on
    different strips of F/oc ofmap columns: the ofmap columns tiled spatially; 1 = whole rows)."""

    h: int
    e: int
    r: int
    t: int
    g: int
    b: int
    p: int
    q: int
    n: int
    m: int
    o: int = 1
    oc: int = 1


def as_rs_plus_mapping(obj) -> RSPlusMapping:
    """`obj` (an RSPlusMapping or any object with its fields) as an RSPlusMapping; o and oc are 1
    where the object has none (mappings written before strip sets run their strips one after
    another, on whole ofmap rows)."""
    if isinstance(obj, RSPlusMapping):
        return obj
    return RSPlusMapping(**{f.name: getattr(obj, f.name) if f.default is dataclasses.MISSING
                            else getattr(obj, f.name, f.default)
                            for f in dataclasses.fields(RSPlusMapping)})
