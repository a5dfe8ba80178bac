"""A corpus of broken input files, built fresh in a folder for the CLI-contract tests.

``make_corpus(folder)`` returns ``{item: (path, needle)}``: every command that reads ``path``
must exit 2 with one line on stderr that names ``path`` and contains ``needle`` (the cause).
Items that cannot be made honestly here (an unreadable file when running as root, a FIFO
where the OS has none) are left out; ``skipped_items`` says which and why.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile

import numpy as np


def _safetensors(path, header, data=b"", length=None):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    n = len(raw) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + raw + data)
    return path


def _npy_with_header(path, old, new, arr):
    """``arr`` saved as .npy with ``old`` replaced by ``new`` in its header (same length)."""
    np.save(path, arr)
    raw = path.read_bytes()
    start = raw.index(b"{")
    end = raw.index(b"\n", start)
    header = raw[start:end].decode("latin1")
    patched = header.rstrip().replace(old, new)
    assert patched != header.rstrip() and len(patched) <= len(header)
    path.write_bytes(raw[:start] + patched.ljust(len(header)).encode("latin1") + raw[end:])
    return path


def _npz_member(path, member_bytes, pairs):
    """An .npz with one array ``w`` (with ``pairs``, also ``w.q``: a pair ``verify`` reads)
    made of ``member_bytes``."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("w", "w.q") if pairs else ("w",):
            zf.writestr(f"{name}.npy", member_bytes)
    return path


skipped_items = {}


def make_corpus(folder, pairs=False):
    """The corpus in ``folder``; with ``pairs`` the .npz items hold ``w`` and ``w.q``."""
    folder.mkdir(parents=True, exist_ok=True)
    good = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    items = {}

    p = folder / "truncated.npy"
    np.save(p, good)
    p.write_bytes(p.read_bytes()[:-10])
    items["truncated_npy"] = (p, "more data than the file holds")

    p = folder / "header_garbage.npy"
    np.save(p, good)
    raw = p.read_bytes()
    p.write_bytes(raw[:10] + b"{'descr': <f4', 'fortran_order'" + raw[41:])
    items["corrupt_npy_header"] = (p, "not a readable .npy file")

    items["huge_shape_npy"] = (_npy_with_header(folder / "huge.npy", "(3, 4)", "(9999999999,)",
                                                good), "more data than the file holds")

    p = folder / "text.npy"
    p.write_text("1 2 3\n")
    items["not_npy"] = (p, "not the .npy magic string")

    p = folder / "empty.npy"
    p.write_bytes(b"")
    items["empty_file"] = (p, "not the .npy magic string")

    p = folder / "objects.npy"
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    items["pickled_npy"] = (p, "object arrays are refused")

    p = folder / "truncated.npz"
    np.savez(p, w=good, v=good)
    p.write_bytes(p.read_bytes()[:200])
    items["truncated_npz"] = (p, "not a readable .npz file")

    member = (folder / "huge.npy").read_bytes()
    items["huge_shape_npz"] = (_npz_member(folder / "huge.npz", member, pairs),
                               "header claims shape")

    items["corrupt_npz_header"] = (
        _npz_member(folder / "badheader.npz", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}  \n",
                    pairs),
        "malformed .npy header")

    p = folder / "objects.npz"
    np.savez(p, **{k: np.array([object()]) for k in (("w", "w.q") if pairs else ("w",))})
    items["pickled_npz"] = (p, "object arrays are refused")

    p = folder / "none.npz"
    np.savez(p)
    items["empty_npz"] = (p, "holds 0 arrays")

    ok = {"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}}
    items["st_header_length"] = (
        _safetensors(folder / "hlen.safetensors", ok, good.tobytes(), length=1 << 40),
        "not a readable .safetensors file")
    items["st_header_past_end"] = (
        _safetensors(folder / "hend.safetensors", ok, good.tobytes(), length=4096),
        "not a readable .safetensors file")
    items["st_offsets_past_end"] = (
        _safetensors(folder / "offsets.safetensors",
                     {"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}},
                     good.tobytes()[:24]), "not a readable .safetensors file")
    items["st_unknown_dtype"] = (
        _safetensors(folder / "dtype.safetensors",
                     {"w": {"dtype": "Q7", "shape": [3, 4], "data_offsets": [0, 48]}},
                     good.tobytes()), "Q7")
    p = folder / "junk.safetensors"
    p.write_bytes(b"\xff" * 5)
    items["st_too_short"] = (p, "not a readable .safetensors file")

    p = folder / "index.json"
    p.write_text("{not json")
    items["index_not_json"] = (p, "not a safetensors index")
    p = folder / "shards" / "model.safetensors.index.json"
    p.parent.mkdir()
    p.write_text(json.dumps({"weight_map": {"w": "model-00001-of-00002.safetensors"}}))
    items["index_missing_shard"] = (p, "model-00001-of-00002.safetensors")
    p = folder / "outside" / "model.safetensors.index.json"
    p.parent.mkdir()
    p.write_text(json.dumps({"weight_map": {"w": "../hlen.safetensors"}}))
    items["index_shard_outside_folder"] = (p, "leaves the index's folder")

    p = folder / "a_folder"
    p.mkdir()
    items["directory"] = (p, "is a directory")

    items["missing"] = (folder / "missing.npy", "does not exist")
    p = folder / "weights.txt"
    p.write_text("1 2 3")
    items["wrong_suffix"] = (p, "must be .npy, .npz, .safetensors")

    # Unreadable whoever runs the tests (root included): a path that goes through a file.
    items["path_through_a_file"] = (folder / "text.npy" / "w.npy", "Not a directory")
    if hasattr(os, "mkfifo"):
        p = folder / "pipe.npy"
        os.mkfifo(p)
        items["fifo"] = (p, "not a regular file")
    else:  # pragma: no cover
        skipped_items["fifo"] = "no os.mkfifo on this system"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        p = folder / "secret.npy"
        np.save(p, good)
        p.chmod(0)
        items["unreadable"] = (p, "Permission denied")
    else:
        skipped_items["unreadable"] = "running as root: permissions do not stop root reading"
    return items
