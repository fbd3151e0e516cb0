"""Bounds that keep the int64 counts exact: checked before any work, in Python integers and floats.

The models count in int64 (``jax_enable_x64``). An int64 overflows silently (it wraps to a negative
or a wrong positive value), so every input is bounded *before* evaluation: a layer, a network or an
architecture whose counts could pass ``COUNT_LIMIT = 2**62`` is refused with a :class:`LimitError`
(a ``ValueError``) naming the layer and the field to reduce. 2**62 leaves a factor of 2 below
int64's 2**63 for what the bound does not see.

The bound. For a layer, let W = MACs + padded ifmap words + filter words + ofmap words (exact Python
integers). Every count a dataflow produces is at most ``ACCESS_FACTOR`` x W x T, where

* ``ACCESS_FACTOR = 16``: no single access count (DRAM, GLB, NoC, RF per data type, passes, active
  PEs, compute and ramp cycles) exceeds 1.6 W on the built-in networks (AlexNet, MobileNet,
  VGG-16; batch 1 and 16) under random Eyeriss v1 and v2 architectures and the ISCA16 designs of
  every dataflow (at most one read of each operand per MAC and level, plus psum reads and writes);
  the largest sum (``rf_accesses``, six counts) is then below 10 W, and 16 covers it.
  ``tests/test_limits.py`` re-checks the measured ratio.
* T, the architecture's factor (per configuration, the largest over a batch):
  - for one layer, T_layer = max(1 + b x clock_mhz, cluster_rows + cluster_cols): the DRAM cycle
    count is formed as bits x clock_mhz before the division by the bus (eyejax.dataflow.cost.dram_cycles), and
    Eyeriss v2's mesh hops are at most the grid's diameter per word;
  - for the network totals (per-layer counts and cycles summed over the layers),
    T_total = max(1 + b x clock_mhz / (dram_bus_bits x dram_clock_mhz), cluster_rows + cluster_cols,
    b), the cycles with DRAM and (v2) router stalls;
  b is the widest word (``word_bits``, or v2's ``max(data_bits, psum_bits)``).

So a layer is refused when 16 x W x T_layer >= 2**62 and a network when the sum over its layers of
16 x W x T_total does. On the Eyeriss v1 chip (T_layer = 3201) a layer may have up to about
9 x 10**13 words of work: VGG-16's largest layer at batch ~ 50,000. Energies are float64 and are not
bounded here; ``eyejax.arch.validation`` range-checks the energy table.
"""
from __future__ import annotations

import numpy as np

COUNT_LIMIT = 1 << 62
ACCESS_FACTOR = 16


class LimitError(ValueError):
    """Inputs whose int64 counts could overflow; the message names the layer and the field."""


def _max(arch, name, default=None):
    v = getattr(arch, name, None)
    if v is None:
        return default
    return float(np.max(np.asarray(v, dtype=np.float64)))


def arch_factors(arch) -> tuple[float, float, str]:
    """(T_layer, T_total, what dominates T_layer) of an architecture (a batch: the largest)."""
    bits = _max(arch, "word_bits")
    if bits is None:
        bits = max(_max(arch, "data_bits", 16.0), _max(arch, "psum_bits", 16.0))
    clock = _max(arch, "clock_mhz", 1.0)
    # the slowest DRAM: the smallest bus x clock of the batch (per configuration would be tighter)
    bus = float(np.min(np.asarray(getattr(arch, "dram_bus_bits", 1), dtype=np.float64)
                       * np.asarray(getattr(arch, "dram_clock_mhz", 1), dtype=np.float64)))
    diam = (_max(arch, "cluster_rows", 0.0) + _max(arch, "cluster_cols", 0.0))
    t_dram = 1.0 + bits * clock
    t_layer = max(t_dram, diam)
    why = ("1 + word bits x arch.clock_mhz" if t_dram >= diam
           else "arch.cluster_rows + arch.cluster_cols")
    is_v2 = getattr(arch, "psum_port_bits", None) is not None
    t_total = max(1.0 + bits * clock / max(bus, 1.0), diam, bits if is_v2 else 1.0)
    return t_layer, t_total, why


def layer_work(layer) -> int:
    """W of one layer (exact Python integer): MACs + padded ifmap + filter + ofmap words."""
    n, c, m = int(layer.N), int(layer.C), int(layer.M)
    h, w, r, s = int(layer.H), int(layer.W), int(layer.R), int(layer.S)
    u, p, g = int(layer.stride), int(layer.pad), int(layer.groups)
    e = (h + 2 * p - r) // u + 1
    f = (w + 2 * p - s) // u + 1
    macs = n * m * e * f * r * s * (c // g)
    return macs + n * c * (h + 2 * p) * (w + 2 * p) + m * (c // g) * r * s + n * m * e * f


def check_counts(arch, network, where: str = "") -> None:
    """Raise LimitError when a layer's or the network's counts on ``arch`` could reach 2**62.

    ``network`` is a Network (or anything with ``.layers`` of Layer-like objects and ``.name``);
    ``arch`` may be a batch (its largest values bound every configuration).
    """
    t_layer, t_total, why = arch_factors(arch)
    total = 0.0
    name = getattr(network, "name", "network")
    for layer in network.layers:
        w = layer_work(layer)
        bound = float(ACCESS_FACTOR) * w * t_layer
        if bound >= COUNT_LIMIT:
            raise LimitError(
                f"{where}layer {layer.name!r} is too large to count exactly in int64: its counts "
                f"could reach {bound:.3g} (= {ACCESS_FACTOR} x {w:.3g} words of work [MACs "
                f"{layer_macs(layer):.3g} + data] x {t_layer:.4g} [{why}]), over the limit 2**62 = "
                f"{COUNT_LIMIT:.3g}. Reduce this layer's N (workload.batch = {layer.N}), C "
                f"({layer.C}), M ({layer.M}) or H x W ({layer.H} x {layer.W}), or lower {why}")
        total += float(ACCESS_FACTOR) * w * t_total
    if total >= COUNT_LIMIT:
        raise LimitError(
            f"{where}network {name!r}: its totals over {len(network.layers)} layers could reach "
            f"{total:.3g} ({ACCESS_FACTOR} x words of work x {t_total:.4g}), over the int64-safe "
            f"limit 2**62 = {COUNT_LIMIT:.3g}. Reduce workload.batch (now {network.layers[0].N}) "
            f"or the layers' sizes")


def layer_macs(layer) -> int:
    n, c, m = int(layer.N), int(layer.C), int(layer.M)
    e = (int(layer.H) + 2 * int(layer.pad) - int(layer.R)) // int(layer.stride) + 1
    f = (int(layer.W) + 2 * int(layer.pad) - int(layer.S)) // int(layer.stride) + 1
    return n * m * e * f * int(layer.R) * int(layer.S) * (c // int(layer.groups))


__all__ = ["COUNT_LIMIT", "ACCESS_FACTOR", "LimitError", "check_counts", "layer_work",
           "arch_factors"]
