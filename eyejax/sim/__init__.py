"""Functional simulations of the Eyeriss dataflows (independent of the analytical models)."""
from eyejax.sim.rs_sim import (SIM_KEYS, check_mapping, default_mapping, is_feasible,
                               make_simulator, simulate_rs, simulate_rs_batch,
                               simulate_rs_counts)

__all__ = ["SIM_KEYS", "check_mapping", "default_mapping", "is_feasible", "make_simulator",
           "simulate_rs", "simulate_rs_batch", "simulate_rs_counts"]
