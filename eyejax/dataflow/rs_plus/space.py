"""RS+ search space: the static candidate grid, its slot and cluster bounds, and the float32
exactness bound of the NoC closed form (filled in from the concrete batch before jit)."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from eyejax.dataflow.search import parts_by_rules
from eyejax.dataflow.shape import layer_shape

FAMILIES = ("eyeriss_v2",)
MAPPING_KEYS = ("h", "e", "r", "t", "g", "b", "p", "q", "n", "m", "o", "oc")


def mapping_values(mp, dtype):
    """The mapping's fields in MAPPING_KEYS order, as arrays of `dtype`."""
    return [jnp.asarray(getattr(mp, k)).astype(dtype) for k in MAPPING_KEYS]


@dataclasses.dataclass(frozen=True)
class RSPlusSearchSpace:
    """Static candidate grid (its size fixes the compiled shapes) and the static slot bound.

    Axes: e (`e_splits` of min(E, floor(cluster_pes/h)), balanced strips), r (`r_options`, capped by
    the channel sets), g (groups side by side: the sets left by r divided by each `g_splits`, capped
    by G; a huge split means one group at a time), q (`q_splits` of the iact-spad maximum, capped by
    Cg), p (`p_splits` of the weight/psum-spad maximum; 0 = balanced: the filters split evenly over
    the sets left after r·g in the fewest chunks the spads allow, rounded up to whole SIMD pairs,
    so that e.g. AlexNet CONV1's 96 filters fill 16 sets with p = 6 instead of leaving sets or
    filter-chunk remainders idle), n (images per set: ceil(N/k) for k in
    `n_splits`; n = 1 spreads the batch over sets, n = N keeps it in one set). Derived: t = the sets
    left after r·g (capped by the filter sets), b = the sets left after r·g·t (capped by the image
    sets), m = the largest multiple of p·t whose psums fit in the psum GLB, o = the strip sets the
    sets left after r·g·t·b take (`scores.strip_sets`: equal strips within the idle sets and the
    GLBs' spare room, `strip_tries` divisors tried; 1 with strip_sets=False), oc = the column
    strip sets the sets still idle take (`scores.column_strip_sets`: equal strips of the ofmap
    columns within the iact GLB; 1 with strip_sets=False).

    max_slots / max_clusters: the batch's largest set-slot and cluster counts; max_clusters is the
    static size of the exact router/hop closed form (0 = fill in from the architecture with
    `prepare_space`). noc_float32: run that closed form in float32. None lets `prepare_space`
    decide: True only when `noc_value_bound` proves float32 exact for the batch and workload;
    False always uses float64 (the same counts, slower). exact_noc=False replaces the exact
    counts in the recount by the search's approximation (`approx_noc`): router_*, hops_* and the
    NoC bound become estimates, every other count stays exact.
    """

    e_splits: tuple = (1, 2, 3)
    r_options: tuple = (1, 2, 4, 8, 16, 32)
    g_splits: tuple = (1, 1 << 30)
    q_splits: tuple = (1, 2, 4)
    p_splits: tuple = (1, 0)
    n_splits: tuple = (1, 1 << 30)
    strip_sets: bool = True
    strip_tries: int = 4
    max_slots: int = 0
    max_clusters: int = 0
    exact_noc: bool = True
    noc_float32: bool | None = None

    @property
    def axes(self) -> tuple:
        return (self.e_splits, self.r_options, self.g_splits, self.q_splits, self.p_splits,
                self.n_splits)

    @property
    def size(self) -> int:
        return int(np.prod([len(a) for a in self.axes]))


DEFAULT_SEARCH = RSPlusSearchSpace()


def slot_bounds(arch) -> tuple:
    """(max set slots, max clusters) over a (possibly batched) concrete architecture."""
    cl = np.asarray(arch.cluster_rows, np.int64) * np.asarray(arch.cluster_cols, np.int64)
    cp = np.asarray(arch.cluster_pe_rows, np.int64) * np.asarray(arch.cluster_pe_cols, np.int64)
    return int(np.max(cl * cp)), int(np.max(cl))


F32_EXACT = 1 << 24   # integers below this are exact in float32


def noc_value_bound(arch, layers, sparsity=None) -> int:
    """Upper bound on the integers `noc_routes` handles per pass class and cluster: (slot index
    bound) × (words one set receives) × (largest mesh distance + 1), over the batch and layers.
    A searched mapping has q <= min(Cg, iact_spad / (S·d)) (d the smallest iact density, at least
    1e-3 as in the search), p <= min(Mg, psum_spad), n <= N; a set receives at most q·p weights,
    q·n iacts and p·n psums per pass (per tap, row and column: those factor out)."""
    clusters = np.asarray(arch.cluster_rows, np.int64) * np.asarray(arch.cluster_cols, np.int64)
    cpes = np.asarray(arch.cluster_pe_rows, np.int64) * np.asarray(arch.cluster_pe_cols, np.int64)
    dist = np.asarray(arch.cluster_rows, np.int64) + np.asarray(arch.cluster_cols, np.int64) - 2
    slot_index = (int(np.max(clusters)) + 1) * int(np.max(cpes))
    d = 1.0
    if sparsity is not None:
        dens = np.concatenate([np.ravel(sparsity.iact_density), np.ravel(sparsity.weight_density)])
        if np.any(dens < 1):
            d = max(float(np.min(np.ravel(sparsity.iact_density))), 1e-3)
    iact_spad = int(np.max(arch.iact_spad_words))
    psum_spad = int(np.max(arch.psum_spad_words))
    N = np.asarray(layers.N, np.int64)
    Cg = np.asarray(layers.C, np.int64) // np.asarray(layers.G, np.int64)
    Mg = np.asarray(layers.M, np.int64) // np.asarray(layers.G, np.int64)
    S = np.asarray(layers.S, np.int64)
    q_hi = np.minimum(Cg, np.floor(iact_spad / (S * d)).astype(np.int64))
    p_hi = np.minimum(Mg, psum_spad)
    words = np.max(np.maximum(np.maximum(q_hi * p_hi, q_hi * N), p_hi * N))
    return slot_index * int(words) * (int(np.max(dist)) + 1)


def prepare_space(space, arch, layers=None, sparsity=None):
    """The search space with its static fields filled in from the concrete batch (before jit):
    the slot and cluster bounds; with the workload (`layers`: LayerArrays, `sparsity`), float32
    for the exact NoC counts when `noc_value_bound` proves it exact, and, with one group per
    layer, one group split (every split gives g = 1: the others are exact duplicates; image splits
    are dropped the same way for N = 1 by `eyejax.dataflow.prepare_search_space`)."""
    space = DEFAULT_SEARCH if space is None else space
    if not isinstance(space, RSPlusSearchSpace):     # another search mode: its own bounds
        return space.prepare(arch, layers, sparsity)
    slots, clusters = slot_bounds(arch)
    space = dataclasses.replace(space, max_slots=max(space.max_slots, slots),
                                max_clusters=max(space.max_clusters, clusters))
    if layers is None:
        return space
    changes = {}
    if space.noc_float32 is not False:  # False stays: a fixed choice (e.g. a co-design run's)
        changes["noc_float32"] = bool(noc_value_bound(arch, layers, sparsity) < F32_EXACT)
    if int(np.max(layers.G)) == 1:
        changes["g_splits"] = tuple(space.g_splits[:1])
    return dataclasses.replace(space, **changes)


def partition_space(space, layers) -> list:
    """[(layer indices, space)]: splits that can only give one candidate on a layer are dropped
    there: every group split gives g = 1 on a layer with one group, every strip width e = 1 (one
    strip set) on a layer with one ofmap row (FC), and every channel split and channel-set option
    q = r = 1 on a layer with one channel per group (depthwise); `prepare_space` drops the group
    splits for a whole network without groups. The search keeps the first of equal scores and a
    candidate's duplicates come after it, so no result changes; AlexNet's ungrouped CONV layers
    then cost half the grid and its FC layers a sixth."""
    if not isinstance(space, RSPlusSearchSpace):
        return [(np.arange(layers.num_layers), space)]
    s = layer_shape(layers, jnp.int64)
    return parts_by_rules(space, [
        (s["G"] == 1, dict(g_splits=tuple(space.g_splits[:1]))),
        (s["E"] == 1, dict(e_splits=tuple(space.e_splits[:1]))),
        (s["Cg"] == 1, dict(r_options=tuple(space.r_options[:1]),
                            q_splits=tuple(space.q_splits[:1])))])
