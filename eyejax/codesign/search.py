"""Simple searches over a `Problem`: random search and a (μ + λ) evolution strategy (ask/tell).

    problem = Problem(net, EyerissV1(), bounds={...})
    result = search(problem, generations=10, popsize=32, seed=0)          # method="es" | "random"
    result.best, result.best_fitness, result.base_fitness, result.history  # history: a DataFrame

Each generation asks the strategy for `popsize` candidates, evaluates them with ONE batched
`Problem.eval` call and tells the strategy their fitness. Both strategies start from the base
architecture (it is the first candidate of generation 0), so the result is never worse than it.

Evolution strategy (`EvolutionStrategy`): candidates live in the problem's unit cube (log scale for
wide ranges). The μ = popsize/4 best of parents ∪ children survive (+inf never survives while a
finite one exists); each child copies a random survivor and adds N(0, σ²) to every coordinate,
then snaps to the integer grid; a child equal to its parent moves one grid step on a random field.
σ shrinks by `decay` per generation. Deterministic for a given seed.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd

from eyejax.codesign.problem import Problem


class RandomSearch:
    """Uniform samples within bounds (the base architecture first)."""

    def __init__(self, problem: Problem, popsize: int):
        self.problem = problem
        self.popsize = popsize
        self.generation = 0

    def ask(self, key) -> dict:
        batch = self.problem.ask(key, self.popsize)
        if self.generation == 0:
            for k, v in self.problem.base_candidate().items():
                batch[k][0] = v[0]
        return batch

    def tell(self, batch: dict, fitness) -> None:
        self.generation += 1


class EvolutionStrategy:
    """(μ + λ) ES on the unit-cube encoding of the problem (see the module docstring)."""

    def __init__(self, problem: Problem, popsize: int, elite: int | None = None,
                 sigma: float = 0.15, decay: float = 0.9):
        self.problem = problem
        self.popsize = popsize
        self.elite = max(1, elite or popsize // 4)
        self.sigma = sigma
        self.decay = decay
        self.generation = 0
        self.parents: dict | None = None
        self.parent_fitness: np.ndarray | None = None

    def ask(self, key) -> dict:
        p = self.problem
        if self.parents is None:
            batch = p.ask(key, self.popsize)
            for k, v in p.base_candidate().items():
                batch[k][0] = v[0]
            return batch
        k1, k2, k3, k4 = jax.random.split(key, 4)
        n = len(self.parent_fitness)
        pick = np.asarray(jax.random.randint(k1, (self.popsize,), 0, n))
        u_par = p.to_unit(self.parents)[pick]
        noise = np.asarray(jax.random.normal(k2, u_par.shape, dtype=np.float64))
        child = p.from_unit(u_par + self.sigma * noise)
        parent = {k: np.asarray(v)[pick] for k, v in self.parents.items()}
        same = np.all([child[k] == parent[k] for k in p.fields], axis=0)
        field = np.asarray(jax.random.randint(k3, (self.popsize,), 0, len(p.fields)))
        step = np.where(np.asarray(jax.random.bernoulli(k4, 0.5, (self.popsize,))), 1, -1)
        for i, k in enumerate(p.fields):
            lo, hi = p.bounds[k]
            moved = np.clip(child[k] + step, lo, hi)
            moved = np.where(moved == child[k], np.clip(child[k] - step, lo, hi), moved)
            child[k] = np.where(same & (field == i), moved, child[k])
        return child

    def tell(self, batch: dict, fitness) -> None:
        fitness = np.asarray(fitness, np.float64)
        if self.parents is None:
            pool, fit = batch, fitness
        else:
            pool = {k: np.concatenate([self.parents[k], batch[k]]) for k in batch}
            fit = np.concatenate([self.parent_fitness, fitness])
        order = np.argsort(fit, kind="stable")[:self.elite]
        self.parents = {k: np.asarray(v)[order] for k, v in pool.items()}
        self.parent_fitness = fit[order]
        self.sigma *= self.decay
        self.generation += 1


STRATEGIES = {"es": EvolutionStrategy, "random": RandomSearch}


@dataclasses.dataclass
class SearchResult:
    best: dict                 # field -> int
    best_fitness: float
    base: dict
    base_fitness: float
    history: pd.DataFrame      # one row per evaluated candidate (generation, fields, metrics)
    num_evaluations: int

    @property
    def improvement(self) -> float:
        """base fitness / best fitness (> 1: the search found a better design)."""
        return self.base_fitness / self.best_fitness

    def best_row(self) -> pd.Series:
        h = self.history
        return h.loc[h.fitness.idxmin()]


def search(problem: Problem, generations: int = 10, popsize: int = 32, seed: int = 0,
           method: str = "es", callback=None, **strategy_kwargs) -> SearchResult:
    """Run `generations` ask → eval → tell rounds of `popsize` candidates each."""
    if method not in STRATEGIES:
        raise ValueError(f"method must be one of {sorted(STRATEGIES)}, got {method!r}")
    if generations < 1 or popsize < 2:
        raise ValueError("need generations >= 1 and popsize >= 2")
    strategy = STRATEGIES[method](problem, popsize, **strategy_kwargs)
    key = jax.random.PRNGKey(seed)
    frames = []
    for g in range(generations):
        key, sub = jax.random.split(key)
        batch = strategy.ask(sub)
        ev = problem.eval(batch)
        strategy.tell(batch, ev.fitness)
        df = ev.to_dataframe()
        df.insert(0, "generation", g)
        frames.append(df)
        if callback is not None:
            callback(g, ev)
    hist = pd.concat(frames, ignore_index=True)
    base = {k: int(v[0]) for k, v in problem.base_candidate().items()}
    base_fit = float(hist.fitness.iloc[0])   # generation 0 starts with the base architecture
    row = hist.loc[hist.fitness.idxmin()]
    best = {k: int(row[k]) for k in problem.fields}
    return SearchResult(best=best, best_fitness=float(row.fitness), base=base,
                        base_fitness=base_fit, history=hist, num_evaluations=len(hist))


__all__ = ["RandomSearch", "EvolutionStrategy", "SearchResult", "search", "STRATEGIES"]
