"""Area proxies for energy-vs-area Pareto fronts: the family's own (eyejax.arch registry).

No area model is calibrated here; the proxies are the two quantities that dominate an accelerator's
area: the PE count and the total on-chip SRAM (global buffer plus every PE's scratchpads), in kB.
A family gives them as `Family.area` (arch, n -> {"pe_count": [n], "sram_kb": [n]}); families
without one simply get no area columns.
"""
from __future__ import annotations

import numpy as np

from eyejax.arch import family_of

AREA_COLUMNS = ("pe_count", "sram_kb")


def area_proxy(arch, n: int) -> dict[str, np.ndarray]:
    fn = family_of(arch).area
    return {} if fn is None else {k: np.asarray(v) for k, v in fn(arch, n).items()}


__all__ = ["AREA_COLUMNS", "area_proxy"]
