"""Sweeps at scale: grids evaluated in vectorized chunks, Parquet parts, resume, process slices,
analysis (Pareto fronts, best configurations, plots) and W&B logging. See README "Sweeps"."""
from eyejax.sweep.grid import Axis, Grid, SweepError, build_grid, sweepable_fields
from eyejax.sweep.runner import (SweepDirError, SweepPlan, SweepRun, iter_parts, load_meta,
                                 make_plan, read_results, run_sweep)

__all__ = ["Axis", "Grid", "SweepError", "SweepDirError", "SweepPlan", "SweepRun", "build_grid",
           "sweepable_fields", "make_plan", "run_sweep", "read_results", "iter_parts", "load_meta"]
