"""``eyejax sweep=<name> ...``: the command-line side of a sweep (eyejax.app.cli hands over to ``run``).

Check everything, evaluate this process' chunks with a progress bar (rate, ETA), then (process 0)
wait for the other processes' parts, analyze, write the report files and log to W&B.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from eyejax.app.logs import log
from eyejax.text import energy_unit_words, plural

SWEEP_KEYS = ("name", "axes", "zip", "chunk_size", "eval_chunk", "per_layer", "dir", "resume",
              "top_k", "plots", "process_index", "process_count", "distributed",
              "coordinator_address", "wait_s")
BEST_SHOWN = 5


def is_sweep(cfg) -> bool:
    """True when the configuration selects a sweep grid (sweep=<name>, or sweep.axes given)."""
    sw = cfg.get("sweep") if hasattr(cfg, "get") else None
    if not sw:
        return False
    return bool(sw.get("name")) or bool(sw.get("axes"))


def _err(msg: str) -> int:
    log.error(f"eyejax: error: {msg}")
    return 2


def _plain(x):
    return OmegaConf.to_container(x, resolve=True) if isinstance(x, (DictConfig, ListConfig)) else x


def check_sweep_keys(sw) -> None:
    from eyejax.sweep.grid import SweepError

    for k in sw.keys():
        if k not in SWEEP_KEYS:
            raise SweepError(f"sweep.{k} is not a known key; allowed: {', '.join(SWEEP_KEYS)}")
    top_k = sw.get("top_k", 20)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise SweepError(f"sweep.top_k must be an integer >= 1, got {top_k!r}")
    for k in ("chunk_size", "eval_chunk", "process_index", "process_count"):
        v = sw.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise SweepError(f"sweep.{k} must be null or a non-negative integer, got {v!r}")
    for k in ("resume", "plots", "distributed"):
        if not isinstance(sw.get(k, False), bool):
            raise SweepError(f"sweep.{k} must be true or false, got {sw.get(k)!r}")
    if sw.get("per_layer", "auto") not in ("auto", True, False):
        raise SweepError(f"sweep.per_layer must be auto, true or false, got {sw.get('per_layer')!r}")


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s)).strip("_") or "sweep"


def build_plan(cfg, base_dir: str | None = None):
    """(plan, base arch) from the composed configuration; every check runs here, no evaluation."""
    from eyejax.app.config import ConfigError, build_inputs, search_mode
    from eyejax.sweep.grid import build_grid
    from eyejax.sweep.runner import make_plan

    sw = cfg.sweep
    check_sweep_keys(sw)
    inputs = build_inputs(cfg, base_dir=base_dir)  # every config group, checked as for a plain run
    if inputs.swept:
        raise ConfigError(f"{', '.join(inputs.swept)}: with sweep={sw.get('name')}, give swept values "
                          f"in sweep.axes (e.g. sweep.axes.arch.pe_rows=[8,12]), not as lists")
    base, network, sparsity = inputs.arch, inputs.network, inputs.sparsity
    L = len(network.layers)
    grid = build_grid(_plain(sw.get("axes")), _plain(sw.get("zip")), base, sparsity, L)
    plan = make_plan(grid, network, objective=cfg.get("objective", "energy"),
                     part_size=sw.get("chunk_size"), per_layer=sw.get("per_layer", "auto"),
                     eval_chunk=sw.get("eval_chunk"), name=str(sw.get("name") or "custom"),
                     dataflow=getattr(inputs, "dataflow", None),
                     space=search_mode(cfg, inputs, configs=grid.size))
    return plan


def sweep_dir(cfg, plan, base_dir: str) -> Path:
    d = cfg.sweep.get("dir")
    if d:
        p = Path(str(d)).expanduser()
        return p if p.is_absolute() else Path(base_dir) / p
    return Path(base_dir) / "sweeps" / _slug(f"{plan.name}-{plan.network.name}-{plan.hash[:8]}")


def best_layers(plan, out_dir: Path, config_id: int):
    """Per-layer rows of one configuration: from the stored layers part, else re-evaluated."""
    import pandas as pd

    from eyejax.sweep.runner import evaluate_indices, part_name

    if plan.per_layer:
        p = out_dir / "layers" / part_name(config_id // plan.part_size)
        if p.exists():
            df = pd.read_parquet(p)
            return df[df["config_id"] == config_id].reset_index(drop=True)
    _, layers = evaluate_indices(plan, np.asarray([config_id]), per_layer=True)
    return layers


def run(cfg) -> int:
    """The sweep path of the ``eyejax`` command; returns the exit status."""
    from eyejax.app.runtime import original_cwd
    from eyejax.sweep.distributed import barrier, process_slice
    from eyejax.sweep.grid import SweepError
    from eyejax.sweep.runner import SweepDirError, missing_chunks, wait_for_all

    base_dir = original_cwd()
    # 1. This process' slice (jax.distributed must start before any JAX work), then every check.
    try:
        check_sweep_keys(cfg.sweep)
        p_idx, p_cnt, distributed = process_slice(cfg.sweep)
        if not 0 <= p_idx < p_cnt:
            raise SweepError(f"process index {p_idx} is not in [0, {p_cnt})")
        plan = build_plan(cfg, base_dir=base_dir)
    except ValueError as exc:  # SweepError, ConfigError, ArchError, WorkloadError, SparsityError
        return _err(str(exc))
    out_dir = sweep_dir(cfg, plan, base_dir)
    _log_plan(plan, out_dir, p_idx, p_cnt)

    # 2. Evaluate this process' chunks (resuming finished ones).
    try:
        _evaluate_chunks(cfg, plan, out_dir, p_idx, p_cnt)
    except SweepDirError as exc:
        return _err(str(exc))

    # 3. Process 0 waits for everyone's parts, then analyzes.
    wait_s = float(cfg.sweep.get("wait_s") or 86400)
    if p_cnt > 1:
        used = barrier("eyejax_sweep_parts", wait_s) if distributed else False
        if p_idx != 0:
            log.info(f"  process {p_idx} of {p_cnt} done; process 0 writes the report")
            return 0
        if not used:
            wait_for_all(out_dir, plan, timeout_s=wait_s,
                         on_wait=lambda m: log.info(f"  waiting for {m} chunk(s) from the other "
                                                    f"processes"))
    missing = missing_chunks(out_dir, plan)
    if missing:
        return _err(f"{len(missing)} chunk(s) missing in {out_dir} (e.g. {missing[:5]})")
    return report(cfg, plan, out_dir)


def _log_plan(plan, out_dir: Path, p_idx: int, p_cnt: int) -> None:
    """What the sweep evaluates, how, and where its results go."""
    grid = plan.grid
    family = getattr(grid.base_arch, "family", type(grid.base_arch).__name__)
    log.info(f"eyejax sweep {plan.name}: {plural(grid.size, 'configuration')} = {grid.describe()}")
    log.info(f"  on {plan.network.name} ({plan.num_layers} layers, batch {plan.network.layers[0].N}), "
             f"{family}, objective={plan.objective}, {'exact' if getattr(plan.space, 'exact', False) else 'fast'} search; {plan.num_chunks} chunk(s) of {plan.part_size:,} "
             f"({plan.eval_chunk} per compiled call); "
             f"{'per-layer rows + totals' if plan.per_layer else 'per-config totals'}")
    log.info(f"  results: {out_dir}" + (f"  (process {p_idx} of {p_cnt})" if p_cnt > 1 else ""))


def _evaluate_chunks(cfg, plan, out_dir: Path, p_idx: int, p_cnt: int) -> None:
    """Evaluate this process' chunks (resuming finished ones) with a progress bar (rate, ETA);
    raises SweepDirError when out_dir holds another sweep."""
    from tqdm import tqdm

    from eyejax.sweep.runner import run_sweep

    bar = {}

    def on_start(total, done):
        if done:
            log.info(f"  resuming: {done:,} of {plural(total, 'configuration')} already done")
        bar["b"] = tqdm(total=total, initial=done, unit="config", unit_scale=total >= 10_000, file=sys.stderr,
                        desc="sweep", mininterval=1.0, smoothing=0.05, dynamic_ncols=True)

    try:
        sweep_run = run_sweep(
            plan, out_dir, process_index=p_idx, process_count=p_cnt,
            resume=bool(cfg.sweep.get("resume", True)),
            progress=lambda n: bar["b"].update(n), on_start=on_start,
            config=OmegaConf.to_container(cfg, resolve=True),
            config_yaml=OmegaConf.to_yaml(cfg, resolve=True))
    finally:
        if "b" in bar:
            bar["b"].close()
    n_new = sum(plan.chunk_range(k)[1] - plan.chunk_range(k)[0] for k in sweep_run.computed)
    if sweep_run.computed:
        log.info(f"  evaluated {plural(n_new, 'configuration')} in {sweep_run.seconds:.1f} s "
                 f"({n_new * plan.num_layers / max(sweep_run.seconds, 1e-9):,.0f} config x layer/s, "
                 f"compile included); {len(sweep_run.computed)} part(s) written")


def report(cfg, plan, out_dir: Path) -> int:
    from eyejax.sweep.analysis import analyze, table_columns, write_report
    from eyejax.sweep.runner import iter_parts

    top_k = int(cfg.sweep.get("top_k") or 20)
    swept = plan.grid.names
    a = analyze(iter_parts(out_dir), swept, plan.objective, top_k=top_k, num_configs=plan.size)
    title = (f"{plan.name}: {plural(plan.size, 'configuration')} of "
             f"{getattr(plan.grid.base_arch, 'family', '')} on {plan.network.name}")
    layers = None
    if len(a.best):
        layers = best_layers(plan, out_dir, int(a.best.iloc[0]["config_id"]))
    files = write_report(out_dir, a, title, best_layers=layers,
                         plots=bool(cfg.sweep.get("plots", True)))
    log.info("")
    log.info(f"{plural(a.num_configs, 'configuration')}, {a.num_configs - a.num_feasible:,} infeasible")
    if len(a.best):
        show = a.best.head(BEST_SHOWN)
        cols = table_columns(a, show)
        log.info(f"best {len(show)} by {plan.objective} ({energy_unit_words(a.unit)}):")
        log.info(show[cols].to_string(index=False, float_format=lambda v: format(v, ".5g")))
        for (x, y), f in a.fronts.items():
            log.info(f"pareto front {y} vs {x}: {plural(len(f), 'configuration')}")
    else:
        log.info("no feasible configuration")
    log.info("")
    log.info(f"results: {out_dir}/parts/ (pandas.read_parquet or eyejax.sweep.read_results)")
    for k, p in files.items():
        log.info(f"wrote {p}")

    if cfg.wandb.mode != "disabled":
        from eyejax.app.logging_wandb import log_or_warn, log_sweep
        from eyejax.sweep.runner import read_results

        log_or_warn(cfg, out_dir, lambda: log_sweep(cfg, out_dir, a, files, plan,
                                                    load_results=lambda: read_results(out_dir)))
    return 0


__all__ = ["is_sweep", "run", "build_plan", "sweep_dir", "report", "SWEEP_KEYS"]
