"""Optimisers (SGD with momentum and weight decay, Adam) and the step learning-rate schedule.

An optimiser updates ``model.params`` in place from ``model.grads`` (the float shadow weights
when training is quantization-aware). Its state — one array per parameter — is exposed as a
flat dict by ``state_dict()`` for the npz checkpoints.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as V
from . import _kernels


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
    """``v ← μ v + (g + λ w)``; ``w ← w − lr·v`` (the PyTorch form of heavy-ball momentum).

    Contiguous float32/float64 parameters with gradients of their dtype are updated by one
    fused Numba pass (:func:`vecq_ref.nn._kernels.sgd_update`); ``use_kernel=False`` runs the
    NumPy twin below, which gives identical results.
    """

    def __init__(self, lr=0.01, momentum=0.0, weight_decay=0.0, use_kernel=True):
        super().__init__(lr, weight_decay)
        self.momentum = V.real(momentum, "momentum", nonnegative=True)
        self.use_kernel = use_kernel

    def step(self, params, grads):
        """Update every array of ``params`` (dict name → array) in place."""
        # NumPy computes ``lr * g`` etc. in the array's dtype only for Python-float scalars.
        weak = all(type(s) is float for s in (self.lr, self.momentum, self.weight_decay))
        for name, p in params.items():
            g = grads[name]
            if not (self.use_kernel and weak and _fusable(p, g)):
                self._update(name, p, self._grad(p, g).astype(p.dtype, copy=False))
                continue
            scalar = p.dtype.type
            first = False
            v = p  # unused when there is no momentum
            if self.momentum:
                slots = self.state.setdefault(name, {})
                v = slots.get("velocity")
                first = v is None
                if first:
                    v = slots["velocity"] = np.empty_like(p)
                elif not _fusable(p, v):
                    self._update(name, p, self._grad(p, g).astype(p.dtype, copy=False))
                    continue
            _kernels.sgd_update(p.reshape(-1), g.reshape(-1), v.reshape(-1), scalar(self.lr),
                                scalar(self.momentum), scalar(self.weight_decay), first)

    def _update(self, name, p, g):
        if self.momentum:
            slots = self.state.setdefault(name, {})
            v = slots.get("velocity")
            if v is None:  # np.array: g is a NumPy scalar when p is 0-d
                v = slots["velocity"] = np.array(g, dtype=p.dtype)
            else:
                v *= self.momentum
                v += g
            g = v
        p -= self.lr * g


def _fusable(p, other):
    """Whether the fused kernel can take ``p`` with ``other``: same float dtype and shape,
    both C-contiguous (so their flat views are views)."""
    return (p.dtype in (np.float32, np.float64) and other.dtype == p.dtype
            and other.shape == p.shape and p.flags.c_contiguous and other.flags.c_contiguous)


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
