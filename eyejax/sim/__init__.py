"""Functional simulations of the Eyeriss dataflows (independent of the analytical models)."""
from eyejax.sim.rs_sim import (SIM_KEYS, check_mapping, default_mapping, is_feasible,
                               make_simulator, simulate_rs, simulate_rs_batch,
                               simulate_rs_counts)
from eyejax.sim.rs_plus_sim import (SIM_KEYS_V2, RSPlusMapping, check_mapping_v2,
                                    default_mapping_v2, is_feasible_v2, make_simulator_v2,
                                    simulate_rs_plus, simulate_rs_plus_batch,
                                    simulate_rs_plus_counts)
from eyejax.sim.sparse_pe import (SPARSE_PE_KEYS, PECapacity, SparseConvResult,
                                  conv_row_weight_matrix, default_assignment,
                                  expected_pass_max, expected_pe_cycles,
                                  expected_sparse_conv_cycles, simulate_sparse_conv,
                                  sparse_pe_conv_row, sparse_pe_matvec)

__all__ = ["SIM_KEYS", "check_mapping", "default_mapping", "is_feasible", "make_simulator",
           "simulate_rs", "simulate_rs_batch", "simulate_rs_counts",
           "SPARSE_PE_KEYS", "PECapacity", "SparseConvResult", "conv_row_weight_matrix",
           "default_assignment", "expected_pass_max", "expected_pe_cycles",
           "expected_sparse_conv_cycles", "simulate_sparse_conv", "sparse_pe_conv_row",
           "sparse_pe_matvec"]
__all__ += ["SIM_KEYS_V2", "RSPlusMapping", "check_mapping_v2", "default_mapping_v2",
            "is_feasible_v2", "make_simulator_v2", "simulate_rs_plus", "simulate_rs_plus_batch",
            "simulate_rs_plus_counts"]
