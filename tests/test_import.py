"""`import vecq_ref` stays fast: nothing is compiled and heavy modules wait until used.

(numba itself imports the top-level scipy package, so only scipy's submodules are checked.)
"""

import subprocess
import sys

SCRIPT = """
import sys, pkgutil, importlib
import vecq_ref
import vecq_ref._kernels as kernels
compiled = []
for info in pkgutil.iter_modules(kernels.__path__, "vecq_ref._kernels."):
    module = importlib.import_module(info.name)
    for name, obj in vars(module).items():
        if getattr(obj, "signatures", None):
            compiled.append(f"{info.name}.{name}")
heavy = sorted(m for m in ("scipy.optimize", "scipy.stats", "scipy.special", "matplotlib",
                          "sklearn", "mlxtend", "torch", "safetensors") if m in sys.modules)
print(compiled, heavy)
"""


def test_import_compiles_nothing_and_loads_no_heavy_modules():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[] []"
