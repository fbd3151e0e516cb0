"""Placing a batch of configurations over the local devices (jax.sharding).

The configuration axis is embarrassingly parallel: every configuration is evaluated on its own. So a
chunk of B configurations is split over a 1-D mesh of the local devices along that axis (batched
leaves get ``PartitionSpec("config")``, shared leaves are replicated), the chunk being padded to a
multiple of the device count. The compiled function is the same vmapped program; XLA runs one
slice per device, and the results are identical to the single-device run (a test checks this with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` on CPU).

Only *local* devices are used: in a multi-host run (``jax.distributed``) every process evaluates its
own slice of a sweep on its own devices (eyejax.sweep), so no array spans processes.
"""
from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "config"


def local_devices(devices=None) -> tuple:
    """The devices to use: ``devices`` (a list, or an int n = the first n local devices), or every
    local device of the default backend."""
    if devices is None:
        return tuple(jax.local_devices())
    if isinstance(devices, int):
        avail = jax.local_devices()
        if not 1 <= devices <= len(avail):
            raise ValueError(f"devices={devices}: there are {len(avail)} local devices")
        return tuple(avail[:devices])
    devs = tuple(devices)
    if not devs:
        raise ValueError("devices is empty")
    return devs


@functools.lru_cache(maxsize=16)
def config_mesh(devices: tuple) -> Mesh:
    """A 1-D mesh over ``devices`` whose only axis is the configuration axis."""
    return Mesh(np.asarray(devices, dtype=object), (AXIS,))


def padded_size(n: int, num_devices: int) -> int:
    """n rounded up to a multiple of the device count."""
    return -(-n // num_devices) * num_devices


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
    """Split axis 0 (configurations) over the mesh; keep the other axes whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(tree, axes, mesh: Mesh):
    """device_put every leaf: batched leaves (axis 0 in ``axes``) split over the mesh, the others
    replicated. ``axes`` is an in_axes-style tree (0 or None per leaf)."""
    def put(x, ax):
        if ax is None:
            return jax.device_put(x, replicated(mesh))
        return jax.device_put(x, batch_sharding(mesh, np.ndim(x)))

    return jax.tree_util.tree_map(put, tree, axes, is_leaf=lambda x: x is None)


__all__ = ["AXIS", "local_devices", "config_mesh", "padded_size", "batch_sharding", "replicated",
           "shard_batch"]
