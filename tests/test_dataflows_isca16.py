"""ISCA16 comparison dataflows (docs/isca16_dataflows.md): closed forms against a tile-by-tile walk
of each loop nest, the equal-area architectures, the search, and the registry."""
import itertools

import numpy as np
import pytest

import eyejax  # noqa: F401
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.isca16 import ISCA16Spatial, glb_bytes, isca16_arch, storage_table
from eyejax.dataflow import dataflow_for
from eyejax.dataflow.mapping import COUNT_KEYS
from eyejax.dataflow.nlr import NLR
from eyejax.dataflow.os import OS_A, OS_B, OS_C
from eyejax.dataflow.ws import WS
from eyejax.evaluate import evaluate
from eyejax.workload import Layer, get_network

# ------------------------------------------------------------------- reference: walk the loop nest


def tiles(D, T):
    """(start, size) of the tiles of D by T."""
    return [(i, min(T, D - i)) for i in range(0, D, T)]


def shape_of(l):
    Hp, Wp = l.H + 2 * l.pad, l.W + 2 * l.pad
    E, F = (Hp - l.R) // l.stride + 1, (Wp - l.S) // l.stride + 1
    return dict(N=l.N, Cg=l.C // l.groups, Mg=l.M // l.groups, E=E, F=F, R=l.R, S=l.S, U=l.stride,
                P=l.pad, H=l.H, W=l.W, G=l.groups, W_used=(F - 1) * l.stride + l.S)


def rows_glb(e, U, R):
    return min((e - 1) * U + R, e * R)


def cols_glb(a, U, S):
    return min((a - 1) * U + S, a * S)


def block_loads(s, c, n_k, o0, e_s):
    """Block-level counts (shared): ifmap DRAM->GLB, filters through the GLB."""
    U, R, P, H = s["U"], s["R"], s["P"], s["H"]
    rows = {o * U + i for o in range(o0, o0 + e_s) for i in range(R)}
    real_rows = sum(1 for y in rows if P <= y < P + H)
    real_cols = min(s["W_used"], P + s["W"]) - P
    c["dram_ifmap_reads"] += n_k * s["Cg"] * real_rows * real_cols
    c["glb_ifmap_writes"] += n_k * s["Cg"] * rows_glb(e_s, U, R) * s["W_used"]
    w = s["Mg"] * s["Cg"] * R * s["S"]
    c["dram_filter_reads"] += w
    c["glb_filter_writes"] += w


def finished(c, k):
    for key in ("noc_psum", "glb_psum_writes", "glb_psum_reads", "dram_psum_writes"):
        c[key] += k


def blocks(s, n, e):
    for _, n_k in tiles(s["N"], n):
        for o0, e_s in tiles(s["E"], e):
            yield n_k, o0, e_s


def ref_ws(s, mp, c):
    h, m_s, c_s, n, e = (mp[k] for k in ("h", "m_s", "c_s", "n", "e"))
    S, U, F = s["S"], s["U"], s["F"]
    for n_k, o0, e_s in blocks(s, n, e):
        block_loads(s, c, n_k, o0, e_s)
        for _, m_t in tiles(s["Mg"], m_s):
            first = True
            for _, c_t in tiles(s["Cg"], c_s):
                for _, h_k in tiles(s["R"], h):
                    macs = n_k * e_s * F * m_t * c_t * h_k * S
                    w = m_t * c_t * h_k * S
                    outs = n_k * m_t * e_s * F
                    c["macs"] += macs
                    for k in ("glb_filter_reads", "noc_filter", "rf_filter_writes"):
                        c[k] += w
                    c["glb_ifmap_reads"] += n_k * c_t * min((e_s - 1) * U + h_k, e_s * h_k) * s["W_used"]
                    for k in ("noc_ifmap", "rf_ifmap_writes", "rf_ifmap_reads", "rf_filter_reads"):
                        c[k] += macs
                    c["noc_psum"] += outs * (c_t * h_k * S - 1 + 1 + (0 if first else 1))
                    c["glb_psum_writes"] += outs
                    c["glb_psum_reads"] += 0 if first else outs
                    c["compute_cycles"] += n_k * e_s * F
                    c["ramp_cycles"] += c_t * h_k * S
                    c["passes"] += 1
                    first = False
            c["glb_psum_reads"] += n_k * m_t * e_s * F
            c["dram_psum_writes"] += n_k * m_t * e_s * F
    return h * S * min(m_s, s["Mg"]) * min(c_s, s["Cg"])


def os_pass(s, c, macs, glb_f, glb_i, outs, ramp):
    c["macs"] += macs
    c["glb_filter_reads"] += glb_f
    c["glb_ifmap_reads"] += glb_i
    for k in ("noc_ifmap", "noc_filter", "rf_ifmap_reads", "rf_ifmap_writes", "rf_filter_reads",
              "rf_filter_writes", "rf_psum_reads", "rf_psum_writes"):
        c[k] += macs
    finished(c, outs)
    c["compute_cycles"] += s["Cg"] * s["R"] * s["S"]
    c["ramp_cycles"] += ramp
    c["passes"] += 1


def ref_os_a(s, mp, c):
    a_e, a_f, n, e = (mp[k] for k in ("a_e", "a_f", "n", "e"))
    assert e % a_e == 0 or e >= s["E"]
    crs = s["Cg"] * s["R"] * s["S"]
    for n_k, o0, e_s in blocks(s, n, e):
        block_loads(s, c, n_k, o0, e_s)
        for _m in range(s["Mg"]):
            for _img in range(n_k):
                for _, a_es in tiles(e_s, a_e):
                    for _, a_fs in tiles(s["F"], a_f):
                        os_pass(s, c, a_es * a_fs * crs, crs,
                                s["Cg"] * rows_glb(a_es, s["U"], s["R"]) * cols_glb(a_fs, s["U"], s["S"]),
                                a_es * a_fs, a_es + a_fs)
    return min(a_e, s["E"]) * min(a_f, s["F"])


def ref_os_b(s, mp, c):
    m_s, a_f, n, e = (mp[k] for k in ("m_s", "a_f", "n", "e"))
    crs = s["Cg"] * s["R"] * s["S"]
    for n_k, o0, e_s in blocks(s, n, e):
        block_loads(s, c, n_k, o0, e_s)
        for _, m_t in tiles(s["Mg"], m_s):
            for _img, _row in itertools.product(range(n_k), range(e_s)):
                for _, a_fs in tiles(s["F"], a_f):
                    os_pass(s, c, m_t * a_fs * crs, m_t * crs,
                            s["Cg"] * s["R"] * cols_glb(a_fs, s["U"], s["S"]), m_t * a_fs, a_fs)
    return min(m_s, s["Mg"]) * min(a_f, s["F"])


def ref_os_c(s, mp, c):
    m_s, n, e = (mp[k] for k in ("m_s", "n", "e"))
    crs = s["Cg"] * s["R"] * s["S"]
    for n_k, o0, e_s in blocks(s, n, e):
        block_loads(s, c, n_k, o0, e_s)
        for _, m_t in tiles(s["Mg"], m_s):
            for _ in range(n_k * e_s * s["F"]):
                os_pass(s, c, m_t * crs, m_t * crs, crs, m_t, 1)
    return min(m_s, s["Mg"])


def ref_nlr(s, mp, c):
    m_s, c_s, n, e = (mp[k] for k in ("m_s", "c_s", "n", "e"))
    for n_k, o0, e_s in blocks(s, n, e):
        block_loads(s, c, n_k, o0, e_s)
        for _, m_t in tiles(s["Mg"], m_s):
            c["passes"] += 1
            c["ramp_cycles"] += min(c_s, s["Cg"])
            for _ in range(n_k * e_s * s["F"]):
                first = True
                for _, c_t in tiles(s["Cg"], c_s):
                    for _ in range(s["R"] * s["S"]):
                        c["macs"] += m_t * c_t
                        for k in ("glb_filter_reads", "noc_filter", "noc_ifmap"):
                            c[k] += m_t * c_t
                        c["glb_ifmap_reads"] += c_t
                        c["noc_psum"] += m_t * (c_t - 1 + 1 + (0 if first else 1))
                        c["glb_psum_writes"] += m_t
                        c["glb_psum_reads"] += 0 if first else m_t
                        c["compute_cycles"] += 1
                        first = False
                c["glb_psum_reads"] += m_t
                c["dram_psum_writes"] += m_t
    return min(m_s, s["Mg"]) * min(c_s, s["Cg"])


REFS = {"ws": (WS, ref_ws), "os_a": (OS_A, ref_os_a), "os_b": (OS_B, ref_os_b),
        "os_c": (OS_C, ref_os_c), "nlr": (NLR, ref_nlr)}


def reference(name, layer, mp):
    s = shape_of(layer)
    c = {k: 0 for k in COUNT_KEYS}
    active = REFS[name][1](s, mp, c)
    c = {k: v * s["G"] for k, v in c.items()}
    c["active_pes"] = active
    return c


LAYERS = [
    Layer("conv", "CONV", N=3, C=5, M=7, H=9, W=8, R=3, S=2, stride=1, pad=1),
    Layer("strided", "CONV", N=2, C=4, M=6, H=11, W=11, R=3, S=3, stride=2, pad=1),
    Layer("stride_gt_r", "CONV", N=1, C=3, M=5, H=10, W=10, R=2, S=2, stride=3, pad=0),
    Layer("grouped", "CONV", N=2, C=6, M=4, H=7, W=6, R=3, S=3, stride=1, pad=1, groups=2),
    Layer("fc", "FC", N=3, C=5, M=9, H=2, W=2, R=2, S=2),
    Layer("tall", "CONV", N=1, C=2, M=3, H=8, W=5, R=5, S=1, stride=1, pad=0),
]

MAPPINGS = {
    "ws": [dict(h=3, m_s=2, c_s=3, n=2, e=3), dict(h=2, m_s=4, c_s=1, n=1, e=2),
           dict(h=1, m_s=1, c_s=2, n=3, e=100)],
    "os_a": [dict(a_e=2, a_f=3, n=2, e=4), dict(a_e=3, a_f=2, n=1, e=3), dict(a_e=1, a_f=5, n=3, e=5)],
    "os_b": [dict(m_s=3, a_f=2, n=2, e=3), dict(m_s=8, a_f=5, n=1, e=100), dict(m_s=1, a_f=1, n=2, e=2)],
    "os_c": [dict(m_s=3, n=2, e=3), dict(m_s=16, n=1, e=1), dict(m_s=2, n=3, e=4)],
    "nlr": [dict(m_s=2, c_s=3, n=2, e=3), dict(m_s=5, c_s=1, n=1, e=100), dict(m_s=1, c_s=4, n=3, e=2)],
}


@pytest.mark.parametrize("name", sorted(REFS))
def test_closed_form_equals_loop_nest(name):
    df = REFS[name][0]
    arch = isca16_arch(name, 256)
    checked = 0
    for layer, mp in itertools.product(LAYERS, MAPPINGS[name]):
        s = shape_of(layer)
        mp = dict(mp)
        if name == "ws":
            mp["h"] = min(mp["h"], layer.R)
        if name == "os_a":  # the strip is a multiple of the region height
            mp["a_e"] = min(mp["a_e"], s["E"])
            mp["e"] = min(mp["a_e"] * max(1, mp["e"] // mp["a_e"]), -(-s["E"] // mp["a_e"]) * mp["a_e"])
        got = {k: int(v) for k, v in df.layer_counts(layer.as_row(), arch, mp).items()}
        want = reference(name, layer, mp)
        assert got == want, (name, layer.name, mp,
                             {k: (got[k], want[k]) for k in want if got[k] != want[k]})
        checked += 1
    assert checked == len(LAYERS) * len(MAPPINGS[name])


# ------------------------------------------------------------------- architectures (equal area)


def test_equal_area_storage_split_matches_isca16_text():
    t = {r["dataflow"]: r for r in storage_table(256)}
    assert t["rs"]["glb_kB"] == 128 and t["rs"]["rf_bytes_per_pe"] == 512
    assert t["nlr"]["rf_bytes_per_pe"] == 0
    # ISCA16 §VI-B: buffer sizes differ by up to 2.6x, total on-chip storage by up to 80 kB
    glbs = [r["glb_kB"] for r in t.values()]
    totals = [r["total_kB"] for r in t.values()]
    assert max(glbs) / min(glbs) == pytest.approx(2.6, abs=0.05)
    assert max(totals) - min(totals) == pytest.approx(80, abs=1)
    assert glb_bytes("ws", 1024) == 4 * glb_bytes("ws", 256)
    rs = isca16_arch("rs", 512)
    assert isinstance(rs, EyerissV1) and (rs.pe_rows, rs.pe_cols, rs.glb_banks) == (16, 32, 64)
    assert rs.filter_spad_words + rs.ifmap_spad_words + rs.psum_spad_words == 256   # 512 B
    ws = isca16_arch("ws", 1024)
    assert isinstance(ws, ISCA16Spatial) and (ws.pe_rows, ws.pe_cols) == (32, 32)


def test_registry_picks_the_architectures_dataflow():
    assert dataflow_for(isca16_arch("os_b")) is OS_B
    assert dataflow_for(isca16_arch("nlr"), "ws") is WS
    assert dataflow_for(isca16_arch("rs")).__name__ == "eyejax.dataflow.rs"
    with pytest.raises(ValueError, match="runs on"):
        dataflow_for(EyerissV1(), "ws")
    with pytest.raises(ValueError, match="dataflow must be one of"):
        dataflow_for(isca16_arch("ws"), "nope")


# ------------------------------------------------------------------- search


@pytest.fixture(scope="module")
def alexnet16():
    net = get_network("alexnet", batch=16)
    out = {}
    for name in ("rs", "ws", "os_a", "os_b", "os_c", "nlr"):
        out[name] = evaluate(isca16_arch(name, 256), net)
    return net, out


def test_search_returns_the_exact_counts_of_its_mapping(alexnet16):
    net, res = alexnet16
    for name in REFS:
        r, df = res[name].raw, REFS[name][0]
        arch = isca16_arch(name, 256)
        assert r["feasible"].all(), name
        for li in (0, 2, 5):
            mp = {k: int(r[f"map_{k}"][0, li]) for k in df.MAPPING_KEYS}
            got = df.layer_counts(net.layers[li].as_row(), arch, mp)
            for k in COUNT_KEYS:
                assert int(got[k]) == int(r[k][0, li]), (name, li, k)
            assert r["macs"][0, li] == net.layers[li].macs
            assert r["cycles"][0, li] == (r["compute_cycles"][0, li] + r["ramp_cycles"][0, li]
                                          + r["dram_cycles"][0, li])


def test_rs_is_the_most_energy_efficient_on_alexnet_conv(alexnet16):
    _, res = alexnet16
    per_mac = {}
    for name, r in res.items():
        a = r.arrays()
        conv = slice(0, 5)
        per_mac[name] = a["energy"][0, conv].sum() / a["macs"][0, conv].sum()
    assert min(per_mac, key=per_mac.get) == "rs", per_mac
    # NLR pays a GLB access per weight use, WS a NoC hop per psum: both at least 1.3x RS
    assert per_mac["nlr"] > 1.3 * per_mac["rs"] and per_mac["ws"] > 1.3 * per_mac["rs"]


def test_latency_objective_never_slower_than_energy_objective(alexnet16):
    net, res = alexnet16
    for name in ("ws", "os_c"):
        t = evaluate(isca16_arch(name, 256), net, objective="latency").raw
        e = res[name].raw
        assert (t["cycles"] <= e["cycles"]).all(), name
        assert t["feasible"].all()


def test_too_small_buffer_is_infeasible_not_nan(alexnet16):
    net, _ = alexnet16
    res = evaluate(isca16_arch("nlr", 256, glb_words=8), net)   # same compiled function as above
    assert not res.raw["feasible"].any()
    assert (res.raw["energy_dram_ifmap"] == 0).all() and (res.raw["cycles"] == 0).all()


# ------------------------------------------------------------------- the `dataflow` config group


def test_dataflow_config_group():
    from hydra import compose, initialize_config_dir

    from eyejax.app.runtime import CONF_DIR
    from eyejax.app.config import ConfigError, build_inputs

    def inputs(*overrides):
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            return build_inputs(compose(config_name="config", overrides=list(overrides)))

    native = inputs()
    assert native.dataflow is None and isinstance(native.arch, EyerissV1)
    ws = inputs("dataflow=ws", "dataflow.num_pes=[256,1024]")
    assert ws.dataflow == "ws" and dataflow_for(ws.arch, ws.dataflow) is WS
    assert list(ws.arch.pe_rows) == [16, 32] and list(ws.swept["dataflow.num_pes"]) == [256, 1024]
    rs = inputs("dataflow=rs", "dataflow.num_pes=512")
    assert rs.dataflow == "rs" and rs.arch.pe_cols == 32 and rs.arch.glb_banks == 64
    assert inputs("dataflow=rs").arch == native.arch        # RS on the arch group's v1
    with pytest.raises(ConfigError, match="num_pes must be set"):
        inputs("dataflow=nlr", "dataflow.num_pes=null")
    with pytest.raises(ConfigError, match="dataflow.name"):
        inputs("dataflow=ws", "dataflow.name=xs")


def test_single_image_search_drops_duplicate_image_splits():
    """N = 1: prepare_search_space keeps one image split for RS on Eyeriss v1 (ISCA16 16×16), and
    the search picks the same mapping with the same counts as the full grid."""
    import jax
    import jax.numpy as jnp

    from eyejax.dataflow import prepare_search_space
    from eyejax.sparsity import Sparsity

    layers = get_network("alexnet", batch=1).arrays()
    arch = isca16_arch("rs", 256)
    df = dataflow_for(arch)
    pruned = prepare_search_space(df, None, arch, layers)
    assert pruned.n_splits == (1,) and len(df.DEFAULT_SEARCH.n_splits) > 1
    sp = Sparsity.dense(layers.num_layers)
    run = lambda space: jax.jit(jax.vmap(
        lambda layer, s, first: df.search_layer(layer, arch, s, first, "energy", space)))(
        layers, sp, jnp.asarray(layers.first))
    a, b = run(pruned), run(df.DEFAULT_SEARCH)
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


@pytest.mark.parametrize("name", sorted(REFS))
def test_exact_search_space_is_prepared_from_the_workload(name):
    """The ISCA16 dataflows' search size is the largest ragged product of the batch's layers
    (docs/isca16_dataflows.md, "Mapping search"): static, stable when re-prepared, and required."""
    from eyejax.dataflow import prepare_search_space
    from eyejax.sparsity import Sparsity

    net = get_network("alexnet", batch=16)
    arch = isca16_arch(name, 256)
    df = dataflow_for(arch)
    space = prepare_search_space(df, None, arch, net.arrays())
    assert space.size > 0 and space.chunk_hint >= 1
    assert prepare_search_space(df, space, arch, net.arrays()) == space
    one = prepare_search_space(df, None, arch, get_network("alexnet", batch=1).arrays())
    assert one.size <= space.size         # N = 1: a single image tile size (n axes)
    with pytest.raises(ValueError, match="not prepared"):
        df.search_layer(net.arrays(), arch, Sparsity.dense(8), True, "energy")
