import json
import os
import stat
import zipfile

import numpy as np
import pytest

from vecq_ref import io


def test_atomic_write_and_refusal(tmp_path):
    p = tmp_path / "a.txt"
    io.write_text(p, "one")
    with pytest.raises(FileExistsError, match=r"pass force=True to overwrite it$"):
        io.write_text(p, "two")
    assert p.read_text() == "one"
    io.write_text(p, "two", force=True)
    assert p.read_text() == "two"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.txt"]  # no temporary left


def test_failed_write_leaves_nothing(tmp_path):
    p = tmp_path / "b.npz"
    def write_then_fail():
        with io.atomic_path(p) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert list(tmp_path.iterdir()) == []


def test_npz_roundtrip_and_single_array(tmp_path):
    io.save_npz(tmp_path / "x.npz", {"a": np.arange(3), "b": np.ones(2)})
    got = io.load_npz(tmp_path / "x.npz")
    assert got["a"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="holds 2 arrays"):
        io.load_array(tmp_path / "x.npz")
    io.save_npz(tmp_path / "y.npz", {"w": np.ones(2)})
    assert io.load_array(tmp_path / "y.npz").tolist() == [1.0, 1.0]


def test_truncated_and_pickled_files_are_refused(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(100.0))
    data = (tmp_path / "w.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:90])
    with pytest.raises(ValueError, match="not"):
        io.load_array(tmp_path / "t.npy")
    np.save(tmp_path / "o.npy", np.array([object()]), allow_pickle=True)
    with pytest.raises(ValueError, match="object arrays are refused"):
        io.load_array(tmp_path / "o.npy")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not a readable"):
        io.load_npz(tmp_path / "junk.npz")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_keep_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        io.write_text(tmp_path / "a.txt", "x")
        io.save_npz(tmp_path / "b.npz", {"w": np.ones(2)})
        with open(tmp_path / "plain.txt", "w") as fh:  # what any Unix tool would get
            fh.write("x")
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == want
    for name in ("a.txt", "b.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want


def test_an_interrupt_leaves_only_complete_files(tmp_path):
    p = tmp_path / "c.npz"
    io.save_npz(p, {"w": np.arange(3)})

    def interrupted_write():
        with io.atomic_path(p, force=True) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert [x.name for x in tmp_path.iterdir()] == ["c.npz"]
    assert io.load_npz(p)["w"].tolist() == [0, 1, 2]


def test_big_endian_and_fortran_arrays_are_read_with_their_values(tmp_path):
    w = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "be.npy", w.astype(">f8"))
    np.save(tmp_path / "f.npy", np.asfortranarray(w))
    np.savez(tmp_path / "be.npz", w=w.astype(">f4"))
    for name in ("be.npy", "f.npy", "be.npz"):
        got = io.load_array(tmp_path / name)
        assert got.dtype.isnative and np.array_equal(got, w)


def test_a_huge_shape_in_a_header_is_refused_before_allocating(tmp_path):
    np.save(tmp_path / "w.npy", np.ones(3))
    raw = (tmp_path / "w.npy").read_bytes()
    end = raw.index(b"\n")
    head = raw[10:end].decode()
    patched = head.rstrip().replace("(3,)", "(1000000000000,)").ljust(len(head))
    assert len(patched) == len(head)  # the header's padding absorbs the longer shape
    raw = raw[:10] + patched.encode() + raw[end:]
    (tmp_path / "huge.npy").write_bytes(raw)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("w.npy", raw)
    with pytest.raises(ValueError, match=r"claims shape \(1000000000000,\)"):
        io.load_npz(tmp_path / "huge.npz")
    with pytest.raises(ValueError, match="more data than the file holds"):
        io.load_array(tmp_path / "huge.npy")


def test_a_sharded_checkpoint_reads_as_one_file(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"a": np.ones((2, 2), np.float32)}, str(tmp_path / "s1.safetensors"))
    st.save_file({"b": np.zeros(3, np.float32)}, str(tmp_path / "s2.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"b": "s2.safetensors", "a": "s1.safetensors"}}))
    for path in (tmp_path, tmp_path / "model.safetensors.index.json"):
        got = io.load_npz(path)
        assert set(got) == {"a", "b"} and got["a"].tolist() == [[1, 1], [1, 1]]


@pytest.mark.parametrize("shard", ["../outside.safetensors", "sub/../../outside.safetensors",
                                   "/tmp/outside.safetensors", "..\\outside.safetensors"])
def test_an_index_cannot_point_outside_its_folder(tmp_path, shard):
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"a": np.ones((2, 2), np.float32)}, str(tmp_path / "outside.safetensors"))
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": shard}}))
    for path in (index, folder):
        with pytest.raises(ValueError, match="leaves the index's folder") as info:
            io.load_npz(path)
        assert str(index) in str(info.value) and repr(shard) in str(info.value)
    index.write_text(json.dumps({"weight_map": {"a": 3}}))
    with pytest.raises(ValueError, match="not a file name"):
        io.load_npz(index)


def test_is_whole_tells_complete_files_from_cut_ones(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1])
    files = {"a.json": None, "b.npz": None, "c.npy": None, "d.png": "png", "e.pdf": "pdf",
             "f.txt": None}
    io.write_text(tmp_path / "a.json", '{"x": [1, 2, 3]}')
    io.save_npz(tmp_path / "b.npz", {"w": np.arange(100.0)})
    np.save(tmp_path / "c.npy", np.arange(100.0))
    fig.savefig(tmp_path / "d.png", format="png")
    fig.savefig(tmp_path / "e.pdf", format="pdf")
    (tmp_path / "f.txt").write_text("text")
    for name in files:
        p = tmp_path / name
        assert io.is_whole(p), name
        raw = p.read_bytes()
        p.write_bytes(raw[: len(raw) * 2 // 3] if name != "f.txt" else b"")
        assert not io.is_whole(p), name
    assert not io.is_whole(tmp_path / "missing.json")
    assert not io.is_whole(tmp_path)


def test_compressed_npz_and_unicode_arrays_are_read(tmp_path):
    w = np.arange(30.0).reshape(5, 6)
    np.savez_compressed(tmp_path / "c.npz", w=w, config=np.asarray('{"a": 1}'))
    got = io.load_npz(tmp_path / "c.npz")
    assert np.array_equal(got["w"], w) and str(got["config"]) == '{"a": 1}'


# --- names that appear twice, shapes that are not shapes (issue 20) -------------------------

def _safetensors_bytes(header_json, data):
    """A .safetensors file from its header text as given (keys may repeat) and its data."""
    import struct

    text = header_json.encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def test_a_safetensors_header_naming_a_tensor_twice_is_refused(tmp_path):
    pytest.importorskip("safetensors")
    # Both entries are valid on their own, so the safetensors package accepts the file and
    # keeps the second (int32 1065353216, the bits of 1.0f): the first would be lost.
    entry = '"w": {{"dtype": "{}", "shape": [1], "data_offsets": [0, 4]}}'
    header = "{" + entry.format("F32") + ", " + entry.format("I32") + "}"
    path = tmp_path / "dup.safetensors"
    path.write_bytes(_safetensors_bytes(header, np.float32(1.0).tobytes()))
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert list(f.keys()) == ["w"] and f.get_tensor("w").tolist() == [1065353216]
    with pytest.raises(ValueError, match=r"repeats a name: 'w' appears twice") as info:
        io.load_npz(path)
    assert str(path) in str(info.value)
    # One entry is read as before.
    path.write_bytes(_safetensors_bytes("{" + entry.format("F32") + "}",
                                        np.float32(1.0).tobytes()))
    assert io.load_npz(path)["w"].tolist() == [1.0]


def test_a_repeated_name_is_named_before_the_safetensors_package_reads(tmp_path):
    pytest.importorskip("safetensors")
    # The surviving (second) entry's shape [1] does not fill its 8 bytes: the package alone
    # says "invalid offset"; the first entry is valid. The problem is the repeated name.
    first = '"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
    second = '"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}'
    path = tmp_path / "dup.safetensors"
    path.write_bytes(_safetensors_bytes("{" + first + ", " + second + "}",
                                        np.float32([1.0, 2.0]).tobytes()))
    from safetensors import safe_open

    with pytest.raises(Exception, match="offset") as info, safe_open(str(path), "numpy"):
        pass
    assert "twice" not in str(info.value)
    with pytest.raises(ValueError, match=r"repeats a name: 'w' appears twice"):
        io.load_npz(path)
    # A header the plain parse cannot read (its length beyond the file) is still the
    # package's "not a readable .safetensors file".
    path.write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(ValueError, match="is not a readable .safetensors file"):
        io.load_npz(path)


def _two_shards_holding_w(folder):
    st = pytest.importorskip("safetensors.numpy")
    folder.mkdir()
    st.save_file({"w": np.full((2, 2), 1.0, np.float32)}, str(folder / "a.safetensors"))
    st.save_file({"w": np.full((2, 2), 2.0, np.float32),
                  "b": np.zeros(2, np.float32)}, str(folder / "b.safetensors"))
    return folder


def test_a_folder_whose_shards_both_hold_a_tensor_is_refused_naming_both(tmp_path):
    folder = _two_shards_holding_w(tmp_path / "m")
    with pytest.raises(ValueError, match=r"tensor 'w' is in two shards") as info:
        io.load_npz(folder)
    msg = str(info.value)
    assert str(folder / "a.safetensors") in msg and str(folder / "b.safetensors") in msg
    # With an index the index decides which shard holds each name: no ambiguity.
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"w": "a.safetensors", "b": "b.safetensors"}}))
    got = io.load_npz(folder)
    assert set(got) == {"w", "b"} and got["w"].tolist() == [[1, 1], [1, 1]]


def test_an_index_naming_a_tensor_twice_is_refused_naming_both_shards(tmp_path):
    folder = _two_shards_holding_w(tmp_path / "m")
    index = folder / "model.safetensors.index.json"
    # JSON text by hand: json.dumps cannot write a key twice; json.loads keeps the last.
    index.write_text('{"weight_map": {"w": "a.safetensors", "b": "b.safetensors", '
                     '"w": "b.safetensors"}}')
    assert json.loads(index.read_text())["weight_map"]["w"] == "b.safetensors"
    for path in (index, folder):
        with pytest.raises(ValueError, match=r"names a tensor twice: 'w' appears twice "
                                             r"\('a.safetensors' and 'b.safetensors'\)") as info:
            io.load_npz(path)
        assert str(index) in str(info.value)


def _npy_bytes_with_shape(arr, shape_text):
    """The .npy bytes of ``arr`` with the shape in its header replaced by ``shape_text``."""
    buf = __import__("io").BytesIO()
    np.save(buf, arr)
    raw = buf.getvalue()
    end = raw.index(b"\n")
    head = raw[10:end].decode()
    patched = head.rstrip().replace(str(arr.shape), shape_text).ljust(len(head))
    assert len(patched) == len(head) and shape_text in patched
    return raw[:10] + patched.encode() + raw[end:]


@pytest.mark.parametrize("shape_text", ["(-3, 2)", "(3, -2)", "(-6,)"])
def test_an_npz_member_with_a_negative_shape_is_refused_naming_file_and_member(tmp_path,
                                                                              shape_text):
    raw = _npy_bytes_with_shape(np.arange(6.0).reshape(3, 2), shape_text)
    path = tmp_path / "neg.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.npy", _npy_bytes_with_shape(np.arange(6.0).reshape(3, 2), "(2, 3)"))
        zf.writestr("w.npy", raw)
    with io.open_tensors(path) as (keys, get):
        assert keys == ["ok", "w"] and get("ok").shape == (2, 3)
        with pytest.raises(ValueError, match=r"array 'w': the header claims shape "
                                             r"\(.*-.*\), not a shape") as info:
            get("w")
    assert str(path) in str(info.value)
    (tmp_path / "neg.npy").write_bytes(raw)
    with pytest.raises(ValueError, match="negative dimensions") as info:
        io.load_array(tmp_path / "neg.npy")
    assert str(tmp_path / "neg.npy") in str(info.value)


def test_an_npz_with_two_members_of_one_name_is_refused(tmp_path):
    path = tmp_path / "two.npz"
    one = _npy_bytes_with_shape(np.arange(6.0).reshape(3, 2), "(2, 3)")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", one)
        zf.writestr("w", one)  # the key of both is "w"
    with pytest.raises(ValueError, match=r"two members named 'w.npy' and 'w' \(array 'w'\)"):
        io.load_npz(path)


# --- the output path: links and unwritable folders (issue 20) -------------------------------

@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_dangling_symlink_is_refused_then_replaced_not_written_through(tmp_path):
    link = tmp_path / "out.txt"
    target = tmp_path / "gone" / "target.txt"  # missing: the link dangles
    os.symlink(target, link)
    with pytest.raises(FileExistsError, match=r"out\.txt is a symbolic link to a missing file "
                                              r"\(.*target\.txt\); pass force=True"):
        io.write_text(link, "one")
    assert link.is_symlink()  # left as it was
    io.write_text(link, "two", force=True)
    assert not link.is_symlink() and link.read_text() == "two"  # the link itself replaced
    assert not target.parent.exists()  # nothing written through it


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_symlink_to_a_file_is_replaced_with_force_and_its_target_kept(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    link = tmp_path / "out.txt"
    os.symlink(target, link)
    with pytest.raises(FileExistsError, match="exists; pass force=True"):
        io.write_text(link, "new")
    io.write_text(link, "new", force=True)
    assert not link.is_symlink() and link.read_text() == "new"
    assert target.read_text() == "keep me"


def test_an_unwritable_folder_names_the_file_asked_for(tmp_path, monkeypatch):
    # The temporary file's name (".q.npz.1a2b3c4d.tmp.npz") means nothing to the caller.
    def refuse(path, *args):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(io.os, "open", refuse)
    out = tmp_path / "q.txt"
    with pytest.raises(PermissionError) as info:
        io.write_text(out, "x")
    assert info.value.filename == str(out) and ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_folder_names_the_file_asked_for(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            io.write_text(folder / "q.txt", "x")
    finally:
        folder.chmod(0o755)
    assert info.value.filename == str(folder / "q.txt")


def test_a_failing_rename_names_the_file_asked_for(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(28, "No space left on device", str(src), None, str(dst))

    monkeypatch.setattr(io.os, "replace", full)
    out = tmp_path / "q.txt"
    with pytest.raises(OSError, match="No space left") as info:
        io.write_text(out, "x")
    assert info.value.filename == str(out) and info.value.filename2 is None
    assert list(tmp_path.iterdir()) == []  # the temporary file removed
