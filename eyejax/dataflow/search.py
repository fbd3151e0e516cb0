"""The grid search every dataflow shares: cast the inputs to the search precision, score each
candidate by the objective, and read the best feasible candidate's values off a factorized grid
(every array has the grid's rank, with size 1 on the axes it does not depend on), then package the
exact recount of the chosen mapping as the flat result every dataflow returns."""
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


def pick(v, best, dtype=jnp.int64):
    """The integer value of a factorized grid array at the grid index `best`, as `dtype` (rounded:
    the grid may hold integers as floats)."""
    return jnp.round(at_best(v, best)).astype(dtype)


def choose(score, ok, mapping: dict, dtype=jnp.int64):
    """The search's choice: (the mapping at the lowest score among feasible candidates as `dtype`
    scalars, whether any candidate is feasible, its grid index). `mapping` holds each mapping
    parameter's factorized grid array by name; the first of equal scores wins."""
    best, any_ok = best_candidate(score, ok)
    return {k: pick(v, best, dtype) for k, v in mapping.items()}, any_ok, best


def layer_result(counts: dict, energies: dict, mapping: dict, any_ok, dram_cycles=None,
                 cycles=None) -> dict:
    """The flat dict of scalars every dataflow's search_layer returns: the counts, `energy_<k>`,
    `dram_cycles` and `cycles` (int64; None: already among the counts), `map_<k>` and `feasible`;
    everything zero where no candidate is feasible."""
    zero = lambda x: jnp.where(any_ok, x, jnp.zeros_like(x))
    out = {k: zero(v) for k, v in counts.items()}
    out.update({f"energy_{k}": zero(v) for k, v in energies.items()})
    if dram_cycles is not None:
        out["dram_cycles"] = zero(jnp.asarray(dram_cycles).astype(jnp.int64))
    if cycles is not None:
        out["cycles"] = zero(jnp.asarray(cycles).astype(jnp.int64))
    out.update({f"map_{k}": zero(v) for k, v in mapping.items()})
    out["feasible"] = any_ok
    return out
