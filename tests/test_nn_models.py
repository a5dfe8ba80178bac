"""Models: LeNet-5's size, a whole-model gradient check, state round trips."""

import numpy as np
import pytest
from numgrad import numeric_grad
from numpy.testing import assert_allclose, assert_array_equal

from vecq_ref.nn import SoftmaxCrossEntropy, lenet5, mlp
from vecq_ref.nn.models import Sequential


def test_lenet5_has_431080_parameters():
    model = lenet5()
    assert model.num_parameters() == 431_080
    assert [n for n, _ in model.named_layers()] == [
        "conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "relu1", "fc2"]
    assert model.params["conv1.weight"].shape == (20, 1, 5, 5)
    assert model.params["fc1.weight"].shape == (500, 800)
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


def test_lenet5_rejects_tiny_images():
    with pytest.raises(ValueError, match="`image_size` must be at least 16"):
        lenet5(image_size=8)


def test_mlp_shapes_and_seed():
    a, b = mlp(64, (32, 16), seed=3), mlp(64, (32, 16), seed=3)
    assert a.num_parameters() == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    for k, v in a.params.items():
        assert_array_equal(v, b.params[k])
    assert not np.array_equal(a.params["fc1.weight"], mlp(64, (32, 16), seed=4).params[
        "fc1.weight"])


@pytest.mark.parametrize("which", ["lenet", "mlp-bn"])
def test_whole_model_gradient(rng, which):
    """Every parameter gradient of a small model + softmax cross-entropy, float64."""
    if which == "lenet":
        model = lenet5(1, 16, num_classes=3, widths=(2, 3, 5), seed=1, dtype=np.float64)
        x = rng.standard_normal((3, 1, 16, 16))
    else:
        model = mlp(12, (6, 5), num_classes=3, batchnorm=True, seed=1, dtype=np.float64)
        x = rng.standard_normal((4, 1, 3, 4))
    for p in model.params.values():  # non-zero biases so every path is exercised
        p += 0.1 * rng.standard_normal(p.shape)
    y = np.array([0, 2, 1, 1])[:len(x)]
    crit = SoftmaxCrossEntropy()

    def loss():
        return crit.forward(model.forward(x), y)

    loss()
    model.backward(crit.backward())
    grads = {k: v.copy() for k, v in model.grads.items()}
    assert set(grads) == set(model.params)
    for k, p in model.params.items():
        assert_allclose(grads[k], numeric_grad(loss, p), rtol=1e-5, atol=1e-8, err_msg=k)


def test_input_gradient_on_request(rng):
    model = Sequential(mlp(6, (4,), 2, seed=0, dtype=np.float64).named_layers(),
                       input_grad=True)
    x = rng.standard_normal((2, 6))
    crit = SoftmaxCrossEntropy()
    crit.forward(model.forward(x), [0, 1])
    dx = model.backward(crit.backward())
    assert_allclose(dx, numeric_grad(lambda: crit.forward(model.forward(x), [0, 1]), x),
                    rtol=1e-6, atol=1e-9)


def test_state_dict_round_trip_and_errors():
    a, b = mlp(8, (4,), batchnorm=True, seed=0), mlp(8, (4,), batchnorm=True, seed=1)
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        assert_array_equal(v, b.state_dict()[k])
    with pytest.raises(ValueError, match="missing"):
        b.load_state_dict({})
    bad = a.state_dict()
    bad["fc1.weight"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match="must have shape"):
        b.load_state_dict(bad)


def test_predict_restores_mode():
    model = mlp(8, (4,), batchnorm=True)
    model.train()
    model.predict(np.zeros((3, 8), np.float32))
    assert all(layer.training for _, layer in model.named_layers())
