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

Energy models ``v1``, ``v1_cvpr17`` and ``v2``: see `eyejax.codesign.energy`. The ``v2`` one runs on
the Eyeriss v2 chip by default (`arch_v2` in conf/prune.yaml; from Python, the chip with the v1
energy table). `energy_model` picks the one that ranks the layers; `energy_models` the ones reported.

Training is `eyejax.codesign.training`, the energy estimates `eyejax.codesign.energy`; `run_pruning`
returns everything as a `PruningResult` (DataFrames). The command ``eyejax-prune`` (Hydra,
conf/prune.yaml; `eyejax.app.prune`) writes it to files and plots and logs it to W&B.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.codesign import data as data_mod
from eyejax.codesign.energy import ENERGY_MODELS, EnergyEstimator
from eyejax.codesign.models import LAYERS, DigitsCNN
from eyejax.codesign.training import Trainer, dense_masks

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
        avail = ENERGY_MODELS
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
