"""Range checks every architecture family shares: each numeric field inside its allowed range, and
every energy-table entry finite and non-negative. Errors name the field and the range, before any
work is done."""
from __future__ import annotations

import dataclasses

import numpy as np

from eyejax.arch.errors import ArchError

ENERGY_RANGE = (0.0, 1e12)


def check_ranges(arch, ranges: dict) -> None:
    """Raise ArchError unless every field named in `ranges` (field -> (low, high), inclusive) is an
    integer inside its range; works on scalars or batches."""
    for name, (lo, hi) in ranges.items():
        v = np.asarray(getattr(arch, name))
        if v.size == 0:
            raise ArchError(f"arch.{name} is empty")
        if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
            raise ArchError(f"arch.{name} must be numeric, got {v.dtype}")
        if np.any(v != np.round(v)):
            raise ArchError(f"arch.{name} must be an integer in [{lo}, {hi}], got {v.ravel()[:4]}")
        if np.any(v < lo) or np.any(v > hi):
            bad = v[(v < lo) | (v > hi)].ravel()[0]
            raise ArchError(f"arch.{name} = {bad} is outside the allowed range [{lo}, {hi}]")


def check_energy(table) -> None:
    """Every numeric field of an energy table (alu, rf, noc, glb, dram, hop, ...) finite and in
    ENERGY_RANGE."""
    for f in dataclasses.fields(table):
        name = f.name
        if name == "unit":
            continue
        try:
            v = np.asarray(getattr(table, name), dtype=float)
        except (TypeError, ValueError):
            raise ArchError(f"arch.energy.{name} must be a number, got "
                            f"{getattr(table, name)!r}") from None
        lo, hi = ENERGY_RANGE
        if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < lo) or np.any(v > hi):
            bad = v[~np.isfinite(v) | (v < lo) | (v > hi)].ravel()
            raise ArchError(f"arch.energy.{name} must be finite and in [{lo}, {hi}]"
                            + (f", got {bad[0]}" if bad.size else ""))


def validate_arch(arch, ranges: dict) -> None:
    """`check_ranges` on `ranges` and `check_energy` on the architecture's energy table."""
    check_ranges(arch, ranges)
    check_energy(arch.energy)
