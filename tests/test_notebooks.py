"""The notebooks run top to bottom (at reduced size, EYEJAX_NOTEBOOK_SMALL=1) and match their source
script notebooks/make_notebooks.py, with empty outputs."""
import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def _maker():
    spec = importlib.util.spec_from_file_location("make_notebooks", NB_DIR / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MAKER = _maker()


def test_notebooks_match_their_source_and_have_no_outputs():
    assert MAKER.main(["--check"]) == 0
    for name in MAKER.NOTEBOOKS:
        nb = nbformat.read(NB_DIR / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name


@pytest.mark.parametrize("name", sorted(MAKER.NOTEBOOKS))
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("EYEJAX_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("MPLBACKEND", raising=False)   # the inline backend, as in Jupyter
    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
