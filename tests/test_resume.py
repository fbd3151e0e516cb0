"""Resume trusts a sweep part only when it verifies (chunk index, row count, config_id range, every
page's checksum); the rest is recomputed with a warning. Stray files are neither counted nor read,
and sweep.dir may not be a file or a foreign folder. In-process, on the 48-configuration tiny sweep
of test_sweep (one chunk of 4 configurations recomputed per case)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

import eyejax  # noqa: F401
from eyejax.sweep import read_results, run_sweep
from eyejax.app.sweep_cli import build_plan
from eyejax.sweep.runner import SweepDirError, part_name, verify_part
from eyejax.workload import save_network_csv

from test_sweep import _tiny_overrides, cfg_of, tiny_network


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    csv = d / "tiny.csv"
    save_network_csv(tiny_network(), csv)
    plan = build_plan(cfg_of(*_tiny_overrides(csv, d / "x")))
    ref = d / "ref"
    run_sweep(plan, ref)
    return plan, ref


@pytest.fixture
def copy(finished, tmp_path):
    plan, ref = finished
    d = tmp_path / "sweep"
    shutil.copytree(ref, d)
    return plan, ref, d


def _same_tables(d: Path, ref: Path):
    pd.testing.assert_frame_equal(read_results(d), read_results(ref))
    pd.testing.assert_frame_equal(read_results(d, per_layer=True), read_results(ref, per_layer=True))
    assert read_results(d)["config_id"].is_unique


def test_damaged_part_with_intact_footer_is_recomputed(copy, caplog):
    plan, ref, d = copy
    p = d / "parts" / part_name(3)
    data = bytearray(p.read_bytes())
    data[64:64 + 512] = b"\xff" * 512   # data pages garbled, footer (end of file) intact
    p.write_bytes(bytes(data))
    assert verify_part(p, plan, 3) is not None
    with caplog.at_level(logging.WARNING, logger="eyejax.sweep.runner"):
        r = run_sweep(plan, d)
    assert r.computed == [3] and list(r.rejected) == [str(p)]
    assert "does not verify" in caplog.text and "recomputing chunk 3" in caplog.text
    _same_tables(d, ref)


def test_part_copied_over_another_is_recomputed(copy, caplog):
    plan, ref, d = copy
    shutil.copyfile(d / "parts" / part_name(1), d / "parts" / part_name(2))
    with caplog.at_level(logging.WARNING, logger="eyejax.sweep.runner"):
        r = run_sweep(plan, d)
    assert r.computed == [2]
    assert "says chunk 1, not 2" in r.rejected[str(d / "parts" / part_name(2))]
    _same_tables(d, ref)


def test_part_with_wrong_rows_is_recomputed(copy):
    plan, ref, d = copy
    p = d / "parts" / part_name(5)
    df = pd.read_parquet(p)
    from eyejax.sweep.runner import write_part

    write_part(df.iloc[:2], p, plan.hash, 5)   # right hash and chunk index, rows missing
    assert "2 rows, expected 4" in verify_part(p, plan, 5)
    assert run_sweep(plan, d).computed == [5]
    _same_tables(d, ref)


def test_stray_part_files_are_not_counted(copy, caplog):
    plan, ref, d = copy
    shutil.copyfile(d / "parts" / part_name(1), d / "parts" / "part-000001 (copy).parquet")
    shutil.copyfile(d / "parts" / part_name(1), d / "parts" / part_name(99))
    with caplog.at_level(logging.WARNING, logger="eyejax.sweep.runner"):
        r = run_sweep(plan, d)
    assert r.computed == [] and len(r.stray) == 2
    assert "stray" in caplog.text
    _same_tables(d, ref)


def test_deleted_per_layer_part_is_recomputed(copy):
    plan, ref, d = copy
    (d / "layers" / part_name(4)).unlink()
    r = run_sweep(plan, d)
    assert r.computed == [4]
    _same_tables(d, ref)


def test_sweep_dir_must_be_a_sweep_directory(finished, tmp_path):
    plan, _ = finished
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(SweepDirError, match="is a file"):
        run_sweep(plan, f)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(SweepDirError, match="not a sweep directory"):
        run_sweep(plan, other)
    assert (other / "notes.txt").read_text() == "keep me" and not (other / "parts").exists()
