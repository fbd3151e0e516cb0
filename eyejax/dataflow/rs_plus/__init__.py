"""Row-stationary plus (RS+) on Eyeriss v2 with the hierarchical-mesh NoC: closed-form cost.

The schedule, the slot placement and every count are defined in docs/rs_plus_model.md (which
extends docs/rs_model.md); `eyejax/sim/rs_plus_sim.py` executes the same contract on real tensors.
The interface is the one of `eyejax.dataflow.rs`: `search_layer` picks the best mapping of a static
candidate grid in float32, each cost term computed only on the grid axes it depends on, and
recounts the chosen mapping exactly in int64 (the shared driver of eyejax.dataflow.search).

Modules: `space` (search space, slot and float32 bounds, `prepare_space`), `encoding` (the v2
architecture fields, CSC formats: bits per value and zero skipping), `dense` (dense counts and
capacity rules), `noc` (exact and approximate router transfers and hops, NoC modes, NoC-bound
cycles), `timing` (sparse compute cycles), `scores` (candidate grid and its scores), `recount`
(energy and the exact recount of one mapping), `exact` (the `search=exact` mode: every legal
mapping, branch and bound; docs/rs_plus_model.md "Mapping search"); this package re-exports the
public names of all but `exact`.

Dense counts (int64, exact, what the simulation compares with `layer_counts`)
------------------------------------------------------------------------------
Per group every RS count is the RS count with `n` replaced by `n·b` and an ifmap row's W_used
columns by its column strips' oc·W_f (`rs.counts` is reused, `ifmap_cols`), except the filter
DRAM reads and NoC deliveries / RF writes, the passes, the cycles and the active PEs
(docs/rs_plus_model.md; strip sets share weight reads and shorten the strip loop). Router
transfers and mesh hops are exact closed forms per cluster (`noc.noc_routes`): the slot structure
depends only on the pass's active counts (g_eff, t_eff, r_eff, b_eff take at most 2 values each:
full tile, remainder tile; o_eff·oc is the same in every pass: equal strips), so at most 16 pass
classes; the words a chain carries factor per dimension (image-set size × channel-set size for
iacts, ...), and the per-pass factors that do not touch the slots (folds, strip rows and
columns) factor out as exact tile sums. The work is O(clusters) per pass class for a STATIC cluster bound
(`RSPlusSearchSpace.max_clusters`, at least the largest cluster count of the architecture batch;
`prepare_space` fills it in from the batch before jit, `evaluate` calls it).

Design choices where the contract leaves room (documented here, used by model and tests)
-------------------------------------------------------------------------------------------
* Bits. Energies are the table's per-16-bit values × bits/16. Dense mode: iacts, weights and ofmaps
  are `data_bits` words, psums `psum_bits`. Sparse mode (a layer whose iact or weight density is
  < 1): each operand whose own density is < 1 moves as CSC from DRAM to the PE (the other stays in
  plain words: dense data bypass the address scratchpads, JETCAS19): per dense value
  `ratio·(data_bits + csc_count_bits) + addr_bits/column_height` bits, with `ratio` the expected
  stored CSC words per value (non-zeros plus count-overflow padding zeros, the closed form of
  `eyejax.sparse.csc.expected_csc_words`, written here for traced column heights) and one address
  entry per column (iact addresses 4 b, weight addresses 7 b: the v2 address scratchpad widths).
  A PE's weight matrix has one column per (channel, tap) of p rows (its filters), its iact rows one
  column per ifmap position of q rows (its channels); the full set's p and q are used for every
  set (remainder sets have shorter columns: an approximation that only matters above 16 rows, where
  padding appears, and for the address overhead). Ofmaps go to DRAM as CSC when their density is
  < 1 (columns of 16 channels: no padding), else plain.
* Zero skipping (sparse mode only): the ALU and psum RF read/write run for non-zero × non-zero pairs
  (fraction mac_density·weight_density, each factor 1 where that operand is plain); iact RF reads
  for non-zero iacts (mac_density); weight RF reads walk the stored words of the column
  (mac_density·ratio_w). Dense mode skips nothing.
* ALU energy per 8-b MAC = table alu × data_bits/16 (same bits/16 rule as the storage levels).
* Sparse compute cycles (expected, i.i.d. zeros). Per PE task K = ceil(W/macs_per_pe) per non-zero
  iact, W the stored words of its p_eff-row weight column (Binomial(p_eff, d_w) for p_eff <= 16):
  E[K] exact for macs_per_pe 1 and 2 ((E[W] + P(W odd))/2), otherwise E[W]/k + (k-1)/(2k)·P(W>0).
  The busiest PE of a pass (n_set images, q_eff channels, p_eff filters) takes
  T = Σ_{images, f, c, s} X·K with mean n·F·q·S·d·E[K] and variance (law of total variance, weights
  shared across windows and images) q·[Var K·S·(nF·d(1-d) + (nF·d)²) + E[K]²·d(1-d)·n·F·S·ρ],
  ρ = clip(S/U, 1, S) (interior reuse of an ifmap column; edges ignored). The slowest of the A active
  PEs: E[T] + κ(A)·sd(T), κ(A) = Φ⁻¹((A − 0.375)/(A + 0.25)) (Blom's expected maximum of A i.i.d.
  normals). The PEs of a pass share data, so they are positively correlated and this over-estimates
  the imbalance (see eyejax/sim/sparse_pe.py). A = the active PEs of the layer's first pass.
  Summed exactly over the (n_set, q_eff, p_eff) pass classes.
* NoC bound: W_d (per-cluster router transfers) × the mode's bits per value / (routers · port bits).
* DRAM cycles = ceil(DRAM bits × clock / (dram_bus_bits × dram_clock_mhz)); "unlimited" bandwidth is
  `UNLIMITED_DRAM` (2**20-bit bus at 10**5 MHz: a few cycles per layer at most).
* Search. The grid axes are e, r, g, q, p, n (`RSPlusSearchSpace`); t takes the sets left after
  r and g, b the sets left after r, g, t, o the sets left after r, g, t, b (equal strips side by
  side, as far as the GLBs' spare room holds their blocks beside the candidate's m: no extra ifmap
  re-reads; `scores.strip_sets`), oc the sets still left (equal strips of the ofmap columns, as
  far as the iact GLB holds their blocks; `scores.column_strip_sets`), and m is the largest
  multiple of p·t the psum GLB holds.
  Mesh hops are approximated in the search (router transfers cost no energy; the NoC bound is
  approximated too): a chain of L sets whose consecutive members are `stride` slots apart crosses
  (L − 1)·min(1, stride/k) cluster boundaries on average, each costing the Manhattan distance of a
  step of max(stride/k, 1) clusters down the columns (clusters are numbered column by column; a
  single step in a column costs 1; the (2r−1)/r average over column wraps is used for
  stride <= k); weights, which move only along rows, cost a hop per step only on a one-row mesh.
  The recount is exact. A test checks that with hop
  energy 0 the search's energy equals the recount's on every feasible candidate.
* Spad capacity in sparse mode uses the expected stored words (not a worst case); the address
  scratchpads are not checked (the contract lists data scratchpads only).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from eyejax.arch import eyeriss_v2
from eyejax.arch.dram import UNLIMITED_DRAM  # noqa: F401  (rs_plus.UNLIMITED_DRAM, the v2 setup)
from eyejax.arch.energy import MOVEMENT_ONLY
from eyejax.dataflow import cost
from eyejax.dataflow.mapping import NOC_MODES, RSPlusMapping, as_rs_plus_mapping
from eyejax.dataflow.rs_plus.dense import counts, feasible
from eyejax.dataflow.rs_plus.encoding import (
    OFMAP_COLUMN,
    arch_in,
    csc_words_per_value,
    formats,
)
from eyejax.dataflow.rs_plus.noc import (
    DATA_TYPES,
    EXTRA_KEYS,
    approx_noc,
    noc_cycles,
    noc_modes,
    noc_routes,
)
from eyejax.dataflow.rs_plus.recount import chip_overhead, dram_bits, energy, evaluate_mapping
from eyejax.dataflow.rs_plus.scores import (
    candidate_active_pes,
    candidate_grid,
    candidate_scores,
)
from eyejax.dataflow.rs_plus.space import (
    DEFAULT_SEARCH,
    F32_EXACT,
    FAMILIES,
    MAPPING_KEYS,
    RSPlusSearchSpace,
    mapping_values,
    noc_value_bound,
    partition_space,
    prepare_space,
    slot_bounds,
)
from eyejax.dataflow.rs_plus.timing import (
    blom_kappa,
    k_moments,
    pass_time,
    sparse_compute_cycles,
)
from eyejax.dataflow.search import cast, choose, layer_result, objective_score
from eyejax.dataflow.shape import layer_shape
from eyejax.metrics import check_objective



SEARCH_MODES = {"fast": "eyejax.dataflow.rs_plus.space:DEFAULT_SEARCH",
                "exact": "eyejax.dataflow.rs_plus.exact:EXACT_SEARCH"}


def search_layer(layer, arch, sp, first, objective: str = "energy",
                 space: RSPlusSearchSpace = DEFAULT_SEARCH):
    """Best RS+ mapping of one layer on one Eyeriss v2 architecture and its exact cost (scalars).

    `space.max_clusters` must be filled in (`prepare_space`; `evaluate` does it). Another search
    mode's space (SEARCH_MODES, e.g. exact) runs its own search."""
    check_objective(objective)
    if not isinstance(space, RSPlusSearchSpace):
        return space.search_layer(layer, arch, sp, first, objective)
    mp, any_ok = choose_mapping(layer, arch, sp, first, objective, space)
    return finish_mapping(layer, arch, sp, first, mp, any_ok, space)


def choose_mapping(layer, arch, sp, first, objective: str, space: RSPlusSearchSpace):
    """`search_layer`'s first half: the fast grid's choice and whether any mapping fits."""
    return fast_choice(layer, arch, sp, first, objective, _with_bounds(space, arch))


def finish_mapping(layer, arch, sp, first, mp, any_ok, space: RSPlusSearchSpace):
    """`search_layer`'s second half: the exact recount of the chosen mapping (`first` unused: the
    RS+ recount does not depend on it)."""
    space = _with_bounds(space, arch)
    return finish(layer, arch, sp, mp, any_ok, space.max_clusters, space.exact_noc,
                  bool(space.noc_float32))


def _with_bounds(space, arch):
    if space.max_slots <= 0 or space.max_clusters <= 0:
        try:
            space = prepare_space(space, arch)
        except Exception as err:  # traced arch: the bound must be static
            raise ValueError("RSPlusSearchSpace.max_clusters is not set: call "
                             "rs_plus.prepare_space(space, arch) on the concrete architecture "
                             "before jit") from err
    return space


def least_mapping(shape, arch):
    """The least RS+ mapping (h = min(R, cluster PEs), every other parameter 1): every capacity
    term is smallest there, so it fits whenever any legal mapping does."""
    i64 = jnp.int64
    cpes = (jnp.asarray(arch.cluster_pe_rows).astype(i64)
            * jnp.asarray(arch.cluster_pe_cols).astype(i64))
    h = jnp.minimum(shape["R"], cpes)
    one = jnp.ones_like(h)
    return RSPlusMapping(h=h, e=one, r=one, t=one, g=one, b=one, p=one, q=one, n=one, m=one, o=one,
                         oc=one)


def fast_choice(layer, arch, sp, first, objective: str, space: RSPlusSearchSpace = DEFAULT_SEARCH):
    """The fast grid's best mapping (int64 RSPlusMapping) and whether any legal mapping exists:
    where no grid candidate fits, the least mapping (`least_mapping`), so the fast search is
    feasible exactly where the exact one is."""
    f32 = jnp.float32
    arch32, sp32 = cast(arch, f32), cast(sp, f32)
    shape32 = layer_shape(layer, f32)
    mp_k, ok = candidate_grid(shape32, arch32, sp32, space, f32)
    chip = cost.chip_params(arch)          # static: zeros unless the energy table is in pJ
    with_chip = chip is not MOVEMENT_ONLY and objective != "latency"
    energy_k, cycles_k = candidate_scores(shape32, arch32, sp32, first, mp_k,
                                          "edp" if with_chip else objective, f32)
    if with_chip:   # the search ranks by chip energy: clock, control and leakage per cycle too
        ov = cost.overhead_energy(cycles_k, candidate_active_pes(shape32, mp_k), cast(chip, f32))
        energy_k = energy_k + ov["clock"] + ov["leakage"]
    mp, any_ok, _ = choose(objective_score(objective, energy_k, cycles_k), ok,
                           {k: getattr(mp_k, k) for k in MAPPING_KEYS})
    shape = layer_shape(layer, jnp.int64)
    least = least_mapping(shape, arch)
    least_ok = feasible(shape, arch, sp, least, jnp.float64)
    mp = RSPlusMapping(**{k: jnp.where(any_ok, mp[k], getattr(least, k)) for k in MAPPING_KEYS})
    return mp, any_ok | least_ok


def finish(layer, arch, sp, mp, any_ok, max_clusters: int, exact_noc: bool = True,
           noc_float32: bool = False):
    """The flat result of a search's choice `mp`: its exact recount, with the chip energy beyond
    data movement and MACs (eyejax.dataflow.cost.overhead_energy; parameters: the family's
    chip_energy) kept apart from the movement breakdown."""
    shape = layer_shape(layer, jnp.int64)
    out, en = evaluate_mapping(shape, arch, sp, mp, max_clusters, exact_noc, noc_float32)
    ov = chip_overhead(out, arch)
    en.update({k: jnp.broadcast_to(v, ()).astype(jnp.float64) for k, v in ov.items()})
    return layer_result(out, en, {k: getattr(mp, k) for k in MAPPING_KEYS}, any_ok)


def validate_arch(arch) -> None:
    eyeriss_v2.FAMILY.validate(arch)


_evaluate_mapping_jit = jax.jit(evaluate_mapping, static_argnums=(4, 5))


def layer_cost(layer, arch, mapping, sparsity=None, exact_noc: bool = True) -> tuple:
    """(counts, energies) of one layer (a LayerArrays row: `Layer.as_row()`) under an RS+
    mapping (any object with fields h, e, r, t, g, b, p, q, n, m and optionally o and oc,
    `mapping.as_rs_plus_mapping`) on one unbatched architecture.

    counts: int64 COUNT_KEYS (dense: they do not depend on the data), router_*, hops_*,
    noc_cycles_*, noc_mode_*, dram_cycles, cycles (and dram_bits, mac_pairs,
    dense_compute_cycles). With `sparsity` (one Sparsity row) compute_cycles, the NoC and DRAM
    terms and the energies are those of its mode. energies: by `<level>_<type>` and `alu`.
    Jitted (one compile per architecture structure and cluster count)."""
    shape = layer_shape(layer, jnp.int64)
    _, clusters = slot_bounds(arch)
    mapping = as_rs_plus_mapping(mapping)
    mp = RSPlusMapping(**{k: jnp.asarray(getattr(mapping, k), jnp.int64) for k in MAPPING_KEYS})
    arch = jax.tree_util.tree_map(jnp.asarray, arch)
    return _evaluate_mapping_jit(shape, arch, sparsity, mp, clusters, bool(exact_noc))


def layer_counts(layer, arch, mapping, sparsity=None) -> dict:
    """Exact int64 dense counts of one layer under an RS+ mapping (see `layer_cost`): the numbers
    the functional simulation (eyejax/sim/rs_plus_sim.py) is compared with."""
    return layer_cost(layer, arch, mapping, sparsity)[0]


def mapping_is_feasible(layer, arch, mapping, sparsity=None) -> bool:
    return bool(feasible(layer_shape(layer, jnp.int64), arch, sparsity, as_rs_plus_mapping(mapping),
                         jnp.float64))


# ---------------------------------------------------------------------------- Eyexam (eyejax.eyexam)
def parallelism(s):
    """Eyexam step 2: RS's parallelism, with groups, images and ofmap columns tiled spatially too
    (docs/rs_plus_model.md: a column strip set of one column gives each PE one output)."""
    return s["R"] * s["E"] * s["F"] * s["Cg"] * s["Mg"] * s["G"] * s["N"]


physical_min_compute = None   # no physical-array search: Eyexam's step 4 loses nothing


__all__ = [
    "FAMILIES", "MAPPING_KEYS", "DATA_TYPES", "NOC_MODES", "EXTRA_KEYS",
    "OFMAP_COLUMN", "UNLIMITED_DRAM", "F32_EXACT", "RSPlusMapping",
    "RSPlusSearchSpace", "DEFAULT_SEARCH", "slot_bounds", "noc_value_bound", "prepare_space",
    "partition_space",
    "arch_in", "csc_words_per_value", "formats", "mapping_values", "counts", "feasible",
    "noc_routes", "noc_modes", "approx_noc", "noc_cycles", "blom_kappa", "k_moments", "pass_time",
    "sparse_compute_cycles", "energy", "dram_bits", "candidate_grid", "candidate_active_pes",
    "candidate_scores", "evaluate_mapping", "search_layer", "validate_arch", "parallelism",
    "physical_min_compute", "layer_cost", "SEARCH_MODES", "least_mapping", "fast_choice",
    "finish", "chip_overhead",
    "layer_counts", "mapping_is_feasible",
]
