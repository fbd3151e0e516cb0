"""`eyejax bench` (also `eyejax-bench`): configuration·layer evaluations per second with the full
mapping search, and compile time, against batch size, for each architecture family, workload and
device present.

    eyejax bench                                             # eyeriss_v1 on AlexNet, batches 1, 100, 10000
    eyejax bench --arch eyeriss_v1 --workload alexnet,resnet50 --batches 1000,10000,100000
    eyejax bench --device cpu                                # only the CPU (default: every platform)

`cands` is the number of candidate mappings the search costs per layer, the most of any layer
("all": `--search exact` costs every legal mapping, docs/rs_model.md "Mapping search"); `parts`
whether the layers were searched in parts that cost fewer candidates where more could only repeat
one (eyejax.dataflow.partition_search_space; `--parts`, automatic from
eyejax.evaluate.PARTS_MIN_CONFIGS configurations). For each batch size it times the first call (compile + run) and the best of several steady calls,
and reports compile time as their difference (0 when that shape was already compiled), and the
process CPU time of the steady call (evals/cpu-s: a figure that holds on a shared, loaded machine).
Architectures are random draws of the structural fields and the energy table (each family's
`Family.sample`, eyejax.arch), so no work is shared between configurations. Evaluations count every configuration·layer
pair of the network; layers that repeat exactly (ResNet-50: 54 layers, 21 distinct) are evaluated
once per configuration and copied (eyejax.evaluate.distinct_layers), as in any eyejax run.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import jax
import numpy as np

import eyejax  # noqa: F401
from eyejax.arch import families
from eyejax.dataflow import dataflow_for, prepare_search_space
from eyejax.evaluate import default_chunk, distinct_layers, evaluate_arrays, use_search_parts
from eyejax.sparsity import Sparsity
from eyejax.workload import get_network


def samplers() -> dict[str, Callable]:
    """family -> its random-architecture sampler (batch, seed) (eyejax.arch registry)."""
    return {name: f.sample for name, f in families().items() if f.sample is not None}


def run(workload: str, batches, repeats: int, chunk: int, arch: str = "eyeriss_v1",
        devices=None, sparsity=None, search: str = "fast", search_parts=None):
    """Benchmark one family on one workload over batch sizes; returns one dict per batch size."""
    sample = samplers().get(arch)
    if sample is None:
        raise ValueError(f"unknown architecture family {arch!r}; known: {sorted(samplers())}")
    net = get_network(workload)
    layers = net.arrays()
    L = layers.num_layers
    sp = Sparsity.dense(L) if sparsity is None else sparsity
    distinct = len(distinct_layers(layers, sp)[0])
    rows = []
    for B in batches:
        archs = sample(B)
        space = prepare_search_space(dataflow_for(archs), search, archs, layers, sp)
        call = lambda: evaluate_arrays(archs, layers, sp, space=space, chunk_size=chunk,
                                       devices=devices, search_parts=search_parts)
        t0 = time.perf_counter()
        out = call()
        first = time.perf_counter() - t0
        steady, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = call()
            steady.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        best = min(steady)
        best_cpu = cpu[int(np.argmin(steady))]
        peak = peak_device_bytes(devices)
        rows.append(dict(arch=arch, workload=workload, batch=B, layers=L, distinct_layers=distinct,
                         evals=B * L, search=search, parts=use_search_parts(search_parts, B, devices),
                         candidates=getattr(space, "size", None) or "all", compile_s=max(first - best, 0.0), run_s=best,
                         evals_per_s=B * L / best, cpu_s=best_cpu,
                         evals_per_cpu_s=B * L / max(best_cpu, 1e-9),
                         feasible=float(np.mean(out["feasible"])), peak_device_gib=peak))
    return rows


def peak_device_bytes(devices=None):
    """Peak bytes in use on the first device so far, in GiB (None where the runtime does not say:
    the CPU backend keeps no such statistic)."""
    devs = devices or jax.local_devices()
    try:
        stats = devs[0].memory_stats() or {}
    except (AttributeError, RuntimeError, NotImplementedError):
        return None
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def device_groups(which: str = "all") -> list[tuple[str, list]]:
    """[(description, local devices)] per platform present (gpu/tpu first, then cpu)."""
    platforms = []
    for p in ("gpu", "tpu", "cpu"):
        try:
            devs = jax.local_devices(backend=p)
        except RuntimeError:
            continue
        if devs and (which == "all" or which == p):
            platforms.append((p, devs))
    if not platforms:
        raise ValueError(f"no {which!r} devices present; devices: {jax.devices()}")
    return [(device_name(devs), devs) for _, devs in platforms]


def device_name(devs=None) -> str:
    devs = devs or jax.local_devices()
    d = devs[0]
    if d.platform == "cpu":
        return (f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                f"{len(devs)} device(s))")
    kind = getattr(d, "device_kind", d.platform)
    return f"{d.platform} ({kind}) x{len(devs)}"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="eyejax bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="eyeriss_v1",
                    help=f"comma-separated families ({', '.join(samplers())})")
    ap.add_argument("--workload", default="alexnet", help="comma-separated built-in networks")
    ap.add_argument("--batches", default="1,100,10000", help="comma-separated batch sizes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=None,
                    help="configs per compiled call (default: 1024 on a CPU, 32768 on a GPU/TPU)")
    ap.add_argument("--search", default="fast", choices=("fast", "exact"),
                    help="mapping search: fast (fixed grid) or exact (every legal mapping)")
    ap.add_argument("--device", default="all", choices=("all", "cpu", "gpu", "tpu"),
                    help="which platform(s) to run on (default: every one present)")
    ap.add_argument("--parts", default="auto", choices=("auto", "on", "off"),
                    help="search a network's layers in parts (eyejax.evaluate.PARTS_MIN_CONFIGS; "
                         "auto: from that many configurations)")
    args = ap.parse_args(argv)
    search_parts = {"auto": None, "on": True, "off": False}[args.parts]
    batches = [int(b) for b in args.batches.split(",")]
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    for a in archs:
        if a not in samplers():
            ap.error(f"--arch {a}: unknown family; known: {', '.join(samplers())}")
    workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    print(f"eyejax bench  jax {jax.__version__}  cpus: {os.cpu_count()}")
    for name, devs in device_groups(args.device):
        print(f"device: {name}  chunk: {args.chunk or default_chunk(devs)}  search: {args.search}")
        print(f"{'arch':<11} {'workload':<20} {'batch':>7} {'layers':>9} {'evals':>9} "
              f"{'cands':>6} {'parts':>5} {'compile s':>10} {'run s':>9} {'evals/s':>12} {'evals/cpu-s':>12} {'feasible':>9} "
              f"{'peak GiB':>9}")
        with jax.default_device(devs[0]):
            for a in archs:
                for w in workloads:
                    for r in run(w, batches, args.repeats, args.chunk, arch=a, devices=devs,
                                 search=args.search, search_parts=search_parts):
                        lay = f"{r['layers']}({r['distinct_layers']})"
                        print(f"{r['arch']:<11} {r['workload']:<20} {r['batch']:>7} {lay:>9} "
                              f"{r['evals']:>9} {r['candidates'] or '-':>6} "
                              f"{'on' if r['parts'] else 'off':>5} {r['compile_s']:>10.2f} {r['run_s']:>9.4f} "
                              f"{r['evals_per_s']:>12,.0f} {r['evals_per_cpu_s']:>12,.0f} "
                              f"{r['feasible']:>9.2f} {_gib(r['peak_device_gib']):>9}", flush=True)


def _gib(x):
    return "-" if x is None else f"{x:.2f}"


if __name__ == "__main__":
    main()
