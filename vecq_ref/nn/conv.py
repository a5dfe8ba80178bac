"""Conv2D and MaxPool2D on NCHW arrays: im2col, one BLAS matmul.

The column matrix has one row per input (channel, kernel row, kernel column) and one column
per (output row, output column, image), so the forward pass is the single product
``W(F, C·KH·KW) @ cols(C·KH·KW, OH·OW·N)`` and the backward pass is two more; ``im2col``
copies the windows into the columns and ``col2im`` adds the column gradients back onto the
input (Numba loops, :mod:`vecq_ref.nn._kernels`, whose NumPy twins are a strided view and one
strided add per kernel offset).

Memory layout: arrays are indexed NCHW everywhere, but the product leaves its result in
(C, H, W, N) memory — the batch innermost — and that is the layout every kernel works in,
since its innermost loop then runs over N contiguous images. So Conv2D returns its output,
and the gradient of its input, as NCHW *views* of (C, H, W, N) buffers, and Conv2D and
MaxPool2D read such views without a transposing copy (any other NCHW array is copied into that
layout once). Values never depend on the layout.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _kernels
from .layers import Layer, WeightLayer, xavier_uniform


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def _batch_last(x, ph=0, pw=0):
    """An NCHW array as a contiguous, padded (C, H, W, N) array (a view when it is one)."""
    xt = x.transpose(1, 2, 3, 0)
    if ph or pw:
        return np.pad(xt, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    return np.ascontiguousarray(xt)


def _nchw(xt):
    """The NCHW view of a (C, H, W, N) array."""
    return xt.transpose(3, 0, 1, 2)


def windows(x, kh, kw, sh, sw):
    """Read-only view (N, C, KH, KW, OH, OW) of every kernel window of a padded NCHW array."""
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = x.strides
    return as_strided(x, (n, c, kh, kw, oh, ow),
                      (s[0], s[1], s[2], s[3], s[2] * sh, s[3] * sw), writeable=False)


def _pad(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def im2col(x, kernel, stride=1, padding=0, use_kernel=True, ones=False):
    """Columns (C·KH·KW, OH·OW·N) of an NCHW array; returns ``(cols, (OH, OW))``.

    The input is first laid out as (C, H, W, N) (free when it is a view of such memory, as
    Conv2D's outputs are), so that each copied run of N images is contiguous in the source.
    ``ones=True`` appends a last row of ones (the bias's row: Conv2D multiplies ``[W | b]``
    by these columns). ``use_kernel=False`` runs the NumPy twin (a reshape of a strided view)
    instead of the Numba copy.
    """
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    xt = _batch_last(x, ph, pw)
    c, h, w, n = xt.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    rows, m = c * kh * kw, oh * ow * n
    if use_kernel:
        cols = np.empty((rows + ones, m), dtype=xt.dtype)
        _kernels.im2col_fill(xt, sh, sw, cols[:rows].reshape(c, kh, kw, oh, ow, n))
        if ones:
            cols[rows] = 1
        return cols, (oh, ow)
    s = xt.strides
    win = as_strided(xt, (c, kh, kw, oh, ow, n),
                     (s[0], s[1], s[2], s[1] * sh, s[2] * sw, s[3]), writeable=False)
    cols = win.reshape(rows, m)
    if ones:
        cols = np.concatenate([cols, np.ones((1, m), dtype=xt.dtype)])
    return cols, (oh, ow)


def col2im(cols, x_shape, kernel, stride=1, padding=0, use_kernel=True):
    """Adjoint of :func:`im2col`: sum every column entry back onto the input position.

    Accumulates in a (C, H, W, N) buffer and returns its NCHW view (not a contiguous copy).
    ``use_kernel=False`` runs the NumPy twin (one strided add per kernel offset) instead of
    the Numba loop.
    """
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    n, c, h, w = x_shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    cols = np.ascontiguousarray(cols).reshape(c, kh, kw, oh, ow, n)
    dxt = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)
    if use_kernel:
        _kernels.col2im_add(cols, sh, sw, dxt)
    else:
        for i in range(kh):
            for j in range(kw):
                dxt[:, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols[:, i, j]
    return _nchw(dxt[:, ph:ph + h, pw:pw + w] if (ph or pw) else dxt)


class Conv2D(WeightLayer):
    """2-D cross-correlation, weight (F, C, KH, KW) — output channels on axis 0 — bias (F,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None,
                 dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(rng)
        kh, kw = _pair(kernel_size)
        self.kernel, self.stride, self.padding = (kh, kw), _pair(stride), _pair(padding)
        fan_in = in_channels * kh * kw
        self.params["weight"] = xavier_uniform(rng, (out_channels, in_channels, kh, kw), fan_in,
                                               dtype)
        self.params["bias"] = np.zeros(out_channels, dtype=dtype)

    def forward(self, x):
        w, b = self.effective_params()
        # The bias rides in the product as a last column of W against a row of ones: one pass
        # over the output instead of two here, and its gradient comes with the weight's.
        cols, (oh, ow) = im2col(x, self.kernel, self.stride, self.padding, ones=True)
        f, n = w.shape[0], x.shape[0]
        wb = np.concatenate([w.reshape(f, -1), b.reshape(f, 1).astype(w.dtype, copy=False)],
                            axis=1)
        out = wb @ cols
        self._cols, self._w, self._x_shape = cols, w, x.shape
        return _nchw(out.reshape(f, oh, ow, n))

    def backward(self, grad):
        f = grad.shape[1]
        g = _batch_last(grad).reshape(f, -1)
        # [dW | db] = g @ colsᵀ, computed as (cols @ gᵀ)ᵀ: OpenBLAS runs this orientation
        # faster for these shapes.
        dwb = (self._cols @ g.T).T
        self.store_grads(np.ascontiguousarray(dwb[:, :-1]).reshape(self._w.shape),
                         np.ascontiguousarray(dwb[:, -1]))
        if not self.needs_input_grad:
            return None
        dcols = self._w.reshape(f, -1).T @ g
        return col2im(dcols, self._x_shape, self.kernel, self.stride, self.padding)


class MaxPool2D(Layer):
    """Max pooling (default stride = kernel). Ties send the gradient to the first maximum.

    Tiling windows (kernel = stride, no padding, sizes divisible) run the Numba kernels of
    :mod:`vecq_ref.nn._kernels` on (C, H, W, N) memory and return views of it (see the module
    docstring); everything else, and ``use_kernel=False``, runs their NumPy twin (strided
    windows and ``argmax``).
    """

    def __init__(self, kernel_size=2, stride=None, padding=0, use_kernel=True):
        super().__init__()
        self.use_kernel = use_kernel
        self.kernel = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def _tiles(self, shape):
        """True when the windows tile the input exactly (the common 2×2/2 case)."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return ((kh, kw) == (sh, sw) and not (ph or pw) and shape[2] % kh == 0
                and shape[3] % kw == 0)

    def forward(self, x):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        self._x_shape = x.shape
        self._tiled = self.use_kernel and self._tiles(x.shape)
        if self._tiled:
            out, self._idx = _kernels.tiled_forward(_batch_last(x), kh, kw)
            return _nchw(out)
        xp = x
        if ph or pw:
            xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        win = windows(xp, kh, kw, sh, sw)
        n, c, _, _, oh, ow = win.shape
        flat = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c, oh, ow, kh * kw)
        idx = flat.argmax(axis=-1)
        self._idx = idx
        return np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]

    def backward(self, grad):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        if self._tiled:
            return _nchw(_kernels.tiled_backward(_batch_last(grad), self._idx, kh, kw))
        n, c, h, w = self._x_shape
        oh, ow = grad.shape[2:]
        dx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        for i in range(kh):
            for j in range(kw):
                hit = self._idx == i * kw + j
                dx[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += np.where(hit, grad, 0)
        return dx[:, :, ph:ph + h, pw:pw + w] if (ph or pw) else dx


def conv2d_naive(x, w, b, stride=1, padding=0):
    """Loop-over-outputs twin of Conv2D.forward (for tests)."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    xp = _pad(x, ph, pw)
    n, _, hp, wp = xp.shape
    f, _, kh, kw = w.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.empty((n, f, oh, ow), dtype=np.result_type(x, w))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out
