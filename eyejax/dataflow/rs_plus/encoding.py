"""RS+ data formats: bits per dense value moved (dense words, or CSC with its address overhead) and
the zero-skipping fractions of sparse mode (docs/rs_plus_model.md; the rs_plus package docstring,
"Bits" and "Zero skipping"), and the v2 architecture fields the model reads."""
from __future__ import annotations

import jax.numpy as jnp

from eyejax.arch.eyeriss_v2 import IACT_ADDR_BITS, WEIGHT_ADDR_BITS
from eyejax.dataflow.tiling import fdiv

OFMAP_COLUMN = 16       # ofmaps written to DRAM as CSC columns of 16 channels


def arch_in(arch, dtype):
    """The v2 architecture fields the RS+ model reads, as arrays of `dtype`, with the cluster PEs,
    clusters and GLB totals derived."""
    names = ("cluster_rows", "cluster_cols", "cluster_pe_rows", "cluster_pe_cols",
             "iact_spad_words", "weight_spad_words", "psum_spad_words", "macs_per_pe",
             "iact_glb_banks", "iact_glb_bank_bits", "psum_glb_banks", "psum_glb_bank_bits",
             "iact_routers", "iact_port_bits", "weight_routers", "weight_port_bits",
             "psum_routers", "psum_port_bits", "data_bits", "psum_bits", "csc_count_bits",
             "clock_mhz", "dram_bus_bits", "dram_clock_mhz", "pe_pipeline_stages")
    a = {k: jnp.asarray(getattr(arch, k)).astype(dtype) for k in names}
    a["cpes"] = a["cluster_pe_rows"] * a["cluster_pe_cols"]
    a["clusters"] = a["cluster_rows"] * a["cluster_cols"]
    a["iact_glb_total"] = a["clusters"] * a["iact_glb_banks"] * a["iact_glb_bank_bits"]
    a["psum_glb_total"] = a["clusters"] * a["psum_glb_banks"] * a["psum_glb_bank_bits"]
    return a


def csc_words_per_value(rows, density, count_bits):
    """Expected stored CSC words per value of a column of `rows` rows, i.i.d. non-zeros of
    probability `density` (eyejax.sparse.csc.expected_csc_words / (rows·cols), traced `rows`):
    d + d/R · Σ_{m=1}^{M} (R − P·m)·x^m, x = (1−d)^P, P = 2**count_bits, M = floor((R−1)/P)."""
    d = jnp.asarray(density)
    R = jnp.asarray(rows).astype(d.dtype)
    P = jnp.exp2(jnp.asarray(count_bits).astype(d.dtype))
    M = jnp.maximum(fdiv(R - 1, P), 0)
    x = jnp.power(1.0 - d, P)
    near1 = x > 1.0 - 1e-6
    xs = jnp.where(near1, 0.5, x)
    xM = jnp.power(xs, M)
    s1 = jnp.where(near1, M, xs * (1.0 - xM) / (1.0 - xs))
    s2 = jnp.where(near1, M * (M + 1) / 2, xs * (1.0 - (M + 1) * xM + M * xM * xs) / (1.0 - xs) ** 2)
    pads = jnp.maximum(R * s1 - P * s2, 0.0)
    return d + d * pads / jnp.maximum(R, 1)


def formats(a, sp, q, p, dtype):
    """Bits per dense value moved for each data type, and the zero-skipping fractions (`a` from
    `arch_in`).

    Each operand is stored by its own density (JETCAS19: the address scratchpads of dense data are
    bypassed): iacts move as CSC when the iact density is below 1, weights when the weight density
    is; the other operand stays in plain `data_bits` words. The PE runs in sparse mode (`sparse`:
    zero skipping, data-dependent time) when either is compressed: it walks the non-zero iacts
    (every iact if they are plain) and, per iact, the stored words of its weight column (all p
    filters if the weights are plain). An unpruned network on real data (ReLU zeros in its iacts,
    no zeros in its weights) thus keeps 8-b weights and skips zero iacts."""
    d_i = jnp.asarray(sp.iact_density).astype(dtype)
    d_w = jnp.asarray(sp.weight_density).astype(dtype)
    d_o = jnp.asarray(sp.ofmap_density).astype(dtype)
    iact_csc, weight_csc = d_i < 1, d_w < 1
    csc = a["data_bits"] + a["csc_count_bits"]
    q = jnp.asarray(q).astype(dtype)
    p = jnp.asarray(p).astype(dtype)
    ratio_i = jnp.where(iact_csc, csc_words_per_value(q, d_i, a["csc_count_bits"]), 1.0)
    ratio_w = jnp.where(weight_csc, csc_words_per_value(p, d_w, a["csc_count_bits"]), 1.0)
    f = {
        "sparse": iact_csc | weight_csc,
        "ratio_i": ratio_i,
        "ratio_w": ratio_w,
        "beta_i": jnp.where(iact_csc, ratio_i * csc + IACT_ADDR_BITS / jnp.maximum(q, 1), a["data_bits"]),
        "beta_w": jnp.where(weight_csc, ratio_w * csc + WEIGHT_ADDR_BITS / jnp.maximum(p, 1),
                            a["data_bits"]),
        "beta_o": jnp.where(d_o < 1, d_o * csc + IACT_ADDR_BITS / OFMAP_COLUMN, a["data_bits"]),
        "word_i": jnp.where(iact_csc, csc, a["data_bits"]),
        "word_w": jnp.where(weight_csc, csc, a["data_bits"]),
        "d_mac": jnp.where(iact_csc, jnp.asarray(sp.mac_density).astype(dtype), 1.0),
        "d_w": jnp.where(weight_csc, d_w, 1.0),
    }
    f["d_pair"] = f["d_mac"] * f["d_w"]
    return f
