"""ReLU on blocks of images, on several threads (:mod:`.threads`): ``out = max(x, 0)``.

The same maths as the textbook :mod:`numpy_shufflenet.functional.activation`, with PyTorch's rules at NaN:
``max(NaN, 0)`` is NaN, and the gradient passes wherever the output is not ``<= 0`` (so also at NaN).
The output keeps the input's memory layout (NCHW or channels-last).

A ShuffleNet unit ends in a ReLU of a sum (Fig. 2 b: ``relu(x + branch)``) or of a concatenation (Fig. 2 c:
``relu(concat(shortcut, branch))``): the fused pairs ``add_relu`` and ``concat_relu`` of the kernel contract
(:mod:`numpy_shufflenet.functional.fused` writes them as the plain pairs one after the other).
:func:`add_relu_forward` and :func:`concat_relu_forward` do the addition or the concatenation and the ReLU in one
pass, block by block, instead of writing the sum to memory and reading it back; their backward passes,
:func:`add_relu_backward` and :func:`concat_relu_backward`, take the ReLU's mask from the output they keep.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_add_args, check_cache, check_concat_args, check_dout, check_float_array
from ..functional.activation import ReluCache
from .layout import from_nhwc, to_nhwc
from .threads import parallel_over_batch, scratch

LAYER, LAYER_ADD, LAYER_CONCAT = "relu", "add_relu", "concat_relu"


class FastAddReluCache(NamedTuple):
    out: np.ndarray            # the ReLU's output (the gradient passes where it is not 0)
    dtype: np.dtype


class FastConcatReluCache(NamedTuple):
    out: np.ndarray            # the ReLU's output, (N, C_a + C_b, H, W) (the gradient passes where it is not 0)
    dtype: np.dtype
    channels_a: int            # C_a: the gradient's first C_a channels belong to a, the others to b


def _batch_rows(a):
    """``a``'s memory as a C-contiguous ``(N, -1)`` array plus a function that gives an array of ``a``'s shape
    back from one with the same memory; ``None`` when ``a`` is neither C-contiguous nor channels-last."""
    if a.ndim >= 1 and a.size and a.flags.c_contiguous:
        return a.reshape(a.shape[0], -1), lambda m: m.reshape(a.shape)
    if a.ndim == 4 and a.size and a.transpose(0, 2, 3, 1).flags.c_contiguous:
        N, C, H, W = a.shape
        return a.transpose(0, 2, 3, 1).reshape(N, -1), lambda m: m.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return None, None


def relu_mask(out, mask):
    """Where the gradient passes, from the ReLU's *output*: ``out != 0``, written into the bool array ``mask``.

    The same as ``not (x <= 0)`` on the input: ``max(x, 0)`` is 0 exactly where ``x <= 0`` and NaN where ``x`` is
    NaN (``NaN != 0``), so one comparison gives PyTorch's rule.
    """
    return np.not_equal(out, 0, out=mask)


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
        return out, ReluCache(relu_mask(out, np.empty(out.shape, dtype=bool)), x.dtype)
    out, mask = np.empty_like(rows), np.empty(rows.shape, dtype=bool)

    def block(n0, n1):
        np.maximum(rows[n0:n1], 0, out=out[n0:n1])
        relu_mask(out[n0:n1], mask[n0:n1])

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


def add_relu_forward(x, y):
    """``relu(x + y)`` in one pass: the residual connection of a stride-1 unit and the ReLU after it.

    Parameters
    ----------
    x, y : ndarray, same shape and dtype

    Returns
    -------
    out : ndarray, the same numbers as ``relu_forward(x + y)[0]``, in ``x``'s memory layout
    cache : FastAddReluCache for :func:`add_relu_backward`
    """
    check_add_args(LAYER_ADD, x, y)
    rows, shape_back = _batch_rows(x)
    if rows is None:
        out = np.maximum(x + y, 0)
        return out, FastAddReluCache(out, x.dtype)
    y_rows = _same_layout_rows(y, x)
    out = np.empty_like(rows)

    def block(n0, n1):
        o = np.add(rows[n0:n1], y_rows[n0:n1], out=out[n0:n1])
        np.maximum(o, 0, out=o)

    parallel_over_batch(block, rows.shape[0], rows.shape[1])
    out = shape_back(out)
    return out, FastAddReluCache(out, x.dtype)


def concat_relu_forward(a, b):
    """``relu(concatenate([a, b], axis=1))`` in one pass: the end of a stride-2 unit (shortcut, then branch).

    Parameters
    ----------
    a : ndarray, shape (N, C_a, H, W)
    b : ndarray, shape (N, C_b, H, W), same dtype

    Returns
    -------
    out : ndarray, shape (N, C_a + C_b, H, W), channels-last in memory
    cache : FastConcatReluCache for :func:`concat_relu_backward`
    """
    check_concat_args(LAYER_CONCAT, a, b)
    N, Ca, H, W = a.shape
    ah, bh = to_nhwc(a), to_nhwc(b)
    out = np.empty((N, H, W, Ca + b.shape[1]), dtype=a.dtype)

    def block(n0, n1):
        np.maximum(ah[n0:n1], 0, out=out[n0:n1, :, :, :Ca])
        np.maximum(bh[n0:n1], 0, out=out[n0:n1, :, :, Ca:])

    parallel_over_batch(block, N, out[0].size)
    out = from_nhwc(out)
    return out, FastConcatReluCache(out, a.dtype, Ca)


def add_relu_backward(dout, cache):
    """Backward pass of :func:`add_relu_forward`: ``(dx, dy)``, both the gradient of the sum.

    Returns
    -------
    dx, dy : ndarray, the shape of ``x``: ``dout`` where the output is not 0, else 0 (one array, returned twice:
        the sum passes its gradient to both inputs unchanged)
    """
    out, dtype = check_cache(LAYER_ADD, cache, FastAddReluCache)
    d = _masked_by_output(LAYER_ADD, dout, out, dtype)
    return d, d


def concat_relu_backward(dout, cache):
    """Backward pass of :func:`concat_relu_forward`: ``(da, db)``, the two channel blocks of the gradient.

    Returns
    -------
    da : ndarray, shape (N, C_a, H, W);  db : ndarray, shape (N, C_b, H, W) (views of one gradient array)
    """
    out, dtype, channels_a = check_cache(LAYER_CONCAT, cache, FastConcatReluCache)
    d = _masked_by_output(LAYER_CONCAT, dout, out, dtype)
    return d[:, :channels_a], d[:, channels_a:]


def _masked_by_output(layer, dout, out, dtype):
    """The gradient of a fused ReLU's input (the sum, or the concatenation): ``dout`` where the output ``out`` is
    not 0 (:func:`relu_mask`), else 0.

    The mask is taken from the output here, block by block, instead of being stored by the forward pass (as
    PyTorch's ReLU does): the output stays alive anyway as the next layer's input, so this saves the mask's
    memory and one pass of the forward.
    """
    dout = check_dout(layer, dout, out.shape, dtype)
    out_rows, shape_back = _batch_rows(out)
    if out_rows is None:
        return dout * relu_mask(out, np.empty(out.shape, dtype=bool))
    dout_rows = _same_layout_rows(dout, out)
    dx = np.empty_like(dout_rows)

    def block(n0, n1):
        passes = relu_mask(out_rows[n0:n1], scratch("relu mask", dx[n0:n1].shape, bool))
        np.multiply(dout_rows[n0:n1], passes, out=dx[n0:n1])

    parallel_over_batch(block, dx.shape[0], dx.shape[1])
    return shape_back(dx)


def _same_layout_rows(a, like):
    """``a``'s numbers as ``(N, -1)`` rows in the memory order of ``like`` (a copy only when the layouts differ)."""
    if like.flags.c_contiguous:
        return np.ascontiguousarray(a).reshape(a.shape[0], -1)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(a.shape[0], -1)
