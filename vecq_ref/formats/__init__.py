"""Readers of the quantized formats people ship, one module per family.

Every reader returns :class:`BlockTensor` values (codes, scales, zero points or minimums,
codebooks, two-level scales, in the float weight's logical layout), or a float array for a
tensor the file keeps in float.

``open_quantized(path)`` opens a GGUF file (:mod:`.llamacpp`) or a safetensors checkpoint (file,
or folder with its ``config.json``) of GPTQ (:mod:`.gptq`), AWQ (:mod:`.awq`),
compressed-tensors (:mod:`.compressed_tensors`) or bitsandbytes (:mod:`.bitsandbytes`), and
returns a checkpoint object with

- ``path``, ``family`` (``"gguf"``, ``"gptq"``, ``"awq"``, ``"compressed-tensors"``,
  ``"bitsandbytes"``), ``architecture`` (str or None);
- ``names()``: the file's weight tensors (quantized or left in float), in file order;
- ``read(name)``: a :class:`BlockTensor`, or an ndarray for a float tensor; memory-mapped, one
  tensor at a time;
- ``original_name(name)``: the name of the same tensor in the float original (Hugging Face
  naming), or None; ``quantized_name(original)``: the reverse;
- use as a context manager (``close()``).

A truncated or inconsistent file raises ``ValueError`` with one line naming the file, the
tensor and the field.

``pair(original, quantized, name)`` reads one tensor from both files, ``name`` in either
file's naming: ``(w, q, names)`` with ``q`` a :class:`BlockTensor` (or the float array the
quantized file keeps) in ``w``'s row order; ``vecq-ref verify ORIGINAL QUANTIZED --tensor
NAME`` is built on it.
"""

from ._block import KINDS, BlockTensor, format_level_set

#: family → module (imported on first use; each module defines ``detect(path, config)`` and
#: ``open(path, config)``).
FAMILIES = {
    "gguf": "llamacpp",
    "gptq": "gptq",
    "awq": "awq",
    "compressed-tensors": "compressed_tensors",
    "bitsandbytes": "bitsandbytes",
}

from ._open import open_quantized, pair  # noqa: E402 - after FAMILIES, which it reads

__all__ = ["BlockTensor", "KINDS", "FAMILIES", "format_level_set", "open_quantized", "pair"]
