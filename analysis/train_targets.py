"""Accuracy targets of the training loop: LeNet-5 on mnist5k and an MLP on digits.

Runs, once each (seed 0):

* LeNet-5 (431,080 parameters) on mnist5k, 4000/1000 split, 10 epochs, SGD momentum 0.9,
  lr 0.01, weight decay 1e-4, batch 50: float, VecQ 4-bit and VecQ 2-bit (``param``,
  per tensor, every conv/dense kernel quantized, biases float).
  Targets: float ≥ 95.5 %, 4-bit and 2-bit within 1 point of float.
* MLP 64-256(BatchNorm, ReLU)-10 on digits, 80/20 split, SGD momentum 0.9, lr 0.1, weight
  decay 1e-4, batch 50, 50 epochs: float and VecQ 2-bit (both dense kernels quantized).
  Targets: float ≥ 97 %, 2-bit ≥ 96 %. (Without BatchNorm, at lr 0.01 and 30 epochs, float
  reaches 97.2 % at seed 0 but 95.3-96.7 % at seeds 1-3; this recipe met both targets at
  seeds 0-3.)

and prints a table (test accuracy at the last epoch, best epoch, wall time). Each run's logs
and checkpoint go to ``--out/<name>`` so the figures code can plot them.

    python analysis/train_targets.py --out runs/targets [--only lenet5|mlp] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vecq_ref import data
from vecq_ref.cli import format_table
from vecq_ref.nn import QuantSpec, build_model, train

SGD = {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4}
MLP = {"hidden": (256,), "batchnorm": True}

RUNS = [
    # name, model, dataset, bits, epochs, batch size, lr, target (absolute or "float-1")
    ("lenet5-float", "lenet5", "mnist5k", None, 10, 50, 0.01, 0.955),
    ("lenet5-4bit", "lenet5", "mnist5k", 4, 10, 50, 0.01, "float-0.01"),
    ("lenet5-2bit", "lenet5", "mnist5k", 2, 10, 50, 0.01, "float-0.01"),
    ("mlp-float", "mlp", "digits", None, 50, 50, 0.1, 0.97),
    ("mlp-2bit", "mlp", "digits", 2, 50, 50, 0.1, 0.96),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/targets")
    parser.add_argument("--only", choices=("lenet5", "mlp"), default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override every run's epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows, floats = [], {}
    for name, model_name, dataset, bits, epochs, batch, lr, target in RUNS:
        if args.only and model_name != args.only:
            continue
        ds = data.load(dataset, seed=args.seed)
        model = build_model(model_name, ds, seed=args.seed,
                            **(MLP if model_name == "mlp" else {}))
        quant = None if bits is None else QuantSpec(bits=bits)
        start = time.perf_counter()
        result = train(model, ds, epochs=args.epochs or epochs, batch_size=batch, quant=quant,
                       seed=args.seed, out=Path(args.out) / name, force=True, quiet=True,
                       log_every=10, lr=lr, **SGD)
        seconds = time.perf_counter() - start
        acc = result.test_accuracy
        if bits is None:
            floats[model_name] = acc
        goal = target if isinstance(target, float) else floats.get(model_name, 1.0) - 0.01
        rows.append({"run": name, "params": model.num_parameters(), "bits": bits or "float",
                     "epochs": len(result.epochs), "test_acc": acc,
                     "best_acc": max(r["test_acc"] for r in result.epochs),
                     "target": goal, "met": "yes" if acc >= goal - 1e-12 else "NO",
                     "seconds": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(format_table(rows, ["run", "params", "bits", "epochs", "test_acc", "best_acc",
                              "target", "met", "seconds"], "{:.4f}"))


if __name__ == "__main__":
    main()
