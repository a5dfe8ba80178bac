"""Training checkpoints as one plain .npz (no pickle), written atomically.

Keys: ``model/<layer>.<name>`` (shadow weights, biases, BatchNorm buffers),
``optim/<slot>:<layer>.<name>`` (momentum or Adam moments), ``meta/<name>`` (position in the
run and the epoch's running sums) and ``config`` (the run's settings as JSON text).
"""

from __future__ import annotations

import json

import numpy as np

from ..io import load_npz, save_npz


def save(path, model, optimizer, meta, config):
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    arrays.update({f"meta/{k}": np.asarray(v) for k, v in meta.items()})
    arrays["config"] = np.asarray(json.dumps(config, sort_keys=True))
    save_npz(path, arrays, force=True)


def load(path):
    """``(model_state, optimizer_state, meta, config)`` from a checkpoint file."""
    arrays = load_npz(path, "checkpoint")
    parts = {"model": {}, "optim": {}, "meta": {}}
    for key, value in arrays.items():
        head, _, rest = key.partition("/")
        if head in parts:
            parts[head][rest] = value
    meta = {k: v.item() for k, v in parts["meta"].items()}
    config = json.loads(str(arrays["config"]))
    return parts["model"], parts["optim"], meta, config
