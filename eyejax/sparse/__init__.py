"""Sparsity features: Eyeriss v1 run-length compression of fmaps (DRAM) and zero gating of MACs;
Eyeriss v2 CSC coding of weights and iacts."""
from eyejax.sparse.csc import (
    CSC,
    column_words_pmf,
    csc_coords,
    csc_decode,
    csc_default_addr_bits,
    csc_encode,
    csc_storage_bits,
    csc_words,
    expected_csc_storage_bits,
    expected_csc_words,
)
from eyejax.sparse.gating import conv_output_size, nonzero_mac_count, nonzero_mac_fraction
from eyejax.sparse.rlc import (
    MAX_RUN,
    PAIRS_PER_WORD,
    WORDS16_PER_WORD,
    expected_pairs_per_value,
    expected_rlc_ratio,
    rlc_decode,
    rlc_encode,
    rlc_num_pairs,
    rlc_ratio,
    rlc_words,
)

__all__ = [
    "MAX_RUN",
    "PAIRS_PER_WORD",
    "WORDS16_PER_WORD",
    "rlc_encode",
    "rlc_decode",
    "rlc_num_pairs",
    "rlc_words",
    "rlc_ratio",
    "expected_pairs_per_value",
    "expected_rlc_ratio",
    "conv_output_size",
    "nonzero_mac_count",
    "nonzero_mac_fraction",
    "CSC",
    "csc_encode",
    "csc_decode",
    "csc_coords",
    "csc_words",
    "csc_storage_bits",
    "csc_default_addr_bits",
    "expected_csc_words",
    "expected_csc_storage_bits",
    "column_words_pmf",
]
