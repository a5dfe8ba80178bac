"""vecq_ref: the reference implementation of VecQ vectorized weight quantization.

See ``VECQ.md`` in the project's shared spec for the mathematics; every public function
names the section it implements.
"""

from ._version import __version__
from .lattice import code_range, codes, lattice_levels, levels
from .loss import VectorLoss, optimal_alpha, vector_loss
from .quantize import Quantized, quantize
from .tables import optimal_step

__all__ = [
    "__version__",
    "Quantized",
    "VectorLoss",
    "code_range",
    "codes",
    "lattice_levels",
    "levels",
    "optimal_alpha",
    "optimal_step",
    "quantize",
    "vector_loss",
]
