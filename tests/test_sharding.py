"""evaluate_arrays over several local devices (jax.sharding) and with repeated layers evaluated once:
both give results identical to the plain single-device run."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import random_archs
from eyejax.evaluate import distinct_layers, evaluate_arrays
from eyejax.sparsity import Sparsity
from eyejax.workload import get_network

REPO = Path(__file__).resolve().parents[1]
NET = "mobilenet_v1_0.5_128"

CHILD = textwrap.dedent("""
    import sys, numpy as np, jax
    import eyejax
    from eyejax import sharding
    from eyejax.arch.eyeriss_v1 import random_archs
    from eyejax.evaluate import evaluate_arrays
    from eyejax.sparsity import Sparsity
    from eyejax.workload import get_network
    assert jax.local_device_count() == 4, jax.local_devices()
    from eyejax.workload import Network
    net = get_network("%s")
    net = Network("tiny", tuple(net[n] for n in ["Conv2d_0", "Conv2d_7_dw", "Conv2d_7_pw", "Conv2d_8_dw", "Conv2d_8_pw"]))
    layers = net.arrays()
    sp = Sparsity.from_densities(layers.num_layers, iact=0.5)
    arch = random_archs(10, seed=5)
    # chunks of 3 -> padded to 4 (one configuration per device); 10 configs -> 3 chunks
    out = evaluate_arrays(arch, layers, sp, chunk_size=3)
    assert sharding.config_mesh(tuple(jax.local_devices())).devices.size == 4
    np.savez(sys.argv[1], **out)
""" % NET)


def test_sharded_over_4_cpu_devices_equals_unsharded(tmp_path):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out_file = tmp_path / "sharded.npz"
    p = subprocess.run([sys.executable, "-c", CHILD, str(out_file)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    sharded = dict(np.load(out_file))

    net = _tiny(get_network(NET))
    layers = net.arrays()
    sp = Sparsity.from_densities(layers.num_layers, iact=0.5)
    plain = evaluate_arrays(random_archs(10, seed=5), layers, sp, chunk_size=3, devices=1)
    assert set(plain) == set(sharded)
    for k in plain:
        assert plain[k].shape == (10, layers.num_layers), k
        np.testing.assert_array_equal(sharded[k], plain[k], err_msg=k)


def test_repeated_layers_evaluated_once_give_identical_results():
    net = get_network(NET)
    layers = net.arrays()
    keep, inverse = distinct_layers(layers, Sparsity.dense(layers.num_layers))
    assert len(keep) < layers.num_layers                      # MobileNet repeats its middle block
    assert (inverse[keep] == np.arange(len(keep))).all()
    # a swept [B, L] sparsity column takes part in the key: per-layer densities make layers distinct
    B = 6
    dens = np.tile(np.linspace(0.3, 1.0, layers.num_layers), (B, 1)) * np.linspace(0.5, 1, B)[:, None]
    sp = Sparsity.from_densities(layers.num_layers, iact=0.5)
    sp_swept = sp.__class__(**{**sp.__dict__, "mac_density": dens})
    assert len(distinct_layers(layers, sp_swept)[0]) == layers.num_layers
    arch = random_archs(B, seed=2)
    tiny = _tiny(net)
    tl = tiny.arrays()
    assert len(distinct_layers(tl, Sparsity.dense(5))[0]) == 3
    s = Sparsity.from_densities(5, iact=0.5)
    a = evaluate_arrays(arch, tl, s, dedupe_layers=True)
    b = evaluate_arrays(arch, tl, s, dedupe_layers=False)
    for k in a:
        assert a[k].shape == (B, 5)
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _tiny(net):
    """The first layer and two identical dw/pw pairs: 5 layers, 3 distinct."""
    from eyejax.workload import Network

    pick = ["Conv2d_0", "Conv2d_7_dw", "Conv2d_7_pw", "Conv2d_8_dw", "Conv2d_8_pw"]
    return Network("tiny", tuple(net[n] for n in pick))
