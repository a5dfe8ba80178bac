"""The CLI contract on bad input: exit 2, one line on stderr naming the file or option and the
cause, never a traceback — for every subcommand on every item of the corpus (badinputs.py)."""

import builtins
import json
import sys

import numpy as np
import pytest
from badinputs import make_corpus, skipped_items

from vecq_ref.cli import main

pytest.importorskip("safetensors")

# Every subcommand that reads a tensor file; {f} is the bad file, {tmp} a scratch folder.
FILE_COMMANDS = {
    "quantize": ["quantize", "{f}", "--bits", "2", "--out", "{tmp}/q.npz"],
    "search": ["search", "{f}", "--bits", "2"],
    "compare": ["compare", "{f}", "--bits", "2", "--methods", "vecq_param"],
    "verify-pairs": ["verify", "{f}", "--bits", "2"],
    "verify-W": ["verify", "{f}", "{good}", "--bits", "2"],
    "verify-WQ": ["verify", "{good}", "{f}", "--bits", "2"],
    "report": ["report", "{f}", "--bits", "2", "--method", "param", "--quiet"],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    np.save(folder / "good.npy", np.linspace(-1, 1, 12).reshape(3, 4))
    return folder, make_corpus(folder / "items"), make_corpus(folder / "pairs", pairs=True)


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_one_line(rc, err, *needles):
    assert rc == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in err, (needle, err)


def test_corpus_covers_the_issue(corpus):
    _, items, _ = corpus
    wanted = {"truncated_npy", "corrupt_npy_header", "huge_shape_npy", "pickled_npy",
              "truncated_npz", "huge_shape_npz", "corrupt_npz_header", "pickled_npz",
              "st_header_length", "st_offsets_past_end", "st_unknown_dtype", "directory",
              "missing"}
    assert wanted <= set(items)
    assert set(items) | set(skipped_items) >= wanted | {"unreadable"}


@pytest.mark.parametrize("command", list(FILE_COMMANDS))
def test_every_file_command_on_every_bad_file(corpus, command, capsys, tmp_path):
    folder, items, pair_items = corpus
    if command == "verify-pairs":
        items = pair_items
    good = folder / "good.npy"
    failures = []
    for item, (path, needle) in items.items():
        if item == "empty_npz":  # each command says it in its own words
            needle = {"compare": "holds no arrays", "verify-pairs": "holds no pairs",
                      "report": "holds no tensors"}.get(command, needle)
        argv = [a.format(f=path, good=good, tmp=tmp_path) for a in FILE_COMMANDS[command]]
        rc, out, err = _run(argv, capsys)
        try:
            _assert_one_line(rc, err, path, needle)
        except AssertionError as exc:
            failures.append(f"{item}: {exc}")
    assert not failures, "\n".join(failures)
    assert not list(tmp_path.iterdir())  # no output, no temporary left behind


# Bad option values: each subcommand, one line naming the option and the cause.
OPTION_CASES = [
    (["table", "--bits", "0"], "--bits", "≥ 1"),
    (["table", "--bits", "x"], "--bits", "must look like"),
    (["quantize", "{good}", "--bits", "0", "--out", "{tmp}/q.npz"], "--bits", "≥ 1"),
    (["quantize", "{good}", "--bits", "17", "--out", "{tmp}/q.npz"], "--bits must be", "[1, 16]"),
    (["quantize", "{good}", "--bits", "2", "--group-size", "0", "--out", "{tmp}/q.npz"],
     "--group-size", "≥ 1"),
    (["quantize", "{good}", "--bits", "2", "--out", "{tmp}/nofolder/q.npz"], "nofolder",
     "does not exist"),
    (["quantize", "{good}", "--bits", "2", "--out", "{tmp}"], "is a directory", ""),
    (["search", "{good}", "--bits", "-3"], "--bits", "≥ 1"),
    (["search", "{good}", "--bits", "2", "--axis", "5"], "axis", "5"),
    (["demo", "--size", "0"], "--size", "≥ 2"),
    (["demo", "--bits", "2-x"], "--bits", "must look like"),
    (["train", "--hidden", "0", "--out", "{tmp}/run"], "--hidden", "≥ 1"),
    (["train", "--epochs", "0", "--out", "{tmp}/run"], "--epochs", "≥ 1"),
    (["train", "--batch-size", "0", "--out", "{tmp}/run"], "--batch-size", "≥ 1"),
    (["train", "--lr", "-1", "--out", "{tmp}/run"], "--lr", "> 0"),
    (["train", "--lr", "nan", "--out", "{tmp}/run"], "--lr", "finite"),
    (["train", "--model", "lenet5", "--data", "digits", "--out", "{tmp}/run"],
     "image_size", "16"),
    (["train", "--data", "mnist", "--data-path", "{tmp}/nothing", "--out", "{tmp}/run"],
     "nothing", "does not exist"),
    (["compare", "{good}", "--methods", "nosuch"], "nosuch", ""),
    (["verify", "{good}", "--bits", "2", "--ulps", "-1"], "--ulps", "≥ 0"),
    (["golden", "--out", "{good}"], "--out", "is a file, not a folder"),
    (["report", "{good}", "--bits", "2", "--plot", "{tmp}/r.xyz"], "r.xyz", "png"),
    (["figures", "--out", "{tmp}/f", "--results", "{tmp}"], "--results", "stages"),
    (["figures", "--out", "{tmp}/f", "--format", "gif"], "--format", "gif"),
    (["reproduce", "--out", "{good}"], "--out", "is a file, not a folder"),
    (["train", "--epochs", "1", "--out", "{good}/run"], "--out", "lies under a file"),
    (["figures", "--out", "{good}"], "--out", "is a file, not a folder"),
    (["quantize", "{good}", "--bits", "2", "--out", "{tmp}/q.txt"], "--out", ".npz"),
    (["report", "{good}", "--bits", "2", "--plot", "{tmp}/r.svg"], "--plot", ".png or .pdf"),
    (["verify", "{good}", "{good}", "{good}", "--bits", "2"], "vecq-ref verify: error",
     "unrecognized arguments"),
    (["reproduce", "--out", "{tmp}/r", "--format", "svg"], "--format", "svg"),
    (["audit", "{good}", "{tmp}/missing.gguf"], "missing.gguf", "does not exist"),
    (["audit", "{good}", "{good}"], "good.npy", "not a quantized checkpoint"),
    (["audit", "{good}", "{good}", "--workers", "0"], "--workers", "≥ 1"),
    (["verify", "{good}", "{good}", "--format", "q9_9"], "format", "q9_9"),
]


@pytest.mark.parametrize(("argv", "names", "cause"), OPTION_CASES,
                         ids=[" ".join(c[0][:3]) for c in OPTION_CASES])
def test_bad_option_values(corpus, tmp_path, capsys, argv, names, cause):
    folder, _, _ = corpus
    argv = [a.format(good=folder / "good.npy", tmp=tmp_path) for a in argv]
    rc, _, err = _run(argv, capsys)
    _assert_one_line(rc, err, names, cause)


def test_every_subcommand_has_a_bad_input_case():
    from vecq_ref.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {c[0][0] for c in OPTION_CASES} | {c[0] for c in FILE_COMMANDS.values()}
    assert set(sub.choices) <= covered


def test_big_endian_input_gives_the_native_answer(tmp_path, capsys):
    w = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)
    np.save(tmp_path / "le.npy", w)
    np.save(tmp_path / "be.npy", w.astype(">f4"))
    quantized, reported = [], []
    for name in ("le", "be"):
        assert main(["quantize", str(tmp_path / f"{name}.npy"), "--bits", "3", "--out",
                     str(tmp_path / f"q{name}.npz"), "--json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        quantized.append({k: v for k, v in payload.items() if k not in ("input", "out")})
        assert main(["report", str(tmp_path / f"{name}.npy"), "--bits", "2", "--method",
                     "param", "--quiet", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["rows"]
        reported.append([{k: v for k, v in r.items() if k not in ("name", "time")}
                         for r in rows])
    assert quantized[0] == quantized[1] and reported[0] == reported[1]
    assert reported[0][0]["dtype"] == "float32"
    with np.load(tmp_path / "qle.npz") as a, np.load(tmp_path / "qbe.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


@pytest.mark.parametrize("package", ["safetensors", "ml_dtypes"])
@pytest.mark.parametrize("command", ["report", "verify", "quantize"])
def test_a_missing_optional_package_names_the_extra(tmp_path, capsys, monkeypatch, package,
                                                    command):
    pytest.importorskip("ml_dtypes")
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    if package == "safetensors":
        save_file({"w": np.ones((2, 3), np.float32)}, str(path))
    else:
        from badinputs import _safetensors

        header = {"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}
        if command == "verify":  # a pair NAME, NAME.q
            header["w.q"] = {"dtype": "BF16", "shape": [2, 3], "data_offsets": [12, 24]}
        _safetensors(path, header, b"\x80\x3f" * 6 * len(header))
    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == package or name.startswith(package + "."):
            raise ImportError(f"No module named {package!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, package, raising=False)
    monkeypatch.setattr(builtins, "__import__", no_package)
    argv = {"report": ["report", str(path), "--bits", "2", "--quiet"],
            "verify": ["verify", str(path), "--bits", "2"],
            "quantize": ["quantize", str(path), "--bits", "2", "--out", str(tmp_path / "q.npz")]}
    rc, _, err = _run(argv[command], capsys)
    _assert_one_line(rc, err, package, 'pip install "vecq_ref[io]"')


@pytest.mark.parametrize(("h", "match"), [
    (np.array([1.0, -0.5, 2.0]), "non-negative"),
    (np.array([1.0, np.nan, 2.0]), "finite"),
    (np.array([1.0, 2.0]), "broadcastable"),
    (np.array(["a", "b", "c"]), "non-negative real"),
    ("abc", "array of real numbers"),
])
def test_importance_weights_rejected_naming_weights(h, match):
    from vecq_ref import _validation as V

    with pytest.raises((ValueError, TypeError), match=f"`weights` must be .*{match}"):
        V.importance(h, (2, 3))


def test_importance_weights_accepted_shapes():
    from vecq_ref import _validation as V

    col = np.array([1.0, 0.0, 2.0], dtype=np.float32)
    h = V.importance(col, (2, 3))
    assert h.shape == (2, 3) and h.dtype == np.float64 and h[1].tolist() == [1.0, 0.0, 2.0]
    assert V.importance(2, (2, 3)).tolist() == [[2.0] * 3] * 2
    assert V.importance(None, (2, 3)) is None
    assert col.flags.writeable and col.tolist() == [1.0, 0.0, 2.0]  # caller's array untouched
