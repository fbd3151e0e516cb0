"""``eyejax`` command line: evaluate Eyeriss v1 configurations on a network (a Hydra app).

    eyejax                                               # Eyeriss v1 chip, AlexNet (batch 4), dense
    eyejax arch.pe_rows=16 workload.batch=1
    eyejax arch.pe_rows=[12,16] arch.glb_banks=[25,50]   # sweep: cartesian product of list-valued fields
    eyejax workload=vgg16 objective=latency sparsity=relu50 wandb.mode=disabled
    eyejax workload=custom workload.path=my_net.csv
    eyejax --cfg job                                     # print the composed configuration
    eyejax sweep=v1_array_glb workload=resnet50          # a sweep grid (conf/sweep/), see eyejax.sweep
    eyejax bench --workload alexnet,resnet50             # the benchmark (eyejax.bench)

The configuration tree is the repository's top-level ``conf/`` when eyejax runs from a checkout (an
editable install or PYTHONPATH); an installed wheel ships the same files as the package ``eyejax.conf``
and Hydra reads them from there (``pkg://eyejax.conf``), whatever the current folder. Results go to the
Hydra run directory (``outputs/<date>/<time>/`` unless ``hydra.run.dir=...``): ``results.parquet`` (one
row per config_id x layer), ``totals.parquet`` (one row per config_id), and a W&B run under ``wandb/``
(offline unless ``wandb.mode=online``).
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

from eyejax.arch import family_of
from eyejax.help import register_resolver as register_help_resolver
from eyejax.logs import energy_unit_words, log, plural


def _checkout_conf() -> Path | None:
    """<checkout>/conf when this eyejax package sits in a source checkout, else None."""
    pkg = Path(__file__).resolve().parent
    cand = pkg.parent / "conf"
    if ((pkg.parent / "pyproject.toml").is_file() and (cand / "config.yaml").is_file()
            and (cand / "arch" / "eyeriss_v1.yaml").is_file()):
        return cand
    return None


def find_conf_dir() -> str:
    """The configuration directory: <checkout>/conf, else the installed package data (eyejax/conf)."""
    checkout = _checkout_conf()
    if checkout is not None:
        return str(checkout)
    pkg = Path(__file__).resolve().parent
    return str(pkg / "conf")  # a wheel install; if missing, Hydra says "config directory not found"


def conf_search_path() -> str:
    """Hydra's primary config path: the checkout's conf/ directory, else ``pkg://eyejax.conf``
    (the configs installed with the package, found through the import system)."""
    checkout = _checkout_conf()
    return str(checkout) if checkout is not None else "pkg://eyejax.conf"


CONF_DIR = find_conf_dir()
CONF_PATH = conf_search_path()
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


def _hydra_choice(group: str, default: str = "?") -> str:
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices.get(group, default)
    except Exception:  # noqa: BLE001 - outside a Hydra run
        return default


def _original_cwd() -> str:
    try:
        return hydra.utils.get_original_cwd()
    except ValueError:  # not running under Hydra
        return os.getcwd()


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


def run(cfg: DictConfig) -> int:
    """Everything the command does; returns the exit status."""
    os.environ.setdefault("WANDB_SILENT", "true")
    # Hydra logs at INFO; keep JAX's backend probing ("Unable to initialize backend 'tpu'") quiet.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    from eyejax import compile_cache
    from eyejax.sweep.cli import is_sweep

    try:
        compile_cache.configure(cfg.get("compile_cache"))  # repeat runs reuse compiled code
    except ValueError as exc:
        log.error(f"eyejax: error: {exc}")
        return 2

    if is_sweep(cfg):  # sweep=<name>: a grid in vectorized chunks, Parquet parts, report (eyejax.sweep)
        from eyejax.sweep.cli import run as run_sweep

        return run_sweep(cfg)
    from eyejax.config import build_inputs, num_configs, output_paths
    from eyejax.logging_wandb import objective_metric, rank_configs

    # 1. Check and build every input before any model work.
    try:
        inputs = build_inputs(cfg, base_dir=_original_cwd())
    except ValueError as exc:  # ConfigError, ArchError, WorkloadError, SparsityError
        log.error(f"eyejax: error: {exc}")
        return 2
    arch, swept, network = inputs.arch, inputs.swept, inputs.network
    objective = cfg.objective
    B = num_configs(swept)
    unit = getattr(arch.energy, "unit", "normalized")
    log.info(f"eyejax: {network.name} ({inputs.num_layers} layers, {network.macs:,} MACs, "
             f"batch {network.layers[0].N}) on {_design(inputs, cfg)}; {_sparsity_words(cfg)}; "
             f"objective {objective}"
             + (f"; mapping {cfg.get('mapping')}" if cfg.get("mapping") is not None else "")
             + f"; {plural(B, 'configuration')}"
             + (f" over {', '.join(f'{k} ({len(np.unique(v))})' for k, v in swept.items())}"
                if swept else ""))

    # 2. Evaluate.
    from eyejax.evaluate import DEFAULT_CHUNK, evaluate

    bar = None
    if B > DEFAULT_CHUNK:
        from tqdm import tqdm

        bar = tqdm(total=B, unit="config", file=sys.stderr, desc="evaluating")
    mapping = cfg.get("mapping")
    if mapping is not None:
        mapping = str(mapping)
        if os.path.exists(os.path.join(_original_cwd(), mapping)):
            mapping = os.path.join(_original_cwd(), mapping)
    try:
        result = evaluate(arch, network, sparsity=inputs.sparsity, objective=objective,
                          dataflow=getattr(inputs, "dataflow", None),
                          progress=bar.update if bar is not None else None, mapping=mapping)
    except ValueError as exc:  # MappingError: a fixed mapping that is malformed or does not fit
        log.error(f"eyejax: error: {exc}")
        return 2
    finally:
        if bar is not None:
            bar.close()
    df = result.to_dataframe(swept=swept)
    totals = result.network_totals(swept=swept)

    # 3. Write results (before printing/logging, so they exist whatever happens next).
    out = cfg.output
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

    # 4. Print.
    n_bad = int((~totals["feasible"].astype(bool)).sum())
    ranked = rank_configs(totals, objective)
    if B == 1:
        log.info("")
        lt = layer_table(df)
        if len(lt) > LAYER_ROWS_SHOWN:
            log.info(f"(first {LAYER_ROWS_SHOWN} of {len(lt)} layers; all are in {out.get('parquet')})")
            lt = lt.head(LAYER_ROWS_SHOWN)
        log.info(f"per layer ({energy_unit_words(unit)}; dram%..alu% = its split by level):")
        _print_table(lt)
        log.info("")
        row = totals.iloc[0]
        if bool(row["feasible"]):
            log.info("network totals:")
            log.info("\n".join(_totals_lines(row, unit)))
        else:
            bad = df.loc[~df["feasible"].astype(bool), "layer"].tolist()
            log.info(f"network totals: INFEASIBLE - no mapping fits for {plural(len(bad), 'layer')}: "
                     f"{', '.join(map(str, bad))}")
    else:
        log.info("")
        log.info(f"{plural(B, 'configuration')}, {n_bad:,} infeasible (no mapping fits some layer)")
        if len(ranked):
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
        else:
            log.info("no feasible configuration")
    log.info("")
    here = os.getcwd()
    for w in written:
        log.info(f"wrote {os.path.join(here, w)}")

    # 5. Log to W&B (offline by default). A logging failure does not lose the results above.
    if cfg.wandb.mode != "disabled":
        from eyejax.logging_wandb import log_run

        try:
            run_dir = log_run(cfg, df, totals)
        except Exception as exc:  # noqa: BLE001 - report and keep the results
            log.warning(f"eyejax: warning: W&B logging failed ({type(exc).__name__}: {exc}); results "
                        f"are in {here}. Use wandb.mode=offline or wandb.mode=disabled.")
        else:
            if run_dir is not None:
                sync = " (upload later with `wandb sync`)" if cfg.wandb.mode == "offline" else ""
                log.info(f"wandb run: {run_dir}{sync}")
    return 0


def precheck_overrides(argv: list[str]) -> str | None:
    """An error message for a plain override of an unknown field (``arch.not_a_field=3``), else None.

    Hydra rejects such an override itself ("Key 'not_a_field' is not in struct"); this says which
    fields exist. Overrides with ``+``/``++``/``~`` reach the configuration checks in eyejax.config.
    """
    from eyejax.config import ARCH_KEYS, ENERGY_LEVELS, SPARSITY_KEYS, WORKLOAD_KEYS

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
    """Console entry point (``eyejax ...``, ``python -m eyejax.cli ...``); ``eyejax bench ...`` runs
    the benchmark (eyejax.bench) instead of the Hydra app."""
    if sys.argv[1:2] == ["bench"]:
        from eyejax.bench import main as bench_main

        bench_main(sys.argv[2:])
        return
    msg = precheck_overrides(sys.argv[1:])
    if msg is not None:
        print(f"eyejax: error: {msg}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
