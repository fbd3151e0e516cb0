"""Training the digits CNN with pruning masks held (eyejax.codesign.pruning's fine-tuning).

`Trainer` runs Adam on cross-entropy, one jitted epoch (lax.scan over shuffled mini-batches) at a
time; the masks zero both the gradients and the updated kernels, so pruned weights stay zero.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from eyejax.codesign import data as data_mod
from eyejax.codesign.models import LAYERS, DigitsCNN


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
