"""A small Flax (linen) CNN for 8×8 digits, and its layers as an eyejax Network.

    conv1 3×3, 1→8, SAME, ReLU → conv2 3×3, 8→16, SAME, ReLU → 2×2 max pool
    → flatten (256) → fc1 256→32, ReLU → fc2 32→10

`DigitsCNN(...).apply(variables, x, capture=True)` also returns every layer's input and output
(NHWC for convs, [N, K] for dense layers), which `layer_tensors` turns into the NCHW ifmaps,
ofmaps and [M, C, R, S] filters that `Sparsity.from_tensors` and the pruning loop use.
Pooling and the flatten are not layers of the accelerator model (the pooled tensor is fc1's input).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from eyejax.workload import Network
from eyejax.workload.importers import from_flax

LAYERS = ("conv1", "conv2", "fc1", "fc2")


class DigitsCNN(nn.Module):
    conv_features: tuple = (8, 16)
    hidden: int = 32
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, capture: bool = False):
        io = {}
        f1, f2 = self.conv_features
        h = nn.Conv(f1, (3, 3), padding="SAME", name="conv1")(x)
        h = nn.relu(h)
        io["conv1"] = (x, h)
        h2 = nn.relu(nn.Conv(f2, (3, 3), padding="SAME", name="conv2")(h))
        io["conv2"] = (h, h2)
        p = nn.max_pool(h2, (2, 2), strides=(2, 2)).reshape((x.shape[0], -1))
        h3 = nn.relu(nn.Dense(self.hidden, name="fc1")(p))
        io["fc1"] = (p, h3)
        logits = nn.Dense(self.num_classes, name="fc2")(h3)
        io["fc2"] = (h3, logits)
        return (logits, io) if capture else logits


def kernels(params) -> dict:
    """The prunable weights: {layer: kernel} (biases are not pruned)."""
    return {name: params[name]["kernel"] for name in LAYERS}


def filters_mcrs(kernel) -> np.ndarray:
    """A Flax kernel as the model's [M, C, R, S] filter tensor (conv HWIO, dense [K, M])."""
    k = np.asarray(kernel)
    if k.ndim == 4:
        return k.transpose(3, 2, 0, 1)
    return k.T[:, :, None, None]


def nchw(t) -> np.ndarray:
    t = np.asarray(t)
    return t.transpose(0, 3, 1, 2) if t.ndim == 4 else t[:, :, None, None]


def layer_tensors(module: DigitsCNN, params, x):
    """(ifmaps, ofmaps, filters) per layer, in model layout (NCHW / MCRS), for the batch x."""
    _, io = module.apply({"params": params}, jnp.asarray(x), capture=True)
    ifmaps = [nchw(io[n][0]) for n in LAYERS]
    ofmaps = [nchw(io[n][1]) for n in LAYERS]
    weights = [filters_mcrs(params[n]["kernel"]) for n in LAYERS]
    return ifmaps, ofmaps, weights


def hardware_network(module: DigitsCNN, params, batch: int = 1, name: str = "digits_cnn"):
    """The CNN's conv and dense layers as an eyejax Network with N = batch, traced with the
    workload importer (`eyejax.workload.importers.from_flax`)."""
    x = jnp.zeros((batch, 8, 8, 1), jnp.float32)
    net = from_flax(module, {"params": params}, x, name=name)
    if tuple(net.names) != LAYERS:
        # name the layers by module, whatever scope naming the importer used
        net = Network(name, tuple(l.replace(name=n) for l, n in zip(net.layers, LAYERS)))
    return net
