"""Max pooling, average pooling and global average pooling (PyTorch's ``MaxPool2d``, ``AvgPool2d``,
``AdaptiveAvgPool2d(1)``).

A ``KH x KW`` window slides with ``stride`` over the input padded by ``padding`` on every side; output sizes
round down, ``H_out = (H + 2*padding - KH) // stride + 1``. As in PyTorch:

* max pooling pads with ``-inf`` (padding never wins) and, on ties, routes the gradient to the first maximum
  in the window (row-major order);
* average pooling pads with zeros and always divides by ``KH*KW`` (``count_include_pad=True``), so a window that
  overlaps the padding averages in zeros;
* ``padding`` may be at most half the kernel size.

The plain version loops over the ``KH*KW`` window taps, each one a strided slice of the whole (padded) batch::

    out = max over (p, q) of x_pad[:, :, p::s, q::s]          (cut to H_out x W_out)

The kernels here do the same on channels-last memory (:mod:`.layout`) and **separably**: first over the ``KW``
taps of every padded row (columns ``q, q+s, ...``, contiguous after splitting even and odd columns), then over
the ``KH`` rows of each window: ``KH + KW`` passes instead of ``KH * KW``. Max pooling remembers the winning
column of each row and the winning row of each window (first maximum wins at both stages, which picks the first
maximum in row-major order, as PyTorch); its backward routes the gradient through the two stages in reverse.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_dout, check_float_array, check_pool_args
from ..functional.pool import GlobalPoolCache
from .layout import from_nhwc, merge_crop, pad_split, strided_rows, tap_cols, to_nhwc


LAYER_MAX, LAYER_AVG, LAYER_GLOBAL = "max_pool2d", "avg_pool2d", "global_avg_pool2d"

class FastMaxPoolCache(NamedTuple):
    q_win: np.ndarray          # (N, H_pad, W_out*C): which column tap won each padded row
    p_win: np.ndarray          # (N, H_out, W_out*C): which row of the window won
    phase_shapes: list         # shapes of the padded (even/odd split) inputs
    x_shape: tuple
    dtype: np.dtype
    kernel_size: tuple
    stride: tuple
    padding: tuple


class FastAvgPoolCache(NamedTuple):
    phase_shapes: list
    x_shape: tuple
    dtype: np.dtype
    kernel_size: tuple
    stride: tuple
    padding: tuple
    out_shape: tuple


def _max_and_winner(candidates, idx_dtype):
    """Element-wise maximum of equally shaped arrays, and the index of the array that won.

    Ties go to the *first* maximum, as in PyTorch: a later candidate takes over only when strictly greater, and
    since candidates come in increasing index, ``max(winner, (cand > best) * k)`` is the new winner.
    """
    best = candidates[0].copy()
    winner = np.zeros(best.shape, dtype=idx_dtype)
    for k, cand in enumerate(candidates[1:], start=1):
        np.maximum(winner, np.multiply(cand > best, k, dtype=idx_dtype), out=winner)
        np.maximum(best, cand, out=best)
    return best, winner


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """Max-pooling forward pass.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding : int or (int, int); ``stride`` defaults to ``kernel_size``

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out), channels-last in memory
    cache : tuple for :func:`max_pool2d_backward` (which column and which row of each window won)
    """
    kernel_size, stride, padding, (H_out, W_out) = check_pool_args(LAYER_MAX, x, kernel_size, stride, padding)
    N, C, H, W = x.shape
    KH, KW = kernel_size
    phases = pad_split(to_nhwc(x), padding, stride, value=-np.inf)      # padding never wins
    idx = np.int8 if max(KH, KW) < 128 else np.int32
    # Stage 1: the max over the KW column taps of every padded row; stage 2: the max over the KH rows of a window.
    r, q_win = _max_and_winner([tap_cols(phases, q, stride, W_out) for q in range(KW)], idx)
    out, p_win = _max_and_winner([strided_rows(r, p, stride, H_out) for p in range(KH)], idx)
    cache = FastMaxPoolCache(q_win, p_win, [p.shape for p in phases], x.shape, x.dtype, kernel_size, stride, padding)
    return from_nhwc(out.reshape(N, H_out, W_out, C)), cache


def max_pool2d_backward(dout, cache):
    """Max-pooling backward pass: each window's gradient goes to the input that was its maximum.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), channels-last in memory
    """
    q_win, p_win, phase_shapes, x_shape, dtype, (KH, KW), stride, padding = check_cache(LAYER_MAX, cache, FastMaxPoolCache)
    N, C, H, W = x_shape
    H_out, W_out = p_win.shape[1], p_win.shape[2] // C
    dout = check_dout(LAYER_MAX, dout, (N, C, H_out, W_out), dtype)
    dy = to_nhwc(dout).reshape(p_win.shape)
    dr = np.zeros(q_win.shape, dtype=dy.dtype)               # gradient of the row maxima
    for p in range(KH):
        strided_rows(dr, p, stride, H_out)[...] += dy * (p_win == p)
    dphases = [np.zeros(shape, dtype=dy.dtype) for shape in phase_shapes]
    for q in range(KW):
        tap_cols(dphases, q, stride, W_out)[...] += dr * (q_win == q)
    return from_nhwc(merge_crop(dphases, padding, stride, (N, H, W, C)))


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """Average-pooling forward pass (``count_include_pad=True``: always divide by ``KH*KW``).

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out), channels-last in memory
    cache : tuple for :func:`avg_pool2d_backward`
    """
    kernel_size, stride, padding, (H_out, W_out) = check_pool_args(LAYER_AVG, x, kernel_size, stride, padding)
    N, C, H, W = x.shape
    KH, KW = kernel_size
    phases = pad_split(to_nhwc(x), padding, stride)
    r = tap_cols(phases, 0, stride, W_out).copy()            # row sums over the KW column taps
    for q in range(1, KW):
        r += tap_cols(phases, q, stride, W_out)
    out = strided_rows(r, 0, stride, H_out).copy()           # then sums over the KH rows of each window
    for p in range(1, KH):
        out += strided_rows(r, p, stride, H_out)
    out /= KH * KW
    cache = FastAvgPoolCache([p.shape for p in phases], x.shape, x.dtype, kernel_size, stride, padding,
                             (N, C, H_out, W_out))
    return from_nhwc(out.reshape(N, H_out, W_out, C)), cache


def avg_pool2d_backward(dout, cache):
    """Average-pooling backward pass: every input of a window receives ``dout / (KH*KW)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), channels-last in memory
    """
    phase_shapes, x_shape, dtype, (KH, KW), stride, padding, out_shape = check_cache(LAYER_AVG, cache, FastAvgPoolCache)
    dout = check_dout(LAYER_AVG, dout, out_shape, dtype)
    N, C, H, W = x_shape
    H_out, W_out = out_shape[2:]
    share = to_nhwc(dout).reshape(N, H_out, W_out * C) / (KH * KW)
    dr = np.zeros((N, phase_shapes[0][1], W_out * C), dtype=share.dtype)
    for p in range(KH):
        strided_rows(dr, p, stride, H_out)[...] += share
    dphases = [np.zeros(shape, dtype=share.dtype) for shape in phase_shapes]
    for q in range(KW):
        tap_cols(dphases, q, stride, W_out)[...] += dr
    return from_nhwc(merge_crop(dphases, padding, stride, (N, H, W, C)))


def global_avg_pool2d_forward(x):
    """Global average pooling: the mean of each channel over its ``H x W`` plane.

    Returns
    -------
    out : ndarray, shape (N, C)
    cache : the input shape and dtype
    """
    check_float_array(LAYER_GLOBAL, "x", x, ndim=4)
    N, C, H, W = x.shape
    return to_nhwc(x).reshape(N, H * W, C).mean(axis=1), GlobalPoolCache(x.shape, x.dtype)   # same sums in either layout


def global_avg_pool2d_backward(dout, cache):
    """Global average pooling backward pass: ``dx[n, c, h, w] = dout[n, c] / (H*W)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x_shape, dtype = check_cache(LAYER_GLOBAL, cache, GlobalPoolCache)
    dout = check_dout(LAYER_GLOBAL, dout, x_shape[:2], dtype)
    N, C, H, W = x_shape
    dxh = np.empty((N, H, W, C), dtype=dout.dtype)           # channels-last, like the rest of the network
    dxh[...] = (dout / (H * W))[:, None, None, :]
    return from_nhwc(dxh)
