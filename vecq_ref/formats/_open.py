"""``open_quantized``: one entry for every family's files; ``pair``: a tensor in both files."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from . import FAMILIES


def _config(path):
    """The ``config.json`` beside ``path`` (or in the folder ``path``) as a dict, or None."""
    folder = path if path.is_dir() else path.parent
    cfg = folder / "config.json"
    if not cfg.is_file():
        return None
    try:
        value = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"`quantized` file {path}: its {cfg.name} cannot be read as JSON: "
                         f"{' '.join(str(exc).split())}") from None
    return value if isinstance(value, dict) else None


def _family_module(module):
    """The family module ``vecq_ref.formats.<module>``, or None while it is not written."""
    full = f"{__package__}.{module}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return None
        raise


def open_quantized(path):
    """Open a quantized checkpoint: a GGUF file, or a safetensors file or folder of one of
    the families in :data:`~vecq_ref.formats.FAMILIES`.

    Parameters
    ----------
    path : str or Path
        A GGUF file (recognised by its magic, whatever its name; a ``.gguf`` file without
        it is refused as a corrupt GGUF), a ``.safetensors``
        file, or a folder with ``config.json`` and its ``.safetensors`` shards.

    Returns
    -------
    checkpoint
        The family's checkpoint object (module docstring of :mod:`vecq_ref.formats`).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        No family recognises ``path`` (the message names the path and what was looked for),
        or the file is truncated or inconsistent (one line: file, tensor, field).

    Notes
    -----
    Safetensors checkpoints go to the first family whose ``detect(path, config)`` is true,
    ``config`` being ``config.json`` beside the file (or in the folder) as a dict, or None;
    ``config["quantization_config"]["quant_method"]`` decides where present, the tensor names
    otherwise (each family's ``detect``).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"`quantized` file {path} does not exist")
    gguf_module = _family_module(FAMILIES["gguf"])
    if p.is_file() and (gguf_module.detect(p, None) or p.suffix.lower() == ".gguf"):
        return gguf_module.open(p, None)
    config = _config(p)
    tried, missing = [], []
    for family, module in FAMILIES.items():
        if family == "gguf":
            continue
        mod = _family_module(module)
        if mod is None:
            missing.append(family)
            continue
        tried.append(family)
        if mod.detect(p, config):
            return mod.open(p, config)
    qc = (config or {}).get("quantization_config")
    method = qc.get("quant_method") if isinstance(qc, dict) else None
    said = (f"config.json's quantization_config.quant_method is {method!r}" if method
            else "no config.json with a quantization_config.quant_method")
    looked = ", ".join(tried) or "none available"
    extra = f" (readers not available: {', '.join(missing)})" if missing else ""
    raise ValueError(f"`quantized` file {path} is not a quantized checkpoint this library "
                     f"reads: no GGUF magic, {said}, and the tensor names match none of the "
                     f"families looked for ({looked}){extra}")


def _near(name, names, k=3):
    import difflib

    close = difflib.get_close_matches(name, names, n=k, cutoff=0.5)
    return ", ".join(close or list(names)[:k])


def pair(original, quantized, tensor):
    """One tensor from the float original and from the quantized checkpoint, matched by name.

    Parameters
    ----------
    original : str or Path
        A float checkpoint ``report`` reads (``.safetensors`` file, shards or index, ``.npz``).
    quantized : str, Path or checkpoint
        A path :func:`open_quantized` opens, or an open checkpoint.
    tensor : str
        The tensor's name, in either file's naming (``blk.0.attn_q.weight`` or
        ``model.layers.0.self_attn.q_proj.weight``).

    Returns
    -------
    w : ndarray, shape (rows, cols)
        The float weight (bf16/fp8 as their exact float32 values).
    q : BlockTensor or ndarray
        The quantized tensor in ``w``'s row order, or the float array the quantized file
        keeps for it.
    names : dict
        ``original``, ``quantized`` (the names in each file), ``notes`` (what was undone),
        ``original_dtype`` (the dtype the original stores ``w`` in: ``"bfloat16"`` for a
        ``w`` widened to float32; the torch quantizers compute in it).

    Raises
    ------
    TypeError
        ``tensor`` is not a string.
    ValueError
        The name is in neither file, has no counterpart, the shapes differ, or the pairing
        is wrong (shapes agree but the quantized tensor is further from ``w`` than zeros
        are: relative DQL above 1).
    """
    from .. import io
    from .._validation import fail

    if not isinstance(tensor, str):
        fail("tensor", "a tensor name (str)", repr(tensor)[:60], TypeError)
    name = tensor
    opened = not hasattr(quantized, "read")
    ckpt = open_quantized(quantized) if opened else quantized
    qpath = getattr(ckpt, "path", quantized)
    try:
        qnames = ckpt.names()
        with io.open_tensors(original, "original") as (keys, get):
            if name not in qnames and name not in keys:
                # A member tensor (GPTQ's ``….qweight``) the reader resolves to its module.
                resolved = ckpt.quantized_name(name)
                name = resolved if resolved in qnames else name
            if name in qnames:
                qname, oname = name, _original_of(ckpt, name, keys)
                if oname is None:
                    raise ValueError(f"tensor {name!r} of {qpath} has no counterpart in "
                                     f"{original} (the name map's candidates: "
                                     f"{_candidates(ckpt, name)}; {original} has "
                                     f"{_near(name, keys)}, …)")
            elif name in keys:
                oname, qname = name, ckpt.quantized_name(name)
                if qname is None:
                    raise ValueError(f"tensor {name!r} of {original} has no counterpart in "
                                     f"{qpath} (it has {_near(name, qnames)}, …)")
            else:
                raise ValueError(f"`tensor` {name!r} is in neither file "
                                 f"({Path(original).name} has {_near(name, keys, 2)}, …; "
                                 f"{Path(qpath).name} has {_near(name, qnames, 2)}, …)")
            raw = np.array(get(oname))
            w = io.as_float(raw)
        q, notes = _row_order(ckpt, qname, w, ckpt.read(qname))
    finally:
        if opened:
            ckpt.close()
    if not isinstance(q, np.ndarray):
        notes = list(q.notes)
    qshape = q.shape
    if w.ndim == 1 and len(qshape) == 2 and qshape == (1, w.shape[0]):
        w = w.reshape(1, -1)
    if tuple(w.shape) != tuple(qshape):
        raise ValueError(f"tensor {oname!r} of {original} has shape {tuple(w.shape)} but "
                         f"{qname!r} of {qpath} has {tuple(qshape)}")
    deq = _values(q)
    ww = w.astype(np.float64)
    denom = float(np.sum(ww * ww))
    if denom > 0 and float(np.sum((ww - deq) ** 2)) > denom:
        raise ValueError(f"tensor {oname!r} of {original} and {qname!r} of {qpath} do not "
                         "pair: their shapes agree but the quantized values are further from "
                         "the original than zeros are (relative DQL above 1)")
    return w, q, {"original": oname, "quantized": qname, "notes": list(notes),
                  "original_dtype": raw.dtype.name}


def _original_of(ckpt, name, keys):
    """The name in ``keys`` of the original of the quantized tensor ``name``: the reader's
    ``original_name``, given ``keys`` where it takes them (GGUF), else found among them as
    it is or under a prefix."""
    import inspect

    if "available" in inspect.signature(ckpt.original_name).parameters:
        return ckpt.original_name(name, available=keys)
    got = ckpt.original_name(name)
    if got is None or got in keys:
        return got
    hits = [k for k in keys if k.endswith("." + got)]
    return hits[0] if len(hits) == 1 else None


def _candidates(ckpt, name):
    got = getattr(ckpt, "original_candidates", lambda n: [])(name)
    return ", ".join(got[:3]) or "none"


def _values(q):
    if isinstance(q, np.ndarray):
        return np.asarray(q, dtype=np.float64)
    return q.dequantize(np.float64)


def _row_order(ckpt, qname, w, q):
    """Keep the reader's row order, or the stored one where that is what fits ``w`` (a file
    whose converter did not permute Q/K); ``(q, notes)``."""
    perm = ckpt.permutation(qname) if hasattr(ckpt, "permutation") else None
    notes = [] if isinstance(q, np.ndarray) else list(q.notes)
    if perm is None:
        return q, notes
    undone = _values(q)
    if undone.shape != w.shape:
        return q, notes
    ww = w.astype(np.float64)
    stored = undone[perm[0]]
    if np.sum((ww - stored) ** 2) < np.sum((ww - undone) ** 2):
        q = ckpt.read(qname, unpermute=False)
        notes = [] if isinstance(q, np.ndarray) else list(q.notes)
        notes.append(f"rows of {qname} kept as stored: they fit the original without "
                     "undoing llama.cpp's Q/K permutation (a converter that did not apply it)")
        if not isinstance(q, np.ndarray):
            import dataclasses

            q = dataclasses.replace(q, notes=tuple(notes))
        return q, notes
    if isinstance(q, np.ndarray):
        notes.append(f"rows of {qname} permuted by llama.cpp's converter: undone")
    return q, notes
