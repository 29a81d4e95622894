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

The plain NCHW versions of both tricks are :func:`im2col` / :func:`col2im` below and, for depthwise::

    for p, q in kernel taps:
        out += tap(x_pad, p, q) * w[:, 0, p, q][:, None, None]       # (N, C, H_out, W_out) * (C, 1, 1)

What the kernels actually run is the same maths on channels-last memory (:mod:`.layout`), which is 2-20x faster
in NumPy on ShuffleNet's shapes:

* **Matrix form.** The receptive fields form a matrix ``A`` of shape ``(M, C*KH*KW)``, one row per output pixel
  in NHWC order (``M = N*H_out*W_out``), so ``out_nhwc = A @ W^T`` is already channels-last. For a 1x1 stride-1
  convolution ``A`` *is* the NHWC input, ``x_nhwc.reshape(M, C)``: no copy. For other kernels ``A`` is the
  transpose of an im2col matrix ``cols`` ``(C*KH*KW, M)`` built with one plane copy per channel and tap.
  Groups use column blocks of ``A`` and of the output, strided views that BLAS reads and writes in place.
* **Depthwise.** The ``KH*KW`` taps are shifted slices of the padded NHWC input whose last two axes merge into
  rows of ``W_out*C`` contiguous numbers; the weight of a tap is tiled to the same length. Stride 2 first splits
  the padded columns into even and odd ones, so that every tap is still a contiguous run
  (:func:`~.layout.pad_split`, :func:`~.layout.tap_rows`).

Outputs and gradients of ``x`` come back as NCHW-shaped views of channels-last memory (as PyTorch's
``channels_last``); pass them on to the next layer and nothing is copied.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import check_cache, check_conv_args, check_dout
from .layout import fold_w, from_nhwc, merge_crop, pad_split, phase_shapes, tap_rows, tile_w, to_nhwc
from .threads import parallel_over_batch

LAYER = "conv2d"




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

    The plain, readable NCHW im2col (a reference for the tests; the kernels use :func:`_patch_matrix`).

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
    """Adjoint of :func:`im2col`: add each column entry back onto the pixel it was copied from (reference)."""
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


def _is_pointwise(w, stride, padding):
    return w.shape[2:] == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


def _patch_matrix(x, kernel_size, stride, padding, out_hw):
    """The matrix ``A`` ``(M, C*KH*KW)``: row ``m`` = receptive field of output pixel ``m`` (NHWC pixel order).

    Column ``c*KH*KW + p*KW + q`` holds ``x_pad[n, c, i*sh + p, j*sw + q]``, the order of ``w.reshape(F, -1)``.
    1x1 stride 1: a reshape of the NHWC input. Otherwise ``cols.T``, where ``cols`` ``(C*KH*KW, M)`` gets one
    contiguous plane copy per (channel, tap): the inner copy loop runs along an output row.
    """
    N, C = x.shape[:2]
    if kernel_size == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0):
        return to_nhwc(x).reshape(-1, C)
    (KH, KW), (H_out, W_out) = kernel_size, out_hw
    x_pad = pad2d(x, padding)
    cols = np.empty((C, KH, KW, N, H_out, W_out), dtype=x.dtype)
    for p in range(KH):
        for q in range(KW):
            cols[:, p, q] = tap(x_pad, p, q, stride, out_hw).transpose(1, 0, 2, 3)
    return cols.reshape(C * KH * KW, N * H_out * W_out).T


def _depthwise_forward(xh, w, stride, padding, out_hw):
    """Depthwise conv on NHWC ``xh``: ``out = sum over taps of tap_rows(p, q) * tile(w[:, 0, p, q], W_out)``.

    By blocks of images (:mod:`.threads`): a block's padded copy and partial sums stay in the cache.
    """
    N, C = xh.shape[0], xh.shape[3]
    (KH, KW), (H_out, W_out) = w.shape[2:], out_hw
    phases = [np.empty(shape, dtype=xh.dtype) for shape in phase_shapes(xh.shape, padding, stride)]
    out = np.empty((N, H_out, W_out * C), dtype=xh.dtype)
    w_taps = [[tile_w(w[:, 0, p, q], W_out) for q in range(KW)] for p in range(KH)]

    def block(n0, n1):
        ph = pad_split(xh[n0:n1], padding, stride, out=[a[n0:n1] for a in phases])   # padded (and split) copy
        o = out[n0:n1]
        tmp = np.empty_like(o)
        for p in range(KH):
            for q in range(KW):
                x_tap = tap_rows(ph, p, q, stride, out_hw)
                if p == q == 0:
                    np.multiply(x_tap, w_taps[p][q], out=o)
                else:
                    o += np.multiply(x_tap, w_taps[p][q], out=tmp)

    parallel_over_batch(block, N, sum(a[0].size for a in phases))
    return out.reshape(N, H_out, W_out, C), phases


def _depthwise_backward(dyh, phases, w, stride, padding, x_shape_nhwc):
    """Every tap sends ``dy * w_tap`` back onto the slice it read, and ``sum(dy * slice)`` to its weight.

    By blocks of images: each block scatters into its own padded gradient and returns its weight sums, which
    are added in block order (the same numbers for any number of threads).
    """
    N, H_out, W_out, C = dyh.shape
    KH, KW = w.shape[2:]
    dy = dyh.reshape(N, H_out, W_out * C)
    dx = np.empty(x_shape_nhwc, dtype=dyh.dtype)
    w_taps = [[tile_w(w[:, 0, p, q], W_out) for q in range(KW)] for p in range(KH)]

    def block(n0, n1):
        ph, dyb = [a[n0:n1] for a in phases], dy[n0:n1]
        dph = [np.zeros_like(a) for a in ph]
        tmp = np.empty_like(dyb)
        dw_cols = np.empty((KH, KW, W_out * C), dtype=np.float64)
        for p in range(KH):
            for q in range(KW):
                dw_cols[p, q] = np.einsum("nhk,nhk->k", dyb, tap_rows(ph, p, q, stride, (H_out, W_out)))
                tap_rows(dph, p, q, stride, (H_out, W_out))[...] += np.multiply(dyb, w_taps[p][q], out=tmp)
        merge_crop(dph, padding, stride, dx[n0:n1].shape, out=dx[n0:n1])
        return dw_cols

    parts = parallel_over_batch(block, N, sum(a[0].size for a in phases))
    dw_cols = np.sum(parts, axis=0) if len(parts) > 1 else parts[0]             # (KH, KW, W_out*C)
    dw = dw_cols.reshape(KH, KW, W_out, C).sum(axis=2).transpose(2, 0, 1)[:, None].astype(w.dtype)
    return dx, dw


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
    out : ndarray, shape (N, C_out, H_out, W_out), channels-last in memory
        ``H_out = (H + 2*padding - KH) // stride + 1`` (likewise ``W_out``).
    cache : tuple
        What :func:`conv2d_backward` needs.
    """
    stride, padding, groups, out_shape = check_conv_args(LAYER, x, w, b, stride, padding, groups)
    N, F, H_out, W_out = out_shape
    if _is_depthwise(x, w, groups):
        out_h, saved = _depthwise_forward(to_nhwc(x), w, stride, padding, (H_out, W_out))
        if b is not None:
            out_h += b
        kind = "depthwise"
    else:
        A = _patch_matrix(x, w.shape[2:], stride, padding, (H_out, W_out))   # (M, C_in*KH*KW)
        F_g, K_g = F // groups, A.shape[1] // groups
        w2 = w.reshape(F, K_g)
        out2 = np.empty((A.shape[0], F), dtype=x.dtype)
        for g in range(groups):                               # one GEMM per group, on column blocks
            np.matmul(A[:, g * K_g:(g + 1) * K_g], w2[g * F_g:(g + 1) * F_g].T, out=out2[:, g * F_g:(g + 1) * F_g])
        if b is not None:
            out2 += b
        out_h, saved = out2.reshape(N, H_out, W_out, F), A
        kind = "pointwise" if _is_pointwise(w, stride, padding) else "im2col"
    cache = (kind, saved, w, b is not None, x.shape, stride, padding, groups, out_shape)
    return from_nhwc(out_h), cache


def conv2d_backward(dout, cache, *, need_dx=True):
    r"""Convolution backward pass.

    With ``A`` the patch matrix of the forward pass (``A = cols^T``) and ``W_g`` one group's weight as a matrix::

        db[f]   = sum_{n,i,j} dout[n, f, i, j]
        dW_g    = dout_g^T @ A_g                  (F_g, C_g*KH*KW)      dout_g: (M, F_g), NHWC rows
        dA_g    = dout_g @ W_g                    (M, C_g*KH*KW)
        dx      = col2im(dA^T)                    (each tap adds its slice back; for 1x1 dA *is* dx)

    Parameters
    ----------
    dout : ndarray, shape (N, C_out, H_out, W_out)
    cache : tuple from :func:`conv2d_forward`
    need_dx : bool
        False skips the gradient of ``x`` (``dx`` is then None): a network's first layer needs none for the
        image, and for ShuffleNet's stem the skipped matrix product and col2im are a tenth of the backward pass.

    Returns
    -------
    dx : ndarray, shape (N, C_in, H, W), or None when ``need_dx`` is False
    dw : ndarray, shape (C_out, C_in // groups, KH, KW)
    db : ndarray, shape (C_out,), or None when the forward had no bias
    """
    kind, saved, w, has_bias, x_shape, stride, padding, groups, out_shape = check_cache(LAYER, cache)
    dout = check_dout(LAYER, dout, out_shape, w.dtype)
    N, F, H_out, W_out = out_shape
    KH, KW = w.shape[2:]
    dyh = to_nhwc(dout)
    db = fold_w(dyh.reshape(N * H_out, W_out * F).sum(axis=0), F) if has_bias else None
    if kind == "depthwise":
        dxh, dw = _depthwise_backward(dyh, saved, w, stride, padding, (N,) + x_shape[2:] + (x_shape[1],))
        return (from_nhwc(dxh) if need_dx else None), dw, db
    A, dy2 = saved, dyh.reshape(-1, F)
    F_g, K_g = F // groups, A.shape[1] // groups
    w2 = w.reshape(F, K_g)
    dw2 = np.empty_like(w2)
    if not need_dx:
        for g in range(groups):
            fo, ki = slice(g * F_g, (g + 1) * F_g), slice(g * K_g, (g + 1) * K_g)
            np.matmul(dy2[:, fo].T, A[:, ki], out=dw2[fo])
        return None, dw2.reshape(w.shape), db
    if kind == "pointwise":
        dA = np.empty_like(A)                                 # (M, C_in): the NHWC gradient of x itself
        for g in range(groups):
            fo, ki = slice(g * F_g, (g + 1) * F_g), slice(g * K_g, (g + 1) * K_g)
            np.matmul(dy2[:, fo].T, A[:, ki], out=dw2[fo])
            np.matmul(dy2[:, fo], w2[fo], out=dA[:, ki])
        return from_nhwc(dA.reshape(N, x_shape[2], x_shape[3], x_shape[1])), dw2.reshape(w.shape), db
    dcols = np.empty(A.shape[::-1], dtype=w.dtype)           # (C_in*KH*KW, M), i.e. dA^T
    for g in range(groups):
        fo, ki = slice(g * F_g, (g + 1) * F_g), slice(g * K_g, (g + 1) * K_g)
        np.matmul(dy2[:, fo].T, A[:, ki], out=dw2[fo])
        np.matmul(w2[fo].T, dy2[:, fo].T, out=dcols[ki])
    dcols = dcols.reshape(x_shape[1], KH, KW, N, H_out, W_out)
    x_pad_shape = (N, x_shape[1], x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])
    dx_pad = np.zeros(x_pad_shape, dtype=w.dtype)
    for p in range(KH):          # col2im: a loop over the kernel taps only
        for q in range(KW):
            tap(dx_pad, p, q, stride, (H_out, W_out))[...] += dcols[:, p, q].transpose(1, 0, 2, 3)
    dx = np.ascontiguousarray(unpad2d(dx_pad, padding))
    return dx, dw2.reshape(w.shape), db
