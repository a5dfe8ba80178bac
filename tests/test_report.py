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


def test_tensor_stats_block_by_block_match_the_one_shot_formula(rng, monkeypatch):
    import vecq_ref.check.report as R

    w = rng.standard_t(4, (37, 29))
    x = w.ravel()
    d = x - x.mean()
    sigma, kurt = np.sqrt(np.mean(d * d)), np.mean(d ** 4) / np.mean(d * d) ** 2 - 3
    monkeypatch.setattr(R, "_CHUNK", 100)  # 11 blocks, the last one partial
    s, k = tensor_stats(w)
    assert s == pytest.approx(sigma, rel=1e-12) and k == pytest.approx(kurt, rel=1e-12)
    assert R._moments(w)[4] == pytest.approx(float(np.sum(x * x)), rel=1e-13)


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
    import vecq_ref.io as vio

    path, _ = model
    calls = []
    real = np.memmap

    def spy(*args, **kwargs):
        calls.append(kwargs["offset"])
        return real(*args, **kwargs)

    monkeypatch.setattr(vio.np, "memmap", spy)
    with open_tensors(path) as (keys, get):
        assert calls == []  # opening reads headers only
        get(keys[0])
        assert len(calls) == 1
    model_report(path, bits=[2], method="param", progress=False)
    assert len(calls[1:]) == len(keys) == len(set(calls[1:]))  # each tensor mapped once


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
    for f, needle in ((truncated, "not a readable .safetensors file"),
                      (garbage, "not a readable .safetensors file"),
                      (other, "must be .npy, .npz, .safetensors"),
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
    assert [ln.get_label() for ln in lines] == ["VecQ-param", "VecQ-paper"]
    assert ax.get_xlabel() == "bits $k$"
    styles = {(ln.get_color(), ln.get_marker(), ln.get_linestyle()) for ln in lines}
    assert len(styles) == 2


def _write_safetensors(path, tensors):
    """A .safetensors file by hand: ``{name: (dtype code, shape, raw bytes)}``."""
    import struct

    header, blobs, offset = {}, [], 0
    for name, (code, shape, raw) in tensors.items():
        header[name] = {"dtype": code, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


def test_bf16_fp8_fp16_tensors_are_quantized_as_float32(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    # Values exact in every format (small dyadic numbers), so the float32 twin is the same.
    vals = np.array([[1.0, -2.0, 0.5, 3.0], [-0.25, 1.5, -1.0, 0.75]], dtype=np.float32)
    codes = {"bf": ("BF16", ml_dtypes.bfloat16), "e4": ("F8_E4M3", ml_dtypes.float8_e4m3fn),
             "e5": ("F8_E5M2", ml_dtypes.float8_e5m2), "h": ("F16", np.float16)}
    path = _write_safetensors(tmp_path / "lp.safetensors", {
        k: (code, vals.shape, vals.astype(dt).tobytes()) for k, (code, dt) in codes.items()})
    rep = model_report(path, bits=[2], method="param", progress=False)
    assert [r["name"] for r in rep.rows] == ["bf", "e4", "e5", "h"]
    assert [r["dtype"] for r in rep.rows] == ["bfloat16", "float8_e4m3fn", "float8_e5m2",
                                              "float16"]
    expected = quantize(vals, 2).loss.relative_dql
    assert all(r["relative_dql_param"] == expected for r in rep.rows)
    assert rep.skipped == []
    assert "bfloat16" in str(rep)


def test_tensors_that_cannot_be_quantized_are_skipped_by_name(tmp_path, rng):
    path = tmp_path / "m.npz"
    fc = rng.standard_normal((4, 6))
    np.savez(path, fc=fc, bad=np.array([[1, np.nan], [2, 3]]), inf=np.full((2, 2), np.inf),
             empty=np.zeros((0, 3)), ids=np.arange(6).reshape(2, 3),
             mask=np.ones((2, 2), bool), one=np.ones((1, 1)))
    rep = model_report(path, bits=[2], method="param", progress=False)
    assert [r["name"] for r in rep.rows] == ["fc"]
    why = {s["name"]: s["why"] for s in rep.skipped}
    assert why["bad"] == "1 non-finite values (NaN or Inf)"
    assert why["inf"] == "4 non-finite values (NaN or Inf)"
    assert why["empty"].startswith("empty")
    assert why["ids"].startswith("integer int64") and why["mask"].startswith("boolean")
    assert "single value" in why["one"]
    assert rep.totals[0]["relative_dql_param"] == pytest.approx(
        quantize(fc, 2).loss.relative_dql, rel=1e-12)  # only fc counts in the totals


def test_fp4_and_unknown_dtypes_are_skipped_with_the_reason(tmp_path):
    pytest.importorskip("ml_dtypes")
    path = _write_safetensors(tmp_path / "f4.safetensors", {
        "packed": ("F4", (4, 2), b"\x11" * 4),
        "w": ("F32", (2, 2), np.ones((2, 2), np.float32).tobytes())})
    rep = model_report(path, bits=[2], method="param", progress=False)
    assert [s["name"] for s in rep.skipped] == ["packed"]
    assert "F4" in rep.skipped[0]["why"]


def _shard(tmp_path, rng):
    """One model as a single file, as 2 shards with an index, as a folder of 2 shards."""
    from safetensors.numpy import save_file

    tensors = {"a.weight": rng.standard_normal((6, 8)).astype(np.float32),
               "a.bias": rng.standard_normal(6).astype(np.float32),
               "b.weight": rng.standard_normal((5, 6)).astype(np.float32),
               "c.weight": rng.standard_normal((3, 5)).astype(np.float32)}
    save_file(tensors, str(tmp_path / "one.safetensors"))
    folder = tmp_path / "sharded"
    folder.mkdir()
    parts = [["a.weight", "a.bias"], ["b.weight", "c.weight"]]
    weight_map = {}
    for i, keys in enumerate(parts, 1):
        name = f"model-{i:05d}-of-00002.safetensors"
        save_file({k: tensors[k] for k in keys}, str(folder / name))
        weight_map.update(dict.fromkeys(keys, name))
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return tensors, tmp_path / "one.safetensors", index, folder


def test_a_sharded_checkpoint_is_one_model(tmp_path, rng):
    tensors, one, index, folder = _shard(tmp_path, rng)
    reports = [model_report(p, bits=[2, 3], method="param", progress=False)
               for p in (one, index, folder)]
    rows = [[{k: v for k, v in r.items() if k != "time"} for r in rep.rows] for rep in reports]
    assert rows[0] == rows[1] == rows[2]
    assert {r["name"] for r in rows[0]} == {"a.weight", "b.weight", "c.weight"}
    assert all([s["name"] for s in rep.skipped] == ["a.bias"] for rep in reports)
    strip = [[{k: v for k, v in t.items() if k != "time"} for t in rep.totals]
             for rep in reports]
    assert strip[0] == strip[1] == strip[2]
    # a folder without the index reads its shards in name order
    (folder / "model.safetensors.index.json").unlink()
    rep = model_report(folder, bits=[2], method="param", progress=False)
    assert [r["name"] for r in rep.rows] == ["a.weight", "b.weight", "c.weight"]


def test_an_index_naming_a_tensor_its_shard_lacks_is_an_error(tmp_path, rng):
    _, _, index, _ = _shard(tmp_path, rng)
    data = json.loads(index.read_text())
    data["weight_map"]["ghost"] = "model-00001-of-00002.safetensors"
    index.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="'ghost' in model-00001-of-00002"):
        model_report(index, bits=[2], progress=False)


def _without_times(rep):
    d = json.loads(json.dumps(rep.as_dict()))  # a deep copy
    d.pop("seconds")
    for row in d["rows"] + d["totals"]:
        row.pop("time")
    return json.dumps(d, sort_keys=True)


@pytest.fixture
def many_tensors(tmp_path, rng):
    # Sizes that finish out of order on a pool (a big tensor before small ones), a tensor
    # run alone (≥ _ALONE after the monkeypatch below), skipped ones in between.
    tensors = {f"t{i:02d}.weight": rng.standard_normal(shape).astype(np.float32)
               for i, shape in enumerate([(64, 300), (2, 3), (40, 40), (7, 9, 5), (3, 1000),
                                          (5, 5), (30, 90), (2, 2)])}
    tensors["t03.bias"] = np.ones(7, np.float32)
    tensors["t05.ids"] = np.arange(4)
    path = tmp_path / "many.safetensors"
    st.save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("method", [
    pytest.param("exact", marks=pytest.mark.jit_only),
    pytest.param("alternating", marks=pytest.mark.jit_only), "param"])
def test_report_same_with_any_number_of_workers(many_tensors, monkeypatch, method):
    from vecq_ref.check import report as R

    monkeypatch.setattr(R, "_ALONE", 2000)  # the 64×300 and 3×1000 tensors run alone
    monkeypatch.setattr(R, "_INFLIGHT", 3000)  # and at most 3000 elements are in flight
    monkeypatch.setattr(R, "_concurrent_kernels_ok", lambda: True)  # the pool, JIT or not
    serial = model_report(many_tensors, bits=[2, 4], method=method, progress=False, workers=1)
    names = [r["name"] for r in serial.rows]
    assert names == sorted(names) and len(names) == 2 * 8
    for workers in (2, 3, 8):
        rep = model_report(many_tensors, bits=[2, 4], method=method, progress=False,
                           workers=workers)
        assert _without_times(rep) == _without_times(serial)


def test_report_runner_bounds_what_is_in_flight(monkeypatch):
    from vecq_ref.check import report as R

    monkeypatch.setattr(R, "_concurrent_kernels_ok", lambda: True)
    monkeypatch.setattr(R, "_INFLIGHT", 10)
    monkeypatch.setattr(R, "_ALONE", 8)
    seen, order = [], []

    def collect(key, result):
        order.append((key, result))

    with R._Runner(3) as run:
        for key, size in [("a", 4), ("b", 4), ("c", 4), ("skip", 0), ("big", 9), ("d", 2)]:
            work = None if key == "skip" else (lambda k=key: k.upper())
            run.submit(key, size, work, collect)
            seen.append((len(run.pending), sum(p[1] for p in run.pending)))
        run.drain()
    assert order == [("a", "A"), ("b", "B"), ("c", "C"), ("skip", None), ("big", "BIG"),
                     ("d", "D")]
    assert all(n <= 3 and busy <= 10 for n, busy in seen)
    assert seen[4] == (0, 0)  # the big one ran alone, after everything before it


def test_report_workers_is_checked(model):
    path, _ = model
    with pytest.raises(ValueError, match="workers"):
        model_report(path, bits=[2], method="param", progress=False, workers=0)
    with pytest.raises(TypeError, match="workers"):
        model_report(path, bits=[2], method="param", progress=False, workers=1.5)


@pytest.mark.parametrize(("arrays", "why"), [
    ({"steps": np.arange(6).reshape(2, 3), "mask": np.ones((2, 2), bool)}, "integer"),
    ({"bad": np.full((2, 3), np.nan)}, "non-finite"),
    ({"bias": np.ones(4)}, "1-D"),
])
def test_cli_report_with_nothing_reportable_exits_2_saying_why(tmp_path, capsys, arrays, why):
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    assert main(["report", str(path), "--bits", "2", "--method", "param", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "nothing could be reported" in err
    assert why in err and all(name in err for name in arrays)


def _row(gap_pct, param, shape, method="exact"):
    other = param * (1 - gap_pct / 100)
    return {"name": "pooler", "shape": list(shape), "dtype": "float32", "bits": 4,
            "sigma": 0.03, "kurtosis": 0.1, "relative_dql_param": param,
            f"relative_dql_{method}": other, "relative_dql_paper": param,
            "gap": param - other, "gap_pct": gap_pct, "time": 0.1}


def test_gap_rounding_noise_is_printed_as_0_only_within_the_bound():
    from vecq_ref.check.report import ModelReport, _shown_gap_pct, gap_rounding_bound

    # The bound by hand: 4·n·ε·max(param, other) for n = 768·768, ε = 2**-52.
    n = 768 * 768
    assert gap_rounding_bound(n, 0.01, 0.009) == 4 * n * 2.0 ** -52 * 0.01
    # The trial's pooler row: -3.798e-13 % of 0.0095 is ~3.6e-17, far below ~5e-12.
    noise = _row(-3.798e-13, 0.0095, (768, 768))
    assert _shown_gap_pct(noise, "exact") == 0.0
    # A real difference (1e-4 %, i.e. 9.5e-9 absolute) is far above it: shown as computed,
    # and so are positive gaps and a noise-sized gap on a 2-element tensor (bound 1.7e-17).
    for r in (_row(-1e-4, 0.0095, (768, 768)), _row(3e-13, 0.0095, (768, 768)),
              _row(-3.798e-13, 0.0095, (1, 2))):
        assert _shown_gap_pct(r, "exact") == r["gap_pct"]
    rep = ModelReport("m.safetensors", [4], "exact", "midrise", None, [noise], [], [], 0.0)
    text = str(rep)
    assert "e-13" not in text and rep.as_dict()["rows"][0]["gap_pct"] == -3.798e-13


# --- issue 20: no silent loss, the ends of the float64 range, a failing cell ---------------


def test_cli_report_on_two_shards_holding_one_name_exits_2_naming_both(tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    st.save_file({"w": np.ones((2, 3), np.float32)}, str(folder / "a.safetensors"))
    st.save_file({"w": np.full((2, 3), 2.0, np.float32)}, str(folder / "b.safetensors"))
    # Before: the second shard's w was reported twice and the first never read.
    assert main(["report", str(folder), "--bits", "2", "--method", "param", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'w' is in two shards" in err
    assert str(folder / "a.safetensors") in err and str(folder / "b.safetensors") in err


_BASE = np.array([[3.0, -1.0], [2.0, 2.0]])


@pytest.mark.parametrize("e", [-1040, 1000])
def test_report_at_the_ends_of_the_float64_range(tmp_path, e):
    # w = 2**e·[[3, −1], [2, 2]] (≈ 9e-314, subnormal; ≈ 1e301). mean 1.5·2**e, deviations
    # [1.5, −2.5, 0.5, 0.5]·2**e, Σd² = 9·2**(2e): σ = 1.5·2**e (was 0 at 1e-310), kurtosis
    # (Σd⁴/4)/(9/4)² − 3 = (5.0625 + 39.0625 + 0.0625 + 0.0625)/4/5.0625 − 3 = −0.814...
    # param's relative DQL is that of the unscaled tensor (the same codes, α scaled), and
    # with one tensor the total is its row. At 2**1000 paper's 1e-7 is below σλ's last bit:
    # paper is param's expression with the released table; at 2**-1040 the 1e-7 is all of its
    # step: every code 0, v = ½, α·v = 1.5·2**e/(1 + 1e-7): relative DQL ½ (see
    # test_quantize). Near 1e300 the paper column used to stop the whole report.
    path = tmp_path / "m.npz"
    np.savez(path, w=np.ldexp(_BASE, e))
    rep = model_report(path, bits=[2, 4], method="param", progress=False)
    assert [r["bits"] for r in rep.rows] == [2, 4]
    for r, t in zip(rep.rows, rep.totals, strict=True):
        assert r["sigma"] == np.ldexp(1.5, e)
        assert r["kurtosis"] == pytest.approx((5.0625 + 39.0625 + 0.125) / 4 / 5.0625 - 3,
                                              rel=1e-12)
        want = quantize(_BASE, r["bits"]).loss.relative_dql
        assert r["relative_dql_param"] == pytest.approx(want, rel=1e-12) and want > 0
        if e < 0:
            assert r["relative_dql_paper"] == pytest.approx(0.5, rel=1e-12)
        else:
            assert r["relative_dql_paper"] == pytest.approx(
                quantize(_BASE, r["bits"], method="paper").loss.relative_dql, rel=1e-9)
        assert t["relative_dql_param"] == pytest.approx(r["relative_dql_param"], rel=1e-12)
        assert t["relative_dql_paper"] == pytest.approx(r["relative_dql_paper"], rel=1e-12)
    assert "error" not in str(rep)


def test_report_totals_across_tensors_at_both_ends_of_the_range(tmp_path, rng):
    # Σ DQL / Σ ‖w‖² over tensors 2**-1040, 1 and 2**1000 times their base: the 2**1000 one
    # outweighs the others by 2**2000, so every total is its row, to the last bits.
    mid = rng.standard_normal((4, 8))
    path = tmp_path / "m.npz"
    np.savez(path, tiny=np.ldexp(_BASE, -1040), mid=mid, huge=np.ldexp(mid, 1000))
    rep = model_report(path, bits=[3], method="exact", progress=False)
    huge = next(r for r in rep.rows if r["name"] == "huge")
    (t,) = rep.totals
    for m in ("param", "exact", "paper"):
        assert t[f"relative_dql_{m}"] == pytest.approx(huge[f"relative_dql_{m}"], rel=1e-12)
    # Without it the total is the 1-weighted mean of the other two: mid's, to 2**-2080.
    np.savez(path, tiny=np.ldexp(_BASE, -1040), mid=mid)
    rep = model_report(path, bits=[3], method="param", progress=False)
    row = next(r for r in rep.rows if r["name"] == "mid")
    assert rep.totals[0]["relative_dql_param"] == pytest.approx(row["relative_dql_param"],
                                                                rel=1e-12)


def test_a_failing_cell_does_not_stop_the_report(tmp_path, rng, monkeypatch, capsys):
    import vecq_ref.check.report as R

    real = R._quantize_loss

    def paper_fails_on_b(arr, bits, method="param", **kw):
        if method == "paper" and arr.shape == (3, 4):
            raise ValueError("`w` (dtype float32) quantizes to values beyond the float32 range")
        return real(arr, bits, method=method, **kw)

    monkeypatch.setattr(R, "_quantize_loss", paper_fails_on_b)
    path = tmp_path / "m.npz"
    a, b = rng.standard_normal((5, 6)), rng.standard_normal((3, 4))
    np.savez(path, a=a, b=b)
    rep = model_report(path, bits=[2], method="param", progress=False)
    ra, rb = rep.rows
    assert "errors" not in ra and ra["relative_dql_paper"] > 0
    assert rb["relative_dql_paper"] is None and "beyond the float32" in rb["errors"]["paper"]
    assert rb["relative_dql_param"] == quantize(b, 2).loss.relative_dql
    (t,) = rep.totals
    assert t["relative_dql_paper"] is None  # a total without b would not be b's model's
    assert t["relative_dql_param"] > 0
    text = str(rep)
    assert "error: paper on tensor 'b' at --bits 2: `w` (dtype float32)" in text
    assert main(["report", str(path), "--bits", "2", "--method", "param", "--quiet"]) == 0
    assert "error: paper on tensor 'b'" in capsys.readouterr().out


@pytest.mark.jit_only
def test_report_param_never_builds_the_values(tmp_path, rng, monkeypatch):
    # The tensor is memory-mapped (not traced); what the report allocates for param and
    # paper is one int8 code per weight (¼ of the float32 tensor) and σ's float64 blocks
    # (3 of _CHUNK elements: 24 MiB by default, 384 KiB here). Before, each of the two
    # methods built its int8 codes and float32 values: 1.25× the tensor.
    import tracemalloc

    import vecq_ref.check.report as R

    monkeypatch.setattr(R, "_CHUNK", 1 << 14)

    w = rng.standard_normal((256, 4096)).astype(np.float32)  # 4 MiB
    path = tmp_path / "w.npy"
    np.save(path, w)
    model_report(path, bits=[2], method="param", progress=False, workers=1)  # compile first
    tracemalloc.start()
    try:
        model_report(path, bits=[2, 4], method="param", progress=False, workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.3 * w.nbytes


def test_report_per_group_totals_and_scale(tmp_path):
    # Per group: each row is quantize(..., group_size=g)'s loss; the totals Σ DQL / Σ ‖w‖²;
    # weights near 1e-300 (a power of two below) give the same relative DQL (the working
    # scale), for a scale-free method and for param.
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((4, 16)), rng.standard_normal((2, 8))
    path = tmp_path / "g.npz"
    np.savez(path, a=a, b=b, tiny=np.ldexp(a, -1000))
    rep = model_report(path, bits=[2, 3], method="exact", group_size=8, progress=False)
    assert rep.group_size == 8 and "groups of 8" in str(rep).splitlines()[0]
    by = {(r["name"], r["bits"]): r for r in rep.rows}
    for k in (2, 3):
        qa, qb = (quantize(x, k, "exact", group_size=8) for x in (a, b))
        assert by["a", k]["relative_dql_exact"] == qa.loss.relative_dql
        assert by["tiny", k]["relative_dql_exact"] == qa.loss.relative_dql
        assert by["tiny", k]["relative_dql_param"] == by["a", k]["relative_dql_param"]
        total = [t for t in rep.totals if t["bits"] == k][0]
        # "tiny" adds 2^-2000 of a's sums: nothing at float64 precision.
        num = qa.loss.dql + qb.loss.dql
        den = np.sum(a * a) + np.sum(b * b)
        assert total["relative_dql_exact"] == pytest.approx(num / den, rel=1e-12)
    with pytest.raises(ValueError, match="`axis` must be None when `group_size`"):
        model_report(path, bits=[2], group_size=8, axis=0)
    assert model_report(path, bits=[2], method="param", group_size=16,
                        progress=False).skipped == [
        {"name": "b", "why": "last axis 8 of (2, 8) not a multiple of --group-size 16"}]


def test_report_on_another_level_set(tmp_path):
    # On a level set other than VecQ's own only --method is reported (param and paper exist
    # on midrise/midtread only); the working scale still holds (weights near 1e-300).
    rng = np.random.default_rng(8)
    a = rng.standard_normal((3, 32))
    path = tmp_path / "c.npz"
    np.savez(path, a=a, tiny=np.ldexp(a, -1000))
    rep = model_report(path, bits=[4], method="grid", codebook="nf4", group_size=16,
                       progress=False)
    assert rep.level_set == "NF4 codebook" and rep.lattice == "codebook"
    expected = quantize(a, 4, "grid", codebook="nf4", group_size=16).loss.relative_dql
    assert [r["relative_dql_grid"] for r in rep.rows] == [expected, expected]
    assert all(r["relative_dql_param"] is None and r["relative_dql_paper"] is None
               for r in rep.rows)
    assert rep.totals[0]["relative_dql_grid"] == pytest.approx(expected, rel=1e-12)
    assert rep.totals[0]["relative_dql_param"] is None
    assert rep.columns == ["name", "shape", "dtype", "bits", "sigma", "kurtosis", "grid", "time"]
    with pytest.raises(ValueError, match="`method` must be a search method on the level set"):
        model_report(path, bits=[4], method="param", codebook="nf4")
