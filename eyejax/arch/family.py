"""The architecture-family registry: one `Family` record per family, registered once.

A family is a pytree class (its numeric leaves sweepable) plus what the rest of eyejax needs to
know about it: allowed ranges, its native dataflow, how many PEs and MAC units a configuration
has, its area proxy, and a random sampler for the benchmark. Everything else (evaluation, results,
Eyexam, sweeps, the CLI, the benchmark) asks this registry instead of testing for fields.

Adding a family: one module defining the pytree class and a `FAMILY = Family(...)`, and one line
in `eyejax/arch/__init__.py` (or `register(FAMILY)` from user code).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from eyejax.arch.energy import MOVEMENT_ONLY, ChipEnergy, EnergyTable
from eyejax.arch.errors import ArchError
from eyejax.arch.validation import validate_arch


def per_config(x, n: int) -> np.ndarray:
    """A scalar or [n] leaf as an [n] array (one value per configuration)."""
    x = np.asarray(x)
    return np.broadcast_to(x, (n,)) if x.ndim == 0 else x


def uniform_draws(batch: int, seed: int):
    """(rng, u, f) for a family's random sampler: u(lo, hi) draws `batch` integers in [lo, hi],
    f(lo, hi) `batch` floats in [lo, hi)."""
    rng = np.random.default_rng(seed)
    return (rng, lambda lo, hi: rng.integers(lo, hi + 1, batch),
            lambda lo, hi: rng.uniform(lo, hi, batch))


def random_energy_table(f, hop: bool = False):
    """A random normalized energy table around ISCA16's (alu 1, RF 1, NoC 2, GLB 6, DRAM 200 per
    16-bit access), drawn with `f` from `uniform_draws`; `hop` also draws the mesh-hop energy."""
    table = dict(alu=f(0.8, 1.2), rf=f(0.8, 1.5), noc=f(1.5, 3.0), glb=f(4.0, 10.0),
                 dram=f(150.0, 250.0))
    if hop:
        table["hop"] = f(1.0, 3.0)
    return EnergyTable(**table)


@dataclasses.dataclass(frozen=True)
class Family:
    """What eyejax knows about one architecture family.

    name: the pytree's `family` property and the CLI's `arch.family`.
    arch_class: the pytree class; its defaults are the fabricated chip where there is one.
    ranges: field -> (low, high) inclusive, checked before any work.
    title: the family in words (run headers, reports).
    native_dataflow: the dataflow `evaluate` runs by default; None when each architecture names
        its own (`arch.native_dataflow`, e.g. the ISCA16 equal-area designs).
    pe_count: arch, n -> [n] PEs of each configuration.
    macs_per_pe: arch, n -> [n] MAC datapaths per PE (1 when None).
    area: arch, n -> {"pe_count": [n], "sram_kb": [n]} area proxy, or None (no area columns).
    sample: (batch, seed) -> a batch of random architectures for the benchmark, or None.
    check: extra cross-field validation (arch -> None, raising ArchError), or None.
    configurable: selectable as `arch.family` in the Hydra config.
    chip_energy: energy-table unit -> ChipEnergy, the clock, control and leakage parameters of
        eyejax.dataflow.cost.overhead_energy; a unit not listed is movement-only.
    """

    name: str
    arch_class: type
    ranges: dict
    title: str
    pe_count: Callable
    native_dataflow: str | None = None
    macs_per_pe: Callable | None = None
    area: Callable | None = None
    sample: Callable | None = None
    check: Callable | None = None
    configurable: bool = True
    chip_energy: dict = dataclasses.field(default_factory=dict)

    def validate(self, arch) -> None:
        """Raise ArchError naming the field and its allowed range; scalars or batches."""
        validate_arch(arch, self.ranges)
        if self.check is not None:
            self.check(arch)

    def fields(self) -> tuple:
        """The sweepable structural fields (the energy table apart)."""
        return tuple(f.name for f in dataclasses.fields(self.arch_class)
                     if f.name != "energy" and f.metadata.get("pytree_node", True))

    def num_pes(self, arch, n: int) -> np.ndarray:
        return per_config(self.pe_count(arch, n), n)

    def mac_units(self, arch, n: int) -> np.ndarray:
        """MAC datapaths of each configuration (PEs × MACs per PE)."""
        per_pe = 1 if self.macs_per_pe is None else self.macs_per_pe(arch, n)
        return self.num_pes(arch, n).astype(np.float64) * per_config(per_pe, n)

    def chip_params(self, arch) -> ChipEnergy:
        """The chip-energy parameters for the unit of the architecture's energy table (static:
        resolved at trace time); MOVEMENT_ONLY when the family gives none (e.g. normalized)."""
        return self.chip_energy.get(getattr(arch.energy, "unit", "normalized"), MOVEMENT_ONLY)

    def dataflow_of(self, arch) -> str:
        return self.native_dataflow or arch.native_dataflow


_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family (replacing one of the same name); returns it."""
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (e.g. one a test registered)."""
    _REGISTRY.pop(name, None)


def families() -> dict[str, Family]:
    """Every registered family by name, in registration order."""
    return dict(_REGISTRY)


def get_family(name: str) -> Family:
    if name not in _REGISTRY:
        raise ArchError(f"architecture family {name!r} is unknown; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def family_of(arch) -> Family:
    """The registered family of an architecture pytree."""
    name = getattr(arch, "family", None)
    if name is None:
        raise ArchError(f"{type(arch).__name__} is not an architecture (it has no `family`); "
                        f"known families: {', '.join(_REGISTRY)}")
    return get_family(name)
