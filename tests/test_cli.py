"""The `eyejax` command: configuration checks (in-process, via Hydra's compose API) and end-to-end
runs of `python -m eyejax.app.cli` in a temporary Hydra run directory (results.parquet, offline W&B run)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from eyejax.arch.errors import ArchError
from eyejax.app.runtime import CONF_DIR, find_conf_dir
from eyejax.app.cli import precheck_overrides
from eyejax.app.config import (ARCH_FIELDS, ConfigError, arch_from_config, build_inputs, grid,
                           network_from_config, sparsity_from_config)

REPO = Path(__file__).resolve().parents[1]
NET = "mobilenet_v1_0.5_128"
NET_LAYERS = 28
REQUIRED = ["config_id", "layer", "macs", "active_pes", "utilization", "cycles", "latency_ms",
            "energy", "energy_dram", "energy_glb", "energy_noc", "energy_rf", "energy_alu",
            "dram_accesses", "glb_accesses", "noc_accesses", "rf_accesses", "feasible"]


def cfg_of(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="config", overrides=list(overrides))


# ----------------------------------------------------------------------------------------------
# configuration (fast, in-process)


def test_conf_dir_is_the_repo_conf():
    assert Path(find_conf_dir()) == REPO / "conf"
    for f in ("config.yaml", "arch/eyeriss_v1.yaml", "sparsity/dense.yaml", "sparsity/relu50.yaml",
              "workload/custom.yaml"):
        assert (REPO / "conf" / f).is_file(), f


def test_default_config_is_the_chip():
    cfg = cfg_of()
    assert cfg.objective == "energy" and cfg.wandb.mode == "offline"
    assert set(cfg.arch) >= set(ARCH_FIELDS)  # every EyerissV1 field is listed
    arch, swept = arch_from_config(cfg.arch)
    assert swept == {}
    assert (arch.pe_rows, arch.pe_cols, arch.glb_banks) == (12, 14, 25)
    assert arch.energy.dram == 200.0 and arch.energy.unit == "normalized"


def test_sweep_is_row_major_cartesian_product_in_field_order():
    # glb_banks is given first on the command line but pe_rows comes first in EyerissV1.
    cfg = cfg_of("arch.glb_banks=[25,50,60]", "arch.pe_rows=[8,12]", "arch.energy.dram=[100,200]")
    arch, swept = arch_from_config(cfg.arch)
    assert list(swept) == ["arch.pe_rows", "arch.glb_banks", "arch.energy.dram"]
    np.testing.assert_array_equal(swept["arch.pe_rows"], [8] * 6 + [12] * 6)
    np.testing.assert_array_equal(swept["arch.glb_banks"], [25, 25, 50, 50, 60, 60] * 2)
    np.testing.assert_array_equal(swept["arch.energy.dram"], [100, 200] * 6)
    np.testing.assert_array_equal(arch.pe_rows, swept["arch.pe_rows"])
    assert arch.pe_cols == 14  # unswept fields stay scalars
    a2, s2 = grid(glb_banks=[25, 50, 60], pe_rows=[8, 12], energy_dram=[100, 200])
    for k in swept:
        np.testing.assert_array_equal(s2[k], swept[k])


@pytest.mark.parametrize("override, exc, words", [
    ("arch.pe_rows=0", ArchError, ["arch.pe_rows", "[1, 4096]"]),
    ("arch.pe_rows=[12,0]", ArchError, ["arch.pe_rows"]),
    ("+arch.not_a_field=3", ConfigError, ["arch.not_a_field", "pe_rows", "glb_banks"]),
    ("arch.glb_banks=[]", ConfigError, ["arch.glb_banks", "empty"]),
    ("arch.pe_cols=abc", ConfigError, ["arch.pe_cols"]),
    ("arch.glb_ifmap_banks=25", ArchError, ["arch.glb_ifmap_banks"]),
    ("arch.energy.dram=-1", ArchError, ["arch.energy.dram"]),
    ("arch.energy_table=nope", ConfigError, ["arch.energy_table", "isca16_normalized"]),
])
def test_bad_arch_is_named(override, exc, words):
    with pytest.raises(exc) as e:
        arch_from_config(cfg_of(override).arch)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("overrides, words", [
    (["workload=custom"], ["workload.path"]),
    ([f"workload={NET}", "workload.batch=0"], ["workload.batch"]),
    ([f"workload={NET}", "workload.path=does_not_exist.csv"], ["workload.path"]),
    ([f"workload={NET}", "sparsity.iact_density=[0.5,0.5]"], ["sparsity.iact_density", "28"]),
    ([f"workload={NET}", "sparsity.weight_density=1.5"], ["sparsity.weight_density"]),
    (["objective=speed"], ["objective", "edp"]),
    (["search=greedy"], ["search", "exact"]),
    (["wandb.mode=sometimes"], ["wandb.mode"]),
])
def test_bad_run_config_is_named(overrides, words, tmp_path):
    with pytest.raises(ValueError) as e:
        build_inputs(cfg_of(*overrides), base_dir=tmp_path)
    for w in words:
        assert w in str(e.value)


def test_every_workload_and_sparsity_config_builds():
    for f in sorted((REPO / "conf" / "workload").glob("*.yaml")):
        if f.stem == "custom":
            continue
        net = network_from_config(cfg_of(f"workload={f.stem}").workload)
        assert len(net.layers) > 0, f.stem
    net = network_from_config(cfg_of(f"workload={NET}", "workload.batch=2").workload)
    assert {l.N for l in net.layers} == {2}
    sp = sparsity_from_config(cfg_of("sparsity=relu50").sparsity, NET_LAYERS)
    np.testing.assert_allclose(np.asarray(sp.iact_density), 0.5)
    np.testing.assert_allclose(np.asarray(sp.weight_density), 1.0)
    sp = sparsity_from_config(cfg_of(f"sparsity.iact_density=[{','.join(['0.25'] * 28)}]").sparsity,
                              NET_LAYERS)
    np.testing.assert_allclose(np.asarray(sp.iact_density), 0.25)


def test_custom_workload_path_is_relative_to_the_start_dir(tmp_path):
    src = REPO / "eyejax" / "workload" / "data" / f"{NET}.csv"
    (tmp_path / "net.csv").write_text(src.read_text())
    net = network_from_config(cfg_of("workload=custom", "workload.path=net.csv").workload,
                              base_dir=tmp_path)
    assert len(net.layers) == NET_LAYERS


def test_precheck_names_unknown_override_fields():
    assert "arch.not_a_field" in precheck_overrides(["arch.not_a_field=3"])
    assert "pe_rows" in precheck_overrides(["arch.not_a_field=3"])
    assert "arch.energy.foo" in precheck_overrides(["arch.energy.foo=1"])
    assert precheck_overrides(["arch.pe_rows=[8,12]", "workload=vgg16", "hydra.run.dir=x",
                               "+arch.x=1", "--cfg", "job"]) is None


# ----------------------------------------------------------------------------------------------
# the command, end to end (subprocesses, run concurrently)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["WANDB_SILENT"] = "true"
    for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_DISABLED"):
        env.pop(k, None)
    return env


def _start(run_dir: Path, *overrides):
    run_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "eyejax.app.cli", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(p, timeout=240):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    procs = {
        "single": _start(base / "single", f"workload={NET}", "wandb.mode=offline"),
        "sweep": _start(base / "sweep", f"workload={NET}", "wandb.mode=offline", "arch.pe_rows=[8,12]"),
        "exact": _start(base / "exact", f"workload={NET}", "wandb.mode=disabled", "search=exact"),
    }
    res = {k: (base / k, *_finish(p)) for k, p in procs.items()}
    return res


def _offline_run(run_dir: Path) -> Path:
    found = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(found) == 1, list((run_dir / "wandb").glob("*")) if (run_dir / "wandb").exists() else run_dir
    return found[0]


def _check_results(run_dir: Path, n_configs: int):
    df = pd.read_parquet(run_dir / "results.parquet")
    missing = [c for c in REQUIRED if c not in df.columns]
    assert not missing, missing
    assert any(c.startswith("map_") for c in df.columns)
    assert len(df) == n_configs * NET_LAYERS
    assert not df.duplicated(["config_id", "layer"]).any()
    assert sorted(df["config_id"].unique()) == list(range(n_configs))
    assert (df.groupby("config_id")["layer"].nunique() == NET_LAYERS).all()
    assert df["feasible"].all()
    assert (df["energy"] > 0).all() and (df["macs"] > 0).all()
    totals = pd.read_parquet(run_dir / "totals.parquet")
    assert len(totals) == n_configs
    return df, totals


def _check_wandb(run_dir: Path, n_configs: int):
    off = _offline_run(run_dir)
    assert list(off.glob("*.wandb")), "no .wandb transaction log"
    assert b"num_configs" in next(off.glob("*.wandb")).read_bytes()  # the summary record
    summary = json.loads((off / "files" / "eyejax-summary.json").read_text())
    config = json.loads((off / "files" / "eyejax-config.json").read_text())
    assert summary["num_configs"] == n_configs and summary["num_infeasible"] == 0
    assert summary["network/energy"] > 0 and summary["network/latency_ms"] > 0
    assert config["workload"]["name"] == NET and config["wandb"]["mode"] == "offline"
    return summary, config


def test_single_config_run(runs):
    run_dir, rc, out, err = runs["single"]
    assert rc == 0, err[-3000:]
    df, totals = _check_results(run_dir, 1)
    assert "network totals" in out and "Conv2d_13_pw" in out
    np.testing.assert_allclose(totals["energy"].iloc[0], df["energy"].sum(), rtol=1e-9)
    summary, config = _check_wandb(run_dir, 1)
    assert config["arch"]["pe_rows"] == 12
    np.testing.assert_allclose(summary["network/energy"], totals["energy"].iloc[0], rtol=1e-9)


def test_sweep_run(runs):
    run_dir, rc, out, err = runs["sweep"]
    assert rc == 0, err[-3000:]
    df, totals = _check_results(run_dir, 2)
    assert "2 configurations, 0 infeasible" in out
    per_cfg = df.groupby("config_id")["arch.pe_rows"].unique()
    assert [list(v) for v in per_cfg] == [[8], [12]]
    np.testing.assert_array_equal(totals["arch.pe_rows"], [8, 12])
    summary, config = _check_wandb(run_dir, 2)
    assert config["arch"]["pe_rows"] == [8, 12]
    best = totals.loc[totals["energy"].idxmin()]
    assert summary["best_config_id"] == int(best["config_id"])
    assert summary["best/arch.pe_rows"] == int(best["arch.pe_rows"])


def test_exact_search_run(runs):
    """search=exact: every layer at or below the fast grid's energy (the same default design)."""
    run_dir, rc, out, err = runs["exact"]
    assert rc == 0, err[-3000:]
    assert "exact search" in out
    exact, _ = _check_results(run_dir, 1)
    fast = pd.read_parquet(runs["single"][0] / "results.parquet")
    assert (exact["energy"].to_numpy() <= fast["energy"].to_numpy() * (1 + 1e-9)).all()
    assert exact["energy"].sum() < fast["energy"].sum()


@pytest.mark.parametrize("override, words", [
    ("arch.pe_rows=0", ["arch.pe_rows", "[1, 4096]"]),
    ("arch.not_a_field=3", ["arch.not_a_field", "pe_rows"]),
    ("+arch.not_a_field=3", ["arch.not_a_field", "pe_rows"]),
])
def test_bad_input_fails_before_work(tmp_path, override, words):
    run_dir = tmp_path / "run"
    rc, out, err = _finish(_start(run_dir, f"workload={NET}", override), timeout=120)
    assert rc != 0
    for w in words:
        assert w in err, err
    assert not (run_dir / "results.parquet").exists()
    assert not (run_dir / "wandb").exists()
