import json

import numpy as np
import pytest

from vecq_ref import quantize
from vecq_ref.check.report import model_report, open_tensors, tensor_stats
from vecq_ref.cli import main

st = pytest.importorskip("safetensors.numpy")


@pytest.fixture
def model(tmp_path, rng):
    tensors = {
        "conv1.weight": rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
        "conv1.bias": rng.standard_normal(4).astype(np.float32),
        "fc.weight": (0.1 * rng.standard_t(3, (6, 20))).astype(np.float32),
        "steps": np.arange(3, dtype=np.int64),
    }
    path = tmp_path / "model.safetensors"
    st.save_file(tensors, str(path))
    return path, tensors


def test_tensor_stats():
    s, k = tensor_stats([1.0, -1.0, 3.0, -3.0])
    assert s == pytest.approx(np.sqrt(5.0)) and k == pytest.approx(41 / 25 - 3)
    assert np.isnan(tensor_stats(np.ones(4))[1])


def test_report_on_a_small_safetensors_file(model):
    path, tensors = model
    rep = model_report(path, bits=[2, 3], method="param", progress=False)
    names = [(r["name"], r["bits"]) for r in rep.rows]
    assert names == [("conv1.weight", 2), ("conv1.weight", 3), ("fc.weight", 2),
                     ("fc.weight", 3)]
    assert {s["name"] for s in rep.skipped} == {"conv1.bias", "steps"}
    for r in rep.rows:
        w = tensors[r["name"]]
        assert r["shape"] == list(w.shape)
        assert r["relative_dql_param"] == quantize(w, r["bits"]).loss.relative_dql
        assert r["relative_dql_paper"] == pytest.approx(
            quantize(w, r["bits"], method="paper").loss.relative_dql, rel=1e-12)
        assert r["sigma"] == pytest.approx(np.std(w.astype(np.float64)), rel=1e-12)
        assert r["gap"] == 0.0 and r["time"] >= 0
    # totals are Σ DQL / Σ ‖w‖² over the tensors, per bitwidth
    for t in rep.totals:
        num = sum(quantize(tensors[n], t["bits"]).loss.dql for n in ("conv1.weight", "fc.weight"))
        den = sum(float(np.sum(tensors[n].astype(np.float64) ** 2))
                  for n in ("conv1.weight", "fc.weight"))
        assert t["relative_dql_param"] == pytest.approx(num / den, rel=1e-12)
        assert t["size"] == tensors["conv1.weight"].size + tensors["fc.weight"].size
    assert "TOTAL" in str(rep) and "conv1.weight" in str(rep)


def test_report_exact_per_channel_and_all_tensors(model):
    pytest.importorskip("vecq_ref.search")
    path, tensors = model
    rep = model_report(path, bits=[3], method="exact", axis=0, all_tensors=True,
                       progress=False)
    assert [r["name"] for r in rep.rows] == ["conv1.bias", "conv1.weight", "fc.weight"]
    for r in rep.rows:
        assert r["relative_dql_exact"] <= r["relative_dql_param"] * (1 + 1e-12)
        assert 0 <= r["gap_pct"] <= 100
    assert [s["name"] for s in rep.skipped] == ["steps"]


def test_report_reads_one_tensor_at_a_time(model, monkeypatch):
    import safetensors

    path, _ = model
    calls = []
    real = safetensors.safe_open

    class Spy:
        def __init__(self, *args, **kwargs):
            assert kwargs.get("framework") == "numpy"
            self.inner = real(*args, **kwargs)

        def __enter__(self):
            self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def keys(self):
            return self.inner.keys()

        def get_tensor(self, key):
            calls.append(key)
            return self.inner.get_tensor(key)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    with open_tensors(path) as (keys, get):
        assert calls == []
        get(keys[0])
        assert calls == [keys[0]]
    model_report(path, bits=[2], method="param", progress=False)
    assert sorted(calls[1:]) == sorted(keys)  # each tensor read exactly once


def test_report_npz_input_and_progress(tmp_path, rng, capsys):
    path = tmp_path / "w.npz"
    np.savez(path, a=rng.standard_normal((3, 5)), b=rng.standard_normal((2, 2)))
    pytest.importorskip("tqdm")
    rep = model_report(path, bits=[2], method="paper", progress=True)
    assert [r["name"] for r in rep.rows] == ["a", "b"]
    assert "tensor" in capsys.readouterr().err  # the tqdm bar


def test_cli_report_json_text_and_plot(model, tmp_path, capsys):
    path, _ = model
    assert main(["report", str(path), "--bits", "2-3", "--method", "param", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["rows"]) == 4 and [t["bits"] for t in payload["totals"]] == [2, 3]
    png = tmp_path / "r.png"
    assert main(["report", str(path), "--bits", "2", "--method", "param", "--plot",
                 str(png)]) == 0
    out = capsys.readouterr().out
    assert "gap_pct" in out and png.stat().st_size > 0
    assert main(["report", str(path), "--bits", "2", "--plot", str(png)]) == 2
    assert "--force" in capsys.readouterr().err


def test_cli_report_bad_files_exit_2(tmp_path, capsys, model):
    path, _ = model
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(path.read_bytes()[:-40])
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\xff" * 30)
    other = tmp_path / "w.txt"
    other.write_text("1 2 3")
    for f, needle in ((truncated, "malformed or truncated"), (garbage, "malformed"),
                      (other, "must be .safetensors, .npz or .npy"),
                      (tmp_path / "missing.npz", "does not exist")):
        assert main(["report", str(f), "--bits", "2", "--method", "param"]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_plot_returns_artists(model):
    from matplotlib.figure import Figure

    path, _ = model
    rep = model_report(path, bits=[2, 3], method="param", progress=False)
    ax = Figure().add_subplot()
    lines = rep.plot(ax)
    assert [ln.get_label() for ln in lines] == ["param", "paper"]
    assert ax.get_xlabel() == "bits"


def test_bfloat16_tensors_are_skipped_with_a_reason(tmp_path):
    import struct

    header = json.dumps({"a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]}})
    data = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32).tobytes()
    path = tmp_path / "bf.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * 8 + data)
    rep = model_report(path, bits=[2], method="param", progress=False)
    assert [r["name"] for r in rep.rows] == ["b"]
    assert rep.skipped[0]["name"] == "a" and "bfloat16" in rep.skipped[0]["why"]
