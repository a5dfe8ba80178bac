"""Dense, ReLU, Flatten and BatchNorm with explicit ``forward``/``backward`` (no autograd).

Every layer has the same shape (STYLE.md, "The training loop"):

* ``forward(x)`` returns the output and caches what ``backward`` needs;
* ``backward(grad)`` takes ∂L/∂output, stores ∂L/∂parameter in ``self.grads[name]`` (beside
  ``self.params[name]``) and returns ∂L/∂input;
* ``params`` and ``grads`` are dicts of arrays with the same keys; ``buffers`` holds state that
  is saved but not trained (BatchNorm's running statistics).

Weight layers (``Dense``, ``Conv2D``) may carry a ``quantizer`` (see :mod:`vecq_ref.nn.qat`):
the forward pass then uses the quantized weights and the quantizer maps the gradient with
respect to them back onto the float shadow weights held in ``params``.
"""

from __future__ import annotations

import numpy as np


class Layer:
    """Base class: no parameters, identity ``train``/``eval`` switch."""

    params: dict
    grads: dict

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.training = True
        self.needs_input_grad = True

    def forward(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


def xavier_uniform(rng, shape, fan_in, dtype):
    """Caffe's ``xavier`` filler: U(−√(3/fan_in), +√(3/fan_in))."""
    limit = np.sqrt(3.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


class WeightLayer(Layer):
    """A layer with ``weight`` and ``bias`` that may be quantized (shared by Dense, Conv2D)."""

    def __init__(self):
        super().__init__()
        self.quantizer = None
        self.bias_quantizer = None

    def effective_params(self):
        """The weight and bias the forward pass uses: quantized if a quantizer is attached."""
        w, b = self.params["weight"], self.params["bias"]
        if self.quantizer is not None:
            w = self.quantizer.forward(w)
        if self.bias_quantizer is not None:
            b = self.bias_quantizer.forward(b)
        return w, b

    def store_grads(self, dw, db):
        """Straight-through: gradients w.r.t. the used weights land on the shadow weights."""
        if self.quantizer is not None:
            dw = self.quantizer.backward(dw)
        if self.bias_quantizer is not None:
            db = self.bias_quantizer.backward(db)
        self.grads["weight"] = dw
        self.grads["bias"] = db


class Dense(WeightLayer):
    """``y = x Wᵀ + b`` with ``W`` of shape (out_features, in_features) — output axis 0."""

    def __init__(self, in_features, out_features, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.params["weight"] = xavier_uniform(rng, (out_features, in_features), in_features,
                                               dtype)
        self.params["bias"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x):
        w, b = self.effective_params()
        self._x, self._w = x, w
        return x @ w.T + b

    def backward(self, grad):
        self.store_grads(grad.T @ self._x, grad.sum(axis=0))
        return grad @ self._w if self.needs_input_grad else None


class ReLU(Layer):
    def forward(self, x):
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype, copy=False)

    def backward(self, grad):
        return np.where(self._mask, grad, 0).astype(grad.dtype, copy=False)


class Flatten(Layer):
    """(N, ...) → (N, prod(...))."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._shape)


class BatchNorm(Layer):
    """Batch normalisation over every axis but 1 (features of (N, F) or channels of NCHW).

    Training uses the batch mean and biased variance and updates the running statistics with
    ``momentum`` (PyTorch convention, running variance unbiased); ``eval()`` uses the running
    statistics.
    """

    def __init__(self, num_features, momentum=0.1, eps=1e-5, dtype=np.float32):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.params["gamma"] = np.ones(num_features, dtype=dtype)
        self.params["beta"] = np.zeros(num_features, dtype=dtype)
        self.buffers["running_mean"] = np.zeros(num_features, dtype=dtype)
        self.buffers["running_var"] = np.ones(num_features, dtype=dtype)

    def _shape(self, x):
        return (1, -1) + (1,) * (x.ndim - 2)

    def forward(self, x):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = self._shape(x)
        if self.training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            m = x.size // x.shape[1]
            mom = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm[...] = (1 - mom) * rm + mom * mean
            rv[...] = (1 - mom) * rv + mom * var * (m / max(m - 1, 1))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        self._xhat, self._inv_std, self._axes = xhat, inv_std, axes
        return (xhat * self.params["gamma"].reshape(shape)
                + self.params["beta"].reshape(shape)).astype(x.dtype, copy=False)

    def backward(self, grad):
        xhat, axes, shape = self._xhat, self._axes, self._shape(grad)
        self.grads["gamma"] = (grad * xhat).sum(axis=axes)
        self.grads["beta"] = grad.sum(axis=axes)
        dxhat = grad * self.params["gamma"].reshape(shape)
        if not self.training:
            return dxhat * self._inv_std.reshape(shape)
        mean_d = dxhat.mean(axis=axes, keepdims=True)
        mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
        return ((dxhat - mean_d - xhat * mean_dx)
                * self._inv_std.reshape(shape)).astype(grad.dtype, copy=False)
