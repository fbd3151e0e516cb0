"""Architecture design as an ask/tell problem backed by the batched evaluator.

    problem = Problem(get_network("mobilenet_v1_0.5_128", batch=1), EyerissV1(),
                      bounds={"pe_rows": (4, 32), "pe_cols": (4, 32), "glb_banks": (8, 64)})
    batch = problem.ask(jax.random.PRNGKey(0), 64)     # {field: int array [64]}, uniform in bounds
    ev = problem.eval(batch)                            # ONE evaluate call for the whole batch
    ev.fitness                                          # [64], lower is better; inf = rejected

A candidate is a dict of integer architecture fields (`bounds`: field -> inclusive (lo, hi)); the
others keep `base_arch`'s values. `eval` builds one architecture pytree whose searched leaves are
1-D batches and calls `eyejax.evaluate.evaluate` once (vmapped over candidates × layers).

Fitness: the network's energy, latency or energy-delay product (`objective`), per image. It is
+inf when any layer has no feasible mapping, or when the candidate's area exceeds `area_budget`
(by default the base architecture's own area, so the search looks for a better design at no more
area).

Area proxy (`area_proxy`): on-chip SRAM bytes plus `mac_bytes` per MAC datapath, i.e. area in
"SRAM-byte equivalents". SRAM and PE counts come from `eyejax.sweep.area` (every scratchpad word of
every PE at its bit width, plus the global buffer). `mac_bytes` = 256 is a rough assumption, not a
published number: a 16-bit MAC with its PE control is taken to cost about as much silicon as 256
bytes of small SRAM (65 nm: ~3,000 µm² of logic vs ~10 µm² per byte of SRAM with periphery). Pass
another `area_fn` to use another model. Eyeriss v1 (168 PEs, 0.5 kB of spads each, 100 kB GLB
and the 8 kB filter buffer): 240,960; Eyeriss v2 (192 PEs × 2 MACs, 0.41 kB of spads each,
192 kB GLB): 373,728.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np

from eyejax.arch import family_of
from eyejax.dataflow import dataflow_for, prepare_search_space
from eyejax.evaluate import evaluate
from eyejax.metrics import check_objective, objective_value

MAC_BYTES = 256   # SRAM-byte equivalents per MAC datapath (assumption, see the module docstring)


def area_proxy(arch, mac_bytes: float = MAC_BYTES) -> np.ndarray:
    """Area in SRAM-byte equivalents: SRAM bytes + mac_bytes × MAC datapaths (broadcasts over a
    batched architecture). The SRAM and PE counts are the family's area proxy (`Family.area`:
    every scratchpad at its width plus the global buffer); MAC datapaths are `Family.mac_units`."""
    family = family_of(arch)
    if family.area is None:
        raise ValueError(f"no area proxy for architecture family {family.name!r}")
    sizes = [np.size(x) for x in jax.tree_util.tree_leaves(arch)]
    n = max(sizes) if sizes else 1
    parts = family.area(arch, n)
    macs = family.mac_units(arch, n)
    out = parts["sram_kb"] * 1024.0 + mac_bytes * macs
    return out if np.ndim(out) and np.size(out) > 1 else np.float64(np.ravel(out)[0])


@dataclasses.dataclass
class Evaluation:
    """Result of `Problem.eval` for a batch of n candidates (arrays of length n)."""

    batch: dict
    fitness: np.ndarray
    energy: np.ndarray          # per image, the energy table's unit
    latency_ms: np.ndarray      # per image
    area: np.ndarray
    feasible: np.ndarray        # every layer has a mapping
    within_area: np.ndarray

    def to_dataframe(self):
        import pandas as pd

        d = {k: np.asarray(v) for k, v in self.batch.items()}
        d.update(fitness=self.fitness, energy=self.energy, latency_ms=self.latency_ms,
                 area=self.area, feasible=self.feasible, within_area=self.within_area)
        return pd.DataFrame(d)


class Problem:
    """Minimize `objective` per image over integer architecture fields within `bounds`, subject to
    area ≤ `area_budget` (see the module docstring).

    log_scale: fields sampled (and mutated by the search) uniformly in log space; by default every
    field whose range spans more than a factor of 8.
    """

    def __init__(self, network, base_arch, bounds: dict, objective: str = "energy",
                 area_fn: Callable | None = None, area_budget: float | None = None,
                 sparsity=None, log_scale: tuple | None = None, chunk_size: int = 1024,
                 space=None):
        check_objective(objective)
        if not bounds:
            raise ValueError("bounds must name at least one architecture field")
        fields = {f.name for f in dataclasses.fields(base_arch)}
        clean = {}
        for k, b in bounds.items():
            if k not in fields or k == "energy":
                raise ValueError(f"bounds: {k!r} is not an integer field of {type(base_arch).__name__}")
            lo, hi = (int(b[0]), int(b[1]))
            if not 1 <= lo <= hi:
                raise ValueError(f"bounds[{k!r}] = {b} must satisfy 1 <= lo <= hi")
            clean[k] = (lo, hi)
        self.network = network
        self.base_arch = base_arch
        self.bounds = clean
        self.fields = tuple(clean)
        self.objective = objective
        self.area_fn = area_fn or area_proxy
        self.area_budget = float(self.area_fn(base_arch)) if area_budget is None else float(area_budget)
        self.sparsity = sparsity
        self.chunk_size = chunk_size
        self.space = self._static_space(space)
        if log_scale is None:
            log_scale = tuple(k for k, (lo, hi) in clean.items() if hi > 8 * lo)
        self.log_scale = tuple(log_scale)
        self.num_evaluations = 0

    def _static_space(self, space):
        """The search space, with any static field a dataflow derives from the architecture batch
        (e.g. Eyeriss v2's cluster count and NoC precision) taken at the upper corner of `bounds`,
        so every generation reuses one compiled function instead of recompiling when the batch's
        maximum changes."""
        module = dataflow_for(self.base_arch)
        corner = self.base_arch.replace(**{k: hi for k, (lo, hi) in self.bounds.items()})
        return prepare_search_space(module, space, corner, self.network.arrays(), self.sparsity)

    # ---------------------------------------------------------------- encoding
    def _unit(self, k):
        lo, hi = self.bounds[k]
        if k in self.log_scale:
            return np.log(lo), np.log(hi + 1.0)
        return float(lo), hi + 1.0

    def to_unit(self, batch: dict) -> np.ndarray:
        """Candidates as points of [0, 1)^d (log scale where configured): [n, d]."""
        cols = []
        for k in self.fields:
            a, b = self._unit(k)
            x = np.asarray(batch[k], np.float64) + 0.5
            x = np.log(x) if k in self.log_scale else x
            cols.append((x - a) / (b - a))
        return np.stack(cols, axis=-1)

    def from_unit(self, u) -> dict:
        """Points of [0, 1]^d back to integer candidates within bounds."""
        u = np.clip(np.asarray(u, np.float64), 0.0, 1.0 - 1e-12)
        out = {}
        for i, k in enumerate(self.fields):
            a, b = self._unit(k)
            x = a + u[..., i] * (b - a)
            x = np.exp(x) if k in self.log_scale else x
            lo, hi = self.bounds[k]
            out[k] = np.clip(np.floor(x), lo, hi).astype(np.int64)
        return out

    def base_candidate(self) -> dict:
        return {k: np.asarray([int(np.asarray(getattr(self.base_arch, k)))]) for k in self.fields}

    # ---------------------------------------------------------------- ask / eval
    def ask(self, key, n: int) -> dict:
        """n candidates drawn uniformly within bounds (log-uniform for `log_scale` fields)."""
        u = np.asarray(jax.random.uniform(key, (n, len(self.fields)), dtype=np.float64))
        return self.from_unit(u)

    def arch_of(self, batch: dict):
        """The batched architecture pytree of the candidates (other fields from base_arch)."""
        return self.base_arch.replace(**{k: np.asarray(v, np.int64) for k, v in batch.items()})

    def eval(self, batch: dict) -> Evaluation:
        """Evaluate every candidate in one batched call; returns fitness (lower is better)."""
        n = len(np.asarray(batch[self.fields[0]]))
        arch = self.arch_of(batch)
        area = np.broadcast_to(np.asarray(self.area_fn(arch), np.float64), (n,)).copy()
        res = evaluate(arch, self.network, self.sparsity, objective=self.objective,
                       chunk_size=self.chunk_size, space=self.space)
        tot = res.network_totals()
        self.num_evaluations += n
        images = float(self.network.layers[0].N)
        feasible = tot["feasible"].to_numpy()
        energy = np.where(feasible, tot["energy"].to_numpy(np.float64), np.inf) / images
        latency = np.where(feasible, tot["latency_ms"].to_numpy(np.float64), np.inf) / images
        value = objective_value(self.objective, energy, latency)
        within = area <= self.area_budget * (1 + 1e-12)
        fitness = np.where(feasible & within, value, np.inf)
        return Evaluation(batch={k: np.asarray(v) for k, v in batch.items()}, fitness=fitness,
                          energy=energy, latency_ms=latency, area=area, feasible=feasible,
                          within_area=within)


__all__ = ["Problem", "Evaluation", "area_proxy", "MAC_BYTES"]
