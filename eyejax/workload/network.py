"""A network: an ordered, named tuple of validated layers."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from eyejax.workload.layer import Layer, LayerArrays, LayerType, WorkloadError, parse_layer_type


@dataclasses.dataclass(frozen=True, repr=False)
class Network:
    """Layers in execution order. Layer names are unique, so a layer can be looked up by name.

    Every layer was validated when it was built (Layer.__post_init__); the network itself only checks
    that it has layers and that their names are unique.
    """

    name: str
    layers: tuple[Layer, ...]

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise WorkloadError(f"network name must be a non-empty string, got {self.name!r}")
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise WorkloadError(f"network {self.name!r} has no layers")
        seen = set()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise WorkloadError(
                    f"network {self.name!r}: item {i} is a {type(layer).__name__}, not a Layer")
            if layer.name in seen:
                raise WorkloadError(
                    f"network {self.name!r}: duplicate layer name {layer.name!r} (item {i})")
            seen.add(layer.name)

    # Container protocol --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __contains__(self, item) -> bool:
        if isinstance(item, str):
            return any(l.name == item for l in self.layers)
        return item in self.layers

    def __getitem__(self, key: int | str) -> Layer:
        """A layer by position (negative allowed) or by name."""
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyError(f"network {self.name!r} has no layer named {key!r}; layers: "
                           f"{', '.join(self.names)}")
        if isinstance(key, bool) or not hasattr(key, "__index__"):
            raise TypeError(f"network layers are indexed by int or name, not {type(key).__name__}")
        return self.layers[key]

    def __repr__(self) -> str:
        return f"Network(name={self.name!r}, {len(self)} layers, {self.macs:,} MACs)"

    # Derived -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [l.name for l in self.layers]

    @property
    def macs(self) -> int:
        """Total MACs of all layers, for the whole batch (each layer's own N)."""
        return sum(l.macs for l in self.layers)

    def arrays(self) -> LayerArrays:
        """The layers as int64 arrays of shape [L]; the first layer is marked `first`."""
        return LayerArrays.from_layers(self.layers)

    # Copies --------------------------------------------------------------------------------
    def with_batch(self, n: int) -> "Network":
        """A copy with every layer's N replaced by `n`."""
        if isinstance(n, bool) or not hasattr(n, "__index__") or int(n) < 1:
            raise WorkloadError(f"network {self.name!r}: batch must be an integer >= 1, got {n!r}")
        return Network(self.name, tuple(l.replace(N=int(n)) for l in self.layers))

    def select(self, types: Iterable[str | LayerType] | str | LayerType = ("CONV",)) -> "Network":
        """A copy keeping only the layers of the given types, in order."""
        if isinstance(types, (str, LayerType)):
            types = (types,)
        wanted = {parse_layer_type(f"<select on {self.name}>", t) for t in types}
        kept = tuple(l for l in self.layers if l.type in wanted)
        if not kept:
            raise WorkloadError(
                f"network {self.name!r} has no layers of type "
                f"{', '.join(sorted(t.value for t in wanted))}")
        return Network(self.name, kept)

    def conv_only(self) -> "Network":
        """All convolution layers (CONV and DWCONV), FC layers dropped."""
        return self.select((LayerType.CONV, LayerType.DWCONV))
