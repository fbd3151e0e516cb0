"""Shared machinery of the ISCA16 comparison dataflows (WS, OS_A/B/C, NLR) on ISCA16Spatial.

The counting contract is docs/isca16_dataflows.md. Every dataflow here shares the global-buffer
level (the "block" loop) and differs in what the PE array does inside a block:

    for nt in batch tiles of n images
      for s in strips of e ofmap rows               (block: its whole ifmap, all channels, in the GLB)
        ... dataflow-specific passes over all filters and channels ...

A dataflow module supplies
  grid(shape, arch, space, dtype) -> (mapping dict of broadcastable arrays, ok_array, ok_storage)
  counts(shape, arch, mp, dtype)  -> dict of COUNT_KEYS (elementwise; any extra dims broadcast)
  parallelism(shape)              -> the per-group spatial parallelism the dataflow exposes (Eyexam)
and `search` below does the rest like eyejax.dataflow.rs.search_layer: every candidate is costed
(float64, exact for these integers), the best per objective is returned as int64 counts.
"""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.dataflow.mapping import COUNT_KEYS
from eyejax.dataflow.rs import layer_shape, rows_glb
from eyejax.dataflow.search import at_best, best_candidate, cast, objective_score
from eyejax.dataflow.tiling import cdiv, clipped_cover, fdiv, tile_sum

OBJECTIVES = ("energy", "latency", "edp")
FAMILIES = ("isca16",)
ARCH_FIELDS = ("pe_rows", "pe_cols", "rf_ifmap_words", "rf_filter_words", "rf_psum_words",
               "glb_words")


def arch_ints(arch, dtype):
    return {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in ARCH_FIELDS}


def axis(values, i: int, nax: int, dtype):
    """The i-th of nax grid axes as an array of shape (1, …, len(values), …, 1)."""
    shp = [1] * nax
    shp[i] = len(values)
    return jnp.asarray(values, dtype).reshape(shp)


def balanced(D, base):
    """Tile size <= base whose ceil(D/T) tiles are as equal as possible (and >= 1)."""
    base = jnp.maximum(base, 1)
    return cdiv(D, cdiv(D, base))


def split(cap, k):
    """cap // k, at least 1."""
    return jnp.maximum(fdiv(cap, k), 1)


def block_terms(shape, n, e):
    """GLB-level (block) counts shared by every ISCA16 dataflow here (per group).

    The GLB holds the padded ifmap rows of a block (n images × all channels × the rows of an e-row
    strip), loaded once from DRAM; nothing is re-fetched within a block.
    """
    s = shape
    N, Cg, E, U, R, P, H, W, W_used = (s[k] for k in ("N", "Cg", "E", "U", "R", "P", "H", "W",
                                                      "W_used"))
    real_cols = jnp.minimum(W_used, P + W) - P
    return {
        "nb": cdiv(N, n),
        "ns": cdiv(E, e),
        "dram_ifmap_reads": N * Cg * clipped_cover(E, e, U, R, P, H) * real_cols,
        "glb_ifmap_writes": N * Cg * tile_sum(E, e, lambda es: rows_glb(es, U, R)) * W_used,
        "ifmap_block_words": n * Cg * rows_glb(jnp.minimum(e, E), U, R) * W_used,
    }


def outputs_terms(outputs, one):
    """Finished ofmaps: written to the GLB once, read once and written to DRAM (OS dataflows)."""
    return {"noc_psum": outputs * one, "glb_psum_writes": outputs * one,
            "glb_psum_reads": outputs * one, "dram_psum_writes": outputs * one,
            "dram_psum_reads": 0 * one}


def finish(c, G, active_pes):
    """Scale per-group counts by G (groups run one after another) and order them."""
    c = {k: v * G for k, v in c.items()}
    c["active_pes"] = active_pes
    return {k: c[k] for k in COUNT_KEYS}


def cost_of(c, arch, sp, first):
    from eyejax import cost

    en = cost.energy(c, arch, sp, first)
    dcyc = cost.dram_cycles(c, arch, sp, first)
    cycles = c["compute_cycles"] + c["ramp_cycles"] + dcyc
    return en, dcyc, cycles


def search(layer, arch, sp, first, objective, space, grid, counts, mapping_keys):
    """Best mapping of one layer (scalars in, flat dict of scalars out), like rs.search_layer.

    The grids here are small (a few hundred candidates), so every candidate is counted in float64,
    which is exact for integers below 2**53, and the chosen candidate's counts are taken from the
    grid and cast to int64: one counting graph, no recount.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    f64, i64 = jnp.float64, jnp.int64
    archd, spd = cast(arch, f64), cast(sp, f64)
    shape = layer_shape(layer, f64)
    mp_k, ok_a, ok_s = grid(shape, archd, space, f64)
    c_k = counts(shape, archd, mp_k, f64)
    en_k, dcyc_k, cyc_k = cost_of(c_k, archd, spd, first)
    best, any_ok = best_candidate(objective_score(objective, sum(en_k.values()), cyc_k),
                                  ok_a & ok_s)
    pick = lambda v: jnp.round(at_best(v, best)).astype(i64)

    mp = {k: pick(mp_k[k]) for k in mapping_keys}
    c = {k: pick(v) for k, v in c_k.items()}
    en = {k: at_best(v, best) for k, v in en_k.items()}
    dcyc, cycles = pick(dcyc_k), pick(cyc_k)
    zero_i = lambda x: jnp.where(any_ok, x, jnp.zeros_like(x))
    out = {k: zero_i(v) for k, v in c.items()}
    out.update({f"energy_{k}": zero_i(v) for k, v in en.items()})
    out["dram_cycles"] = zero_i(jnp.asarray(dcyc).astype(i64))
    out["cycles"] = zero_i(jnp.asarray(cycles).astype(i64))
    out.update({f"map_{k}": zero_i(mp[k]) for k in mapping_keys})
    out["feasible"] = any_ok
    return out


def physical_min_compute(layer, arch, space, grid, counts, dtype=jnp.float64):
    """Eyexam step 4: the fewest compute cycles of any candidate that fits the array, storage
    ignored (a float; the candidate set is the dataflow's own search grid)."""
    shape = layer_shape(layer, dtype)
    archd = cast(arch, dtype)
    mp, ok_a, _ = grid(shape, archd, space, dtype)
    comp, ok_a = jnp.broadcast_arrays(counts(shape, archd, mp, dtype)["compute_cycles"], ok_a)
    return jnp.min(jnp.where(ok_a, comp, jnp.inf))


class Dataflow:
    """A dataflow as the registry expects it (eyejax.dataflow): attributes instead of a module."""

    FAMILIES = FAMILIES

    def __init__(self, name, grid, counts, parallelism, mapping_keys, default_search, doc=""):
        self.name = name
        self.grid = grid
        self.counts = counts
        self.parallelism = parallelism
        self.MAPPING_KEYS = tuple(mapping_keys)
        self.DEFAULT_SEARCH = default_search
        self.__doc__ = doc

    def search_layer(self, layer, arch, sp, first, objective="energy", space=None):
        space = self.DEFAULT_SEARCH if space is None else space
        return search(layer, arch, sp, first, objective, space, self.grid, self.counts,
                      self.MAPPING_KEYS)

    def physical_min_compute(self, layer, arch, space=None, dtype=jnp.float64):
        space = self.DEFAULT_SEARCH if space is None else space
        return physical_min_compute(layer, arch, space, self.grid, self.counts, dtype)

    def layer_counts(self, layer, arch, mapping: dict) -> dict:
        """Exact int64 counts of one layer under a mapping (dict of MAPPING_KEYS)."""
        shape = layer_shape(layer, jnp.int64)
        mp = {k: jnp.asarray(mapping[k], jnp.int64) for k in self.MAPPING_KEYS}
        return self.counts(shape, arch, mp, jnp.int64)

    @staticmethod
    def validate_arch(arch) -> None:
        from eyejax.arch.isca16 import validate_arch

        validate_arch(arch)

    def __repr__(self):
        return f"<dataflow {self.name}>"
