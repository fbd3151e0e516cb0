"""Energy and latency as differentiable functions of per-layer densities and architecture parameters.

The batched model (`eyejax.evaluate`) picks each layer's mapping by an argmin over a discrete
candidate grid and counts accesses in int64: piecewise constant in everything continuous, so it has
no useful gradient. Here the mapping is **held fixed at the search's argmin** and energy and latency
are recomputed in float64 from the (float) access counts of that mapping:

    E_l = Σ_level e_level · accesses_level(d) + e_alu · MACs · g_l
    latency_l = (compute_l + ramp_l) / f_clk + DRAM_words_l(d) · word_bits / (bus_bits · f_dram)

Why this is the right derivative: with the energy objective the model reports
E*(θ) = min_m E(m, θ) over mappings m; where the argmin m* is unique, the envelope theorem gives
∇E*(θ) = ∇_θ E(m*, θ): the fixed-mapping gradient *is* the gradient of the searched energy. It is
exact at the point where the mapping was found; away from it, E(m*, θ) is an upper bound on E*(θ)
(re-run `network_energy_fn` to re-map, e.g. every few optimizer steps). Under the latency or EDP
objective the mapping minimizes that objective instead, and the energy gradient is the gradient of
that mapping's energy.

Smooth relaxation of the sparsity terms (documented differences from the counted model):

* Zero gating: the fraction of MACs (and filter-RF reads) that run is g = d_iact for i.i.d. zeros
  (as `Sparsity.from_densities`), times d_weight under the CVPR17 estimate (`energy_model="v1_cvpr17"`,
  below). Linear, so exact.
* RLC on the DRAM link: ratio r(d) = `expected_rlc_ratio(d)` (smooth on [0, 1]). The hardware sends raw
  data when RLC would expand it, i.e. min(r, 1); this kink is replaced by a soft minimum
  `1 - τ·softplus((1 - r)/τ)` (`cap="soft"`, τ = 0.01 by default: at most τ·ln 2 ≈ 0.007 below the
  hard cap, at r = 1, and exponentially close elsewhere). `cap="hard"` keeps min(r, 1) (a kink at
  d ≈ 0.75) and `cap="none"` drops it (RLC always on). The first layer's input is never compressed.
* No ceilings: the counted model rounds compressed DRAM words and DRAM cycles up to integers; here
  they are continuous (a relative difference of about 1/words).
* Compute and ramp cycles do not depend on densities: zero gating saves energy, not time (v1).

Energy models:

* ``"v1"``: the Eyeriss v1 chip (JSSC17): zero ifmaps are gated, fmaps are RLC-compressed to and from
  DRAM; weight sparsity changes nothing (the chip neither skips zero weights nor compresses filters).
* ``"v1_cvpr17"``: the same RS mapping and counts, costed the way CVPR17's energy-aware pruning
  estimates energy (eyeriss.md §5, §2 "Energy model"): a MAC with *either* operand zero is skipped
  (g = d_iact · d_weight) and filters also move RLC-compressed between DRAM and the array
  (ratio r(d_weight)). A hypothetical v1 that exploits weight sparsity; it is what makes weight
  pruning pay on an RS chip.

* ``"v2"`` (an Eyeriss v2 architecture; needs the v2 dataflow `eyejax.dataflow.rs_plus`): the RS+
  counts and mesh hops of the fixed mapping, costed by the v2 model's own formulas
  (`rs_plus.formats` / `rs_plus.energy`): CSC words per value (smooth in the densities), zero
  skipping of non-zero × non-zero MACs, 8-b data / 20-b psums. Latency relaxes the model's cycles:
  the expected sparse compute cycles unrounded, the NoC-bound cycles of the mapping point scaled by
  the bits per value at the new densities, DRAM cycles without the ceiling; the busiest of compute
  and NoC is a hard max. A layer runs in dense mode only when both its iact and weight densities
  are exactly 1 (a discontinuity of the v2 model): gradients are those of the mode at the point.
  The v2 search ranks candidates with approximate mesh hops and recounts exactly, so the envelope
  argument holds for the approximate objective.

Continuous architecture parameters (`ARCH_PARAMS`; v2 adds the mesh `hop` energy): the energy table entries (alu, rf, noc, glb,
dram), the core clock (MHz) and the DRAM bus width (bits) and clock (MHz). Structural fields (array
shape, scratchpad and GLB sizes) are integers that change the mapping space; search them with
`eyejax.codesign.problem` instead.

    f = network_energy_fn(EyerissV1(), get_network("alexnet"), densities={"iact": 0.5})
    e, lat = f(f.densities0, f.params0)
    dE = jax.grad(lambda d: f(d)[0])(f.densities0)       # per-layer dE/d(density)
    dP = jax.grad(lambda p: f(f.densities0, p)[1])(f.params0)   # d latency / d arch params
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from eyejax import metrics
from eyejax.dataflow import cost, rs_plus
from eyejax.dataflow.mapping import COUNT_KEYS
from eyejax.dataflow.shape import layer_shape
from eyejax.evaluate import evaluate
from eyejax.sparse.rlc import expected_rlc_ratio
from eyejax.sparsity import Sparsity

ENERGY_PARAMS = ("alu", "rf", "noc", "glb", "dram")
ARCH_PARAMS = ENERGY_PARAMS + ("clock_mhz", "dram_bus_bits", "dram_clock_mhz")
V2_ARCH_PARAMS = ARCH_PARAMS + ("hop",)
ENERGY_MODELS = ("v1", "v1_cvpr17", "v2")
V2_EXTRA_KEYS = ("hops_ifmap", "hops_filter", "hops_psum", "noc_cycles_ifmap", "noc_cycles_filter",
                 "noc_cycles_psum", "dense_compute_cycles")
CAPS = ("soft", "hard", "none")
DEFAULT_TAU = 0.01


@dataclasses.dataclass(frozen=True)
class FixedMapping:
    """The mapping the search chose for every layer, and its access counts as float64 [L] arrays."""

    network: object
    arch: object
    counts: dict
    first: np.ndarray
    mapping: dict
    feasible: np.ndarray
    objective: str
    word_bits: float
    family: str = "eyeriss_v1"
    extra: dict = dataclasses.field(default_factory=dict)   # v2: hops, NoC cycles, dense compute
    layers: object = None                                   # LayerArrays of the network


def _single(arch):
    leaves = jax.tree_util.tree_leaves(arch)
    if any(np.ndim(x) > 0 and np.size(x) != 1 for x in leaves):
        raise ValueError("network_energy_fn takes one architecture, not a batch; index the batch first")
    return jax.tree_util.tree_map(lambda x: np.asarray(x).reshape(()) if np.ndim(x) else x, arch)


def fix_mapping(arch, network, sparsity=None, objective: str = "energy") -> FixedMapping:
    """Run the mapping search once (the batched evaluator, batch of one) and keep its argmin."""
    arch = _single(arch)
    res = evaluate(arch, network, sparsity, objective=objective)
    raw = res.raw
    feasible = np.asarray(raw["feasible"][0])
    if not feasible.all():
        bad = [n for n, ok in zip(network.names, feasible) if not ok]
        raise ValueError(f"no feasible mapping for layer(s) {bad} on this architecture")
    counts = {k: np.asarray(raw[k][0], dtype=np.float64) for k in COUNT_KEYS}
    if "stall_cycles" in raw:   # RS on v1: NoC/DRAM-filter stalls at the fixed mapping
        counts["stall_cycles"] = np.asarray(raw["stall_cycles"][0], dtype=np.float64)
    mapping = {k: np.asarray(raw[f"map_{k}"][0]) for k in res.mapping_keys}
    layers = network.arrays()
    first = np.asarray(layers.first, dtype=bool)
    family = getattr(arch, "family", "eyeriss_v1")
    extra = {}
    if family == "eyeriss_v2":
        extra = {k: np.asarray(raw[k][0], dtype=np.float64) for k in V2_EXTRA_KEYS}
    word_bits = float(getattr(arch, "word_bits", getattr(arch, "data_bits", 16)))
    return FixedMapping(network=network, arch=arch, counts=counts, first=first, mapping=mapping,
                        feasible=feasible, objective=objective, word_bits=word_bits, family=family,
                        extra=extra, layers=layers)


def arch_params(arch) -> dict:
    """The continuous parameters of one architecture as float64 scalars (a pytree for jax.grad)."""
    arch = _single(arch)
    p = {k: jnp.asarray(getattr(arch.energy, k), jnp.float64) for k in ENERGY_PARAMS}
    for k in ("clock_mhz", "dram_bus_bits", "dram_clock_mhz"):
        p[k] = jnp.asarray(getattr(arch, k), jnp.float64)
    if getattr(arch, "family", None) == "eyeriss_v2":
        p["hop"] = jnp.asarray(arch.energy.hop, jnp.float64)
    return p


def soft_cap(r, cap: str = "soft", tau: float = DEFAULT_TAU):
    """min(r, 1), relaxed: "soft" = 1 - τ·softplus((1 - r)/τ) (smooth, ≤ min(r, 1), within τ·ln 2);
    "hard" = min(r, 1); "none" = r."""
    if cap == "soft":
        return 1.0 - tau * jax.nn.softplus((1.0 - r) / tau)
    if cap == "hard":
        return jnp.minimum(r, 1.0)
    if cap == "none":
        return r
    raise ValueError(f"cap must be one of {CAPS}, got {cap!r}")


def expand_densities(densities, num_layers: int) -> dict:
    """{"iact": [L], "weight": [L], "ofmap": [L]} float64 from scalars or partial dicts.

    Missing weight densities are 1; a missing ofmap density is the next layer's iact density (the
    last layer's own), as in `Sparsity.from_densities`.
    """
    d = dict(densities or {})
    unknown = set(d) - {"iact", "weight", "ofmap"}
    if unknown:
        raise ValueError(f"densities keys are iact, weight, ofmap; got {sorted(unknown)}")
    full = lambda v: jnp.broadcast_to(jnp.asarray(v, jnp.float64), (num_layers,))
    out = {"iact": full(d.get("iact", 1.0)), "weight": full(d.get("weight", 1.0))}
    if d.get("ofmap") is None:
        ia = out["iact"]
        out["ofmap"] = jnp.concatenate([ia[1:], ia[-1:]])
    else:
        out["ofmap"] = full(d["ofmap"])
    return out


def sparsity_terms(densities, first, energy_model: str = "v1", cap: str = "soft",
                   tau: float = DEFAULT_TAU) -> dict:
    """The model's sparsity inputs as smooth functions of densities: mac_density g and the DRAM size
    ratios of ifmaps, ofmaps and filters (see the module docstring)."""
    if energy_model not in ("v1", "v1_cvpr17"):
        raise ValueError(f"sparsity_terms is for v1 and v1_cvpr17, got {energy_model!r}")
    ia, w, of = densities["iact"], densities["weight"], densities["ofmap"]
    ratio = lambda x: soft_cap(expected_rlc_ratio(x), cap, tau)
    g = ia
    r_w = jnp.ones_like(w)
    if energy_model == "v1_cvpr17":
        g = ia * w
        r_w = ratio(w)
    return {"mac_density": g, "ifmap_ratio": jnp.where(first, 1.0, ratio(ia)),
            "ofmap_ratio": ratio(of), "filter_ratio": r_w}


def layer_costs(fixed: FixedMapping, terms: dict, params: dict) -> dict:
    """Per-layer energy (by level and total) and latency at the fixed mapping, float64 [L] arrays.

    `terms` holds mac_density, ifmap_ratio, ofmap_ratio, filter_ratio (from `sparsity_terms`, or exact
    values measured on tensors); `params` the continuous architecture parameters (`arch_params`).
    """
    c = fixed.counts
    g = terms["mac_density"]
    d_if, d_f, d_of = cost.compressed_words(c, terms["ifmap_ratio"], terms["ofmap_ratio"],
                                            terms["filter_ratio"])
    dram_words = d_if + d_f + d_of
    # the shared formula (eyejax.dataflow.cost) by (level, data type), summed per level
    by_type = cost.movement_energy(c, SimpleNamespace(**params), g, (d_if, d_f, d_of))
    e = {lv: sum(v for k, v in by_type.items() if k.startswith(lv + "_"))
         for lv in ("dram", "glb", "noc", "rf")}
    e["alu"] = by_type["alu"]
    energy = e["dram"] + e["glb"] + e["noc"] + e["rf"] + e["alu"]
    # the array waits for ifmap loads and ofmap write-back; filters stream during the passes, and
    # the stalls (NoC, filter DRAM stream) are those of the fixed mapping (docs/rs_model.md "Time")
    wait_words = d_if + d_of
    dram_cycles = wait_words * fixed.word_bits * params["clock_mhz"] / (
        params["dram_bus_bits"] * params["dram_clock_mhz"])
    cycles = c["compute_cycles"] + c["ramp_cycles"] + c.get("stall_cycles", 0.0) + dram_cycles
    out = {f"energy_{k}": v for k, v in e.items()}
    out.update(energy=energy, cycles=cycles, dram_words=dram_words,
               latency_ms=metrics.latency_ms(cycles, params["clock_mhz"]))
    return out


def v2_layer_costs(fixed: FixedMapping, densities: dict, params: dict, densities0: dict) -> dict:
    """Eyeriss v2 per-layer energy (by level and total) and latency at the fixed RS+ mapping, as
    smooth functions of the densities and the continuous parameters (module docstring, "v2")."""
    f64 = jnp.float64
    arch = fixed.arch
    table = arch.energy.replace(**{k: params[k] for k in ENERGY_PARAMS + ("hop",)})
    arch_t = arch.replace(energy=table)
    a = rs_plus.arch_in(arch, f64)
    mp = rs_plus.RSPlusMapping(**{k: jnp.asarray(v, f64) for k, v in fixed.mapping.items()})

    def formats(d):
        sp = SimpleNamespace(iact_density=d["iact"], weight_density=d["weight"],
                             ofmap_density=d["ofmap"], mac_density=d["iact"])
        return rs_plus.formats(a, sp, mp.q, mp.p, f64)

    fm = formats(densities)
    fm0 = formats(densities0)
    c = fixed.counts
    x = fixed.extra
    noc = {k: x[k] for k in ("hops_ifmap", "hops_filter", "hops_psum")}
    e = rs_plus.energy(c, noc, arch_t, fm)
    level = lambda lv: sum(v for k, v in e.items() if k.startswith(lv))
    out = {f"energy_{lv}": level(lv) for lv in ("dram", "glb", "noc", "rf")}
    out["energy_alu"] = e["alu"]
    out["energy"] = sum(e.values())
    # latency
    shape = layer_shape(fixed.layers, f64)
    sc = jax.vmap(lambda sh, m, dm, dw, act: rs_plus.sparse_compute_cycles(
        sh, arch, m, {"d_mac": dm, "d_w": dw}, act, f64))(
        shape, mp, fm["d_mac"], fm["d_w"], jnp.asarray(c["active_pes"], f64))
    compute = jnp.where(fm["sparse"], sc, x["dense_compute_cycles"])
    busy = compute + c["ramp_cycles"]
    scale = {"ifmap": fm["beta_i"] / fm0["beta_i"], "filter": fm["beta_w"] / fm0["beta_w"],
             "psum": 1.0}
    for dt, sc_dt in scale.items():
        busy = jnp.maximum(busy, x[f"noc_cycles_{dt}"] * sc_dt)
    bits = rs_plus.dram_bits(c, fm)
    dram_cycles = bits * params["clock_mhz"] / (params["dram_bus_bits"] * params["dram_clock_mhz"])
    cycles = busy + dram_cycles
    out.update(cycles=cycles, dram_bits=bits,
               latency_ms=metrics.latency_ms(cycles, params["clock_mhz"]))
    return out


class EnergyFn:
    """f(densities, params=None) -> (network energy, network latency in ms), differentiable in both.

    densities: {"iact": [L], "weight": [L], optional "ofmap": [L]} (scalars broadcast); params: a
    dict with any of ARCH_PARAMS (missing ones take the architecture's values). Attributes:
    `fixed` (the FixedMapping), `densities0`, `params0` (the point the mapping was found at),
    `per_layer(densities, params)` (the dict of `layer_costs`).
    """

    def __init__(self, fixed: FixedMapping, densities0: dict, energy_model: str, cap: str,
                 tau: float):
        self.fixed = fixed
        self.densities0 = densities0
        self.params0 = arch_params(fixed.arch)
        self.energy_model = energy_model
        self.cap = cap
        self.tau = tau
        self._first = jnp.asarray(fixed.first)

    @property
    def num_layers(self) -> int:
        return len(self.fixed.first)

    def per_layer(self, densities=None, params=None) -> dict:
        d = expand_densities(self.densities0 if densities is None else densities, self.num_layers)
        p = dict(self.params0)
        p.update(params or {})
        if self.energy_model == "v2":
            d0 = expand_densities(self.densities0, self.num_layers)
            return v2_layer_costs(self.fixed, d, p, d0)
        terms = sparsity_terms(d, self._first, self.energy_model, self.cap, self.tau)
        return layer_costs(self.fixed, terms, p)

    def __call__(self, densities=None, params=None):
        out = self.per_layer(densities, params)
        return jnp.sum(out["energy"]), jnp.sum(out["latency_ms"])


def network_energy_fn(arch, network, densities=None, *, energy_model: str | None = None,
                      objective: str = "energy", cap: str = "soft", tau: float = DEFAULT_TAU,
                      sparsity=None) -> EnergyFn:
    """Search the mapping once at (arch, densities) and return f(densities, params) -> (energy,
    latency_ms) at that mapping (see the module docstring).

    densities: the point to map at ({"iact", "weight", "ofmap"}, scalars or [L]; default dense).
    energy_model: "v1" or "v1_cvpr17" on Eyeriss v1, "v2" on Eyeriss v2 (default: v1 / v2 by the
    architecture's family).
    sparsity: optionally the exact `Sparsity` to search the mapping with (e.g. from real tensors);
    by default it is built from `densities` (i.i.d. expectation).
    """
    if cap not in CAPS:
        raise ValueError(f"cap must be one of {CAPS}, got {cap!r}")
    family = getattr(arch, "family", None)
    if energy_model is None:
        energy_model = "v2" if family == "eyeriss_v2" else "v1"
    if energy_model not in ENERGY_MODELS:
        raise ValueError(f"energy_model must be one of {ENERGY_MODELS}, got {energy_model!r}")
    if (energy_model == "v2") != (family == "eyeriss_v2"):
        raise ValueError(f"energy_model {energy_model!r} does not apply to a {family!r} "
                         "architecture (v1, v1_cvpr17: Eyeriss v1; v2: Eyeriss v2)")
    L = len(network.layers)
    d0 = {k: np.asarray(v, np.float64) for k, v in expand_densities(densities, L).items()}
    if sparsity is None:
        sparsity = Sparsity.from_densities(L, iact=d0["iact"], weight=d0["weight"], ofmap=d0["ofmap"])
        if energy_model == "v1_cvpr17":  # the search sees the gating it will be costed with
            sparsity = sparsity.replace(mac_density=d0["iact"] * d0["weight"])
    fixed = fix_mapping(arch, network, sparsity, objective)
    # The starting point keeps ofmap densities tied to the next layer's iact unless they were given.
    keep = ("iact", "weight") + (("ofmap",) if (densities or {}).get("ofmap") is not None else ())
    return EnergyFn(fixed, {k: jnp.asarray(d0[k]) for k in keep}, energy_model, cap, tau)


def central_difference(fn, x, h: float = 1e-6):
    """Central finite differences of a scalar function of one flat float64 array (for tests)."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        g.flat[i] = (float(fn(x + e)) - float(fn(x - e))) / (2 * h)
    return g


__all__ = ["ARCH_PARAMS", "V2_ARCH_PARAMS", "ENERGY_MODELS", "v2_layer_costs", "FixedMapping", "EnergyFn", "fix_mapping", "arch_params",
           "soft_cap", "expand_densities", "sparsity_terms", "layer_costs", "network_energy_fn",
           "central_difference"]
