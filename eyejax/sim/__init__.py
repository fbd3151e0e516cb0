"""Functional simulations of the Eyeriss dataflows (independent of the analytical models)."""
from eyejax.sim.rs_sim import (SIM_KEYS, check_mapping, default_mapping, is_feasible,
                               make_simulator, simulate_rs, simulate_rs_batch,
                               simulate_rs_counts)
from eyejax.sim.rs_plus_sim import (SIM_KEYS_V2, RSPlusMapping, check_mapping_v2,
                                    default_mapping_v2, is_feasible_v2, make_simulator_v2,
                                    simulate_rs_plus, simulate_rs_plus_batch,
                                    simulate_rs_plus_counts)

__all__ = ["SIM_KEYS", "check_mapping", "default_mapping", "is_feasible", "make_simulator",
           "simulate_rs", "simulate_rs_batch", "simulate_rs_counts"]
__all__ += ["SIM_KEYS_V2", "RSPlusMapping", "check_mapping_v2", "default_mapping_v2",
            "is_feasible_v2", "make_simulator_v2", "simulate_rs_plus", "simulate_rs_plus_batch",
            "simulate_rs_plus_counts"]
