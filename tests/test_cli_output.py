"""What a person reads: the run's output goes through Python logging (the console shows the plain
table, Hydra's job log eyejax.log holds the same lines), the header states the sparsity actually
used, counts are in good grammar, and --help explains groups, fields and units."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eyejax.app.config import ARCH_FIELDS

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["WANDB_SILENT"] = "true"
    return env


def _run(args, cwd, module="eyejax.app.cli", timeout=300):
    p = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=_env(),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def per_layer_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("out")
    run_dir = base / "run"
    rc, out, err = _run(["workload.layer_types=[CONV]", "sparsity.iact_density=[1,0.5,0.4,0.3,0.3]",
                         "wandb.mode=disabled", f"hydra.run.dir={run_dir}"], cwd=base)
    assert rc == 0, err[-3000:]
    return run_dir, out, err


def test_console_shows_the_table_and_the_job_log_holds_it(per_layer_run):
    run_dir, out, err = per_layer_run
    assert "per layer (" in out and "network totals:" in out
    assert "[INFO]" not in out  # plain text on the console
    table_row = next(ln for ln in out.splitlines() if ln.startswith("CONV3"))
    log = (run_dir / "eyejax.log").read_text()
    assert "[eyejax][INFO]" in log and "network totals:" in log
    assert table_row in log
    assert f"wrote {run_dir / 'results.parquet'}" in log


def test_header_states_the_sparsity_used_and_counts_read_well(per_layer_run):
    _, out, _ = per_layer_run
    header = out.splitlines()[0]
    assert "iact per layer 0.3-1" in header and "dense" not in header, header
    assert "1 configuration" in header and "1 configurations" not in out
    assert "energy in normalized units, one MAC = 1" in out and "units units" not in out


def test_dense_header_says_dense(tmp_path):
    from eyejax.app.cli import _sparsity_words

    assert _sparsity_words({"sparsity": {"iact_density": 1.0, "weight_density": 1,
                                         "ofmap_density": [1.0, 1.0]}}) == "dense"
    assert _sparsity_words({"sparsity": {"iact_density": 0.5, "weight_density": 1.0,
                                         "ofmap_density": 0.5}}) == \
        "densities iact 0.5, weight 1, ofmap 0.5"


def test_plural():
    from eyejax.text import plural

    assert plural(1, "configuration") == "1 configuration"
    assert plural(0, "configuration") == "0 configurations"
    assert plural(1_000_000, "configuration") == "1,000,000 configurations"


def test_help_explains_groups_fields_and_units(tmp_path):
    rc, out, err = _run(["--help"], cwd=tmp_path, timeout=120)
    assert rc == 0, err
    assert "Units:" in out and "pj_65nm = pJ" in out
    for group in ("arch", "workload", "sparsity", "dataflow", "sweep"):
        assert f"== {group} (choose with {group}=<option>" in out, group
    missing = [f for f in ARCH_FIELDS if f"arch.{f} = " not in out]
    assert not missing, missing
    assert "arch.energy_table = isca16_normalized" in out and "absolute pJ" in out
    assert "wandb.mode = offline" in out and "objective = energy" in out
    rc, out2, err = _run(["arch=eyeriss_v2", "--help"], cwd=tmp_path, timeout=120)
    assert rc == 0, err
    assert "fields of arch=eyeriss_v2" in out2 and "arch.cluster_rows = " in out2


def test_prune_help_lists_only_its_groups(tmp_path):
    rc, out, err = _run(["--help"], cwd=tmp_path, module="eyejax.app.prune", timeout=120)
    assert rc == 0, err
    assert "== arch (" in out and "== arch_v2 (" in out and "prune.max_acc_drop = 0.01" in out
    for group in ("workload", "sweep", "dataflow", "sparsity"):
        assert f"{group}=" not in out and f"== {group}" not in out, group
