"""Sweep grids (eyejax.sweep): axis syntax, lazy decoding, bad sweeps named before any work, results
equal to the plain batched evaluation, Parquet parts, resume after SIGKILL, two-process runs through
jax.distributed, the report files and the offline W&B run.

The end-to-end tests run `python -m eyejax.app.cli` in subprocesses on a 5-layer network (a slice of
MobileNet with two repeated layer pairs) and share a JAX compilation cache to keep them quick.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.app.runtime import CONF_DIR
from eyejax.evaluate import evaluate
from eyejax.sparsity import Sparsity
from eyejax.sweep import SweepError, build_grid, read_results, run_sweep
from eyejax.app.sweep_cli import build_plan
from eyejax.sweep.grid import axis_values
from eyejax.workload import Network, get_network, save_network_csv

REPO = Path(__file__).resolve().parents[1]
TINY_LAYERS = ["Conv2d_0", "Conv2d_7_dw", "Conv2d_7_pw", "Conv2d_8_dw", "Conv2d_8_pw"]

# 3 (zipped array shapes) x 4 (GLB) x 2 (DRAM energy) x 2 (activation density) = 48 configurations
GRID = ["sweep.name=tiny",
        "+sweep.axes.arch.pe_rows=[8,12,16]",
        "+sweep.axes.arch.pe_cols=[10,14,18]",
        "+sweep.axes.arch.glb_banks={start:8,stop:64,factor:2}",
        "+sweep.axes.arch.energy.dram=[100,200]",
        "+sweep.axes.sparsity.iact_density=[0.5,1.0]",
        "sweep.zip=[[arch.pe_rows,arch.pe_cols]]",
        "sweep.chunk_size=4", "sweep.eval_chunk=4"]
GRID_SIZE = 48


def tiny_network() -> Network:
    net = get_network("mobilenet_v1_0.5_128")
    return Network("tiny", tuple(net[n] for n in TINY_LAYERS))


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("net") / "tiny.csv"
    save_network_csv(tiny_network(), p)
    return p


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jax_cache")


def cfg_of(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def _env(cache: Path, **extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["WANDB_SILENT"] = "true"
    env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_DISABLED", "EYEJAX_PROCESS_INDEX",
              "EYEJAX_PROCESS_COUNT", "SLURM_PROCID", "SLURM_NTASKS"):
        env.pop(k, None)
    env.update(extra)
    return env


def _cli(tmp: Path, cache: Path, *overrides, env_extra=None):
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "eyejax.app.cli", *overrides,
                             f"hydra.run.dir={tmp / 'hydra'}"],
                            cwd=tmp, env=_env(cache, **(env_extra or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(p, timeout=300):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def _tiny_overrides(csv: Path, out_dir: Path, *more):
    return ["workload=custom", f"workload.path={csv}", *GRID, f"sweep.dir={out_dir}", *more]


# ----------------------------------------------------------------------------------------------
# grid syntax and decoding (in-process, no evaluation)


def test_axis_value_syntax():
    assert axis_values([8, 12], "a") == [8, 12]
    assert axis_values({"values": [1, 2]}, "a") == [1, 2]
    assert axis_values({"start": 8, "stop": 16, "step": 4}, "a") == [8, 12, 16]
    assert axis_values({"start": 8, "stop": 17, "step": 4}, "a") == [8, 12, 16]
    assert axis_values({"start": 4, "stop": 128, "factor": 2}, "a") == [4, 8, 16, 32, 64, 128]
    np.testing.assert_allclose(axis_values({"start": 0.2, "stop": 1.0, "num": 5}, "a"),
                               [0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(axis_values({"start": 1, "stop": 100, "num": 3, "log": True}, "a"),
                               [1, 10, 100])
    np.testing.assert_allclose(axis_values({"start": 0.1, "stop": 0.35, "step": 0.05}, "a"),
                               [0.1, 0.15, 0.2, 0.25, 0.3, 0.35])
    # log-spaced values on an integer field are rounded, repeats dropped
    g = build_grid({"arch": {"glb_banks": {"start": 1, "stop": 4, "num": 6, "log": True}}}, None,
                   EyerissV1(), Sparsity.dense(3), 3)
    assert g.axes[0].values[0].tolist() == [1, 2, 3, 4]


def test_grid_is_row_major_with_zipped_axes_sharing_one_digit():
    axes = {"arch": {"pe_rows": [8, 12, 16], "glb_banks": [16, 32], "pe_cols": [10, 14, 18],
                     "energy": {"dram": [100.0, 200.0]}},
            "sparsity": {"iact_density": [0.5, 1.0]}}
    g = build_grid(axes, [["arch.pe_rows", "arch.pe_cols"]], EyerissV1(), Sparsity.dense(4), 4)
    assert [a.names for a in g.axes] == [("arch.pe_rows", "arch.pe_cols"), ("arch.glb_banks",),
                                         ("arch.energy.dram",), ("sparsity.iact_density",)]
    assert g.size == 3 * 2 * 2 * 2
    expect = list(itertools.product(zip([8, 12, 16], [10, 14, 18]), [16, 32], [100.0, 200.0],
                                    [0.5, 1.0]))
    idx = np.arange(g.size)
    cols = g.columns(idx)
    assert cols["arch.pe_rows"].tolist() == [e[0][0] for e in expect]
    assert cols["arch.pe_cols"].tolist() == [e[0][1] for e in expect]
    assert cols["arch.glb_banks"].tolist() == [e[1] for e in expect]
    assert cols["arch.energy.dram"].tolist() == [e[2] for e in expect]
    # any slice decodes on its own (chunks never need the whole grid)
    part = np.arange(5, 11)
    arch = g.arch(part)
    assert arch.pe_rows.tolist() == cols["arch.pe_rows"][5:11].tolist()
    assert arch.energy.dram.tolist() == cols["arch.energy.dram"][5:11].tolist()
    assert arch.filter_spad_words == 224 and arch.energy.glb == 6.0  # unswept: the base's scalar
    sp = g.sparsity(part)
    assert sp.iact_density.shape == (6, 4) and sp.mac_density.shape == (6, 4)
    assert sp.weight_density.shape == (4,)                            # unswept: shared [L]
    np.testing.assert_array_equal(sp.iact_density[:, 0], cols["sparsity.iact_density"][5:11])
    ref = Sparsity.from_densities(4, iact=0.5, ofmap=1.0)
    np.testing.assert_array_equal(sp.ifmap_rlc_ratio[1], ref.ifmap_rlc_ratio)  # config 6: 0.5


def test_million_grid_decodes_lazily():
    cfg = cfg_of("sweep=v1_million", "workload=alexnet")
    plan = build_plan(cfg)
    assert plan.size == 1_000_000 and not plan.per_layer
    assert plan.part_size * plan.num_layers <= 1 << 18
    last = plan.grid.arch(np.arange(999_990, 1_000_000))
    assert last.pe_rows.tolist() == [24] * 10 and last.energy.dram[-1] == pytest.approx(400.0)


@pytest.mark.parametrize("axes, zips, words", [
    ({"arch": {"pe_rowz": [8]}}, None, ["arch.pe_rowz", "not a sweepable field", "arch.pe_rows"]),
    ({"arch": {"energy": {"sram": [1.0]}}}, None, ["arch.energy.sram", "not a sweepable field"]),
    ({"arch": {"pe_rows": []}}, None, ["arch.pe_rows", "empty"]),
    ({"arch": {"glb_banks": {"start": 64, "stop": 8, "factor": 2}}}, None, ["arch.glb_banks", "empty"]),
    ({"arch": {"pe_rows": [8, 12], "pe_cols": [10, 14, 18]}}, [["arch.pe_rows", "arch.pe_cols"]],
     ["arch.pe_rows", "arch.pe_cols", "different lengths", "2", "3"]),
    ({"arch": {"pe_rows": [8]}}, [["arch.pe_rows", "arch.glb_banks"]],
     ["arch.glb_banks", "not an axis"]),
    ({"arch": {"pe_rows": [8, 0, 12]}}, None, ["arch.pe_rows", "0", "[1, 4096]"]),
    ({"arch": {"pe_rows": [8, 12.5]}}, None, ["arch.pe_rows", "integer", "12.5"]),
    ({"arch": {"energy": {"dram": [200, -1]}}}, None, ["arch.energy.dram"]),
    ({"sparsity": {"iact_density": [0.5, 1.5]}}, None, ["sparsity.iact_density", "[0, 1]"]),
    ({"arch": {"glb_ifmap_banks": [10, 30]}}, None, ["arch.glb_ifmap_banks", "glb_banks"]),
    ({"arch": {"glb_banks": {"start": 8, "stop": 64, "step": 0}}}, None, ["arch.glb_banks", "step"]),
])
def test_bad_sweeps_are_named(axes, zips, words):
    with pytest.raises(SweepError) as e:
        build_grid(axes, zips, EyerissV1(), Sparsity.dense(3), 3)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_cross_field_rule_is_checked_on_the_grid_not_per_axis():
    # glb_ifmap_banks=30 is fine once glb_banks=64 is swept alongside, bad with glb_banks=25
    g = build_grid({"arch": {"glb_banks": [64], "glb_ifmap_banks": [0, 30]}}, None, EyerissV1(),
                   Sparsity.dense(3), 3)
    assert g.size == 2


def test_bad_sweep_fails_before_work_in_the_command(tmp_path, tiny_csv, jax_cache):
    out = tmp_path / "out"
    rc, stdout, err = _wait(_cli(tmp_path, jax_cache, *_tiny_overrides(tiny_csv, out),
                                 "sweep.zip=[[arch.pe_rows,arch.glb_banks]]"), timeout=120)
    assert rc == 2 and "arch.glb_banks" in err and "different lengths" in err, err[-2000:]
    assert not out.exists()


def test_unknown_sweep_key_is_named():
    from eyejax.app.sweep_cli import check_sweep_keys

    with pytest.raises(SweepError, match="sweep.bogus"):
        check_sweep_keys({"name": "x", "bogus": 1})
    with pytest.raises(SweepError, match="sweep.per_layer"):
        check_sweep_keys({"name": "x", "per_layer": "sometimes"})
    with pytest.raises(ValueError, match="arch.pe_rows.*sweep.axes"):
        build_plan(cfg_of("sweep=v1_array_glb", "workload=alexnet", "arch.pe_rows=[8,12]"))


# ----------------------------------------------------------------------------------------------
# in-process: results equal the plain batched evaluation


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_csv):
    """The tiny sweep run in this process, uninterrupted, into its own directory."""
    d = tmp_path_factory.mktemp("reference")
    plan = build_plan(cfg_of(*_tiny_overrides(tiny_csv, d / "x")))
    run_sweep(plan, d)
    return plan, d


def test_sweep_equals_batched_evaluate(reference):
    plan, d = reference
    assert plan.size == GRID_SIZE and plan.num_chunks == 12 and plan.per_layer
    parts = sorted((d / "parts").glob("part-*.parquet"))
    assert [p.name for p in parts] == [f"part-{k:06d}.parquet" for k in range(12)]
    meta = json.loads((d / "sweep.json").read_text())
    assert meta["hash"] == plan.hash and meta["size"] == GRID_SIZE

    totals = read_results(d)
    assert totals["config_id"].tolist() == list(range(GRID_SIZE))
    idx = np.arange(GRID_SIZE)
    res = evaluate(plan.grid.arch(idx), plan.network, plan.grid.sparsity(idx), chunk_size=4)
    want = res.network_totals(swept=plan.grid.columns(idx))
    for c in want.columns:
        if c in ("power_mw",):
            continue
        pd.testing.assert_series_equal(totals[c], want[c], check_names=False, check_dtype=False)
    assert {"pe_count", "sram_kb", "edp"} <= set(totals.columns)
    assert totals.loc[0, "pe_count"] == 8 * 10

    layers = read_results(d, per_layer=True)
    want_l = res.to_dataframe(swept=plan.grid.columns(idx))
    assert len(layers) == GRID_SIZE * 5
    for c in ("config_id", "layer", "energy", "cycles", "map_e", "dram_accesses", "feasible"):
        np.testing.assert_array_equal(layers[c].to_numpy(), want_l[c].to_numpy(), err_msg=c)


def test_rerun_of_a_finished_sweep_does_no_work_and_other_sweeps_are_refused(reference, tiny_csv):
    from eyejax.sweep.runner import SweepDirError

    plan, d = reference
    again = run_sweep(plan, d)
    assert again.computed == [] and len(again.skipped) == 12
    other = build_plan(cfg_of(*_tiny_overrides(tiny_csv, d / "x"), "objective=latency"))
    with pytest.raises(SweepDirError, match="holds a different sweep"):
        run_sweep(other, d)


def test_process_slices_cover_the_grid_once(reference, tmp_path):
    plan, ref_dir = reference
    for p in range(3):
        r = run_sweep(plan, tmp_path, process_index=p, process_count=3)
        assert r.computed == list(range(p, 12, 3))
    pd.testing.assert_frame_equal(read_results(tmp_path), read_results(ref_dir))


# ----------------------------------------------------------------------------------------------
# the command: SIGKILL + resume, two processes through jax.distributed, report and W&B


def test_killed_sweep_resumes_to_the_same_table(tmp_path, reference, tiny_csv, jax_cache):
    plan, ref_dir = reference
    out = tmp_path / "out"
    args = _tiny_overrides(tiny_csv, out, "wandb.mode=offline")
    p = _cli(tmp_path / "a", jax_cache, *args, env_extra={"EYEJAX_SWEEP_PART_DELAY": "0.5"})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if len(list((out / "parts").glob("part-*.parquet"))) >= 3 or p.poll() is not None:
            break
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()[1][-3000:]
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    n_done = len(list((out / "parts").glob("part-*.parquet")))
    assert 3 <= n_done < 12
    assert not (out / "report.md").exists()

    rc, stdout, err = _wait(_cli(tmp_path / "b", jax_cache, *args))
    assert rc == 0, err[-3000:]
    assert "resuming" in stdout and f"evaluated {(12 - n_done) * 4} configurations" in stdout
    assert "sweep:" in err and "config" in err                            # the progress bar
    pd.testing.assert_frame_equal(read_results(out), read_results(ref_dir))
    pd.testing.assert_frame_equal(read_results(out, per_layer=True),
                                  read_results(ref_dir, per_layer=True))
    assert json.loads((out / "sweep.json").read_text())["hash"] == plan.hash

    # the report, next to the results
    for f in ("pareto.png", "breakdown.png", "best.md", "report.md"):
        assert (out / f).stat().st_size > 0, f
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best_md = (out / "best.md").read_text()
    totals = read_results(out)
    best = totals[totals["feasible"]].sort_values(["energy", "config_id"]).iloc[0]
    assert f"| 1 | {int(best['config_id'])} |" in best_md
    report = (out / "report.md").read_text()
    assert "Pareto front: energy vs latency_ms" in report and "![Pareto fronts](pareto.png)" in report

    # W&B, offline: read back what was logged from the run directory
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = runs[0] / "files"
    summary = json.loads((files / "eyejax-summary.json").read_text())
    assert summary["num_configs"] == GRID_SIZE and summary["best_config_id"] == int(best["config_id"])
    assert summary["network/energy"] == pytest.approx(float(best["energy"]), rel=1e-12)
    assert summary["sweep_hash"] == plan.hash
    config = json.loads((files / "eyejax-config.json").read_text())
    assert config["sweep"]["name"] == "tiny" and config["wandb"]["mode"] == "offline"
    tables = {t.name.split("_")[0]: t for t in (files / "media" / "table").glob("*.table.json")}
    results = json.loads(tables["results"].read_text())
    assert len(results["data"]) == GRID_SIZE and "energy" in results["columns"]
    cid = results["columns"].index("config_id")
    assert sorted(r[cid] for r in results["data"]) == list(range(GRID_SIZE))
    images = [p.name for p in (files / "media" / "images").rglob("*.png")]
    assert any("pareto" in n for n in images) and any("breakdown" in n for n in images), images
    blob = next(runs[0].glob("*.wandb")).read_bytes()
    assert b"num_configs" in blob and b"results" in blob


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_through_jax_distributed_equal_one(tmp_path, reference, tiny_csv, jax_cache):
    plan, ref_dir = reference
    out = tmp_path / "out"
    port = _free_port()
    procs = [_cli(tmp_path / f"p{i}", jax_cache,
                  *_tiny_overrides(tiny_csv, out, "wandb.mode=disabled", "sweep.distributed=true",
                                   f"sweep.coordinator_address=127.0.0.1:{port}",
                                   "sweep.process_count=2", f"sweep.process_index={i}"))
             for i in range(2)]
    res = [_wait(p) for p in procs]
    for rc, stdout, err in res:
        assert rc == 0, err[-3000:]
    assert "process 1 of 2 done" in res[1][1]
    assert "evaluated 24 configurations" in res[0][1] and "evaluated 24 configurations" in res[1][1]
    # each process wrote its own chunks (p, p+2, ...); the merged table equals the 1-process run
    pd.testing.assert_frame_equal(read_results(out), read_results(ref_dir))
    assert (out / "report.md").exists()


# ----------------------------------------------------------------------------------------------
# Hydra multirun: outer axes across processes (joblib launcher), and the Slurm launcher config


def test_launcher_configs_compose():
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        c = compose(config_name="config", overrides=["hydra/launcher=processes"],
                    return_hydra_config=True)
        assert c.hydra.launcher._target_.endswith("JoblibLauncher")
        assert c.hydra.launcher.backend == "loky"
        try:
            import hydra_plugins.hydra_submitit_launcher  # noqa: F401
        except ImportError:
            return
        c = compose(config_name="config", overrides=["hydra/launcher=slurm"],
                    return_hydra_config=True)
        assert c.hydra.launcher._target_.endswith("SlurmLauncher")
        assert c.hydra.launcher.gpus_per_node == 1 and c.hydra.launcher.tasks_per_node == 1


def test_multirun_through_submitit_runs_locally(tmp_path, tiny_csv, jax_cache):
    """The Slurm launcher's machinery (hydra-submitit-launcher: pickled jobs, one process each,
    results collected) run with submitit's local executor: what hydra/launcher=slurm does on a
    cluster, short of the Slurm scheduler itself."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    base = tmp_path / "submitit"
    base.mkdir()
    args = ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
            "workload=custom", f"workload.path={tiny_csv}", "workload.batch=1,2", *GRID,
            "wandb.mode=disabled", "sweep.plots=false", f"hydra.sweep.dir={base / 'hydra'}"]
    p = subprocess.run([sys.executable, "-m", "eyejax.app.cli", *args], cwd=base, env=_env(jax_cache),
                       capture_output=True, text=True, timeout=500)
    assert p.returncode == 0, p.stderr[-3000:]
    dirs = sorted((base / "sweeps").glob("tiny-tiny-*"))
    assert len(dirs) == 2
    assert all(len(read_results(d)) == GRID_SIZE for d in dirs)
    assert len(list((base / "hydra").rglob("*_submitted.pkl"))) == 2   # submitit's job files


def test_multirun_runs_outer_axes_as_separate_processes(tmp_path, tiny_csv, jax_cache):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    base = tmp_path / "multi"
    base.mkdir()
    args = ["-m", "hydra/launcher=processes", "workload=custom", f"workload.path={tiny_csv}",
            "workload.batch=1,2", *GRID, "wandb.mode=disabled", "sweep.plots=false",
            f"hydra.sweep.dir={base / 'hydra'}"]
    p = subprocess.run([sys.executable, "-m", "eyejax.app.cli", *args], cwd=base, env=_env(jax_cache),
                       capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    dirs = sorted((base / "sweeps").glob("tiny-tiny-*"))
    assert len(dirs) == 2                       # one sweep directory per job (different batch)
    batches = set()
    for d in dirs:
        t = read_results(d)
        assert len(t) == GRID_SIZE and (d / "best.md").exists()
        batches.add(json.loads((d / "sweep.json").read_text())["config"]["workload"]["batch"])
    assert batches == {1, 2}
    logs = list((base / "hydra").rglob("eyejax.log"))
    assert len(logs) == 2
