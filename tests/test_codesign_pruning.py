"""Energy-aware pruning on digits: building blocks, and the Hydra entry point at reduced size."""
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import eyejax  # noqa: F401
from eyejax.app import prune as prune_app
from eyejax.codesign import energy, pruning
from eyejax.codesign.data import load_digits
from eyejax.codesign.models import LAYERS, DigitsCNN, hardware_network, layer_tensors

QUICK = ["prune.steps=2", "train.epochs=2", "prune.finetune_epochs=1", "prune.sparsity_images=16",
         "prune.energy_model=v1_cvpr17", "prune.energy_models=[v1,v1_cvpr17]", "wandb.mode=offline"]


def test_digits_ship_with_scikit_learn_and_split_deterministically():
    a, b = load_digits(seed=0), load_digits(seed=0)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.train.x.shape[1:] == (8, 8, 1) and a.train.x.dtype == np.float32
    np.testing.assert_array_equal(a.val.y, b.val.y)
    assert 0.4 < float(np.mean(a.train.x == 0)) < 0.6   # real input sparsity (blank pixels)


def test_hardware_network_and_tensors_match():
    m = DigitsCNN()
    params = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))["params"]
    net = hardware_network(m, params, batch=3)
    assert tuple(net.names) == LAYERS
    assert [l.N for l in net.layers] == [3] * 4
    x = load_digits().val.x[:3]
    ifmaps, ofmaps, weights = layer_tensors(m, params, x)
    for layer, i, o, w in zip(net.layers, ifmaps, ofmaps, weights):
        assert i.shape == (3, layer.C, layer.H, layer.W)
        assert o.shape == (3, layer.M, layer.E, layer.F)
        assert w.shape == (layer.M, layer.C // layer.groups, layer.R, layer.S)


def test_nonzero_pair_fraction_brute_force():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5, 5)) * (rng.random((2, 3, 5, 5)) < 0.5)
    w = rng.normal(size=(4, 3, 3, 3)) * (rng.random((4, 3, 3, 3)) < 0.4)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    both = total = 0
    for n in range(2):
        for m in range(4):
            for e in range(5):
                for f in range(5):
                    win = xp[n, :, e:e + 3, f:f + 3]
                    both += np.sum((win != 0) & (w[m] != 0))
                    total += win.size
    got = energy.nonzero_pair_fraction(x, w, stride=1, pad=1)
    assert got == pytest.approx(both / total, rel=1e-12)


def test_magnitude_masks():
    k = jnp.asarray(np.array([[0.0, -3.0, 1.0], [0.5, 2.0, -0.1]]))
    m = pruning.prune_to(k, 0.5)
    # floor(0.5 * 6) = 3 smallest magnitudes (0, -0.1, 0.5) go
    np.testing.assert_array_equal(np.asarray(m), [[0, 1, 1], [0, 1, 0]])
    g = pruning.prune_global({"a": k, "b": jnp.asarray([[4.0, 0.2]])}, 0.5)
    kept = np.concatenate([np.asarray(g["a"]).ravel(), np.asarray(g["b"]).ravel()])
    assert kept.sum() == 4 and np.asarray(g["b"]).tolist() == [[1.0, 0.0]]


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="energy_model"):
        pruning.PruneConfig(energy_model="v9")
    with pytest.raises(ValueError, match="methods"):
        pruning.PruneConfig(methods=("random",))
    with pytest.raises(ValueError, match="layers"):
        pruning.PruneConfig(layers=("conv7",))


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`eyejax-prune` at reduced size, composed with Hydra and run in-process (offline W&B)."""
    from hydra import compose, initialize_config_dir

    from eyejax.app.runtime import CONF_DIR

    out = tmp_path_factory.mktemp("prune")
    old = os.getcwd()
    os.chdir(out)
    logger = logging.getLogger("eyejax")
    handler = _ListHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose(config_name="prune", overrides=QUICK)
        assert prune_app.run_app(cfg) == 0
    finally:
        os.chdir(old)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    CLI_LOG[:] = handler.messages
    return out


CLI_LOG: list[str] = []  # what cli_run logged, in order


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_cli_shows_progress_from_the_start_and_where_it_wrote(cli_run):
    assert CLI_LOG and CLI_LOG[0].startswith("training the dense CNN")  # before any work
    assert any(m.startswith("dense CNN trained") for m in CLI_LOG[:3])
    assert any(m.startswith("method 1 of") for m in CLI_LOG)
    wrote = [m.split(" ", 1)[1] for m in CLI_LOG if m.startswith("wrote ")]
    for f in ("steps.parquet", "pruning.md", "pruning_steps.png"):
        assert str(cli_run / f) in wrote, (f, wrote)


def test_cli_writes_tables_report_plots_and_wandb(cli_run):
    for f in ("steps.parquet", "summary.parquet", "final.parquet", "totals.parquet", "steps.csv",
              "pruning.md", "pruning_steps.png", "pruning_layers.png", "pruning_tradeoff.png"):
        assert (cli_run / f).is_file(), f
    steps = pd.read_parquet(cli_run / "steps.parquet")
    summary = pd.read_parquet(cli_run / "summary.parquet")
    totals = pd.read_parquet(cli_run / "totals.parquet")
    methods = ["energy_aware", "energy_saving", "magnitude"]
    assert sorted(summary.method.unique()) == sorted(methods)
    assert set(steps.layer) == set(LAYERS)
    assert len(steps) == 4 * len(summary)            # one row per layer per step
    assert list(totals.method) == ["dense"] + methods
    dense = totals.iloc[0]
    assert dense.reduction_v1 == 1.0 and dense.pruned_fraction == 0.0
    # every method's final model meets the accuracy budget
    budget = float(summary[summary.step == 0].val_acc.iloc[0]) - 0.01
    assert (totals.val_acc >= budget - 1e-12).all()
    for col in ("energy_v1_per_image", "energy_v1_cvpr17_per_image"):
        assert np.isfinite(totals[col]).all() and (totals[col] > 0).all()
    # weight zeros never change energy under the v1 chip model except through activations, and
    # pruning reduces the CVPR17 estimate of every pruned model
    pruned = totals[totals.pruned_fraction > 0]
    assert len(pruned) and (pruned.reduction_v1_cvpr17 > 1).all()
    md = (cli_run / "pruning.md").read_text()
    assert "| energy_saving |" in md and "## Per step" in md
    runs = list((cli_run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    summ = json.loads(next(runs[0].rglob("pruning-summary.json")).read_text())
    assert "magnitude/reduction_v1_cvpr17" in summ


def test_energy_estimate_matches_the_evaluator_and_predicts_savings():
    """The v1 energy of the estimator is eyejax's evaluate on the exact tensor sparsity; the smooth
    model predicts a positive saving for pruning under v1_cvpr17 and none under v1."""
    from eyejax.arch.eyeriss_v1 import EyerissV1
    from eyejax.evaluate import evaluate

    m = DigitsCNN()
    params = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))["params"]
    x = load_digits().val.x[:8]
    est = energy.EnergyEstimator(m, params, EyerissV1(), x, hw_batch=2,
                                  models=("v1", "v1_cvpr17"))(params)
    sp, _ = energy.measure_sparsity(m, params, x, hardware_network(m, params, batch=8))
    ref = evaluate(EyerissV1(), hardware_network(m, params, batch=2), sp).arrays()["energy"][0]
    np.testing.assert_allclose(est.table.energy_v1.to_numpy(), ref)
    assert (est.table.energy_v1_cvpr17 <= est.table.energy_v1 + 1e-9).all()
    for i in range(4):
        assert est.predicted_saving("v1", i, 0.5) == pytest.approx(0.0, abs=1e-6)
        assert est.predicted_saving("v1_cvpr17", i, 0.5) > 0


def test_energy_models():
    assert energy.ENERGY_MODELS[:2] == ("v1", "v1_cvpr17")
    with pytest.raises(ValueError, match="energy_model must be one of"):
        pruning.PruneConfig(energy_models=("v1",), energy_model="v1_cvpr17")


def test_v2_energy_uses_weight_sparsity():
    """v2 (CSC) energies come from eyejax's v2 evaluate on the measured sparsity; pruning a layer is
    predicted to save energy on v2 (what-if evaluation), unlike on the v1 chip."""
    from eyejax.arch.eyeriss_v1 import EyerissV1
    from eyejax.evaluate import evaluate

    m = DigitsCNN()
    params = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))["params"]
    x = load_digits().val.x[:8]
    estimator = energy.EnergyEstimator(m, params, EyerissV1(), x, hw_batch=2,
                                        models=("v1", "v1_cvpr17", "v2"))
    est = estimator(params)
    ref = evaluate(estimator.arch_v2, estimator.net_hw, est.sparsity).arrays()["energy"][0]
    np.testing.assert_allclose(est.table.energy_v2.to_numpy(), ref)
    saving = est.predicted_savings("v2", {1: 0.3, 2: 0.2})
    assert saving[1] > 0 and saving[2] > 0


def test_cli_checks_its_configuration_before_any_work(capsys):
    from hydra import compose, initialize_config_dir

    from eyejax.app.runtime import CONF_DIR

    bad = [["arch=eyeriss_v2"], ["arch.pe_rows=[8,12]"], ["prune.energy_model=v9"],
           ["+prune.colour=red"], ["arch_v2.cluster_rows=[2,4]"]]
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        ok = compose(config_name="prune", overrides=["arch_v2.cluster_rows=4"])
        pcfg, arch, arch_v2 = prune_app.config_from_omegaconf(ok)
        assert arch.family == "eyeriss_v1" and int(arch_v2.cluster_rows) == 4
        assert pcfg.energy_model == "v2"
        for overrides in bad:
            cfg = compose(config_name="prune", overrides=overrides + ["wandb.mode=disabled"])
            assert prune_app.run_app(cfg) == 2, overrides
    err = capsys.readouterr().err
    assert err.count("eyejax-prune: error:") == len(bad)
