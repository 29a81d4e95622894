"""Max pooling, average pooling and global average pooling (PyTorch's ``MaxPool2d``, ``AvgPool2d``,
``AdaptiveAvgPool2d(1)``).

A ``KH x KW`` window slides with ``stride`` over the input padded by ``padding`` on every side; output sizes
round down, ``H_out = (H + 2*padding - KH) // stride + 1``. As in PyTorch:

* max pooling pads with ``-inf`` (padding never wins) and, on ties, routes the gradient to the first maximum
  in the window (row-major order); NaN counts as the maximum (it propagates) and, among several NaNs, the last
  one takes the gradient; a window whose inputs are all ``-inf`` sends its gradient to its first input;
* average pooling pads with zeros and always divides by ``KH*KW`` (``count_include_pad=True``), so a window that
  overlaps the padding averages in zeros;
* ``padding`` may be at most half the kernel size.

The plain version loops over the ``KH*KW`` window taps, each one a strided slice of the whole (padded) batch::

    out = max over (p, q) of x_pad[:, :, p::s, q::s]          (cut to H_out x W_out)

The kernels here do the same on channels-last memory (:mod:`.layout`) and **separably**: first over the ``KW``
taps of every padded row (columns ``q, q+s, ...``, contiguous after splitting even and odd columns), then over
the ``KH`` rows of each window: ``KH + KW`` passes instead of ``KH * KW``. Max pooling remembers the winning
column of each row and the winning row of each window (first maximum wins at both stages, which picks the first
maximum in row-major order, as PyTorch; and the last NaN wins at both stages, which picks the last NaN in
row-major order, as PyTorch); its backward routes the gradient through the two stages in reverse. The work goes
by blocks of images (:mod:`.threads`), each block's padded copy and row maxima staying in the cache.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_dout, check_float_array, check_pixels, check_pool_args
from ..functional.pool import GlobalPoolCache
from .layout import from_nhwc, merge_crop, pad_split, phase_shapes, strided_rows, tap_cols, to_nhwc
from .threads import parallel_over_batch, scratch


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


def _block_phases(what, shapes, n, dtype, fill=None):
    """Work arrays for one block's padded (and split) copy of ``n`` images (:func:`~.layout.pad_split`'s ``out``)
    or for its gradient (``fill=0``): :func:`~.threads.scratch` memory named ``"{what}, phase {r}"``."""
    return [scratch(f"{what}, phase {r}", (n,) + tuple(shape[1:]), dtype, fill=fill) for r, shape in enumerate(shapes)]


def _max_and_winner(candidates, best, winner):
    """Element-wise maximum of equally shaped arrays into ``best``, and into ``winner`` the index of the array
    that won.

    As PyTorch: a NaN wins over any number (and propagates), a later NaN over an earlier one; otherwise ties go
    to the *first* maximum. A later candidate takes over only when it is strictly greater or NaN, and since
    candidates come in increasing index, ``max(winner, takes_over * k)`` is the new winner.
    """
    best[...] = candidates[0]
    winner[...] = 0
    takes_over = np.empty(best.shape, dtype=bool)
    for k, cand in enumerate(candidates[1:], start=1):
        np.greater(cand, best, out=takes_over)
        takes_over |= np.isnan(cand)
        np.maximum(winner, np.multiply(takes_over, k, dtype=winner.dtype), out=winner)
        np.maximum(best, cand, out=best)                       # NaN propagates
    return best, winner


def _first_inside_if_all_minus_inf(best, winner, pad, step, width, axis):
    """Where a window holds only ``-inf``, let its first tap inside the image win (PyTorch never routes a gradient
    into the padding). Only the first windows along ``axis`` can start in the padding: window ``j`` starts
    ``pad - j*step`` taps before the image. ``width``: numbers per window along ``axis`` (C for columns)."""
    for j in range(-(-pad // step)):
        first_inside = pad - j * step
        at = (slice(None),) * axis + (slice(j * width, (j + 1) * width) if axis == 2 else j,)
        winner[at] += np.multiply(best[at] == -np.inf, first_inside, dtype=winner.dtype)


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
    xh = to_nhwc(x)
    shapes = phase_shapes(xh.shape, padding, stride)
    idx = np.int8 if max(KH, KW) < 128 else np.int32
    q_win = np.empty((N, shapes[0][1], W_out * C), dtype=idx)
    out = np.empty((N, H_out, W_out * C), dtype=x.dtype)
    p_win = np.empty(out.shape, dtype=idx)

    def block(n0, n1):
        phases = pad_split(xh[n0:n1], padding, stride, value=-np.inf,            # padding never wins
                           out=_block_phases("padded input", shapes, n1 - n0, x.dtype))
        # Stage 1: the max over the KW column taps of every padded row; stage 2: over the KH rows of a window.
        r = scratch("row maxima", q_win[n0:n1].shape, x.dtype)
        _max_and_winner([tap_cols(phases, q, stride, W_out) for q in range(KW)], r, q_win[n0:n1])
        _first_inside_if_all_minus_inf(r, q_win[n0:n1], padding[1], stride[1], C, axis=2)
        _max_and_winner([strided_rows(r, p, stride, H_out) for p in range(KH)], out[n0:n1], p_win[n0:n1])
        _first_inside_if_all_minus_inf(out[n0:n1], p_win[n0:n1], padding[0], stride[0], W_out * C, axis=1)

    parallel_over_batch(block, N, sum(np.prod(shape[1:]) for shape in shapes))
    cache = FastMaxPoolCache(q_win, p_win, shapes, x.shape, x.dtype, kernel_size, stride, padding)
    return from_nhwc(out.reshape(N, H_out, W_out, C)), cache


def max_pool2d_backward(dout, cache):
    """Max-pooling backward pass: each window's gradient goes to the input that was its maximum.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), channels-last in memory
    """
    q_win, p_win, phase_shapes_, x_shape, dtype, (KH, KW), stride, padding = check_cache(LAYER_MAX, cache,
                                                                                          FastMaxPoolCache)
    N, C, H, W = x_shape
    H_out, W_out = p_win.shape[1], p_win.shape[2] // C
    dout = check_dout(LAYER_MAX, dout, (N, C, H_out, W_out), dtype)
    dy = to_nhwc(dout).reshape(p_win.shape)
    dx = np.empty((N, H, W, C), dtype=dy.dtype)

    def block(n0, n1):
        dr = scratch("row maxima gradient", q_win[n0:n1].shape, dy.dtype, fill=0)
        for p in range(KH):
            strided_rows(dr, p, stride, H_out)[...] += dy[n0:n1] * (p_win[n0:n1] == p)
        dphases = _block_phases("padded gradient", phase_shapes_, n1 - n0, dy.dtype, fill=0)
        for q in range(KW):
            tap_cols(dphases, q, stride, W_out)[...] += dr * (q_win[n0:n1] == q)
        merge_crop(dphases, padding, stride, dx[n0:n1].shape, out=dx[n0:n1])

    parallel_over_batch(block, N, sum(np.prod(shape[1:]) for shape in phase_shapes_))
    return from_nhwc(dx)


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
    xh = to_nhwc(x)
    shapes = phase_shapes(xh.shape, padding, stride)
    out = np.empty((N, H_out, W_out * C), dtype=x.dtype)

    def block(n0, n1):
        phases = pad_split(xh[n0:n1], padding, stride, out=_block_phases("padded input", shapes, n1 - n0, x.dtype))
        r = scratch("row sums", tap_cols(phases, 0, stride, W_out).shape, x.dtype)     # over the KW column taps
        r[...] = tap_cols(phases, 0, stride, W_out)
        for q in range(1, KW):
            r += tap_cols(phases, q, stride, W_out)
        o = out[n0:n1]
        o[...] = strided_rows(r, 0, stride, H_out)               # then sums over the KH rows of each window
        for p in range(1, KH):
            o += strided_rows(r, p, stride, H_out)
        o /= KH * KW

    parallel_over_batch(block, N, sum(np.prod(shape[1:]) for shape in shapes))
    cache = FastAvgPoolCache(shapes, x.shape, x.dtype, kernel_size, stride, padding, (N, C, H_out, W_out))
    return from_nhwc(out.reshape(N, H_out, W_out, C)), cache


def avg_pool2d_backward(dout, cache):
    """Average-pooling backward pass: every input of a window receives ``dout / (KH*KW)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), channels-last in memory
    """
    phase_shapes_, x_shape, dtype, (KH, KW), stride, padding, out_shape = check_cache(LAYER_AVG, cache,
                                                                                       FastAvgPoolCache)
    dout = check_dout(LAYER_AVG, dout, out_shape, dtype)
    N, C, H, W = x_shape
    H_out, W_out = out_shape[2:]
    dy = to_nhwc(dout).reshape(N, H_out, W_out * C)
    dx = np.empty((N, H, W, C), dtype=dy.dtype)

    def block(n0, n1):
        share = dy[n0:n1] / (KH * KW)
        dr = scratch("row sums gradient", (n1 - n0, phase_shapes_[0][1], W_out * C), share.dtype, fill=0)
        for p in range(KH):
            strided_rows(dr, p, stride, H_out)[...] += share
        dphases = _block_phases("padded gradient", phase_shapes_, n1 - n0, share.dtype, fill=0)
        for q in range(KW):
            tap_cols(dphases, q, stride, W_out)[...] += dr
        merge_crop(dphases, padding, stride, dx[n0:n1].shape, out=dx[n0:n1])

    parallel_over_batch(block, N, sum(np.prod(shape[1:]) for shape in phase_shapes_))
    return from_nhwc(dx)


def global_avg_pool2d_forward(x):
    """Global average pooling: the mean of each channel over its ``H x W`` plane.

    Returns
    -------
    out : ndarray, shape (N, C)
    cache : the input shape and dtype
    """
    check_float_array(LAYER_GLOBAL, "x", x, ndim=4)
    check_pixels(LAYER_GLOBAL, x)
    N, C, H, W = x.shape
    out = to_nhwc(x).reshape(N, H * W, C).mean(axis=1)             # the same sums in either layout
    return out, GlobalPoolCache(x.shape, x.dtype)


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
