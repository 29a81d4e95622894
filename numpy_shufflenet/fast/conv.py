r"""2-D convolution (dense, grouped, 1x1 pointwise group, depthwise): the fast, vectorised version.

The textbook versions of the same maths are :mod:`numpy_shufflenet.functional.conv` (im2col and one matrix
product per group) and :mod:`numpy_shufflenet.functional.depthwise` (a sum of shifted slices); read those.
Here the kernels run the same maths on channels-last memory (:mod:`.layout`), where NumPy's inner loops run
over long contiguous rows and the matrix products need no copies:

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
``channels_last``); pass them on to the next layer and nothing is copied. Each of the three paths keeps what its
backward pass reads in a cache of its own type (:class:`FastIm2colCache`, :class:`FastPointwiseCache`,
:class:`FastDepthwiseCache`), and :func:`conv2d_backward` takes the path of the cache it is given.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_conv_args, check_conv_cache, check_dout, check_shape
from ..functional.depthwise import is_depthwise
from ..functional.windows import col2im, pad2d, tap, unpad2d
from .layout import fold_w, from_nhwc, merge_crop, pad_split, phase_shapes, tap_rows, tile_w, to_nhwc
from .threads import parallel_over_batch, scratch

LAYER = "conv2d"


class FastIm2colCache(NamedTuple):
    """A dense or grouped convolution's cache: its patch matrix, whose rows the backward pass multiplies."""
    patches: np.ndarray        # (M, C_in*KH*KW): row m = receptive field of output pixel m (NHWC pixel order)
    w: np.ndarray              # (C_out, C_in // groups, KH, KW)
    has_bias: bool
    x_shape: tuple             # (N, C_in, H, W)
    stride: tuple
    padding: tuple
    groups: int
    out_shape: tuple           # (N, C_out, H_out, W_out)


class FastPointwiseCache(NamedTuple):
    """A 1x1 stride-1 unpadded convolution's cache: its patch matrix is the channels-last input itself."""
    x_rows: np.ndarray         # (N*H*W, C_in): the input's NHWC memory, one row per pixel (no copy)
    w: np.ndarray              # (C_out, C_in // groups, 1, 1)
    has_bias: bool
    x_shape: tuple             # (N, C_in, H, W)
    groups: int
    out_shape: tuple           # (N, C_out, H, W)


class FastDepthwiseCache(NamedTuple):
    """A depthwise convolution's cache (``groups == C_in == C_out``): the padded input its taps read."""
    x_phases: list             # the padded NHWC input, its columns split by phase modulo the stride (pad_split)
    w: np.ndarray              # (C, 1, KH, KW)
    has_bias: bool
    x_shape: tuple             # (N, C, H, W)
    stride: tuple
    padding: tuple
    out_shape: tuple           # (N, C, H_out, W_out)


class EmptyBatchCache(NamedTuple):
    """The cache of a batch of no images (``N = 0``): its backward gives an empty ``dx`` and zero ``dw``, ``db``."""
    w: np.ndarray
    has_bias: bool
    x_shape: tuple             # (0, C_in, H, W)
    out_shape: tuple           # (0, C_out, H_out, W_out)


def _empty_batch_backward(dout, cache, need_dx):
    """PyTorch's gradients for a batch of no images: ``dx`` empty, ``dw`` and ``db`` zero."""
    w, has_bias, x_shape, out_shape = cache
    check_dout(LAYER, dout, out_shape, w.dtype)
    dx = from_nhwc(np.empty((0,) + tuple(x_shape[2:]) + (x_shape[1],), dtype=w.dtype)) if need_dx else None
    return dx, np.zeros_like(w), (np.zeros(w.shape[0], dtype=w.dtype) if has_bias else None)


def is_pointwise(kernel_size, stride, padding):
    """A 1x1 convolution with stride 1 and no padding: its im2col matrix is the input itself, reshaped."""
    return tuple(kernel_size) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


def _group_slices(groups, F_g, K_g):
    """``(output columns, input columns)`` of each group's block: one matrix product per group."""
    return [(slice(g * F_g, (g + 1) * F_g), slice(g * K_g, (g + 1) * K_g)) for g in range(groups)]


def _patch_matrix(x, kernel_size, stride, padding, out_hw):
    """The matrix ``A`` ``(M, C*KH*KW)``: row ``m`` = receptive field of output pixel ``m`` (NHWC pixel order).

    Column ``c*KH*KW + p*KW + q`` holds ``x_pad[n, c, i*sh + p, j*sw + q]``, the order of ``w.reshape(F, -1)``.
    1x1 stride 1: a reshape of the NHWC input. Otherwise ``cols.T``, where ``cols`` ``(C*KH*KW, M)`` gets one
    contiguous plane copy per (channel, tap): the inner copy loop runs along an output row.
    """
    N, C = x.shape[:2]
    if is_pointwise(kernel_size, stride, padding):
        return to_nhwc(x).reshape(-1, C)
    (KH, KW), (H_out, W_out) = kernel_size, out_hw
    x_pad = pad2d(x, padding)
    cols = np.empty((C, KH, KW, N, H_out, W_out), dtype=x.dtype)
    for p in range(KH):
        for q in range(KW):
            cols[:, p, q] = tap(x_pad, p, q, stride, out_hw).transpose(1, 0, 2, 3)
    return cols.reshape(C * KH * KW, N * H_out * W_out).T


def _tiled_taps(w, W_out):
    """Every tap's depthwise weights tiled over an output row: ``w_taps[p, q] == tile_w(w[:, 0, p, q], W_out)``."""
    return tile_w(w[:, 0].transpose(1, 2, 0), W_out)                   # (KH, KW, W_out*C), one call


def _depthwise_forward(xh, w, stride, padding, out_hw):
    """Depthwise conv on NHWC ``xh``: ``out = sum over taps of tap_rows(p, q) * tile(w[:, 0, p, q], W_out)``.

    By blocks of images (:mod:`.threads`): a block's padded copy and partial sums stay in the cache.
    """
    N, C = xh.shape[0], xh.shape[3]
    (KH, KW), (H_out, W_out) = w.shape[2:], out_hw
    phases = [np.empty(shape, dtype=xh.dtype) for shape in phase_shapes(xh.shape, padding, stride)]
    out = np.empty((N, H_out, W_out * C), dtype=xh.dtype)
    w_taps = _tiled_taps(w, W_out)

    def block(n0, n1):
        ph = pad_split(xh[n0:n1], padding, stride, out=[a[n0:n1] for a in phases])   # padded (and split) copy
        o = out[n0:n1]
        tap_product = scratch("tap product", o.shape, o.dtype)
        for p in range(KH):
            for q in range(KW):
                x_tap = tap_rows(ph, p, q, stride, out_hw)
                if p == q == 0:
                    np.multiply(x_tap, w_taps[p, q], out=o)
                else:
                    o += np.multiply(x_tap, w_taps[p, q], out=tap_product)

    parallel_over_batch(block, N, sum(a[0].size for a in phases))
    return out.reshape(N, H_out, W_out, C), phases


def _depthwise_backward(dyh, cache, need_dx):
    """Every tap sends ``dy * w_tap`` back onto the slice it read, and ``sum(dy * slice)`` to its weight.

    By blocks of images: each block scatters into its own padded gradient and returns its weight sums, which
    are added in block order (the same numbers for any number of threads).
    """
    phases, w, stride, padding = cache.x_phases, cache.w, cache.stride, cache.padding
    N, H_out, W_out, C = dyh.shape
    KH, KW = w.shape[2:]
    H, W = cache.x_shape[2:]
    dy = dyh.reshape(N, H_out, W_out * C)
    dx = np.empty((N, H, W, C), dtype=dyh.dtype)
    w_taps = _tiled_taps(w, W_out)

    def block(n0, n1):
        ph, dyb = [a[n0:n1] for a in phases], dy[n0:n1]
        dph = [scratch(f"padded gradient, phase {r}", a.shape, a.dtype, fill=0) for r, a in enumerate(ph)]
        tap_product = scratch("tap product", dyb.shape, dyb.dtype)
        dw_cols = np.empty((KH, KW, W_out * C), dtype=np.float64)
        for p in range(KH):
            for q in range(KW):
                dw_cols[p, q] = np.einsum("nhk,nhk->k", dyb, tap_rows(ph, p, q, stride, (H_out, W_out)))
                tap_rows(dph, p, q, stride, (H_out, W_out))[...] += np.multiply(dyb, w_taps[p, q], out=tap_product)
        merge_crop(dph, padding, stride, dx[n0:n1].shape, out=dx[n0:n1])
        return dw_cols

    parts = parallel_over_batch(block, N, sum(a[0].size for a in phases))
    dw_cols = np.sum(parts, axis=0) if len(parts) > 1 else parts[0]             # (KH, KW, W_out*C)
    dw = dw_cols.reshape(KH, KW, W_out, C).sum(axis=2).transpose(2, 0, 1)[:, None].astype(w.dtype)
    return (from_nhwc(dx) if need_dx else None), dw


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, groups=1):
    """Convolution forward pass (PyTorch's ``Conv2d``), dense, grouped or depthwise; see
    :func:`numpy_shufflenet.functional.conv2d_forward` for the arguments.

    Returns
    -------
    out : ndarray, shape (N, C_out, H_out, W_out), channels-last in memory
    cache : FastIm2colCache, FastPointwiseCache or FastDepthwiseCache (by the path taken; EmptyBatchCache for
        ``N = 0``) for :func:`conv2d_backward`
    """
    stride, padding, groups, out_shape = check_conv_args(LAYER, x, w, b, stride, padding, groups)
    N, F, H_out, W_out = out_shape
    if N == 0:                                        # no images: PyTorch's empty output
        return from_nhwc(np.empty((0, H_out, W_out, F), dtype=x.dtype)), EmptyBatchCache(w, b is not None, x.shape,
                                                                                          out_shape)
    if is_depthwise(x.shape[1], F, groups):
        out_h, phases = _depthwise_forward(to_nhwc(x), w, stride, padding, (H_out, W_out))
        if b is not None:
            out_h += b
        cache = FastDepthwiseCache(phases, w, b is not None, x.shape, stride, padding, out_shape)
        return from_nhwc(out_h), cache
    A = _patch_matrix(x, w.shape[2:], stride, padding, (H_out, W_out))   # (M, C_in*KH*KW)
    w2 = w.reshape(F, -1)
    out2 = np.empty((A.shape[0], F), dtype=x.dtype)
    for fo, ki in _group_slices(groups, F // groups, A.shape[1] // groups):   # column blocks of A and out
        np.matmul(A[:, ki], w2[fo].T, out=out2[:, fo])
    if b is not None:
        out2 += b
    if is_pointwise(w.shape[2:], stride, padding):
        cache = FastPointwiseCache(A, w, b is not None, x.shape, groups, out_shape)
    else:
        cache = FastIm2colCache(A, w, b is not None, x.shape, stride, padding, groups, out_shape)
    return from_nhwc(out2.reshape(N, H_out, W_out, F)), cache


def _weight_products(dy2, A, w, groups, dA=None, transposed=False):
    """``dW_g = dy_g^T @ A_g`` for every group into a new ``dw``; also ``dA_g = dy_g @ W_g`` into ``dA`` when it is
    given (``dA^T`` when ``transposed``: the layout col2im reads)."""
    F = w.shape[0]
    w2 = w.reshape(F, -1)
    dw2 = np.empty_like(w2)
    for fo, ki in _group_slices(groups, F // groups, A.shape[1] // groups):
        np.matmul(dy2[:, fo].T, A[:, ki], out=dw2[fo])
        if dA is not None and transposed:
            np.matmul(w2[fo].T, dy2[:, fo].T, out=dA[ki])
        elif dA is not None:
            np.matmul(dy2[:, fo], w2[fo], out=dA[:, ki])
    return dw2.reshape(w.shape)


def _pointwise_backward(dyh, cache, need_dx):
    """1x1 stride 1: ``dA`` ``(M, C_in)`` is the NHWC gradient of ``x`` itself."""
    N, C, H, W = cache.x_shape
    dy2 = dyh.reshape(-1, cache.out_shape[1])
    dA = np.empty_like(cache.x_rows) if need_dx else None
    dw = _weight_products(dy2, cache.x_rows, cache.w, cache.groups, dA)
    return (from_nhwc(dA.reshape(N, H, W, C)) if need_dx else None), dw


def _im2col_backward(dyh, cache, need_dx):
    """Other kernels: ``dA^T`` is the gradient of the im2col matrix, which col2im adds back onto the pixels."""
    A, w, stride, padding = cache.patches, cache.w, cache.stride, cache.padding
    (N, C, H, W), (H_out, W_out) = cache.x_shape, cache.out_shape[2:]
    dy2 = dyh.reshape(-1, cache.out_shape[1])
    dA_T = np.empty(A.shape[::-1], dtype=w.dtype) if need_dx else None
    dw = _weight_products(dy2, A, w, cache.groups, dA_T, transposed=True)
    if not need_dx:
        return None, dw
    dcols = dA_T.reshape(C, -1, N, H_out * W_out).transpose(2, 0, 1, 3)       # (N, C*KH*KW, L), a view
    x_pad_shape = (N, C, H + 2 * padding[0], W + 2 * padding[1])
    return unpad2d(col2im(dcols, x_pad_shape, w.shape[2:], stride, (H_out, W_out)), padding), dw


_BACKWARD_BY_CACHE = {FastIm2colCache: _im2col_backward, FastPointwiseCache: _pointwise_backward,
                      FastDepthwiseCache: _depthwise_backward}


def conv2d_backward(dout, cache, *, need_dx=True):
    r"""Convolution backward pass (the path is the cache's type).

    With ``A`` the patch matrix of the forward pass (``A = cols^T``) and ``W_g`` one group's weight as a matrix::

        db[f]   = sum_{n,i,j} dout[n, f, i, j]
        dW_g    = dout_g^T @ A_g                  (F_g, C_g*KH*KW)      dout_g: (M, F_g), NHWC rows
        dA_g    = dout_g @ W_g                    (M, C_g*KH*KW)
        dx      = col2im(dA^T)                    (each tap adds its slice back; for 1x1 dA *is* dx)

    The depthwise path sends every tap's ``dout * w_tap`` back onto the slice it read (:func:`_depthwise_backward`).
    ``need_dx=False`` skips the gradient of ``x`` (``dx`` is then None): a network's first layer needs none for
    the image, and for ShuffleNet's stem the skipped matrix product and col2im are most of its backward pass.

    Returns
    -------
    dx : ndarray, shape (N, C_in, H, W), or None when ``need_dx`` is False
    dw : ndarray, shape (C_out, C_in // groups, KH, KW)
    db : ndarray, shape (C_out,), or None when the forward had no bias
    """
    if isinstance(cache, EmptyBatchCache):
        return _empty_batch_backward(dout, cache, need_dx)
    check_cache(LAYER, cache, tuple(_BACKWARD_BY_CACHE))
    x_shape, w, out_shape = cache.x_shape, cache.w, cache.out_shape
    groups = x_shape[1] if isinstance(cache, FastDepthwiseCache) else cache.groups
    check_conv_cache(LAYER, x_shape, w.shape, groups)
    check_shape(LAYER, "the cache's w", w, (out_shape[1], x_shape[1] // groups) + w.shape[2:])
    dout = check_dout(LAYER, dout, out_shape, w.dtype)
    N, F, H_out, W_out = out_shape
    dyh = to_nhwc(dout)
    db = fold_w(dyh.reshape(N * H_out, W_out * F).sum(axis=0), F) if cache.has_bias else None
    dx, dw = _BACKWARD_BY_CACHE[type(cache)](dyh, cache, need_dx)
    return dx, dw, db
