"""ReLU on blocks of images, on several threads (:mod:`.threads`): ``out = max(x, 0)``.

The same maths as the textbook :mod:`numpy_shufflenet.functional.activation`, with PyTorch's rules at NaN:
``max(NaN, 0)`` is NaN, and the gradient passes wherever the output is not ``<= 0`` (so also at NaN).
The output keeps the input's memory layout (NCHW or channels-last).
"""

import numpy as np

from .._checks import check_cache, check_dout, check_float_array
from ..functional.activation import ReluCache
from .threads import parallel_over_batch

LAYER = "relu"


def _batch_rows(a):
    """``a``'s memory as a C-contiguous ``(N, -1)`` array plus a function that gives an array of ``a``'s shape
    back from one with the same memory; ``None`` when ``a`` is neither C-contiguous nor channels-last."""
    if a.ndim >= 1 and a.size and a.flags.c_contiguous:
        return a.reshape(a.shape[0], -1), lambda m: m.reshape(a.shape)
    if a.ndim == 4 and a.size and a.transpose(0, 2, 3, 1).flags.c_contiguous:
        N, C, H, W = a.shape
        return a.transpose(0, 2, 3, 1).reshape(N, -1), lambda m: m.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return None, None


def _passes(out, zero_or_less):
    """Where the gradient passes: ``not (out <= 0)``, written into the bool array ``zero_or_less``."""
    np.less_equal(out, 0, out=zero_or_less)
    return np.logical_not(zero_or_less, out=zero_or_less)


def relu_forward(x):
    """ReLU forward pass.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, same shape, dtype and memory layout as ``x``
    cache : ReluCache (where the gradient passes, and the dtype of ``x``) for :func:`relu_backward`
    """
    check_float_array(LAYER, "x", x)
    rows, shape_back = _batch_rows(x)
    if rows is None:
        out = np.maximum(x, 0)
        return out, ReluCache(_passes(out, np.empty(out.shape, dtype=bool)), x.dtype)
    out, mask = np.empty_like(rows), np.empty(rows.shape, dtype=bool)

    def block(n0, n1):
        np.maximum(rows[n0:n1], 0, out=out[n0:n1])
        _passes(out[n0:n1], mask[n0:n1])

    parallel_over_batch(block, rows.shape[0], rows.shape[1])
    return shape_back(out), ReluCache(shape_back(mask), x.dtype)


def relu_backward(dout, cache):
    """ReLU backward pass: ``dx = dout * mask`` (0 where the output was ``<= 0``, as PyTorch)."""
    mask, dtype = check_cache(LAYER, cache, ReluCache)
    dout = check_dout(LAYER, dout, mask.shape, dtype)
    mask_rows, shape_back = _batch_rows(mask)
    if mask_rows is None:
        return dout * mask
    dout_rows = _same_layout_rows(dout, mask)
    dx = np.empty_like(dout_rows)

    def block(n0, n1):
        np.multiply(dout_rows[n0:n1], mask_rows[n0:n1], out=dx[n0:n1])

    parallel_over_batch(block, dx.shape[0], dx.shape[1])
    return shape_back(dx)


def _same_layout_rows(a, like):
    """``a``'s numbers as ``(N, -1)`` rows in the memory order of ``like`` (a copy only when the layouts differ)."""
    if like.flags.c_contiguous:
        return np.ascontiguousarray(a).reshape(a.shape[0], -1)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(a.shape[0], -1)
