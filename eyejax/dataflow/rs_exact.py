"""Exact RS search: the objective's minimum over every legal RS mapping (docs/rs_model.md, "Exact
search"), the `search=exact` mode of the RS dataflow (`eyejax.dataflow.rs.SEARCH_MODES`).

The legal space is `rs.feasible`: 1 ≤ h ≤ min(R, pe_rows), 1 ≤ e ≤ E with the set's segments
fitting the rows, r ≤ set_rows, t ≤ floor(set_rows / r)·set_cols, p·q·S ≤ filter spad,
q·S ≤ ifmap spad, p ≤ psum spad, the largest pass's min(p·t, Mg)·min(q·r, Cg)·h·S filter words ≤
the filter buffer, n ≤ N, and m a multiple of p·t that fits the GLB. Two
reductions are proved in the doc and lose no optimum:
  (a) q > Cg, r > cdiv(Cg, q), t > cdiv(Mg, p) and p > Mg count exactly like the capped value and
      are never more feasible, so they are left out;
  (b) m enters the counts only through cdiv(Mg, m), which never rises with m, and its only limit
      is the GLB, so the largest legal m is optimal (as in the fast grid).
Everything else is costed, candidate by candidate, with the same int-exact float64 cost as the
final recount (`rs.cost_of`), so the result is the model's own optimum, not an estimate of it.

The space is ragged (the t range depends on r, e and h; the p range on q), so it is enumerated by
a flat index: "units" (h, e, q, r) on a static grid sized by the batch's largest values
(`prepare`), each holding N·Σ_p min(t range, cdiv(Mg, p)) candidates (p, t, n); a running minimum
over blocks of `block` flat indices in a `lax.while_loop` costs them all with static shapes.
Every capacity enters only as an upper bound and no count depends on one, so growing any capacity
only enlarges the space: the optimum never rises and a feasible layer stays feasible.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from eyejax.dataflow import cost, rs
from eyejax.dataflow.mapping import RSMapping
from eyejax.dataflow.search import cast
from eyejax.dataflow.shape import layer_shape
from eyejax.dataflow.tiling import cdiv, fdiv, tile_sum
from eyejax.metrics import objective_value

# candidate·layer·configuration evaluations held in memory per compiled call (chunk_hint)
MEMORY_BUDGET = 1 << 21


@dataclasses.dataclass(frozen=True)
class RSExactSpace:
    """Static bounds of the exact search, filled in from the concrete batch by `prepare` (the
    largest h, e, q, r, p any layer of any configuration can take); `block` candidates are costed
    per loop step; `chunk_hint` bounds the configurations per compiled call (memory)."""

    h_max: int = 1
    e_max: int = 1
    q_max: int = 1
    r_max: int = 1
    p_max: int = 1
    block: int = 1024
    chunk_hint: int | None = None
    exact = True    # (class attribute) the search it drives returns the optimum

    @property
    def units(self) -> int:
        return self.h_max * self.e_max * self.q_max * self.r_max

    def prepare(self, arch, layers=None) -> "RSExactSpace":
        if layers is None:
            return self
        s = {k: np.asarray(v, np.int64).reshape(1, -1)
             for k, v in layer_shape(layers, jnp.int64).items()}
        a = {k: np.asarray(getattr(arch, k), np.int64).reshape(-1, 1) for k in (
            "pe_rows", "pe_cols", "filter_spad_words", "ifmap_spad_words", "psum_spad_words")}
        rows, cols = a["pe_rows"], a["pe_cols"]
        big = lambda v: int(max(1, np.max(v)))
        space = dataclasses.replace(
            self,
            h_max=max(self.h_max, big(np.minimum(s["R"], rows))),
            e_max=max(self.e_max, big(np.minimum(s["E"], cols * rows))),
            q_max=max(self.q_max, big(np.minimum(a["ifmap_spad_words"] // s["S"], s["Cg"]))),
            r_max=max(self.r_max, big(np.minimum(rows, s["Cg"]))),
            p_max=max(self.p_max, big(np.minimum(np.minimum(a["psum_spad_words"],
                                                            a["filter_spad_words"] // s["S"]),
                                                 s["Mg"]))))
        per_config = s["N"].size * max(space.units, space.block * 64)
        return dataclasses.replace(space, chunk_hint=max(1, MEMORY_BUDGET // per_config))

    def search_layer(self, layer, arch, sp, first, objective, fixed=None):
        return search_layer(layer, arch, sp, first, objective, self, fixed)


EXACT_SEARCH = RSExactSpace()


def _unit_values(u, space, dtype):
    """(h, e, q, r) of flat unit indices u (row-major over h, e, q, r)."""
    u, r = jnp.divmod(u, space.r_max)
    u, q = jnp.divmod(u, space.q_max)
    h, e = jnp.divmod(u, space.e_max)
    return tuple((v + 1).astype(dtype) for v in (h, e, q, r))


def _unit_terms(s, a, h, e, q, r):
    """(t range, p range, legal) of units: t ≤ floor(set_rows/r)·set_cols, p ≤ the spads' bound."""
    _, set_rows, set_cols = rs.set_slots(h, e, a["pe_rows"], a["pe_cols"])
    legal = ((h <= jnp.minimum(s["R"], a["pe_rows"])) & (e <= s["E"]) & (set_rows >= 1)
             & (q <= jnp.minimum(fdiv(a["ifmap_spad_words"], s["S"]), s["Cg"]))
             & (r <= jnp.minimum(set_rows, cdiv(s["Cg"], q))))
    t_range = fdiv(set_rows, r) * set_cols
    p_range = jnp.minimum(jnp.minimum(a["psum_spad_words"],
                                      fdiv(a["filter_spad_words"], q * s["S"])), s["Mg"])
    return t_range, p_range, legal & (t_range >= 1) & (p_range >= 1)


def _p_weights(s, t_range, p_range, space):
    """Candidates (t, n) under each p = 1..p_max of a unit: N·min(t range, cdiv(Mg, p)), p legal."""
    p = jnp.arange(1, space.p_max + 1, dtype=t_range.dtype)
    w = s["N"] * jnp.minimum(t_range[..., None], cdiv(s["Mg"], p))
    return jnp.where(p <= p_range[..., None], w, 0)


def unit_lower_bound(s, arch, sp, first, objective, h, e, q, r, t_range, p_range):
    """A lower bound of the objective over every candidate (p, t, n, m) of units (h, e, q, r)
    (docs/rs_model.md "Pruning"): every count is non-increasing in p, t, n and m, so `rs.counts`
    at their largest values over the unit gives each count's least value; cycles are at least the
    largest of the least compute, ifmap-bus and psum-bus times plus the least drain and DRAM wait.
    """
    G, N, Cg, Mg, E, F, R, S = (s[k] for k in ("G", "N", "Cg", "Mg", "E", "F", "R", "S"))
    a = {k: getattr(arch, k) for k in rs.ARCH_INT_FIELDS}
    # the GLB bounds n and m: the ifmap block of n = 1 leaves the most banks for psums
    block1 = q * r * rs.rows_glb(e, s["U"], R) * s["W_used"]      # ifmap words per image
    bank = a["glb_bank_words"]
    n_top = jnp.where(a["glb_ifmap_banks"] > 0, fdiv(a["glb_ifmap_banks"] * bank, block1),
                      fdiv((a["glb_banks"] - 1) * bank, block1))
    _, m_top = rs.glb_room(s, a, e, q, r, 1)
    t_top = jnp.maximum(jnp.minimum(t_range, Mg), 1)          # t ≤ min(t range, cdiv(Mg, p) ≤ Mg)
    top = RSMapping(h=h, e=e, r=r, t=t_top, p=jnp.maximum(p_range, 1), q=q,
                    n=jnp.clip(n_top, 1, N), m=jnp.clip(m_top, 1, Mg))
    c = rs.counts(s, None, top, h.dtype)                          # × G already
    words = cost.compressed_words(c, *cost.rlc_ratios(sp, first))    # not rounded up: ≤ moved
    movement = sum(cost.movement_energy(c, arch.energy, sp.mac_density, words).values())
    # Σ over passes of max(compute, ifmap bus, psum bus) ≥ the max of the three sums; the busiest
    # PE runs Σ min(p, x) ≥ cdiv(Mg, t) filters' rows (x ≤ p·t filters over t sets)
    ns, nf, nc = cdiv(E, e), cdiv(R, h), cdiv(Cg, q * r)
    wb = arch.word_bits
    compute = G * S * F * N * ns * nf * cdiv(Mg, t_top) * tile_sum(Cg, q * r,
                                                                  lambda y: jnp.minimum(q, y))
    ifmap_bus = c["glb_ifmap_reads"] * wb / arch.ifmap_bus_bits
    psum_bus = c["glb_psum_writes"] * wb / arch.psum_bus_bits
    drain = G * ns * nc * R                                    # h_k cycles per pass, Σ h_k = R
    wait = (words[0] + words[2]) * wb * arch.clock_mhz / (arch.dram_bus_bits * arch.dram_clock_mhz)
    cycles = jnp.maximum(compute, jnp.maximum(ifmap_bus, psum_bus)) + drain + wait
    chip = cost.chip_params(arch)
    active = h * jnp.minimum(e, E) * jnp.minimum(r, cdiv(Cg, q))       # t ≥ 1 set
    energy = movement + sum(cost.overhead_energy(cycles, active, chip, sp.mac_density).values())
    return objective_value(objective, energy, cycles)


def _unit_weights(s, a, space, dtype, bound=None):
    """Candidates in each unit [units]: 0 where the unit is not legal, or where `bound` (a function
    of the units' values and ranges) says no candidate in it can beat the incumbent."""
    u = jnp.arange(space.units, dtype=jnp.int64)
    h, e, q, r = _unit_values(u, space, dtype)
    t_range, p_range, legal = _unit_terms(s, a, h, e, q, r)
    # N·Σ_{p ≤ P} min(A, cdiv(Mg, p)) in closed form: cdiv(Mg, p) ≤ A from p0 = cdiv(Mg, A) on,
    # and the prefix sums of cdiv(Mg, p) over p ≤ p_max are one small table per layer
    Mg = s["Mg"]
    pre = jnp.concatenate([jnp.zeros(1, dtype),
                           jnp.cumsum(cdiv(Mg, jnp.arange(1, space.p_max + 1, dtype=dtype)))])
    A, P = jnp.maximum(t_range, 1), jnp.clip(p_range, 0, space.p_max)
    k = jnp.minimum(cdiv(Mg, A) - 1, P)
    idx = lambda v: jnp.clip(v, 0, space.p_max).astype(jnp.int32)
    t_sum = s["N"] * (A * k + pre[idx(P)] - pre[idx(k)])
    if bound is not None:
        legal &= bound(h, e, q, r, t_range, p_range)
    return jnp.where(legal, t_sum, 0)


def _decode(i, cum, weights, s, a, space, dtype):
    """The mapping (without m) of flat candidate indices i < cum[-1]."""
    u = jnp.clip(jnp.searchsorted(cum, i, side="right"), 0, space.units - 1)
    j = i - (cum[u] - weights[u])
    h, e, q, r = _unit_values(u, space, dtype)
    t_range, p_range, _ = _unit_terms(s, a, h, e, q, r)
    w = _p_weights(s, t_range, p_range, space)                   # [..., p_max]
    cs = jnp.cumsum(w, axis=-1)
    jd = j.astype(dtype)[..., None]
    pi = jnp.minimum(jnp.sum(cs <= jd, axis=-1), space.p_max - 1)
    k = j.astype(dtype) - (jnp.take_along_axis(cs, pi[..., None], -1)[..., 0]
                           - jnp.take_along_axis(w, pi[..., None], -1)[..., 0])
    t, n = fdiv(k, s["N"]) + 1, k - fdiv(k, s["N"]) * s["N"] + 1
    return dict(h=h, e=e, r=r, t=t, p=(pi + 1).astype(dtype), q=q, n=n)


def _candidates(i, cum, weights, total, s, a, space, dtype):
    mp = _decode(i, cum, weights, s, a, space, dtype)
    _, m_fit = rs.glb_room(s, a, mp["e"], mp["q"], mp["r"], mp["n"])
    # the largest legal m (reduction (R2)), at least p·t (the mask rules out what does not fit)
    pt = mp["p"] * mp["t"]
    mp["m"] = jnp.maximum(rs.largest_m(s["Mg"], m_fit, pt), pt)
    return RSMapping(**mp), i < total


def search_layer(layer, arch, sp, first, objective: str, space: RSExactSpace, fixed=None):
    """`rs.search_layer` with every legal mapping costed (see the module docstring)."""
    f64 = jnp.float64
    s = layer_shape(layer, f64)
    arch64, sp64 = cast(arch, f64), cast(sp, f64)
    a = {k: getattr(arch64, k) for k in rs.ARCH_INT_FIELDS}
    # incumbent: the fast grid's choice, costed exactly; units whose lower bound exceeds it cannot
    # hold the optimum (nor a tie with it) and are skipped
    inc = rs.fast_choice(layer, arch, sp, first, objective)
    inc = RSMapping(**{k: getattr(inc, k).astype(f64) for k in rs.MAPPING_KEYS})
    _, en0, _, cyc0 = rs.cost_of(s, arch64, sp64, first, inc, f64)
    upper = jnp.where(rs.feasible(s, arch64, inc, f64),
                      objective_value(objective, sum(en0.values()), cyc0), jnp.inf)
    bound = lambda *unit: unit_lower_bound(s, arch64, sp64, first, objective, *unit) <= upper
    weights = _unit_weights(s, a, space, f64, bound).astype(jnp.int64)
    cum = jnp.cumsum(weights)
    total = cum[-1]
    lanes = jnp.arange(space.block, dtype=jnp.int64)

    def score(i):
        mp, valid = _candidates(i, cum, weights, total, s, a, space, f64)
        ok = valid & rs.feasible(s, arch64, mp, f64)
        _, en, _, cycles = rs.cost_of(s, arch64, sp64, first, mp, f64)
        return jnp.where(ok, objective_value(objective, sum(en.values()), cycles), jnp.inf)

    def body(state):
        base, best, best_i = state
        sc = score(base + lanes)
        k = jnp.argmin(sc)
        better = sc[k] < best      # strict: the first of equal scores wins
        return base + space.block, jnp.where(better, sc[k], best), jnp.where(better, base + k, best_i)

    init = (jnp.zeros((), jnp.int64), jnp.asarray(jnp.inf, f64), jnp.zeros((), jnp.int64))
    _, best, best_i = jax.lax.while_loop(lambda st: st[0] < total, body, init)
    mp, _ = _candidates(best_i, cum, weights, total, s, a, space, f64)
    mp = RSMapping(**{k: jnp.round(getattr(mp, k)).astype(jnp.int64) for k in rs.MAPPING_KEYS})
    return rs.finish(layer, arch, sp, first, mp, jnp.isfinite(best), fixed)
