r"""2-D convolution (dense, grouped, 1x1 pointwise group, depthwise): the fast, vectorised version.

The readable loop version of the same maths is :mod:`numpy_shufflenet.functional.conv_naive`; read it first.
Both compute PyTorch's ``Conv2d`` (a cross-correlation: the kernel is *not* flipped)::

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x_pad[n, group(f) * C_g + c, i*s + p, j*s + q]

where ``C_g = C_in // groups`` and ``group(f) = f // (C_out // groups)``: output channel ``f`` only sees the
``C_g`` input channels of its own group.

How the fast version works
--------------------------
*im2col*: every receptive field is copied into a column, so that the whole convolution becomes one batched
matrix product per group, ``out[n, g] = W[g] @ cols[n, g]``, computed by BLAS::

    cols : (N, groups, C_g*KH*KW, H_out*W_out)      W : (groups, F_g, C_g*KH*KW)

A 1x1 convolution with stride 1 needs no copy at all (``cols`` is a reshape of ``x``). The backward pass is
two more matrix products (``dW = dout @ cols^T``, ``dcols = W^T @ dout``) and *col2im*, which adds every column
back to the pixels it came from with one slice per kernel tap (9 slices for a 3x3 kernel).

Depthwise convolution (``groups == C_in == C_out``) has one input channel per group, so a matrix product would
be 1x1; instead it is a sum of ``KH*KW`` shifted slices of ``x`` times a per-channel weight.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import (check_cache, check_dout, check_float_array, check_int, check_shape, conv_out_size,
                       pair)

LAYER = "conv2d"


def _check_conv_args(x, w, b, stride, padding, groups):
    """Validate a convolution call; return the normalised ``(stride, padding, groups, out_shape)``."""
    check_float_array(LAYER, "x", x, ndim=4)
    check_float_array(LAYER, "w", w, ndim=4, dtype=x.dtype)
    stride = pair(LAYER, "stride", stride, 1)
    padding = pair(LAYER, "padding", padding, 0)
    groups = check_int(LAYER, "groups", groups, 1)
    N, C, H, W = x.shape
    F, C_g, KH, KW = w.shape
    if C % groups:
        raise ValueError(f"{LAYER}: in_channels must be divisible by groups={groups}, got in_channels={C}")
    if F % groups:
        raise ValueError(f"{LAYER}: out_channels must be divisible by groups={groups}, got out_channels={F}")
    if C_g * groups != C:
        raise ValueError(f"{LAYER}: w of shape {w.shape} expects {C_g * groups} input channels "
                         f"(w.shape[1] * groups = {C_g} * {groups}), got x with {C} channels")
    if b is not None:
        check_float_array(LAYER, "b", b, ndim=1, dtype=x.dtype)
        check_shape(LAYER, "b", b, (F,))
    H_out = conv_out_size(LAYER, H, KH, stride[0], padding[0], "H")
    W_out = conv_out_size(LAYER, W, KW, stride[1], padding[1], "W")
    return stride, padding, groups, (N, F, H_out, W_out)


def pad2d(x, padding):
    """Zero-pad the two spatial axes of an NCHW array by ``padding = (ph, pw)`` on each side (a new array)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def tap(x_pad, p, q, stride, out_hw):
    """The strided slice of ``x_pad`` that kernel tap ``(p, q)`` multiplies: shape ``(N, C, H_out, W_out)``."""
    (sh, sw), (H_out, W_out) = stride, out_hw
    return x_pad[:, :, p:p + sh * (H_out - 1) + 1:sh, q:q + sw * (W_out - 1) + 1:sw]


def unpad2d(x_pad, padding):
    """Undo :func:`pad2d` (a view)."""
    ph, pw = padding
    H, W = x_pad.shape[2] - 2 * ph, x_pad.shape[3] - 2 * pw
    return x_pad[:, :, ph:ph + H, pw:pw + W]


def im2col(x_pad, kernel_size, stride, out_hw):
    """Copy every receptive field into a column: ``(N, C, H_pad, W_pad) -> (N, C*KH*KW, H_out*W_out)``.

    Row ``c*KH*KW + p*KW + q`` of the result holds ``x_pad[n, c, i*sh + p, j*sw + q]`` for every output pixel
    ``(i, j)``, the same order as ``w.reshape(F, -1)``.
    """
    (KH, KW), (sh, sw), (H_out, W_out) = kernel_size, stride, out_hw
    N, C = x_pad.shape[:2]
    if (KH, KW) == (1, 1):
        return tap(x_pad, 0, 0, stride, out_hw).reshape(N, C, H_out * W_out)
    windows = sliding_window_view(x_pad, (KH, KW), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :H_out, :W_out]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * KH * KW, H_out * W_out)


def col2im(dcols, x_pad_shape, kernel_size, stride, out_hw):
    """Adjoint of :func:`im2col`: add each column entry back onto the pixel it was copied from."""
    (KH, KW), (H_out, W_out) = kernel_size, out_hw
    N, C = x_pad_shape[:2]
    if (KH, KW) == (1, 1) and tuple(stride) == (1, 1):
        return dcols.reshape(x_pad_shape)                     # a 1x1 stride-1 im2col was only a reshape
    dcols = dcols.reshape(N, C, KH, KW, H_out, W_out)
    dx_pad = np.zeros(x_pad_shape, dtype=dcols.dtype)
    for p in range(KH):          # a loop over the kernel taps only
        for q in range(KW):
            tap(dx_pad, p, q, stride, out_hw)[...] += dcols[:, :, p, q]
    return dx_pad


def _is_depthwise(x, w, groups):
    return groups == x.shape[1] == w.shape[0] and w.shape[1] == 1


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, groups=1):
    """Convolution forward pass (PyTorch's ``Conv2d``), dense, grouped or depthwise.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
    w : ndarray, shape (C_out, C_in // groups, KH, KW)
    b : ndarray, shape (C_out,), or None
    stride, padding : int or (int, int)
        ``padding`` zeros are added on *every* side.
    groups : int
        ``C_in`` and ``C_out`` are split into ``groups`` blocks; output block ``k`` sees input block ``k`` only.
        ``groups=C_in`` with ``C_out == C_in`` is a depthwise convolution.

    Returns
    -------
    out : ndarray, shape (N, C_out, H_out, W_out)
        ``H_out = (H + 2*padding - KH) // stride + 1`` (likewise ``W_out``).
    cache : tuple
        What :func:`conv2d_backward` needs.
    """
    stride, padding, groups, out_shape = _check_conv_args(x, w, b, stride, padding, groups)
    N, F, H_out, W_out = out_shape
    KH, KW = w.shape[2:]
    x_pad = pad2d(x, padding)
    depthwise = _is_depthwise(x, w, groups)
    if depthwise:
        out = np.zeros(out_shape, dtype=x.dtype)
        for p in range(KH):
            for q in range(KW):
                out += tap(x_pad, p, q, stride, (H_out, W_out)) * w[:, 0, p, q][:, None, None]
        saved = x_pad                                          # depthwise backward re-slices the taps
    else:
        cols = im2col(x_pad, (KH, KW), stride, (H_out, W_out)).reshape(N, groups, -1, H_out * W_out)
        w_g = w.reshape(groups, F // groups, -1)
        out = np.matmul(w_g, cols).reshape(out_shape)        # (N, groups, F_g, L): one GEMM per (n, group)
        saved = cols
    if b is not None:
        out += b[:, None, None]
    cache = (depthwise, saved, w, b is not None, x.shape, stride, padding, groups, out_shape)
    return out, cache


def conv2d_backward(dout, cache):
    r"""Convolution backward pass.

    With ``cols`` the im2col matrix of the forward pass and ``W_g`` the weight of one group as a matrix::

        db[f]   = sum_{n,i,j} dout[n, f, i, j]
        dW_g    = sum_n dout[n, g] @ cols[n, g]^T          (F_g, C_g*KH*KW)
        dcols_g = W_g^T @ dout[n, g]                        (C_g*KH*KW, H_out*W_out)
        dx      = col2im(dcols)                             (each tap adds its slice back)

    Parameters
    ----------
    dout : ndarray, shape (N, C_out, H_out, W_out)
    cache : tuple from :func:`conv2d_forward`

    Returns
    -------
    dx : ndarray, shape (N, C_in, H, W)
    dw : ndarray, shape (C_out, C_in // groups, KH, KW)
    db : ndarray, shape (C_out,), or None when the forward had no bias
    """
    depthwise, saved, w, has_bias, x_shape, stride, padding, groups, out_shape = check_cache(LAYER, cache)
    dout = check_dout(LAYER, dout, out_shape, w.dtype)
    N, F, H_out, W_out = out_shape
    KH, KW = w.shape[2:]
    x_pad_shape = (N, x_shape[1], x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if depthwise:
        x_pad = saved
        dw = np.empty_like(w)
        dx_pad = np.zeros(x_pad_shape, dtype=w.dtype)
        for p in range(KH):
            for q in range(KW):
                dw[:, 0, p, q] = np.einsum("nchw,nchw->c", dout, tap(x_pad, p, q, stride, (H_out, W_out)))
                tap(dx_pad, p, q, stride, (H_out, W_out))[...] += dout * w[:, 0, p, q][:, None, None]
    else:
        cols = saved                                          # (N, groups, C_g*KH*KW, L)
        dout_g = dout.reshape(N, groups, F // groups, H_out * W_out)
        w_g = w.reshape(groups, F // groups, -1)
        dw = np.matmul(dout_g, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
        dcols = np.matmul(w_g.transpose(0, 2, 1), dout_g)    # (N, groups, C_g*KH*KW, L)
        dx_pad = col2im(dcols, x_pad_shape, (KH, KW), stride, (H_out, W_out))
    dx = np.ascontiguousarray(unpad2d(dx_pad, padding))
    return dx, dw, db
