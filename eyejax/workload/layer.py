"""One DNN layer: its shape, validation, and the array form the batched model consumes."""
from __future__ import annotations

import dataclasses
from enum import Enum

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class LayerType(str, Enum):
    CONV = "CONV"
    DWCONV = "DWCONV"
    FC = "FC"


class WorkloadError(ValueError):
    """A layer or network that cannot describe a valid convolution."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """Shape of one layer, conventions of shared/reference/layers/README.md.

    C and M are total channels, groups follow the PyTorch convention, H×W is the unpadded input and
    pad is per side. An FC layer uses H=R and W=S.
    """

    name: str
    type: LayerType
    N: int
    C: int
    M: int
    H: int
    W: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    groups: int = 1

    def __post_init__(self):
        object.__setattr__(self, "type", parse_layer_type(self.name, self.type))
        for f in ("N", "C", "M", "H", "W", "R", "S", "stride", "pad", "groups"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise WorkloadError(f"layer {self.name!r}: field {f} must be an integer, got {v!r}")
            object.__setattr__(self, f, int(v))
        validate_layer(self)

    # Derived shape -------------------------------------------------------------------------
    @property
    def E(self) -> int:
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def F(self) -> int:
        return (self.W + 2 * self.pad - self.S) // self.stride + 1

    @property
    def macs(self) -> int:
        return self.N * self.M * self.E * self.F * self.R * self.S * (self.C // self.groups)

    def replace(self, **changes) -> "Layer":
        return dataclasses.replace(self, **changes)

    def as_row(self, first: bool = True) -> "LayerArrays":
        """This layer as one LayerArrays row (scalar leaves; stride, pad, groups become U, P, G),
        the form the dataflow models take. `first`: the layer is a network's first (its input,
        the image, is not RLC-compressed); a lone layer is its own network's first, as in
        LayerArrays.from_layers([layer])."""
        rows = LayerArrays.from_layers([self], first_index=0 if first else -1)
        return jax.tree_util.tree_map(lambda a: a[0], rows)


def parse_layer_type(name: str, t) -> LayerType:
    """`t` (a LayerType or its name, any case) as a LayerType; WorkloadError naming the layer
    `name` and the allowed types otherwise."""
    try:
        return LayerType(str(t.value if isinstance(t, LayerType) else t).upper())
    except ValueError:
        allowed = ", ".join(x.value for x in LayerType)
        raise WorkloadError(f"layer {name!r}: field type is {t!r}; allowed: {allowed}") from None


def validate_layer(layer: Layer) -> None:
    """Raise WorkloadError naming the layer, the field and the allowed range."""
    n = layer.name
    for f in ("N", "C", "M", "H", "W", "R", "S", "stride", "groups"):
        if getattr(layer, f) < 1:
            raise WorkloadError(f"layer {n!r}: field {f} = {getattr(layer, f)} must be >= 1")
    if layer.pad < 0 or layer.pad >= min(layer.R, layer.S):
        # A pad as large as the filter only adds outputs computed from padding alone.
        raise WorkloadError(
            f"layer {n!r}: field pad = {layer.pad} must be in [0, {min(layer.R, layer.S) - 1}] "
            f"(0 <= pad < min(R, S))")
    if layer.R > layer.H + 2 * layer.pad:
        raise WorkloadError(
            f"layer {n!r}: field R = {layer.R} must be <= padded input height H+2*pad = "
            f"{layer.H + 2 * layer.pad}")
    if layer.S > layer.W + 2 * layer.pad:
        raise WorkloadError(
            f"layer {n!r}: field S = {layer.S} must be <= padded input width W+2*pad = "
            f"{layer.W + 2 * layer.pad}")
    if layer.C % layer.groups:
        raise WorkloadError(
            f"layer {n!r}: field C = {layer.C} must be divisible by groups = {layer.groups}")
    if layer.M % layer.groups:
        raise WorkloadError(
            f"layer {n!r}: field M = {layer.M} must be divisible by groups = {layer.groups}")
    if layer.type is LayerType.DWCONV and not (layer.groups == layer.C == layer.M):
        raise WorkloadError(
            f"layer {n!r}: a DWCONV needs groups = C = M, got groups={layer.groups}, C={layer.C}, "
            f"M={layer.M}")
    if layer.type is LayerType.FC and (layer.H != layer.R or layer.W != layer.S or layer.pad):
        raise WorkloadError(
            f"layer {n!r}: an FC layer needs H = R, W = S and pad = 0 (got H={layer.H}, R={layer.R}, "
            f"W={layer.W}, S={layer.S}, pad={layer.pad})")


@struct.dataclass
class LayerArrays:
    """Layers as int64 arrays of shape [L] (or scalars for one layer): the model's input.

    `first` marks a network's first layer, whose input (the image) is not RLC-compressed.
    """

    N: jnp.ndarray
    C: jnp.ndarray
    M: jnp.ndarray
    H: jnp.ndarray
    W: jnp.ndarray
    R: jnp.ndarray
    S: jnp.ndarray
    U: jnp.ndarray
    P: jnp.ndarray
    G: jnp.ndarray
    first: jnp.ndarray

    @staticmethod
    def from_layers(layers, first_index: int = 0) -> "LayerArrays":
        """Stack `layers` (workload.Layer) into [L] arrays; layer `first_index` gets first=True."""
        cols = {k: [] for k in ("N", "C", "M", "H", "W", "R", "S", "U", "P", "G", "first")}
        for i, l in enumerate(layers):
            for k, v in (("N", l.N), ("C", l.C), ("M", l.M), ("H", l.H), ("W", l.W), ("R", l.R),
                         ("S", l.S), ("U", l.stride), ("P", l.pad), ("G", l.groups),
                         ("first", i == first_index)):
                cols[k].append(v)
        arr = {k: np.asarray(v, dtype=np.bool_ if k == "first" else np.int64) for k, v in cols.items()}
        return LayerArrays(**arr)

    @property
    def num_layers(self) -> int:
        return int(np.shape(self.N)[0]) if np.ndim(self.N) else 1
