"""The grid search every dataflow shares: cast the inputs to the search precision, score each
candidate by the objective, and read the best feasible candidate's values off a factorized grid
(every array has the grid's rank, with size 1 on the axes it does not depend on)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from eyejax.metrics import objective_value


def cast(tree, dtype):
    """Every leaf of a pytree as a jnp array of `dtype`."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x).astype(dtype), tree)


def objective_score(objective: str, energy, cycles):
    """The quantity the search minimizes: energy, latency (cycles) or their product (edp)."""
    return objective_value(objective, energy, cycles)


def best_candidate(score, ok):
    """(grid index of the lowest score among feasible candidates, whether any is feasible); the
    first of equal scores wins."""
    score, ok = jnp.broadcast_arrays(score, ok)
    best = jnp.unravel_index(jnp.argmin(jnp.where(ok, score, jnp.inf)), ok.shape)
    return best, jnp.any(ok)


def at_best(v, best):
    """The value of a factorized grid array at the grid index `best` (scalars pass through)."""
    v = jnp.asarray(v)
    return v[tuple(b if d > 1 else 0 for b, d in zip(best, v.shape))]
