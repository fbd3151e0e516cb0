"""Evaluating a given RS mapping (evaluate(..., mapping=...), the `mapping=` CLI option, presets)."""
from __future__ import annotations

import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.dataflow.mapping import COUNT_KEYS, RSMapping
from eyejax.dataflow.mapping_file import MappingError, load_mapping, mapping_arrays
from eyejax.dataflow.rs import layer_counts
from eyejax.evaluate import evaluate
from eyejax.sim import simulate_rs_counts
from eyejax.workload import get_network

CONV = get_network("alexnet").select(types=("CONV",))
TABLE_III = {  # JSSC17 Table III: m n e p q r t
    "CONV1": (96, 1, 7, 16, 1, 1, 2), "CONV2": (64, 1, 27, 16, 2, 1, 1),
    "CONV3": (64, 4, 13, 16, 4, 1, 4), "CONV4": (64, 4, 13, 16, 3, 2, 2),
    "CONV5": (64, 4, 13, 16, 3, 2, 2),
}


@pytest.fixture(scope="module")
def chip_run():
    return evaluate(EyerissV1(), CONV, mapping="alexnet_jssc17").to_dataframe()


def test_preset_is_table_iii(chip_run):
    df = chip_run
    assert df["mapping_fixed"].all() and df["feasible"].all()
    for row in df.itertuples():
        assert (row.map_m, row.map_n, row.map_e, row.map_p, row.map_q, row.map_r, row.map_t) \
            == TABLE_III[row.layer]
        assert row.map_h == {"CONV1": 11, "CONV2": 5}.get(row.layer, 3)
    # JSSC17 Table V's active PEs: CONV2's 5x27 set runs as 5x14 + 5x13
    assert list(df["active_pes"]) == [154, 135, 156, 156, 156]


def test_given_mapping_costs_like_the_model_and_the_sim(chip_run):
    for layer, row in zip(CONV.layers, chip_run.itertuples()):
        mp = RSMapping(**{k: int(getattr(row, f"map_{k}")) for k in "hertpqnm"})
        model = {k: int(v) for k, v in layer_counts(layer.as_row(), EyerissV1(), mp).items()}
        sim = simulate_rs_counts(layer, mp, EyerissV1())
        for k in COUNT_KEYS:
            assert int(getattr(row, k)) == model[k] == sim[k], (layer.name, k)


def test_partial_and_batched():
    spec = {"CONV2": dict(e=27, r=1, t=1, p=16, q=2, n=1, m=64)}
    res = evaluate(EyerissV1(pe_rows=np.array([12, 16])), CONV, mapping=spec)
    df = res.to_dataframe()
    assert df.groupby("config_id")["mapping_fixed"].sum().tolist() == [1, 1]
    c2 = df[df.layer == "CONV2"]
    assert (c2.map_e == 27).all() and (c2.active_pes == 135).all()
    searched = evaluate(EyerissV1(pe_rows=np.array([12, 16])), CONV).to_dataframe()
    other = df.layer != "CONV2"
    np.testing.assert_array_equal(df.loc[other, "energy"], searched.loc[other, "energy"])


@pytest.mark.parametrize("arch, words", [
    (EyerissV1(glb_banks=20), ["CONV1", "glb_banks = 20"]),
    (EyerissV1(pe_rows=9), ["CONV2", "pe_rows = 9"]),
    (EyerissV1(filter_spad_words=100), ["filter_spad_words = 100"]),
    # CONV1's pass carries 2 sets x 16 filters of 11x11: 3872 words (fits the chip's 4096)
    (EyerissV1(filter_buffer_words=2048), ["CONV1", "filter buffer", "3872",
                                           "filter_buffer_words = 2048"]),
])
def test_mapping_that_does_not_fit_names_the_limit(arch, words):
    with pytest.raises(MappingError) as e:
        evaluate(arch, CONV, mapping="alexnet_jssc17")
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("spec, words", [
    ({"CONV9": dict(e=1, r=1, t=1, p=1, q=1, n=1, m=1)}, ["CONV9"]),
    ({"CONV1": dict(e=7, r=1, t=1, p=1, q=1, n=1)}, ["CONV1", "'m'"]),
    ({"CONV1": dict(e=7, r=1, t=1, p=1, q=1, n=1, m=1, z=3)}, ["CONV1", "'z'"]),
    ({"CONV1": dict(e=0, r=1, t=1, p=1, q=1, n=1, m=1)}, ["CONV1.e"]),
    ("no_such_preset", ["no_such_preset", "alexnet_jssc17"]),
])
def test_bad_mapping_is_named(spec, words):
    with pytest.raises(MappingError) as e:
        mapping_arrays(CONV, spec)
    for w in words:
        assert w in str(e.value)


def test_yaml_file(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("layers:\n  CONV3: {h: 3, e: 13, r: 1, t: 4, p: 16, q: 4, n: 4, m: 64}\n")
    assert load_mapping(str(f)) == {"CONV3": dict(h=3, e=13, r=1, t=4, p=16, q=4, n=4, m=64)}
    mp, fixed = mapping_arrays(CONV, str(f))
    assert list(fixed) == [False, False, True, False, False] and mp.e[2] == 13


def test_cli_mapping_option(tmp_path):
    """`eyejax mapping=<preset>` runs the given mapping; one that does not fit stops with the limit."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    base = [sys.executable, "-m", "eyejax.app.cli", "workload.layer_types=[CONV]", "wandb.mode=disabled",
            "mapping=alexnet_jssc17"]
    ok = subprocess.run(base + [f"hydra.run.dir={tmp_path / 'ok'}"], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "(given)" in ok.stdout and "mapping alexnet_jssc17" in ok.stdout
    df = pd.read_parquet(tmp_path / "ok" / "results.parquet")
    assert df["mapping_fixed"].all() and list(df["active_pes"]) == [154, 135, 156, 156, 156]
    bad = subprocess.run(base + ["arch.glb_banks=20", f"hydra.run.dir={tmp_path / 'bad'}"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "glb_banks = 20" in bad.stderr
    assert not (tmp_path / "bad" / "results.parquet").exists()
