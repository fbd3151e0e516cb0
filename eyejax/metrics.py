"""Objectives and the metrics derived from a run's totals, defined once.

Every place that ranks configurations (the mapping search inside the compiled evaluation, the
results tables, sweeps, W&B summaries, co-design problems) asks this module what an objective
means, so a new objective is one entry here. Functions work on numbers, numpy, jax and pandas alike.
"""
from __future__ import annotations

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


__all__ = ["OBJECTIVES", "OBJECTIVE_COLUMNS", "check_objective", "edp", "objective_value",
           "objective_of_totals"]
