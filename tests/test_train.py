"""The training loop: it learns, it is reproducible, resume = uninterrupted, the CLI works."""

import json

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from vecq_ref import data
from vecq_ref.cli import main
from vecq_ref.io import load_npz
from vecq_ref.nn import QuantSpec, build_model, lenet5, mlp, train
from vecq_ref.nn.log import read_jsonl, to_csv


@pytest.fixture(scope="module")
def tiny():
    """240 training and 120 test digits."""
    ds = data.load("digits", seed=0)
    return data.Dataset("digits", ds.x_train[:240], ds.y_train[:240], ds.x_test[:120],
                        ds.y_test[:120])


@pytest.fixture(scope="module")
def tiny16(tiny):
    """The same digits upsampled to 16×16 for a small LeNet."""
    up = [np.kron(a, np.ones((1, 1, 2, 2), np.float32)) for a in (tiny.x_train, tiny.x_test)]
    return data.Dataset("digits16", up[0], tiny.y_train, up[1], tiny.y_test)


def small_lenet(seed=0):
    return lenet5(1, 16, widths=(4, 6, 24), seed=seed)


def run(ds, out=None, model=None, **kw):
    # No param-vs-exact gaps (an exact search each) except where a test asks for them.
    settings = {"epochs": 2, "batch_size": 24, "lr": 0.1, "quiet": True, "seed": 0,
                "gap_every": None}
    settings.update(kw)
    return train(model or mlp(64, (32,), seed=0), ds, out=out, **settings)


@pytest.mark.parametrize("bits", [None, 2], ids=["float", "2bit"])
def test_short_run_lowers_the_loss(tiny, bits):
    quant = None if bits is None else QuantSpec(bits=bits)
    result = run(tiny, quant=quant, epochs=3)
    losses = [r["loss"] for r in result.epochs]
    assert losses[-1] < 0.7 * losses[0]
    assert result.test_accuracy > 0.6
    if bits:
        rec = result.steps[-1]
        assert {"fc1/relative_dql", "fc1/J_o", "fc1/J_m", "fc1/alpha", "fc1/step"} <= set(rec)
        assert 0 < rec["fc1/relative_dql"] < 0.3


def test_lenet_qat_lowers_the_loss(tiny16):
    result = run(tiny16, model=small_lenet(), quant=QuantSpec(bits=4), epochs=2)
    assert result.epochs[-1]["loss"] < result.epochs[0]["loss"]
    assert result.config["quantized_layers"] == ["conv1", "conv2", "fc1", "fc2"]


def test_adam_and_schedule(tiny):
    result = run(tiny, optimizer="adam", lr=1e-3, milestones=(1,), gamma=0.5)
    assert [r["lr"] for r in result.epochs] == [1e-3, 5e-4]


@pytest.mark.parametrize("bits", [None, 2], ids=["float", "2bit"])
def test_same_seed_gives_identical_logs(tiny, tmp_path, bits):
    quant = None if bits is None else QuantSpec(bits=bits)
    a = run(tiny, tmp_path / "a", quant=quant)
    run(tiny, tmp_path / "b", quant=quant)
    for name in ("steps.jsonl", "epochs.jsonl", "steps.csv", "epochs.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    wa, wb = load_npz(tmp_path / "a" / "weights.npz"), load_npz(tmp_path / "b" / "weights.npz")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert_array_equal(wa[k], wb[k])
    assert a.steps == read_jsonl(tmp_path / "a" / "steps.jsonl")
    c = run(tiny, tmp_path / "c", quant=quant, seed=1)
    assert c.steps != a.steps


@pytest.mark.parametrize("stop", [5, 10], ids=["mid-epoch", "epoch-end"])
@pytest.mark.parametrize("bits", [None, 2], ids=["float", "2bit"])
def test_resume_reproduces_the_uninterrupted_run(tiny, tmp_path, stop, bits):
    quant = None if bits is None else QuantSpec(bits=bits)
    def fresh(seed=0):
        return mlp(64, (32,), batchnorm=True, seed=seed)

    kw = {"quant": quant, "epochs": 3}
    run(tiny, tmp_path / "whole", model=fresh(), **kw)
    first = run(tiny, tmp_path / "split", model=fresh(), max_steps=stop, **kw)
    assert not first.finished
    assert len(first.steps) == stop
    # A differently initialised model: the checkpoint overwrites every parameter and buffer.
    resumed = run(tiny, tmp_path / "split", model=fresh(123), resume=True, **kw)
    assert resumed.finished
    for name in ("steps.jsonl", "epochs.jsonl", "steps.csv", "epochs.csv", "weights.npz"):
        assert ((tmp_path / "whole" / name).read_bytes()
                == (tmp_path / "split" / name).read_bytes()), name


def test_resume_after_a_crash_truncates_the_log(tiny, tmp_path):
    out = tmp_path / "run"
    run(tiny, out, checkpoint_every=3, max_steps=5)
    # The checkpoint was at step 3; steps 4 and 5 were logged but not saved.
    run(tiny, tmp_path / "ref")
    (out / "checkpoint.npz").unlink()
    run(tiny, tmp_path / "ckpt3", checkpoint_every=3, max_steps=4)
    (tmp_path / "ckpt3" / "checkpoint.npz").rename(out / "checkpoint.npz")
    run(tiny, out, resume=True, checkpoint_every=3)
    assert (out / "steps.jsonl").read_bytes() == (tmp_path / "ref" / "steps.jsonl").read_bytes()


def test_output_folder_rules(tiny, tmp_path):
    run(tiny, tmp_path, epochs=1)
    with pytest.raises(FileExistsError, match="already holds a run"):
        run(tiny, tmp_path, epochs=1)
    run(tiny, tmp_path, epochs=1, force=True)
    with pytest.raises(ValueError, match="settings of the saved run; these differ: \\['lr'\\]"):
        run(tiny, tmp_path, epochs=2, lr=0.2, resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run(tiny, tmp_path / "empty" / "deeper", resume=True)
    assert not (tmp_path / "empty").exists()  # a failed start creates nothing
    with pytest.raises(ValueError, match="`out` must be a folder"):
        run(tiny, None, resume=True)
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1"):
        run(tiny, None, epochs=0)


def _interrupt_at_step(monkeypatch, step):
    """Ctrl-C during the ``step``-th logged step (before any checkpoint of an epoch > step)."""
    import importlib

    train_module = importlib.import_module("vecq_ref.nn.train")
    real, calls = train_module.layer_metrics, []

    def metrics(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "layer_metrics", metrics)
    return lambda: monkeypatch.setattr(train_module, "layer_metrics", real)


@pytest.mark.parametrize("bits", [None, 2], ids=["float", "2bit"])
def test_resume_before_the_first_checkpoint_starts_over(tiny, tmp_path, monkeypatch, bits):
    """Past bug: Ctrl-C before the first checkpoint left config.json and steps.jsonl, and then
    neither --resume ("nothing to resume") nor the plain command ("already holds a run")
    worked. --resume now restarts it from step 0, bit for bit like an uninterrupted run."""
    kw = {"quant": None if bits is None else QuantSpec(bits=bits), "epochs": 2}
    run(tiny, tmp_path / "whole", **kw)
    restore = _interrupt_at_step(monkeypatch, 4)  # epoch 1 has 10 steps: no checkpoint yet
    with pytest.raises(KeyboardInterrupt):
        run(tiny, tmp_path / "split", **kw)
    restore()
    left = {p.name for p in (tmp_path / "split").iterdir()}
    assert "checkpoint.npz" not in left and {"config.json", "steps.jsonl"} <= left
    with pytest.raises(FileExistsError, match="already holds a run.*to start it again"):
        run(tiny, tmp_path / "split", **kw)
    with pytest.raises(ValueError, match="these differ: \\['lr'\\]"):  # still the same run
        run(tiny, tmp_path / "split", resume=True, **{**kw, "lr": 0.2})
    resumed = run(tiny, tmp_path / "split", resume=True, **kw)
    assert resumed.finished and resumed.steps[0]["step"] == 1
    for name in ("steps.jsonl", "epochs.jsonl", "steps.csv", "epochs.csv", "weights.npz",
                 "checkpoint.npz", "config.json"):
        assert ((tmp_path / "whole" / name).read_bytes()
                == (tmp_path / "split" / name).read_bytes()), name


def test_cli_interrupt_message_tells_what_was_saved(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "mlp", "--data", "digits", "--hidden", "8", "--epochs", "1",
            "--batch-size", "512", "--out", str(out), "--quiet", "--gap-every", "-1"]
    restore = _interrupt_at_step(monkeypatch, 2)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no checkpoint was saved yet" in err and "--resume" in err
    assert "the last checkpoint" not in err
    restore()
    assert main(args + ["--resume"]) == 0, capsys.readouterr().err
    assert len(read_jsonl(out / "epochs.jsonl")) == 1
    assert main(["train", "--out", str(tmp_path / "never" / "x"), "--resume", "--quiet"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_longer_resume_extends_a_finished_run(tiny, tmp_path):
    run(tiny, tmp_path / "a", epochs=1, quant=QuantSpec(bits=2))
    saved = (tmp_path / "a" / "weights.npz").read_bytes()
    again = run(tiny, tmp_path / "a", epochs=1, quant=QuantSpec(bits=2), resume=True)
    assert len(again.epochs) == 1
    assert (tmp_path / "a" / "weights.npz").read_bytes() == saved  # nothing left to do
    run(tiny, tmp_path / "a", epochs=1, force=True)
    extended = run(tiny, tmp_path / "a", epochs=2, resume=True)
    whole = run(tiny, tmp_path / "b", epochs=2)
    assert extended.epochs == whole.epochs


@pytest.mark.jit_only  # the gap runs the exact search, whose kernels are slow uncompiled
def test_log_every_and_gap_keys(tiny):
    result = run(tiny, quant=QuantSpec(bits=2), log_every=4, gap_every=8)
    assert [r["step"] for r in result.steps] == list(range(4, 21, 4))
    assert "fc1/dql_gap" in result.epochs[-1]  # None until vecq_ref.search exists
    gap = result.epochs[-1]["fc1/dql_gap"]
    assert gap is None or gap >= -1e-12
    assert [("fc1/dql_gap" in r) for r in result.steps] == [False, True, False, True, False]
    assert "fc1/dql_gap" not in run(tiny, quant=QuantSpec(bits=2), epochs=1).epochs[-1]


def test_csv_quotes_nothing_and_keeps_order():
    text = to_csv([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25, "x/gap": None}])
    assert text == "step,loss,x/gap\n1,0.5,\n2,0.25,\n"


def test_build_model_sizes(tiny, tiny16):
    assert build_model("mlp", tiny, hidden=(16,)).num_parameters() == 64 * 16 + 16 + 170
    assert build_model("lenet5", tiny16, widths=(2, 3, 4)).params["fc1.weight"].shape == (4, 3)
    with pytest.raises(ValueError, match="`model` must be one of"):
        build_model("resnet", tiny)


def test_cli_train_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "mlp", "--data", "digits", "--hidden", "16", "--bits", "2",
            "--epochs", "1", "--batch-size", "256", "--out", str(out), "--quiet", "--json",
            "--gap-every", "-1"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["epochs"] == 1
    assert 0 < payload["final"]["test_acc"] <= 1
    assert {"steps.jsonl", "steps.csv", "epochs.jsonl", "epochs.csv", "checkpoint.npz",
            "weights.npz", "config.json"} <= {p.name for p in out.iterdir()}
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    more = [a if a != "1" else "2" for a in args] + ["--resume"]
    assert main(more) == 0
    assert len(read_jsonl(out / "epochs.jsonl")) == 2
    assert main(["train", "--model", "lenet5", "--data", "digits", "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2
    assert "`image_size` must be at least 16" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal(tiny, monkeypatch, capsys):
    import importlib
    import io

    train_module = importlib.import_module("vecq_ref.nn.train")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert train_module._progress(10, "x", quiet=False) is None  # pytest's stderr is no tty
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    assert train_module._progress(10, "x", quiet=True) is None
    bar = train_module._progress(10, "x", quiet=False)
    assert bar is not None
    bar.close()
    run(tiny, epochs=1, quiet=False)
    assert "epoch 1/1" in term.getvalue()
