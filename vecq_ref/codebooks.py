"""Fixed 4-bit codebooks of the formats people ship, copied from their sources' tables.

Each constant is a read-only float64 array of the codebook's levels, ascending and distinct
(the level set the searches take as ``codebook=``); the format's own code order, where it
differs, is given beside it. Values are those of the source's tables to the last bit: float32
tables are widened exactly, integer tables are integers.

=========  ==================================================  ===================================
name       levels                                               source
=========  ==================================================  ===================================
``NF4``    16 normal-float quantiles in [−1, 1], 0 included    bitsandbytes ``backends/utils.py``,
                                                                ``_NF4_QUANT_TABLE`` (float32)
``FP4``    15 distinct values of the 16-entry e2m1 table / 12   bitsandbytes ``functional.py``,
           (its two zeros are one level)                        ``get_4bit_type("fp4")`` (float32)
``IQ4_NL`` 16 integers −127 … 113, no zero level                llama.cpp ``ggml-common.h``,
                                                                ``kvalues_iq4nl`` (int8)
=========  ==================================================  ===================================
"""

from __future__ import annotations

import numpy as np


def _frozen(values, dtype):
    arr = np.asarray(values, dtype=dtype).astype(np.float64)
    arr.setflags(write=False)
    return arr


#: bitsandbytes' NF4 table in code order (code i ↦ level i); ascending already.
NF4 = _frozen([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], np.float32)

#: bitsandbytes' FP4 table in its own code order (code i ↦ ``FP4_TABLE[i]``), as its quantizer
#: builds it: ``functional.get_4bit_type("fp4")``, the e2m1 values in bit-pattern order
#: divided by 12 in float32 (what bitsandbytes 0.50's CPU path quantizes with; the 4-decimal
#: ``_FP4_QUANT_TABLE`` of ``backends/utils.py`` is not used for it). Codes 0 and 8 are both
#: +0.0: the source's list literal ``-0`` is the integer 0.
FP4_TABLE = _frozen(np.array([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0,
                              0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0],
                             dtype=np.float32) / np.float32(12.0), np.float32)

#: The distinct levels of :data:`FP4_TABLE`, ascending (15 values).
FP4 = _frozen(np.unique(FP4_TABLE), np.float64)

#: llama.cpp's IQ4_NL table ``kvalues_iq4nl`` (the block's scale ``d`` multiplies it).
IQ4_NL = _frozen([-127, -104, -83, -65, -49, -35, -22, -10,
                  1, 13, 25, 38, 53, 69, 89, 113], np.int8)

#: Names accepted wherever a codebook is (``codebook="nf4"``), case-insensitive.
NAMED = {"nf4": NF4, "fp4": FP4, "iq4_nl": IQ4_NL}

__all__ = ["NF4", "FP4", "FP4_TABLE", "IQ4_NL", "NAMED"]
