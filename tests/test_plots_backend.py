"""Plotting leaves a notebook alone: no library module switches matplotlib's backend or opens pyplot
figures (each figure is a matplotlib.figure.Figure saved directly), and figures say what they leave
out (pareto.png: the infeasible configurations)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def test_no_backend_switch_or_pyplot_in_library_code():
    bad = []
    for p in (REPO / "eyejax").rglob("*.py"):  # the library (experiments/ are scripts)
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot",
                         code):
                bad.append(f"{p.relative_to(REPO)}:{i}: {line.strip()}")
    assert bad == []


_NOTEBOOK_LIKE = """
import matplotlib
matplotlib.use("svg")          # stands in for a notebook's inline backend
import matplotlib.pyplot as plt
import numpy as np, pandas as pd
from eyejax.plots import plot_breakdown, plot_pareto, pareto_front
from eyejax import eyexam
from eyejax.plots import error_chart
fig = plt.figure()             # the user's own open figure
rng = np.random.default_rng(0)
pts = pd.DataFrame({"config_id": np.arange(50), "latency_ms": rng.uniform(1, 9, 50),
                    "energy": rng.uniform(1, 5, 50)})
plot_pareto(pts, {("latency_ms", "energy"): pareto_front(pts, "latency_ms", "energy")},
            "p.png", best=pts.iloc[0])
layers = pd.DataFrame({"layer": ["a", "b"], "energy": [2.0, 3.0]})
for c in ("dram", "glb", "noc", "rf", "alu", "ifmap", "filter", "psum"):
    layers[f"energy_{c}"] = [0.2, 0.3]
plot_breakdown(layers, "b.png")
b = {k: np.array([[50.0, 40.0]]) for k in ("pes", "array", "storage", "bandwidth", "patterns",
                                             "dataflow", "peak")}
b.update(operational_intensity=np.array([[10.0, 12.0]]), feasible=np.array([[True, True]]),
         dram_words_per_cycle=np.array([[4.0, 4.0]]))
eyexam.plot_roofline(b, ["L1", "L2"]).figure.savefig("r.png")
eyexam.plot_waterfall(b, ["L1", "L2"]).figure.savefig("w.png")
error_chart([("net", "fps", 10.0, 8.0, -20.0)], ".", "e.png", "t")
print(matplotlib.get_backend(), plt.get_fignums())
"""


def test_plotting_keeps_the_backend_and_open_figures(tmp_path):
    p = subprocess.run([sys.executable, "-c", _NOTEBOOK_LIKE], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                            "MPLBACKEND": ""})
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split("\n")[-2] == "svg [1]"
    for f in ("p.png", "b.png", "r.png", "w.png", "e.png"):
        assert (tmp_path / f).stat().st_size > 5000, f


def test_pareto_says_how_many_infeasible_are_not_drawn(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from eyejax.plots import pareto_front, plot_pareto

    saved = []
    orig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self),
                                                                  orig(self, *a, **k))[1])
    pts = pd.DataFrame({"config_id": np.arange(20), "latency_ms": np.linspace(1, 2, 20),
                        "energy": np.linspace(5, 1, 20)})
    fronts = {("latency_ms", "energy"): pareto_front(pts, "latency_ms", "energy")}
    plot_pareto(pts, fronts, tmp_path / "a.png", num_configs=30, num_infeasible=10)
    plot_pareto(pts, fronts, tmp_path / "b.png", num_configs=20, num_infeasible=0)
    texts = [" ".join(t.get_text() for t in f.findobj(lambda a: hasattr(a, "get_text")))
             for f in saved]
    assert "10 of 30 configurations are infeasible" in texts[0]
    assert "infeasible" not in texts[1]
