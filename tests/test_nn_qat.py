"""Quantization-aware training: the forward uses w_q, the backward is the STE
(docs/theory.md §5)."""

import importlib.util
import sys
import types

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from vecq_ref import quantize
from vecq_ref.nn import Conv2D, Dense, QuantSpec, SoftmaxCrossEntropy, attach, mlp
from vecq_ref.nn.qat import WeightQuantizer, quantized_layers, resolve_method

HAS_SEARCH = importlib.util.find_spec("vecq_ref.search") is not None


def _dense(rng, dtype=np.float64):
    layer = Dense(16, 5, rng, dtype)
    layer.params["bias"][...] = rng.standard_normal(5)
    return layer


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_forward_uses_quantized_weights(rng, bits):
    layer = _dense(rng)
    layer.quantizer = WeightQuantizer(bits)
    x = rng.standard_normal((3, 16))
    q = quantize(layer.params["weight"], bits)
    assert_array_equal(layer.forward(x), x @ q.values.T + layer.params["bias"])
    assert not np.array_equal(q.values, layer.params["weight"])  # it really is quantized
    assert layer.quantizer.last.alpha == q.alpha


def test_conv_forward_uses_quantized_weights(rng):
    conv = Conv2D(2, 3, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    plain = Conv2D(2, 3, 3, dtype=np.float64)
    plain.params["weight"][...] = quantize(conv.params["weight"], 2, axis=0).values
    conv.quantizer = WeightQuantizer(2, axis=0)
    assert_array_equal(conv.forward(x), plain.forward(x))


@pytest.mark.parametrize("layer_kind", ["dense", "conv"])
def test_ste_gradient_equals_gradient_wrt_quantized_weights(rng, layer_kind):
    """∂L/∂w (shadow) is exactly ∂L/∂w_q: the gradient of a float layer holding w_q."""
    if layer_kind == "dense":
        layer, twin = _dense(rng), Dense(16, 5, dtype=np.float64)
        x = rng.standard_normal((4, 16))
    else:
        layer, twin = Conv2D(2, 3, 3, rng=rng, dtype=np.float64), Conv2D(2, 3, 3,
                                                                        dtype=np.float64)
        x = rng.standard_normal((2, 2, 6, 6))
    layer.quantizer = WeightQuantizer(3)
    twin.params["weight"][...] = quantize(layer.params["weight"], 3).values
    twin.params["bias"][...] = layer.params["bias"]
    out = layer.forward(x)
    upstream = rng.standard_normal(out.shape)
    dx = layer.backward(upstream)
    twin.forward(x)
    dx_twin = twin.backward(upstream)
    assert_array_equal(layer.grads["weight"], twin.grads["weight"])
    assert_array_equal(layer.grads["bias"], twin.grads["bias"])
    assert_array_equal(dx, dx_twin)  # the input gradient flows through w_q, not w


def test_identity_ste_has_no_saturation_mask(rng):
    w = rng.standard_normal(50)
    w[0] = 40.0  # far beyond the largest level
    qz = WeightQuantizer(2)
    qz.forward(w)
    g = rng.standard_normal(50)
    assert_array_equal(qz.backward(g), g)


def test_clipped_ste_masks_weights_beyond_the_largest_level(rng):
    w = rng.standard_normal(200)
    w[:3] = [40.0, -40.0, 0.0]
    qz = WeightQuantizer(2, ste="clipped")
    q_values = qz.forward(w)
    limit = 1.5 * qz.last.alpha
    assert np.max(np.abs(q_values)) == pytest.approx(limit)
    g = np.ones(200)
    assert_array_equal(qz.backward(g), (np.abs(w) <= limit).astype(float))
    assert qz.backward(g)[:3].tolist() == [0.0, 0.0, 1.0]


def test_clipped_ste_per_channel(rng):
    w = rng.standard_normal((3, 20)) * np.array([[1.0], [10.0], [0.1]])
    qz = WeightQuantizer(2, axis=0, ste="clipped")
    qz.forward(w)
    limit = 1.5 * np.asarray(qz.last.alpha)[:, None]
    assert_array_equal(qz.backward(np.ones_like(w)), (np.abs(w) <= limit).astype(float))


def test_shadow_weights_stay_float_and_move(rng):
    model = mlp(16, (8,), 3, seed=0, dtype=np.float64)
    attach(model, QuantSpec(bits=2))
    x, y = rng.standard_normal((6, 16)), np.array([0, 1, 2, 0, 1, 2])
    crit = SoftmaxCrossEntropy()
    before = model.params["fc1.weight"].copy()
    crit.forward(model.forward(x), y)
    model.backward(crit.backward())
    model.params["fc1.weight"] -= 0.01 * model.grads["fc1.weight"]
    after = model.params["fc1.weight"]
    assert len(np.unique(after)) > 16  # still float, not snapped to 4 levels
    assert not np.array_equal(before, after)


def test_attach_per_layer_and_bias(rng):
    model = mlp(16, (8,), 3, seed=0, dtype=np.float64)
    specs = attach(model, {"fc1": QuantSpec(bits=4, bias_bits=8), "fc2": None})
    assert specs == {"fc1": QuantSpec(bits=4, bias_bits=8), "fc2": None}
    assert [n for n, _ in quantized_layers(model)] == ["fc1"]
    layers = dict(model.named_layers())
    assert layers["fc1"].bias_quantizer is not None
    assert layers["fc2"].quantizer is None
    layers["fc1"].params["bias"][...] = rng.standard_normal(8)
    x = rng.standard_normal((2, 16))
    wq = quantize(layers["fc1"].params["weight"], 4).values
    bq = quantize(layers["fc1"].params["bias"], 8).values
    assert_array_equal(layers["fc1"].forward(x), x @ wq.T + bq)
    attach(model, None)
    assert quantized_layers(model) == []
    with pytest.raises(ValueError, match="`quant` must be keyed by weight layer names"):
        attach(model, {"fc9": QuantSpec(bits=2)})


def test_method_resolution_errors():
    with pytest.raises(ValueError, match="`method` must be one of"):
        resolve_method("no_such_method")
    with pytest.raises(ValueError, match="`bits` must be an integer in"):
        QuantSpec(bits=17)
    with pytest.raises(ValueError, match="`ste` must be one of"):
        QuantSpec(bits=2, ste="smooth")


def test_baseline_is_looked_up_lazily(rng, monkeypatch):
    calls = []

    def fake(w, bits, axis=None):
        calls.append((bits, axis))
        return quantize(w, bits)

    module = types.ModuleType("vecq_ref.baselines")
    module.fakebase = fake
    monkeypatch.setitem(sys.modules, "vecq_ref.baselines", module)
    qz = WeightQuantizer(2, method="fakebase")
    w = rng.standard_normal(30)
    assert_array_equal(qz.forward(w), quantize(w, 2).values)
    assert calls == [(2, None)]


def test_callable_method(rng):
    w = rng.standard_normal(30)
    qz = WeightQuantizer(2, method=lambda w, bits, axis=None: quantize(w, bits, "paper"))
    assert_array_equal(qz.forward(w), quantize(w, 2, "paper").values)
    assert QuantSpec(bits=2, method=print).to_dict()["method"] == "print"


@pytest.mark.skipif(not HAS_SEARCH, reason="vecq_ref.search (method='exact') not built yet")
def test_exact_method_trains_forward(rng):
    qz = WeightQuantizer(2, method="exact")
    w = rng.standard_normal(40)
    assert_array_equal(qz.forward(w), quantize(w, 2, method="exact").values)


HAS_BASELINES = importlib.util.find_spec("vecq_ref.baselines") is not None


@pytest.mark.skipif(not HAS_BASELINES, reason="vecq_ref.baselines not built yet")
def test_real_baseline_by_name(rng):
    from vecq_ref import baselines

    w = rng.standard_normal((4, 10))
    qz = WeightQuantizer(2, method="twn", ste="clipped")
    assert_array_equal(qz.forward(w), baselines.twn(w, 2).values)
    limit = np.max(np.abs(baselines.twn(w, 2).values))
    assert_array_equal(qz.backward(np.ones_like(w)), (np.abs(w) <= limit).astype(float))


def test_quantizer_reuses_its_buffers_and_matches_quantize(rng):
    qz = WeightQuantizer(3, "exact", axis=0)
    w = rng.standard_normal((5, 40)).astype(np.float32)
    first = qz.forward(w)
    codes = qz.last.codes
    for _ in range(3):
        w = w - 0.01 * rng.standard_normal(w.shape).astype(np.float32)
        got = qz.forward(w)
        assert got is first and qz.last.codes is codes  # the same arrays, written again
        q = quantize(w, 3, method="exact", axis=0)
        assert_array_equal(got, q.values)
        assert_array_equal(qz.last.codes, q.codes)
    other = qz.forward(w.astype(np.float64)[:, :20])  # a new shape/dtype: fresh buffers
    assert other is not first and other.shape == (5, 20)
    assert_array_equal(other, quantize(w.astype(np.float64)[:, :20], 3, method="exact",
                                       axis=0).values)
