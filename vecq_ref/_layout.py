"""Per-tensor, per-channel and per-group views of a tensor as a 2-D array of rows.

Every kernel works on ``rows`` of a C-contiguous 2-D array, one quantization vector a row:
per tensor one row; ``axis=a`` one row per index along ``a`` (the slice ``w.take(i, a)``);
``group_size=g`` one row per ``g`` contiguous weights along the last axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validation as V


@dataclass(frozen=True)
class Layout:
    shape: tuple  # the tensor's shape
    axis: int | None
    group_size: int | None

    @property
    def slice_shape(self):
        """Shape of per-slice results (α, step): () per tensor."""
        if self.axis is not None:
            return (self.shape[self.axis],)
        if self.group_size is not None:
            return self.shape[:-1] + (self.shape[-1] // self.group_size,)
        return ()

    @property
    def per_tensor(self):
        return self.axis is None and self.group_size is None

    def to_rows(self, arr):
        """The tensor as a C-contiguous (rows, n) array (a view when the layout allows)."""
        if self.axis is not None:
            arr = np.moveaxis(arr, self.axis, 0)
            return np.ascontiguousarray(arr).reshape(arr.shape[0], -1)
        if self.group_size is not None:
            return np.ascontiguousarray(arr).reshape(-1, self.group_size)
        return np.ascontiguousarray(arr).reshape(1, -1)

    def from_rows(self, rows):
        """Inverse of :meth:`to_rows` for an array of the same number of elements."""
        if self.axis is not None:
            moved = (self.shape[self.axis],) + tuple(
                s for i, s in enumerate(self.shape) if i != self.axis)
            return np.moveaxis(rows.reshape(moved), 0, self.axis)
        return rows.reshape(self.shape)

    def slices(self, per_row):
        """Per-row values (length ``rows``) shaped like :attr:`slice_shape`."""
        per_row = np.asarray(per_row)
        if self.per_tensor:
            return float(per_row.reshape(()))
        return per_row.reshape(self.slice_shape)


def layout(shape, axis=None, group_size=None):
    """Validate ``axis``/``group_size`` against ``shape`` and return a :class:`Layout`."""
    shape = tuple(shape)
    if axis is not None and group_size is not None:
        V.fail("axis", "None when `group_size` is given (groups run along the last axis)", axis)
    if axis is not None:
        if len(shape) == 0:
            V.fail("axis", "None for a 0-d array", axis)
        axis = V.axis(axis, len(shape))
    if group_size is not None:
        group_size = V.group_size(group_size, shape)
    return Layout(shape, axis, group_size)


def positive_steps(step, name="step"):
    """``step`` as a float64 array, checked real, finite and positive."""
    arr = np.asarray(step)
    if arr.dtype.kind not in "fiu":
        V.fail(name, "a positive real number or an array of them", f"dtype {arr.dtype}",
               TypeError)
    arr = arr.astype(np.float64)
    if arr.size and not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        V.fail(name, "positive and finite", f"a minimum of {np.min(arr)!r}")
    return arr


def row_steps(step, lay, rows, name="step"):
    """Broadcast a scalar or per-slice ``step`` to one positive float64 per row."""
    arr = positive_steps(step, name)
    if arr.ndim == 0:
        return np.full(rows, float(arr))
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, lay.slice_shape).reshape(rows))
    except ValueError:
        V.fail(name, f"a scalar or an array broadcastable to {lay.slice_shape}",
               f"shape {arr.shape}")
