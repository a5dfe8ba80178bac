"""Every report over every fixture in tests/fixtures/formats prints lines of at most 100
characters and never splits a tensor name across lines (trial T3, item 8: a 101-character
note; a "pair:" line wrapped inside "…q_pro" / "j.weight").

The packed checkpoints and the tiny GGUF go through ``vecq-ref verify ORIGINAL QUANTIZED
--tensor NAME`` from a folder whose path is long enough that each ``file['name']`` label of
the "pair:" line is longer than a line; the .npz outputs through :func:`vecq_ref.verify` on
their values (``str`` of the report).
"""

import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from test_format_rules import parse
from tinyllama import write_tiny_llama

import vecq_ref as vq
from vecq_ref._format import wrap_words
from vecq_ref.cli import main
from vecq_ref.codebooks import IQ4_NL
from vecq_ref.formats import BlockTensor, open_quantized

FIX = Path(__file__).parent / "fixtures" / "formats"
PACKED = FIX / "packed"
WIDTH = 100
#: A folder name that makes "…/packed/original.safetensors['model.layers.0.self_attn.q_proj
#: .weight']" longer than a line (the trial's path: /tmp/trial3/tests/fixtures/formats/packed).
LONG = "trial_like_folder"


def _assert_lines(text, names=()):
    lines = text.splitlines()
    over = [ln for ln in lines if len(ln) > WIDTH]
    assert not over, over
    flat = " ".join(text.split())
    for n in names:
        # every occurrence of the name in the text lies whole within one line
        assert flat.count(n) >= 1, (n, text)
        assert sum(ln.count(n) for ln in lines) == flat.count(n), (n, text)


def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


# --- the wrapper itself ------------------------------------------------------------------------

def test_wrap_words_by_hand():
    # fits: one line, untouched
    assert wrap_words("pair: a['b'] and c['d']", 30) == ["pair: a['b'] and c['d']"]
    # 14 + 1 + 14 = 29 > 20: broken between the words, continuation indented by 2
    assert wrap_words("aaaaaaaaaaaaaa bbbbbbbbbbbbbb", 20) == ["aaaaaaaaaaaaaa",
                                                             "  bbbbbbbbbbbbbb"]
    # a label longer than a continuation line's room (20 − 2 = 18) breaks before its "['"
    # with no space added; the name goes whole onto the next line
    label = "dir/dir/f.st['x.weight']"  # 24 characters
    assert wrap_words(f"pair: {label} and", 20) == ["pair: dir/dir/f.st", "  ['x.weight'] and"]
    # a word longer than the line with no "['" stands alone on its own line, uncut
    assert wrap_words("a " + "x" * 25 + " b", 20) == ["a", "  " + "x" * 25, "  b"]
    # leading spaces of the line are kept; an empty line stays one empty line
    assert wrap_words("  note: a b", 100) == ["  note: a b"]
    assert wrap_words("", 100) == [""]


def test_the_trial_pair_line_is_wrapped_between_words():
    # /tmp/t3w/o.txt: "pair: /tmp/trial3/…/original.safetensors['model.layers.0.self_attn.q_pro"
    # / "  j.weight'] and"
    p = "/tmp/trial3/tests/fixtures/formats/packed"
    line = (f"pair: {p}/original.safetensors['model.layers.0.self_attn.q_proj.weight'] and "
            f"{p}/gptq_v2_sym_g32['model.layers.0.self_attn.q_proj'] (gptq, 4 bits, groups "
            "of 32)")
    out = wrap_words(line, WIDTH)
    assert out == [f"pair: {p}/original.safetensors",
                   "  ['model.layers.0.self_attn.q_proj.weight'] and",
                   f"  {p}/gptq_v2_sym_g32['model.layers.0.self_attn.q_proj']",
                   "  (gptq, 4 bits, groups of 32)"]
    _assert_lines("\n".join(out), ["model.layers.0.self_attn.q_proj.weight"])


# --- packed checkpoints and the tiny GGUF, through the command line ---------------------------

@pytest.fixture(scope="module")
def long_packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("lines") / LONG / "packed"
    root.parent.mkdir()
    os.symlink(PACKED.resolve(), root)
    return root


PACKED_FOLDERS = sorted(p.name for p in PACKED.iterdir() if p.is_dir())


@pytest.mark.jit_only  # every report's exact searches: 13 min as plain Python
@pytest.mark.parametrize("folder", PACKED_FOLDERS)
def test_packed_reports_fit_the_line(long_packed, folder):
    names = open_quantized(PACKED / folder).names()
    assert names
    for name in names:
        argv = ["verify", str(long_packed / "original.safetensors"), str(long_packed / folder),
                "--tensor", name]
        label = f"{long_packed / 'original.safetensors'}['{name}.weight']"
        # the case of the trial: the label needs breaking, its path alone fits
        assert len(str(long_packed / folder)) <= WIDTH - 2 < len(label)
        rc, out, err = _cli(argv)
        assert rc in (0, 1), err
        _assert_lines(out, [f"'{name}.weight'", f"'{name}'"])
        rc, js, _ = _cli([*argv, "--json"])
        for note in json.loads(js)["pair"]["notes"]:  # the header's notes, uncut
            assert " ".join(note.split()) in " ".join(out.split())


@pytest.mark.jit_only  # every report's exact searches: 13 min as plain Python
def test_tiny_gguf_reports_fit_the_line(tmp_path):
    made = write_tiny_llama(tmp_path / LONG)
    gguf = open_quantized(made["gguf"])
    quantized = [n for n in gguf.names() if isinstance(gguf.read(n), BlockTensor)]
    assert len(quantized) >= 4
    for name in quantized:
        rc, out, err = _cli(["verify", str(made["original"]), str(made["gguf"]),
                             "--tensor", name])
        assert rc in (0, 1), err
        _assert_lines(out, [f"'{name}'"])


# --- the .npz outputs, through verify on their values -----------------------------------------

def _npz(name):
    return np.load(FIX / name)


def _value_cases():
    inp = _npz("inputs.npz")
    w = {"rand": inp["rand"], "edge": inp["edge"]}
    cases = []
    ref = _npz("gguf_ref.npz")
    for key in ref.files:
        if key.endswith("_deq"):
            which, fmt = key.split("_")[0], key.split("_", 1)[1][:-4]
            bits = {"q5_0": 5, "q5_1": 5, "q8_0": 8}.get(fmt, 4)
            cases.append((f"gguf_ref/{key}", w[which], ref[key], bits, 32))
    c = _npz("ggml_c.npz")
    for key in c.files:
        fmt, _, rest = key.partition("_")
        fmt = f"{fmt}_{rest.split('_')[0]}" if fmt in ("q4", "q5", "q8", "iq4") else fmt
        which = rest.split("_")[1] if fmt != rest else ""
        if fmt not in ("q4_0", "q5_0", "q8_0", "q4_1", "q5_1", "iq4_nl") or which not in w:
            continue  # make_qx/make_qkx2 searches: codes of a search, not a format's output
        d, m, q = parse(c[key], fmt)
        lev = IQ4_NL[q] if fmt == "iq4_nl" else q
        vals = (d[:, None] * lev + (0 if m is None else m[:, None])).astype(np.float32)
        bits = {"q5_0": 5, "q5_1": 5, "q8_0": 8}.get(fmt, 4)
        cases.append((f"ggml_c/{key}", w[which], vals.reshape(w[which].shape), bits, 32))
    b = _npz("bnb.npz")
    for fmt in ("nf4", "fp4"):
        cases.append((f"bnb/{fmt}", b["x"], b[f"{fmt}_deq"], 4, 64))
    r = _npz("rtn.npz")
    for key in r.files:
        if key.endswith(("_fq", "_dq")):
            fam, which, bits = key.split("_")[:3]
            # as tests/test_format_rules.py made them: rand[:4] in groups of 128, x_edge of 8
            x = inp["rand"][:4] if which == "rand" else r["x_edge"]
            g = 128 if which == "rand" else 8
            cases.append((f"rtn/{key}", x, r[key].reshape(x.shape), int(bits), g))
    a = _npz("affine/affine.npz")
    for key in a.files:
        if key.endswith("/dq") or key.endswith("/dq@bf16"):
            case = key.split("/")[0]
            dt = case.split("_")[1]
            x = a[f"w_{dt}/w@bf16"] if dt == "bf16" else a[f"w_{dt}/w"]
            v = a[key]
            if key.endswith("@bf16"):
                import ml_dtypes
                x = x.view(ml_dtypes.bfloat16)
                v = v.view(ml_dtypes.bfloat16)
            fmt = "torchao-int4" if case.startswith("torchao") else "hqq"
            cases.append((f"affine/{key}", x, v, fmt, int(case.rsplit("_g", 1)[1])))
    return cases


VALUE_CASES = _value_cases()


def test_every_npz_output_is_a_case():
    # gguf_ref: 5 types × (rand, edge) = 10; ggml_c: the same 10 references, q4_0/q5_0 with
    # an imatrix (2), iq4_nl rand, rand_imatrix, edge, rand_ref, edge_ref (5) = 17; bnb 2;
    # rtn 3 libraries × 2 inputs × 3 bits × (sym, asym) = 36; affine 5 torchao + 2 HQQ = 7
    counts = {}
    for name, *_ in VALUE_CASES:
        counts[name.split("/")[0]] = counts.get(name.split("/")[0], 0) + 1
    assert counts == {"gguf_ref": 10, "ggml_c": 17, "bnb": 2, "rtn": 36, "affine": 7}


@pytest.mark.jit_only  # every report's exact searches: 13 min as plain Python
@pytest.mark.parametrize("source", ["gguf_ref", "ggml_c", "bnb", "rtn", "affine"])
def test_npz_reports_fit_the_line(source):
    for name, x, v, bits, g in VALUE_CASES:
        if not name.startswith(source + "/"):
            continue
        if isinstance(bits, str):  # torchao/HQQ: claimed, their group and dtype
            rep = vq.verify(x, v, format=bits, group_size=g)
        else:
            rep = vq.verify(x, v, bits=bits, group_size=g)
        text = str(rep)
        assert text, name
        _assert_lines(text)
