"""Which slice of a sweep this process runs: jax.distributed, or plain independent processes.

Process index and count come from, in order:
  1. ``sweep.process_index`` / ``sweep.process_count`` when set explicitly;
  2. ``jax.distributed`` when ``sweep.distributed=true`` (initialized here, before any JAX work;
     coordinator address, count and id are auto-detected on Slurm and other clusters JAX knows,
     or given as ``sweep.coordinator_address`` and the two keys above);
  3. ``EYEJAX_PROCESS_INDEX`` / ``EYEJAX_PROCESS_COUNT``;
  4. Slurm's ``SLURM_PROCID`` / ``SLURM_NTASKS`` (one task per process: ``srun -n 8 eyejax ...``);
  5. otherwise a single process (0 of 1).
Each process evaluates chunks p, p+P, ... and writes its own parts; process 0 waits for all parts
(jax.distributed barrier when available, else by watching the directory) and writes the report.
"""
from __future__ import annotations

import os

import jax

_initialized = False


def _int_env(*names):
    for n in names:
        v = os.environ.get(n)
        if v not in (None, ""):
            try:
                return int(v)
            except ValueError:
                raise ValueError(f"environment variable {n}={v!r} is not an integer") from None
    return None


def init_distributed(coordinator_address=None, num_processes=None, process_id=None,
                     timeout_s: int = 300) -> tuple[int, int]:
    """jax.distributed.initialize (once per process); returns (process_index, process_count)."""
    global _initialized
    if not _initialized:
        kw = {}
        if coordinator_address:
            kw["coordinator_address"] = coordinator_address
        if num_processes is not None:
            kw["num_processes"] = int(num_processes)
        if process_id is not None:
            kw["process_id"] = int(process_id)
        jax.distributed.initialize(initialization_timeout=int(timeout_s), **kw)
        _initialized = True
    return jax.process_index(), jax.process_count()


def process_slice(sweep_cfg) -> tuple[int, int, bool]:
    """(process_index, process_count, uses_jax_distributed) for a ``sweep`` config mapping."""
    get = (lambda k: sweep_cfg.get(k)) if sweep_cfg is not None else (lambda k: None)
    idx, cnt = get("process_index"), get("process_count")
    if get("distributed"):
        i, n = init_distributed(get("coordinator_address"), cnt, idx)
        return i, n, True
    if idx is not None or cnt is not None:
        if idx is None or cnt is None:
            raise ValueError("sweep.process_index and sweep.process_count go together")
        return int(idx), int(cnt), False
    i, n = _int_env("EYEJAX_PROCESS_INDEX"), _int_env("EYEJAX_PROCESS_COUNT")
    if i is not None or n is not None:
        if i is None or n is None:
            raise ValueError("EYEJAX_PROCESS_INDEX and EYEJAX_PROCESS_COUNT go together")
        return i, n, False
    i, n = _int_env("SLURM_PROCID"), _int_env("SLURM_NTASKS")
    if i is not None and n is not None:
        return i, n, False
    return 0, 1, False


def barrier(name: str, timeout_s: float) -> bool:
    """Wait for every process at a jax.distributed barrier; False when jax.distributed is not
    initialized (the caller then watches the sweep directory instead)."""
    if not _initialized:
        return False
    try:  # JAX's private API, imported here so that its moving only costs the barrier
        from jax._src import distributed as _d

        client = _d.global_state.client
    except Exception:  # noqa: BLE001 - private API moved: fall back to watching the directory
        return False
    if client is None:
        return False
    client.wait_at_barrier(name, int(timeout_s * 1000))
    return True


__all__ = ["process_slice", "init_distributed", "barrier"]
