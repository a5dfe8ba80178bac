"""Layers, losses, optimisers, quantization-aware training and the training loop — no autograd.

Every layer has ``forward(x)`` (caching what it needs) and ``backward(grad)`` (returning the
input gradient, storing parameter gradients in ``layer.grads`` beside ``layer.params``).
"""

from .conv import Conv2D, MaxPool2D
from .layers import BatchNorm, Dense, Flatten, Layer, ReLU
from .losses import SoftmaxCrossEntropy, accuracy
from .models import Sequential, lenet5, mlp
from .optim import SGD, Adam, StepLR
from .qat import QuantSpec, WeightQuantizer, attach
from .train import TrainResult, build_model, evaluate, train

__all__ = [
    "Adam", "BatchNorm", "Conv2D", "Dense", "Flatten", "Layer", "MaxPool2D", "QuantSpec",
    "ReLU", "SGD", "Sequential", "SoftmaxCrossEntropy", "StepLR", "TrainResult",
    "WeightQuantizer", "accuracy", "attach", "build_model", "evaluate", "lenet5", "mlp",
    "train",
]
