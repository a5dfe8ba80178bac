import numpy as np
import pytest

from vecq_ref import io


def test_atomic_write_and_refusal(tmp_path):
    p = tmp_path / "a.txt"
    io.write_text(p, "one")
    with pytest.raises(FileExistsError, match="--force"):
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
