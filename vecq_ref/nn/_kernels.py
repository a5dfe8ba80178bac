"""Numba kernels of the layers, each with a NumPy twin that the tests compare it against.

* ``maxpool_tiled_forward``/``_backward``: max pooling when the windows tile the input
  (kernel = stride, no padding). Twin: the strided-window ``argmax`` path of
  :class:`vecq_ref.nn.MaxPool2D`. Ties go to the first maximum in row-major window order, as
  ``argmax`` does.
* ``im2col_fill``: the copy of :func:`vecq_ref.nn.conv.im2col`. Twin:
  ``im2col(..., use_kernel=False)`` (a reshape of a strided view). A copy, so identical.
* ``col2im_add``: the scatter-add of :func:`vecq_ref.nn.conv.col2im`. Twin:
  ``col2im(..., use_kernel=False)``. Same additions in the same order (kernel offset by
  kernel offset), so the results are identical.
* ``sgd_update``: one fused pass of :class:`vecq_ref.nn.SGD`'s update. Twin: the optimiser's
  NumPy statements (``use_kernel=False``). Same operations in the same precision, each rounded
  as NumPy rounds it (no fused multiply-add), so the results are identical.

The image arrays are (C, H, W, N), batch innermost (see :mod:`vecq_ref.nn.conv`), so every
innermost loop runs over the N images of one position: a contiguous row taken as a slice
(``d = dst[x]``, then ``d[b]``), which Numba vectorises whatever the strides and kernel size.
(Parallel versions were tried: inside a training step their threads compete with OpenBLAS's
spinning workers and the step gets slower.)
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def maxpool_tiled_forward(x, kh, kw, out, idx):
    """out[c,i,j,n] = max of the (kh, kw) tile at (i·kh, j·kw); idx = its row-major offset.

    Arrays are (C, H, W, N): the innermost loop runs over the images.
    """
    ch, oh, ow, n = out.shape
    for c in range(ch):
        for i in range(oh):
            for j in range(ow):
                o = out[c, i, j]
                a = idx[c, i, j]
                first = x[c, i * kh, j * kw]
                for b in range(n):
                    o[b] = first[b]
                    a[b] = 0
                for p in range(kh):
                    for q in range(kw):
                        if p == 0 and q == 0:
                            continue
                        src = x[c, i * kh + p, j * kw + q]
                        code = p * kw + q
                        for b in range(n):
                            v = src[b]
                            if v > o[b]:
                                o[b] = v
                                a[b] = code


@njit(cache=True, nogil=True)
def maxpool_tiled_backward(grad, idx, kh, kw, dx):
    """Route each output gradient to the input position that held the tile's maximum.

    (C, H, W, N) arrays as in :func:`maxpool_tiled_forward`; writes every entry of ``dx``.
    """
    ch, oh, ow, n = grad.shape
    for c in range(ch):
        for i in range(oh):
            for j in range(ow):
                g = grad[c, i, j]
                a = idx[c, i, j]
                for p in range(kh):
                    for q in range(kw):
                        d = dx[c, i * kh + p, j * kw + q]
                        code = p * kw + q
                        for b in range(n):
                            d[b] = g[b] if a[b] == code else 0


def tiled_forward(xt, kh, kw):
    """Max pooling of a contiguous (C, H, W, N) array; returns ``(out, idx)``, (C, OH, OW, N)."""
    c, h, w, n = xt.shape
    out = np.empty((c, h // kh, w // kw, n), dtype=xt.dtype)
    idx = np.empty(out.shape, dtype=np.uint8 if kh * kw <= 256 else np.int64)
    maxpool_tiled_forward(xt, kh, kw, out, idx)
    return out, idx


def tiled_backward(grad, idx, kh, kw):
    """Adjoint of :func:`tiled_forward` on a contiguous (C, OH, OW, N) gradient."""
    c, oh, ow, n = grad.shape
    dx = np.empty((c, oh * kh, ow * kw, n), dtype=grad.dtype)
    maxpool_tiled_backward(grad, idx, kh, kw, dx)
    return dx


@njit(cache=True, nogil=True)
def im2col_fill(xt, sh, sw, cols):
    """cols[c, i, j, y, x, n] = xt[c, i + sh·y, j + sw·x, n]: contiguous runs of N images."""
    ch, kh, kw, oh, ow, n = cols.shape
    for c in range(ch):
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    src = xt[c, i + sh * y]
                    dst = cols[c, i, j, y]
                    for x in range(ow):
                        s = src[j + sw * x]
                        d = dst[x]
                        for b in range(n):
                            d[b] = s[b]


@njit(cache=True, nogil=True)
def col2im_add(cols, sh, sw, dxt):
    """dxt[c, i + sh·y, j + sw·x, n] += cols[c, i, j, y, x, n].

    Every input position receives its additions in increasing kernel offset (i, j), the
    twin's order, so the sums are identical to the twin's.
    """
    ch, kh, kw, oh, ow, n = cols.shape
    for c in range(ch):
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    dst = dxt[c, i + sh * y]
                    src = cols[c, i, j, y]
                    for x in range(ow):
                        d = dst[j + sw * x]
                        s = src[x]
                        for b in range(n):
                            d[b] += s[b]


@njit(cache=True, nogil=True)
def sgd_update(p, g, v, lr, momentum, weight_decay, first):
    """In place on flat arrays: ``g' = g + λ·p``; ``v = μ·v + g'`` (``v = g'`` if ``first``);
    ``p -= lr·v``. ``λ = 0`` skips the decay term and ``μ = 0`` the velocity (``v`` unused),
    exactly as the NumPy twin does. Scalars come in the arrays' dtype.
    """
    for k in range(p.shape[0]):
        gk = g[k]
        if weight_decay != 0:
            gk = gk + weight_decay * p[k]
        if momentum != 0:
            if first:
                v[k] = gk
            else:
                gk = v[k] * momentum + gk
                v[k] = gk
        p[k] = p[k] - lr * gk
