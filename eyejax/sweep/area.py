"""Area proxies per architecture family, for energy-vs-area Pareto fronts.

No area model is calibrated here; the proxies are the two quantities that dominate an accelerator's
area: the PE count and the total on-chip SRAM (global buffer plus every PE's scratchpads), in kB.
A family registers a function ``arch -> {"pe_count": [B], "sram_kb": [B]}`` in ``AREA_PROXIES``;
families without one simply get no area columns.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _b(x, n):
    x = np.asarray(x)
    return np.broadcast_to(x, (n,)) if x.ndim == 0 else x


def eyeriss_v1_area(arch, n: int) -> dict[str, np.ndarray]:
    """Eyeriss v1: PEs = rows x cols; SRAM = GLB banks x bank words + PEs x (filter + ifmap + psum
    spad words), at word_bits (the chip: 168 PEs, 100 kB GLB + 87.4 kB of spads = 187.4 kB)."""
    pes = _b(arch.pe_rows, n) * _b(arch.pe_cols, n)
    spad = (_b(arch.filter_spad_words, n) + _b(arch.ifmap_spad_words, n)
            + _b(arch.psum_spad_words, n))
    words = _b(arch.glb_banks, n) * _b(arch.glb_bank_words, n) + pes * spad
    return {"pe_count": pes.astype(np.int64),
            "sram_kb": words * _b(arch.word_bits, n) / 8.0 / 1024.0}


def eyeriss_v2_area(arch, n: int) -> dict[str, np.ndarray]:
    """Eyeriss v2: PEs = clusters x cluster PEs; SRAM = iact + psum GLB banks + every PE's
    scratchpads in their own widths (iact 12 b, iact address 4 b, weight 12 b, weight address 7 b,
    psum 20 b: the chip's 192 kB GLB + 192 PEs x 0.42 kB = 246 kB, as published)."""
    clusters = _b(arch.cluster_rows, n) * _b(arch.cluster_cols, n)
    pes = clusters * _b(arch.cluster_pe_rows, n) * _b(arch.cluster_pe_cols, n)
    glb_bits = clusters * (_b(arch.iact_glb_banks, n) * _b(arch.iact_glb_bank_bits, n)
                           + _b(arch.psum_glb_banks, n) * _b(arch.psum_glb_bank_bits, n))
    csc = _b(arch.data_bits, n) + _b(arch.csc_count_bits, n)
    spad_bits = (_b(arch.iact_spad_words, n) * csc + _b(arch.iact_addr_words, n) * 4
                 + _b(arch.weight_spad_words, n) * csc + _b(arch.weight_addr_words, n) * 7
                 + _b(arch.psum_spad_words, n) * _b(arch.psum_bits, n))
    return {"pe_count": pes.astype(np.int64), "sram_kb": (glb_bits + pes * spad_bits) / 8.0 / 1024.0}


# family -> area proxy function
AREA_PROXIES: dict[str, Callable] = {
    "eyeriss_v1": eyeriss_v1_area,
    "eyeriss_v2": eyeriss_v2_area,
}

AREA_COLUMNS = ("pe_count", "sram_kb")


def area_proxy(arch, n: int) -> dict[str, np.ndarray]:
    fn = AREA_PROXIES.get(getattr(arch, "family", None))
    return {} if fn is None else {k: np.asarray(v) for k, v in fn(arch, n).items()}


__all__ = ["AREA_PROXIES", "AREA_COLUMNS", "area_proxy", "eyeriss_v1_area"]
