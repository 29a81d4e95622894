"""Max pooling, average pooling and global average pooling (PyTorch's ``MaxPool2d``, ``AvgPool2d``,
``AdaptiveAvgPool2d(1)``).

A ``KH x KW`` window slides with ``stride`` over the input padded by ``padding`` on every side; output sizes
round down, ``H_out = (H + 2*padding - KH) // stride + 1``. As in PyTorch:

* max pooling pads with ``-inf`` (padding never wins) and, on ties, routes the gradient to the first maximum
  in the window (row-major order);
* average pooling pads with zeros and always divides by ``KH*KW`` (``count_include_pad=True``), so a window that
  overlaps the padding averages in zeros;
* ``padding`` may be at most half the kernel size.

The fast path loops over the ``KH*KW`` window taps only, each one a strided slice of the whole batch.
"""

import numpy as np

from .conv import pad2d, tap, unpad2d
from .._checks import check_cache, check_dout, check_float_array, conv_out_size, pair


def _pool_args(layer, x, kernel_size, stride, padding):
    check_float_array(layer, "x", x, ndim=4)
    kernel_size = pair(layer, "kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None else pair(layer, "stride", stride, 1)
    padding = pair(layer, "padding", padding, 0)
    for k, p in zip(kernel_size, padding):
        if p > k // 2:
            raise ValueError(f"{layer}: expected padding at most half the kernel size ({k // 2}), got {p}")
    H_out = conv_out_size(layer, x.shape[2], kernel_size[0], stride[0], padding[0], "H")
    W_out = conv_out_size(layer, x.shape[3], kernel_size[1], stride[1], padding[1], "W")
    return kernel_size, stride, padding, (H_out, W_out)


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """Max-pooling forward pass.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding : int or (int, int); ``stride`` defaults to ``kernel_size``

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : tuple for :func:`max_pool2d_backward` (which tap of each window won)
    """
    layer = "max_pool2d"
    kernel_size, stride, padding, out_hw = _pool_args(layer, x, kernel_size, stride, padding)
    ph, pw = padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf) if ph or pw else x
    KH, KW = kernel_size
    out = tap(x_pad, 0, 0, stride, out_hw).copy()
    winner = np.zeros(out.shape, dtype=np.int8 if KH * KW < 128 else np.int32)   # index of the max tap
    for k in range(1, KH * KW):
        candidate = tap(x_pad, k // KW, k % KW, stride, out_hw)
        better = candidate > out                       # strictly greater: the first maximum keeps the prize
        np.maximum(out, candidate, out=out)
        winner += better * (k - winner)           # winner = k where better, else unchanged
    return out, (winner, x.shape, kernel_size, stride, padding)


def max_pool2d_backward(dout, cache):
    """Max-pooling backward pass: each window's gradient goes to the input that was its maximum.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    winner, x_shape, (KH, KW), stride, padding = check_cache("max_pool2d", cache)
    dout = check_dout("max_pool2d", dout, winner.shape)
    N, C, H, W = x_shape
    dx_pad = np.zeros((N, C, H + 2 * padding[0], W + 2 * padding[1]), dtype=dout.dtype)
    for k in range(KH * KW):
        tap(dx_pad, k // KW, k % KW, stride, winner.shape[2:])[...] += dout * (winner == k)
    return np.ascontiguousarray(unpad2d(dx_pad, padding))


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """Average-pooling forward pass (``count_include_pad=True``: always divide by ``KH*KW``).

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : tuple for :func:`avg_pool2d_backward`
    """
    layer = "avg_pool2d"
    kernel_size, stride, padding, out_hw = _pool_args(layer, x, kernel_size, stride, padding)
    x_pad = pad2d(x, padding)
    KH, KW = kernel_size
    out = np.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    for p in range(KH):
        for q in range(KW):
            out += tap(x_pad, p, q, stride, out_hw)
    out /= KH * KW
    return out, (x.shape, kernel_size, stride, padding, out.shape)


def avg_pool2d_backward(dout, cache):
    """Average-pooling backward pass: every input of a window receives ``dout / (KH*KW)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x_shape, (KH, KW), stride, padding, out_shape = check_cache("avg_pool2d", cache)
    dout = check_dout("avg_pool2d", dout, out_shape)
    N, C, H, W = x_shape
    share = dout / (KH * KW)
    dx_pad = np.zeros((N, C, H + 2 * padding[0], W + 2 * padding[1]), dtype=dout.dtype)
    for p in range(KH):
        for q in range(KW):
            tap(dx_pad, p, q, stride, out_shape[2:])[...] += share
    return np.ascontiguousarray(unpad2d(dx_pad, padding))


def global_avg_pool2d_forward(x):
    """Global average pooling: the mean of each channel over its ``H x W`` plane.

    Returns
    -------
    out : ndarray, shape (N, C)
    cache : the input shape
    """
    check_float_array("global_avg_pool2d", "x", x, ndim=4)
    return x.mean(axis=(2, 3)), x.shape


def global_avg_pool2d_backward(dout, cache):
    """Global average pooling backward pass: ``dx[n, c, h, w] = dout[n, c] / (H*W)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x_shape = check_cache("global_avg_pool2d", cache)
    dout = check_dout("global_avg_pool2d", dout, x_shape[:2])
    N, C, H, W = x_shape
    return np.broadcast_to((dout / (H * W))[:, :, None, None], x_shape).copy()
