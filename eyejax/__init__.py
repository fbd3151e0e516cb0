"""eyejax: batched JAX models of the Eyeriss family of DNN accelerators.

Precision policy: access counts and cycles are exact int64 (they pass 2**31 on real networks, e.g.
VGG-16's RF accesses), so eyejax enables `jax_enable_x64` when imported. Energies are float64.
The mapping search ranks candidates in float32 for speed and then recounts the chosen mapping
exactly in int64 (see eyejax/dataflow/rs.py).
"""
import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
