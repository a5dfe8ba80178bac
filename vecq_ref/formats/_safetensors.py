"""The safetensors plumbing the GPTQ, AWQ, compressed-tensors and bitsandbytes readers share.

A checkpoint is a ``.safetensors`` file, a ``model.safetensors.index.json`` or a folder of
shards, with its ``config.json`` (and GPTQ's ``quantize_config.json``) beside it. Files are
validated by the ``safetensors`` package and memory-mapped one tensor at a time through
:mod:`vecq_ref.io` (bf16 through ``ml_dtypes``). Each family module subclasses
:class:`SafetensorsCheckpoint` and says which keys form one quantized module (``_module_of``,
``_read_module``); names, lookups, errors and closing are here, once.

Errors name the file, the tensor and the field in the library's one template::

    ValueError: `scales` of tensor 'model.layers.0.self_attn.q_proj' in
    /path/model.safetensors must be shape (4, 64) (groups × out); got (4, 32).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import io as _io

CONFIG_FILES = ("config.json", "quantize_config.json", "quant_config.json")


def folder_of(path):
    """The checkpoint's folder: ``path`` itself, or the folder of a file."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def _read_json(path):
    try:
        obj = _io._json_object(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"`config` file {path} is not a readable JSON object: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"`config` file {path} must be a JSON object; got "
                         f"{type(obj).__name__}.")
    return obj


def load_config(path):
    """``config.json`` beside (or in) ``path`` as a dict ({} when absent), with
    ``quantize_config.json`` / ``quant_config.json`` (AutoGPTQ, AutoAWQ) under the key
    ``"_quantize_config"`` when present."""
    folder = folder_of(path)
    config = {}
    if (folder / "config.json").is_file():
        config = dict(_read_json(folder / "config.json"))
    for extra in CONFIG_FILES[1:]:
        if (folder / extra).is_file():
            config["_quantize_config"] = _read_json(folder / extra)
            break
    return config


def quantization_config(config):
    """The quantization block: ``config["quantization_config"]`` merged over the separate
    ``quantize_config.json`` (both may be present; the HF block wins on a conflict)."""
    config = config or {}
    qc = dict(config.get("_quantize_config") or {})
    qc.update(config.get("quantization_config") or {})
    return qc


def quant_method(config):
    """``quant_method`` in lower case with ``-``/``_`` unified, or None."""
    qm = quantization_config(config).get("quant_method")
    return None if qm is None else str(qm).lower().replace("_", "-")


def st_files(path):
    """The ``.safetensors`` files of a checkpoint (``path`` a file, an index or a folder)."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors" and path.is_file():
        return [path]
    if path.is_dir() or path.suffix.lower() == ".json":
        try:
            return [sp for sp, _ in _io._shards(path, "path")]
        except ValueError:
            return []
    return []


def header_keys(path):
    """Tensor names → (dtype code, shape) of every file, read from the headers only (for
    ``detect``; nothing is validated or mapped)."""
    out = {}
    for f in st_files(path):
        parsed = _io._raw_st_header(f, "path")
        if parsed is None:
            continue
        for k, v in parsed[1].items():
            if k != "__metadata__" and isinstance(v, dict):
                out[k] = (v.get("dtype"), tuple(v.get("shape", ())))
    return out


class SafetensorsCheckpoint:
    """Base of the safetensors readers: the contract of :mod:`vecq_ref.formats`.

    Subclasses set ``family`` and define ``_module_of(key)`` (the module prefix when ``key``
    is the marker tensor of a quantized module, else None), ``_parts`` (suffixes of the
    tensors a quantized module consists of) and ``_read_module(prefix)`` (a BlockTensor).
    """

    family = None
    _parts = ()

    def __init__(self, path, config=None):
        self.path = Path(path)
        self.config = load_config(path) if config is None else dict(config)
        if config is not None and "_quantize_config" not in self.config:
            extra = load_config(path).get("_quantize_config")
            if extra is not None:
                self.config["_quantize_config"] = extra
        self.qconfig = quantization_config(self.config)
        archs = self.config.get("architectures") or [None]
        self.architecture = archs[0] if isinstance(archs, list) and archs else None
        files = st_files(self.path)
        if not files:
            raise ValueError(f"`path` must be a .safetensors file, an index or a folder "
                             f"holding them; got {self.path}.")
        self._file_of, self._get, self._dtype, self._shape, self._keys = {}, {}, {}, {}, []
        for f in files:
            start, header = _io._safetensors_header(f, "path", describe=self._field_of)
            keys, get = _io._open_safetensors(f, "path")
            for k in keys:
                if k in self._file_of:
                    raise ValueError(f"tensor {k!r} is in two files, {self._file_of[k]} and "
                                     f"{f}; which one is meant is ambiguous")
                self._file_of[k] = f
                self._get[k] = get
                self._dtype[k] = header[k]["dtype"]
                self._shape[k] = tuple(header[k]["shape"])
                self._keys.append(k)
        self._modules = {}
        for k in self._keys:
            prefix = self._module_of(k)
            if prefix is not None:
                self._modules[prefix] = k
        self._member = {}
        for prefix in self._modules:
            for part in self._parts:
                key = f"{prefix}.{part}"
                if key in self._file_of:
                    self._member[key] = prefix

    # --- the contract -------------------------------------------------------------------

    def names(self):
        """Quantized modules (their prefix, e.g. ``model.layers.0.self_attn.q_proj``) and
        float tensors, in file order."""
        out, seen = [], set()
        for k in self._keys:
            prefix = self._module_of(k)
            if prefix is not None:
                if prefix not in seen:
                    seen.add(prefix)
                    out.append(prefix)
            elif k not in self._member and self._dtype[k] in _FLOAT_CODES:
                out.append(k)
        return out

    def read(self, name):
        """A :class:`~vecq_ref.formats.BlockTensor` for a quantized module (``name`` its
        prefix, one of its tensors, or the original weight's name), or the float array."""
        prefix = self._resolve(name)
        if prefix in self._modules:
            return self._read_module(prefix)
        return self.tensor(prefix, prefix, "data")

    def original_name(self, name):
        """The Hugging Face name of the float weight ``name`` stands for, or None."""
        try:
            prefix = self._resolve(name)
        except KeyError:
            return None
        return f"{prefix}.weight" if prefix in self._modules else prefix

    def quantized_name(self, original):
        """The name in :meth:`names` that stands for the float weight ``original``, or None."""
        try:
            return self._resolve(original)
        except KeyError:
            return None

    def close(self):
        """Drop the memory maps."""
        self._get = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<{type(self).__name__} {self.path} ({len(self._modules)} quantized of "
                f"{len(self.names())} weights)>")

    # --- helpers for the family modules --------------------------------------------------

    def _resolve(self, name):
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a tensor name (str); got {type(name).__name__}.")
        if name in self._modules:
            return name
        if name in self._member:
            return self._member[name]
        if name.endswith(".weight") and name[: -len(".weight")] in self._modules:
            return name[: -len(".weight")]
        if name in self._file_of and self._module_of(name) is None:
            return name
        raise KeyError(f"`name` must be a tensor of {self.path}; got {name!r}.")

    def _field_of(self, key):
        """``(module, part)`` of a tensor key for messages (``(key, "data")`` when it is no
        part of a quantized module): the longest of ``_parts`` that ends it."""
        for part in sorted(self._parts, key=len, reverse=True):
            if key.endswith(f".{part}"):
                return key[: -len(part) - 1], part
        return key, "data"

    def has(self, key):
        return key in self._file_of

    def where(self, key):
        """The file that holds ``key`` (for messages)."""
        return self._file_of.get(key, self.path)

    def shape(self, key):
        return self._shape[key]

    def fail(self, module, field, expected, got, key=None):
        """Raise the one-line error naming the field, the tensor and the file."""
        key = f"{module}.{field}" if key is None else key
        where = self._file_of.get(key) or self._file_of.get(self._modules.get(module),
                                                            self.path)
        raise ValueError(f"`{field}` of tensor {module!r} in {where} must be {expected}; "
                         f"got {got}.")

    def tensor(self, key, module=None, field=None, dtypes=None, ndim=None):
        """One tensor, memory-mapped, native byte order; a missing tensor or a dtype/ndim
        outside ``dtypes``/``ndim`` is a one-line ValueError naming module and field."""
        module = key if module is None else module
        field = key.rsplit(".", 1)[-1] if field is None else field
        if key not in self._file_of:
            self.fail(module, field, f"present (tensor {key!r})", "nothing: it is missing")
        if dtypes is not None and self._dtype[key] not in dtypes:
            self.fail(module, field, f"of dtype {' or '.join(dtypes)}", self._dtype[key], key)
        if ndim is not None and len(self._shape[key]) not in np.atleast_1d(ndim):
            self.fail(module, field, f"{ndim}-D", f"shape {self._shape[key]}", key)
        if not self._get:
            raise ValueError(f"`checkpoint` {self.path} must be open; got a closed one.")
        try:
            arr = self._get[key](key)
        except _io.UnsupportedDtype as exc:
            self.fail(module, field, "a NumPy-readable dtype", str(exc), key)
        return _io._native(arr)

    def expect_shape(self, module, field, arr, shape, what=""):
        if tuple(arr.shape) != tuple(shape):
            key = f"{module}.{field}"
            self.fail(module, field, f"shape {tuple(shape)}{' (' + what + ')' if what else ''}",
                      tuple(arr.shape), key if key in self._file_of else None)

    def _module_of(self, key):  # pragma: no cover - abstract
        raise NotImplementedError

    def _read_module(self, prefix):  # pragma: no cover - abstract
        raise NotImplementedError


_FLOAT_CODES = ("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ",
                "F8_E5M2FNUZ")


def json_blob(arr):
    """A JSON object stored as the bytes of a uint8 tensor (bitsandbytes' quant state)."""
    return json.loads(np.asarray(arr, dtype=np.uint8).tobytes().decode("utf-8"))
