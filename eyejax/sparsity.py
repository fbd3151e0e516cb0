"""Per-layer sparsity of a workload as a sweepable pytree.

Densities are fractions of non-zero values. The model consumes three derived numbers per layer:
`mac_density` (fraction of MACs whose ifmap operand is non-zero: zero gating skips the others'
filter-RF reads and MACs) and the RLC size ratios of the ifmap read from and the ofmap written to
DRAM. From densities they are expectations for i.i.d. zeros; from real tensors they are exact.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from eyejax.sparse.gating import nonzero_mac_fraction
from eyejax.sparse.rlc import expected_rlc_ratio, rlc_ratio


class SparsityError(ValueError):
    pass


def _per_layer(name, value, num_layers):
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(num_layers, float(v))
    if v.shape != (num_layers,):
        raise SparsityError(f"sparsity.{name} must be a scalar or a list of {num_layers} per-layer "
                            f"values, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
        raise SparsityError(f"sparsity.{name} must be in [0, 1], got {v[(v < 0) | (v > 1) | ~np.isfinite(v)][:3]}")
    return v


def _check_leaves(sp) -> None:
    """Every leaf of a concrete Sparsity is finite and in [0, 1] (densities and RLC size ratios,
    capped at 1). Leaves that are tracers (inside jit/vmap) or placeholders (None, in-axes specs of
    jax.tree_util.tree_map) are not values, and then nothing is checked."""
    import dataclasses

    vals = {}
    for f in dataclasses.fields(sp):
        v = getattr(sp, f.name)
        if v is None or isinstance(v, jax.core.Tracer):
            return
        try:
            vals[f.name] = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            return
    for name, v in vals.items():
        bad = ~np.isfinite(v) | (v < 0) | (v > 1)
        if np.any(bad):
            raise SparsityError(f"Sparsity.{name} must be finite and in [0, 1], got "
                                f"{v[bad].ravel()[:3].tolist()}")


@struct.dataclass
class Sparsity:
    """Leaves are [L] arrays (one value per layer), or [B, L] when swept."""

    iact_density: jnp.ndarray
    weight_density: jnp.ndarray
    ofmap_density: jnp.ndarray
    mac_density: jnp.ndarray
    ifmap_rlc_ratio: jnp.ndarray
    ofmap_rlc_ratio: jnp.ndarray

    def __post_init__(self):
        _check_leaves(self)

    @staticmethod
    def dense(num_layers: int) -> "Sparsity":
        return Sparsity.from_densities(num_layers)

    @staticmethod
    def from_densities(num_layers: int, iact=1.0, weight=1.0, ofmap=None) -> "Sparsity":
        """Expected behaviour for i.i.d. zeros. `ofmap` defaults to the next layer's iact density
        (the last layer's own iact density)."""
        ia = _per_layer("iact_density", iact, num_layers)
        w = _per_layer("weight_density", weight, num_layers)
        if ofmap is None:
            of = np.append(ia[1:], ia[-1]) if num_layers else ia
        else:
            of = _per_layer("ofmap_density", ofmap, num_layers)
        ratio = lambda d: np.minimum(np.asarray(expected_rlc_ratio(jnp.asarray(d))), 1.0)
        return Sparsity(iact_density=ia, weight_density=w, ofmap_density=of, mac_density=ia,
                        ifmap_rlc_ratio=ratio(ia), ofmap_rlc_ratio=ratio(of))

    @staticmethod
    def from_tensors(network, ifmaps, weights=None, ofmaps=None) -> "Sparsity":
        """Exact per-layer sparsity from real tensors (e.g. a pruned model's weights and the
        activations it produced on real data).

        ifmaps: one NCHW (unpadded) input per layer. weights: one [M, C/G, R, S] array per layer, or
        None (dense). ofmaps: one NCHW output per layer, or None to use the next layer's ifmap (the
        last layer uses its own output density = its ifmap density). mac_density is the exact
        fraction of MACs whose ifmap operand is non-zero (padding counts as zero); the RLC ratios
        come from encoding the tensors themselves (capped at 1: raw transfer when RLC would expand).
        """
        layers = list(network.layers)
        L = len(layers)
        if len(ifmaps) != L:
            raise SparsityError(f"from_tensors needs one ifmap per layer ({L}), got {len(ifmaps)}")
        ia, mac, if_r, w_d, of_r, of_d = [], [], [], [], [], []
        for i, (layer, x) in enumerate(zip(layers, ifmaps)):
            x = jnp.asarray(x)
            want = (layer.N, layer.C, layer.H, layer.W)
            if tuple(x.shape) != want:
                raise SparsityError(f"ifmap of layer {layer.name!r} has shape {tuple(x.shape)}, expected NCHW {want}")
            ia.append(float(jnp.mean(x != 0)))
            mac.append(float(nonzero_mac_fraction(x, layer.R, layer.S, layer.stride, layer.pad)))
            if_r.append(min(float(rlc_ratio(x)), 1.0))
            if weights is not None:
                w_d.append(float(jnp.mean(jnp.asarray(weights[i]) != 0)))
            if ofmaps is not None:
                y = jnp.asarray(ofmaps[i])
            else:
                y = jnp.asarray(ifmaps[i + 1]) if i + 1 < L else x
            of_d.append(float(jnp.mean(y != 0)))
            of_r.append(min(float(rlc_ratio(y)), 1.0))
        arr = lambda v: np.asarray(v, dtype=np.float64)
        return Sparsity(iact_density=arr(ia), weight_density=arr(w_d) if weights is not None else np.ones(L),
                        ofmap_density=arr(of_d), mac_density=arr(mac), ifmap_rlc_ratio=arr(if_r),
                        ofmap_rlc_ratio=arr(of_r))

    @property
    def num_layers(self) -> int:
        return int(np.shape(self.iact_density)[-1])
