import json
from pathlib import Path

import numpy as np
import pytest

from vecq_ref import golden, quantize
from vecq_ref.check import conventions as C
from vecq_ref.cli import main

GOLDEN = Path(__file__).parent / "golden"


def _search_available():
    try:
        import vecq_ref.search  # noqa: F401
    except ImportError:
        return False
    return True


def test_committed_set_is_small_and_versioned():
    total = sum(p.stat().st_size for p in GOLDEN.iterdir())
    assert total < 1_000_000
    manifest, arrays = golden.load(GOLDEN)
    assert manifest["schema_version"] == golden.SCHEMA_VERSION
    assert manifest["library_version"]
    assert set(manifest["formulas"]) >= {"midrise", "midtread", "param", "paper"}
    assert manifest["tolerances"]["codes"] == "exact"
    cases = manifest["cases"]
    assert {c["bits"] for c in cases} == set(range(1, 9))
    assert {c["lattice"] for c in cases} == {"midrise", "midtread"}
    assert {c["axis"] for c in cases} == {None, 0}
    assert {c["kind"] for c in cases} == {"random", "tie", "tiny"}
    assert {"param", "paper"} <= {c["method"] for c in cases}
    if _search_available():
        assert "exact" in manifest["methods"]
    for c in cases:
        assert arrays[f"{c['name']}.codes"].dtype == np.int8
        assert arrays[f"{c['name']}.values"].shape == tuple(c["shape"])


def test_current_code_reproduces_the_committed_set():
    report = golden.check(GOLDEN, quantize, values_rtol=1e-12, alpha_rtol=1e-12)
    assert report.passed, str(report)
    manifest, _ = golden.load(GOLDEN)
    ran = len(report.rows) + report.skipped
    assert ran == len(manifest["cases"])
    if _search_available():
        assert report.skipped == 0


def test_tie_cases_hold_exactly():
    manifest, arrays = golden.load(GOLDEN)
    for c in manifest["cases"]:
        if c["kind"] != "tie":
            continue
        w = arrays[f"{c['name']}.w"]
        s = float(arrays[f"{c['name']}.step"])
        if c["lattice"] == "midrise":
            expected = [0.0, 1.0, -1.0] if c["bits"] > 1 else [0.0]
        else:
            expected = [0.5, -0.5, 1.5, -1.5] if c["bits"] > 2 else [0.5, -0.5]
        assert (w[:len(expected)] / s).tolist() == expected, c["name"]
        if c["bits"] > 1:
            # the rounding conventions disagree on these vectors
            outs = {n: C.apply(n, w, c["bits"], c["lattice"])
                    for n in ("floor", "round_half_away", "round_half_even")}
            assert len({o.tobytes() for o in outs.values()}) >= 2


@pytest.mark.jit_only
def test_regenerating_gives_the_same_numbers(tmp_path):
    manifest = golden.generate(tmp_path)
    old, old_arrays = golden.load(GOLDEN)
    new, new_arrays = golden.load(tmp_path)
    assert manifest == new
    assert [c["name"] for c in new["cases"]] == [c["name"] for c in old["cases"]]
    for key, a in old_arrays.items():
        b = new_arrays[key]
        if a.dtype.kind in "iu":
            np.testing.assert_array_equal(a, b, err_msg=key)
        else:
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=0, err_msg=key)


def test_check_a_float32_user_quantizer_passes():
    def user(w, bits):  # a float32 port of VecQ-param, per tensor, midrise only
        return quantize(np.asarray(w, dtype=np.float32), bits).values

    report = golden.check(GOLDEN, user, dtype=np.float32)
    assert report.passed, str(report)
    assert report.skipped > 0  # axis / lattice / method cases it cannot express
    assert all("tie" not in r["case"] for r in report.rows)  # ties only exist in float64


def test_check_catches_wrong_conventions():
    def half_even(w, bits, lattice="midrise", axis=None):
        return C.apply("round_half_even", w, bits, lattice, axis)

    report = golden.check(GOLDEN, half_even)
    assert not report.passed
    assert report.failures and all(r["case"].startswith(("tie_", "tiny_"))
                                   for r in report.failures)

    def norm(w, bits, lattice="midrise", axis=None):
        return {"values": C.apply("norm_alpha", w, bits, lattice, axis)}

    report = golden.check(GOLDEN, norm, kinds=["random"], bits=[3])
    assert report.failures and "values differ" in report.failures[0]["why"]


def _printed_lambda_param(w, bits):
    """VecQ-param per tensor, midrise, in plain NumPy, with λ_k rounded to the README's 10
    printed decimals (λ_4 = 0.3352006122) instead of the float64 ``optimal_step(k)``."""
    from vecq_ref import optimal_step

    s = round(optimal_step(bits), 10) * np.std(w)
    half = 2 ** (bits - 1)
    v = np.clip(np.floor(w / s if s > 0 else 0 * w), -half, half - 1) + 0.5
    return np.sum(w * v) / np.sum(v * v) * v


def test_tie_failures_say_ties_need_the_float64_lambda():
    from vecq_ref import optimal_step

    # The printed λ_4 is not the float64 one: its step misses the tie entries' thresholds.
    assert round(optimal_step(4), 10) != optimal_step(4)
    report = golden.check(GOLDEN, _printed_lambda_param)
    failed = sorted(r["case"] for r in report.failures)
    assert failed == ["tie_param_midrise_k2", "tie_param_midrise_k3", "tie_param_midrise_k4"]
    assert all(r["kind"] == "tie" for r in report.failures)
    assert "values differ by up to 0.923" in report.failures[0]["why"]
    assert len(report.notes) == 1
    assert "only the 3 tie cases failed" in report.notes[0]
    assert "ties need the float64 λ from optimal_step" in report.notes[0]
    text = str(report)
    assert f"  note: {report.notes[0]}" in text
    assert text.index("FAIL tie_param_midrise_k4") < text.index("note:")
    assert report.as_dict()["notes"] == report.notes


def test_tie_note_also_names_the_rounding_rule():
    # Right step, other rounding at a tie (half to even): the same cases fail, the note says
    # the rounding is the other way to miss them.
    def half_even(w, bits, lattice="midrise", axis=None):
        return C.apply("round_half_even", w, bits, lattice, axis)

    report = golden.check(GOLDEN, half_even)
    assert report.failures and all(r["kind"] == "tie" for r in report.failures)
    assert len(report.notes) == 1 and "the golden rounding at a tie" in report.notes[0]


def test_no_tie_note_when_other_cases_fail_or_nothing_fails():
    # Other failures besides the ties: the note would mislead.
    def norm(w, bits, lattice="midrise", axis=None):
        return {"values": C.apply("norm_alpha", w, bits, lattice, axis)}

    report = golden.check(GOLDEN, norm)
    assert any(r["kind"] != "tie" for r in report.failures) and report.notes == []
    assert "note:" not in str(report)
    # Only tie cases run: nothing else passed to single them out.
    report = golden.check(GOLDEN, _printed_lambda_param, kinds=["tie"])
    assert report.failures and report.notes == []
    # Nothing fails: no note.
    report = golden.check(GOLDEN, quantize, values_rtol=1e-12, alpha_rtol=1e-12)
    assert report.passed and report.notes == []


def test_check_compares_returned_codes_and_alpha():
    def wrong_codes(w, bits, method="param", lattice="midrise", axis=None):
        q = quantize(w, bits, method=method, lattice=lattice, axis=axis)
        return {"values": q.values, "codes": q.codes + 1, "alpha": q.alpha}

    report = golden.check(GOLDEN, wrong_codes, methods=["param"], bits=[4])
    assert not report.passed and "codes differ" in report.failures[0]["why"]


def test_check_reports_exceptions_and_bad_returns():
    def boom(w, bits):
        raise RuntimeError("not implemented")

    report = golden.check(GOLDEN, boom, kinds=["tiny"])
    assert not report.passed and "RuntimeError: not implemented" in report.rows[0]["why"]
    report = golden.check(GOLDEN, lambda w, bits: w[:1], kinds=["tiny"])
    assert not report.passed and "shape" in report.failures[-1]["why"]
    with pytest.raises(TypeError, match="`fn` must be a callable"):
        golden.check(GOLDEN, 3)


def test_tie_vector_is_exact():
    w = golden.tie_vector(2, "midtread", n=12, seed=1)
    s = quantize(w, 2, lattice="midtread").step
    assert (w[:2] / s).tolist() == [0.5, -0.5]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        golden.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        golden.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(ValueError, match="schema_version must be 1; got 99"):
        golden.load(tmp_path)
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    np.savez(tmp_path / "golden.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="do not match"):
        golden.load(tmp_path)
    (tmp_path / "golden.npz").write_bytes((GOLDEN / "golden.npz").read_bytes()[:5000])
    with pytest.raises(ValueError, match="malformed or truncated"):
        golden.load(tmp_path)


def test_cli_golden(tmp_path, capsys, monkeypatch):
    # The full set is checked above; here only the command's plumbing, on a reduced case list.
    w = np.array([0.1, -0.4, 0.25, 0.9])
    cases = [(f"tiny_{k}", w, "param", k, "midrise", None, "tiny") for k in (1, 2, 3, 4)]
    monkeypatch.setattr(golden, "_cases", lambda kinds: cases)
    out = tmp_path / "g"
    assert main(["golden", "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["cases"] == 4 and (out / "golden.npz").is_file()
    assert main(["golden", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["golden", "--out", str(out), "--force"]) == 0


# --- issue #12: check() runs what it is asked to, and says what differs ------------------------

def test_check_runs_a_methods_cases_with_a_function_without_method():
    def paper_port(w, bits):  # someone's port of the released expression, per tensor only
        return quantize(w, bits, method="paper").values

    report = golden.check(GOLDEN, paper_port, methods=["paper"])
    manifest, _ = golden.load(GOLDEN)
    n_paper = sum(c["method"] == "paper" for c in manifest["cases"])
    assert report.rows and report.passed, str(report)
    method_of = {c["name"]: c["method"] for c in manifest["cases"]}
    assert {method_of[r["case"]] for r in report.rows} == {"paper"}
    assert len(report.rows) + report.skipped == n_paper
    # what was not run, and why, is said
    assert set(report.skip_reasons) <= {"fn has no `axis` parameter (per-channel cases)",
                                        "fn has no `lattice` parameter (midtread cases)"}
    assert sum(report.skip_reasons.values()) == report.skipped
    assert "skipped" in str(report) and "no `axis` parameter" in str(report)
    # the param function is not the released expression: each failure names codes or α
    report = golden.check(GOLDEN, lambda w, bits: quantize(w, bits).values, methods=["paper"])
    assert not report.passed
    assert all("codes differ" in r["why"] or "α/golden α" in r["why"] for r in report.failures)
    with pytest.raises(ValueError, match="`methods` must be one of"):
        golden.check(GOLDEN, paper_port, methods=["nope"])


def test_check_without_method_parameter_says_which_methods_it_left_out():
    report = golden.check(GOLDEN, lambda w, bits: quantize(w, bits).values, kinds=["tiny"])
    assert report.passed
    (why, n), = [(k, v) for k, v in report.skip_reasons.items() if "`method`" in k]
    assert "paper" in why and n > 0 and "pass methods=" in why


def test_check_reports_codes_alpha_ratio_and_nan_per_case():
    def norm(w, bits):
        return C.apply("norm_alpha", w, bits)

    report = golden.check(GOLDEN, norm, kinds=["random"], bits=[3])
    row = report.failures[0]
    assert row["codes_differing"] == 0
    assert row["alpha_ratio"] > 1  # ‖w‖/‖v‖ ≥ ⟨w,v⟩/⟨v,v⟩ (Cauchy–Schwarz)
    assert f"α/golden α = {row['alpha_ratio']:.9g}" in row["why"]
    assert "0 of" not in row["why"]  # no code differs, so none is reported

    def shifted(w, bits):  # one code off in every case: the codes are counted
        q = quantize(w, bits)
        c = q.codes.astype(np.int64).copy()
        c.flat[0] = c.flat[0] - 1 if c.flat[0] > -(2 ** (bits - 1)) else c.flat[0] + 1
        return q.alpha * (c + 0.5)

    report = golden.check(GOLDEN, shifted, kinds=["random"], bits=[4])
    assert all(r["codes_differing"] == 1 for r in report.failures) and report.failures
    assert "1 of" in report.failures[0]["why"] and "codes differ" in report.failures[0]["why"]

    def nan_one(w, bits):
        v = quantize(w, bits).values.copy()
        v.flat[0] = np.nan
        return v

    report = golden.check(GOLDEN, nan_one, kinds=["tiny"])
    row = report.failures[0]
    assert row["nan_returned"] == 1 and row["why"].startswith("1 NaN of")
    assert "inf" not in row["why"]
    text = str(report)
    assert "vecq_ref.verify(w, your_values, bits=...)" in text


def test_check_with_nothing_run_says_so():
    report = golden.check(GOLDEN, lambda w, bits, axis: w, kinds=["tiny"], bits=[99])
    assert not report.passed and "no case was run" in str(report)


def test_golden_files_get_the_umask_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        golden.generate(tmp_path, kinds=["tiny"])
    finally:
        os.umask(old)
    for p in tmp_path.iterdir():
        assert p.stat().st_mode & 0o777 == 0o644, p


def test_summary_counts_run_and_skipped_cases_apart():
    # Was "30/30 cases passed (30 skipped)", as if the skipped cases had passed too.
    manifest, _ = golden.load(GOLDEN)
    n_paper = sum(c["method"] == "paper" for c in manifest["cases"])
    report = golden.check(GOLDEN, lambda w, bits: quantize(w, bits, method="paper").values,
                          methods=["paper"])
    run, skipped = len(report.rows), report.skipped
    assert run > 0 and skipped > 0 and run + skipped == n_paper
    assert str(report).startswith(f"golden check: {run} of {n_paper} cases run, {run} passed, "
                                  f"0 failed, {skipped} skipped ")
    nothing = golden.check(GOLDEN, lambda w, bits, axis: w, kinds=["tiny"], bits=[99])
    assert str(nothing).startswith(f"golden check: 0 of {nothing.skipped} cases run, 0 passed, "
                                   f"0 failed, {nothing.skipped} skipped ")
