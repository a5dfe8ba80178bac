"""Numba kernels of the layers, each with a NumPy twin that the tests compare it against.

* ``maxpool_tiled_forward``/``_backward``: max pooling when the windows tile the input
  (kernel = stride, no padding). Twin: the strided-window ``argmax`` path of
  :class:`vecq_ref.nn.MaxPool2D`. Ties go to the first maximum in row-major window order,
  as ``argmax`` does.
* ``col2im_add``: the scatter-add of :func:`vecq_ref.nn.conv.col2im`. Twin:
  ``col2im(..., use_kernel=False)``. Same additions in the same order (kernel offset by
  kernel offset), so the results are identical.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def maxpool_tiled_forward(x, kh, kw, out, idx):
    """out[n,c,i,j] = max of the (kh, kw) tile at (i·kh, j·kw); idx = its row-major offset."""
    n, c, oh, ow = out.shape
    for t in range(n * c):
        a = t // c
        b = t % c
        for i in range(oh):
            for j in range(ow):
                best = x[a, b, i * kh, j * kw]
                arg = 0
                for p in range(kh):
                    for q in range(kw):
                        v = x[a, b, i * kh + p, j * kw + q]
                        if v > best:
                            best = v
                            arg = p * kw + q
                out[a, b, i, j] = best
                idx[a, b, i, j] = arg


@njit(cache=True, nogil=True)
def maxpool_tiled_backward(grad, idx, kh, kw, dx):
    """Route each output gradient to the input position that held the tile's maximum."""
    n, c, oh, ow = grad.shape
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    k = idx[a, b, i, j]
                    dx[a, b, i * kh + k // kw, j * kw + k % kw] = grad[a, b, i, j]


def tiled_forward(x, kh, kw):
    n, c, h, w = x.shape
    out = np.empty((n, c, h // kh, w // kw), dtype=x.dtype)
    idx = np.empty(out.shape, dtype=np.uint8 if kh * kw <= 256 else np.int64)
    maxpool_tiled_forward(x, kh, kw, out, idx)
    return out, idx


def tiled_backward(grad, idx, kh, kw, x_shape):
    dx = np.zeros(x_shape, dtype=grad.dtype)
    maxpool_tiled_backward(grad, idx, kh, kw, dx)
    return dx


@njit(cache=True, nogil=True)
def col2im_add(cols, sh, sw, dxt):
    """dxt[c, n, i + sh·y, j + sw·x] += cols[c, i, j, n, y, x].

    One (channel, image) plane at a time, so the plane stays in cache; every input position
    still receives its additions in increasing kernel offset (i, j), the twin's order, so the
    sums are identical to the twin's. (A parallel version was tried: inside a training step
    its threads compete with OpenBLAS's spinning workers and the step gets slower.)
    """
    ch, kh, kw, n, oh, ow = cols.shape
    for t in range(ch * n):
        c = t // n
        b = t % n
        plane = dxt[c, b]
        for i in range(kh):
            for j in range(kw):
                src = cols[c, i, j, b]
                for y in range(oh):
                    for x in range(ow):
                        plane[i + sh * y, j + sw * x] += src[y, x]
