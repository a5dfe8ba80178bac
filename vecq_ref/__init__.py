"""vecq_ref: the reference implementation of VecQ vectorized weight quantization.

See ``docs/theory.md`` (also on the documentation site) for the mathematics; every public function
names the section it implements.
"""

from . import baselines, format_rules
from ._version import __version__
from .check import golden
from .check.audit import AuditResult, audit
from .check.verify import VerifyReport, verify
from .compare import compare
from .lattice import LevelSet, code_range, codes, lattice_levels, level_set, levels
from .loss import VectorLoss, optimal_alpha, vector_loss
from .quantize import Quantized, quantize
from .search import StepResult, search_step
from .tables import optimal_step

__all__ = [
    "__version__",
    "AuditResult",
    "LevelSet",
    "Quantized",
    "StepResult",
    "VectorLoss",
    "VerifyReport",
    "audit",
    "baselines",
    "code_range",
    "codes",
    "compare",
    "format_rules",
    "golden",
    "lattice_levels",
    "level_set",
    "levels",
    "optimal_alpha",
    "optimal_step",
    "quantize",
    "search_step",
    "vector_loss",
    "verify",
]
