"""eyejax.plots: Pareto fronts against brute force, Markdown tables, and the figures as PNG."""
from __future__ import annotations

import numpy as np
import pandas as pd

from eyejax.plots import markdown_table, pareto_front, pareto_mask, plot_breakdown, plot_pareto


def _brute(x, y):
    keep = []
    for i in range(len(x)):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            keep.append(False)
            continue
        dominated = any((x[j] <= x[i] and y[j] <= y[i] and (x[j] < x[i] or y[j] < y[i]))
                        or (x[j] == x[i] and y[j] == y[i] and j < i)
                        for j in range(len(x)) if np.isfinite(x[j]) and np.isfinite(y[j]))
        keep.append(not dominated)
    return np.array(keep)


def test_pareto_mask_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        x = rng.integers(0, 8, n).astype(float)   # many ties
        y = rng.integers(0, 8, n).astype(float)
        x[rng.random(n) < 0.1] = np.nan
        np.testing.assert_array_equal(pareto_mask(x, y), _brute(x, y))
    assert not pareto_mask([], []).any()


def test_pareto_of_parts_is_pareto_of_union():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"config_id": np.arange(500), "latency_ms": rng.random(500),
                       "energy": rng.random(500)})
    whole = pareto_front(df, "latency_ms", "energy")
    fronts = [pareto_front(df.iloc[i:i + 70], "latency_ms", "energy") for i in range(0, 500, 70)]
    merged = pareto_front(pd.concat(fronts), "latency_ms", "energy")
    assert merged["config_id"].tolist() == whole["config_id"].tolist()


def test_markdown_table():
    df = pd.DataFrame({"config_id": [3, 1], "energy": [1.5e9, 2.25], "feasible": [True, False],
                       "name": ["a|b", "c"], "power_mw": [np.nan, 1.0]})
    md = markdown_table(df)
    lines = md.strip().split("\n")
    assert lines[0] == "| config_id | energy | feasible | name | power_mw |"
    assert lines[1] == "|---|---|---|---|---|"
    # a column is written one way: 1.5e9 beside 2.25 is not written 1,500,000,000
    assert lines[2] == "| 3 | 1.5e+09 | yes | a\\|b | - |"
    assert lines[3] == "| 1 | 2.25 | no | c | 1 |"
    whole = markdown_table(pd.DataFrame({"energy": [1.5e9, 2.0]})).strip().split("\n")
    assert whole[2:] == ["| 1,500,000,000 |", "| 2 |"]


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400
    assert img[..., :3].std() > 0.05          # not a blank canvas


def test_figures_are_written(tmp_path):
    rng = np.random.default_rng(2)
    n = 300
    pts = pd.DataFrame({"config_id": np.arange(n), "latency_ms": rng.uniform(1, 10, n),
                        "energy": rng.uniform(1e9, 5e9, n), "sram_kb": rng.uniform(50, 500, n),
                        "pe_count": rng.integers(64, 512, n)})
    fronts = {(x, "energy"): pareto_front(pts, x, "energy") for x in ("latency_ms", "sram_kb", "pe_count")}
    plot_pareto(pts, fronts, tmp_path / "pareto.png", title="t", best=pts.iloc[0], unit="pJ")
    _png(tmp_path / "pareto.png")

    L = 12
    layers = pd.DataFrame({"layer": [f"L{i}" for i in range(L)]})
    for lv in ("dram", "glb", "noc", "rf", "alu"):
        layers[f"energy_{lv}"] = rng.uniform(1, 5, L) * 1e6
    total = sum(layers[f"energy_{lv}"] for lv in ("dram", "glb", "noc", "rf"))
    for dt, share in (("ifmap", 0.3), ("filter", 0.3), ("psum", 0.4)):
        layers[f"energy_{dt}"] = total * share
    layers["energy"] = total + layers["energy_alu"]
    plot_breakdown(layers, tmp_path / "breakdown.png", title="breakdown", unit="normalized")
    _png(tmp_path / "breakdown.png")
