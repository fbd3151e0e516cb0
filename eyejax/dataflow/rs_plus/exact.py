"""Exact RS+ search: the objective's minimum over every legal RS+ mapping (docs/rs_plus_model.md,
"Mapping search"), the `search=exact` mode of the RS+ dataflow (`rs_plus.SEARCH_MODES`).

The legal space is `rs_plus.feasible`: 1 ≤ h ≤ min(R, cluster PEs), h·e ≤ cluster PEs, e ≤ E,
r·t·g·b·o·oc ≤ floor(cluster PEs / (h·e))·clusters, the spads (q·S, p·q·S in stored CSC words, p),
n ≤ N, and m a multiple of p·t that fits the psum GLB (the ifmap GLB bounds the rest). Two
reductions, proved in the doc, lose no optimum:
  (R1) q > Cg, p > Mg, r > cdiv(Cg, q), t > cdiv(Mg, p), g > G, b > cdiv(N, n) and
       o > cdiv(E, e) count exactly
       like the capped value (every count, route and format uses the active sets and the real
       column heights) and are never more feasible, so they are left out;
  (R2) m enters only through cdiv(Mg, m) (the ifmap re-reads) and the psum GLB, so the largest
       legal m is optimal.

Enumeration with static shapes. The set counts (r, t, g, b, o, oc) with r·t·g·b·o·oc ≤ the batch's
most set slots (oc a divisor of some layer's F) form a static table (`tuple_table`); a unit is
(h, one table row), empty where oc does not divide the layer's F. Each of a unit's
remaining parameters ranges over a prefix: e ≤ floor(cluster PEs / (h·ceil(r·t·g·b·o·oc / clusters)))
(enough slots) and e ≤ E/o (equal strips: o·e divides E), q ≤ the largest q with cdiv(Cg, q) ≥ r
(and the spads), p likewise with t, n with b. So a
unit holds e_hi·q_hi·p_hi·n_hi candidates, decoded from a flat index by a search over the units'
cumulative counts and a mixed radix, with nothing wasted but the capacity checks.

Branch and bound with a certificate. Every candidate of a block of `block` flat indices gets a
lower bound: its exact recount without the mesh (`evaluate_mapping(with_noc=False)`: no hops and
no NoC-bound cycles, the same expressions otherwise, so it is below the full objective term by
term, in floating point too). The incumbent starts at the fast grid's choice, costed exactly.
Inside the block, the `exact_lanes` candidates with the lowest bounds below the incumbent are
costed exactly (routes and hops included) until no bound in the block is below the incumbent;
a candidate is skipped only when its bound is at least the incumbent, which never falls below the
final optimum, so nothing skipped can beat it. The result is the model's own optimum.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.dataflow.mapping import RSPlusMapping
from eyejax.dataflow.rs_plus.dense import feasible
from eyejax.dataflow.rs_plus.recount import chip_overhead, evaluate_mapping
from eyejax.dataflow.rs_plus.space import MAPPING_KEYS, slot_bounds
from eyejax.dataflow.shape import layer_shape
from eyejax.dataflow.tiling import cdiv
from eyejax.metrics import objective_value

# candidate·layer·configuration lanes held in memory per compiled call (chunk_hint)
MEMORY_BUDGET = 1 << 22


@functools.lru_cache(maxsize=16)
def tuple_table(sets_max: int, r_max: int, t_max: int, g_max: int, b_max: int,
                o_max: int = 1, oc_values: tuple = (1,)) -> np.ndarray:
    """Every (r, t, g, b, o, oc) with r·t·g·b·o·oc ≤ sets_max, each of r, t, g, b, o at most its
    cap and oc one of `oc_values` (ascending, starting at 1), as int64 rows."""
    out = []
    ocs = np.asarray(oc_values, np.int64)
    for r in range(1, min(r_max, sets_max) + 1):
        for t in range(1, min(t_max, sets_max // r) + 1):
            for g in range(1, min(g_max, sets_max // (r * t)) + 1):
                for b in range(1, min(b_max, sets_max // (r * t * g)) + 1):
                    rest = sets_max // (r * t * g * b)
                    o = np.arange(1, min(o_max, rest) + 1, dtype=np.int64)
                    o, oc = (v[o[:, None] * ocs[None, :] <= rest]          # o-major, oc ascending
                             for v in np.broadcast_arrays(o[:, None], ocs[None, :]))
                    out.append(np.stack([np.full_like(o, v) for v in (r, t, g, b)] + [o, oc],
                                        axis=1))
    return np.concatenate(out, axis=0)


@dataclasses.dataclass(frozen=True)
class RSPlusExactSpace:
    """Static bounds of the exact RS+ search, filled in from the concrete batch by `prepare`:
    the largest fold height and set-slot count, the caps of the (r, t, g, b, o) table (the
    largest Cg, Mg, G, N, E) and its column strip counts (`oc_values`: every divisor of a layer's
    F, where U <= S); `block` candidates are bounded per loop step and `exact_lanes` of them
    costed exactly per inner step; `chunk_hint` bounds the configurations per compiled call."""

    h_max: int = 1
    sets_max: int = 1
    r_max: int = 1
    t_max: int = 1
    g_max: int = 1
    b_max: int = 1
    o_max: int = 1
    oc_values: tuple = (1,)
    max_clusters: int = 1
    block: int = 2048
    exact_lanes: int = 64
    chunk_hint: int | None = None
    exact = True    # (class attribute) the search it drives returns the optimum

    @property
    def table(self) -> np.ndarray:
        return tuple_table(self.sets_max, self.r_max, self.t_max, self.g_max, self.b_max, self.o_max,
                           self.oc_values)

    def prepare(self, arch, layers=None, sparsity=None) -> "RSPlusExactSpace":
        slots, clusters = slot_bounds(arch)
        cpes = int(np.max(np.asarray(arch.cluster_pe_rows, np.int64)
                          * np.asarray(arch.cluster_pe_cols, np.int64)))
        space = dataclasses.replace(self, sets_max=max(self.sets_max, slots),
                                    max_clusters=max(self.max_clusters, clusters))
        if layers is None:
            return space
        s = {k: np.asarray(v, np.int64) for k, v in layer_shape(layers, jnp.int64).items()}
        big = lambda v: int(max(1, np.max(v)))
        space = dataclasses.replace(
            space, h_max=max(space.h_max, big(np.minimum(s["R"], cpes))),
            r_max=max(space.r_max, big(s["Cg"])), t_max=max(space.t_max, big(s["Mg"])),
            g_max=max(space.g_max, big(s["G"])), b_max=max(space.b_max, big(s["N"])),
            o_max=max(space.o_max, big(s["E"])),
            oc_values=tuple(sorted(set(space.oc_values) | column_strip_counts(s, space.sets_max))))
        lanes = s["N"].size * (space.block + space.exact_lanes * 16 * (space.max_clusters + 1))
        return dataclasses.replace(space, chunk_hint=max(1, MEMORY_BUDGET // lanes))

    def search_layer(self, layer, arch, sp, first, objective):
        return search_layer(layer, arch, sp, first, objective, self)


EXACT_SEARCH = RSPlusExactSpace()


def column_strip_counts(s, sets_max: int) -> set:
    """Every legal column strip count of the layers (int64 numpy shape `s`): the divisors of F up
    to `sets_max`, for layers whose windows overlap or touch (U <= S; else only 1)."""
    out = {1}
    for F, U, S in zip(*(np.ravel(s[k]) for k in ("F", "U", "S"))):
        if U <= S:
            out |= {d for d in range(2, min(int(F), sets_max) + 1) if F % d == 0}
    return out


def _unit_ranges(s, arch, sp, space):
    """Per unit (h, table row): the mapping's set counts and the prefix lengths of e, q, p and n
    (0 where the unit holds no candidate)."""
    i64, f64 = jnp.int64, jnp.float64
    tab = jnp.asarray(space.table)                                        # [T, 6]
    hh = jnp.arange(1, space.h_max + 1, dtype=i64)[:, None]                # [H, 1]
    r, t, g, b, o, oc = (tab[None, :, i] for i in range(6))                # [1, T]
    a = lambda k: jnp.asarray(getattr(arch, k)).astype(i64)
    cpes = a("cluster_pe_rows") * a("cluster_pe_cols")
    clusters = a("cluster_rows") * a("cluster_cols")
    Cg, Mg, N, G, E, S = (s[k] for k in ("Cg", "Mg", "N", "G", "E", "S"))
    # the spads hold stored CSC words, at least the density per value (csc_words_per_value ≥ d)
    d_i = jnp.asarray(sp.iact_density).astype(f64)
    d_w = jnp.asarray(sp.weight_density).astype(f64)
    sparse = (d_i < 1) | (d_w < 1)
    lo_i = jnp.where(sparse, jnp.maximum(d_i, 1e-12), 1.0)
    lo_w = jnp.where(sparse, jnp.maximum(d_w, 1e-12), 1.0)
    # (a hair above the quotient: these are only upper bounds, `feasible` decides exactly)
    spad = lambda k, lo: jnp.floor(jnp.minimum(a(k).astype(f64) / (S * lo) * (1 + 1e-9),
                                               1e15)).astype(i64)
    q_cap = jnp.minimum(jnp.minimum(spad("iact_spad_words", lo_i), spad("weight_spad_words", lo_w)), Cg)
    p_cap = jnp.minimum(jnp.minimum(spad("weight_spad_words", lo_w), a("psum_spad_words")), Mg)
    # the largest x with cdiv(D, x) ≥ k: D for k = 1, else floor((D - 1) / (k - 1))
    top = lambda D, k: jnp.where(k == 1, D, (D - 1) // jnp.maximum(k - 1, 1))
    need = cdiv(r * t * g * b * o * oc, clusters)                          # set slots per cluster
    e_hi = jnp.minimum(E // o, cpes // (hh * need))                        # o·e divides E
    q_hi = jnp.minimum(q_cap, top(Cg, r))
    p_hi = jnp.minimum(p_cap, top(Mg, t))
    n_hi = top(N, b)
    ok = (hh <= jnp.minimum(s["R"], cpes)) & (g <= G)
    ok &= (oc == 1) | ((s["F"] % oc == 0) & (s["U"] <= S))               # equal column strips
    radices = [jnp.where(ok, jnp.maximum(v, 0), 0) for v in (e_hi, q_hi, p_hi, n_hi)]
    radices = [jnp.broadcast_to(v, ok.shape).reshape(-1) for v in radices]
    sets = [jnp.broadcast_to(v, ok.shape).reshape(-1) for v in (hh, r, t, g, b, o, oc)]
    return sets, radices


def _decode(i, cum, weights, sets, radices, s, arch):
    """The mappings of flat candidate indices i (m the largest legal one, reduction (R2))."""
    i64 = jnp.int64
    u = jnp.clip(jnp.searchsorted(cum, i, side="right"), 0, cum.shape[0] - 1)
    j = i - (cum[u] - weights[u])
    h, r, t, g, b, o, oc = (v[u] for v in sets)
    re, rq, rp, rn = (jnp.maximum(v[u], 1) for v in radices)
    j, n = jnp.divmod(j, rn)
    j, p = jnp.divmod(j, rp)
    e, q = jnp.divmod(j, rq)
    e, q, p, n = e + 1, q + 1, p + 1, n + 1
    a = lambda k: jnp.asarray(getattr(arch, k)).astype(i64)
    glb = a("cluster_rows") * a("cluster_cols") * a("psum_glb_banks") * a("psum_glb_bank_bits")
    m_fit = glb // (a("psum_bits") * g * n * b * o * e * s["F"])
    pt = p * t
    m = jnp.maximum(jnp.minimum(m_fit // pt * pt, cdiv(s["Mg"], pt) * pt), pt)
    return RSPlusMapping(h=h, e=e, r=r, t=t, g=g, b=b, p=p, q=q, n=n, m=m, o=o, oc=oc)


def _score(shape, arch, sp, mp, objective, max_clusters, with_noc):
    """The objective of one mapping from its exact recount (chip energy: movement, MACs, clock,
    control and leakage), with or without the mesh (the lower bound)."""
    out, en = evaluate_mapping(shape, arch, sp, mp, max_clusters, True, False, with_noc)
    ov = chip_overhead(out, arch)
    energy = sum(en.values()) + ov["clock"] + ov["leakage"]
    return objective_value(objective, energy, out["cycles"].astype(jnp.float64))


def search_layer(layer, arch, sp, first, objective: str, space: RSPlusExactSpace):
    """`rs_plus.search_layer` with every legal mapping considered (the module docstring)."""
    from eyejax.dataflow.rs_plus import fast_choice, finish, least_mapping
    from eyejax.dataflow.rs_plus.space import DEFAULT_SEARCH

    i64 = jnp.int64
    s = layer_shape(layer, i64)
    one_map = lambda mp, with_noc: _score(s, arch, sp, mp, objective, space.max_clusters, with_noc)
    bounds = jax.vmap(lambda mp: one_map(mp, False))
    exact = jax.vmap(lambda mp: one_map(mp, True))
    legal = jax.vmap(lambda mp: feasible(s, arch, sp, mp, jnp.float64))

    # incumbent: the fast grid's choice (its least-mapping fallback included), costed exactly
    fast = dataclasses.replace(DEFAULT_SEARCH, max_slots=space.sets_max,
                               max_clusters=space.max_clusters)
    mp0, _ = fast_choice(layer, arch, sp, first, objective, fast)
    ok0 = feasible(s, arch, sp, mp0, jnp.float64)
    upper0 = jnp.where(ok0, one_map(mp0, True), jnp.inf)

    sets, radices = _unit_ranges(s, arch, sp, space)
    weights = radices[0] * radices[1] * radices[2] * radices[3]
    cum = jnp.cumsum(weights)
    total = cum[-1]
    lanes = jnp.arange(space.block, dtype=i64)
    X = min(space.exact_lanes, space.block)

    def block_step(state):
        base, upper, best_i = state
        idx = base + lanes
        mp = _decode(idx, cum, weights, sets, radices, s, arch)
        ok = (idx < total) & legal(mp)
        lb = jnp.where(ok, bounds(mp), jnp.inf)

        def exact_step(st):
            lb, upper, best_i = st
            neg, k = jax.lax.top_k(-lb, X)           # the X lowest bounds of the block
            live = -neg < upper
            sub = jax.tree_util.tree_map(lambda v: v[k], mp)
            val = jnp.where(live, exact(sub), jnp.inf)
            j = jnp.argmin(val)
            better = val[j] < upper
            return (lb.at[k].set(jnp.inf), jnp.where(better, val[j], upper),
                    jnp.where(better, idx[k[j]], best_i))

        lb, upper, best_i = jax.lax.while_loop(lambda st: jnp.any(st[0] < st[1]), exact_step,
                                               (lb, upper, best_i))
        return base + space.block, upper, best_i

    init = (jnp.zeros((), i64), upper0, jnp.asarray(-1, i64))
    _, upper, best_i = jax.lax.while_loop(lambda st: st[0] < total, block_step, init)
    found = _decode(jnp.maximum(best_i, 0)[None], cum, weights, sets, radices, s, arch)
    mp = RSPlusMapping(**{k: jnp.where(best_i >= 0, getattr(found, k)[0], getattr(mp0, k))
                          for k in MAPPING_KEYS})
    any_ok = jnp.isfinite(upper)
    mp = RSPlusMapping(**{k: jnp.where(any_ok, getattr(mp, k), getattr(least_mapping(s, arch), k))
                          for k in MAPPING_KEYS})
    return finish(layer, arch, sp, mp, any_ok, space.max_clusters)
