"""Pieces shared by the functional simulations (eyejax/sim/rs_sim.py for Eyeriss v1 RS and
eyejax/sim/rs_plus_sim.py for Eyeriss v2 RS+): static integer arithmetic on the loop nest, the
checks on static mapping and architecture values, and the tag-matching delivery of messages to PEs.

Everything here is plain Python / NumPy run once per (layer, mapping, arch) while the schedule is
built; nothing uses the analytical models' closed forms.
"""
from __future__ import annotations

import numpy as np


def cdiv(a, b):
    """Ceiling division of integers (Python ints, NumPy or JAX integer arrays)."""
    return -(-a // b)


def tiles(d: int, t: int):
    """Tiling of a dimension of size d by t: [(start, size)], the last tile holding the rest."""
    return [(k * t, min(t, d - k * t)) for k in range(cdiv(d, t))]


def arch_int(arch, name: str) -> int:
    """`arch.<name>` as a Python int; ValueError unless it is one integer-valued scalar (the
    simulation runs one concrete architecture, not a batch)."""
    v = np.asarray(getattr(arch, name))
    if v.ndim != 0:
        raise ValueError(f"simulate_rs needs one architecture: arch.{name} has shape {v.shape}")
    if v != np.round(v):
        raise ValueError(f"arch.{name} must be an integer, got {v}")
    return int(v)


def mapping_ints(mapping, names) -> dict:
    """{name: int} for the fields `names` of `mapping`; ValueError unless each is a static integer
    scalar >= 1 (not a bool, not a tracer)."""
    vals = {}
    for k in names:
        v = getattr(mapping, k)
        try:
            a = np.asarray(v)
        except Exception:  # pragma: no cover - e.g. a tracer
            raise ValueError(f"mapping.{k} must be a static integer, got {v!r}") from None
        if a.ndim != 0 or not np.issubdtype(a.dtype, np.integer) or isinstance(v, bool):
            raise ValueError(f"mapping.{k} must be a static integer, got {v!r}")
        vals[k] = int(a)
        if vals[k] < 1:
            raise ValueError(f"mapping.{k} = {vals[k]} must be >= 1")
    return vals


def distinct_rows(e_s: int, U: int, rows_per_col: int) -> int:
    """Number of distinct padded rows {j·U + i : j < e_s, i < rows_per_col} (counted)."""
    return len({j * U + i for j in range(e_s) for i in range(rows_per_col)})


def multicast(msg_tags: np.ndarray, pe_ids: np.ndarray):
    """Tag-matching multicast: message k reaches every PE whose ID equals its tag.

    msg_tags [K, T] and pe_ids [P, T] integer tuples. Returns match [K, P] (bool)."""
    return np.all(msg_tags[:, None, :] == pe_ids[None, :, :], axis=-1)


def arrivals(match: np.ndarray, slots_major: np.ndarray, slots_minor: np.ndarray, shape):
    """Each PE stores the messages it receives, in arrival (message) order, into a [major, minor]
    grid of slots (e.g. filter × channel); returns the message index per (PE, major, minor), -1 for
    an empty slot. Checks that every PE received exactly what it was configured for."""
    got = match.T                                                          # [P, K]
    want = slots_major * slots_minor
    if np.any(got.sum(axis=1) != want):
        raise AssertionError("a PE received a different number of messages than configured")
    rank = np.cumsum(got, axis=1) - 1
    pe, k = np.nonzero(got)
    r = rank[pe, k]
    idx = np.full((got.shape[0],) + shape, -1, dtype=np.int64)
    idx[pe, r // slots_minor[pe], r % slots_minor[pe]] = k
    return idx


def strip_rows(base: int, e_s: int, U: int, R: int) -> np.ndarray:
    """The padded ifmap rows a strip of e_s ofmap rows reads (sorted, distinct): base + j·U + i
    for j < e_s, i < R, where `base` is the padded row under filter row 0 at the strip's first
    ofmap row."""
    return np.array(sorted({base + jj * U + ii for jj in range(e_s) for ii in range(R)}),
                    dtype=np.int64)


def ifmap_block(pl, rows: np.ndarray, images: np.ndarray, channels: np.ndarray,
                cols=None) -> np.ndarray:
    """DRAM address of every word of a GLB ifmap block: the padded `rows` (strip_rows) × the padded
    columns `cols` (default: all W_used) of `images` × absolute `channels`, shape [images,
    channels, rows, cols]; -1 where the word is a pad (the GLB controller writes it as a zero).
    `pl` is the simulation's plan (fields G, Cg, H, W, P, W_used); DRAM holds the unpadded ifmap
    in NCHW order."""
    C, H, W, P = pl.G * pl.Cg, pl.H, pl.W, pl.P
    cols = np.arange(pl.W_used) if cols is None else np.asarray(cols, dtype=np.int64)
    rr, cc = rows - P, cols - P
    real = ((rr >= 0) & (rr < H))[:, None] & ((cc >= 0) & (cc < W))[None, :]
    img = images[:, None, None, None]
    ch = channels[None, :, None, None]
    addr = ((img * C + ch) * H + rr[None, None, :, None]) * W + cc[None, None, None]
    return np.where(real[None, None], addr, -1)


def load_ifmap_block(pl, c: dict, loads: list, rows, images, channels, nrows_glb: int,
                     cols=None):
    """One ifmap block DRAM -> GLB (`ifmap_block`, padded columns `cols`, default all W_used):
    counts its DRAM reads (pads are written as zeros, not read) and GLB writes into `c`, appends
    its DRAM addresses to `loads`, and returns its GLB messages, one per stored (image, channel,
    row) of one block row's words, as arrays (image and channel index within the block, padded
    row, GLB row), and the next free GLB row."""
    addr = ifmap_block(pl, rows, images, channels, cols)
    c["dram_ifmap_reads"] += int((addr >= 0).sum())
    c["glb_ifmap_writes"] += int(addr.size)
    loads.append(addr.reshape(-1, addr.shape[-1]))
    nz, ny = len(images), len(channels)
    m_img, m_ch, m_slot = (a.ravel() for a in np.meshgrid(
        np.arange(nz), np.arange(ny), np.arange(rows.size), indexing="ij"))
    m_glb = nrows_glb + (m_img * ny + m_ch) * rows.size + m_slot
    return (m_img, m_ch, rows[m_slot], m_glb), nrows_glb + nz * ny * rows.size


def stack_passes(passes, key: str, shape: tuple, fill) -> np.ndarray:
    """The per-pass arrays `passes[i][key]` padded with `fill` to one common `shape` and stacked
    [passes, *shape], so that one scan step of the data path runs any pass."""
    out = np.full((len(passes),) + shape, fill, dtype=np.int64)
    for pi, ps in enumerate(passes):
        v = ps[key]
        out[(pi,) + tuple(slice(0, d) for d in v.shape)] = v
    return out


def datapath_arrays(pl, passes, loads, writeback, *, ofmap_cols=None, psum_rows=None) -> dict:
    """The index arrays that drive a simulation's data path, every pass padded to common shapes so
    that one scan step runs any pass. `passes`: per pass, npe and the arrays fidx [PE, p, q],
    iidx [PE, n, q], chain [chains, L], pos and held [chains, n, p]; `loads`: the GLB ifmap loads
    (ifmap_block rows, [rows, row width], one width for all); `writeback`: the finished GLB psum
    rows, per block. `ofmap_cols`: ofmap columns per GLB psum row (the PE's sliding window;
    default F); `psum_rows`: GLB psum rows (default N·M·E).

    Empty slots point at zero rows: ifmap row `zi` (the row appended to the loads), filter row `zf`
    (one past the DRAM filter rows), PE psum `NP` (one past the PEs), GLB psum row `NME` (reads)
    and a sink row `NME + 1` (writes). `pl` is the plan (N, G, Cg, Mg, H, W, R, S, U, E, F,
    p, q, n)."""
    C, M = pl.G * pl.Cg, pl.G * pl.Mg
    F = pl.F if ofmap_cols is None else ofmap_cols
    load_idx = np.concatenate(loads + [np.full((1, loads[0].shape[1]), -1, dtype=np.int64)])
    load_idx = np.where(load_idx >= 0, load_idx, pl.N * C * pl.H * pl.W)   # -> the appended zero
    zi, zf = load_idx.shape[0] - 1, M * pl.Cg * pl.R
    NME = pl.N * M * pl.E if psum_rows is None else psum_rows
    NP = max(ps["npe"] for ps in passes)
    NC, L = (max(ps["chain"].shape[k] for ps in passes) for k in (0, 1))
    fidx = stack_passes(passes, "fidx", (NP, pl.p, pl.q), -1)
    iidx = stack_passes(passes, "iidx", (NP, pl.n, pl.q), -1)
    pos = stack_passes(passes, "pos", (NC, pl.n, pl.p), -1)
    held = stack_passes(passes, "held", (NC, pl.n, pl.p), 0).astype(bool)
    return dict(
        load_idx=load_idx,                                  # GLB ifmap rows <- DRAM ifmap words
        fidx=np.where(fidx >= 0, fidx, zf),                 # PE filter spad <- DRAM filter rows
        iidx=np.where(iidx >= 0, iidx, zi),                 # PE ifmap rows <- GLB ifmap rows
        chain=stack_passes(passes, "chain", (NC, L), NP),   # PEs of each psum chain
        rd=np.where(held, pos, NME),                        # GLB psum rows read at chain tops
        wr=np.where(pos >= 0, pos, NME + 1),                # GLB psum rows written at chain ends
        writeback=np.concatenate(writeback),                # GLB psum rows -> DRAM ofmap
        win=np.arange(F)[:, None] * pl.U + np.arange(pl.S)[None, :],   # sliding window columns
    )
