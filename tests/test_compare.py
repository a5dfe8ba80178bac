import importlib
import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import vecq_ref as vq
from vecq_ref import baselines as B
from vecq_ref import format_rules as F
from vecq_ref.cli import main

# ``vecq_ref.compare`` is the function; the module of the same name is reached this way.
C = importlib.import_module("vecq_ref.compare")


@pytest.fixture
def w(rng):
    return rng.standard_normal(2000)


def test_records_fields_groups_and_ranks(w):
    rows = vq.compare(w, bits=[1, 2, 3], methods=["vecq_param", "vecq_param_midtread", "bwn",
                                                   "twn", "absmax", "lloyd_max", "dorefa"])
    assert all(tuple(r) == C.FIELDS for r in rows)
    # Skipped where undefined: BWN only at 1 bit, TWN only at 2, midtread/DoReFa from 2.
    assert {r["bits"] for r in rows if r["method"] == "bwn"} == {1}
    assert {r["bits"] for r in rows if r["method"] == "twn"} == {2}
    assert {r["bits"] for r in rows if r["method"] == "absmax"} == {2, 3}
    assert [r["bits"] for r in rows] == sorted(r["bits"] for r in rows)
    for r in rows:
        assert r["group"] == r["levels"]
        assert r["levels"] == (2 ** r["bits"] - 1 if r["lattice"] == "midtread"
                               else 2 ** r["bits"])
    for k in (1, 2, 3):
        for size in {r["group"] for r in rows if r["bits"] == k}:
            members = [r for r in rows if r["bits"] == k and r["group"] == size]
            ranks = [r["rank"] for r in members]
            assert ranks[0] == 1
            assert ranks == sorted(ranks)
            for i, r in enumerate(members):  # competition ranking: 1, 2, 2, 4
                assert r["rank"] == i + 1 or r["rank"] == members[i - 1]["rank"]
            dql = [r["relative_dql"] for r in members]
            assert dql == sorted(dql)
    two = [r for r in rows if r["bits"] == 2]
    assert [r["group"] for r in two] == [4, 4, 4, 3, 3, 3]


def test_equal_losses_share_a_rank(rng):
    # At 1 bit BWN, VecQ-param and the least-squares sign codes are the same quantizer.
    rows = vq.compare(rng.standard_normal(501), bits=1, methods=["bwn", "vecq_param", "ul2q"])
    by = {r["method"]: r["rank"] for r in rows}
    assert by["bwn"] == by["vecq_param"] == 1
    assert by["ul2q"] == 3


def test_values_far_from_the_weights_scale_rank_last(rng):
    # w ≈ 1e-300: DoReFa's values are ±1, ±1/3, so ‖w − wq‖²/‖w‖² ≈ 1e600 is beyond float64
    # (inf, as vector_loss gives), ranked after every finite loss with no warning; the VecQ
    # methods, whose α follows w, have the same finite relative DQL as at scale 1.
    w = rng.standard_normal(64)
    tiny = vq.compare(w * 2.0 ** -1000, bits=2, methods=["vecq_exact", "dorefa", "lloyd_max"])
    at_one = vq.compare(w, bits=2, methods=["vecq_exact", "lloyd_max"])
    by = {r["method"]: r for r in tiny}
    assert by["dorefa"]["relative_dql"] == np.inf and by["dorefa"]["rank"] == 3
    assert {r["method"]: r["rank"] for r in at_one} == {
        m: by[m]["rank"] for m in ("vecq_exact", "lloyd_max")}
    for r in at_one:
        assert by[r["method"]]["relative_dql"] == pytest.approx(r["relative_dql"], rel=1e-12)
    assert by["dorefa"]["J_o"] == pytest.approx(vq.vector_loss(
        w, B.dorefa(w * 2.0 ** -1000, 2).values).orientation, rel=1e-12)


def test_records_match_the_functions(w):
    rows = {(r["method"], r["bits"]): r for r in vq.compare(w, bits=2)}
    q = B.twn(w)
    r = rows[("twn", 2)]
    assert r["relative_dql"] == q.loss.relative_dql
    assert r["J_o"] == q.loss.orientation
    assert r["J_m"] == q.loss.modulus
    assert r["alpha"] == q.alpha
    assert r["step"] == q.step
    assert rows[("ul2q", 2)]["alpha"] == B.ul2q(w, 2, table="printed", eps=0.0).alpha
    assert rows[("ul2q_code", 2)]["alpha"] == B.ul2q(w, 2, table="code").alpha
    # Every record's loss is vector_loss of the method's values (one definition for all).
    assert rows[("vecq_param", 2)]["relative_dql"] == vq.vector_loss(
        w, vq.quantize(w, 2).values).relative_dql
    assert rows[("vecq_param", 2)]["relative_dql"] == pytest.approx(
        vq.quantize(w, 2).loss.relative_dql, rel=1e-12)
    assert rows[("lloyd_max", 2)]["alpha"] is None
    assert rows[("dorefa", 2)]["step"] is None
    assert rows[("lloyd_max", 2)]["rank"] == 1  # the non-uniform floor of its group
    json.dumps(list(rows.values()), allow_nan=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("axis", [None, 0])
def test_narrow_weights_give_what_each_method_gives_in_their_dtype(rng, dtype, axis):
    # compare widens the weights to float64 once (one set of kernels to compile); that must
    # change nothing: every record has the α and step of the method run on the weights as
    # given, and the loss of its float64 values (the method's own loss, computed in float64
    # before the cast to the weights' dtype, agrees to rounding).
    w = (rng.standard_normal((24, 40)) * 0.7).astype(dtype)
    rows = vq.compare(w, bits=[1, 2, 4], axis=axis)
    assert rows
    for r in rows:
        q = C._quantizer(r["method"])(w, r["bits"], axis=axis)
        for field, own in (("relative_dql", q.loss.relative_dql), ("J_o", q.loss.orientation),
                           ("J_m", q.loss.modulus)):
            assert r[field] == pytest.approx(float(own), rel=1e-9, abs=1e-13), r["method"]
        assert r["excess"] == pytest.approx(float(q.loss.excess), abs=1e-9 * r["J_m"])
        assert r["alpha"] == C._plain(q.alpha) and r["step"] == C._plain(q.step), r["method"]


def test_default_methods_follow_search_availability(w, monkeypatch):
    monkeypatch.setattr(C, "search_available", lambda: False)
    names = {r["method"] for r in vq.compare(w, bits=2)}
    assert names.isdisjoint(C.SEARCH_BASED)
    assert names == set(C.METHODS) - set(C.SEARCH_BASED) - {"bwn"}
    with pytest.raises(ValueError, match=r"`methods` must be methods whose modules are "
                                         r"importable \('vecq_exact' needs vecq_ref.search"):
        vq.compare(w, bits=2, methods=["vecq_exact"])


def test_search_methods_included_when_available(w):
    pytest.importorskip("vecq_ref.search")
    rows = vq.compare(w[:500], bits=2)
    names = {r["method"] for r in rows}
    assert set(C.SEARCH_BASED) - set(C.EXACT) <= names
    assert names.isdisjoint(C.FORMAT_RULES + C.EXACT)  # only when named
    by = {r["method"]: r for r in rows}
    assert by["vecq_exact"]["J_m"] <= by["vecq_param"]["J_m"] * (1 + 1e-12)
    assert by["vecq_exact_midtread"]["J_m"] <= by["twn"]["J_m"] * (1 + 1e-12)


def test_axis_gives_per_slice_alpha(rng):
    w = rng.standard_normal((4, 30))
    rows = vq.compare(w, bits=2, methods="vecq_param,twn,lloyd_max", axis=0)
    assert all(len(r["alpha"]) == 4 for r in rows)
    by = {r["method"]: r for r in rows}
    assert by["lloyd_max"]["alpha"] == [None] * 4  # Lloyd–Max has no scale
    assert by["twn"]["alpha"] == B.twn(w, axis=0).alpha.tolist()
    text = C.format_records(rows)
    assert "<4>" in text


def test_format_records_blocks(w):
    text = C.format_records(vq.compare(w, bits=[1, 2], methods=["vecq_param", "twn", "bwn"]))
    assert text.splitlines()[0] == "1 bits, 2 levels:"
    assert "2 bits, 4 levels:" in text
    assert "2 bits, 3 levels:" in text
    assert "J_o" in text
    assert "relative_dql" in text
    # Methods by the names the figures use, with the identifier --methods takes.
    assert "VecQ-param (vecq_param)" in text and "TWN (twn)" in text


def test_format_records_marks_offset_lattices_and_drops_the_step_at_1_bit():
    text = C.format_records(vq.compare(np.arange(1.0, 9.0), bits=2,
                                       methods="vecq_param,vecq_exact"))
    assert text.splitlines()[1].split()[-1] == "step"  # shown at 2 bits (lines fit)
    # Weights around 1 (a mean far from 0): at 1 bit VecQ's levels ±α/2 must straddle 0, while
    # μL2Q's offset lattice puts β = mean(w) = 1 between its two levels, so it ranks first.
    w = np.array([0.8, 0.9, 1.0, 1.1, 1.2, 0.7, 1.3, 1.0])
    rows = vq.compare(w, bits=[1, 2], methods="vecq_exact,vecq_param,ul2q_code,twn")
    by = {(r["bits"], r["method"]): r for r in rows}
    assert by[1, "ul2q_code"]["rank"] == 1 and by[1, "vecq_exact"]["rank"] == 2
    assert all("step" in r for r in rows)  # the records keep every field
    blocks = C.format_records(rows).split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [
        "1 bits, 2 levels:", "2 bits, 4 levels:", "2 bits, 3 levels:"]
    for block in blocks:
        header, body = block.splitlines()[1], block.splitlines()[2:]
        # The step: left out at 1 bit (one threshold, at 0), shown at 2 bits.
        # gap_pct: against VecQ-exact, the exact optimum of the midrise groups. Columns are
        # left out (J_m first) only to keep lines within 100 characters.
        full = ["method", "lattice", "rank", "relative_dql", "gap_pct", "J_o", "J_m", "alpha",
                "step"]
        shown = header.split()
        assert shown == [c for c in full if c in shown]
        assert shown[:6] == full[:6]
        assert not ("step" in shown and block.startswith("1 bits"))
        assert max(map(len, block.splitlines())) <= C.MAX_LINE
        # Display name and identifier, e.g. "μL2Q, code λ (ul2q_code)*": keep the mark's place.
        marked = [line.split("(")[-1].split()[0] for line in body if "offset-midrise" in line]
        legend = [line for line in body if line.strip() == C.OFFSET_LEGEND]
        if block.startswith("2 bits, 3"):  # no offset lattice in the midtread group
            assert marked == [] and legend == [] and C.OFFSET_MARK not in block
        else:
            assert marked == ["ul2q_code)" + C.OFFSET_MARK]
            assert legend and body[-1] == "  " + C.OFFSET_LEGEND  # once, under the group
            assert sum(line.count(C.OFFSET_MARK) for line in body[:-1]) == 1
    assert C.has_offset("offset-midrise")
    assert not any(C.has_offset(x) for x in ("midrise", "midtread", "nonuniform"))


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"methods": ["bwm"]}, ValueError, r"`methods` must be one of \("),
    ({"methods": []}, ValueError, r"`methods` must be a non-empty list"),
    ({"methods": ["twn"], "bits": 3}, ValueError,
     r"`methods` must be methods defined at the requested bits \[3\] \('twn' needs bits in "
     r"\[2, 2\]\); got 'twn'\."),
    ({"bits": 0}, ValueError, r"`bits` must be an integer in \[1, 16\]; got 0\."),
    ({"bits": []}, ValueError, r"`bits` must be at least one bitwidth"),
    ({"bits": 2.5}, TypeError, r"`bits` must be an integer"),
    ({"methods": [3]}, TypeError, r"`methods` must be one of"),
])
def test_bad_input(w, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vq.compare(w, **({"bits": 2} | kwargs))


def test_bad_weights():
    with pytest.raises(ValueError, match="non-finite"):
        vq.compare([1.0, np.inf], bits=2)


# --- groups and importance weights ------------------------------------------------------------


def test_groups_by_hand():
    # abs-max at 2 bits: α = max|w| of each group, codes round(w/α) ∈ {−1, 0, 1}.
    # Groups of 2: [1, −0.25] → α 1, values [1, 0]; [4, 3] → α 4, values [4, 4]:
    # DQL = 0.25² + 1² = 1.0625. Per tensor α = 4 gives [0, 0, 4, 4]: DQL = 1 + 0.0625 + 1.
    w = np.array([1.0, -0.25, 4.0, 3.0])
    ww = 1 + 0.0625 + 16 + 9
    grouped = vq.compare(w, bits=2, methods=["absmax"], group_size=2)[0]
    whole = vq.compare(w, bits=2, methods=["absmax"])[0]
    assert grouped["relative_dql"] == pytest.approx(1.0625 / ww, rel=1e-15)
    assert whole["relative_dql"] == pytest.approx(2.0625 / ww, rel=1e-15)
    assert grouped["alpha"] == [1.0, 4.0] and grouped["group_size"] == 2
    assert whole["group_size"] is None and not whole["weighted"]


def test_weights_by_hand():
    # h = [1, 0, 0, 1]: only w[0] = 1 (value 1) and w[3] = 3 (value 4) count:
    # Σh(w − wq)² = 0 + 1, Σh·w² = 1 + 9.
    w = np.array([1.0, -0.25, 4.0, 3.0])
    r = vq.compare(w, bits=2, methods=["absmax"], group_size=2, weights=[1, 0, 0, 1])[0]
    assert r["relative_dql"] == pytest.approx(0.1, rel=1e-15)
    assert r["J_m"] == pytest.approx(1.0, rel=1e-15) and r["weighted"]


def test_grouped_records_are_each_method_on_each_group(rng):
    w = rng.standard_normal((6, 64))
    methods = ["vecq_param", "vecq_exact_midtread", "twn", "ul2q", "lloyd_max"]
    rows = vq.compare(w, bits=2, methods=methods, group_size=16)
    by = {r["method"]: r for r in rows}
    q = vq.quantize(w, 2, group_size=16)
    assert by["vecq_param"]["relative_dql"] == vq.vector_loss(w, q.values).relative_dql
    assert by["vecq_param"]["alpha"] == q.alpha.tolist()  # shaped like the groups: (6, 4)
    q = vq.quantize(w, 2, "exact", "midtread", group_size=16)
    assert by["vecq_exact_midtread"]["relative_dql"] == vq.vector_loss(
        w, q.values).relative_dql
    # A baseline per group is the baseline on every group as a slice of its own.
    groups = w.reshape(-1, 16)
    for m, fn in (("twn", B.twn), ("ul2q", lambda x, k, axis: B.ul2q(
            x, k, axis=axis, table="printed", eps=0.0))):
        q = fn(groups, 2, axis=0)
        assert by[m]["relative_dql"] == vq.vector_loss(
            w, q.values.reshape(w.shape)).relative_dql
        assert by[m]["alpha"] == np.reshape(q.alpha, (6, 4)).tolist()
        for i in (0, 13, 23):  # and that is the rule applied to the group alone
            assert by[m]["alpha"][i // 4][i % 4] == fn(groups[i], 2, axis=None).alpha
    assert "<24>" in C.format_records(rows)


def test_importance_weights_change_what_is_measured_not_the_quantizers(rng):
    w = rng.standard_normal((4, 32))
    h_col = rng.lognormal(size=32)
    rules = ["vecq_param", "bwn", "twn", "aciq"]  # rules that do not see h
    methods = ["vecq_exact", *rules]
    plain = vq.compare(w, bits=[1, 2], methods=methods, group_size=8)
    ones = vq.compare(w, bits=[1, 2], methods=methods, group_size=8, weights=1.0)
    col = vq.compare(w, bits=[1, 2], methods=methods, group_size=8, weights=h_col)
    full = vq.compare(w, bits=[1, 2], methods=methods, group_size=8,
                      weights=np.broadcast_to(h_col, w.shape).copy())
    # h ≡ 1 is the unweighted loss bit for bit; a column vector is the same as its broadcast.
    drop = ("weighted",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in ones
            if r["method"] in rules] == [
        {k: v for k, v in r.items() if k not in drop} for r in plain if r["method"] in rules]
    # VecQ-exact searches the h-weighted loss (another path), the same optimum at h ≡ 1.
    for r, p in zip(ones, plain, strict=True):
        assert r["relative_dql"] == pytest.approx(p["relative_dql"], rel=1e-12)
    assert col == full
    by = {(r["bits"], r["method"]): r for r in plain}
    for r in col:
        if r["method"] in rules:  # the same quantizer, measured with h
            assert r["alpha"] == by[r["bits"], r["method"]]["alpha"]
            q = C._run(r["method"], w, r["bits"], None, 8)
            assert r["relative_dql"] == vq.vector_loss(w, q.values,
                                                       weights=h_col).relative_dql
    # The weighted exact optimum is the lowest weighted loss of its lattice (midrise, 2^k).
    for k in (1, 2):
        ex = next(r for r in col if r["bits"] == k and r["method"] == "vecq_exact")
        assert ex["rank"] == 1 and ex["gap_pct"] == 0.0
        for r in col:
            if r["bits"] == k and r["lattice"] == "midrise":
                assert r["relative_dql"] >= ex["relative_dql"] * (1 - 1e-12)
                assert r["gap_pct"] >= -1e-10
    # Ranked by the weighted loss.
    for k in (1, 2):
        for size in {r["group"] for r in col if r["bits"] == k}:
            dql = [r["relative_dql"] for r in col if r["bits"] == k and r["group"] == size]
            assert dql == sorted(dql)


def test_a_zero_weight_makes_an_element_irrelevant(rng):
    # The rules do not see h; the measure does: h = 0 on a column is that column left out of
    # both sums.
    w = rng.standard_normal((3, 8))
    h = np.ones(8)
    h[5] = 0.0
    r = vq.compare(w, bits=2, methods=["twn"], weights=h)[0]
    q = B.twn(w)
    keep = np.arange(8) != 5
    d = w[:, keep] - q.values[:, keep]
    assert r["relative_dql"] == pytest.approx(np.sum(d * d) / np.sum(w[:, keep] ** 2),
                                              rel=1e-13)


@given(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([1, 2, 3]))
def test_one_group_per_row_is_per_channel(rows, cols, seed, bits):
    # group_size = the row length: each row one group, the same quantization as axis=0.
    w = np.random.default_rng(seed).standard_normal((rows, cols))
    methods = ["vecq_param", "vecq_exact", "bwn" if bits == 1 else "dorefa", "lloyd_max"]
    if bits == 2:
        methods.append("twn")
    a = vq.compare(w, bits=bits, methods=methods, group_size=cols)
    b = vq.compare(w, bits=bits, methods=methods, axis=0)
    assert [(r["method"], r["rank"], r["relative_dql"]) for r in a] == [
        (r["method"], r["rank"], r["relative_dql"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert np.ravel(np.array(ra["alpha"], dtype=float)).tolist() == pytest.approx(
            np.array(rb["alpha"], dtype=float).tolist(), nan_ok=True)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"group_size": 3}, ValueError, r"`group_size` must be a divisor of the last axis length 8"),
    ({"group_size": 0}, ValueError, r"`group_size` must be an integer >= 1; got 0\."),
    ({"group_size": 4, "axis": 0}, ValueError, r"`axis` must be None when `group_size`"),
    ({"weights": -np.ones(8)}, ValueError, r"`weights` must be non-negative"),
    ({"weights": np.ones(3)}, ValueError, r"`weights` must be broadcastable"),
    ({"weights": [np.nan] * 8}, ValueError, r"`weights` must be finite"),
    ({"weights": ["a"] * 8}, TypeError, r"`weights` must be an array of non-negative"),
])
def test_bad_groups_and_weights(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vq.compare(np.ones((2, 8)), bits=2, methods=["vecq_param"], **kwargs)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_compare_npy_json(tmp_path, capsys, w):
    path = tmp_path / "w.npy"
    np.save(path, w.astype(np.float32))
    assert main(["compare", str(path), "--bits", "1-2", "--methods", "vecq_param,bwn,twn",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted((r["bits"], r["method"]) for r in rows) == [
        (1, "bwn"), (1, "vecq_param"), (2, "twn"), (2, "vecq_param")]
    assert all(r["array"] == str(path) for r in rows)


def test_cli_compare_npz_text(tmp_path, capsys, rng):
    path = tmp_path / "model.npz"
    np.savez(path, conv=rng.standard_normal((4, 3, 3)), fc=rng.standard_normal(50))
    assert main(["compare", str(path), "--bits", "2", "--methods", "vecq_param,absmax"]) == 0
    out = capsys.readouterr().out
    assert "conv (4, 3, 3)" in out
    assert "fc (50,)" in out
    assert out.count("2 bits, 4 levels:") == 2
    assert out.count("2 bits, 3 levels:") == 2
    assert main(["compare", str(path), "--bits", "2", "--methods", "twn", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["array"] for r in rows] == ["conv", "fc"]


def test_cli_compare_errors(tmp_path, capsys):
    path = tmp_path / "w.npy"
    np.save(path, np.arange(5.0))
    assert main(["compare", str(path), "--bits", "3", "--methods", "twn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vecq-ref compare: error:")
    assert "--methods must be" in err
    assert main(["compare", str(tmp_path / "missing.npy")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- level sets and the formats' own rules -------------------------------------------------------


_RULES = {"q4_0": lambda w, g, h: F.q4_0(w, g), "q4_0_search": lambda w, g, h: F.make_qx_quants(
    w, 8, g, weights=h), "q4_1": lambda w, g, h: F.q4_1(w, g),
    "q4_1_search": lambda w, g, h: F.make_qkx2_quants(w, 15, g, weights=h),
    "iq4_nl": lambda w, g, h: F.iq4_nl(w, g, weights=h),
    "gptq_sym": lambda w, g, h: F.gptq_rtn(w, 4, g, symmetric=True),
    "ct_sym": lambda w, g, h: F.compressed_tensors_rtn(w, 4, g, symmetric=True),
    "gptq_asym": lambda w, g, h: F.gptq_rtn(w, 4, g, symmetric=False),
    "awq": lambda w, g, h: F.awq_rtn(w, 4, g, symmetric=False),
    "nf4": lambda w, g, h: F.bnb_nf4(w, g), "fp4": lambda w, g, h: F.bnb_fp4(w, g)}
_EXACT = {"q4_0": ("exact_q4_0", {"lattice": "midtread-full", "signed_scale": True}),
          "q4_1": ("exact_q4_1", {"zero_point": "float"}),
          "iq4_nl": ("exact_iq4_nl", {"codebook": "iq4_nl", "signed_scale": True}),
          "gptq_sym": ("exact_int_sym", {"lattice": "midtread-full"}),
          "gptq_asym": ("exact_int_zp", {"zero_point": "integer"}),
          "nf4": ("exact_nf4", {"codebook": "nf4"}), "fp4": ("exact_fp4", {"codebook": "fp4"})}


def test_rules_on_a_lattice_they_reproduce_by_hand():
    # Blocks of 32 whose values are 0.125·c with c = −8 … 7 twice: Q4_0's d = max/−8 =
    # −1/−8 = 0.125 (fp16-exact), so the rule, its search and the exact optimum all give w
    # back: relative DQL 0 for all, one shared rank, and gap_pct undefined (exact = 0).
    w = np.tile(0.125 * np.arange(-8.0, 8.0), 2)
    rows = vq.compare(w, bits=4, methods=["q4_0", "q4_0_search"])
    assert [r["method"] for r in rows] == ["q4_0", "q4_0_search", "exact_q4_0"]
    assert all(r["relative_dql"] == 0.0 and r["rank"] == 1 and r["gap_pct"] is None
               for r in rows)
    assert {r["group_size"] for r in rows} == {32}  # the format's block without group_size
    assert rows[0]["level_set"] == "midtread-full, codes −8…7, α of either sign"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_each_rule_against_the_exact_optimum_of_its_level_set(seed, weighted):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 64)) * rng.lognormal(size=(4, 1))
    h = rng.lognormal(size=64) if weighted else None
    rows = vq.compare(w, bits=4, methods="formats", group_size=32, weights=h)
    by = {r["method"]: r for r in rows}
    for m, fn in _RULES.items():
        r = by[m]
        q = fn(w, 32, h)
        assert r["relative_dql"] == vq.vector_loss(w, q.values, weights=h).relative_dql, m
        assert r["weighted"] == weighted and r["certified"] is None
    for rule, (exact, kw) in _EXACT.items():
        q = vq.quantize(w, 4, "exact", group_size=32, weights=h, **kw)
        e = by[exact]
        assert e["relative_dql"] == vq.vector_loss(w, q.values, weights=h).relative_dql
        assert e["level_set"] == by[rule]["level_set"] and e["certified"] is True
        assert e["gap_pct"] == 0.0 and e["rank"] == 1
    # Every rule lies on its format's level set, so the exact optimum is no worse.
    for r in rows:
        members = [x for x in rows if x["level_set"] == r["level_set"]]
        ex = next(x for x in members if x["method"].startswith("exact_"))
        assert r["relative_dql"] >= ex["relative_dql"] * (1 - 1e-12), r["method"]
        assert r["gap_pct"] == pytest.approx(
            100 * (r["relative_dql"] - ex["relative_dql"]) / ex["relative_dql"], rel=1e-12)
    assert {r["level_set"] for r in rows if r["method"] in ("gptq_sym", "ct_sym")} == {
        "midtread-full, codes −8…7"}
    assert {r["method"] for r in rows} == set(_RULES) | {e for e, _ in _EXACT.values()}


def test_vecq_searches_on_a_requested_level_set_share_the_formats_group(rng):
    w = rng.standard_normal((2, 64))
    h = rng.lognormal(size=64)
    rows = vq.compare(w, bits=4, methods="vecq_exact,vecq_alternating,q4_0", group_size=32,
                      weights=h, lattice="midtread-full", signed_scale=True)
    by = {r["method"]: r for r in rows}
    assert len({r["level_set"] for r in rows}) == 1  # one group: Q4_0's level set
    q = vq.quantize(w, 4, "exact", "midtread-full", group_size=32, signed_scale=True,
                    weights=h)
    assert by["vecq_exact"]["relative_dql"] == vq.vector_loss(w, q.values,
                                                              weights=h).relative_dql
    assert by["vecq_exact"]["relative_dql"] == pytest.approx(by["exact_q4_0"]["relative_dql"],
                                                             rel=1e-12)
    assert by["vecq_exact"]["certified"] is True
    assert by["vecq_alternating"]["gap_pct"] >= -1e-10
    # Default methods on a level set: VecQ's three searches; param only on VecQ's lattices.
    names = [r["method"] for r in vq.compare(w, bits=4, codebook="nf4")]
    assert sorted(names) == ["vecq_alternating", "vecq_exact", "vecq_grid"]
    mt = vq.compare(w, bits=[1, 2], methods="vecq_param,vecq_exact", lattice="midtread")
    assert {(r["bits"], r["method"]) for r in mt} == {(2, "vecq_param"), (2, "vecq_exact")}
    assert {r["level_set"] for r in mt} == {"midtread, codes −1…1"}
    zp = vq.compare(w, bits=[3], methods="vecq_param,vecq_exact", zero_point="integer")
    assert [r["method"] for r in zp] == ["vecq_exact"]  # param: VecQ's own lattices only


def test_format_records_of_everything_fit_in_100_columns(rng):
    w = rng.standard_normal((2, 64))
    rows = vq.compare(w, bits=[4, 5], methods="formats,vecq_normalpha,ul2q,lloyd_max",
                      group_size=32, weights=rng.lognormal(size=64))
    text = C.format_records(rows)
    assert max(map(len, text.splitlines())) <= C.MAX_LINE
    assert "4 bits, 16 levels, NF4 codebook, groups of 32, weighted:" in text
    assert "exact optimum (exact_q4_0)" in text and "gap_pct" in text
    assert "Q5_1 affine search (q5_1_search)" in text


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"methods": ["q4_0"], "bits": 3}, ValueError, r"'q4_0' needs bits in \[4, 4\]"),
    ({"methods": ["q4_0"], "axis": 0}, ValueError, r"`axis` must be None with the format rules"),
    ({"methods": ["nf4"]}, ValueError, r"`group_size` must be a divisor of the last axis "
                                       r"length 96 \(the block of 'nf4' without `group_size`\)"),
    ({"codebook": "nf4", "bits": 3}, ValueError, r"`bits` must be 4, the bits of the codebook"),
    ({"zero_point": "integer", "signed_scale": True}, ValueError, r"`signed_scale` must be "
                                                                   r"False with a zero point"),
    ({"methods": ["formats"], "bits": 1}, ValueError, r"`methods` must be methods defined at "
                                                       r"the requested bits \[1\] \('formats'"),
])
def test_bad_level_sets_and_rules(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vq.compare(np.ones((2, 96)), **({"bits": 4} | kwargs))


def test_issue_21_call_ranks_the_format_rules_by_default(rng):
    """Trial T3 item 11: ``compare(w, bits, group_size=32, weights=h)`` (issue 21's call)
    ranks the formats' rules against the exact optimum of their level set; without weights
    the default is unchanged (VecQ and the baselines only)."""
    w = rng.standard_normal((2, 64))
    h = rng.lognormal(size=64)
    rows = vq.compare(w, 4, group_size=32, weights=h)
    names = {r["method"] for r in rows}
    assert set(C.METHODS) - {"bwn", "twn"} <= names  # BWN and TWN: 1 and 2 bits only
    rules = {m for m in C.FORMAT_RULES if C.applies(m, 4)}
    assert rules == {"q4_0", "q4_0_search", "q4_1", "q4_1_search", "iq4_nl", "gptq_sym",
                     "ct_sym", "gptq_asym", "awq", "nf4", "fp4"}
    assert rules <= names and {"exact_q4_0", "exact_q4_1", "exact_nf4"} <= names
    # The format rules' records are those of methods="formats" (same groups, same numbers).
    formats = vq.compare(w, 4, methods="formats", group_size=32, weights=h)
    by = {r["method"]: r for r in rows}
    for r in formats:
        assert by[r["method"]] == r, r["method"]
        assert r["gap_pct"] >= -1e-10
    # Without weights, or per tensor, the default is VecQ and the baselines as before.
    assert not {r["method"] for r in vq.compare(w, 4, group_size=32)} & rules
    assert not {r["method"] for r in vq.compare(w, 4, weights=h)} & rules


def test_a_level_set_is_applied_to_formats_or_refused(rng, capsys, tmp_path):
    """Trial T3 item 11: ``--methods formats --zero-point float`` ran every rule and dropped
    the level set; now "formats" names the rules of that level set, and a level set that no
    method runs on is an error naming it."""
    w = rng.standard_normal((2, 32))
    rows = vq.compare(w, 4, methods="formats", group_size=32, zero_point="float")
    assert [r["method"] for r in rows] == ["exact_q4_1", "q4_1_search", "q4_1"]
    assert {r["level_set"] for r in rows} == {"real offset, codes 0…15"}
    nf4 = vq.compare(w, [4, 5], methods="formats", group_size=32, codebook="nf4")
    assert sorted(r["method"] for r in nf4) == ["exact_nf4", "nf4"]
    with pytest.raises(ValueError, match=r"`zero_point` must be left out, or given with a "
                                         r"method that runs on its level set .*; got 'float'"):
        vq.compare(w, 4, methods="q4_0", group_size=32, zero_point="float")
    with pytest.raises(ValueError, match=r"`codebook` must be left out.*\['twn'\]"):
        vq.compare(w, 2, methods="twn", codebook=[-1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"'formats' names no rule on real offset, codes 0…7"):
        vq.compare(w, 3, methods="formats", group_size=32, zero_point="float")
    np.save(tmp_path / "w.npy", w)
    assert main(["compare", str(tmp_path / "w.npy"), "--bits", "4", "--group-size", "32",
                 "--methods", "formats", "--zero-point", "float", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in cli] == [r["method"] for r in rows]
    assert main(["compare", str(tmp_path / "w.npy"), "--bits", "4", "--group-size", "32",
                 "--methods", "q4_0", "--zero-point", "float"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--zero-point must be left out" in err


def test_a_real_offset_runs_what_its_level_set_allows(rng, capsys, tmp_path):
    """Trial T4 item 3: ``compare(w, 4, zero_point="float", group_size=32)`` (and the CLI's
    ``--zero-point float``) raised "`method` must be 'exact' …; got 'grid'", a method the
    caller never chose. Now the real offset runs the exact search alone, and with
    ``group_size`` and ``weights`` its format rules (Q4_1's) and their exact optimum too."""
    w = rng.standard_normal((2, 32))
    rows = vq.compare(w, 4, zero_point="float", group_size=32)
    assert [r["method"] for r in rows] == ["vecq_exact"]
    assert rows[0]["level_set"] == "real offset, codes 0…15" and rows[0]["certified"] is True
    q = vq.quantize(w, 4, "exact", zero_point="float", group_size=32)
    assert rows[0]["relative_dql"] == vq.vector_loss(w, q.values).relative_dql
    h = rng.lognormal(size=32)
    rows = vq.compare(w, 4, zero_point="float", group_size=32, weights=h)
    by = {r["method"]: r for r in rows}
    assert sorted(by) == ["exact_q4_1", "q4_1", "q4_1_search", "vecq_exact"]
    assert {r["level_set"] for r in rows} == {"real offset, codes 0…15"}  # one group
    # Both exact rows are the same search on the same level set: one rank, gap 0. The rules
    # lie on that level set up to their float32 values' rounding (here Q4_1's search is
    # 2.4e-7 relative below the certified optimum by it alone, so it ranks first).
    assert by["vecq_exact"]["rank"] == by["exact_q4_1"]["rank"]
    assert by["vecq_exact"]["relative_dql"] == by["exact_q4_1"]["relative_dql"]
    assert by["vecq_exact"]["gap_pct"] == 0.0
    assert min(by["q4_1"]["gap_pct"], by["q4_1_search"]["gap_pct"]) >= -1e-4
    assert by["q4_1"]["gap_pct"] > 1.0  # min–max, far from the optimum
    # Other level sets keep VecQ's three searches; grid named with a real offset still fails.
    names = [r["method"] for r in vq.compare(w, 4, zero_point="integer", group_size=32)]
    assert sorted(names) == ["vecq_alternating", "vecq_exact", "vecq_grid"]
    with pytest.raises(ValueError, match=r"`method` must be 'exact' with zero_point='float'"):
        vq.compare(w, 4, methods="vecq_grid", zero_point="float", group_size=32)
    np.save(tmp_path / "w.npy", w)
    assert main(["compare", str(tmp_path / "w.npy"), "--bits", "4", "--zero-point", "float",
                 "--group-size", "32", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in cli] == ["vecq_exact"]
    assert main(["compare", str(tmp_path / "w.npy"), "--bits", "4", "--zero-point",
                 "float"]) == 0
    out = capsys.readouterr().out
    # Per tensor (64 weights, above the 32 the search certifies): the best found, named so.
    assert "VecQ-exact, best found, not certified (vecq_exact)" in out and "grid" not in out


@pytest.mark.parametrize(("kwargs", "where"), [({"group_size": 32}, "each group of 32"),
                                               ({"axis": 0}, "each slice"),
                                               ({}, "the tensor")])
def test_free_levels_are_marked_not_like_for_like(rng, kwargs, where):
    """Trial T4 item 5: grouped compare ranked Lloyd–Max (16 free levels per 32 weights) first
    with no caveat, while μL2Q's offset had the "not like for like" mark. Now Lloyd–Max gets
    the same mark and a legend line under its group, grouped and not."""
    w = rng.standard_normal((2, 64))
    rows = vq.compare(w, 4, methods="vecq_exact,lloyd_max,ul2q", **kwargs)
    by = {r["method"]: r for r in rows}
    assert C.free_levels(by["lloyd_max"]) and not C.free_levels(by["vecq_exact"])
    # Lloyd–Max's levels fit w at least as well as VecQ's uniform ones: first of its group.
    assert by["lloyd_max"]["rank"] == 1
    lines = C.format_records(rows).splitlines()
    assert lines[-2:] == ["  " + C.OFFSET_LEGEND,
                          "  " + C.FREE_LEVELS_LEGEND.format(where=where)]
    assert "not like for like" in lines[-1]
    # The method cell ends "(identifier)" plus the mark: Lloyd–Max and μL2Q marked, VecQ not.
    cells = {re.search(r"\(\w+\)\*?", ln).group() for ln in lines[2:-2]}
    assert cells == {"(lloyd_max)" + C.OFFSET_MARK, "(ul2q)" + C.OFFSET_MARK, "(vecq_exact)"}
    # No free-levels legend in a group without such a method.
    assert "free levels" not in C.format_records(vq.compare(w, 4, methods="vecq_exact,ul2q",
                                                            **kwargs))


def test_uncertified_exact_rows_are_named_the_best_found(rng):
    """Trial T4 item 9: the real offset's rows the search did not certify (groups of 64 at
    4 bits: the best found) were labelled "exact optimum"; now "best found, not certified",
    as verify and audit word it, and certified rows keep "exact optimum"."""
    w = rng.standard_normal((2, 64))
    rows = vq.compare(w, 4, methods="vecq_exact,formats", zero_point="float", group_size=64)
    by = {r["method"]: r for r in rows}
    assert by["exact_q4_1"]["certified"] is False and by["vecq_exact"]["certified"] is False
    text = C.format_records(rows)
    assert "best found, not certified (exact_q4_1)" in text
    assert "VecQ-exact, best found, not certified (vecq_exact)" in text
    assert "exact optimum" not in text and C.UNCERTIFIED_LEGEND in text
    certified = C.format_records(vq.compare(w, 4, methods="formats", zero_point="float",
                                            group_size=32))
    assert "exact optimum (exact_q4_1)" in certified and "best found" not in certified
    assert C._method_cell("exact_q4_1", short=True, certified=False) == "exact_q4_1, best found"
