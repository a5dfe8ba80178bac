"""Softmax cross-entropy on logits, with its backward."""

from __future__ import annotations

import numpy as np


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """Mean over the batch of ``−log softmax(logits)[label]``.

    ``forward(logits, labels)`` returns the loss (a Python float) and caches the
    probabilities; ``backward()`` returns ∂loss/∂logits = (softmax − one_hot) / N.
    """

    def forward(self, logits, labels):
        labels = np.asarray(labels)
        logp = log_softmax(logits)
        n = logits.shape[0]
        self._probs, self._labels = np.exp(logp), labels
        return float(-logp[np.arange(n), labels].mean(dtype=np.float64))

    __call__ = forward

    def backward(self):
        grad = self._probs.copy()
        n = grad.shape[0]
        grad[np.arange(n), self._labels] -= 1
        grad /= n
        return grad


def accuracy(logits, labels):
    """Fraction of rows whose arg-max equals the label."""
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))
