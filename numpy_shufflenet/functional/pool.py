r"""Max pooling, average pooling and global average pooling (PyTorch's ``MaxPool2d``, ``AvgPool2d``,
``AdaptiveAvgPool2d(1)``).

A ``KH x KW`` window slides with ``stride`` over the input padded by ``padding`` on every side (at most half the
kernel); output sizes round down, ``H_out = (H + 2*padding - KH) // stride + 1``. Each window is read one kernel
tap at a time (:func:`~.windows.tap`), as in the depthwise convolution. As in PyTorch:

* max pooling pads with ``-inf``, so padding never wins; the gradient goes to the window's first maximum in
  row-major order. NaN counts as the maximum (it propagates) and, among several NaNs, the last one takes the
  gradient; a window whose inputs are all ``-inf`` sends its gradient to its first input, never to the padding;
* average pooling pads with zeros and always divides by ``KH*KW`` (``count_include_pad=True``), so a window that
  overlaps the padding averages in zeros.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_dout, check_float_array, check_pixels, check_pool_args
from .windows import pad2d, tap, unpad2d


LAYER_MAX, LAYER_AVG, LAYER_GLOBAL = "max_pool2d", "avg_pool2d", "global_avg_pool2d"

class MaxPoolCache(NamedTuple):
    winner: np.ndarray         # (N, C, H_out, W_out), the tap p*KW + q that won each window
    x_shape: tuple             # (N, C, H, W)
    dtype: np.dtype
    kernel_size: tuple
    stride: tuple
    padding: tuple
    out_shape: tuple           # (N, C, H_out, W_out)


class AvgPoolCache(NamedTuple):
    x_shape: tuple             # (N, C, H, W)
    dtype: np.dtype
    kernel_size: tuple
    stride: tuple
    padding: tuple
    out_shape: tuple           # (N, C, H_out, W_out)


def _taps(x_pad, kernel_size, stride, out_hw):
    """Every tap's slice, stacked: ``(KH*KW, N, C, H_out, W_out)``, tap ``p*KW + q`` at index ``p*KW + q``."""
    return np.stack([tap(x_pad, p, q, stride, out_hw) for p in range(kernel_size[0]) for q in range(kernel_size[1])])


def _winners(windows, inside):
    """PyTorch's choice of the maximum of each window (``inside``: which taps read the image, not the padding)."""
    winner = windows.argmax(axis=0)                                  # the first maximum (or the first NaN)
    nan = np.isnan(windows)
    last_nan = len(windows) - 1 - nan[::-1].argmax(axis=0)
    winner = np.where(nan.any(axis=0), last_nan, winner)
    all_minus_inf = np.take_along_axis(windows, winner[None], 0)[0] == -np.inf
    return np.where(all_minus_inf, inside.argmax(axis=0), winner)


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """Max-pooling forward pass.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding : int or (int, int); ``stride`` defaults to ``kernel_size``

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : MaxPoolCache for :func:`max_pool2d_backward` (which tap of each window won)
    """
    kernel_size, stride, padding, out_hw = check_pool_args(LAYER_MAX, x, kernel_size, stride, padding)
    windows = _taps(pad2d(x, padding, value=-np.inf), kernel_size, stride, out_hw)
    inside = _taps(pad2d(np.ones((1, 1) + x.shape[2:], dtype=bool), padding, value=False), kernel_size, stride, out_hw)
    winner = _winners(windows, inside)
    out = np.take_along_axis(windows, winner[None], 0)[0]
    return out, MaxPoolCache(winner, x.shape, x.dtype, kernel_size, stride, padding, out.shape)


def max_pool2d_backward(dout, cache):
    """Max-pooling backward pass: each window's gradient goes to the input that won it.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    winner, x_shape, dtype, (KH, KW), stride, padding, out_shape = check_cache(LAYER_MAX, cache, MaxPoolCache)
    dout = check_dout(LAYER_MAX, dout, out_shape, dtype)
    N, C, H, W = x_shape
    dx_pad = np.zeros((N, C, H + 2 * padding[0], W + 2 * padding[1]), dtype=dout.dtype)
    for p in range(KH):
        for q in range(KW):
            tap(dx_pad, p, q, stride, out_shape[2:])[...] += dout * (winner == p * KW + q)
    return unpad2d(dx_pad, padding)


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """Average-pooling forward pass (``count_include_pad=True``: always divide by ``KH*KW``).

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : AvgPoolCache for :func:`avg_pool2d_backward`
    """
    kernel_size, stride, padding, out_hw = check_pool_args(LAYER_AVG, x, kernel_size, stride, padding)
    out = _taps(pad2d(x, padding), kernel_size, stride, out_hw).mean(axis=0)
    return out, AvgPoolCache(x.shape, x.dtype, kernel_size, stride, padding, out.shape)


def avg_pool2d_backward(dout, cache):
    """Average-pooling backward pass: every input of a window receives ``dout / (KH*KW)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x_shape, dtype, (KH, KW), stride, padding, out_shape = check_cache(LAYER_AVG, cache, AvgPoolCache)
    dout = check_dout(LAYER_AVG, dout, out_shape, dtype)
    N, C, H, W = x_shape
    share = dout / (KH * KW)
    dx_pad = np.zeros((N, C, H + 2 * padding[0], W + 2 * padding[1]), dtype=dout.dtype)
    for p in range(KH):
        for q in range(KW):
            tap(dx_pad, p, q, stride, out_shape[2:])[...] += share
    return unpad2d(dx_pad, padding)


class GlobalPoolCache(NamedTuple):
    x_shape: tuple             # (N, C, H, W)
    dtype: np.dtype


def global_avg_pool2d_forward(x):
    """Global average pooling: the mean of each channel over its ``H x W`` plane.

    Returns
    -------
    out : ndarray, shape (N, C)
    cache : GlobalPoolCache
    """
    check_float_array(LAYER_GLOBAL, "x", x, ndim=4)
    check_pixels(LAYER_GLOBAL, x)
    return x.mean(axis=(2, 3)), GlobalPoolCache(x.shape, x.dtype)


def global_avg_pool2d_backward(dout, cache):
    """Global average pooling backward pass: ``dx[n, c, h, w] = dout[n, c] / (H*W)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x_shape, dtype = check_cache(LAYER_GLOBAL, cache, GlobalPoolCache)
    dout = check_dout(LAYER_GLOBAL, dout, x_shape[:2], dtype)
    N, C, H, W = x_shape
    return np.broadcast_to((dout / (H * W))[:, :, None, None], x_shape).copy()
