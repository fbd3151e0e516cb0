"""The grid search every dataflow shares: cast the inputs to the search precision, score each
candidate by the objective, and read the best feasible candidate's values off a factorized grid
(every array has the grid's rank, with size 1 on the axes it does not depend on), then package the
exact recount of the chosen mapping as the flat result every dataflow returns."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.metrics import objective_value


def cast(tree, dtype):
    """Every leaf of a pytree as a jnp array of `dtype`."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x).astype(dtype), tree)


def objective_score(objective: str, energy, cycles):
    """The quantity the search minimizes: energy, latency (cycles) or their product (edp)."""
    return objective_value(objective, energy, cycles)


def best_candidate(score, ok):
    """(grid index of the lowest score among feasible candidates, whether any is feasible); the
    first of equal scores wins.

    float32 scores (the RS and RS+ grids) take the minimum with `lax.top_k` of the negated scores:
    XLA fuses a reduction with everything that computes its input and runs it one element at a
    time, so an argmin recomputed the whole factorized score per candidate in scalar code, while
    top_k reads a materialized, vectorized score array (1.5x the v1 search's throughput on a
    2-core CPU, README "Benchmark"). Same choice: top_k puts the lower index first among equals,
    and feasible scores are clamped to the largest finite float so that one that overflowed still
    counts as feasible. float64 scores (the ISCA16 dataflows' exact grids) keep argmin: XLA's CPU
    top_k sorts float64, which is several times slower there.
    """
    score, ok = jnp.broadcast_arrays(jnp.asarray(score), ok)   # float scores (the search dtype)
    masked = jnp.where(ok, jnp.minimum(score, jnp.finfo(score.dtype).max), jnp.inf)
    if score.dtype == jnp.float32:
        neg, idx = jax.lax.top_k(-masked.reshape(-1), 1)
        return jnp.unravel_index(idx[0], ok.shape), neg[0] > -jnp.inf
    return jnp.unravel_index(jnp.argmin(masked), ok.shape), jnp.any(ok)


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


def parts_by_rules(space, rules) -> list:
    """[(layer indices, space)] for a grid dataflow's `partition_space`: `rules` are (mask [L],
    field changes) pairs, and a layer's space is `space` with the changes of every rule whose mask
    holds for it (dataclasses.replace). Layers with the same rules form one part, in the order of
    each part's first layer; one part when every layer has the same rules."""
    keys = [tuple(k) for k in zip(*(np.asarray(mask, bool).tolist() for mask, _ in rules))]
    order = list(dict.fromkeys(keys))

    def space_for(key):
        changes = {}
        for on, (_, change) in zip(key, rules):
            if on:
                changes.update(change)
        return dataclasses.replace(space, **changes) if changes else space
    return [(np.flatnonzero([k == key for k in keys]), space_for(key)) for key in order]
