"""A workload given as a Python file that defines ``network()`` returning a Network: the way to
bring a Flax or JAX model to the command line (the file builds the model and calls an importer)."""
from __future__ import annotations

import importlib.util
import os

from eyejax.workload.layer import WorkloadError
from eyejax.workload.network import Network


def network_from_python(path: str | os.PathLike) -> Network:
    """Runs the Python file at `path` and returns what its ``network()`` returns (a Network), e.g.
    ``def network(): return from_flax(model, model.init(key, x), x)``. The file is executed as the
    user's own code (like ``python my_net.py``)."""
    p = os.fspath(path)
    spec = importlib.util.spec_from_file_location(f"eyejax_user_workload_{abs(hash(p))}", p)
    if spec is None or spec.loader is None:
        raise WorkloadError(f"{p}: cannot be loaded as a Python file")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, "network", None)
    if not callable(fn):
        raise WorkloadError(f"{p} must define a function network() that returns an "
                            f"eyejax Network (e.g. from from_flax or from_jax)")
    net = fn()
    if not isinstance(net, Network):
        raise WorkloadError(f"{p}: network() returned {type(net).__name__}, not an eyejax Network")
    return net
