"""2-D convolution written as plain loops: the version to read, not to run.

It computes exactly what :func:`numpy_shufflenet.functional.conv.conv2d_forward` computes (the tests check that
they agree to 1e-10 in float64), one output number at a time::

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x_pad[n, g*C_g + c, i*s + p, j*s + q]

with ``g = f // F_g`` the group of output channel ``f``. It is hundreds of times slower than the
vectorised versions, so use it on tiny inputs only.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_conv_args, check_conv_cache, check_dout

LAYER = "conv2d_naive"


class NaiveConvCache(NamedTuple):
    x_pad: np.ndarray          # (N, C_in, H + 2*ph, W + 2*pw)
    w: np.ndarray
    has_bias: bool
    x_shape: tuple
    stride: tuple
    padding: tuple
    groups: int
    out_shape: tuple


def conv2d_forward_naive(x, w, b=None, *, stride=1, padding=0, groups=1):
    """Loop version of :func:`~numpy_shufflenet.functional.conv.conv2d_forward` (same arguments and shapes)."""
    stride, padding, groups, out_shape = check_conv_args(LAYER, x, w, b, stride, padding, groups)
    N, F, H_out, W_out = out_shape
    _, C_g, KH, KW = w.shape
    F_g = F // groups                     # output channels per group
    sh, sw = stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    out = np.zeros(out_shape, dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            g = f // F_g                  # the group this output channel belongs to
            channels = slice(g * C_g, (g + 1) * C_g)
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, channels, i * sh:i * sh + KH, j * sw:j * sw + KW]   # (C_g, KH, KW)
                    out[n, f, i, j] = np.sum(window * w[f])
            if b is not None:
                out[n, f] += b[f]
    cache = NaiveConvCache(x_pad, w, b is not None, x.shape, stride, padding, groups, out_shape)
    return out, cache


def conv2d_backward_naive(dout, cache):
    """Loop version of :func:`~numpy_shufflenet.functional.conv.conv2d_backward`.

    Every output number ``out[n, f, i, j]`` was a dot product of ``w[f]`` with one window of ``x_pad``, so it
    sends ``dout[n, f, i, j] * window`` to ``dw[f]`` and ``dout[n, f, i, j] * w[f]`` back to that window.
    """
    x_pad, w, has_bias, x_shape, stride, padding, groups, out_shape = check_cache(LAYER, cache, NaiveConvCache)
    check_conv_cache(LAYER, x_shape, w.shape, groups)
    dout = check_dout(LAYER, dout, out_shape, w.dtype)
    N, F, H_out, W_out = out_shape
    _, C_g, KH, KW = w.shape
    F_g = F // groups
    sh, sw = stride
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            g = f // F_g
            channels = slice(g * C_g, (g + 1) * C_g)
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * sh, i * sh + KH), slice(j * sw, j * sw + KW)
                    dw[f] += dout[n, f, i, j] * x_pad[n, channels, rows, cols]
                    dx_pad[n, channels, rows, cols] += dout[n, f, i, j] * w[f]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    H, W = x_shape[2:]
    return dx_pad[:, :, padding[0]:padding[0] + H, padding[1]:padding[1] + W].copy(), dw, db
