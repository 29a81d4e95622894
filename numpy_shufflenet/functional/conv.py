r"""2-D convolution, dense and grouped, as im2col and one matrix product per group (PyTorch's ``Conv2d``).

PyTorch's convolution is a cross-correlation (the kernel is *not* flipped)::

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x_pad[n, g*C_g + c, i*sh + p, j*sw + q]

where ``C_g = C_in // groups`` and ``g = f // F_g`` is the group of output channel ``f`` (``F_g = C_out //
groups``): an output channel only sees the ``C_g`` input channels of its own group. Read the loop version,
:mod:`.conv_naive`, first; this file computes the same numbers with whole-array operations:

1. *im2col* (:func:`~.windows.im2col`) copies every receptive field of the padded input into a column,
   ``cols``: ``(N, C_in*KH*KW, L)`` with ``L = H_out*W_out``;
2. the rows of one group are a contiguous block, so ``cols.reshape(N, groups, K_g, L)`` (``K_g = C_g*KH*KW``)
   and ``w.reshape(groups, F_g, K_g)`` turn the convolution into one matrix product per group,
   ``out[n, g] = W[g] @ cols[n, g]``, which ``np.matmul`` broadcasts over the batch and the groups.

For a 1x1 convolution with stride 1, ``cols`` is just ``x.reshape(N, C_in, H*W)``: a pointwise (group)
convolution is a matrix product over the channels. Depthwise convolution (``groups == C_in == C_out``) has one
channel per group, so its matrices would be 1x1; it is a sum of shifted slices instead, in :mod:`.depthwise`.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_conv_args, check_conv_cache, check_dout
from .depthwise import DepthwiseCache, depthwise_conv2d_backward, depthwise_conv2d_forward, is_depthwise
from .windows import col2im, im2col, pad2d, unpad2d

LAYER = "conv2d"


class ConvCache(NamedTuple):
    cols: np.ndarray           # (N, groups, C_g*KH*KW, H_out*W_out): im2col of the padded input, by group
    w: np.ndarray              # (C_out, C_g, KH, KW)
    has_bias: bool
    x_shape: tuple             # (N, C_in, H, W)
    stride: tuple
    padding: tuple
    groups: int


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, groups=1):
    """Convolution forward pass, dense or grouped (depthwise when ``groups == C_in == C_out``).

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
    w : ndarray, shape (C_out, C_in // groups, KH, KW)
    b : ndarray, shape (C_out,), or None
    stride, padding : int or (int, int); ``padding`` zeros are added on *every* side
    groups : int; ``C_in`` and ``C_out`` split into ``groups`` blocks, block ``k`` of the output sees block ``k``
        of the input only

    Returns
    -------
    out : ndarray, shape (N, C_out, H_out, W_out), ``H_out = (H + 2*padding - KH) // stride + 1`` (same for W)
    cache : ConvCache (or DepthwiseCache) for :func:`conv2d_backward`
    """
    stride, padding, groups, (N, F, H_out, W_out) = check_conv_args(LAYER, x, w, b, stride, padding, groups)
    if is_depthwise(x.shape[1], F, groups):
        return depthwise_conv2d_forward(x, w, b, stride=stride, padding=padding)
    K_g = w[0].size                                                              # C_g*KH*KW: one filter's numbers
    cols = im2col(pad2d(x, padding), w.shape[2:], stride, (H_out, W_out))        # (N, C_in*KH*KW, L)
    cols = cols.reshape(N, groups, K_g, H_out * W_out)                           # (N, G, K_g, L)
    w_g = w.reshape(groups, F // groups, K_g)                                    # (G, F_g, K_g)
    out = np.matmul(w_g, cols).reshape(N, F, H_out, W_out)                       # (N, G, F_g, L)
    if b is not None:
        out += b[:, None, None]
    return out, ConvCache(cols, w, b is not None, x.shape, stride, padding, groups)


def conv2d_backward(dout, cache, *, need_dx=True):
    r"""Convolution backward pass. For each group ``g``, with ``dout_g`` of shape ``(F_g, L)`` per sample::

        db[f]    = sum_{n, i, j} dout[n, f, i, j]
        dW[g]    = sum_n dout_g[n] @ cols[n, g]^T          (F_g, K_g)
        dcols[g] = W[g]^T @ dout_g[n]                      (K_g, L)
        dx       = col2im(dcols), cropped                  (every column adds back onto the pixels it read)

    ``need_dx=False`` skips ``dcols`` and ``dx`` (``dx`` is then None): a network's first layer needs no gradient
    of its input images.

    Returns
    -------
    dx : ndarray, shape (N, C_in, H, W), or None when ``need_dx`` is False
    dw : ndarray, shape (C_out, C_in // groups, KH, KW)
    db : ndarray, shape (C_out,), or None when the forward had no bias
    """
    if isinstance(cache, DepthwiseCache):
        dx, dw, db = depthwise_conv2d_backward(dout, cache)
        return (dx if need_dx else None), dw, db
    cols, w, has_bias, x_shape, stride, padding, groups = check_cache(LAYER, cache, ConvCache)
    check_conv_cache(LAYER, x_shape, w.shape, groups)
    (N, C, H, W), (F, _, KH, KW) = x_shape, w.shape
    H_out = (H + 2 * padding[0] - KH) // stride[0] + 1
    W_out = (W + 2 * padding[1] - KW) // stride[1] + 1
    dout = check_dout(LAYER, dout, (N, F, H_out, W_out), w.dtype)
    d = dout.reshape(N, groups, F // groups, H_out * W_out)                      # (N, G, F_g, L)
    dw = np.matmul(d, cols.transpose(0, 1, 3, 2)).sum(axis=0)                    # (G, F_g, K_g)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if not need_dx:
        return None, dw.reshape(w.shape), db
    dcols = np.matmul(w.reshape(groups, F // groups, -1).transpose(0, 2, 1), d)  # (N, G, K_g, L)
    x_pad_shape = (N, C, H + 2 * padding[0], W + 2 * padding[1])
    dx = unpad2d(col2im(dcols, x_pad_shape, (KH, KW), stride, (H_out, W_out)), padding)
    return dx, dw.reshape(w.shape), db
