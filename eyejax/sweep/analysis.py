"""Analysis of a finished sweep, streamed part by part (flat memory): Pareto fronts, the best
configurations, a sample of points for the scatter plots, and the report files written next to the
results:

    pareto.png      energy vs latency, energy vs on-chip SRAM, energy vs PE count (fronts in red)
    breakdown.png   per-layer energy of the best configuration by level and by data type
    best.md         the best configurations by the objective (Markdown table)
    report.md       the sweep in one page: counts, best table, Pareto front tables, the figures
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from eyejax.text import energy_unit_words, plural
from eyejax.plots import markdown_table, pareto_mask, plot_breakdown, plot_pareto
from eyejax.sweep.area import AREA_COLUMNS

FRONTS = (("latency_ms", "energy"), ("sram_kb", "energy"), ("pe_count", "energy"))
METRICS = ("energy", "latency_ms", "fps", "power_mw", "edp", "dram_accesses_per_mac",
           "pe_count", "sram_kb")
OBJECTIVE_COLUMN = {"energy": "energy", "latency": "latency_ms", "edp": "edp"}
MAX_SCATTER = 20_000


@dataclasses.dataclass
class SweepAnalysis:
    num_configs: int
    num_feasible: int
    objective: str
    swept: list
    best: pd.DataFrame          # top-k feasible configurations, best first
    fronts: dict                # (x, y) -> front rows, sorted by x
    sample: pd.DataFrame        # feasible points for scatter plots (every stride-th config)
    unit: str = "normalized"

    def summary(self) -> dict:
        out = {"num_configs": self.num_configs, "num_feasible": self.num_feasible,
               "num_infeasible": self.num_configs - self.num_feasible, "objective": self.objective}
        for (x, y), f in self.fronts.items():
            out[f"pareto/{y}_vs_{x}/size"] = int(len(f))
        if len(self.best):
            b = self.best.iloc[0]
            out["best_config_id"] = int(b["config_id"])
            for k in METRICS:
                if k in b and _finite(b[k]):
                    out[f"network/{k}"] = float(b[k])
            for k in self.swept:
                if k in b:
                    v = b[k]
                    out[f"best/{k}"] = v.item() if isinstance(v, np.generic) else v
        return out


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def analyze(parts, swept: list[str], objective: str = "energy", top_k: int = 20,
            num_configs: int | None = None, max_scatter: int = MAX_SCATTER) -> SweepAnalysis:
    """Stream over ``parts`` (DataFrames of per-config totals, e.g. runner.iter_parts) keeping only
    the running fronts, the running top-k and a strided sample."""
    key = OBJECTIVE_COLUMN[objective]
    stride = max(1, -(-int(num_configs or 0) // max_scatter)) if num_configs else 1
    n = n_ok = 0
    best = None
    fronts: dict = {}
    samples = []
    unit = "normalized"
    for df in parts:
        n += len(df)
        if "energy_unit" in df and len(df):
            unit = str(df["energy_unit"].iloc[0])
        ok = df[df["feasible"].astype(bool).to_numpy()]
        n_ok += len(ok)
        if not len(ok):
            continue
        cand = ok if best is None else pd.concat([best, ok], ignore_index=True)
        best = cand.sort_values([key, "config_id"], kind="stable").head(top_k)
        for x, y in FRONTS:
            if x not in ok or y not in ok:
                continue
            prev = fronts.get((x, y))
            c = ok if prev is None else pd.concat([prev, ok], ignore_index=True)
            c = c.sort_values("config_id", kind="stable")  # equal points: lowest config_id kept
            fronts[(x, y)] = c[pareto_mask(c[x], c[y])].sort_values([x, "config_id"], kind="stable")
        samples.append(ok[ok["config_id"].to_numpy() % stride == 0])
    sample = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame()
    return SweepAnalysis(num_configs=n if num_configs is None else int(num_configs),
                         num_feasible=n_ok, objective=objective, swept=list(swept),
                         best=best.reset_index(drop=True) if best is not None else pd.DataFrame(),
                         fronts=fronts, sample=sample, unit=unit)


def table_columns(a: SweepAnalysis, df: pd.DataFrame) -> list[str]:
    cols = ["config_id", *a.swept, "energy", "latency_ms", "fps"]
    if "power_mw" in df and df["power_mw"].notna().any():
        cols.append("power_mw")
    cols += ["edp", "dram_accesses_per_mac", *[c for c in AREA_COLUMNS if c in df]]
    return [c for c in cols if c in df]


def write_report(out_dir, a: SweepAnalysis, title: str, best_layers: pd.DataFrame | None = None,
                 plots: bool = True) -> dict[str, Path]:
    """Write best.md, report.md and (plots=True) pareto.png and breakdown.png into out_dir."""
    out_dir = Path(out_dir)
    files: dict[str, Path] = {}
    unit = a.unit
    if len(a.best):
        best_tbl = a.best.assign(rank=np.arange(1, len(a.best) + 1))
        cols = ["rank", *table_columns(a, a.best)]
        best_md = (f"# Best configurations by {a.objective}\n\n{title}\n\n"
                   f"{energy_unit_words(unit)}; latency in ms; edp = energy x latency_ms.\n\n"
                   + markdown_table(best_tbl, cols))
    else:
        best_md = f"# Best configurations by {a.objective}\n\n{title}\n\nNo feasible configuration.\n"
    (out_dir / "best.md").write_text(best_md)
    files["best_md"] = out_dir / "best.md"
    if plots and len(a.best):
        files["pareto"] = plot_pareto(a.sample, a.fronts, out_dir / "pareto.png", title=title,
                                      best=a.best.iloc[0], unit=unit, num_configs=a.num_configs,
                                      num_infeasible=a.num_configs - a.num_feasible)
        if best_layers is not None and len(best_layers):
            cid = int(a.best.iloc[0]["config_id"])
            files["breakdown"] = plot_breakdown(
                best_layers, out_dir / "breakdown.png", unit=unit,
                title=f"{title}\nbest configuration by {a.objective} (config {cid}): "
                      + _describe(a.best.iloc[0], a.swept))
    lines = ["# Sweep report\n", title + "\n",
             f"- configurations: {a.num_configs:,} ({a.num_feasible:,} feasible, "
             f"{a.num_configs - a.num_feasible:,} with a layer no mapping fits)",
             f"- objective: {a.objective}; energy unit: {unit}", ""]
    if "pareto" in files:
        lines += ["![Pareto fronts](pareto.png)", ""]
    if "breakdown" in files:
        lines += ["![per-layer energy breakdown of the best configuration](breakdown.png)", ""]
    lines += ["## Best configurations", "", best_md.split("\n\n", 3)[-1], ""]
    for (x, y), f in a.fronts.items():
        lines += [f"## Pareto front: {y} vs {x} ({plural(len(f), 'configuration')})", "",
                  markdown_table(f, table_columns(a, f)), ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    files["report_md"] = out_dir / "report.md"
    return files


def _describe(row, swept) -> str:
    parts = []
    for k in swept:
        if k in row:
            v = row[k]
            parts.append(f"{k.split('.', 1)[-1]}={v:g}" if isinstance(v, (float, np.floating))
                         else f"{k.split('.', 1)[-1]}={v}")
    return ", ".join(parts)


__all__ = ["SweepAnalysis", "analyze", "write_report", "FRONTS", "table_columns"]
