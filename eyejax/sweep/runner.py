"""Running a sweep grid: vectorized chunks, Parquet parts written atomically, resume, process slices.

Layout of a sweep directory::

    sweep.json             the sweep's identity (hash), grid, plan and resolved config
    sweep.yaml             the resolved Hydra config (when run from the command line)
    parts/part-000123.parquet    per-config network totals of chunk 123 (+ swept values, area proxy)
    layers/part-000123.parquet   per-(config, layer) rows of chunk 123 (only with per_layer)

A chunk is ``part_size`` consecutive configurations (config_id = grid index). Each finished chunk is
written to a temporary file and renamed (os.replace), layers part first, so a totals part that
exists is complete and implies its layers part. Every part carries the sweep hash in its Parquet
metadata, with its chunk index. Re-running the same sweep into the same directory skips the chunks
whose parts verify (``verify_part``: they read back in full, carry the sweep's hash and their chunk
index, and hold exactly that chunk's config_ids) and recomputes, with a warning, any part that does
not; files that are no part of the plan are ignored with a warning (resume). A directory holding a
different sweep, a file, or a folder that is not a sweep directory is refused.

With ``process_count`` P > 1, process p evaluates chunks p, p+P, p+2P, ... (``jax.distributed`` or
plain independent processes alike) and writes its own parts into the shared directory.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from eyejax import __version__
from eyejax.dataflow import dataflow_for, prepare_search_space
from eyejax.evaluate import DEFAULT_CHUNK, evaluate_arrays, use_search_parts
from eyejax.limits import check_counts
from eyejax.metrics import edp
from eyejax.results import NetworkResult
from eyejax.sweep.area import area_proxy
from eyejax.sweep.grid import Grid, SweepError, grid_hash

FORMAT = 1
TARGET_ROWS = 1 << 18          # config x layer rows per chunk when part_size is auto (memory bound)
MAX_PART = 1 << 16
PER_LAYER_AUTO_ROWS = 1_000_000  # per_layer=auto stores per-layer rows up to this many (config x layer)
HASH_KEY = b"eyejax.sweep_hash"
CHUNK_KEY = b"eyejax.chunk"


log = logging.getLogger(__name__)


class SweepDirError(SweepError):
    """The output directory holds a different sweep."""


# --------------------------------------------------------------------------------------------------
# the plan


@dataclasses.dataclass
class SweepPlan:
    grid: Grid
    network: Any
    objective: str = "energy"
    dataflow: str | None = None
    space: Any = None
    part_size: int = 0
    eval_chunk: int = 0
    per_layer: bool = False
    name: str = "sweep"

    @property
    def size(self) -> int:
        return self.grid.size

    @property
    def num_layers(self) -> int:
        return len(self.network.layers)

    @property
    def num_chunks(self) -> int:
        return -(-self.size // self.part_size)

    def chunk_range(self, k: int) -> tuple[int, int]:
        start = k * self.part_size
        return start, min(start + self.part_size, self.size)

    def identity(self) -> dict:
        """Everything the results depend on (its hash names the sweep)."""
        layers = self.network.arrays()
        df_module = dataflow_for(self.grid.base_arch, self.dataflow)
        space = df_module.DEFAULT_SEARCH if self.space is None else self.space
        return {
            "format": FORMAT,
            "eyejax": __version__,
            "grid": self.grid.spec(),
            "network": {"name": getattr(self.network, "name", "network"),
                        "layer_names": list(self.network.names),
                        "layers": {f.name: np.asarray(getattr(layers, f.name)).tolist()
                                   for f in dataclasses.fields(layers)}},
            "objective": self.objective,
            "dataflow": df_module.__name__,
            "search_space": repr(space),
            "part_size": self.part_size,
            "per_layer": self.per_layer,
        }

    @property
    def hash(self) -> str:
        if not hasattr(self, "_hash"):
            self._hash = grid_hash(self.identity())
        return self._hash


def make_plan(grid: Grid, network, objective: str = "energy", part_size: int | None = None,
              per_layer: bool | str = "auto", eval_chunk: int | None = None,
              dataflow: str | None = None, space=None, name: str = "sweep") -> SweepPlan:
    """Chunking and storage choices for a grid on a network.

    part_size (configurations per chunk/part) defaults to ~TARGET_ROWS config x layer rows, a
    multiple of eval_chunk (the configurations per compiled call, default DEFAULT_CHUNK).
    per_layer: "auto" stores per-layer rows when the grid has at most PER_LAYER_AUTO_ROWS of them.
    """
    L = len(network.layers)
    ec = int(eval_chunk or DEFAULT_CHUNK)
    if ec < 1:
        raise SweepError(f"sweep.eval_chunk must be >= 1, got {eval_chunk}")
    if part_size is None:
        part_size = max(ec, min(MAX_PART, (TARGET_ROWS // max(L, 1)) // ec * ec))
    part_size = int(part_size)
    if part_size < 1:
        raise SweepError(f"sweep.chunk_size must be >= 1, got {part_size}")
    part_size = min(part_size, grid.size)
    ec = min(ec, part_size)
    if per_layer == "auto":
        per_layer = grid.size * L <= PER_LAYER_AUTO_ROWS
    if not isinstance(per_layer, bool):
        raise SweepError(f"sweep.per_layer must be auto, true or false, got {per_layer!r}")
    # static search-space fields from the grid's bounding corner: one compile for the whole sweep
    corner_arch, corner_sp = grid.corner()
    check_counts(corner_arch, network, where="sweep grid (largest values of every axis): ")
    space = prepare_search_space(dataflow_for(grid.base_arch, dataflow), space, corner_arch,
                                 network.arrays(), corner_sp)
    return SweepPlan(grid=grid, network=network, objective=objective, dataflow=dataflow,
                     space=space, part_size=part_size, eval_chunk=ec, per_layer=per_layer,
                     name=name)


# --------------------------------------------------------------------------------------------------
# files


def part_name(k: int) -> str:
    return f"part-{k:06d}.parquet"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_part(df: pd.DataFrame, path: Path, sweep_hash: str, chunk: int) -> None:
    """Write one part atomically (temporary file + os.replace) with the sweep hash in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[HASH_KEY] = sweep_hash.encode()
    meta[CHUNK_KEY] = str(chunk).encode()
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, write_page_checksum=True)  # damaged pages fail verify_part
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def part_hash(path: Path) -> str | None:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - unreadable part: recompute it
        return None
    v = meta.get(HASH_KEY)
    return v.decode() if v else None


def prepare_dir(out_dir: Path, plan: SweepPlan, config: dict | None = None,
                config_yaml: str | None = None, resume: bool = True) -> None:
    """Create the sweep directory and its sweep.json, or check that it holds this same sweep."""
    out_dir = Path(out_dir)
    meta_path = out_dir / "sweep.json"
    _check_is_sweep_dir(out_dir)
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise SweepDirError(f"{meta_path} is unreadable ({exc}); use another sweep.dir") from None
        if old.get("hash") != plan.hash:
            diff = _describe_difference(old.get("identity", {}), plan.identity())
            raise SweepDirError(
                f"sweep.dir {out_dir} holds a different sweep (hash {str(old.get('hash'))[:12]}, this "
                f"one {plan.hash[:12]}{'; ' + diff if diff else ''}). Refusing to mix them: choose "
                f"another sweep.dir, or delete that directory to start over.")
        if not resume:
            for sub in ("parts", "layers"):
                for p in (out_dir / sub).glob("part-*.parquet"):
                    p.unlink()
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    if plan.per_layer:
        (out_dir / "layers").mkdir(exist_ok=True)
    for sub in ("parts", "layers"):
        for p in (out_dir / sub).glob(".part-*.tmp-*"):
            if _stale_tmp(p):
                p.unlink(missing_ok=True)
    doc = {"hash": plan.hash, "name": plan.name, "size": plan.size, "part_size": plan.part_size,
           "num_chunks": plan.num_chunks, "num_layers": plan.num_layers,
           "per_layer": plan.per_layer, "objective": plan.objective,
           "axes": [list(a.names) for a in plan.grid.axes],
           "identity": plan.identity(), "config": config}
    if not meta_path.exists():
        _atomic_write_bytes(meta_path, (json.dumps(doc, indent=1, default=str) + "\n").encode())
    if config_yaml is not None and not (out_dir / "sweep.yaml").exists():
        _atomic_write_bytes(out_dir / "sweep.yaml", config_yaml.encode())


SWEEP_DIR_ENTRIES = ("sweep.json", "sweep.yaml", "parts", "layers")


def _check_is_sweep_dir(out_dir: Path) -> None:
    """Refuse a sweep.dir that is a file, or an existing folder that is neither empty nor a sweep
    directory (no sweep.json, and entries a sweep does not write), so nothing is overwritten."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SweepDirError(f"sweep.dir {out_dir} is a file, not a directory; choose a directory "
                            f"(it is created if missing)")
    if not out_dir.is_dir() or (out_dir / "sweep.json").exists():
        return
    foreign = [p.name for p in out_dir.iterdir()
               if p.name not in SWEEP_DIR_ENTRIES and not p.name.startswith(".sweep.json.tmp-")]
    if foreign:
        raise SweepDirError(f"sweep.dir {out_dir} is an existing folder that is not a sweep "
                            f"directory (no sweep.json; it holds {', '.join(sorted(foreign)[:3])}"
                            f"{', ...' if len(foreign) > 3 else ''}). Refusing to write into it: "
                            f"choose a new or empty sweep.dir")


def _stale_tmp(p: Path) -> bool:
    """A temporary part left by a killed process (its pid is gone)."""
    try:
        pid = int(p.name.rsplit("-", 1)[1])
    except ValueError:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _describe_difference(a: dict, b: dict, prefix: str = "") -> str:
    if not isinstance(a, dict) or not isinstance(b, dict):
        return f"{prefix or 'sweep'} differs"
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                return _describe_difference(a[k], b[k], f"{prefix}.{k}" if prefix else k)
            return f"{prefix + '.' if prefix else ''}{k} differs"
    return ""


_VERIFIED: dict = {}  # (path, size, mtime_ns, hash, chunk, kind) -> reason or None (parts verify once)


def verify_part(path: Path, plan: SweepPlan, k: int, per_layer: bool = False) -> str | None:
    """None when ``path`` is chunk k's complete part of this sweep, else why it is not.

    A part verifies when it reads back in full (every page's checksum), carries this sweep's hash
    and chunk index k in its metadata, and holds exactly chunk k's rows: config_id = the chunk's
    range of grid indices in order (per-layer parts: each repeated once per layer, in layer order).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return "missing"
    key = (str(path), st.st_size, st.st_mtime_ns, plan.hash, k, per_layer)
    if key in _VERIFIED:
        return _VERIFIED[key]
    reason = _verify(pq, path, plan, k, per_layer)
    _VERIFIED[key] = reason
    return reason


def _mark_verified(path: Path, plan: SweepPlan, k: int, per_layer: bool) -> None:
    """A part this process just wrote (atomically) needs no re-reading before the report."""
    st = Path(path).stat()
    _VERIFIED[(str(path), st.st_size, st.st_mtime_ns, plan.hash, k, per_layer)] = None


def _verify(pq, path, plan, k, per_layer):
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as exc:  # noqa: BLE001 - unreadable footer
        return f"unreadable ({type(exc).__name__})"
    h, c = meta.get(HASH_KEY), meta.get(CHUNK_KEY)
    if h is None or h.decode() != plan.hash:
        return "it belongs to another sweep (hash differs)"
    if c is None or c.decode() != str(k):
        return f"its metadata says chunk {c.decode() if c else '?'}, not {k}"
    start, stop = plan.chunk_range(k)
    want = np.arange(start, stop, dtype=np.int64)
    if per_layer:
        want = np.repeat(want, plan.num_layers)
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except Exception as exc:  # noqa: BLE001 - damaged pages
        return f"damaged ({type(exc).__name__}: {str(exc)[:80]})"
    if table.num_rows != len(want):
        return f"{table.num_rows} rows, expected {len(want)}"
    if "config_id" not in table.column_names:
        return "no config_id column"
    ids = np.asarray(table.column("config_id").to_numpy(), dtype=np.int64)
    if not np.array_equal(ids, want):
        return f"config_id {ids.min()}..{ids.max()} is not chunk {k}'s range {start}..{stop - 1}"
    return None


def scan_parts(out_dir: Path, plan: SweepPlan) -> tuple[set[int], dict[str, str], list[Path]]:
    """(verified chunks, {part file: why it does not verify}, stray files).

    A chunk is done when its totals part verifies and, for per-layer sweeps, its layers part too.
    Files in parts/ or layers/ that are no part of this plan (another name, a chunk index past
    the end) are stray: never counted, never read by read_results/iter_parts.
    """
    out_dir = Path(out_dir)
    done, rejected, stray = set(), {}, []
    names = {}
    for sub in ("parts", "layers"):
        for p in sorted((out_dir / sub).glob("*.parquet")):
            k = _chunk_of(p.name)
            if k is None or k >= plan.num_chunks or (sub == "layers" and not plan.per_layer):
                stray.append(p)
            elif sub == "parts":
                names[k] = p
    for k, p in sorted(names.items()):
        why = verify_part(p, plan, k)
        if why is None and plan.per_layer:
            lp = out_dir / "layers" / part_name(k)
            why_l = verify_part(lp, plan, k, per_layer=True)
            if why_l is not None:
                rejected[str(lp)] = why_l
                continue
        if why is None:
            done.add(k)
        else:
            rejected[str(p)] = why
    return done, rejected, stray


def _chunk_of(name: str) -> int | None:
    """k for the canonical part name part-<k:06d>.parquet, else None."""
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    digits = name[len("part-"):-len(".parquet")]
    if not digits.isdigit() or name != part_name(int(digits)):
        return None
    return int(digits)


def done_chunks(out_dir: Path, plan: SweepPlan) -> set[int]:
    """Chunks whose parts verify (see verify_part)."""
    return scan_parts(out_dir, plan)[0]


def my_chunks(plan: SweepPlan, process_index: int = 0, process_count: int = 1) -> list[int]:
    """This process' share of the chunks: every process_count-th, from process_index."""
    if process_count < 1 or not 0 <= process_index < process_count:
        raise SweepError(f"process_index must be in [0, process_count), got {process_index} of "
                         f"{process_count}")
    return range(process_index, plan.num_chunks, process_count)  # lazy: 10**7 chunks cost nothing


# --------------------------------------------------------------------------------------------------
# evaluating one chunk


def evaluate_chunk(plan: SweepPlan, k: int, devices=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(totals, per-layer rows or None) of chunk k, with global config_id and the swept values."""
    start, stop = plan.chunk_range(k)
    return evaluate_indices(plan, np.arange(start, stop), devices=devices,
                            per_layer=plan.per_layer)


def evaluate_indices(plan: SweepPlan, idx: np.ndarray, devices=None, per_layer: bool = False):
    """Evaluate grid configurations ``idx`` (padded to one compiled shape) and tabulate them."""
    n = len(idx)
    pad = max(n, plan.eval_chunk)
    idx_p = np.concatenate([idx, np.full(pad - n, idx[-1], dtype=np.int64)]) if pad > n else idx
    grid = plan.grid
    arch = grid.arch(idx_p)
    arch = _batched(arch, pad)
    sp = grid.sparsity(idx_p)
    df_module = dataflow_for(arch, plan.dataflow)
    # parts or not by the whole grid, so every part of the sweep shares one compiled program
    raw = evaluate_arrays(arch, plan.network.arrays(), sp, plan.objective, plan.space,
                          chunk_size=plan.eval_chunk, dataflow=plan.dataflow, devices=devices,
                          search_parts=use_search_parts(None, grid.size, devices))
    raw = {key: v[:n] for key, v in raw.items()}
    arch_n = _take(arch, n)
    sp_n = _take_sp(sp, n)
    res = NetworkResult(raw=raw, arch=arch_n, network=plan.network, sparsity=sp_n,
                        objective=plan.objective, batch=n, mapping_keys=df_module.MAPPING_KEYS)
    cols = grid.columns(idx)
    totals = res.network_totals(swept=cols)
    totals["config_id"] = idx
    for key, v in area_proxy(arch_n, n).items():
        totals[key] = v
    totals["edp"] = edp(totals["energy"], totals["latency_ms"])
    layers = None
    if per_layer:
        layers = res.to_dataframe(swept=cols)
        layers["config_id"] = np.repeat(idx, plan.num_layers)
    return totals, layers


def _batched(arch, n):
    """Give the config axis to the first leaf when no leaf is swept (a one-point grid)."""
    import jax

    leaves, treedef = jax.tree_util.tree_flatten(arch)
    if all(np.ndim(x) == 0 for x in leaves):
        leaves[0] = np.full(n, leaves[0])
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _take(arch, n):
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x)[:n] if np.ndim(x) == 1 else x, arch)


def _take_sp(sp, n):
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x)[:n] if np.ndim(x) == 2 else x, sp)


# --------------------------------------------------------------------------------------------------
# running


@dataclasses.dataclass
class SweepRun:
    out_dir: Path
    plan: SweepPlan
    chunks: list          # this process' chunks
    skipped: list         # already finished (resumed)
    computed: list        # evaluated by this call
    seconds: float
    rejected: dict = dataclasses.field(default_factory=dict)  # part file -> why it did not verify
    stray: list = dataclasses.field(default_factory=list)     # files that are no part of the plan


def run_sweep(plan: SweepPlan, out_dir, *, process_index: int = 0, process_count: int = 1,
              resume: bool = True, progress: Callable[[int], Any] | None = None,
              on_start: Callable[[int, int], Any] | None = None, config: dict | None = None,
              config_yaml: str | None = None, devices=None) -> SweepRun:
    """Evaluate this process' chunks of the grid into ``out_dir`` (see the module docstring).

    progress(n) is called with the number of configurations of each finished chunk; on_start(total,
    already_done) once before the first, with this process' configuration counts.
    """
    out_dir = Path(out_dir)
    prepare_dir(out_dir, plan, config=config, config_yaml=config_yaml, resume=resume)
    mine = my_chunks(plan, process_index, process_count)
    done, rejected, stray = scan_parts(out_dir, plan) if resume else (set(), {}, [])
    rejected = {p: why for p, why in rejected.items() if _chunk_of(Path(p).name) in mine}
    for p, why in rejected.items():
        log.warning("sweep part %s does not verify (%s): recomputing chunk %s", p, why,
                    _chunk_of(Path(p).name))
    if stray:
        log.warning("ignoring %d stray file(s) that are no part of this sweep (not counted, not "
                    "read; remove them before reading the folder with pandas.read_parquet): %s",
                    len(stray), ", ".join(str(p) for p in stray[:5]))
    skipped = sorted(k for k in done if k in mine)
    count = lambda ks: sum(plan.chunk_range(k)[1] - plan.chunk_range(k)[0] for k in ks)
    last = plan.num_chunks - 1   # every chunk holds part_size configurations but the last
    n_mine = len(mine) * plan.part_size - (plan.part_size - count([last]) if last in mine else 0)
    if on_start is not None:
        on_start(n_mine, count(skipped))
    delay = float(os.environ.get("EYEJAX_SWEEP_PART_DELAY", "0") or 0)  # test aid: slow chunks
    t0 = time.perf_counter()
    todo = []
    for k in mine:
        if k in done:
            continue
        todo.append(k)
        totals, layers = evaluate_chunk(plan, k, devices=devices)
        if layers is not None:
            write_part(layers, out_dir / "layers" / part_name(k), plan.hash, k)
            _mark_verified(out_dir / "layers" / part_name(k), plan, k, True)
        write_part(totals, out_dir / "parts" / part_name(k), plan.hash, k)
        _mark_verified(out_dir / "parts" / part_name(k), plan, k, False)
        if progress is not None:
            progress(len(totals))
        if delay:
            time.sleep(delay)
    return SweepRun(out_dir=out_dir, plan=plan, chunks=mine, skipped=skipped, computed=todo,
                    seconds=time.perf_counter() - t0, rejected=rejected, stray=stray)


def missing_chunks(out_dir, plan: SweepPlan) -> list[int]:
    done = done_chunks(Path(out_dir), plan)
    return [k for k in range(plan.num_chunks) if k not in done]


def wait_for_all(out_dir, plan: SweepPlan, timeout_s: float = 86400.0, poll_s: float = 1.0,
                 on_wait: Callable[[int], Any] | None = None) -> None:
    """Block until every chunk's part exists (written by other processes), or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    told = None
    while True:
        missing = missing_chunks(out_dir, plan)
        if not missing:
            return
        if on_wait is not None and len(missing) != told:
            on_wait(len(missing))
            told = len(missing)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} chunk(s) of the sweep in {out_dir} are still missing "
                               f"after {timeout_s:.0f} s (e.g. {missing[:5]})")
        time.sleep(poll_s)


# --------------------------------------------------------------------------------------------------
# reading results


def _part_files(out_dir, per_layer: bool) -> list[Path]:
    """The sweep's part files in chunk order: canonical names only, and only chunks of the plan
    recorded in sweep.json (stray files are skipped)."""
    sub = Path(out_dir) / ("layers" if per_layer else "parts")
    try:
        n = int(load_meta(out_dir)["num_chunks"])
    except (OSError, ValueError, KeyError, TypeError):
        n = None
    files = []
    for f in sorted(sub.glob("part-*.parquet")):
        k = _chunk_of(f.name)
        if k is not None and (n is None or k < n):
            files.append(f)
    return files


def read_results(out_dir, columns: list[str] | None = None, per_layer: bool = False) -> pd.DataFrame:
    """The sweep's table: every part in chunk order (rows in config_id order). per_layer=True
    reads the per-(config, layer) rows instead (sweeps run with per_layer)."""
    sub = Path(out_dir) / ("layers" if per_layer else "parts")
    files = _part_files(out_dir, per_layer)
    if not files:
        raise FileNotFoundError(f"no parts in {sub}")
    return pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)


def iter_parts(out_dir, columns: list[str] | None = None, per_layer: bool = False):
    """Yield each part's DataFrame in chunk order (flat memory for large sweeps)."""
    for f in _part_files(out_dir, per_layer):
        yield pd.read_parquet(f, columns=columns)


def load_meta(out_dir) -> dict:
    return json.loads((Path(out_dir) / "sweep.json").read_text())


__all__ = ["SweepPlan", "SweepRun", "SweepDirError", "make_plan", "run_sweep", "read_results",
           "iter_parts", "load_meta", "done_chunks", "missing_chunks", "wait_for_all", "my_chunks",
           "evaluate_indices", "part_name", "prepare_dir", "verify_part", "scan_parts"]
