"""``eyejax-prune``: energy-aware vs magnitude pruning of the digits CNN (a Hydra app, conf/prune.yaml).

Runs `eyejax.codesign.pruning.run_pruning` and writes its results into the Hydra run directory:
`steps.parquet` (one row per method × step × layer), `summary.parquet` (per method × step),
`final.parquet`, `totals.parquet`, CSV copies, `pruning.md` and PNG plots, and an offline W&B run.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from eyejax.codesign.energy import ENERGY_MODELS
from eyejax.codesign.pruning import METHODS, PruneConfig, PruningResult, run_pruning

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# report: tables, markdown, plots


def _md(df: pd.DataFrame, floatfmt=".4g") -> str:
    cols = list(df.columns)
    fmt = lambda v: (format(v, floatfmt) if isinstance(v, (float, np.floating)) and np.isfinite(v)
                     else ("-" if isinstance(v, (float, np.floating)) else str(v)))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def markdown_report(res: PruningResult, unit: str = "normalized") -> str:
    cfg = res.config
    models = ", ".join(f"`{m}`" for m in cfg.energy_models)
    out = [f"# Energy-aware vs magnitude pruning on digits (energy models {models}, batch "
           f"{cfg.hw_batch})",
           "", "Methods: " + "; ".join(f"`{m}`: {METHODS[m]}" for m in cfg.methods) + ".",
           "",
           f"Dense validation accuracy {res.dense_val_acc:.4f}; budget {res.budget:.4f} "
           f"(drop ≤ {cfg.max_acc_drop}). Layers ranked by `{cfg.energy_model}` energy. "
           f"Energies per image, unit: {unit}.", "",
           "## Result", "", _md(res.totals), "",
           "## Per layer (energy per image at the last kept step)", "", _md(res.final), "",
           "## Per step", "",
           _md(res.summary[["method", "step", "action", "target", "accepted", "val_acc", "test_acc",
                            "pruned_fraction"]
                           + [f"energy_{m}_per_image" for m in cfg.energy_models]]), ""]
    return "\n".join(out)


def plot_report(res: PruningResult, out_dir: str | Path, unit: str = "normalized") -> list[str]:
    """PNG plots: energy and accuracy per step; per-layer energy and density; accuracy against
    energy. Returns the paths. (matplotlib's object API: a notebook's backend is left alone.)"""
    from matplotlib.ticker import MaxNLocator

    from eyejax.plots import new_figure

    out_dir = Path(out_dir)
    paths = []
    s = res.summary
    methods = list(res.config.methods)
    models = list(res.config.energy_models)
    K = len(models)
    unit_txt = "normalized: one MAC = 1" if unit == "normalized" else unit
    budget_label = f"accuracy budget ({res.budget:.3f} = dense - {res.config.max_acc_drop:g})"
    styles = dict(zip(methods, ("o-", "^-", "s--", "d-.")))
    fig, axes = new_figure(1, K + 1, figsize=(4.6 * (K + 1) + 1.5, 4))
    axes = axes[0]
    for m in methods:
        style = styles[m]
        d = s[(s.method == m) & s.accepted]
        for em, ax in zip(models, axes[:K]):
            ax.plot(d.step, d[f"energy_{em}_per_image"], style, label=m)
        axes[K].plot(d.step, d.val_acc, style, label=m)
    for em, ax in zip(models, axes[:K]):
        ax.set(title=f"energy per image, model {em}", xlabel="pruning step (kept steps)",
               ylabel=f"energy per image [{unit_txt}]")
    axes[K].axhline(res.budget, color="k", lw=0.8, ls=":", label=budget_label)
    axes[K].set(title="validation accuracy", xlabel="pruning step (kept steps)",
                ylabel="validation accuracy")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(*axes[K].get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="method")
    p = out_dir / "pruning_steps.png"
    fig.savefig(p, dpi=100)
    paths.append(str(p))

    f = res.final
    x = np.arange(len(f))
    fig, axes = new_figure(1, K + 1, figsize=(4.6 * (K + 1) + 1.5, 4))
    axes = axes[0]
    tags = ["dense"] + methods
    w = 0.8 / len(tags)
    for j, tag in enumerate(tags):
        off = (j - (len(tags) - 1) / 2) * w
        for em, ax in zip(models, axes[:K]):
            ax.bar(x + off, f[f"energy_{em}_{tag}"], w, label=tag)
        axes[K].bar(x + off, f[f"weight_density_{tag}"], w, label=tag)
    for em, ax in zip(models, axes[:K]):
        ax.set(title=f"energy per image by layer, model {em}", xlabel="layer",
               ylabel=f"energy per image [{unit_txt}]")
    axes[K].set(title="weight density by layer", xlabel="layer",
                ylabel="weight density (nonzero fraction)", ylim=(0, 1.05))
    for ax in axes:
        ax.set_xticks(x, f.layer)
    fig.legend(*axes[K].get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="model (last kept step)")
    p = out_dir / "pruning_layers.png"
    fig.savefig(p, dpi=100)
    paths.append(str(p))

    fig, axes = new_figure(1, 1, figsize=(6.4, 4.2))
    ax = axes[0, 0]
    col = f"energy_{res.config.energy_model}_per_image"
    for m in methods:
        d = s[(s.method == m) & s.accepted]
        ax.plot(d[col], d.val_acc, styles[m], label=m)
    d0 = s[(s.method == methods[0]) & (s.step == 0)]
    if len(d0):
        ax.annotate("dense", (float(d0[col].iloc[0]), float(d0.val_acc.iloc[0])),
                    textcoords="offset points", xytext=(-6, 8), ha="right", fontsize=8)
    ax.axhline(res.budget, color="k", lw=0.8, ls=":", label=budget_label)
    ax.set(xlabel=f"energy per image, model {res.config.energy_model} [{unit_txt}]",
           ylabel="validation accuracy", title="accuracy vs energy (every kept step)")
    ax.legend(fontsize=8, loc="best")
    p = out_dir / "pruning_tradeoff.png"
    fig.savefig(p, dpi=100)
    paths.append(str(p))
    return paths


def write_outputs(res: PruningResult, out_dir: str | Path, csv: bool = True, plots: bool = True,
                  unit: str = "normalized") -> list[str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, df in (("steps", res.steps), ("summary", res.summary), ("final", res.final),
                     ("totals", res.totals)):
        df.to_parquet(out_dir / f"{name}.parquet", index=False)
        files.append(str(out_dir / f"{name}.parquet"))
        if csv:
            df.to_csv(out_dir / f"{name}.csv", index=False)
            files.append(str(out_dir / f"{name}.csv"))
    (out_dir / "pruning.md").write_text(markdown_report(res, unit))
    files.append(str(out_dir / "pruning.md"))
    if plots:
        files += plot_report(res, out_dir, unit)
    return files


# --------------------------------------------------------------------------------------------------
# Hydra entry point (conf/prune.yaml)


def config_from_omegaconf(cfg) -> tuple[PruneConfig, object, object]:
    """(PruneConfig, v1 architecture, v2 architecture or None) from the composed Hydra config;
    errors name the key."""
    from omegaconf import OmegaConf

    from eyejax.app.config import arch_from_config

    arch, swept = arch_from_config(cfg.arch)
    if getattr(arch, "family", None) != "eyeriss_v1":
        raise ValueError("arch must be an Eyeriss v1 configuration (the v2 one is arch_v2)")
    if swept:
        raise ValueError(f"eyejax-prune runs one architecture; arch fields {sorted(swept)} are lists")
    arch_v2 = None
    if cfg.get("arch_v2") is not None:
        arch_v2, swept = arch_from_config(cfg.arch_v2)
        if getattr(arch_v2, "family", None) != "eyeriss_v2":
            raise ValueError("arch_v2 must be an Eyeriss v2 configuration (arch_v2.family=eyeriss_v2)")
        if swept:
            raise ValueError(f"eyejax-prune runs one v2 architecture; arch_v2 fields {sorted(swept)} "
                             "are lists")
    c = OmegaConf.to_container(cfg, resolve=True)
    known = {f.name for f in dataclasses.fields(PruneConfig)}
    flat = {"seed": c.get("seed", 0)}
    extra = set(c) - {"arch", "arch_v2", "seed", "data", "model", "train", "prune", "wandb", "output"}
    if extra:
        raise ValueError(f"unknown top-level key(s) {sorted(extra)}")
    for group in ("data", "model", "train", "prune"):
        for k, v in (c.get(group) or {}).items():
            if k not in known:
                raise ValueError(f"{group}.{k} is not a pruning setting; known: {sorted(known)}")
            flat[k] = tuple(v) if isinstance(v, list) else v
    return PruneConfig(**flat), arch, arch_v2


def _wandb_run(cfg, mode: str):
    from omegaconf import OmegaConf

    from eyejax.app.logging_wandb import init_wandb

    w = cfg.get("wandb") or {}
    return init_wandb(mode=mode, project=w.get("project", "eyejax"), entity=w.get("entity"),
                      tags=list(w.get("tags") or []) or None, name="prune-digits",
                      job_type="prune", config=OmegaConf.to_container(cfg, resolve=True),
                      dir=os.getcwd())


def run_app(cfg) -> int:
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:
        pcfg, arch, arch_v2 = config_from_omegaconf(cfg)
    except ValueError as exc:
        print(f"eyejax-prune: error: {exc}", file=sys.stderr)
        return 2
    mode = (cfg.get("wandb") or {}).get("mode", "offline")
    if mode not in ("offline", "online", "disabled"):
        print(f"eyejax-prune: error: wandb.mode must be offline, online or disabled, got {mode!r}",
              file=sys.stderr)
        return 2
    wandb = run = None
    if mode != "disabled":
        wandb, run = _wandb_run(cfg, mode)

    def logger(s):
        log.info(f"  {s['method']:>13} step {s['step']:>2} {s['target']:<20} "
                  f"{'kept  ' if s['accepted'] else 'undone'} val {s['val_acc']:.4f}  "
                  + "  E/img " + "  ".join(f"{m} {s[f'energy_{m}_per_image']:.4g}"
                                           for m in ENERGY_MODELS if f"energy_{m}_per_image" in s))
        if run is not None:
            run.log({f"{s['method']}/{k}": v for k, v in s.items()
                     if isinstance(v, (int, float, bool)) and k != "step"}
                    | {f"{s['method']}/step": s["step"]})

    try:
        res = run_pruning(pcfg, arch, logger, arch_v2=arch_v2)
        unit = getattr(arch.energy, "unit", "normalized")
        out = cfg.get("output") or {}
        files = write_outputs(res, os.getcwd(), csv=bool(out.get("csv", True)),
                              plots=bool(out.get("plots", True)), unit=unit)
        log.info("")
        log.info(markdown_report(res, unit))
        log.info("")
        for f in files:
            log.info(f"wrote {f}")
        if run is not None:
            summ = {}
            for _, r in res.totals.iterrows():
                for k, v in r.items():
                    if k != "method":
                        summ[f"{r['method']}/{k}"] = float(v)
            summ["dense_val_acc"] = res.dense_val_acc
            summ["budget"] = res.budget
            run.summary.update(summ)
            tables = {n: wandb.Table(dataframe=df.astype({c: str for c in df.columns
                                                          if df[c].dtype == object}))
                      for n, df in (("steps", res.steps), ("summary", res.summary),
                                    ("final", res.final), ("totals", res.totals))}
            imgs = {Path(f).stem: wandb.Image(f) for f in files if f.endswith(".png")}
            run.log({**tables, **imgs})
            Path(run.dir, "pruning-summary.json").write_text(json.dumps(summ, indent=2) + "\n")
    finally:
        if run is not None:
            run.finish()
    return 0


def main() -> None:
    import hydra

    from eyejax.app.help import register_resolver
    from eyejax.app.runtime import CONF_PATH

    register_resolver()  # hydra.help.template (--help) lists every group's fields from conf/

    @hydra.main(version_base=None, config_path=CONF_PATH, config_name="prune")
    def _main(cfg):
        code = run_app(cfg)
        if code:
            sys.exit(code)

    _main()


if __name__ == "__main__":
    main()
