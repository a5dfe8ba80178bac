"""The training loop (no autograd): forward, loss, backward, optimiser step — and the log.

The loop in :func:`train` is the whole story; everything else here is bookkeeping:

* batches: epoch ``e`` visits the training set in the order
  ``default_rng([seed, e]).permutation(n)``, so a run resumed at any step sees the same
  batches as an uninterrupted one;
* the log (:mod:`vecq_ref.nn.log`): one record per ``log_every`` steps and one per epoch,
  with loss, accuracy and, per quantized layer, relative DQL, J_o, J_m, α, step, and — every
  ``gap_every`` steps and at each epoch end, when ``vecq_ref.search`` is available — the
  relative-DQL gap between the ``param`` step and the ``exact`` step;
* checkpoints (:mod:`vecq_ref.nn.checkpoint`) at each epoch end and every
  ``checkpoint_every`` steps; ``resume=True`` continues from the last one and reproduces the
  uninterrupted run bit for bit.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _validation as V
from ..quantize import quantize
from . import checkpoint, qat
from .log import MetricsLog
from .losses import SoftmaxCrossEntropy, accuracy, log_softmax
from .models import MODELS
from .optim import StepLR, make_optimizer

CHECKPOINT = "checkpoint.npz"


@dataclass
class TrainResult:
    model: object
    steps: list
    epochs: list
    config: dict
    out: Path | None = None
    finished: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def test_accuracy(self):
        return self.epochs[-1]["test_acc"] if self.epochs else None


def build_model(name, data, seed=0, hidden=(256,), widths=None, batchnorm=False):
    """``"lenet5"`` or ``"mlp"`` sized for ``data`` (a :class:`vecq_ref.data.Dataset`)."""
    name = V.choice(name, "model", tuple(MODELS))
    c, h, _ = data.image_shape
    if name == "mlp":
        return MODELS[name](c * h * h, tuple(hidden), data.num_classes, batchnorm, seed)
    kwargs = {"widths": tuple(widths)} if widths is not None else {}
    return MODELS[name](c, h, data.num_classes, seed=seed, **kwargs)


def _exact_available():
    return importlib.util.find_spec("vecq_ref.search") is not None


def _mean(x):
    return float(np.mean(x))


def layer_metrics(model, with_gap=False):
    """Flat ``{"<layer>/<metric>": value}`` of every quantized layer's last quantization."""
    out = {}
    for name, layer in qat.quantized_layers(model):
        qz = layer.quantizer
        q = qz.last
        if q is None:
            continue
        out[f"{name}/relative_dql"] = float(q.loss.relative_dql)
        out[f"{name}/J_o"] = float(q.loss.orientation)
        out[f"{name}/J_m"] = float(q.loss.modulus)
        out[f"{name}/alpha"] = _mean(q.alpha)
        out[f"{name}/step"] = _mean(q.step)
        if with_gap:
            out[f"{name}/dql_gap"] = _dql_gap(layer.params["weight"], qz)
    return out


def _dql_gap(w, qz):
    """Relative DQL of the param step minus that of the exact step (≥ 0), or None.

    Both on the current shadow weights ``w`` (after the step's update), whatever method the
    layer trains with.
    """
    if not _exact_available():
        return None
    kw = {"lattice": qz.lattice, "axis": qz.axis, "group_size": qz.group_size}
    try:
        exact = quantize(w, qz.bits, method="exact", **kw)
    except ImportError:
        return None
    param = quantize(w, qz.bits, method="param", **kw)
    return float(param.loss.relative_dql - exact.loss.relative_dql)


def evaluate(model, x, y, batch_size=1000):
    """``(loss, accuracy)`` of ``model`` in eval mode on ``(x, y)``."""
    logits = model.predict(x, batch_size)
    logp = log_softmax(logits.astype(np.float64))
    return float(-logp[np.arange(len(y)), y].mean()), accuracy(logits, y)


def _progress(total, desc, quiet):
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _prepare_out(out, resume, force):
    """The output folder, checked before anything is created; ``(out, fresh)``.

    ``fresh`` is True when the run starts at step 0: a new run, ``force``, or ``resume`` of a
    run interrupted before its first checkpoint (its ``config.json`` is there, compared with
    the settings by the caller, and its logs are restarted). Nothing is created when the
    checks fail.
    """
    if out is None:
        if resume:
            V.fail("out", "a folder when `resume` is True", None)
        return None, True
    out = Path(out)
    has_checkpoint = (out / CHECKPOINT).exists()
    has_run = has_checkpoint or (out / "steps.jsonl").exists()
    if has_run and not resume and not force:
        how = "continue it" if has_checkpoint else (
            "start it again (it stopped before its first checkpoint)")
        raise FileExistsError(f"{out} already holds a run; pass resume=True to {how} or "
                              "force=True to start over")
    if resume and not has_checkpoint and not (out / "config.json").is_file():
        raise FileNotFoundError(f"nothing to resume: {out} holds no {CHECKPOINT} and no "
                                "config.json of an interrupted run")
    out.mkdir(parents=True, exist_ok=True)
    fresh = not (resume and has_checkpoint)
    if fresh:
        for stale in out.glob("*.jsonl"):
            stale.unlink()
        (out / CHECKPOINT).unlink(missing_ok=True)
    return out, fresh


def _check_same_run(saved, config):
    ignore = {"epochs"}
    diff = sorted(k for k in set(saved) | set(config)
                  if k not in ignore and saved.get(k) != config.get(k))
    if diff:
        raise ValueError(f"`resume` needs the settings of the saved run; these differ: {diff}")


def _quant_config(quant):
    if quant is None or isinstance(quant, qat.QuantSpec):
        return None if quant is None else quant.to_dict()
    return {k: (None if v is None else v.to_dict()) for k, v in sorted(quant.items())}


def train(model, data, *, epochs=10, batch_size=50, optimizer="sgd", lr=0.01, momentum=0.9,
          weight_decay=1e-4, milestones=(), gamma=0.1, quant=None, seed=0, out=None,
          resume=False, force=False, quiet=False, log_every=1, gap_every=0,
          checkpoint_every=0, max_steps=None, config_extra=None):
    """Train ``model`` on ``data`` with optional quantization-aware training.

    Parameters
    ----------
    model : Sequential
        Built with the same ``seed`` for reproducible runs (see :func:`build_model`).
    data : vecq_ref.data.Dataset
    epochs, batch_size : int
    optimizer : {"sgd", "adam"}; lr, momentum, weight_decay : float
    milestones, gamma : the step schedule, lr × gamma at each 0-based epoch in milestones.
    quant : None, QuantSpec or dict {layer: QuantSpec | None}
        None trains in float (docs/theory.md §5 for the quantized case).
    seed : int
        Seeds the batch order (the model's initialisation is seeded where it is built).
    out : folder, optional
        Where ``steps.jsonl``/``.csv``, ``epochs.jsonl``/``.csv``, ``checkpoint.npz`` and
        ``weights.npz`` go.
    resume : bool
        Continue the run saved in ``out``.
    quiet : bool
        No progress bar (it only appears on an interactive terminal anyway).
    log_every, gap_every, checkpoint_every : int
        Steps between step records, DQL-gap evaluations (0: at epoch ends only; None:
        never — each costs an exact search per layer) and extra checkpoints (0: at epoch
        ends only).
    max_steps : int, optional
        Stop (with a checkpoint) after this many steps in total — an interruption on purpose.

    Returns
    -------
    TrainResult
    """
    epochs = V.integer(epochs, "epochs", 1)
    batch_size = V.integer(batch_size, "batch_size", 1)
    log_every = V.integer(log_every, "log_every", 1)
    if gap_every is not None:
        gap_every = V.integer(gap_every, "gap_every", 0)
    checkpoint_every = V.integer(checkpoint_every, "checkpoint_every", 0)
    seed = V.integer(seed, "seed", 0)
    if max_steps is not None:
        max_steps = V.integer(max_steps, "max_steps", 1)
    specs = qat.attach(model, quant)
    opt = make_optimizer(optimizer, lr, momentum, weight_decay)
    schedule = StepLR(lr, milestones, gamma)
    config = {"data": data.name, "n_train": len(data.x_train), "n_test": len(data.x_test),
              "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
              "momentum": momentum, "weight_decay": weight_decay,
              "milestones": list(milestones), "gamma": gamma, "quant": _quant_config(quant),
              "seed": seed, "num_parameters": model.num_parameters(),
              "quantized_layers": sorted(n for n, s in specs.items()
                                         if s is not None and s.bits is not None),
              **(config_extra or {})}
    config = json.loads(json.dumps(config))
    if resume and out is not None and not (Path(out) / CHECKPOINT).exists() and (
            Path(out) / "config.json").is_file():
        # Interrupted before the first checkpoint: the same settings start it from step 0.
        _check_same_run(json.loads((Path(out) / "config.json").read_text(encoding="utf-8")),
                        config)
    out, fresh = _prepare_out(out, resume, force)
    log = MetricsLog(out)
    n = len(data.x_train)
    n_batches = -(-n // batch_size)
    start_epoch, start_batch, step = 0, 0, 0
    sums = {"loss": 0.0, "correct": 0, "seen": 0}
    if not fresh:
        state, opt_state, meta, saved = checkpoint.load(out / CHECKPOINT)
        _check_same_run(saved, config)
        model.load_state_dict(state)
        opt.load_state_dict(opt_state)
        start_epoch, start_batch, step = meta["epoch"], meta["batch"], meta["step"]
        sums = {"loss": meta["loss_sum"], "correct": meta["correct"], "seen": meta["seen"]}
        log.truncate(step)
    if out is not None:
        from ..io import write_text

        write_text(out / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n",
                   force=True)
    crit = SoftmaxCrossEntropy()

    def save_checkpoint(epoch, batch):
        if out is not None:
            meta = {"epoch": epoch, "batch": batch, "step": step, "loss_sum": sums["loss"],
                    "correct": sums["correct"], "seen": sums["seen"]}
            checkpoint.save(out / CHECKPOINT, model, opt, meta, config)

    finished = True
    for epoch in range(start_epoch, epochs):
        opt.lr = schedule(epoch)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        bar = _progress(n_batches, f"epoch {epoch + 1}/{epochs}", quiet)
        if bar is not None:
            bar.update(start_batch)
        model.train()
        for b in range(start_batch, n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            x, y = data.x_train[idx], data.y_train[idx]
            # --- the step: forward (quantized weights), loss, backward (STE), update -------
            logits = model.forward(x)
            loss = crit.forward(logits, y)
            model.backward(crit.backward())
            opt.step(model.params, model.grads)
            # -----------------------------------------------------------------------------
            step += 1
            correct = int(np.sum(np.argmax(logits, axis=1) == y))
            sums["loss"] += loss * len(idx)
            sums["correct"] += correct
            sums["seen"] += len(idx)
            if step % log_every == 0:
                gap = bool(gap_every) and step % gap_every == 0
                log.add("steps", {"step": step, "epoch": epoch + 1, "lr": opt.lr, "loss": loss,
                                  "train_acc": correct / len(idx),
                                  **layer_metrics(model, gap)})
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update(1)
            last_batch = b + 1 == n_batches
            if checkpoint_every and step % checkpoint_every == 0 and not last_batch:
                save_checkpoint(epoch, b + 1)
            if max_steps is not None and step >= max_steps and not last_batch:
                save_checkpoint(epoch, b + 1)
                finished = False
                break
        if bar is not None:
            bar.close()
        if not finished:
            break
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
        log.add("epochs", {"step": step, "epoch": epoch + 1, "lr": opt.lr,
                           "loss": sums["loss"] / sums["seen"],
                           "train_acc": sums["correct"] / sums["seen"],
                           "test_loss": test_loss, "test_acc": test_acc,
                           **layer_metrics(model, with_gap=gap_every is not None)})
        sums = {"loss": 0.0, "correct": 0, "seen": 0}
        start_batch = 0
        save_checkpoint(epoch + 1, 0)
        log.write_csv()
        if not quiet:
            print(f"epoch {epoch + 1}/{epochs}: loss {log.records['epochs'][-1]['loss']:.4f} "
                  f"train {log.records['epochs'][-1]['train_acc']:.4f} test {test_acc:.4f}",
                  file=sys.stderr)
        if max_steps is not None and step >= max_steps and epoch + 1 < epochs:
            finished = False
            break
    if finished and out is not None and (start_epoch < epochs
                                         or not (out / "weights.npz").exists()):
        save_weights(out / "weights.npz", model)
    log.write_csv()
    return TrainResult(model, log.records["steps"], log.records["epochs"], config, out,
                       finished)


def save_weights(path, model):
    """Shadow weights, and for quantized layers the codes, α and dequantized weights."""
    from ..io import save_npz

    arrays = dict(model.state_dict())
    for name, layer in qat.quantized_layers(model):
        q = layer.quantizer.last
        if q is None:
            continue
        arrays[f"{name}.weight_q"] = q.values
        arrays[f"{name}.codes"] = q.codes
        arrays[f"{name}.alpha"] = np.asarray(q.alpha)
    save_npz(path, arrays, force=True)
