"""Every docstring example in the package runs and prints what it says; the docs read offline."""

import ast
import doctest
import importlib
import os
import pkgutil
import re
from pathlib import Path

import pytest

import vecq_ref

MODULES = sorted(m.name for m in pkgutil.walk_packages(vecq_ref.__path__, "vecq_ref.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


# The site reads offline: no page loads a script, stylesheet, font or image from the network
# (MathJax from a CDN showed raw LaTeX without one). Checked on docs/conf.py here, and on a built
# site when ``VECQ_DOCS_HTML`` names one (``.ci/run`` sets it after building the docs).

ROOT = Path(__file__).resolve().parents[1]
_REMOTE = re.compile(
    r"""<(?:script|img|iframe)\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//"""  # script/img src
    r"""|<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//"""              # stylesheet, font, icon
    r"""|(?:url\(|@import\s+)\s*["']?(?:https?:)?//""",                # CSS url(), @import
    re.I)


def remote_references(html_dir):
    """Return ``(file, excerpt)`` for every network reference a page or stylesheet loads.

    Links a reader follows (``<a href>``) are not loads and are not reported.
    """
    found = []
    for path in sorted(Path(html_dir).rglob("*")):
        if path.suffix not in (".html", ".css") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in _REMOTE.finditer(text):
            found.append((str(path.relative_to(html_dir)), text[m.start():m.end() + 60]))
    return found


def _conf_assignments():
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text(encoding="utf-8"))
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    values[target.id] = None  # computed (e.g. an f-string): not checked
    return values


def test_remote_references_finds_loads_not_links(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.html").write_text(
        '<a href="https://example.org/paper">paper</a>\n'          # a link: fine
        '<script src="_static/mathjax/tex-chtml.js"></script>\n'   # local: fine
        '<script defer src="https://cdn.example/mathjax.js"></script>\n', encoding="utf-8")
    (tmp_path / "sub" / "b.html").write_text(
        "<link rel='stylesheet' href='//fonts.example/css'>", encoding="utf-8")
    (tmp_path / "c.css").write_text(
        "@font-face { src: url(fonts/x.woff2); }\n"
        "@import url('https://fonts.example/inter.css');\n", encoding="utf-8")
    (tmp_path / "d.js").write_text('fetch("https://example.org")', encoding="utf-8")
    found = remote_references(tmp_path)
    assert [f for f, _ in found] == ["a.html", "c.css", "sub/b.html"]
    assert "cdn.example" in found[0][1]


def test_conf_serves_math_and_theme_from_the_build():
    conf = _conf_assignments()
    assert "sphinx.ext.mathjax" in conf["extensions"]
    assert "sphinx-mathjax-offline" in conf["extensions"]  # sets mathjax_path to _static/mathjax
    assert "mathjax_path" not in conf  # a CDN URL here would undo it
    assert conf["html_theme"] == "pydata_sphinx_theme"
    for key in ("html_js_files", "html_css_files"):
        for entry in conf.get(key, []):
            name = entry[0] if isinstance(entry, tuple) else entry
            assert not re.match(r"(?:https?:)?//", name), (key, name)
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    docs_extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]["docs"]
    names = {re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower() for req in docs_extra}
    assert {"sphinx-mathjax-offline", "pydata-sphinx-theme"} <= names


@pytest.mark.skipif(not os.environ.get("VECQ_DOCS_HTML"),
                    reason="set VECQ_DOCS_HTML to a built site (docs/_build/html) to check it")
def test_built_site_loads_nothing_from_the_network():
    site = Path(os.environ["VECQ_DOCS_HTML"])
    assert (site / "index.html").is_file(), f"no built site at {site}"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    theory = (site / "theory.html").read_text(encoding="utf-8")
    assert 'src="_static/mathjax/tex-chtml.js' in theory  # then ?v=hash"
    assert remote_references(site) == []
