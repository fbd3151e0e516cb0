"""`eyejax-bench`: configuration·layer evaluations per second with the full mapping search.

For each batch size it times the first call (compile + run) and the best of several steady calls,
and reports compile time as their difference. Architectures are random draws of the structural
fields (array shape, scratchpads, GLB) and the energy table, so no work is shared between configs.
"""
from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np

import eyejax  # noqa: F401
from eyejax.arch.energy import EnergyTable
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.evaluate import DEFAULT_CHUNK, evaluate_arrays
from eyejax.sparsity import Sparsity
from eyejax.workload import get_network


def random_archs(batch: int, seed: int = 0) -> EyerissV1:
    rng = np.random.default_rng(seed)
    u = lambda lo, hi: rng.integers(lo, hi + 1, batch)
    f = lambda lo, hi: rng.uniform(lo, hi, batch)
    return EyerissV1(
        pe_rows=u(8, 16), pe_cols=u(8, 16), filter_spad_words=u(64, 512),
        ifmap_spad_words=u(8, 24), psum_spad_words=u(8, 48), glb_banks=u(8, 64),
        dram_bus_bits=rng.choice([32, 64, 128], batch),
        energy=EnergyTable(alu=f(0.8, 1.2), rf=f(0.8, 1.5), noc=f(1.5, 3.0), glb=f(4.0, 10.0),
                           dram=f(150.0, 250.0)))


def run(workload: str, batches, repeats: int, chunk: int):
    net = get_network(workload)
    layers = net.arrays()
    L = layers.num_layers
    sp = Sparsity.dense(L)
    rows = []
    for B in batches:
        arch = random_archs(B)
        t0 = time.perf_counter()
        out = evaluate_arrays(arch, layers, sp, chunk_size=chunk)
        first = time.perf_counter() - t0
        steady = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = evaluate_arrays(arch, layers, sp, chunk_size=chunk)
            steady.append(time.perf_counter() - t0)
        best = min(steady)
        rows.append(dict(workload=workload, batch=B, layers=L, evals=B * L,
                         compile_s=max(first - best, 0.0), run_s=best,
                         evals_per_s=B * L / best,
                         feasible=float(np.mean(out["feasible"]))))
    return rows


def device_name() -> str:
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", d.platform)
    if d.platform == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {jax.local_device_count()} device(s))"
    return f"{d.platform} ({kind})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workload", default="alexnet")
    ap.add_argument("--batches", default="1,100,10000", help="comma-separated batch sizes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="configs per compiled call")
    args = ap.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    import os

    print(f"eyejax-bench  device: {device_name()}  jax {jax.__version__}  "
          f"cpus: {os.cpu_count()}  chunk: {args.chunk}")
    print(f"{'workload':<10} {'batch':>7} {'evals':>9} {'compile s':>10} {'run s':>9} "
          f"{'evals/s':>12} {'feasible':>9}")
    for r in run(args.workload, batches, args.repeats, args.chunk):
        print(f"{r['workload']:<10} {r['batch']:>7} {r['evals']:>9} {r['compile_s']:>10.2f} "
              f"{r['run_s']:>9.4f} {r['evals_per_s']:>12,.0f} {r['feasible']:>9.2f}")


if __name__ == "__main__":
    main()
