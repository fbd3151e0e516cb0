"""Weights & Biases logging of one eyejax run (the CLI's results), offline by default.

``wandb.mode``: ``offline`` (default) writes the run under ``./wandb/offline-run-*`` and never touches the
network (``wandb sync`` uploads it later). The configured mode governs the whole W&B process tree, not
only the run: ``init_wandb`` puts it in ``WANDB_MODE`` (which the ``wandb-core`` service inherits) and in
the process-wide W&B settings before ``wandb.init``, and turns W&B's own usage telemetry off, which
otherwise resolves and contacts its server even for an offline run; ``online`` needs a configured API key (this module never
calls ``wandb.login``); ``disabled`` skips wandb entirely (it is not even imported). Nothing here prints;
wandb's own console output is silenced.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from eyejax.app.logs import log
from eyejax.metrics import objective_of_totals

TABLE_MAX_ROWS = 10_000  # tables larger than this are left to the parquet files

SUMMARY_FILE = "eyejax-summary.json"  # written to the run's files/ directory
CONFIG_FILE = "eyejax-config.json"

SUMMARY_METRICS = ("energy", "latency_ms", "fps", "power_mw", "dram_accesses_per_mac", "cycles")


def objective_metric(totals: pd.DataFrame, objective: str) -> pd.Series:
    """Per-config value of the objective (lower is better): energy, latency_ms, or energy x latency."""
    return objective_of_totals(totals, objective)


def rank_configs(totals: pd.DataFrame, objective: str) -> pd.DataFrame:
    """Feasible configurations sorted best-first by the objective (ties keep config_id order)."""
    feas = totals["feasible"].astype(bool) if "feasible" in totals else pd.Series(True, totals.index)
    ok = totals[feas.to_numpy()]
    key = objective_metric(ok, objective)
    return ok.assign(_objective=key.to_numpy()).sort_values("_objective", kind="stable").drop(
        columns="_objective")


def _plain(v: Any):
    """numpy scalars -> Python scalars, NaN -> None (the summary is JSON)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def summary_metrics(cfg, totals: pd.DataFrame) -> dict[str, Any]:
    """The run summary: the best configuration's network metrics, and sweep counts."""
    objective = cfg.get("objective", "energy")
    n = int(len(totals))
    infeasible = int((~totals["feasible"].astype(bool)).sum()) if "feasible" in totals else 0
    out: dict[str, Any] = {"objective": objective, "num_configs": n, "num_infeasible": infeasible}
    ranked = rank_configs(totals, objective)
    if len(ranked):
        best = ranked.iloc[0]
        out["best_config_id"] = int(best["config_id"]) if "config_id" in best else int(ranked.index[0])
        for k in SUMMARY_METRICS:
            if k in best:
                out[f"network/{k}"] = _plain(best[k])
        if objective == "edp":
            out["network/edp"] = _plain(float(objective_metric(ranked.iloc[:1], "edp").iloc[0]))
        for k in best.index:
            if str(k).startswith("arch."):
                out[f"best/{k}"] = _plain(best[k])
    return out


def _table(wandb, df: pd.DataFrame):
    # wandb.Table wants plain column names and JSON-able cells.
    d = df.reset_index(drop=True).copy()
    d.columns = [str(c) for c in d.columns]
    for c in d.columns:
        if d[c].dtype == object:
            d[c] = d[c].map(lambda x: x if isinstance(x, (str, int, float, bool)) or x is None else str(x))
    return wandb.Table(dataframe=d)


def init_wandb(mode: str = "offline", **init_kwargs):
    """``wandb.init(mode=mode, **init_kwargs)`` with ``mode`` governing every part of W&B.

    ``wandb.init(mode="offline")`` alone leaves the process-wide W&B settings at their environment
    default (online), and W&B's usage telemetry then resolves and contacts its server. So the mode
    goes into ``WANDB_MODE`` first (the W&B service process, started on first use, inherits it),
    then into the process-wide settings (``wandb.setup``), and for offline runs W&B's telemetry
    is switched off for this process. Returns ``(wandb module, run)``.
    """
    if mode not in ("offline", "online", "disabled"):
        raise ValueError(f"wandb.mode must be offline, online or disabled, got {mode!r}")
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    import wandb

    if mode != "online":
        _disable_wandb_telemetry()
    wandb.setup(settings=wandb.Settings(mode=mode))
    settings = wandb.Settings(silent=True, console="off", disable_code=True, x_disable_stats=True,
                              mode=mode)
    init_kwargs.setdefault("settings", settings)
    return wandb, wandb.init(mode=mode, **init_kwargs)


def _disable_wandb_telemetry() -> None:
    # wandb >= 0.2x sends usage metrics through an OpenTelemetry proxy that it builds from the
    # process-wide settings; its module-level disable() turns it off. Versions without it do not
    # send telemetry from Python.
    try:
        from wandb.analytics.opentelemetry import opentelemetry_proxy
    except ImportError:
        return
    off = getattr(opentelemetry_proxy, "disable", None)
    if callable(off):
        off()


def _init_run(cfg, job_type: str, name: str, run_dir: str | os.PathLike):
    """wandb.init for an eyejax run (offline by default); returns (wandb module, run, config)."""
    wcfg = cfg.get("wandb") or {}
    config = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    wandb, run = init_wandb(
        mode=wcfg.get("mode", "offline"),
        project=wcfg.get("project", "eyejax"),
        entity=wcfg.get("entity"),
        tags=list(wcfg.get("tags") or []) or None,
        name=name,
        job_type=job_type,
        config=config,
        dir=str(run_dir),
    )
    return wandb, run, config


def _save_readable(run, summary: dict, config: dict) -> Path:
    # Readable copies in the run's files/ (an offline run otherwise keeps them only inside its
    # binary .wandb log until `wandb sync`).
    files = Path(run.dir)
    (files / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    (files / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n")
    for f in (SUMMARY_FILE, CONFIG_FILE):
        run.save(str(files / f), base_path=str(files), policy="now")
    return files.parent


def log_sweep(cfg, out_dir, analysis, files: dict, plan=None, load_results=None):
    """Log a finished sweep (eyejax.sweep): its config, the results table (every configuration,
    ``load_results()``, when there are fewer than TABLE_MAX_ROWS, else the best ones), the Pareto
    fronts, summary metrics and the report's figures. The run lives in ``<out_dir>/wandb/``.
    Returns its directory, or None when ``wandb.mode=disabled``."""
    if (cfg.get("wandb") or {}).get("mode", "offline") == "disabled":
        return None
    out_dir = Path(out_dir)
    name = f"sweep-{(cfg.get('sweep') or {}).get('name') or 'custom'}-" \
           f"{(cfg.get('workload') or {}).get('name', 'network')}"
    wandb, run, config = _init_run(cfg, "sweep", name, out_dir)
    try:
        summary = analysis.summary()
        summary["sweep_dir"] = str(out_dir)
        if plan is not None:
            summary.update({"sweep_hash": plan.hash, "num_layers": plan.num_layers,
                            "num_chunks": plan.num_chunks, "per_layer": plan.per_layer})
        run.summary.update({k: _plain(v) for k, v in summary.items()})
        tables = {}
        if analysis.num_configs < TABLE_MAX_ROWS and load_results is not None:
            tables["results"] = _table(wandb, load_results())
        else:
            tables["results_best"] = _table(wandb, analysis.best)
        for (x, y), f in analysis.fronts.items():
            tables[f"pareto_{y}_vs_{x}"] = _table(wandb, f)
        for key in ("pareto", "breakdown"):
            if key in files:
                tables[f"plots/{key}"] = wandb.Image(str(files[key]))
        run.log(tables)
        for key in ("best_md", "report_md"):
            if key in files:
                run.save(str(files[key]), base_path=str(out_dir), policy="now")
        run_dir = _save_readable(run, summary, config)
    finally:
        run.finish()
    return run_dir


def log_run(cfg, df: pd.DataFrame, totals: pd.DataFrame, extra_summary: dict | None = None):
    """Log one run: config, summary metrics, and tables (totals, and layers when small).

    Returns the local run directory (``wandb/offline-run-...`` or ``wandb/run-...``), or None when
    ``wandb.mode=disabled``.
    """
    wcfg = cfg.get("wandb") or {}
    mode = wcfg.get("mode", "offline")
    if mode == "disabled":
        return None
    workload = (cfg.get("workload") or {})
    name = f"{workload.get('name', 'network')}-{cfg.get('objective', 'energy')}"
    wandb, run, config = _init_run(cfg, "evaluate", name, os.getcwd())
    try:
        summary = summary_metrics(cfg, totals)
        if extra_summary:
            summary.update(extra_summary)
        run.summary.update(summary)
        tables = {}
        if len(totals) < TABLE_MAX_ROWS:
            tables["totals"] = _table(wandb, totals)
        if len(df) < TABLE_MAX_ROWS:
            tables["layers"] = _table(wandb, df)
        if tables:
            run.log(tables)
        # Readable copies in the run's files/ (an offline run otherwise keeps them only inside its
        # binary .wandb log until `wandb sync`).
        files = Path(run.dir)
        (files / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (files / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n")
        for f in (SUMMARY_FILE, CONFIG_FILE):
            run.save(str(files / f), base_path=str(files), policy="now")
        run_dir = files.parent
    finally:
        run.finish()
    return run_dir


def log_or_warn(cfg, results_dir, write) -> None:
    """Run `write()` (a W&B logging call returning the run directory or None); a failure is a
    warning naming where the results already are, never an error."""
    try:
        run_dir = write()
    except Exception as exc:  # noqa: BLE001 - the results are on disk; report and go on
        log.warning(f"eyejax: warning: W&B logging failed ({type(exc).__name__}: {exc}); results "
                    f"are in {results_dir}. Use wandb.mode=offline or wandb.mode=disabled.")
        return
    if run_dir is not None:
        sync = " (upload later with `wandb sync`)" if cfg.wandb.mode == "offline" else ""
        log.info(f"wandb run: {run_dir}{sync}")

__all__ = ["init_wandb", "log_or_warn", "log_run", "log_sweep", "summary_metrics", "rank_configs", "objective_metric", "TABLE_MAX_ROWS"]
