"""Co-design loops on top of the batched model.

- `differentiable`: energy and latency of a network as smooth functions of per-layer densities and
  continuous architecture parameters, at a fixed mapping (use with jax.grad).
- `problem`: an ask/tell problem over architecture fields, evaluated in one batched call.
- `search`: random search and a simple evolution strategy over a `Problem`.
- `pruning`: energy-aware pruning of a small Flax CNN on scikit-learn's digits (the library side of
  `eyejax-prune`, whose command is `eyejax.app.prune`).
- `training`, `energy`: that CNN's masked training, and its energy under each energy model.
- `models`, `data`: that CNN and data set.

Submodules are imported on demand (`from eyejax.codesign import differentiable`), so the Flax and
scikit-learn parts cost nothing to the others.
"""
