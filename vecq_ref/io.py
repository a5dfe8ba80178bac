"""Files: .npy/.npz (never unpickled), .safetensors (single or sharded), atomic writes.

Reading: ``np.load`` is always called with ``allow_pickle=False``; a ``.npy`` is
memory-mapped, every array of a ``.npz`` is checked against its member's size before it is
read (a corrupt header cannot ask for terabytes), and ``.safetensors`` files are validated by
the ``safetensors`` package and then memory-mapped one tensor at a time with the dtypes of
``ml_dtypes`` (bf16, fp8 E4M3/E5M2), both in the ``io`` extra. A checkpoint sharded with a
``model.safetensors.index.json``, or a folder of ``.safetensors`` shards, reads as one model.
Every problem with a file is one ``ValueError`` naming the file and the cause; a missing
optional package is an ``ImportError`` naming the extra to install.

Writing: every file is written to a temporary name in the target folder, created with the
permissions the umask allows (``0o666 & ~umask``, like any Unix tool), and renamed into place,
so a reader (or an interrupted run) never leaves half a file; an existing file is only
replaced with ``force=True``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np

EXTRA_IO = 'pip install "vecq_ref[io]"'

# --- writing --------------------------------------------------------------------------------


def check_target(path, force=False):
    """``path`` as a Path if a file may be written there; FileExistsError/FileNotFoundError/
    IsADirectoryError (naming the path) if not.

    A symbolic link counts as an existing file, dangling or not: with ``force`` the link
    itself is replaced by the new file (the rename never writes through it).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; expected a file name")
    if path.is_symlink() and not path.exists() and not force:
        raise FileExistsError(f"{path} is a symbolic link to a missing file "
                              f"({os.readlink(path)}); pass force=True to replace "
                              "the link")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass force=True to overwrite it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    return path


@contextlib.contextmanager
def atomic_path(path, force=False):
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file is created with mode ``0o666`` so the umask decides the permissions,
    as for a file written with ``open(path, "w")``. On any exception (``KeyboardInterrupt``
    included) the temporary file is removed and ``path`` is left as it was.
    """
    path = check_target(path, force)
    tmp = None
    try:
        while True:
            tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:  # pragma: no cover - 32 random bits collided
                continue
            os.close(fd)
            break
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        # The temporary name means nothing to the caller: name the file they asked for.
        if exc.errno is not None and str(tmp) in (exc.filename, exc.filename2):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        if tmp is not None and os.path.lexists(tmp) and tmp != path:
            os.unlink(tmp)


def write_text(path, text, force=False):
    """Atomically write ``text`` (UTF-8)."""
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_npz(path, arrays, force=False):
    """Atomically write a dict of arrays as an uncompressed .npz."""
    with atomic_path(path, force) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})


def is_whole(path):
    """True if ``path`` is a regular file that is complete as far as its format can tell.

    ``.json`` parses; ``.npz`` passes the zip CRC check; ``.npy`` has its header and all the
    data the header claims; ``.png`` ends with the IEND chunk; ``.pdf`` ends with ``%%EOF``;
    any other file is not empty. The writers of this package are atomic, so a file that fails
    was cut short by something else (a copy, a full disk, an older version).
    """
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        suffix = path.suffix.lower()
        if suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".npz":
            with zipfile.ZipFile(path) as zf:
                return zf.testzip() is None
        elif suffix == ".npy":
            _read_npy(path, "file")
        elif suffix in (".png", ".pdf"):
            tail = b"IEND\xaeB`\x82" if suffix == ".png" else b"%%EOF"
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 32))
                return tail in fh.read()
    except (*_BAD_FILE, UnicodeDecodeError):
        return False
    return True


# --- reading: files and their problems ------------------------------------------------------

class UnsupportedDtype(ValueError):
    """A tensor whose dtype cannot be read as real numbers (packed fp4/fp6, unknown)."""


_BAD_FILE = (ValueError, OSError, EOFError, zipfile.BadZipFile, struct.error)

# safetensors dtype → NumPy dtype name (None: from ml_dtypes, by that name).
_ST_NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "C64": "<c8", "BOOL": "|b1",
             "I8": "|i1", "U8": "|u1", "I16": "<i2", "U16": "<u2", "I32": "<i4", "U32": "<u4",
             "I64": "<i8", "U64": "<u8"}
_ST_ML = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
          "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
          "F8_E8M0": "float8_e8m0fnu"}
LOW_PRECISION = tuple(_ST_ML.values())  # ml_dtypes floats, read as float32


def _fail(name, path, why, exc=None):
    raise ValueError(f"`{name}` file {path}: {why}") from exc


def _check_readable(path, name):
    """The file (or folder, when ``folder_ok``) exists and can be opened; the cause if not."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"`{name}` file {path} does not exist") from None
    except OSError as exc:
        _fail(name, path, f"cannot be read: {exc.strerror or exc}", exc)
    if stat.S_ISDIR(st.st_mode):
        return path
    if not stat.S_ISREG(st.st_mode):
        _fail(name, path, "is not a regular file (a pipe, socket or device)")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        _fail(name, path, f"cannot be read: {exc.strerror or exc}", exc)
    return path


def _native(arr):
    """``arr`` in native byte order (big-endian files are accepted, values unchanged)."""
    if arr.dtype.byteorder not in ("=", "|") and not arr.dtype.isnative:
        return arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _refuse_objects(dtype, name, path, key=None):
    if dtype.hasobject:
        where = "" if key is None else f"array {key!r}: "
        _fail(name, path, f"{where}object arrays are refused (they would need unpickling)")


class _DuplicateKey(ValueError):
    """A JSON object with one key twice."""


def _json_object(text):
    """``json.loads`` that refuses an object with one key twice (the plain parse keeps the
    last silently): :class:`_DuplicateKey` naming the key (and both values when they are
    names, as in an index's weight map)."""
    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                both = (f" ({out[k]!r} and {v!r})" if isinstance(v, str) and
                        isinstance(out[k], str) else "")
                raise _DuplicateKey(f"{k!r} appears twice{both}")
            out[k] = v
        return out

    return json.loads(text, object_pairs_hook=pairs)


def _check_shape(shape, name, path, key):
    """A header's shape is a tuple of non-negative integers (NumPy would read ``(-3, 2)``
    from an .npz member as ``(3, 2)``)."""
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        where = "" if key is None else f"array {key!r}: "
        _fail(name, path, f"{where}the header claims shape {shape}, not a shape (dimensions "
                          "must be non-negative integers; corrupt file)")


def _npy_member(zf, info, name, path, key):
    """Read one .npy member of an .npz after checking its header against its size."""
    fmt = np.lib.format
    with zf.open(info) as fh:
        try:
            version = fmt.read_magic(fh)
            reader = fmt.read_array_header_1_0 if version == (1, 0) else (
                fmt.read_array_header_2_0)
            shape, fortran, dtype = reader(fh)
        except _BAD_FILE as exc:
            _fail(name, path, f"array {key!r} has a malformed .npy header: {exc}", exc)
        _refuse_objects(dtype, name, path, key)
        _check_shape(shape, name, path, key)
        need = math.prod(shape) * dtype.itemsize
        have = info.file_size - fh.tell()
        if need > have:
            _fail(name, path, f"array {key!r}: header claims shape {shape} {dtype} "
                              f"({need} bytes) but the member holds {have} bytes "
                              "(truncated or corrupt)")
        try:
            data = fh.read(need)
        except _BAD_FILE as exc:
            _fail(name, path, f"array {key!r} cannot be read (corrupt archive): {exc}", exc)
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return _native(arr)


def _open_npz(path, name):
    try:
        zf = zipfile.ZipFile(path)
    except _BAD_FILE as exc:
        _fail(name, path, f"is not a readable .npz file (malformed or truncated, not a zip "
                          f"archive: {exc})", exc)
    members = {}
    for info in zf.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in members:
            _fail(name, path, f"holds two members named {members[key].filename!r} and "
                              f"{info.filename!r} (array {key!r}); which one is meant is "
                              "ambiguous")
        members[key] = info

    def get(key):
        return _npy_member(zf, members[key], name, path, key)

    return zf, list(members), get


def _read_npy(path, name):
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        _fail(name, path, f"is not a .npy file (it starts with {magic!r}, not the .npy magic "
                          "string)")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except _BAD_FILE as exc:
        msg = str(exc)
        if "allow_pickle" in msg or "object" in msg:
            _fail(name, path, "object arrays are refused (they would need unpickling)", exc)
        if "mmap length" in msg or "larger than" in msg or "cannot mmap" in msg:
            msg = "the header claims more data than the file holds (truncated or corrupt)"
        _fail(name, path, f"is not a readable .npy file: {msg}", exc)
    return _native(arr)


def _safetensors_header(path, name, describe=None):
    """``(data_start, header)`` of a .safetensors file, validated by the safetensors package.
    A tensor whose data runs past the end of the file (truncated) is named first, as the GGUF
    reader names one: ``describe(key)`` gives its ``(tensor, field)`` (a checkpoint's module
    and part; default ``(key, "data")``)."""
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise ImportError(f"reading .safetensors ({path}) needs the optional package "
                          f"safetensors: {EXTRA_IO}") from exc
    # The safetensors package keeps the last of two entries with one name and validates only
    # that one: look for a repeated name first, so that the error names the real problem.
    parsed = _raw_st_header(path, name)
    if parsed is not None:
        _st_truncated(path, name, *parsed, describe)
    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except Exception as exc:  # SafetensorError derives from Exception only
        _fail(name, path, f"is not a readable .safetensors file: {exc}", exc)
    if parsed is None:  # the package read what the plain parse could not: say why
        parsed = _raw_st_header(path, name, strict=True)
    n, header = parsed
    header.pop("__metadata__", None)
    return 8 + n, header


def _st_truncated(path, name, n, header, describe=None):
    """Fail naming the first tensor (lowest offset) whose data ends past the end of the file,
    with its field, the byte its data ends at and the file's size ("(5680 > 5180 bytes)");
    nothing when every tensor fits."""
    size = os.path.getsize(path)
    start = 8 + n
    worst = None
    for key, meta in header.items():
        offs = meta.get("data_offsets") if isinstance(meta, dict) else None
        if key == "__metadata__" or not (isinstance(offs, list) and len(offs) == 2 and
                                         all(isinstance(o, int) for o in offs)):
            continue  # malformed entries are the safetensors package's to report
        if start + offs[1] > size and (worst is None or offs[0] < worst[1][0]):
            worst = (key, offs)
    if worst is None:
        return
    key, (_, hi) = worst
    tensor, field = (key, "data") if describe is None else describe(key)
    # (short: with the CLI's prefix, the path and a checkpoint's module name, one line of
    # at most 200 characters for paths of about 50)
    _fail(name, path, f"is not a readable .safetensors file: truncated in tensor {tensor!r}, "
                      f"field {field!r} ({start + hi} > {size} bytes)")


#: The safetensors package's own limit on a JSON header (100 MB): larger is refused unread.
_ST_HEADER_MAX = 100_000_000


def _raw_st_header(path, name, strict=False):
    """``(n, header)``: the length and JSON header of a .safetensors file, parsed without the
    safetensors package; an error naming the name a header repeats. None when the header is
    not a JSON object within the file (``strict``: raise), which the package then reports in
    its words."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than its 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > min(_ST_HEADER_MAX, os.fstat(fh.fileno()).st_size - 8):
                raise ValueError(f"header length {n} exceeds the file")
            raw = fh.read(n)
        header = _json_object(raw)
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except _DuplicateKey as exc:
        _fail(name, path, f"its JSON header repeats a name: {exc}; which one is meant is "
                          "ambiguous", exc)
    except (ValueError, UnicodeDecodeError) as exc:
        if strict:
            _fail(name, path, f"is not a readable .safetensors file: {exc}", exc)
        return None
    return n, header


def _st_dtype(code, key, name, path):
    if code in _ST_NUMPY:
        return np.dtype(_ST_NUMPY[code])
    if code in _ST_ML:
        try:
            import ml_dtypes
        except ImportError as exc:
            raise ImportError(f"`{name}` file {path}: tensor {key!r} is {code}; reading it "
                              f"needs the optional package ml_dtypes: {EXTRA_IO}") from exc
        dt = getattr(ml_dtypes, _ST_ML[code], None)
        if dt is None:
            raise UnsupportedDtype(f"{code} needs a newer ml_dtypes")
        return np.dtype(dt)
    raise UnsupportedDtype(f"{code} has no NumPy dtype")


def _open_safetensors(path, name):
    start, header = _safetensors_header(path, name)

    def get(key):
        meta = header[key]
        dtype = _st_dtype(meta["dtype"], key, name, path)
        shape = tuple(meta["shape"])
        lo, hi = meta["data_offsets"]
        if math.prod(shape) == 0:
            return np.empty(shape, dtype)
        return np.memmap(path, dtype=dtype, mode="r", offset=start + lo, shape=shape)

    return list(header), get


def _shards(path, name):
    """``[(shard_path, keys or None)]`` for an index file or a folder of shards."""
    if path.is_dir():
        index = path / "model.safetensors.index.json"
        if index.is_file():
            return _shards(index, name)
        files = sorted(p for p in path.iterdir() if p.suffix == ".safetensors")
        if not files:
            _fail(name, path, "is a directory without .safetensors shards or a "
                              "model.safetensors.index.json; pass a file")
        return [(p, None) for p in files]
    try:
        index = _json_object(path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except _DuplicateKey as exc:
        _fail(name, path, f"names a tensor twice: {exc}; which one is meant is ambiguous", exc)
    except (ValueError, KeyError, TypeError) as exc:
        _fail(name, path, f"is not a safetensors index (a JSON object with a 'weight_map'): "
                          f"{exc}", exc)
    order = {}
    for key, shard in weight_map.items():
        order.setdefault(shard, []).append(key)
    out = []
    for shard, keys in order.items():
        if not isinstance(shard, str):
            _fail(name, path, f"the shard of {keys[0]!r} is {shard!r}, not a file name")
        parts = Path(shard.replace("\\", "/"))
        if parts.is_absolute() or ".." in parts.parts or parts.drive:
            _fail(name, path, f"shard path {shard!r} (holding {keys[0]!r}) leaves the index's "
                              "folder; shard paths must be relative and without '..'")
        sp = path.parent / shard
        if not sp.is_file():
            _fail(name, path, f"shard {shard} (holding {keys[0]!r}) does not exist")
        out.append((sp, keys))
    return out


@contextlib.contextmanager
def open_tensors(path, name="input"):
    """Open a tensor file lazily: yields ``(keys, get)`` where ``get(key)`` reads one array.

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.npz``, ``.safetensors``, a ``model.safetensors.index.json`` or a folder of
        ``.safetensors`` shards (read as one model, shard by shard).
    name : str
        The argument named in error messages.

    Yields
    ------
    keys : list of str
        Tensor names in file order (a ``.npy`` is named by its file stem).
    get : callable
        ``get(key)`` → the array in native byte order, memory-mapped where the format
        allows (``.npy``, ``.safetensors``); bf16/fp8 tensors keep their ``ml_dtypes`` dtype.
        Raises :class:`UnsupportedDtype` for tensors without a NumPy dtype (fp4, fp6).

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        Missing file; malformed, truncated or pickled content (the message names the file
        and the cause); a missing optional package (the message names the extra).
    """
    path = _check_readable(path, name)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".json":
        shards = _shards(path, name)
        current = {}

        def get_sharded(key):
            shard = owner[key]
            if current.get("path") != shard:
                current.update(path=shard, get=_open_safetensors(shard, name)[1])
            return current["get"](key)

        keys, owner = [], {}
        for sp, listed in shards:
            held, _ = _open_safetensors(sp, name)
            missing = [k for k in listed or [] if k not in held]
            if missing:
                _fail(name, path, f"the index puts {missing[0]!r} in {sp.name}, which does "
                                  "not hold it")
            for k in (held if listed is None else [k for k in held if k in set(listed)]):
                if k in owner:
                    _fail(name, path, f"tensor {k!r} is in two shards, {owner[k]} and {sp}; "
                                      "which one is meant is ambiguous")
                owner[k] = sp
                keys.append(k)
        yield keys, get_sharded
        return
    if suffix == ".safetensors":
        keys, get = _open_safetensors(path, name)
        yield keys, get
        return
    if suffix == ".npz":
        zf, keys, get = _open_npz(path, name)
        with zf:
            yield keys, get
        return
    if suffix == ".npy":
        arr = _read_npy(path, name)
        _refuse_objects(arr.dtype, name, path)
        yield [path.stem], lambda key: arr
        return
    _fail(name, path, "must be .npy, .npz, .safetensors, a model.safetensors.index.json or "
                      f"a folder of shards; got {suffix or 'no suffix'!r}")


def is_low_precision(dtype):
    """True for the ``ml_dtypes`` floats (bf16, fp8), which NumPy cannot compute with."""
    return np.dtype(dtype).name in LOW_PRECISION


def as_float(arr):
    """``ml_dtypes`` floats (bf16, fp8) as float32 (exact); other arrays unchanged."""
    if is_low_precision(arr.dtype):
        return arr.astype(np.float32)
    return arr


def load_npz(path, name="input"):
    """Every array of a file into a dict (a .npy's array is named ``array``), in memory."""
    with open_tensors(path, name) as (keys, get):
        if Path(path).suffix.lower() == ".npy":
            return {"array": np.array(get(keys[0]))}
        return {k: np.array(get(k)) for k in keys}


def load_array(path, name="input"):
    """One array from a .npy (or the only array of an .npz/.safetensors), in memory.

    bf16/fp8 tensors come back as float32 (their values are exact in float32).
    """
    with open_tensors(path, name) as (keys, get):
        if len(keys) != 1:
            raise ValueError(f"`{name}` file {path} holds {len(keys)} arrays; expected one")
        return as_float(np.array(get(keys[0])))
