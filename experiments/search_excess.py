"""How far the fast grid is from the exact optimum (docs/rs_model.md and docs/rs_plus_model.md,
"Mapping search").

    python -m experiments.search_excess [--arch eyeriss_v1|eyeriss_v2] [--networks alexnet ...]
                                        [--objective energy] [--batch N]

The architecture as built (movement-energy table), dense; Eyeriss v1 (RS) with each network at
its file's batch, Eyeriss v2 (RS+) at batch 1 (JETCAS19's setting). Every layer is searched with
`search=fast` (the fixed grid) and `search=exact` (every legal mapping); the table gives the fast
grid's excess over the optimum (per layer at most, and the network total) and the warm evaluation
time of each mode on this machine.
"""
from __future__ import annotations

import argparse
import time

import jax
import pandas as pd

import eyejax  # noqa: F401  (x64)
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.eyeriss_v2 import EyerissV2
from eyejax.evaluate import evaluate
from eyejax.metrics import objective_of_totals
from eyejax.plots import markdown_table
from eyejax.workload import get_network

NETWORKS = {"eyeriss_v1": ("alexnet", "vgg16", "mobilenet_v1", "resnet50"),
            "eyeriss_v2": ("alexnet", "mobilenet_v1_0.5_128")}
ARCHES = {"eyeriss_v1": EyerissV1, "eyeriss_v2": EyerissV2}
BATCH = {"eyeriss_v1": None, "eyeriss_v2": 1}      # None: the network file's batch


def timed(fn):
    fn()                               # compile
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def compare(network: str, objective: str = "energy", arch=None, batch: int | None = None) -> dict:
    arch = EyerissV1() if arch is None else arch
    net = get_network(network) if batch is None else get_network(network, batch=batch)
    res, secs = {}, {}
    for mode in ("fast", "exact"):
        res[mode], secs[mode] = timed(lambda: evaluate(arch, net, objective=objective, space=mode))
    score = {}
    for mode, r in res.items():
        layers = r.to_dataframe()
        e = layers["energy"].to_numpy()
        c = layers["cycles"].to_numpy().astype(float)
        score[mode] = {"energy": e, "latency": c, "edp": e * c}[objective]
        score[mode + "_total"] = float(objective_of_totals(r.network_totals(), objective).iloc[0])
    per_layer = score["fast"] / score["exact"] - 1
    return {"network": network, "layers": len(net.layers),
            "worst layer excess %": 100 * per_layer.max(),
            "layers above optimum": int((per_layer > 1e-9).sum()),
            "network excess %": 100 * (score["fast_total"] / score["exact_total"] - 1),
            "fast s": secs["fast"], "exact s": secs["exact"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=sorted(ARCHES), default="eyeriss_v1")
    ap.add_argument("--networks", nargs="+", default=None)
    ap.add_argument("--objective", default="energy")
    ap.add_argument("--batch", type=int, default=None)
    args = ap.parse_args(argv)
    batch = BATCH[args.arch] if args.batch is None else args.batch
    rows = [compare(n, args.objective, ARCHES[args.arch](), batch)
            for n in (args.networks or NETWORKS[args.arch])]
    df = pd.DataFrame(rows)
    print(f"device: {jax.devices()[0].device_kind}; {args.arch}; objective {args.objective}")
    print(markdown_table(df, floatfmt=".3g"), end="")


if __name__ == "__main__":
    main()
