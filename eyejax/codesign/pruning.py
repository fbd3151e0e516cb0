"""Energy-aware pruning (CVPR17, eyeriss.md §5) of a small Flax CNN on scikit-learn's digits.

The loop (`energy_aware_pruning`):

1. Train the dense CNN (`eyejax.codesign.models.DigitsCNN`); its validation accuracy minus
   `max_acc_drop` is the accuracy budget.
2. Estimate every layer's energy with eyejax from the model's *real* sparsity: the layers' ifmaps,
   ofmaps and filters on `sparsity_images` validation images go through `Sparsity.from_tensors`
   (exact zero-gating fraction and RLC ratios) and the network is evaluated on the architecture with
   batch `hw_batch`.
3. Pick the active layer with the highest energy, prune a further `step_fraction` of its remaining
   weights by magnitude (a per-layer threshold), fine-tune all layers (`finetune_epochs`, masks held).
4. Keep the step if the validation accuracy stays within the budget; otherwise restore the model,
   halve that layer's step, and retire the layer once its step falls below `min_step_fraction`.
5. Repeat for `steps` steps or until every layer is retired.

The baseline (`magnitude_pruning`) is magnitude-based pruning with one global threshold over all
layers (Han et al.), run with the same steps, step fractions, fine-tuning and accuracy budget.
Both end at the sparsest model they found within the budget; their energies are compared there.

Energy models (see `eyejax.codesign.differentiable`): every estimate is reported under each of
* ``v1``: the Eyeriss v1 chip as built: zero ifmaps gated, fmaps RLC-compressed to/from DRAM; it
  does not exploit weight zeros, so weight pruning only pays through the sparser activations it
  causes downstream;
* ``v1_cvpr17``: the same mapping and counts costed as CVPR17 estimates energy: a MAC (and its
  filter-RF read) is skipped when either operand is zero, measured exactly on the tensors as the
  fraction of (ifmap, weight) pairs that are both non-zero, and filters also move RLC-compressed
  (their exact RLC ratio) between DRAM and the array.
* ``v2``: Eyeriss v2 (RS+ on the HM-NoC, CSC-compressed sparse PEs, `eyejax.dataflow.rs_plus`), the
  chip by default (`arch_v2` in conf/prune.yaml; from Python, the chip with the v1 energy table):
  iacts and weights stay CSC-compressed from DRAM to the PE and only non-zero × non-zero MACs run
  (the v2 model takes the measured iact, weight and ofmap densities and the exact non-zero-ifmap
  MAC fraction). Reported when the installed eyejax has the v2 dataflow.
`energy_model` picks the one that ranks the layers; `energy_models` the ones reported.

Entry point: ``eyejax-prune`` (Hydra, conf/prune.yaml), writing `steps.parquet` (one row per method
× step × layer), `summary.parquet` (per method × step), CSV copies, `pruning.md` and PNG plots into
the Hydra run directory, and an offline W&B run.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from eyejax.codesign import data as data_mod
from eyejax.codesign.models import LAYERS, DigitsCNN, hardware_network, layer_tensors

ENERGY_MODELS = ("v1", "v1_cvpr17", "v2")


def available_energy_models() -> tuple:
    """The energy models this installation can evaluate (every one: v2 runs on Eyeriss v2)."""
    return ENERGY_MODELS
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    seed: int = 0
    conv_features: tuple = (8, 16)
    hidden: int = 32
    epochs: int = 30                  # dense training
    batch_size: int = 64
    lr: float = 1e-2
    finetune_lr: float = 3e-3
    steps: int = 16                   # pruning steps per method (kept or undone)
    finetune_epochs: int = 3
    max_acc_drop: float = 0.01        # budget: validation accuracy >= dense - max_acc_drop
    step_fraction: float = 0.5        # prune this fraction of the remaining weights per step
    min_step_fraction: float = 0.05   # retire a layer (or stop, for the baseline) below this step
    energy_model: str = "v2"          # ranks the layers
    energy_models: tuple | None = None  # reported (None: every available one)
    methods: tuple = ("energy_aware", "energy_saving", "magnitude")
    layers: tuple = LAYERS            # prunable layers
    hw_batch: int = 4                 # batch N of the accelerator model
    sparsity_images: int = 128        # validation images whose activations give the sparsity
    val_fraction: float = 0.2
    test_fraction: float = 0.2

    def __post_init__(self):
        check_prune_fields(self)
        avail = available_energy_models()
        models = avail if self.energy_models is None else tuple(self.energy_models)
        bad = [m for m in models if m not in avail]
        if bad or not models:
            raise ValueError(f"prune.energy_models must be a non-empty subset of {avail}, got "
                             f"{self.energy_models}")
        if self.energy_model not in models:
            raise ValueError(f"prune.energy_model must be one of {models}, got {self.energy_model!r}")
        object.__setattr__(self, "energy_models", models)
        if not self.methods or set(self.methods) - set(METHODS):
            raise ValueError(f"prune.methods must be a non-empty subset of {sorted(METHODS)}, "
                             f"got {self.methods}")
        bad = set(self.layers) - set(LAYERS)
        if bad or not self.layers:
            raise ValueError(f"prune.layers must be a non-empty subset of {LAYERS}, got {self.layers}")
        if not 0 < self.step_fraction < 1 or not 0 < self.min_step_fraction <= self.step_fraction:
            raise ValueError("need 0 < prune.min_step_fraction <= prune.step_fraction < 1")
        for k in ("epochs", "batch_size", "hw_batch", "sparsity_images"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k} must be >= 1")
        if self.steps < 0 or self.finetune_epochs < 0 or not 0 <= self.max_acc_drop < 1:
            raise ValueError("need steps >= 0, finetune_epochs >= 0, 0 <= max_acc_drop < 1")


# the config key of each PruneConfig field (conf/prune.yaml groups), for error messages
FIELD_KEYS = {"seed": "seed", "conv_features": "model.conv_features", "hidden": "model.hidden",
              "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr",
              "val_fraction": "data.val_fraction", "test_fraction": "data.test_fraction"}
DIGITS_IMAGES = 1797  # scikit-learn's digits (eyejax.codesign.data)


def check_prune_fields(c: "PruneConfig") -> None:
    """Types and ranges of every numeric setting, before any work; errors name the config key."""
    import numbers

    key = lambda f: FIELD_KEYS.get(f, f"prune.{f}")

    def integer(f, lo, hi=2**31 - 1):
        v = getattr(c, f)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
            raise ValueError(f"{key(f)} must be an integer in [{lo}, {hi}], got {v!r}")

    def real(f, lo, hi, lo_open=False, hi_open=False):
        v = getattr(c, f)
        ok = (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
              and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi))
        if not ok:
            rng = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
            raise ValueError(f"{key(f)} must be a finite number in {rng}, got {v!r}")

    integer("seed", 0, 2**32 - 1)
    for f in ("hidden", "epochs", "batch_size", "hw_batch", "sparsity_images"):
        integer(f, 1)
    for f in ("steps", "finetune_epochs"):
        integer(f, 0)
    feats = c.conv_features
    if (isinstance(feats, (str, bytes)) or not hasattr(feats, "__len__") or len(feats) != 2
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                   for v in feats)):
        raise ValueError(f"model.conv_features must be two integers >= 1 (conv1, conv2 channels), "
                         f"got {feats!r}")
    for f in ("lr", "finetune_lr"):
        real(f, 0, 1e3, lo_open=True)
    real("max_acc_drop", 0, 1, hi_open=True)
    real("step_fraction", 0, 1, lo_open=True, hi_open=True)
    real("min_step_fraction", 0, 1, lo_open=True, hi_open=True)
    for f in ("val_fraction", "test_fraction"):
        real(f, 0, 1, lo_open=True, hi_open=True)
        if round(DIGITS_IMAGES * getattr(c, f)) < 1:
            raise ValueError(f"{key(f)} = {getattr(c, f)} leaves no image of the {DIGITS_IMAGES} "
                             f"for that split")
    if c.val_fraction + c.test_fraction > 0.9:
        raise ValueError(f"data.val_fraction + data.test_fraction must be at most 0.9 (the rest "
                         f"trains), got {c.val_fraction} + {c.test_fraction}")


# --------------------------------------------------------------------------------------------------
# training with masks


def apply_masks(params, masks):
    out = dict(params)
    for name, m in masks.items():
        out[name] = {**params[name], "kernel": params[name]["kernel"] * m}
    return out


def dense_masks(params, layers=LAYERS):
    return {n: jnp.ones_like(params[n]["kernel"]) for n in layers}


class Trainer:
    """Adam on cross-entropy; one jitted epoch (lax.scan over shuffled mini-batches), masks held."""

    def __init__(self, module: DigitsCNN, batch_size: int):
        self.module = module
        self.batch_size = batch_size
        self._epochs = {}

        def loss_fn(params, x, y):
            logits = module.apply({"params": params}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        self.loss_fn = loss_fn
        self._logits = jax.jit(lambda p, x: module.apply({"params": p}, x))

    def _epoch_fn(self, lr):
        if lr in self._epochs:
            return self._epochs[lr]
        tx = optax.adam(lr)
        loss_fn = self.loss_fn

        @jax.jit
        def epoch(params, opt_state, masks, xb, yb):
            def step(carry, xy):
                p, o = carry
                loss, g = jax.value_and_grad(loss_fn)(p, *xy)
                g = apply_masks(g, masks)
                upd, o = tx.update(g, o, p)
                p = apply_masks(optax.apply_updates(p, upd), masks)
                return (p, o), loss
            (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (xb, yb))
            return params, opt_state, losses.mean()

        self._epochs[lr] = (tx, epoch)
        return tx, epoch

    def fit(self, params, masks, split: data_mod.Split, epochs: int, lr: float, key):
        tx, epoch = self._epoch_fn(lr)
        params = apply_masks(params, masks)
        opt_state = tx.init(params)
        n = len(split) // self.batch_size * self.batch_size
        x, y = jnp.asarray(split.x), jnp.asarray(split.y)
        for _ in range(epochs):
            key, sub = jax.random.split(key)
            perm = jax.random.permutation(sub, len(split))[:n]
            xb = x[perm].reshape((-1, self.batch_size) + x.shape[1:])
            yb = y[perm].reshape((-1, self.batch_size))
            params, opt_state, _ = epoch(params, opt_state, masks, xb, yb)
        return params, key

    def accuracy(self, params, split: data_mod.Split) -> float:
        logits = self._logits(params, jnp.asarray(split.x))
        return float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(split.y)))


# --------------------------------------------------------------------------------------------------
# sparsity and energy of the real model


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
    from eyejax.sparse.rlc import rlc_ratio
    from eyejax.sparsity import Sparsity

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
    from eyejax.codesign.differentiable import FixedMapping
    from eyejax.dataflow.mapping import COUNT_KEYS

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
        from eyejax.codesign.differentiable import arch_params, layer_costs, soft_cap
        from eyejax.sparse.rlc import expected_rlc_ratio

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
        from eyejax.evaluate import evaluate

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
    from eyejax.evaluate import evaluate

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
    from eyejax.arch.eyeriss_v2 import EyerissV2

    table = jax.tree_util.tree_map(lambda x: np.asarray(x).reshape(()) if np.ndim(x) else x,
                                   arch.energy)
    return EyerissV2(energy=table)


class EnergyEstimator:
    """Per-layer energy of a DigitsCNN's parameters on an architecture (see `layer_energies`)."""

    def __init__(self, module, params0, arch, images, hw_batch: int, models=None, arch_v2=None):
        self.module = module
        self.arch = arch
        self.models = tuple(models or available_energy_models())
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


# --------------------------------------------------------------------------------------------------
# pruning


def prune_to(kernel, fraction: float):
    """Mask keeping all but the floor(fraction·size) smallest-magnitude weights (zeros go first)."""
    w = np.abs(np.asarray(kernel)).ravel()
    k = int(math.floor(fraction * w.size + 1e-9))
    mask = np.ones(w.size, np.float32)
    mask[np.argsort(w, kind="stable")[:k]] = 0.0
    return jnp.asarray(mask.reshape(np.shape(kernel)), dtype=jnp.asarray(kernel).dtype)


def prune_global(kernels: dict, fraction: float) -> dict:
    """Masks from one global magnitude threshold over all the given kernels."""
    names = list(kernels)
    flat = np.concatenate([np.abs(np.asarray(kernels[n])).ravel() for n in names])
    k = int(math.floor(fraction * flat.size + 1e-9))
    keep = np.ones(flat.size, np.float32)
    keep[np.argsort(flat, kind="stable")[:k]] = 0.0
    out, start = {}, 0
    for n in names:
        size = int(np.size(kernels[n]))
        out[n] = jnp.asarray(keep[start:start + size].reshape(np.shape(kernels[n])),
                             dtype=jnp.asarray(kernels[n]).dtype)
        start += size
    return out


def pruned_fraction(masks, names) -> float:
    tot = sum(int(np.size(masks[n])) for n in names)
    return 1.0 - sum(float(jnp.sum(masks[n])) for n in names) / tot


@dataclasses.dataclass
class PruneRun:
    method: str
    rows: list            # per (step, layer) dicts
    summary: list         # per step dicts
    params: dict
    masks: dict


def _record(method, step, action, target, kept, est, val_acc, test_acc, masks, rows, summary, t0):
    table = est.table
    for _, r in table.iterrows():
        name = r["layer"]
        row = {"method": method, "step": step, "action": action, "target": target,
               "accepted": kept, "val_acc": val_acc, "test_acc": test_acc,
               "pruned_fraction": 1.0 - float(jnp.mean(masks[name])) if name in masks else 0.0}
        row.update(r.to_dict())
        rows.append(row)
    s = {"method": method, "step": step, "action": action, "target": target, "accepted": kept,
         "val_acc": val_acc, "test_acc": test_acc,
         "pruned_fraction": pruned_fraction(masks, list(masks)),
         "seconds": time.time() - t0}
    for m in ENERGY_MODELS:
        if f"energy_{m}_per_image" not in table:
            continue
        s[f"energy_{m}"] = float(table[f"energy_{m}"].sum())
        s[f"energy_{m}_per_image"] = float(table[f"energy_{m}_per_image"].sum())
    s["latency_ms"] = float(table["latency_ms"].sum())
    summary.append(s)
    return s


# method -> how it picks what to prune
METHODS = {
    "energy_aware": "the active layer with the highest energy (CVPR17 order), per-layer threshold",
    "energy_saving": "the active layer whose step saves the most energy by the smooth model, "
                     "per-layer threshold",
    "magnitude": "one global magnitude threshold over all layers (baseline)",
}


def _pick_layer(method, est, active, frac, step_of, cfg):
    names = list(est.table["layer"])
    col = f"energy_{cfg.energy_model}"
    energy = dict(zip(names, est.table[col]))
    if method == "energy_aware":
        score = {n: energy[n] for n in active}
    else:
        targets = {names.index(n): float(est.weight_density[names.index(n)]) * (1.0 - step_of[n])
                   for n in active}
        saving = est.predicted_savings(cfg.energy_model, targets)
        score = {n: saving[names.index(n)] for n in active}
    # ties (e.g. no saving at all under the v1 chip model): the higher-energy layer first
    return max(active, key=lambda n: (score[n], energy[n], -cfg.layers.index(n)))


def layerwise_pruning(method, trainer, params, split, estimator, cfg: PruneConfig, budget: float,
                      key, logger=None) -> PruneRun:
    """Energy-aware pruning, one layer per step (`METHODS`); see the module docstring."""
    t0 = time.time()
    masks = dense_masks(params, cfg.layers)
    frac = {n: 0.0 for n in cfg.layers}
    step_of = {n: cfg.step_fraction for n in cfg.layers}
    rows, summary = [], []
    est = estimator(params)
    val, test = trainer.accuracy(params, split.val), trainer.accuracy(params, split.test)
    _record(method, 0, "dense", "", True, est, val, test, masks, rows, summary, t0)
    for step in range(1, cfg.steps + 1):
        active = [n for n in cfg.layers if n in step_of]
        if not active:
            break
        name = _pick_layer(method, est, active, frac, step_of, cfg)
        target = 1.0 - (1.0 - frac[name]) * (1.0 - step_of[name])
        new_masks = {**masks, name: prune_to(params[name]["kernel"] * masks[name], target)}
        cand, key = trainer.fit(params, new_masks, split.train, cfg.finetune_epochs,
                                cfg.finetune_lr, key)
        val = trainer.accuracy(cand, split.val)
        kept = val >= budget - 1e-12
        if kept:
            params, masks, frac[name] = cand, new_masks, target
            est = estimator(params)
            test = trainer.accuracy(params, split.test)
        else:
            step_of[name] /= 2.0
            if step_of[name] < cfg.min_step_fraction:
                del step_of[name]
            test = float("nan")
        s = _record(method, step, f"prune {name}", f"{name}:{target:.4f}", kept, est, val, test,
                    masks, rows, summary, t0)
        if logger:
            logger(s)
    return PruneRun(method, rows, summary, params, masks)


def magnitude_pruning(trainer, params, split, estimator, cfg: PruneConfig, budget: float, key,
                      logger=None) -> PruneRun:
    """Baseline: one global magnitude threshold over all prunable layers, same schedule rules."""
    t0 = time.time()
    masks = dense_masks(params, cfg.layers)
    frac, step = 0.0, cfg.step_fraction
    rows, summary = [], []
    est = estimator(params)
    val, test = trainer.accuracy(params, split.val), trainer.accuracy(params, split.test)
    _record("magnitude", 0, "dense", "", True, est, val, test, masks, rows, summary, t0)
    for i in range(1, cfg.steps + 1):
        if step < cfg.min_step_fraction:
            break
        target = 1.0 - (1.0 - frac) * (1.0 - step)
        kern = {n: params[n]["kernel"] * masks[n] for n in cfg.layers}
        new_masks = prune_global(kern, target)
        cand, key = trainer.fit(params, new_masks, split.train, cfg.finetune_epochs,
                                cfg.finetune_lr, key)
        val = trainer.accuracy(cand, split.val)
        kept = val >= budget - 1e-12
        if kept:
            params, masks, frac = cand, new_masks, target
            est = estimator(params)
            test = trainer.accuracy(params, split.test)
        else:
            step /= 2.0
            test = float("nan")
        s = _record("magnitude", i, "prune global", f"global:{target:.4f}", kept, est, val, test,
                    masks, rows, summary, t0)
        if logger:
            logger(s)
    return PruneRun("magnitude", rows, summary, params, masks)


@dataclasses.dataclass
class PruningResult:
    config: PruneConfig
    steps: pd.DataFrame      # one row per method × step × layer
    summary: pd.DataFrame    # one row per method × step
    final: pd.DataFrame      # per layer: dense and each method at its last kept step
    totals: pd.DataFrame     # per method: energies, reductions, accuracies
    dense_val_acc: float
    budget: float
    runs: dict = dataclasses.field(default_factory=dict)


def _final_tables(methods, steps, summary, models):
    last = {m: int(summary[(summary.method == m) & summary.accepted].step.max()) for m in methods}
    first = methods[0]
    dense = steps[(steps.method == first) & (steps.step == 0)].set_index("layer")
    per = {"dense": dense}
    for m in methods:
        per[m] = steps[(steps.method == m) & (steps.step == last[m])].set_index("layer")
    layers = list(dense.index)
    cols = {"layer": layers}
    for tag, df in per.items():
        cols[f"weight_density_{tag}"] = df.loc[layers, "weight_density"].to_numpy()
        for em in models:
            cols[f"energy_{em}_{tag}"] = df.loc[layers, f"energy_{em}_per_image"].to_numpy()
    final = pd.DataFrame(cols)
    trows = []
    for tag in ("dense",) + tuple(methods):
        m = first if tag == "dense" else tag
        st = 0 if tag == "dense" else last[m]
        s = summary[(summary.method == m) & (summary.step == st)].iloc[0]
        r = {"method": tag, "step": st, "val_acc": s.val_acc, "test_acc": s.test_acc,
             "pruned_fraction": s.pruned_fraction}
        for em in models:
            e0 = float(summary[(summary.method == m) & (summary.step == 0)][f"energy_{em}_per_image"].iloc[0])
            r[f"energy_{em}_per_image"] = s[f"energy_{em}_per_image"]
            r[f"reduction_{em}"] = e0 / s[f"energy_{em}_per_image"]
        trows.append(r)
    return final, pd.DataFrame(trows)


def train_dense(cfg: PruneConfig):
    """(module, trainer, split, trained params, key) for the configuration (deterministic)."""
    split = data_mod.load_digits(cfg.seed, cfg.val_fraction, cfg.test_fraction)
    module = DigitsCNN(conv_features=tuple(cfg.conv_features), hidden=cfg.hidden)
    key = jax.random.PRNGKey(cfg.seed)
    key, init_key = jax.random.split(key)
    params = module.init(init_key, jnp.zeros((1, 8, 8, 1), jnp.float32))["params"]
    trainer = Trainer(module, cfg.batch_size)
    params, key = trainer.fit(params, dense_masks(params, cfg.layers), split.train, cfg.epochs,
                              cfg.lr, key)
    return module, trainer, split, params, key


def run_pruning(cfg: PruneConfig | None = None, arch=None, logger=None,
                arch_v2=None) -> PruningResult:
    """Train once, then run every method of `cfg.methods` from the same dense model.

    arch: the Eyeriss v1 configuration (default: the chip); arch_v2: the Eyeriss v2 one of the v2
    estimates (default: the v2 chip with arch's energy table)."""
    from eyejax.arch.eyeriss_v1 import EyerissV1

    cfg = cfg or PruneConfig()
    arch = EyerissV1() if arch is None else arch
    t0 = time.perf_counter()
    log.info(f"training the dense CNN on the digits ({cfg.epochs} epochs, seed {cfg.seed}) ...")
    module, trainer, split, params, key = train_dense(cfg)
    dense_val = trainer.accuracy(params, split.val)
    budget = dense_val - cfg.max_acc_drop
    log.info(f"dense CNN trained in {time.perf_counter() - t0:.0f} s: validation accuracy "
              f"{dense_val:.4f}; the budget is {budget:.4f}")
    images = split.val.x[:cfg.sparsity_images]
    log.info(f"measuring sparsity on {len(images)} validation images and compiling the energy "
              f"models ({', '.join(cfg.energy_models or ENERGY_MODELS)}) ...")
    estimator = EnergyEstimator(module, params, arch, images, cfg.hw_batch, cfg.energy_models,
                                arch_v2)
    runs = {}
    for i, m in enumerate(cfg.methods):
        log.info(f"method {i + 1} of {len(cfg.methods)}: {m} (up to {cfg.steps} pruning steps)")
        k = jax.random.fold_in(key, i)
        if m == "magnitude":
            runs[m] = magnitude_pruning(trainer, params, split, estimator, cfg, budget, k, logger)
        else:
            runs[m] = layerwise_pruning(m, trainer, params, split, estimator, cfg, budget, k, logger)
    steps = pd.DataFrame([r for run in runs.values() for r in run.rows])
    summary = pd.DataFrame([s for run in runs.values() for s in run.summary])
    final, totals = _final_tables(tuple(cfg.methods), steps, summary, cfg.energy_models)
    return PruningResult(config=cfg, steps=steps, summary=summary, final=final, totals=totals,
                         dense_val_acc=dense_val, budget=budget, runs=runs)


# --------------------------------------------------------------------------------------------------
# report: tables, markdown, plots


def _md(df: pd.DataFrame, floatfmt=".4g") -> str:
    cols = list(df.columns)
    fmt = lambda v: (format(v, floatfmt) if isinstance(v, (float, np.floating)) and np.isfinite(v)
                     else ("-" if isinstance(v, (float, np.floating)) else str(v)))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def markdown_report(res: PruningResult, unit: str = "normalized") -> str:
    cfg = res.config
    models = ", ".join(f"`{m}`" for m in cfg.energy_models)
    out = [f"# Energy-aware vs magnitude pruning on digits (energy models {models}, batch "
           f"{cfg.hw_batch})",
           "", "Methods: " + "; ".join(f"`{m}`: {METHODS[m]}" for m in cfg.methods) + ".",
           "",
           f"Dense validation accuracy {res.dense_val_acc:.4f}; budget {res.budget:.4f} "
           f"(drop ≤ {cfg.max_acc_drop}). Layers ranked by `{cfg.energy_model}` energy. "
           f"Energies per image, unit: {unit}.", "",
           "## Result", "", _md(res.totals), "",
           "## Per layer (energy per image at the last kept step)", "", _md(res.final), "",
           "## Per step", "",
           _md(res.summary[["method", "step", "action", "target", "accepted", "val_acc", "test_acc",
                            "pruned_fraction"]
                           + [f"energy_{m}_per_image" for m in cfg.energy_models]]), ""]
    return "\n".join(out)


def plot_report(res: PruningResult, out_dir: str | Path, unit: str = "normalized") -> list[str]:
    """PNG plots: energy and accuracy per step; per-layer energy and density; accuracy against
    energy. Returns the paths. (matplotlib's object API: a notebook's backend is left alone.)"""
    from matplotlib.ticker import MaxNLocator

    from eyejax.plots import new_figure

    out_dir = Path(out_dir)
    paths = []
    s = res.summary
    methods = list(res.config.methods)
    models = list(res.config.energy_models)
    K = len(models)
    unit_txt = "normalized: one MAC = 1" if unit == "normalized" else unit
    budget_label = f"accuracy budget ({res.budget:.3f} = dense - {res.config.max_acc_drop:g})"
    styles = dict(zip(methods, ("o-", "^-", "s--", "d-.")))
    fig, axes = new_figure(1, K + 1, figsize=(4.6 * (K + 1) + 1.5, 4))
    axes = axes[0]
    for m in methods:
        style = styles[m]
        d = s[(s.method == m) & s.accepted]
        for em, ax in zip(models, axes[:K]):
            ax.plot(d.step, d[f"energy_{em}_per_image"], style, label=m)
        axes[K].plot(d.step, d.val_acc, style, label=m)
    for em, ax in zip(models, axes[:K]):
        ax.set(title=f"energy per image, model {em}", xlabel="pruning step (kept steps)",
               ylabel=f"energy per image [{unit_txt}]")
    axes[K].axhline(res.budget, color="k", lw=0.8, ls=":", label=budget_label)
    axes[K].set(title="validation accuracy", xlabel="pruning step (kept steps)",
                ylabel="validation accuracy")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(*axes[K].get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="method")
    p = out_dir / "pruning_steps.png"
    fig.savefig(p, dpi=100)
    paths.append(str(p))

    f = res.final
    x = np.arange(len(f))
    fig, axes = new_figure(1, K + 1, figsize=(4.6 * (K + 1) + 1.5, 4))
    axes = axes[0]
    tags = ["dense"] + methods
    w = 0.8 / len(tags)
    for j, tag in enumerate(tags):
        off = (j - (len(tags) - 1) / 2) * w
        for em, ax in zip(models, axes[:K]):
            ax.bar(x + off, f[f"energy_{em}_{tag}"], w, label=tag)
        axes[K].bar(x + off, f[f"weight_density_{tag}"], w, label=tag)
    for em, ax in zip(models, axes[:K]):
        ax.set(title=f"energy per image by layer, model {em}", xlabel="layer",
               ylabel=f"energy per image [{unit_txt}]")
    axes[K].set(title="weight density by layer", xlabel="layer",
                ylabel="weight density (nonzero fraction)", ylim=(0, 1.05))
    for ax in axes:
        ax.set_xticks(x, f.layer)
    fig.legend(*axes[K].get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="model (last kept step)")
    p = out_dir / "pruning_layers.png"
    fig.savefig(p, dpi=100)
    paths.append(str(p))

    fig, axes = new_figure(1, 1, figsize=(6.4, 4.2))
    ax = axes[0, 0]
    col = f"energy_{res.config.energy_model}_per_image"
    for m in methods:
        d = s[(s.method == m) & s.accepted]
        ax.plot(d[col], d.val_acc, styles[m], label=m)
    d0 = s[(s.method == methods[0]) & (s.step == 0)]
    if len(d0):
        ax.annotate("dense", (float(d0[col].iloc[0]), float(d0.val_acc.iloc[0])),
                    textcoords="offset points", xytext=(-6, 8), ha="right", fontsize=8)
    ax.axhline(res.budget, color="k", lw=0.8, ls=":", label=budget_label)
    ax.set(xlabel=f"energy per image, model {res.config.energy_model} [{unit_txt}]",
           ylabel="validation accuracy", title="accuracy vs energy (every kept step)")
    ax.legend(fontsize=8, loc="best")
    p = out_dir / "pruning_tradeoff.png"
    fig.savefig(p, dpi=100)
    paths.append(str(p))
    return paths


def write_outputs(res: PruningResult, out_dir: str | Path, csv: bool = True, plots: bool = True,
                  unit: str = "normalized") -> list[str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, df in (("steps", res.steps), ("summary", res.summary), ("final", res.final),
                     ("totals", res.totals)):
        df.to_parquet(out_dir / f"{name}.parquet", index=False)
        files.append(str(out_dir / f"{name}.parquet"))
        if csv:
            df.to_csv(out_dir / f"{name}.csv", index=False)
            files.append(str(out_dir / f"{name}.csv"))
    (out_dir / "pruning.md").write_text(markdown_report(res, unit))
    files.append(str(out_dir / "pruning.md"))
    if plots:
        files += plot_report(res, out_dir, unit)
    return files


# --------------------------------------------------------------------------------------------------
# Hydra entry point (conf/prune.yaml)


def config_from_omegaconf(cfg) -> tuple[PruneConfig, object, object]:
    """(PruneConfig, v1 architecture, v2 architecture or None) from the composed Hydra config;
    errors name the key."""
    from omegaconf import OmegaConf

    from eyejax.config import arch_from_config

    arch, swept = arch_from_config(cfg.arch)
    if getattr(arch, "family", None) != "eyeriss_v1":
        raise ValueError("arch must be an Eyeriss v1 configuration (the v2 one is arch_v2)")
    if swept:
        raise ValueError(f"eyejax-prune runs one architecture; arch fields {sorted(swept)} are lists")
    arch_v2 = None
    if cfg.get("arch_v2") is not None:
        arch_v2, swept = arch_from_config(cfg.arch_v2)
        if getattr(arch_v2, "family", None) != "eyeriss_v2":
            raise ValueError("arch_v2 must be an Eyeriss v2 configuration (arch_v2.family=eyeriss_v2)")
        if swept:
            raise ValueError(f"eyejax-prune runs one v2 architecture; arch_v2 fields {sorted(swept)} "
                             "are lists")
    c = OmegaConf.to_container(cfg, resolve=True)
    known = {f.name for f in dataclasses.fields(PruneConfig)}
    flat = {"seed": c.get("seed", 0)}
    extra = set(c) - {"arch", "arch_v2", "seed", "data", "model", "train", "prune", "wandb", "output"}
    if extra:
        raise ValueError(f"unknown top-level key(s) {sorted(extra)}")
    for group in ("data", "model", "train", "prune"):
        for k, v in (c.get(group) or {}).items():
            if k not in known:
                raise ValueError(f"{group}.{k} is not a pruning setting; known: {sorted(known)}")
            flat[k] = tuple(v) if isinstance(v, list) else v
    return PruneConfig(**flat), arch, arch_v2


def _wandb_run(cfg, mode: str):
    from omegaconf import OmegaConf

    from eyejax.logging_wandb import init_wandb

    w = cfg.get("wandb") or {}
    return init_wandb(mode=mode, project=w.get("project", "eyejax"), entity=w.get("entity"),
                      tags=list(w.get("tags") or []) or None, name="prune-digits",
                      job_type="prune", config=OmegaConf.to_container(cfg, resolve=True),
                      dir=os.getcwd())


def run_app(cfg) -> int:
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:
        pcfg, arch, arch_v2 = config_from_omegaconf(cfg)
    except ValueError as exc:
        print(f"eyejax-prune: error: {exc}", file=sys.stderr)
        return 2
    mode = (cfg.get("wandb") or {}).get("mode", "offline")
    if mode not in ("offline", "online", "disabled"):
        print(f"eyejax-prune: error: wandb.mode must be offline, online or disabled, got {mode!r}",
              file=sys.stderr)
        return 2
    wandb = run = None
    if mode != "disabled":
        wandb, run = _wandb_run(cfg, mode)

    def logger(s):
        log.info(f"  {s['method']:>13} step {s['step']:>2} {s['target']:<20} "
                  f"{'kept  ' if s['accepted'] else 'undone'} val {s['val_acc']:.4f}  "
                  + "  E/img " + "  ".join(f"{m} {s[f'energy_{m}_per_image']:.4g}"
                                           for m in ENERGY_MODELS if f"energy_{m}_per_image" in s))
        if run is not None:
            run.log({f"{s['method']}/{k}": v for k, v in s.items()
                     if isinstance(v, (int, float, bool)) and k != "step"}
                    | {f"{s['method']}/step": s["step"]})

    try:
        res = run_pruning(pcfg, arch, logger, arch_v2=arch_v2)
        unit = getattr(arch.energy, "unit", "normalized")
        out = cfg.get("output") or {}
        files = write_outputs(res, os.getcwd(), csv=bool(out.get("csv", True)),
                              plots=bool(out.get("plots", True)), unit=unit)
        log.info("")
        log.info(markdown_report(res, unit))
        log.info("")
        for f in files:
            log.info(f"wrote {f}")
        if run is not None:
            summ = {}
            for _, r in res.totals.iterrows():
                for k, v in r.items():
                    if k != "method":
                        summ[f"{r['method']}/{k}"] = float(v)
            summ["dense_val_acc"] = res.dense_val_acc
            summ["budget"] = res.budget
            run.summary.update(summ)
            tables = {n: wandb.Table(dataframe=df.astype({c: str for c in df.columns
                                                          if df[c].dtype == object}))
                      for n, df in (("steps", res.steps), ("summary", res.summary),
                                    ("final", res.final), ("totals", res.totals))}
            imgs = {Path(f).stem: wandb.Image(f) for f in files if f.endswith(".png")}
            run.log({**tables, **imgs})
            Path(run.dir, "pruning-summary.json").write_text(json.dumps(summ, indent=2) + "\n")
    finally:
        if run is not None:
            run.finish()
    return 0


def main() -> None:
    import hydra

    from eyejax.cli import CONF_PATH  # also registers the --help resolver (eyejax/help.py)

    @hydra.main(version_base=None, config_path=CONF_PATH, config_name="prune")
    def _main(cfg):
        code = run_app(cfg)
        if code:
            sys.exit(code)

    _main()


if __name__ == "__main__":
    main()
