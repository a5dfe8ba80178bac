"""Readers of the quantized formats people ship, one module per family.

Every reader returns :class:`BlockTensor` values (codes, scales, zero points or minimums,
codebooks, two-level scales, in the float weight's logical layout).
"""

from ._block import KINDS, BlockTensor

__all__ = ["BlockTensor", "KINDS"]
