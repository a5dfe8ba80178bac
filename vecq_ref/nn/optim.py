"""Optimisers (SGD with momentum and weight decay, Adam) and the step learning-rate schedule.

An optimiser updates ``model.params`` in place from ``model.grads`` (the float shadow weights
when training is quantization-aware). Its state — one array per parameter — is exposed as a
flat dict by ``state_dict()`` for the npz checkpoints.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as V


class Optimizer:
    def __init__(self, lr, weight_decay=0.0):
        self.lr = V.real(lr, "lr", positive=True)
        self.weight_decay = V.real(weight_decay, "weight_decay", nonnegative=True)
        self.state = {}

    def _grad(self, p, g):
        return g + self.weight_decay * p if self.weight_decay else g

    def step(self, params, grads):
        """Update every array of ``params`` (dict name → array) in place."""
        for name, p in params.items():
            self._update(name, p, self._grad(p, grads[name]).astype(p.dtype, copy=False))

    def state_dict(self):
        return {f"{k}:{name}": v for name, slots in self.state.items() for k, v in slots.items()}

    def load_state_dict(self, flat):
        self.state = {}
        for key, value in flat.items():
            slot, name = key.split(":", 1)
            self.state.setdefault(name, {})[slot] = np.array(value)


class SGD(Optimizer):
    """``v ← μ v + (g + λ w)``; ``w ← w − lr·v`` (the PyTorch form of heavy-ball momentum)."""

    def __init__(self, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = V.real(momentum, "momentum", nonnegative=True)

    def _update(self, name, p, g):
        if self.momentum:
            slots = self.state.setdefault(name, {})
            v = slots.get("velocity")
            if v is None:
                v = slots["velocity"] = g.copy()
            else:
                v *= self.momentum
                v += g
            g = v
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; weight decay added to the gradient (L2)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2 = (V.real(b, "betas") for b in betas)
        self.eps = V.real(eps, "eps", positive=True)

    def _update(self, name, p, g):
        slots = self.state.setdefault(name, {})
        if "m" not in slots:
            slots["m"], slots["v"] = np.zeros_like(p), np.zeros_like(p)
            slots["t"] = np.zeros((), dtype=np.int64)
        slots["t"] += 1
        t = int(slots["t"])
        m, v = slots["m"], slots["v"]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        mhat = m / (1 - self.beta1 ** t)
        vhat = v / (1 - self.beta2 ** t)
        p -= (self.lr * mhat / (np.sqrt(vhat) + self.eps)).astype(p.dtype, copy=False)


class StepLR:
    """Multiply the base learning rate by ``gamma`` at each epoch in ``milestones``."""

    def __init__(self, base_lr, milestones=(), gamma=0.1):
        self.base_lr = V.real(base_lr, "lr", positive=True)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = V.real(gamma, "gamma", positive=True)

    def __call__(self, epoch):
        """The learning rate for 0-based ``epoch``."""
        passed = sum(1 for m in self.milestones if epoch >= m)
        return self.base_lr * self.gamma ** passed


def make_optimizer(name, lr, momentum=0.9, weight_decay=0.0):
    """``"sgd"`` or ``"adam"`` by name."""
    name = V.choice(name, "optimizer", ("sgd", "adam"))
    if name == "sgd":
        return SGD(lr, momentum=momentum, weight_decay=weight_decay)
    return Adam(lr, weight_decay=weight_decay)
