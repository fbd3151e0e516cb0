"""Batched entry point: many architectures × one network in one jitted, vmapped call.

The architecture pytree may carry a batch axis on any subset of its leaves (all of length B); the
others broadcast. Only the batched leaves get `in_axes=0` (brax-style), so work that depends only on
the layer, or on unswept fields, is done once. Large batches are cut into fixed-size chunks so
memory stays bounded and the function compiles once.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from eyejax import sharding
from eyejax.dataflow import (
    dataflow_for,
    mapping_file,
    partition_search_space,
    prepare_search_space,
)
from eyejax.limits import check_counts
from eyejax.metrics import check_objective
from eyejax.results import NetworkResult
from eyejax.sparsity import Sparsity

DEFAULT_CHUNK = 1024        # configurations per compiled call on a CPU
# On a GPU larger calls pay: one H200 ran v1 ResNet-50 at 1.08 M evaluations/s with 1,024 per call
# and 1.9-2.0 M/s with 65,536-131,072 (README, Benchmark "On a GPU"); 32,768 keeps v2's peak
# memory near 3 GB per 10,000 configurations.
ACCELERATOR_CHUNK = 32768


# Searching a network's layers in parts (eyejax.dataflow.partition_search_space) drops duplicate
# candidates but compiles one more grid program per part. On the 2-core CPU that is 0.4-3.6 s more
# compile for 3-90% more evaluations/s, repaid from 15,000 to 107,000 configurations (median about
# 36,000; README "Before and after the 2026-12-05 changes"). So parts are the default from this
# many configurations in one evaluation (a sweep: its whole grid). An accelerator runs a
# configuration several times faster (README "On a GPU") at about the same compile time, so it
# needs proportionally more: an estimate, not a measurement (no GPU was lent for it).
PARTS_MIN_CONFIGS = {"cpu": 32768, "accelerator": 262144}


def use_search_parts(search_parts, configs: int, devices=None) -> bool:
    """`search_parts` (True, False, or None = automatic: at least PARTS_MIN_CONFIGS for the
    devices' platform) as a bool."""
    if search_parts is None:
        cpu = sharding.local_devices(devices)[0].platform == "cpu"
        return configs >= PARTS_MIN_CONFIGS["cpu" if cpu else "accelerator"]
    if not isinstance(search_parts, (bool, np.bool_)):
        raise ValueError(f"search_parts must be True, False or None (automatic), got {search_parts!r}")
    return bool(search_parts)


def default_chunk(devices=None) -> int:
    """Configurations per compiled call for the devices a run uses (the default backend's when
    None): DEFAULT_CHUNK on CPUs, ACCELERATOR_CHUNK on GPUs and TPUs."""
    devs = sharding.local_devices(devices)
    return DEFAULT_CHUNK if devs[0].platform == "cpu" else ACCELERATOR_CHUNK


def batch_size(tree) -> int:
    """Common batch length of the tree's 1-D leaves (1 when every leaf is a scalar)."""
    sizes = {int(np.shape(x)[0]) for x in jax.tree_util.tree_leaves(tree) if np.ndim(x) == 1}
    if len(sizes) > 1:
        raise ValueError(f"swept arch fields have different lengths {sorted(sizes)}; broadcast them "
                         "to one batch (e.g. with eyejax.app.config.grid)")
    for x in jax.tree_util.tree_leaves(tree):
        if np.ndim(x) > 1:
            raise ValueError("arch leaves must be scalars or 1-D batches")
    return sizes.pop() if sizes else 1


def in_axes_of(tree):
    return jax.tree_util.tree_map(lambda x: 0 if np.ndim(x) == 1 else None, tree)


def _sparsity_in_axes(sp):
    # [L] leaves are shared by all configs; [B, L] leaves are swept.
    return jax.tree_util.tree_map(lambda x: 0 if np.ndim(x) == 2 else None, sp)


@functools.lru_cache(maxsize=64)
def _compiled(dataflow, objective: str, parts, arch_axes_key, sp_axes_key, treedefs,
              with_fixed: bool = False):
    """parts: ((space, layer indices), ...) covering the evaluated layers
    (`eyejax.dataflow.partition_search_space`). One part: `search_layer` over every layer. Several:
    each part chooses its layers' mappings on its own grid (`choose_mapping`), and one exact
    recount (`finish_mapping`) then serves every layer, in the layers' order."""
    arch_treedef, sp_treedef = treedefs
    arch_axes = jax.tree_util.tree_unflatten(arch_treedef, arch_axes_key)
    sp_axes = jax.tree_util.tree_unflatten(sp_treedef, sp_axes_key)

    def over(per_layer, *extra_config_axes):
        """vmap over layers, then over configurations; (arch, layer, sparsity row, first, extra...)
        with each extra input per layer and, on the configuration axis, as given."""
        n = len(extra_config_axes)
        over_layers = jax.vmap(per_layer, in_axes=(None, 0, 0, 0) + (0,) * n)
        return jax.vmap(over_layers, in_axes=(arch_axes, None, sp_axes, None) + extra_config_axes)

    if len(parts) == 1:
        space = parts[0][0]
        if with_fixed:   # a given mapping per layer (eyejax.dataflow.mapping_file), else searched
            search = over(lambda arch, layer, sp, first, fixed: dataflow.search_layer(
                layer, arch, sp, first, objective, space, fixed=fixed), None)
        else:
            search = over(lambda arch, layer, sp, first: dataflow.search_layer(
                layer, arch, sp, first, objective, space))
    else:
        choosers = [(over(lambda arch, layer, sp, first, space=space: dataflow.choose_mapping(
            layer, arch, sp, first, objective, space)), np.asarray(idx)) for space, idx in parts]
        back = np.argsort(np.concatenate([np.asarray(idx) for _, idx in parts]))
        # the recount's search fields (bounds, NoC precision) are the same in every part
        finisher = over(lambda arch, layer, sp, first, mp, ok: dataflow.finish_mapping(
            layer, arch, sp, first, mp, ok, parts[0][0]), 0, 0)

    def run(arch, layers, sp, first, layer_index, fixed):
        if len(parts) == 1:
            res = search(arch, layers, sp, first, fixed) if with_fixed else \
                search(arch, layers, sp, first)
        else:
            chosen = []
            for choose, idx in choosers:
                pick = lambda x: jnp.take(x, idx, axis=0)
                # swept sparsity leaves are [configs, L]: their layer axis is 1
                pick_sp = lambda x, ax: jnp.take(x, idx, axis=0 if ax is None else 1)
                chosen.append(choose(arch, jax.tree_util.tree_map(pick, layers),
                                     jax.tree_util.tree_map(pick_sp, sp, sp_axes,
                                                            is_leaf=lambda x: x is None),
                                     pick(first)))
            # the parts' choices back in the layers' order, then one recount for all
            mp, ok = jax.tree_util.tree_map(
                lambda *xs: jnp.take(jnp.concatenate(xs, axis=1), back, axis=1), *chosen)
            res = finisher(arch, layers, sp, first, mp, ok)
        # each network layer takes its distinct layer's results (inside the compiled call, so the
        # host receives final [configs, layers] arrays and copies nothing more)
        return jax.tree_util.tree_map(lambda x: jnp.take(x, layer_index, axis=1), res)

    return jax.jit(run)


def distinct_layers(layers, sparsity: Sparsity):
    """(index of each distinct layer, inverse map [L]) over everything a layer's result depends on:
    its shape, its `first` flag and its sparsity (per-layer values, and the whole column of swept
    [B, L] leaves). ResNet-50's 54 layers are 21 distinct ones, for example."""
    leaves = jax.tree_util.tree_leaves(layers) + jax.tree_util.tree_leaves(sparsity)
    L = layers.num_layers
    ids, first_of, inverse = {}, [], np.empty(L, dtype=np.int64)
    for l in range(L):
        key = b"".join(np.ascontiguousarray(np.asarray(x)[..., l]).tobytes() for x in leaves)
        if key not in ids:
            ids[key] = len(first_of)
            first_of.append(l)
        inverse[l] = ids[key]
    return np.asarray(first_of, dtype=np.int64), inverse


def evaluate_arrays(arch, layers, sparsity: Sparsity, objective="energy", space=None,
                    chunk_size: int | None = None, progress=None, dataflow: str | None = None,
                    devices=None, dedupe_layers: bool = True, fixed=None, search_parts=None):
    """Core batched evaluation; returns a dict of numpy arrays shaped [B, L].

    search_parts: search the layers in parts that drop candidates which can only repeat another
    on them (`eyejax.dataflow.partition_search_space`; the same results, faster per configuration,
    a longer compile): True, False, or None for automatic (`use_search_parts`: from
    PARTS_MIN_CONFIGS configurations on the devices' platform). Searches with a fixed mapping
    use one part.

    devices: the local devices the configuration axis is sharded over (None: all local devices of
    the default backend; an int n: the first n; 1: no sharding). Each chunk is padded to a multiple
    of the device count. dedupe_layers: evaluate each distinct layer (shape, first flag, sparsity)
    once and copy its results to its repeats (identical results, less work). chunk_size: the
    configurations per compiled call (None: default_chunk(devices)). fixed: None, or
    (mapping with [L] leaves, use mask [L]) from eyejax.dataflow.mapping_file.mapping_arrays.
    """
    df_module = dataflow_for(arch, dataflow)
    # static fields taken from the concrete batch (e.g. RS+ cluster count), duplicate axes dropped
    space = prepare_search_space(df_module, space, arch, layers, sparsity)
    B = batch_size(arch)
    arch_axes = in_axes_of(arch)
    sp_axes = _sparsity_in_axes(sparsity)
    arch_leaves_axes, arch_def = jax.tree_util.tree_flatten(arch_axes, is_leaf=lambda x: x is None)
    sp_leaves_axes, sp_def = jax.tree_util.tree_flatten(sp_axes, is_leaf=lambda x: x is None)
    layer_index = np.arange(layers.num_layers)
    with_fixed = fixed is not None
    if fixed is None:
        fixed = np.zeros(layers.num_layers, bool)       # placeholder, unused by the search
    if dedupe_layers:
        keep, inv = distinct_layers(layers, (sparsity, fixed))
        if len(keep) < layers.num_layers:
            layer_index = inv
            layers = jax.tree_util.tree_map(lambda x: np.asarray(x)[keep], layers)
            sparsity = jax.tree_util.tree_map(lambda x: np.asarray(x)[..., keep], sparsity)
            fixed = jax.tree_util.tree_map(lambda x: np.asarray(x)[keep], fixed)
    # layers whose space can drop duplicate candidates get their own search (same results)
    if use_search_parts(search_parts, B, devices) and not with_fixed:
        parts = partition_search_space(df_module, space, layers)
    else:
        parts = [(np.arange(layers.num_layers), space)]
    parts_key = tuple((part_space, tuple(int(i) for i in idx)) for idx, part_space in parts)
    fn = _compiled(df_module, objective, parts_key, tuple(arch_leaves_axes),
                   tuple(sp_leaves_axes), (arch_def, sp_def), with_fixed)
    first = jnp.asarray(layers.first)
    layer_tree = layers  # LayerArrays, leaves [L]
    devs = sharding.local_devices(devices)
    # a search space may bound the configurations per call (ISCA16 exact search: memory)
    hint = getattr(space, "chunk_hint", None)
    chunk = max(1, min(chunk_size or min(hint or 1 << 62, default_chunk(devs)), B))
    mesh = None
    if len(devs) > 1:  # split each chunk's configurations over the local devices
        chunk = sharding.padded_size(chunk, len(devs))
        mesh = sharding.config_mesh(devs)
        first, layer_tree, layer_index = jax.device_put((first, layer_tree, layer_index),
                                                        sharding.replicated(mesh))
    elif devices is not None:
        first, layer_tree, layer_index = jax.device_put((first, layer_tree, layer_index), devs[0])
    # Dispatch is asynchronous: queue a few chunks before reading any back, so the runtime can
    # overlap them (both CPU cores busy) while memory stays bounded by `max_in_flight` chunks.
    out, pending = {}, []
    max_in_flight = 4

    def collect(item):
        res, start, n_valid = item
        for k, x in res.items():   # copy each chunk into preallocated [B, L] arrays
            x = np.asarray(x)
            if k not in out:
                out[k] = np.empty((B,) + x.shape[1:], x.dtype)
            out[k][start:start + n_valid] = x[:n_valid]
        if progress is not None:
            progress(n_valid)

    for start in range(0, B, chunk):
        stop = min(start + chunk, B)
        idx = np.arange(start, start + chunk).clip(max=B - 1)  # pad the last chunk: one compile
        take = lambda x, ax: x if ax is None else np.asarray(x)[idx]
        a = jax.tree_util.tree_map(take, arch, arch_axes, is_leaf=lambda x: x is None)
        s = jax.tree_util.tree_map(take, sparsity, sp_axes, is_leaf=lambda x: x is None)
        if mesh is not None:
            a = sharding.shard_batch(a, arch_axes, mesh)
            s = sharding.shard_batch(s, sp_axes, mesh)
        elif devices is not None:
            a, s = jax.device_put((a, s), devs[0])
        pending.append((fn(a, layer_tree, s, first, layer_index, fixed), start, stop - start))
        if len(pending) >= max_in_flight:
            collect(pending.pop(0))
    for item in pending:
        collect(item)
    return out


def evaluate(arch, network, sparsity: Sparsity | None = None, objective: str = "energy",
             space=None, chunk_size: int | None = None, progress=None,
             dataflow: str | None = None, mapping=None, search_parts=None):
    """Evaluate a batch of architectures on a network with a dataflow (default: the
    architecture's own, e.g. RS on Eyeriss v1); see NetworkResult. search_parts: as in
    `evaluate_arrays` (None: automatic).

    mapping: evaluate given mappings instead of searching (RS only): a preset name (e.g.
    "alexnet_jssc17"), a YAML path, a dict {layer name: {e, r, t, p, q, n, m[, h]}}, or an
    RSMapping with one value per layer (eyejax.dataflow.mapping_file). Layers it does not name are
    searched; the result's `mapping_fixed` column says which are which.

    Every input is checked before any work: bad fields raise errors naming the field and range, and
    a mapping that does not fit raises MappingError naming the layer and the limit it breaks.
    """
    df_module = dataflow_for(arch, dataflow)
    df_module.validate_arch(arch)
    check_counts(arch, network)  # int64 counts stay exact (eyejax/limits.py)
    check_objective(objective)
    use_search_parts(search_parts, 0)    # a bad value stops here, before any work
    layers = network.arrays()
    L = layers.num_layers
    sparsity = Sparsity.dense(L) if sparsity is None else sparsity
    if sparsity.num_layers != L:
        raise ValueError(f"sparsity has {sparsity.num_layers} layers, the network {L}")
    arch = _with_vector_leaves(arch)
    fixed = None
    if mapping is not None:
        if df_module.MAPPING_KEYS != mapping_file.KEYS:
            raise ValueError("mapping= (a fixed mapping) is supported for the RS dataflow on "
                             "Eyeriss v1 only")
        fixed_mp, use = mapping_file.mapping_arrays(network, mapping)
        mapping_file.check_fits(network, arch, fixed_mp, use, batch_size(arch))
        fixed = (fixed_mp, use)
    raw = evaluate_arrays(arch, layers, sparsity, objective, space, chunk_size, progress,
                          dataflow, fixed=fixed, search_parts=search_parts)
    if fixed is not None:
        raw["mapping_fixed"] = np.broadcast_to(fixed[1], raw["macs"].shape).copy()
    return NetworkResult(raw=raw, arch=arch, network=network, sparsity=sparsity,
                         objective=objective, batch=batch_size(arch),
                         mapping_keys=df_module.MAPPING_KEYS)


def _with_vector_leaves(arch):
    """Lists/tuples become numpy arrays; scalars stay scalars. An unswept arch becomes a batch of
    one (its first leaf gets the batch axis) so the config vmap always has an axis."""
    arch = jax.tree_util.tree_map(lambda x: np.asarray(x) if np.ndim(x) else x, arch)
    leaves, treedef = jax.tree_util.tree_flatten(arch)
    if all(np.ndim(x) == 0 for x in leaves):
        leaves[0] = np.asarray([leaves[0]])
    return jax.tree_util.tree_unflatten(treedef, leaves)
