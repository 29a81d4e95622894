r"""Sliding windows, the one idea behind convolution and pooling: padding, kernel taps, im2col and col2im.

A ``KH x KW`` window slides over the zero-padded input with ``stride``; output pixel ``(i, j)`` sees the padded
pixels ``(i*sh + p, j*sw + q)`` for the taps ``0 <= p < KH``, ``0 <= q < KW``. Two ways to gather them:

* **one tap at a time**: for a fixed tap ``(p, q)``, the pixels it reads for *every* output pixel form one
  strided slice of the padded input, :func:`tap`. A depthwise convolution or a pooling layer is a loop over
  the ``KH*KW`` taps, each a whole-array operation;
* **im2col**: copy every window into a column, so that a convolution becomes one matrix product
  (:func:`im2col`); its backward pass, :func:`col2im`, adds each column back where it came from.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad2d(x, padding, value=0.0):
    """Pad the two spatial axes of an NCHW array by ``padding = (ph, pw)`` on every side (a new array)."""
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def unpad2d(x_pad, padding):
    """Drop the border that :func:`pad2d` added (a new array)."""
    ph, pw = padding
    H, W = x_pad.shape[2] - 2 * ph, x_pad.shape[3] - 2 * pw
    return x_pad[:, :, ph:ph + H, pw:pw + W].copy()


def tap(x_pad, p, q, stride, out_hw):
    """What kernel tap ``(p, q)`` reads for every output pixel: ``x_pad[:, :, i*sh + p, j*sw + q]``, a view of
    shape ``(N, C, H_out, W_out)``. Writing into it (``tap(dx_pad, ...) += ...``) writes into ``x_pad``."""
    (sh, sw), (H_out, W_out) = stride, out_hw
    return x_pad[:, :, p:p + sh * (H_out - 1) + 1:sh, q:q + sw * (W_out - 1) + 1:sw]


def im2col(x_pad, kernel_size, stride, out_hw):
    """Copy every window into a column: ``(N, C, H_pad, W_pad) -> (N, C*KH*KW, H_out*W_out)``.

    Row ``c*KH*KW + p*KW + q`` holds ``x_pad[n, c, i*sh + p, j*sw + q]`` for every output pixel ``(i, j)``: the
    order of ``w.reshape(C_out, -1)``, so a convolution is ``w.reshape(C_out, -1) @ cols``.
    """
    (KH, KW), (sh, sw), (H_out, W_out) = kernel_size, stride, out_hw
    N, C = x_pad.shape[:2]
    windows = sliding_window_view(x_pad, (KH, KW), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :H_out, :W_out]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * KH * KW, H_out * W_out)   # (N, C, KH, KW, H_out, W_out)


def col2im(dcols, x_pad_shape, kernel_size, stride, out_hw):
    """The backward pass of :func:`im2col`: add every column entry back onto the padded pixel it was copied from.

    Windows overlap when the stride is smaller than the kernel, so a pixel collects one share per window that
    read it (``+=``, never ``=``).
    """
    (KH, KW), (H_out, W_out) = kernel_size, out_hw
    N, C = x_pad_shape[:2]
    dcols = dcols.reshape(N, C, KH, KW, H_out, W_out)
    dx_pad = np.zeros(x_pad_shape, dtype=dcols.dtype)
    for p in range(KH):
        for q in range(KW):
            tap(dx_pad, p, q, stride, out_hw)[...] += dcols[:, :, p, q]
    return dx_pad
