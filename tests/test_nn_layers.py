"""Every layer's backward against central finite differences in float64."""

import numpy as np
import pytest
from numgrad import numeric_grad
from numpy.testing import assert_allclose, assert_array_equal

from vecq_ref.nn import BatchNorm, Conv2D, Dense, Flatten, MaxPool2D, ReLU, SoftmaxCrossEntropy
from vecq_ref.nn.conv import col2im, conv2d_naive, im2col


def check_layer(layer, x, rng, rtol=1e-6, atol=1e-8):
    """Backward of ``sum(forward(x) * upstream)`` against finite differences: input and params."""
    upstream = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * upstream))

    layer.forward(x)
    dx = layer.backward(upstream)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert_allclose(dx, numeric_grad(loss, x), rtol=rtol, atol=atol)
    for name, p in layer.params.items():
        assert_allclose(grads[name], numeric_grad(loss, p), rtol=rtol, atol=atol,
                        err_msg=name)


def test_dense_forward_by_hand():
    layer = Dense(2, 1, dtype=np.float64)
    layer.params["weight"][...] = [[2.0, -1.0]]
    layer.params["bias"][...] = [0.5]
    assert_array_equal(layer.forward(np.array([[1.0, 3.0]])), [[-0.5]])


def test_dense_backward(rng):
    check_layer(Dense(5, 3, rng, np.float64), rng.standard_normal((4, 5)), rng)


def test_relu_backward(rng):
    x = rng.standard_normal((3, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    check_layer(ReLU(), x, rng)


def test_flatten_backward(rng):
    check_layer(Flatten(), rng.standard_normal((2, 3, 4, 5)), rng)


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 4, 5)], ids=["dense", "nchw"])
def test_batchnorm_train_backward(rng, shape):
    bn = BatchNorm(shape[1], dtype=np.float64)
    bn.params["gamma"][...] = rng.uniform(0.5, 2, shape[1])
    bn.params["beta"][...] = rng.standard_normal(shape[1])
    check_layer(bn, rng.standard_normal(shape), rng, rtol=1e-5, atol=1e-7)


def test_batchnorm_eval_backward_and_running_stats(rng):
    bn = BatchNorm(3, momentum=0.5, dtype=np.float64)
    x = rng.standard_normal((8, 3)) * 2 + 1
    bn.forward(x)
    assert_allclose(bn.buffers["running_mean"], 0.5 * x.mean(axis=0))
    assert_allclose(bn.buffers["running_var"], 0.5 + 0.5 * x.var(axis=0, ddof=1))
    bn.training = False
    check_layer(bn, rng.standard_normal((4, 3)), rng)


def test_batchnorm_normalises():
    x = np.arange(12.0).reshape(4, 3)
    y = BatchNorm(3, dtype=np.float64).forward(x)
    assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    assert_allclose(y.var(axis=0), 1, rtol=1e-4)


CONV_CASES = [(1, 0, 3), (2, 1, 3), (1, 2, (2, 3)), (3, 1, 2)]


@pytest.mark.parametrize(("stride", "padding", "kernel"), CONV_CASES,
                         ids=["s1p0", "s2p1", "s1p2-rect", "s3p1"])
def test_conv_matches_naive(rng, stride, padding, kernel):
    conv = Conv2D(3, 4, kernel, stride, padding, rng=rng, dtype=np.float64)
    conv.params["bias"][...] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 7, 8))
    expected = conv2d_naive(x, conv.params["weight"], conv.params["bias"], stride, padding)
    assert_allclose(conv.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_conv_by_hand():
    conv = Conv2D(1, 1, 2, dtype=np.float64)
    conv.params["weight"][...] = [[[[1, 0], [0, -1]]]]
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    assert_array_equal(conv.forward(x), [[[[-4, -4], [-4, -4]]]])


@pytest.mark.parametrize(("stride", "padding", "kernel"), CONV_CASES,
                         ids=["s1p0", "s2p1", "s1p2-rect", "s3p1"])
def test_conv_backward(rng, stride, padding, kernel):
    conv = Conv2D(2, 3, kernel, stride, padding, rng=rng, dtype=np.float64)
    conv.params["bias"][...] = rng.standard_normal(3)
    check_layer(conv, rng.standard_normal((2, 2, 6, 7)), rng)


def test_col2im_is_the_adjoint_of_im2col(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    cols, _ = im2col(x, (3, 2), (2, 1), (1, 2))
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x.shape, (3, 2), (2, 1), (1, 2)))
    assert_allclose(lhs, rhs, rtol=1e-12)


def test_conv_first_layer_skips_input_grad(rng):
    conv = Conv2D(1, 2, 3, rng=rng, dtype=np.float64)
    conv.needs_input_grad = False
    out = conv.forward(rng.standard_normal((1, 1, 5, 5)))
    assert conv.backward(np.ones_like(out)) is None
    assert conv.grads["weight"].shape == (2, 1, 3, 3)


def test_maxpool_by_hand():
    x = np.array([[[[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 0, 1, 1], [9, 0, 1, 1]]]])
    pool = MaxPool2D(2)
    assert_array_equal(pool.forward(x), [[[[5, 8], [9, 1]]]])
    dx = pool.backward(np.array([[[[1.0, 2], [3, 4]]]]))
    # Ties (the all-ones window) send the gradient to the first maximum only.
    assert_array_equal(dx, [[[[0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 4, 0], [3, 0, 0, 0]]]])


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), (2, 1, 0)],
                         ids=["k2", "k3s2p1", "k2s1-overlap"])
def test_maxpool_backward(rng, kernel, stride, padding):
    check_layer(MaxPool2D(kernel, stride, padding), rng.standard_normal((2, 3, 6, 6)), rng)


def test_softmax_cross_entropy_backward(rng):
    logits = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    crit = SoftmaxCrossEntropy()
    crit.forward(logits, labels)
    grad = crit.backward()
    assert_allclose(grad, numeric_grad(lambda: crit.forward(logits, labels), logits),
                    rtol=1e-6, atol=1e-9)


def test_softmax_cross_entropy_values():
    crit = SoftmaxCrossEntropy()
    assert crit.forward(np.zeros((2, 4)), [0, 3]) == pytest.approx(np.log(4))
    # Huge logits do not overflow.
    assert crit.forward(np.array([[1000.0, 0.0]]), [0]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kernel", [2, 3, (2, 4)], ids=["2x2", "3x3", "2x4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_kernel_matches_numpy_twin(rng, kernel, dtype):
    """The Numba path for tiling windows against the strided-window NumPy path, with ties."""
    x = rng.integers(-2, 3, (3, 2, 12, 12)).astype(dtype)  # small integers: many ties
    fast, twin = MaxPool2D(kernel), MaxPool2D(kernel, use_kernel=False)
    out = fast.forward(x)
    assert fast._tiled
    assert not twin._tiles((1, 1, 13, 13))  # sizes the windows do not tile take the twin
    assert_array_equal(out, twin.forward(x))
    assert out.dtype == x.dtype
    g = rng.standard_normal(out.shape).astype(dtype)
    assert_array_equal(fast.backward(g), twin.backward(g))


def test_maxpool_uneven_input_uses_twin(rng):
    pool = MaxPool2D(2)
    x = rng.standard_normal((1, 1, 5, 5))
    assert pool.forward(x).shape == (1, 1, 2, 2)
    assert not pool._tiled
    check_layer(pool, x, rng)


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(5, 1, 0), ((3, 2), (2, 1), (1, 2))],
                         ids=["k5", "k3x2-s2x1-p1x2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_col2im_kernel_matches_numpy_twin(rng, kernel, stride, padding, dtype):
    x_shape = (3, 4, 9, 8)
    cols, _ = im2col(np.zeros(x_shape, dtype), kernel, stride, padding)
    c = rng.standard_normal(cols.shape).astype(dtype)
    fast = col2im(c, x_shape, kernel, stride, padding)
    twin = col2im(c, x_shape, kernel, stride, padding, use_kernel=False)
    assert fast.dtype == dtype
    assert_array_equal(fast, twin)


@pytest.mark.parametrize(("kernel", "stride", "padding"),
                         [(5, 1, 0), ((3, 2), (2, 1), (1, 2)), (2, 3, 1)],
                         ids=["k5", "k3x2-s2x1-p1x2", "k2-s3-p1"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ones", [False, True], ids=["", "ones"])
def test_im2col_kernel_matches_numpy_twin(rng, kernel, stride, padding, dtype, ones):
    x = rng.standard_normal((3, 4, 9, 8)).astype(dtype)
    fast, shape = im2col(x, kernel, stride, padding, ones=ones)
    twin, twin_shape = im2col(x, kernel, stride, padding, use_kernel=False, ones=ones)
    assert shape == twin_shape
    assert fast.dtype == dtype
    assert_array_equal(fast, twin)
    if ones:
        assert_array_equal(fast[:-1], im2col(x, kernel, stride, padding)[0])
        assert_array_equal(fast[-1], 1)


def _batch_last_view(x):
    """The same values as an NCHW view of (C, H, W, N) memory, the layout Conv2D returns."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


@pytest.mark.parametrize("layout", ["batch-last", "channel-major"])
@pytest.mark.parametrize("kernel", [2, 3], ids=["2x2", "3x3"])
def test_maxpool_layout_does_not_change_values(rng, kernel, layout):
    """MaxPool2D on NCHW views of other memory layouts (Conv2D hands on (C, H, W, N) ones)."""
    x = rng.integers(-2, 3, (4, 3, 12, 12)).astype(np.float32)
    if layout == "batch-last":
        view = _batch_last_view(x)
    else:
        view = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    assert not view.flags.c_contiguous
    fast, twin = MaxPool2D(kernel), MaxPool2D(kernel, use_kernel=False)
    out = fast.forward(view)
    assert fast._tiled
    assert_array_equal(out, twin.forward(x))
    g = rng.standard_normal(out.shape).astype(np.float32)
    assert_array_equal(fast.backward(g), twin.backward(g))
    assert_array_equal(fast.backward(_batch_last_view(g)), twin.backward(g))


def test_conv_pool_conv_layout_does_not_change_values(rng):
    """Conv2D → MaxPool2D → Conv2D through the channel-major views, against contiguous copies
    between the layers: forward outputs and every gradient identical."""
    conv1, pool, conv2 = (Conv2D(2, 3, 3, rng=rng), MaxPool2D(2), Conv2D(3, 4, 3, rng=rng))
    x = rng.standard_normal((5, 2, 10, 10)).astype(np.float32)
    up = rng.standard_normal((5, 4, 2, 2)).astype(np.float32)

    def run(copy):
        c = np.ascontiguousarray if copy else (lambda a: a)
        out = conv2.forward(c(pool.forward(c(conv1.forward(x)))))
        dx = conv1.backward(c(pool.backward(c(conv2.backward(up)))))
        grads = {k: v.copy() for layer in (conv1, conv2) for k, v in layer.grads.items()}
        return out, dx, grads

    out, dx, grads = run(copy=False)
    out_c, dx_c, grads_c = run(copy=True)
    assert_array_equal(out, out_c)
    assert_array_equal(dx, dx_c)
    for k in grads:
        assert_array_equal(grads[k], grads_c[k], err_msg=k)
