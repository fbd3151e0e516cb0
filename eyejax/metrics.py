"""Objectives and the metrics derived from counts and totals, defined once.

Every place that ranks configurations (the mapping search inside the compiled evaluation, the
results tables, sweeps, W&B summaries, co-design problems) asks this module what an objective
means, so a new objective is one entry here. Functions work on numbers, numpy, jax and pandas alike.
"""
from __future__ import annotations

import numpy as np

# name -> (what it minimizes, the totals column holding it)
OBJECTIVES = ("energy", "latency", "edp")
OBJECTIVE_COLUMNS = {"energy": "energy", "latency": "latency_ms", "edp": "edp"}


def check_objective(objective: str, error=ValueError, field: str = "objective") -> str:
    """`objective` if it is known, else `error` naming the field and the allowed values."""
    if objective not in OBJECTIVES:
        raise error(f"{field} = {objective!r} is unknown; allowed: {', '.join(OBJECTIVES)}")
    return objective


def edp(energy, latency):
    """Energy-delay product (lower is better)."""
    return energy * latency


def objective_value(objective: str, energy, latency):
    """The quantity minimized for `objective`: energy, latency (any time unit: cycles inside the
    search, ms in the tables) or their product."""
    if objective == "energy":
        return energy
    if objective == "latency":
        return latency
    if objective == "edp":
        return edp(energy, latency)
    check_objective(objective)


def objective_of_totals(totals, objective: str):
    """Per-configuration value of `objective` from a network-totals table (lower is better)."""
    check_objective(objective)
    column = OBJECTIVE_COLUMNS[objective]
    if column in totals:
        return totals[column].astype(float)
    return objective_value(objective, totals["energy"].astype(float),
                           totals["latency_ms"].astype(float))


# ------------------------------------------------------------------------------- derived metrics
def latency_ms(cycles, clock_mhz):
    """Milliseconds of `cycles` at the core clock."""
    return cycles / (clock_mhz * 1e3)


def frames_per_second(images, latency_ms):
    """Images per second of a run taking `latency_ms` (0 where nothing ran)."""
    return np.where(latency_ms > 0, images / np.maximum(latency_ms, 1e-30) * 1e3, 0.0)


def per_mac(count, macs):
    """A count per MAC (e.g. DRAM accesses per MAC, JSSC17's figure of merit); 0 MACs count as 1."""
    return count / np.maximum(macs, 1)


def mac_utilization(macs, cycles, mac_units):
    """MACs per cycle over the MAC datapaths (0 where nothing ran)."""
    return np.where(cycles > 0, macs / np.maximum(cycles, 1) / mac_units, 0.0)


def power_mw(energy_pj, latency_ms):
    """Average power of `energy_pj` spent over `latency_ms` (pJ / ms = 1e-6 mW; 0 where nothing
    ran)."""
    return np.where(latency_ms > 0, energy_pj * 1e-6 / np.maximum(latency_ms, 1e-30), 0.0)


__all__ = ["OBJECTIVES", "OBJECTIVE_COLUMNS", "check_objective", "edp", "objective_value",
           "objective_of_totals", "latency_ms", "frames_per_second", "per_mac", "mac_utilization",
           "power_mw"]
