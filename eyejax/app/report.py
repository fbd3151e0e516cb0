"""One entry point that regenerates every comparison the README shows, into a report folder.

    eyejax report [--out report] [--reduced]

Writes `<out>/README.md` (Markdown, figures embedded) and its PNGs and CSVs:

0. Eyeriss v1 against the silicon per layer, JSSC17 Table V, and VGG-16 (experiments/v1_silicon.py);
1. Eyeriss v1 against the published JSSC17 numbers (experiments/v1_published.py);
2. Eyeriss v2 against the published JETCAS19 numbers and 3. the v1/v2 scaling study, from
   experiments/v2_published.py and experiments/v2_scaling.py when those experiments are in the
   checkout (each may define `report_section(outdir, reduced) -> str`; otherwise its
   `comparison_rows()` and `markdown(rows)` are used, like v1_published's, in the full run only);
4. ISCA16: RS against WS / OS_A / OS_B / OS_C / NLR under equal storage area (experiments/isca16.py);
5. Eyexam bounds, rooflines and waterfalls (experiments/eyexam.py).

`--reduced` runs a small version of each (AlexNet only, 256 PEs, batch 16, three ISCA16 dataflows)
so a test can run the whole pipeline quickly. Experiments are loaded from the checkout's
`experiments/` package (next to the `eyejax` package; an editable install keeps it there), imported
as `experiments.<name>`.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from eyejax.plots import error_chart

CHECKOUT = Path(__file__).resolve().parents[2]
EXPERIMENTS = CHECKOUT / "experiments"


def load_experiment(name: str):
    """The checkout's ``experiments.<name>`` module, or None when it is not in this checkout.

    The report runs from a source checkout (an editable install or PYTHONPATH); the checkout's root
    is put on ``sys.path`` when it is not there, so ``experiments`` (a package) imports from it."""
    if not (EXPERIMENTS / "__init__.py").is_file() or not (EXPERIMENTS / f"{name}.py").is_file():
        return None
    if not any(Path(p or os.curdir).resolve() == CHECKOUT for p in sys.path):
        sys.path.insert(0, str(CHECKOUT))
    mod = importlib.import_module(f"experiments.{name}")
    if Path(mod.__file__).resolve().parent != EXPERIMENTS:
        raise ImportError(f"experiments.{name} was imported from {mod.__file__}, not from this "
                          f"checkout's {EXPERIMENTS}")
    return mod


def v1_section(outdir: str, reduced: bool) -> str:
    mod = load_experiment("v1_published")
    if mod is None:
        return "## Eyeriss v1 against the published numbers\n\n(experiments/v1_published.py is missing.)\n"
    if reduced:   # AlexNet only
        got = mod.model_figures("alexnet")
        rows = [("alexnet", mod.LABELS[k], ref, got[k], (got[k] - ref) / ref * 100.0)
                for k, ref in mod.PUBLISHED["alexnet"].items()]
    else:
        rows = mod.comparison_rows()
    fig_name = error_chart(rows, outdir, "v1_published.png",
                            "Eyeriss v1: eyejax against JSSC17 (CONV layers)")
    return "\n".join(["## Eyeriss v1 against the published numbers", "",
                      "`python experiments/v1_published.py` (assumptions in its docstring).", "",
                      mod.markdown(rows), "", f"![v1 vs published]({fig_name})", ""])


def external_section(names, title: str, outdir: str, reduced: bool) -> str:
    """A section from another engineer's experiment (the first of `names` present)."""
    for name in names:
        mod = load_experiment(name)
        if mod is not None:
            break
    else:
        return f"## {title}\n\n(Not generated: experiments/{names[0]}.py is not in this checkout yet.)\n"
    if hasattr(mod, "report_section"):
        return mod.report_section(outdir, reduced)
    if reduced:
        return f"## {title}\n\n(`python experiments/{name}.py`; skipped in the reduced run.)\n"
    if hasattr(mod, "comparison_rows") and hasattr(mod, "markdown"):
        rows = mod.comparison_rows()
        fig = error_chart(rows, outdir, f"{name}.png", title)
        return "\n".join([f"## {title}", "", f"`python experiments/{name}.py` (assumptions in its "
                          "docstring).", "", mod.markdown(rows), "", f"![{title}]({fig})", ""])
    return f"## {title}\n\n(experiments/{name}.py has no report_section or comparison_rows.)\n"


def isca16_section(outdir: str, reduced: bool) -> str:
    mod = load_experiment("isca16")
    if reduced:
        out = mod.run(outdir, pes=(256,), batches=(16,), fc_batches=(), dataflows=("rs", "ws", "nlr"),
                      verbose=False)
    else:
        out = mod.run(outdir, verbose=False)
    return out["markdown"]


def eyexam_section(outdir: str, reduced: bool) -> str:
    return load_experiment("eyexam").run(outdir, reduced=reduced, verbose=False)["markdown"]


SECTIONS = (
    ("v1_silicon", lambda o, r: external_section(("v1_silicon",),
                                                 "Eyeriss v1 against the silicon, layer by layer", o, r)),
    ("v1_published", lambda o, r: v1_section(o, r)),
    ("v2_published", lambda o, r: external_section(("v2_published",),
                                                   "Eyeriss v2 against the published numbers", o, r)),
    ("scaling", lambda o, r: external_section(("v2_scaling", "scaling"),
                                              "Scaling: Eyeriss v2 over v1 speed-up", o, r)),
    ("isca16", isca16_section),
    ("eyexam", eyexam_section),
)


def build(outdir: str = "report", reduced: bool = False, verbose: bool = True) -> str:
    """Regenerate every section into `outdir`; returns the path of README.md."""
    os.makedirs(outdir, exist_ok=True)
    parts = ["# eyejax report", "",
             "Regenerate with `eyejax report --out report`"
             + (" (this is the reduced run: `--reduced`)." if reduced else "."),
             "Energy is in normalized units (one 16-bit MAC = 1, ISCA16) unless a section says pJ.", ""]
    for key, fn in SECTIONS:
        t = time.time()
        parts.append(fn(outdir, reduced))
        if verbose:
            print(f"report: {key} done in {time.time() - t:.1f} s", file=sys.stderr)
    path = os.path.join(outdir, "README.md")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="eyejax report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="report", help="report folder (default: report)")
    ap.add_argument("--reduced", action="store_true", help="small, fast version of every section")
    args = ap.parse_args(argv)
    import eyejax  # noqa: F401  (x64)

    path = build(args.out, args.reduced)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
