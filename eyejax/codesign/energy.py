"""Energy of the real pruned model (eyejax.codesign.pruning's estimates), under each energy model.

The layers' ifmaps, ofmaps and filters on a few validation images give the exact sparsity
(`measure_sparsity`); `EnergyEstimator` evaluates the network on the architecture with it
(`layer_energies`) and keeps what predicts a pruning step's saving (`Estimate`).

Energy models (see `eyejax.codesign.differentiable`): every estimate is reported under each of
* ``v1``: the Eyeriss v1 chip as built: zero ifmaps gated, fmaps RLC-compressed to/from DRAM; it
  does not exploit weight zeros, so weight pruning only pays through the sparser activations it
  causes downstream;
* ``v1_cvpr17``: the same mapping and counts costed as CVPR17 estimates energy: a MAC (and its
  filter-RF read) is skipped when either operand is zero, measured exactly on the tensors as the
  fraction of (ifmap, weight) pairs that are both non-zero, and filters also move RLC-compressed
  (their exact RLC ratio) between DRAM and the array.
* ``v2``: Eyeriss v2 (RS+ on the HM-NoC, CSC-compressed sparse PEs, `eyejax.dataflow.rs_plus`):
  iacts and weights stay CSC-compressed from DRAM to the PE and only non-zero × non-zero MACs run
  (the v2 model takes the measured iact, weight and ofmap densities and the exact non-zero-ifmap
  MAC fraction). Available when the installed eyejax has the v2 dataflow.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.codesign.differentiable import (
    FixedMapping,
    arch_params,
    layer_costs,
    soft_cap,
)
from eyejax.codesign.models import hardware_network, layer_tensors
from eyejax.dataflow.mapping import COUNT_KEYS
from eyejax.evaluate import evaluate
from eyejax.sparse.rlc import expected_rlc_ratio, rlc_ratio
from eyejax.sparsity import Sparsity

ENERGY_MODELS = ("v1", "v1_cvpr17", "v2")


def nonzero_pair_fraction(x, w, stride: int = 1, pad: int = 0, groups: int = 1) -> float:
    """Exact fraction of a layer's MACs whose ifmap *and* weight operands are both non-zero.

    x: NCHW ifmap, w: [M, C/G, R, S]. The count is the convolution of the two non-zero indicators
    (padding counts as zero), summed over every output.
    """
    xi = (jnp.asarray(x) != 0).astype(jnp.float64)
    wi = (jnp.asarray(w) != 0).astype(jnp.float64)
    N, C, _, _ = xi.shape
    M, Cg, R, S = wi.shape
    out = jax.lax.conv_general_dilated(xi, wi, (stride, stride), ((pad, pad), (pad, pad)),
                                       dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                       feature_group_count=groups,
                                       precision=jax.lax.Precision.HIGHEST)
    E, F = out.shape[2], out.shape[3]
    return float(jnp.sum(out)) / (N * M * E * F * Cg * R * S)


def measure_sparsity(module, params, x, network):
    """Per-layer sparsity of the model on the images x (the network's N must equal len(x)).

    Returns (Sparsity for v1 (exact, from tensors), dict of extra per-layer arrays: weight_density,
    pair_density (both operands non-zero), filter_rlc_ratio (capped at 1)).
    """
    ifmaps, ofmaps, weights = layer_tensors(module, params, x)
    sp = Sparsity.from_tensors(network, ifmaps, weights, ofmaps)
    pair, f_rlc = [], []
    for layer, xi, w in zip(network.layers, ifmaps, weights):
        pair.append(nonzero_pair_fraction(xi, w, layer.stride, layer.pad, layer.groups))
        f_rlc.append(min(float(rlc_ratio(jnp.asarray(w))), 1.0))
    extra = {"weight_density": np.asarray(sp.weight_density, np.float64),
             "pair_density": np.asarray(pair), "filter_rlc_ratio": np.asarray(f_rlc)}
    return sp, extra


def _fixed(res, network, arch):
    raw = res.raw
    return FixedMapping(network=network, arch=arch,
                        counts={k: np.asarray(raw[k][0], np.float64) for k in COUNT_KEYS},
                        first=np.asarray(network.arrays().first, bool),
                        mapping={k: np.asarray(raw[f"map_{k}"][0]) for k in res.mapping_keys},
                        feasible=np.asarray(raw["feasible"][0]), objective=res.objective,
                        word_bits=float(np.asarray(arch.word_bits).reshape(-1)[0]))


@dataclasses.dataclass
class Estimate:
    """Per-layer energies of one model state (`table`) and what predicts the next step's saving:
    the mapping and counts each v1 energy model chose (`fixed`), the measured sparsity terms, and
    the measured `Sparsity` (for v2's what-if evaluations)."""

    table: pd.DataFrame
    fixed: dict
    terms: dict
    weight_density: np.ndarray
    arch: object
    sparsity: object = None
    network: object = None
    arch_v2: object = None

    def predicted_energy(self, model: str, layer: int, weight_density: float) -> float:
        """v1 models: layer energy at the fixed mapping if its weight density became
        `weight_density`, by the smooth model of `eyejax.codesign.differentiable`: gated MACs scale
        with the weight density (v1_cvpr17) and filters compress at the i.i.d. RLC ratio
        (soft-capped); v1 ignores weights."""
        terms = {k: jnp.asarray(v) for k, v in self.terms[model].items()}
        if model == "v1_cvpr17":
            x0 = float(self.weight_density[layer])
            g = terms["mac_density"][layer] * (weight_density / x0 if x0 > 0 else 0.0)
            terms["mac_density"] = terms["mac_density"].at[layer].set(g)
            terms["filter_ratio"] = terms["filter_ratio"].at[layer].set(
                soft_cap(expected_rlc_ratio(weight_density)))
        out = layer_costs(self.fixed[model], terms, arch_params(self.arch))
        return float(out["energy"][layer])

    def predicted_saving(self, model: str, layer: int, weight_density: float) -> float:
        return self.predicted_savings(model, {layer: weight_density})[layer]

    def predicted_savings(self, model: str, targets: dict) -> dict:
        """{layer index: energy saved if that layer's weight density became targets[layer]}.

        v1 models: the smooth model at the fixed mapping (`predicted_energy`). v2: what-if
        evaluations of the v2 model (mapping searched again), one batched call for all targets:
        the measured sparsity with that layer's weight density replaced (its ifmap zeros unchanged).
        """
        if model != "v2":
            out = {}
            for layer, x in targets.items():
                x0 = float(self.weight_density[layer])
                out[layer] = (self.predicted_energy(model, layer, x0)
                              - self.predicted_energy(model, layer, x))
            return out

        idx = list(targets)
        L = len(self.weight_density)
        B = max(L, len(idx))            # a fixed batch size: one compile
        rows = (idx + idx[-1:] * B)[:B]
        w = np.tile(np.asarray(self.sparsity.weight_density, np.float64), (B, 1))
        for b, layer in enumerate(rows):
            w[b, layer] = targets[layer]
        sp = jax.tree_util.tree_map(lambda v: np.tile(np.asarray(v, np.float64), (B, 1)),
                                    self.sparsity).replace(weight_density=w)
        arch = self.arch_v2.replace(clock_mhz=np.full(B, int(np.asarray(self.arch_v2.clock_mhz))))
        e = evaluate(arch, self.network, sp).arrays()["energy"]
        base = self.table["energy_v2"].to_numpy()
        return {layer: float(base[layer] - e[b, layer]) for b, layer in enumerate(idx)}


def layer_energies(arch, network, sp, extra, arch_v2=None) -> Estimate:
    """Per-layer energy under each energy model, latency and the sparsity inputs (`Estimate.table`:
    one row per layer). v2 columns (`energy_v2`, `latency_ms_v2`) when `arch_v2` is given."""
    arch = jax.tree_util.tree_map(lambda x: np.asarray(x).reshape(()) if np.ndim(x) else x, arch)
    res_v1 = evaluate(arch, network, sp)
    a1 = res_v1.arrays()
    sp_c = sp.replace(mac_density=np.asarray(extra["pair_density"]))
    res_c = evaluate(arch, network, sp_c)
    ac = res_c.arrays()
    dram = float(np.asarray(arch.energy.dram))
    filt_words = np.ceil(ac["dram_filter_reads"][0] * extra["filter_rlc_ratio"])
    e_c = ac["energy"][0] - ac["energy_dram_filter"][0] + dram * filt_words
    df = pd.DataFrame({
        "layer": network.names,
        "macs": a1["macs"][0],
        "energy_v1": a1["energy"][0],
        "energy_v1_cvpr17": e_c,
        "latency_ms": a1["latency_ms"][0],
        "feasible": a1["feasible"][0] & ac["feasible"][0],
        "iact_density": np.asarray(sp.iact_density),
        "mac_density": np.asarray(sp.mac_density),
        "weight_density": extra["weight_density"],
        "pair_density": extra["pair_density"],
        "ifmap_rlc_ratio": np.asarray(sp.ifmap_rlc_ratio),
        "ofmap_rlc_ratio": np.asarray(sp.ofmap_rlc_ratio),
        "filter_rlc_ratio": extra["filter_rlc_ratio"],
    })
    for k in ("energy_dram", "energy_glb", "energy_noc", "energy_rf", "energy_alu"):
        df[f"v1_{k}"] = a1[k][0]
    if arch_v2 is not None:
        a2 = evaluate(arch_v2, network, sp).arrays()
        df["energy_v2"] = a2["energy"][0]
        df["latency_ms_v2"] = a2["latency_ms"][0]
        df["feasible"] &= a2["feasible"][0]
        for k in ("energy_dram", "energy_glb", "energy_noc", "energy_rf", "energy_alu"):
            df[f"v2_{k}"] = a2[k][0]
    first = np.asarray(network.arrays().first, bool)
    base = {"ifmap_ratio": np.where(first, 1.0, np.asarray(sp.ifmap_rlc_ratio)),
            "ofmap_ratio": np.asarray(sp.ofmap_rlc_ratio)}
    terms = {"v1": {**base, "mac_density": np.asarray(sp.mac_density),
                    "filter_ratio": np.ones(len(first))},
             "v1_cvpr17": {**base, "mac_density": np.asarray(extra["pair_density"]),
                           "filter_ratio": np.asarray(extra["filter_rlc_ratio"])}}
    fixed = {"v1": _fixed(res_v1, network, arch), "v1_cvpr17": _fixed(res_c, network, arch)}
    return Estimate(table=df, fixed=fixed, terms=terms,
                    weight_density=np.asarray(extra["weight_density"]), arch=arch, sparsity=sp,
                    network=network, arch_v2=arch_v2)


def default_v2(arch):
    """The Eyeriss v2 chip with the v1 configuration's energy table."""
    table = jax.tree_util.tree_map(lambda x: np.asarray(x).reshape(()) if np.ndim(x) else x,
                                   arch.energy)
    return EyerissV2(energy=table)


class EnergyEstimator:
    """Per-layer energy of a DigitsCNN's parameters on an architecture (see `layer_energies`)."""

    def __init__(self, module, params0, arch, images, hw_batch: int, models=None, arch_v2=None):
        self.module = module
        self.arch = arch
        self.models = tuple(models or ENERGY_MODELS)
        if "v2" not in self.models:
            arch_v2 = None
        elif arch_v2 is None:
            arch_v2 = default_v2(arch)
        self.arch_v2 = arch_v2
        self.images = np.asarray(images)
        self.net_sparsity = hardware_network(module, params0, batch=len(self.images))
        self.net_hw = hardware_network(module, params0, batch=hw_batch)
        self.hw_batch = hw_batch

    def __call__(self, params) -> Estimate:
        sp, extra = measure_sparsity(self.module, params, self.images, self.net_sparsity)
        est = layer_energies(self.arch, self.net_hw, sp, extra, self.arch_v2)
        for m in self.models:
            est.table[f"energy_{m}_per_image"] = est.table[f"energy_{m}"] / self.hw_batch
        return est
