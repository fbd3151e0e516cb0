"""Shared by the brute-force tests of the exact searches (tests/test_rs_exact.py,
tests/test_rs_plus_exact.py): random small CONV layers (every mapping of such a layer can be
listed), one draw order; and the objective of a search's result."""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.metrics import objective_value
from eyejax.workload import Layer


def random_small_layer(rng, i, r_hi=5, h_hi=10, w_hi=9, m_hi=7):
    """Layer l{i}: G in {1, 1, 2}, R in [1, r_hi), S in [1, 4), stride 1-2, padding below
    min(R, S), H in [.., h_hi), W in [.., w_hi), N 1-2, C/G in [1, 5), M/G in [1, m_hi)."""
    G = int(rng.choice([1, 1, 2]))
    R, S = int(rng.integers(1, r_hi)), int(rng.integers(1, 4))
    pad = int(rng.integers(0, min(R, S)))
    U = int(rng.integers(1, 3))
    H = int(rng.integers(max(R - 2 * pad, 1), h_hi))
    W = int(rng.integers(max(S - 2 * pad, 1), w_hi))
    return Layer(f"l{i}", "CONV", N=int(rng.integers(1, 3)), C=G * int(rng.integers(1, 5)),
                 M=G * int(rng.integers(1, m_hi)), H=H, W=W, R=R, S=S, stride=U, pad=pad, groups=G)


def result_objective(objective, res):
    """The objective of a search_layer result: all its `energy_*` terms with its cycles."""
    energy = sum(v for k, v in res.items() if k.startswith("energy_"))
    return objective_value(objective, energy, res["cycles"].astype(jnp.float64))
