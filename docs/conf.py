"""Sphinx configuration: numpydoc API reference, the theory page and the notebooks (myst-nb).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (``.ci/run`` does
this). The notebooks of ``analysis/`` (jupytext percent files) are copied into
``docs/notebooks/`` (ignored by git) and executed at build time; set
``VECQ_NOTEBOOK_QUICK=0`` for the full sizes (default here: the quick sizes, a few minutes).

The site reads offline: MathJax is served from the build's own ``_static/mathjax`` (copied
there by ``sphinx-mathjax-offline``) instead of a CDN, and the theme (``pydata-sphinx-theme``)
bundles its fonts and scripts. ``tests/test_docs.py`` checks both, on this file and on a
built site.
"""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VECQ_NOTEBOOK_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import vecq_ref  # noqa: E402

NOTEBOOKS = ("nb1_vector_loss_geometry", "nb2_choosing_the_step",
             "nb3_quantization_aware_training", "nb4_auditing_q4_0")
_nb_dir = DOCS / "notebooks"
_nb_dir.mkdir(exist_ok=True)
for _name in NOTEBOOKS:  # copy only when changed, so Sphinx's incremental build keeps working
    _src, _dst = ROOT / "analysis" / f"{_name}.py", _nb_dir / f"{_name}.py"
    if not _dst.exists() or _dst.read_bytes() != _src.read_bytes():
        shutil.copyfile(_src, _dst)

project = "vecq_ref"
author = "vecq_ref developers"
copyright = "vecq_ref developers"  # noqa: A001
release = version = vecq_ref.__version__

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # its module name has hyphens; it sets mathjax_path to _static/
]
exclude_patterns = ["_build", "conf.py", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".py": "myst-nb"}

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_markdown_format = "myst"  # tables in text/markdown outputs

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


html_theme = "pydata_sphinx_theme"
html_title = f"vecq_ref {release}"
html_static_path = ["_static"]
html_css_files = ["wide.css"]
html_theme_options = {
    # The page's own table of contents stays on the left; the right column would take width
    # that code lines and the notebooks' printed tables need.
    "secondary_sidebar_items": [],
    "navigation_with_keys": False,
    "header_links_before_dropdown": 4,
}
html_sidebars = {"**": []}  # the pages are flat (no sub-pages): the left column would be empty
