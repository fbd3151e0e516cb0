"""``eyejax`` command line: evaluate Eyeriss v1 configurations on a network (a Hydra app).

    eyejax                                               # Eyeriss v1 chip, AlexNet (batch 4), dense
    eyejax arch.pe_rows=16 workload.batch=1
    eyejax arch.pe_rows=[12,16] arch.glb_banks=[25,50]   # sweep: cartesian product of list-valued fields
    eyejax workload=vgg16 objective=latency sparsity=relu50 wandb.mode=disabled
    eyejax workload=custom workload.path=my_net.csv
    eyejax --cfg job                                     # print the composed configuration
    eyejax sweep=v1_array_glb workload=resnet50          # a sweep grid (conf/sweep/), see eyejax.sweep
    eyejax bench --workload alexnet,resnet50             # the benchmark (eyejax.app.bench)

The configuration tree is found by eyejax.app.runtime (the checkout's ``conf/``, else the installed
``eyejax.conf``). Results go to the Hydra run directory (``outputs/<date>/<time>/`` unless
``hydra.run.dir=...``): ``results.parquet`` (one row per config_id x layer), ``totals.parquet`` (one
row per config_id), and a W&B run under ``wandb/`` (offline unless ``wandb.mode=online``).
"""
from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from eyejax.app.help import register_resolver as register_help_resolver
from eyejax.app.logs import log
from eyejax.app.runtime import CONF_PATH, original_cwd
from eyejax.arch import family_of
from eyejax.text import energy_unit_words, plural

register_help_resolver()  # hydra.help.template (--help) lists every group's fields from conf/
BEST_SHOWN = 5          # configurations listed for a sweep
LAYER_ROWS_SHOWN = 200  # per-layer rows printed for a single configuration


# --------------------------------------------------------------------------------------------------
# formatting


def _fmt(x, spec=".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "NO"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    return format(float(x), spec)


def _mapping_str(row) -> str:
    if "feasible" in row and not bool(row["feasible"]):
        return "infeasible"
    keys = [c for c in row.index if str(c).startswith("map_")]
    return " ".join(f"{k[4:]}{int(row[k])}" for k in keys)


def layer_table(df: pd.DataFrame) -> pd.DataFrame:
    """The per-layer table printed for one configuration (strings, ready to print)."""
    rows = []
    for _, r in df.iterrows():
        e = float(r["energy"])
        share = lambda lv: "-" if not e or math.isnan(e) else f"{100.0 * float(r[f'energy_{lv}']) / e:.1f}"
        rows.append({
            "layer": r["layer"],
            "MACs": _fmt(r["macs"]),
            "mapping": _mapping_str(r) + (" (given)" if bool(r.get("mapping_fixed", False)) else ""),
            "PEs": _fmt(r["active_pes"]),
            "util": f"{float(r['utilization']):.2f}",
            "cycles": _fmt(r["cycles"]),
            "ms": _fmt(r["latency_ms"], ".3f"),
            **({"proc ms": _fmt(r["processing_latency_ms"], ".3f")}
               if "processing_latency_ms" in r else {}),
            "energy": _fmt(e, ".4g"),
            "dram%": share("dram"), "glb%": share("glb"), "noc%": share("noc"),
            "rf%": share("rf"), "alu%": share("alu"),
            "DRAM acc": _fmt(r["dram_accesses"]),
        })
    return pd.DataFrame(rows)


def _print_table(t: pd.DataFrame) -> None:
    log.info(t.to_string(index=False))


def _totals_lines(row, unit: str) -> list[str]:
    lines = [
        f"  energy            {_fmt(row['energy'])} [{unit}]"
        + (f"  ({_fmt(row['energy_per_image'])} per image)" if "energy_per_image" in row else ""),
    ]
    if all(f"energy_{lv}" in row for lv in ("dram", "glb", "noc", "rf", "alu")) and row["energy"]:
        parts = ", ".join(f"{lv} {100.0 * float(row[f'energy_{lv}']) / float(row['energy']):.1f}%"
                          for lv in ("dram", "glb", "noc", "rf", "alu"))
        lines.append(f"    by level        {parts}")
    lines += [
        f"  latency           {_fmt(row['latency_ms'], '.4f')} ms  ({_fmt(row['cycles'])} cycles)",
        f"  throughput        {_fmt(row['fps'], '.4g')} frames/s",
    ]
    pw = row.get("power_mw", float("nan"))
    lines.append(f"  power             {_fmt(pw, '.4g')} mW" if pw == pw else
                 "  power             - (needs an absolute energy table: arch.energy_table=pj_65nm)")
    lines += [
        f"  DRAM accesses/MAC {_fmt(row['dram_accesses_per_mac'], '.4g')}",
        f"  MACs              {_fmt(row['macs'])}",
    ]
    return lines


# --------------------------------------------------------------------------------------------------
# the app


def _design(inputs, cfg) -> str:
    """The architecture and dataflow a run evaluates, in words."""
    df = getattr(inputs, "dataflow", None)
    pes = (cfg.get("dataflow") or {}).get("num_pes")
    if df is not None and pes is not None:
        return f"the ISCA16 equal-area design ({pes} PEs), dataflow {df.upper()}"
    return family_of(inputs.arch).title


def _sparsity_words(cfg) -> str:
    """The densities a run uses, in words: ``dense``, or e.g. ``densities iact 0.5, weight 1, ofmap
    per layer 0.31-0.77`` (per-layer lists as their range), as given in ``cfg.sparsity``."""
    sp = cfg.get("sparsity") or {}
    parts, dense = [], True
    for key in ("iact_density", "weight_density", "ofmap_density"):
        v = sp.get(key, 1.0)
        try:
            vals = np.asarray(list(v) if not isinstance(v, (int, float)) else [v], dtype=float)
        except (TypeError, ValueError):
            return f"sparsity {dict(sp)}"
        if vals.size == 0:
            continue
        dense &= bool(np.all(vals == 1.0))
        lo, hi = float(vals.min()), float(vals.max())
        name = key.split("_")[0]
        parts.append(f"{name} {lo:.3g}" if lo == hi else f"{name} per layer {lo:.3g}-{hi:.3g}")
    return "dense" if dense else "densities " + ", ".join(parts)


def _error(exc) -> int:
    """Log a configuration or mapping error (it names the key) and return the usage exit status."""
    log.error(f"eyejax: error: {exc}")
    return 2


def run(cfg: DictConfig) -> int:
    """Everything the command does; returns the exit status."""
    os.environ.setdefault("WANDB_SILENT", "true")
    # Hydra logs at INFO; keep JAX's backend probing ("Unable to initialize backend 'tpu'") quiet.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    from eyejax import compile_cache
    from eyejax.app.sweep_cli import is_sweep

    try:
        compile_cache.configure(cfg.get("compile_cache"))  # repeat runs reuse compiled code
    except ValueError as exc:
        return _error(exc)

    if is_sweep(cfg):  # sweep=<name>: a grid in vectorized chunks, Parquet parts, report (eyejax.sweep)
        from eyejax.app.sweep_cli import run as run_sweep

        return run_sweep(cfg)
    from eyejax.app.config import build_inputs, num_configs

    # 1. Check and build every input before any model work.
    try:
        inputs = build_inputs(cfg, base_dir=original_cwd())
    except ValueError as exc:  # ConfigError, ArchError, WorkloadError, SparsityError
        return _error(exc)
    _log_header(cfg, inputs)
    # 2. Evaluate.
    try:
        df, totals = _evaluate(cfg, inputs)
    except ValueError as exc:  # MappingError: a fixed mapping that is malformed or does not fit
        return _error(exc)
    # 3. Write results (before printing/logging, so they exist whatever happens next).
    written = _write_results(cfg.output, df, totals)
    # 4. Print.
    unit = getattr(inputs.arch.energy, "unit", "normalized")
    B = num_configs(inputs.swept)
    if B == 1:
        _print_single(df, totals.iloc[0], unit, cfg.output)
    else:
        _print_sweep(totals, B, inputs.swept, cfg.objective, unit)
    log.info("")
    here = os.getcwd()
    for w in written:
        log.info(f"wrote {os.path.join(here, w)}")
    # 5. Log to W&B (offline by default). A logging failure does not lose the results above.
    _log_wandb(cfg, df, totals)
    return 0


def _log_header(cfg, inputs) -> None:
    """One line: the network, the design, the densities, the objective and what is swept."""
    from eyejax.app.config import num_configs

    network, swept = inputs.network, inputs.swept
    B = num_configs(swept)
    log.info(f"eyejax: {network.name} ({inputs.num_layers} layers, {network.macs:,} MACs, "
             f"batch {network.layers[0].N}) on {_design(inputs, cfg)}; {_sparsity_words(cfg)}; "
             f"objective {cfg.objective}, {cfg.get('search', 'fast')} search"
             + (f"; mapping {cfg.get('mapping')}" if cfg.get("mapping") is not None else "")
             + f"; {plural(B, 'configuration')}"
             + (f" over {', '.join(f'{k} ({len(np.unique(v))})' for k, v in swept.items())}"
                if swept else ""))


def _evaluate(cfg, inputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-layer rows, per-configuration totals) of every configuration; a progress bar on stderr
    for more than one chunk. A fixed mapping file is taken from the folder the app started in."""
    from eyejax.app.config import num_configs, search_mode
    from eyejax.evaluate import DEFAULT_CHUNK, evaluate

    swept = inputs.swept
    bar = None
    if num_configs(swept) > DEFAULT_CHUNK:
        from tqdm import tqdm

        bar = tqdm(total=num_configs(swept), unit="config", file=sys.stderr, desc="evaluating")
    mapping = cfg.get("mapping")
    if mapping is not None:
        mapping = str(mapping)
        if os.path.exists(os.path.join(original_cwd(), mapping)):
            mapping = os.path.join(original_cwd(), mapping)
    try:
        result = evaluate(inputs.arch, inputs.network, sparsity=inputs.sparsity,
                          objective=cfg.objective, dataflow=getattr(inputs, "dataflow", None),
                          progress=bar.update if bar is not None else None, mapping=mapping,
                          space=search_mode(cfg, inputs))
    finally:
        if bar is not None:
            bar.close()
    return result.to_dataframe(swept=swept), result.network_totals(swept=swept)


def _write_results(out, df: pd.DataFrame, totals: pd.DataFrame) -> list[str]:
    """Parquet (and CSV) files of the ``output`` group; returns the paths written."""
    from eyejax.app.config import output_paths

    written = []
    for p in output_paths(out).values():   # a missing directory is created (README "Using it")
        p.parent.mkdir(parents=True, exist_ok=True)
    if out.get("parquet"):
        df.to_parquet(out.parquet, index=False)
        written.append(out.parquet)
    if out.get("totals_parquet"):
        totals.to_parquet(out.totals_parquet, index=False)
        written.append(out.totals_parquet)
    if out.get("csv"):
        for name, table in ((out.get("parquet") or "results.parquet", df),
                            (out.get("totals_parquet") or "totals.parquet", totals)):
            p = str(Path(name).with_suffix(".csv"))
            table.to_csv(p, index=False)
            written.append(p)
    return written


def _print_single(df: pd.DataFrame, row, unit: str, out) -> None:
    """One configuration: the per-layer table, then the network totals."""
    log.info("")
    lt = layer_table(df)
    if len(lt) > LAYER_ROWS_SHOWN:
        log.info(f"(first {LAYER_ROWS_SHOWN} of {len(lt)} layers; all are in {out.get('parquet')})")
        lt = lt.head(LAYER_ROWS_SHOWN)
    log.info(f"per layer ({energy_unit_words(unit)}; dram%..alu% = its split by level):")
    _print_table(lt)
    log.info("")
    if bool(row["feasible"]):
        log.info("network totals:")
        log.info("\n".join(_totals_lines(row, unit)))
    else:
        bad = df.loc[~df["feasible"].astype(bool), "layer"].tolist()
        log.info(f"network totals: INFEASIBLE - no mapping fits for {plural(len(bad), 'layer')}: "
                 f"{', '.join(map(str, bad))}")


def _print_sweep(totals: pd.DataFrame, B: int, swept: dict, objective: str, unit: str) -> None:
    """Several configurations: the best ones by the objective, then the best one's totals."""
    from eyejax.app.logging_wandb import objective_metric, rank_configs

    n_bad = int((~totals["feasible"].astype(bool)).sum())
    ranked = rank_configs(totals, objective)
    log.info("")
    log.info(f"{plural(B, 'configuration')}, {n_bad:,} infeasible (no mapping fits some layer)")
    if not len(ranked):
        log.info("no feasible configuration")
        return
    show = ranked.head(BEST_SHOWN)
    cols = ["config_id", *swept.keys(), "energy", "latency_ms", "fps"]
    if show["power_mw"].notna().any():
        cols.append("power_mw")
    cols.append("dram_accesses_per_mac")
    t = show[cols].copy()
    if objective == "edp":
        t["edp"] = objective_metric(show, "edp").to_numpy()
    t = t.rename(columns={"energy": f"energy [{unit}]"})
    log.info(f"best {len(show)} by {objective}:")
    log.info(t.to_string(index=False, float_format=lambda v: format(v, ".5g")))
    log.info("")
    log.info(f"best configuration (config_id {int(show.iloc[0]['config_id'])}):")
    log.info("\n".join(_totals_lines(show.iloc[0], unit)))


def _log_wandb(cfg, df: pd.DataFrame, totals: pd.DataFrame) -> None:
    """The W&B run (offline by default); a failure is a warning, the results are already written."""
    if cfg.wandb.mode == "disabled":
        return
    from eyejax.app.logging_wandb import log_or_warn, log_run

    log_or_warn(cfg, os.getcwd(), lambda: log_run(cfg, df, totals))


def precheck_overrides(argv: list[str]) -> str | None:
    """An error message for a plain override of an unknown field (``arch.not_a_field=3``), else None.

    Hydra rejects such an override itself ("Key 'not_a_field' is not in struct"); this says which
    fields exist. Overrides with ``+``/``++``/``~`` reach the configuration checks in eyejax.app.config.
    """
    from eyejax.app.config import ARCH_KEYS, ENERGY_LEVELS, SPARSITY_KEYS, WORKLOAD_KEYS

    groups = {"arch": ARCH_KEYS, "workload": WORKLOAD_KEYS, "sparsity": SPARSITY_KEYS}
    for arg in argv:
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        parts = arg.split("=", 1)[0].strip().split(".")
        if len(parts) < 2 or parts[0] not in groups:
            continue
        where, allowed = parts[0], groups[parts[0]]
        if parts[1] not in allowed:
            return (f"{where}.{parts[1]} is not a known field; allowed fields of {where}: "
                    f"{', '.join(allowed)}")
        if where == "arch" and parts[1] == "energy" and len(parts) > 2 and parts[2] not in ENERGY_LEVELS:
            return (f"arch.energy.{parts[2]} is not a known field; allowed fields of arch.energy: "
                    f"{', '.join(ENERGY_LEVELS)}")
    return None


@hydra.main(version_base=None, config_path=CONF_PATH, config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra app: one evaluation per job (``-m`` runs one job per override combination)."""
    code = run(cfg)
    if code:
        sys.exit(code)


def main() -> None:
    """Console entry point (``eyejax ...``, ``python -m eyejax.app.cli ...``); ``eyejax bench ...`` runs
    the benchmark (eyejax.app.bench) and ``eyejax report ...`` the report (eyejax.app.report)
    instead of the Hydra app."""
    if sys.argv[1:2] == ["bench"]:
        from eyejax.app.bench import main as bench_main

        bench_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["report"]:
        from eyejax.app.report import main as report_main

        sys.exit(report_main(sys.argv[2:]))
    msg = precheck_overrides(sys.argv[1:])
    if msg is not None:
        print(f"eyejax: error: {msg}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
