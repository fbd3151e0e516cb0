"""Pieces shared by the functional simulations (eyejax/sim/rs_sim.py for Eyeriss v1 RS and
eyejax/sim/rs_plus_sim.py for Eyeriss v2 RS+): static integer arithmetic on the loop nest, the
checks on static mapping and architecture values, and the tag-matching delivery of messages to PEs.

Everything here is plain Python / NumPy run once per (layer, mapping, arch) while the schedule is
built; nothing uses the analytical models' closed forms.
"""
from __future__ import annotations

import numpy as np


def cdiv(a: int, b: int) -> int:
    """Ceiling division of integers."""
    return -(-a // b)


def tiles(d: int, t: int):
    """Tiling of a dimension of size d by t: [(start, size)], the last tile holding the rest."""
    return [(k * t, min(t, d - k * t)) for k in range(cdiv(d, t))]


def arch_int(arch, name: str) -> int:
    """`arch.<name>` as a Python int; ValueError unless it is one integer-valued scalar (the
    simulation runs one concrete architecture, not a batch)."""
    v = np.asarray(getattr(arch, name))
    if v.ndim != 0:
        raise ValueError(f"simulate_rs needs one architecture: arch.{name} has shape {v.shape}")
    if v != np.round(v):
        raise ValueError(f"arch.{name} must be an integer, got {v}")
    return int(v)


def mapping_ints(mapping, names) -> dict:
    """{name: int} for the fields `names` of `mapping`; ValueError unless each is a static integer
    scalar >= 1 (not a bool, not a tracer)."""
    vals = {}
    for k in names:
        v = getattr(mapping, k)
        try:
            a = np.asarray(v)
        except Exception:  # pragma: no cover - e.g. a tracer
            raise ValueError(f"mapping.{k} must be a static integer, got {v!r}") from None
        if a.ndim != 0 or not np.issubdtype(a.dtype, np.integer) or isinstance(v, bool):
            raise ValueError(f"mapping.{k} must be a static integer, got {v!r}")
        vals[k] = int(a)
        if vals[k] < 1:
            raise ValueError(f"mapping.{k} = {vals[k]} must be >= 1")
    return vals


def distinct_rows(e_s: int, U: int, rows_per_col: int) -> int:
    """Number of distinct padded rows {j·U + i : j < e_s, i < rows_per_col} (counted)."""
    return len({j * U + i for j in range(e_s) for i in range(rows_per_col)})


def multicast(msg_tags: np.ndarray, pe_ids: np.ndarray):
    """Tag-matching multicast: message k reaches every PE whose ID equals its tag.

    msg_tags [K, T] and pe_ids [P, T] integer tuples. Returns match [K, P] (bool)."""
    return np.all(msg_tags[:, None, :] == pe_ids[None, :, :], axis=-1)


def arrivals(match: np.ndarray, slots_major: np.ndarray, slots_minor: np.ndarray, shape):
    """Each PE stores the messages it receives, in arrival (message) order, into a [major, minor]
    grid of slots (e.g. filter × channel); returns the message index per (PE, major, minor), -1 for
    an empty slot. Checks that every PE received exactly what it was configured for."""
    got = match.T                                                          # [P, K]
    want = slots_major * slots_minor
    if np.any(got.sum(axis=1) != want):
        raise AssertionError("a PE received a different number of messages than configured")
    rank = np.cumsum(got, axis=1) - 1
    pe, k = np.nonzero(got)
    r = rank[pe, k]
    idx = np.full((got.shape[0],) + shape, -1, dtype=np.int64)
    idx[pe, r // slots_minor[pe], r % slots_minor[pe]] = k
    return idx
