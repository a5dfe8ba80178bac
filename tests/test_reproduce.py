"""``vecq-ref figures`` and ``vecq-ref reproduce``: exit codes, messages, JSON, files, resume."""

import contextlib
import io as _io
import json

import pytest

from vecq_ref import reproduce as R
from vecq_ref.cli import main

ALL_FIGURES = list(R.FIGURES)


def run(argv):
    """``(status, stdout, stderr)`` of the CLI, in-process."""
    out, err = _io.StringIO(), _io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def test_settings_presets():
    quick = R.settings(quick=True)
    assert quick.name == "quick" and not quick.lenet
    assert R.settings(seed=5).seed == 5
    assert R.settings().to_dict()["bits"] == list(R.DEFAULT.bits)
    names = [n for n, _ in R.stages(quick)]
    assert names[:2] == ["tables", "toy"]
    assert names[-3:] == ["lambda", "compare", "ptq"]
    assert "train-mlp-float" in names and "train-mlp-2bit" in names


@pytest.mark.parametrize("command", ["figures", "reproduce"])
def test_help_has_examples(command):
    status, out, _ = run([command, "--help"])
    assert status == 0
    assert "examples:" in out and f"vecq-ref {command}" in out


def test_figures_without_results_draws_the_theory_figures(tmp_path):
    status, out, err = run(["figures", "--out", str(tmp_path), "--json"])
    assert status == 0, err
    payload = json.loads(out)
    assert set(payload) == {"out", "figures", "skipped"}
    assert sorted(payload["figures"]) == ["fig1_toy", "fig2_orientation"]
    assert sorted(payload["skipped"]) == sorted(set(ALL_FIGURES) - {"fig1_toy",
                                                                    "fig2_orientation"})
    assert all("needs the" in why for why in payload["skipped"].values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fig1_toy.pdf", "fig1_toy.png", "fig2_orientation.pdf", "fig2_orientation.png"]

    # Refused without --force: exit 2, one line naming --force, no traceback, file untouched.
    before = (tmp_path / "fig1_toy.png").stat().st_mtime_ns
    status, out, err = run(["figures", "--out", str(tmp_path), "--only", "fig1_toy"])
    assert status == 2
    assert err.count("\n") == 1 and "--force" in err and "Traceback" not in err
    assert (tmp_path / "fig1_toy.png").stat().st_mtime_ns == before
    # Nothing is drawn when any target exists: no half-done folder.
    for fmt in ("png", "pdf"):
        (tmp_path / f"fig2_orientation.{fmt}").unlink()
    status, out, err = run(["figures", "--out", str(tmp_path)])
    assert status == 2 and "fig1_toy" in err
    assert not (tmp_path / "fig2_orientation.png").exists()
    status, out, err = run(["figures", "--out", str(tmp_path), "--only", "fig1_toy",
                            "--format", "png", "--force"])
    assert status == 0, err
    assert "fig1_toy" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--only", "fig9"], "unknown figures"),
    (["--only", "fig3_lambda"], "fig3_lambda cannot be drawn"),
    (["--format", "svg"], "--format"),
    (["--results", "does-not-exist"], "not a 'vecq-ref reproduce' folder"),
])
def test_figures_usage_errors(tmp_path, argv, message):
    status, out, err = run(["figures", "--out", str(tmp_path / "f"), *argv])
    assert status == 2
    assert message in err and err.count("\n") == 1 and out == ""


def test_reproduce_usage_errors(tmp_path):
    status, _, err = run(["reproduce", "--quick"])
    assert status == 2 and "--out" in err
    status, _, err = run(["reproduce", "--out", str(tmp_path), "--format", "jpg"])
    assert status == 2 and "--format" in err


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reproduce") / "out"
    status, out, err = run(["reproduce", "--quick", "--out", str(folder), "--json"])
    return folder, status, out, err


@pytest.mark.jit_only
def test_reproduce_quick_end_to_end(quick_run):
    folder, status, out, err = quick_run
    assert status == 0, err
    payload = json.loads(out)
    assert set(payload) == {"out", "report", "results", "figures", "skipped", "stages",
                            "summary", "already_finished"}
    assert payload["already_finished"] is False
    assert payload["skipped"] == {}
    assert sorted(payload["figures"]) == sorted(ALL_FIGURES)
    assert set(payload["stages"].values()) == {"ran"}
    assert set(payload["summary"]) == {"mlp-float", "mlp-1bit", "mlp-2bit", "mlp-4bit"}
    assert all(0.3 < acc <= 1.0 for acc in payload["summary"].values())
    # Progress was shown on stderr, stage by stage.
    assert "1/9 tables" in err and "report:" in err
    for stem in ALL_FIGURES:
        for fmt in ("png", "pdf"):
            assert (folder / "figures" / f"{stem}.{fmt}").stat().st_size > 1000
    report = (folder / "report.md").read_text(encoding="utf-8")
    for stem in ALL_FIGURES:
        assert f"![{stem}](figures/{stem}.png)" in report
    assert "| mlp-2bit | mlp | digits | 2 |" in report
    assert "0.9957" in report  # the λ table
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert set(results) >= {"settings", "tables", "training", "ptq", "lambda", "compare",
                            "figures"}
    assert results["settings"]["name"] == "quick"
    lam = results["lambda"]["records"]
    assert {r["bits"] for r in lam} == set(range(2, 9))
    assert all(r["certified"] for r in lam)
    # The exact step is never worse than the grid or the Gaussian one (same layer, bits).
    assert all(r["rdql_exact"] <= min(r["rdql_grid"], r["rdql_param"]) * (1 + 1e-9)
               for r in lam)
    methods = {r["method"] for b in results["compare"]["layers"] for r in b["records"]}
    assert {"vecq_param", "vecq_exact", "vecq_grid", "vecq_alternating", "twn", "bwn",
            "ul2q", "absmax", "dorefa", "lloyd_max"} <= methods
    assert set(results["ptq"]["mlp"]) == {"float", "1", "2", "3", "4", "6", "8"}


@pytest.mark.jit_only
def test_reproduce_again_redoes_nothing_and_resumes_an_interrupted_one(quick_run):
    folder, status, first, _ = quick_run
    assert status == 0
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    # Quickstart line 1 twice: one line saying so, exit 0, nothing redone or written.
    status, out, err = run(["reproduce", "--quick", "--out", str(folder)])
    assert status == 0, err
    assert out == (f"{folder} already holds this finished reproduction; nothing redone "
                   f"(report: {folder / 'report.md'}; --force redoes every stage)\n")
    assert err == ""
    assert sorted(p for p in folder.rglob("*") if p.is_file()) == files
    assert [p.stat().st_mtime_ns for p in files] == stamps
    status, out, err = run(["reproduce", "--quick", "--out", str(folder), "--json"])
    assert status == 0 and err == ""
    again, first = json.loads(out), json.loads(first)
    assert again.pop("already_finished") is True and first.pop("already_finished") is False
    assert set(again.pop("stages").values()) == {"resumed"}
    first.pop("stages")
    assert again == first  # the same results, figures and report, read back
    # The API says the same.
    assert R.reproduce(folder, quick=True, quiet=True)["already_finished"] is True
    # Other settings on the finished folder: refused, in options.
    status, _, err = run(["reproduce", "--quick", "--out", str(folder), "--seed", "1"])
    assert status == 2 and err.count("\n") == 1
    assert "other settings ([--seed])" in err and "pass --force" in err and "=" not in err

    # Interrupt: lose the report, one stage and one figure; the rerun redoes only those.
    fig4 = (folder / "figures" / "fig4_dql_bits.png").read_bytes()
    fig5 = (folder / "figures" / "fig5_training.pdf").read_bytes()
    weights = folder / "runs" / "mlp-2bit" / "weights.npz"
    weights_bytes = weights.read_bytes()
    results = (folder / "results.json").read_bytes()
    (folder / "report.md").unlink()
    (folder / "stages" / "compare.json").unlink()
    for fmt in ("png", "pdf"):
        (folder / "figures" / f"fig4_dql_bits.{fmt}").unlink()
    # ... an interrupt between a figure's PNG and its PDF, a file cut short by something
    # else, and a finished stage whose output is gone: all redone without --force.
    (folder / "figures" / "fig5_training.pdf").unlink()
    png6 = folder / "figures" / "fig6_codes.png"
    png6.write_bytes(png6.read_bytes()[:200])
    weights.unlink()
    status, out, err = run(["reproduce", "--quick", "--out", str(folder), "--json",
                            "--quiet"])
    assert status == 0, err
    assert err == ""
    stages = json.loads(out)["stages"]
    assert stages.pop("compare") == "ran" and stages.pop("train-mlp-2bit") == "ran"
    assert set(stages.values()) == {"resumed"}
    # Same inputs → same files.
    assert (folder / "figures" / "fig4_dql_bits.png").read_bytes() == fig4
    assert (folder / "figures" / "fig5_training.pdf").read_bytes() == fig5
    assert weights.read_bytes() == weights_bytes
    assert png6.stat().st_size > 1000
    assert (folder / "results.json").read_bytes() == results

    # Other settings in the same unfinished folder are refused.
    (folder / "report.md").unlink()
    status, _, err = run(["reproduce", "--quick", "--out", str(folder), "--seed", "1"])
    assert status == 2 and "other settings" in err and "seed" in err


@pytest.mark.jit_only
def test_figures_from_a_reproduce_folder_match_its_files(quick_run, tmp_path):
    folder, status, _, _ = quick_run
    assert status == 0
    status, out, err = run(["figures", "--results", str(folder), "--out", str(tmp_path),
                            "--only", "fig3_lambda,fig6_codes", "--format", "png"])
    assert status == 0, err
    for stem in ("fig3_lambda", "fig6_codes"):
        assert ((tmp_path / f"{stem}.png").read_bytes()
                == (folder / "figures" / f"{stem}.png").read_bytes())


def test_reproduce_without_the_data_packages_degrades_with_notes(tmp_path, monkeypatch):
    from vecq_ref import data

    def no_data(*args, **kwargs):
        raise ImportError("dataset 'digits' needs the sklearn package, which is not installed")

    monkeypatch.setattr(data, "load", no_data)
    res = R.reproduce(tmp_path / "out", quick=True, quiet=True, formats=("png",))
    assert res["stages"]["tables"] == "ran" and res["stages"]["toy"] == "ran"
    skipped = {k for k, v in res["stages"].items() if v.startswith("skipped")}
    assert skipped == {n for n, _ in R.stages(R.QUICK)} - {"tables", "toy"}
    assert "sklearn" in res["stages"]["train-mlp-float"]
    assert sorted(res["figures"]) == ["fig1_toy", "fig2_orientation"]
    assert set(res["skipped"]) == set(R.FIGURES) - {"fig1_toy", "fig2_orientation"}
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Stages not run" in report and "train-mlp-2bit: skipped" in report
    assert "fig5_training: not drawn" in report


def test_stage_done_needs_every_output_whole(tmp_path):
    (tmp_path / "stages").mkdir()
    run_dir = tmp_path / "runs" / "mlp-float"
    run_dir.mkdir(parents=True)
    assert R.stage_outputs("tables", tmp_path) == []
    assert not R.stage_done("tables", tmp_path)
    (tmp_path / "stages" / "tables.json").write_text('{"rows": [')  # cut short
    assert not R.stage_done("tables", tmp_path)
    (tmp_path / "stages" / "tables.json").write_text('{"rows": []}')
    assert R.stage_done("tables", tmp_path)
    (tmp_path / "stages" / "train-mlp-float.json").write_text("{}")
    assert not R.stage_done("train-mlp-float", tmp_path)  # no weights, checkpoint, config
    from vecq_ref import io as vio

    for f in ("weights.npz", "checkpoint.npz"):
        vio.save_npz(run_dir / f, {"w": [1.0, 2.0]})
    (run_dir / "config.json").write_text("{}")
    assert R.stage_done("train-mlp-float", tmp_path)
    raw = (run_dir / "weights.npz").read_bytes()
    (run_dir / "weights.npz").write_bytes(raw[:-30])
    assert not R.stage_done("train-mlp-float", tmp_path)


def test_reproduce_interrupted_says_how_to_resume(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(R, "reproduce", interrupted)
    status, out, err = run(["reproduce", "--quick", "--out", str(tmp_path)])
    assert status == 130 and out == ""
    assert "run the same command again to resume" in err and err.count("\n") == 1
