"""Sequential models: an MLP and LeNet-5 as in μL2Q's Caffe setup."""

from __future__ import annotations

import numpy as np

from .. import _validation as V
from .conv import Conv2D, MaxPool2D
from .layers import BatchNorm, Dense, Flatten, ReLU


class Sequential:
    """Named layers applied in order; ``backward`` walks them in reverse.

    ``params``/``grads``/``buffers`` are flat views keyed ``"<layer>.<name>"`` (the arrays
    themselves, so an optimiser updating ``params`` updates the layers).
    """

    def __init__(self, layers, input_grad=False):
        self.layers = list(layers)
        names = [n for n, _ in self.layers]
        if len(set(names)) != len(names):
            V.fail("layers", "uniquely named", names)
        # The input is data: unless asked, backward stops at the first layer with parameters
        # and skips its input gradient (as frameworks do).
        self._stop = 0
        for _, layer in self.layers:
            layer.needs_input_grad = True
        if not input_grad:
            with_params = [i for i, (_, layer) in enumerate(self.layers) if layer.params]
            if with_params:
                self._stop = with_params[0]
                self.layers[self._stop][1].needs_input_grad = False

    def named_layers(self):
        return list(self.layers)

    def forward(self, x):
        for _, layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, grad):
        for _, layer in reversed(self.layers[self._stop:]):
            grad = layer.backward(grad)
        return grad

    def train(self, mode=True):
        for _, layer in self.layers:
            layer.training = mode
        return self

    def eval(self):
        return self.train(False)

    def _flat(self, attr):
        return {f"{n}.{k}": v for n, layer in self.layers for k, v in getattr(layer, attr).items()}

    @property
    def params(self):
        return self._flat("params")

    @property
    def grads(self):
        return self._flat("grads")

    @property
    def buffers(self):
        return self._flat("buffers")

    def num_parameters(self):
        return int(sum(p.size for p in self.params.values()))

    def state_dict(self):
        """Copies of every parameter and buffer, keyed ``"<layer>.<name>"``."""
        return {k: v.copy() for k, v in {**self.params, **self.buffers}.items()}

    def load_state_dict(self, state):
        own = {**self.params, **self.buffers}
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"`state` is missing {missing}")
        for k, v in own.items():
            if v.shape != np.shape(state[k]):
                raise ValueError(f"`state[{k!r}]` must have shape {v.shape}; got "
                                 f"{np.shape(state[k])}.")
            v[...] = state[k]

    def predict(self, x, batch_size=1000):
        """Logits in eval mode, in batches; restores the previous mode."""
        modes = [layer.training for _, layer in self.layers]
        self.eval()
        try:
            return np.concatenate([self.forward(x[i:i + batch_size])
                                   for i in range(0, len(x), batch_size)])
        finally:
            for (_, layer), m in zip(self.layers, modes, strict=True):
                layer.training = m

    def __repr__(self):
        body = "\n".join(f"  {n}: {layer!r}" for n, layer in self.layers)
        return f"Sequential(\n{body}\n)"


def mlp(in_features=64, hidden=(256,), num_classes=10, batchnorm=False, seed=0,
        dtype=np.float32):
    """Flatten → [Dense → (BatchNorm) → ReLU]* → Dense."""
    rng = np.random.default_rng(seed)
    layers = [("flatten", Flatten())]
    width = in_features
    for i, h in enumerate(hidden, 1):
        layers.append((f"fc{i}", Dense(width, h, rng, dtype)))
        if batchnorm:
            layers.append((f"bn{i}", BatchNorm(h, dtype=dtype)))
        layers.append((f"relu{i}", ReLU()))
        width = h
    layers.append((f"fc{len(hidden) + 1}", Dense(width, num_classes, rng, dtype)))
    return Sequential(layers)


def lenet5(in_channels=1, image_size=28, num_classes=10, widths=(20, 50, 500), seed=0,
           dtype=np.float32):
    """LeNet-5 of Caffe's MNIST example, as μL2Q trains it (431,080 parameters at 28×28).

    conv 20@5×5 → max-pool 2 → conv 50@5×5 → max-pool 2 → dense 500 → ReLU → dense 10
    (Caffe's version has no non-linearity after the convolutions). ``widths`` shrinks it for
    tests.
    """
    rng = np.random.default_rng(seed)
    c1, c2, d = widths
    side = ((image_size - 4) // 2 - 4) // 2
    if side < 1:
        V.fail("image_size", "at least 16 for two 5×5 convolutions and two 2×2 pools",
               image_size)
    return Sequential([
        ("conv1", Conv2D(in_channels, c1, 5, rng=rng, dtype=dtype)),
        ("pool1", MaxPool2D(2)),
        ("conv2", Conv2D(c1, c2, 5, rng=rng, dtype=dtype)),
        ("pool2", MaxPool2D(2)),
        ("flatten", Flatten()),
        ("fc1", Dense(c2 * side * side, d, rng, dtype)),
        ("relu1", ReLU()),
        ("fc2", Dense(d, num_classes, rng, dtype)),
    ])


MODELS = {"mlp": mlp, "lenet5": lenet5}
