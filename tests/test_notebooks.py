"""The teaching notebooks in analysis/ run top to bottom with small sizes.

Each jupytext percent-format ``.py`` is converted to a notebook and executed with nbclient
(a real kernel, so ``display`` of figures is exercised); without nbclient, the file is run
as a script with runpy. ``VECQ_NOTEBOOK_QUICK=1`` makes the notebooks small.
"""

import runpy
from pathlib import Path

import pytest

ANALYSIS = Path(__file__).resolve().parent.parent / "analysis"
NOTEBOOKS = ["nb1_vector_loss_geometry.py", "nb2_choosing_the_step.py",
             "nb3_quantization_aware_training.py", "nb4_auditing_q4_0.py"]


@pytest.fixture
def quick_env(monkeypatch):
    monkeypatch.setenv("VECQ_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("VECQ_NB4_STAND_IN", "1")     # notebook 4: the tiny stand-in


def _have(*modules):
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_percent_format_with_markdown(name):
    text = (ANALYSIS / name).read_text(encoding="utf-8")
    assert "format_name: percent" in text
    assert text.count("# %% [markdown]") >= 3
    assert "VECQ_NOTEBOOK_QUICK" in text


@pytest.mark.jit_only
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, quick_env, tmp_path, monkeypatch):
    path = ANALYSIS / name
    if not _have("jupytext", "nbclient", "ipykernel"):
        monkeypatch.setenv("MPLBACKEND", "Agg")
        monkeypatch.chdir(tmp_path)
        runpy.run_path(str(path), run_name="__main__")
        return
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code)
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the notebook shows at least one figure"
