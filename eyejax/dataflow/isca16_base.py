"""Shared machinery of the ISCA16 comparison dataflows (WS, OS_A/B/C, NLR) on ISCA16Spatial.

The counting contract is docs/isca16_dataflows.md. Every dataflow here shares the global-buffer
level (the "block" loop) and differs in what the PE array does inside a block:

    for nt in batch tiles of n images
      for s in strips of e ofmap rows               (block: its whole ifmap, all channels, in the GLB)
        ... dataflow-specific passes over all filters and channels ...

A dataflow module supplies
  radices(shape, arch, storage)   -> per-layer radices of the variables its exact search enumerates
  grid(shape, arch, space, dtype, storage=True)
                                  -> (mapping dict of [space.size] arrays, ok_array, ok_storage)
  counts(shape, arch, mp, dtype)  -> dict of COUNT_KEYS (elementwise; any extra dims broadcast)
  parallelism(shape)              -> the per-group spatial parallelism the dataflow exposes (Eyexam)
and `search` below does the rest like eyejax.dataflow.rs.search_layer: every candidate is costed
(float64, exact for these integers), the best per objective is returned as int64 counts. The
candidates cover the dataflow's whole legal mapping space up to proven reductions, so the result
is its exact optimum (docs/isca16_dataflows.md, "Mapping search (exact)").
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from eyejax.arch import isca16
from eyejax.dataflow import cost
from eyejax.dataflow.mapping import COUNT_KEYS
from eyejax.dataflow.rs import rows_glb
from eyejax.dataflow.search import (
    at_best,
    cast,
    choose,
    layer_result,
    objective_score,
    pick,
)
from eyejax.dataflow.shape import layer_shape
from eyejax.dataflow.tiling import cdiv, clipped_cover, fdiv, tile_sum
from eyejax.metrics import check_objective

FAMILIES = ("isca16",)
ARCH_FIELDS = ("pe_rows", "pe_cols", "rf_ifmap_words", "rf_filter_words", "rf_psum_words",
               "glb_words")


def arch_ints(arch, dtype):
    return {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in ARCH_FIELDS}


def snap(D, x):
    """The smallest tile size with as many tiles of D as x gives: cdiv(D, cdiv(D, x)) <= x (x >= 1)."""
    return cdiv(D, cdiv(D, jnp.maximum(x, 1)))


def tset_len(D):
    """Number of indices `tset` takes for D: 2·ceil(sqrt(D)) (some values repeat)."""
    return 2 * jnp.ceil(jnp.sqrt(D))


def tset(D, j):
    """The j-th of the tile sizes T(D) = {cdiv(D, k) : k >= 1}, 0 <= j < tset_len(D): cdiv(D, j+1)
    for j < K = ceil(sqrt(D)), else snap(D, j - K + 1). Every member of T(D) appears (proof in
    docs/isca16_dataflows.md, "Tile-count dominance")."""
    K = jnp.ceil(jnp.sqrt(D))
    v = jnp.maximum(j - K + 1, 1)
    return jnp.where(j < K, cdiv(D, j + 1), snap(D, v))


def strips_by_count(shape):
    """Whether every count depends on the strip height e only through the strip count cdiv(E, e)
    (docs/isca16_dataflows.md (F6)): the padding clips only the first and the last strip when
    P <= U, and strips do not overlap when U >= R."""
    return (shape["P"] <= shape["U"]) | (shape["U"] >= shape["R"])


def e_radix(shape):
    """How many strip heights the search enumerates: T(E) when (F6) holds, else every e <= E."""
    return jnp.where(strips_by_count(shape), tset_len(shape["E"]), shape["E"])


def e_value(shape, d):
    """The strip height of digit d of `e_radix`."""
    return jnp.where(strips_by_count(shape), tset(shape["E"], d), d + 1)


def digits(size, radices, dtype):
    """Mixed-radix digits (least significant first) of the candidate indices 0..size-1 over the
    per-layer radices (traced). Indices past the product of the radices repeat the last candidate,
    so a static `size` at least the largest product of the batch enumerates every layer's product
    exactly (a ragged grid with a static shape)."""
    i = jnp.arange(size, dtype=dtype)
    total = 1
    for r in radices:
        total = total * r
    i = jnp.minimum(i, total - 1)
    out = []
    for r in radices:
        q = fdiv(i, r)
        out.append(i - q * r)
        i = q
    return out


@dataclasses.dataclass(frozen=True)
class ExactSpace:
    """Static description of the exact search of one ISCA16 dataflow (docs/isca16_dataflows.md,
    "Mapping search"): `size` candidates per layer (0 until `prepare_space` sets it to the largest
    ragged product of the batch's layers), `phys_size` candidates of the array-only search
    (Eyexam step 4, storage ignored), and `chunk_hint`, the configurations per compiled call
    `eyejax.evaluate` uses when none is given (bounds memory: size × layers × configs)."""

    size: int = 0
    phys_size: int = 4096
    chunk_hint: int | None = None
    exact = True    # (class attribute) the search it drives returns the optimum


CHUNK_BUDGET = 1 << 22      # candidate·layer evaluations per compiled call (about 1-2 GB peak)


def prepare_space(radices, space, arch, layers=None, sparsity=None):
    """`size` = the largest product of the per-layer radices over the batch (concrete layers),
    never below the given space's (so re-preparing is stable); the chunk hint follows."""
    space = ExactSpace() if space is None else space
    if layers is None:
        return space
    shape = layer_shape(layers, jnp.float64)
    total = 1
    for r in radices(shape, None, True):
        total = total * np.asarray(r)
    size = max(int(space.size), int(np.max(total)))
    L = int(np.size(np.asarray(layers.N)))
    hint = max(1, CHUNK_BUDGET // (size * max(L, 1)))
    return dataclasses.replace(space, size=size, chunk_hint=hint)


def block_room(shape, glb_words, e_digit, n_digit, like, storage=True):
    """(e, n, ifmap block words, GLB words left beside it) of a candidate's block: e and n from
    their digits under the storage rules; without them (Eyexam's physical bound) one block of all
    E rows and one image in an unbounded GLB. `like` gives the broadcast shape."""
    if not storage:
        one = jnp.ones_like(like)
        return shape["E"] * one, one, 0.0, jnp.inf
    e, n = e_value(shape, e_digit), tset(shape["N"], n_digit)
    ifmap = block_terms(shape, n, e)["ifmap_block_words"]
    return e, n, ifmap, glb_words - ifmap


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
    en = cost.energy(c, arch, sp, first)
    dcyc = cost.dram_cycles(c, arch, sp, first)
    cycles = c["compute_cycles"] + c["ramp_cycles"] + dcyc
    return en, dcyc, cycles


def search(layer, arch, sp, first, objective, space, grid, counts, mapping_keys):
    """Best mapping of one layer (scalars in, flat dict of scalars out), like rs.search_layer.

    `grid` lists the candidates of the dataflow's exact search (a ragged grid of `space.size`
    candidates, docs/isca16_dataflows.md "Mapping search"); every candidate is counted in float64,
    which is exact for integers below 2**53, and the chosen candidate's counts are taken from the
    grid and cast to int64: one counting graph, no recount.
    """
    check_objective(objective)
    if not getattr(space, "size", 0):
        raise ValueError("the search space is not prepared for a workload: use "
                         "eyejax.dataflow.prepare_search_space(module, space, arch, layers)")
    f64 = jnp.float64
    archd, spd = cast(arch, f64), cast(sp, f64)
    shape = layer_shape(layer, f64)
    mp_k, ok_a, ok_s = grid(shape, archd, space, f64)
    c_k = counts(shape, archd, mp_k, f64)
    en_k, dcyc_k, cyc_k = cost_of(c_k, archd, spd, first)
    mp, any_ok, best = choose(objective_score(objective, sum(en_k.values()), cyc_k), ok_a & ok_s,
                              {k: mp_k[k] for k in mapping_keys})
    c = {k: pick(v, best) for k, v in c_k.items()}
    en = {k: at_best(v, best) for k, v in en_k.items()}
    return layer_result(c, en, mp, any_ok, pick(dcyc_k, best), pick(cyc_k, best))


def physical_min_compute(layer, arch, space, grid, counts, dtype=jnp.float64):
    """Eyexam step 4: the fewest compute cycles of any legal mapping that fits the array, storage
    ignored (a float): the grid's array-only search (`storage=False`, `space.phys_size`
    candidates; compute cycles do not depend on the block's n and e)."""
    shape = layer_shape(layer, dtype)
    archd = cast(arch, dtype)
    mp, ok_a, _ = grid(shape, archd, space, dtype, storage=False)
    comp, ok_a = jnp.broadcast_arrays(counts(shape, archd, mp, dtype)["compute_cycles"], ok_a)
    return jnp.min(jnp.where(ok_a, comp, jnp.inf))


class Dataflow:
    """A dataflow as the registry expects it (eyejax.dataflow): attributes instead of a module."""

    FAMILIES = FAMILIES

    def __init__(self, name, grid, counts, parallelism, mapping_keys, radices, doc=""):
        self.name = name
        self.grid = grid
        self.radices = radices
        self.counts = counts
        self.parallelism = parallelism
        self.MAPPING_KEYS = tuple(mapping_keys)
        self.DEFAULT_SEARCH = ExactSpace()
        self.SEARCH_EXACT = True    # the one search is exact (docs/isca16_dataflows.md)
        self.__doc__ = doc

    def prepare_space(self, space, arch, layers=None, sparsity=None):
        return prepare_space(self.radices, space, arch, layers, sparsity)

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
        isca16.FAMILY.validate(arch)

    def __repr__(self):
        return f"<dataflow {self.name}>"
