r"""Depthwise convolution: one ``KH x KW`` filter per channel (``groups == C_in == C_out``), ShuffleNet's 3x3.

Every channel is convolved with its own filter ``w[c, 0]``, so the whole layer is a sum over the kernel taps of
a shifted slice of the padded input times one number per channel::

    out[n, c, i, j] = b[c] + sum_{p, q} w[c, 0, p, q] * x_pad[n, c, i*sh + p, j*sw + q]
                    = b[c] + sum_{p, q} w[c, 0, p, q] * tap(x_pad, p, q)[n, c, i, j]

nine whole-array multiply-adds for a 3x3 kernel (:func:`~.windows.tap` is the strided slice a tap reads). The
backward pass sends each tap's share back onto the same slice, and each weight collects the sum of its tap's
slice times ``dout``. Taps overlap (neighbouring windows share pixels), so ``dx`` *adds* the shares.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_conv_args, check_dout
from .windows import pad2d, tap, unpad2d

LAYER = "depthwise_conv2d"


def is_depthwise(in_channels, out_channels, groups):
    """Whether a convolution is depthwise: as many groups as channels, in and out (and more than one)."""
    return 1 < groups == in_channels == out_channels


class DepthwiseCache(NamedTuple):
    x_pad: np.ndarray          # (N, C, H + 2*ph, W + 2*pw), the padded input
    w: np.ndarray              # (C, 1, KH, KW)
    has_bias: bool
    stride: tuple
    padding: tuple
    out_shape: tuple           # (N, C, H_out, W_out)


def depthwise_conv2d_forward(x, w, b=None, *, stride=1, padding=0):
    """Depthwise convolution forward pass: ``conv2d_forward(x, w, b, groups=C)`` for ``w`` of shape (C, 1, KH, KW).

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    cache : DepthwiseCache for :func:`depthwise_conv2d_backward`
    """
    stride, padding, _, out_shape = check_conv_args(LAYER, x, w, b, stride, padding, x.shape[1])
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"{LAYER}: expected w of shape ({x.shape[1]}, 1, KH, KW), one filter per channel of x, "
                         f"got {w.shape}")
    x_pad = pad2d(x, padding)
    out = np.zeros(out_shape, dtype=x.dtype)
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            out += tap(x_pad, p, q, stride, out_shape[2:]) * w[:, 0, p, q][:, None, None]   # (N,C,Ho,Wo) * (C,1,1)
    if b is not None:
        out += b[:, None, None]
    return out, DepthwiseCache(x_pad, w, b is not None, stride, padding, out_shape)


def depthwise_conv2d_backward(dout, cache):
    r"""Depthwise convolution backward pass::

        dw[c, 0, p, q] = sum_{n, i, j} dout[n, c, i, j] * tap(x_pad, p, q)[n, c, i, j]
        tap(dx_pad, p, q) += dout * w[c, 0, p, q]              (then crop the padding)
        db[c] = sum_{n, i, j} dout[n, c, i, j]

    Returns
    -------
    dx : (N, C, H, W), dw : (C, 1, KH, KW), db : (C,) or None
    """
    x_pad, w, has_bias, stride, padding, out_shape = check_cache(LAYER, cache, DepthwiseCache)
    dout = check_dout(LAYER, dout, out_shape, w.dtype)
    dx_pad = np.zeros_like(x_pad)
    dw = np.empty_like(w)
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            dw[:, 0, p, q] = (dout * tap(x_pad, p, q, stride, out_shape[2:])).sum(axis=(0, 2, 3))
            tap(dx_pad, p, q, stride, out_shape[2:])[...] += dout * w[:, 0, p, q][:, None, None]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return unpad2d(dx_pad, padding), dw, db
