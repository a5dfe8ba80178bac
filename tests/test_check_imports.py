"""issue 22, "one room": the modules of vecq_ref.check import each other downward only.

The graph is read from the source (every ``import``, top-level or inside a function, since a
function-level import closes a circle as surely when it runs) and no circle may pass through a
module of ``vecq_ref.check`` (today's were verify → diagnose → recover → verify and
quantize ↔ check.released). Each module also imports alone in a fresh interpreter.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "vecq_ref"


def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph():
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # ``from pkg import sub`` imports the submodule (the package is already
                # initialised by then); ``from mod import name`` the module itself
                subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [mod] + subs
            for t in targets:
                if t in mods and t != m:
                    edges[m].add(t)
    return edges


def _cycles_through(edges, inside):
    """Strongly connected components (Tarjan) with more than one module, of which one is
    ``inside``-ed."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 and any(inside(c) for c in comp):
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_through_check():
    edges = _graph()
    assert "vecq_ref.check.verify" in edges and edges["vecq_ref.check.verify"]
    cycles = _cycles_through(edges, lambda m: m.startswith("vecq_ref.check"))
    assert cycles == []


def test_the_cycle_finder_finds_a_circle():
    # the check above can fail: a two-module circle through check is reported
    edges = {"vecq_ref.check.a": {"vecq_ref.b"}, "vecq_ref.b": {"vecq_ref.check.a"},
             "vecq_ref.c": set()}
    assert _cycles_through(edges, lambda m: m.startswith("vecq_ref.check")) == [
        ["vecq_ref.b", "vecq_ref.check.a"]]


CHECK_MODULES = sorted(_module_name(p) for p in (PKG / "check").glob("*.py"))


@pytest.mark.parametrize("mod", CHECK_MODULES)
def test_each_check_module_imports_alone(mod):
    r = subprocess.run([sys.executable, "-c", f"import {mod}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
