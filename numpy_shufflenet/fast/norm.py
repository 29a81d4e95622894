r"""Batch normalisation over the channels of an NCHW array (PyTorch's ``BatchNorm2d``).

Each channel ``c`` is normalised with statistics taken over the ``M = N*H*W`` numbers it holds::

    mu_c      = mean_{n,h,w} x[n, c, h, w]
    var_c     = mean_{n,h,w} (x[n, c, h, w] - mu_c)^2                  (biased, as PyTorch normalises)
    xhat      = (x - mu_c) / sqrt(var_c + eps)
    out       = gamma_c * xhat + beta_c

In training mode the running buffers, when given, are updated in place as PyTorch does::

    running_mean = (1 - momentum) * running_mean + momentum * mu_c
    running_var  = (1 - momentum) * running_var  + momentum * var_c * M / (M - 1)   (unbiased)

In eval mode ``mu_c`` and ``var_c`` are replaced by the running buffers, and the layer is a fixed per-channel
affine map.

The plain NCHW version of the maths (two passes for the statistics, ``xhat`` stored for backward)::

    mean = x.mean(axis=(0, 2, 3)); var = x.var(axis=(0, 2, 3))
    xhat = (x - mean[:, None, None]) / np.sqrt(var + eps)[:, None, None]
    out  = gamma[:, None, None] * xhat + beta[:, None, None]

The kernel below computes the same numbers with fewer passes over memory (the layer is memory-bound):

* **Statistics on the channels-last ``(N*H, W*C)`` view**: ``sum(x)``, then ``sum((x - mean)^2)`` with
  ``einsum('ij,ij->j')`` (a fused multiply-add reduction), each folded from ``W*C`` column sums to ``C``
  channel sums (:func:`~.layout.fold_w`). The second pass over the centred values is deliberate: the one-pass
  ``E[x^2] - E[x]^2`` is exact in real numbers but in float32 it loses about 1% of the variance when a
  channel's mean is 100 times its standard deviation.
* **One fused affine map** ``out = x * scale + shift`` with ``scale = gamma * inv_std`` and
  ``shift = beta - mean * scale``, both tiled over W so the inner loop runs over whole rows.
* **A compact backward** that does not store ``xhat``: ``dx`` is affine in ``dy`` and ``x`` per channel,
  ``dx = a*dy + b*x + c`` (derivation in :func:`batchnorm2d_backward`).
* **Blocks of images** (:mod:`.threads`): every pass works on a few images at a time, whose rows stay in the
  cache, and the blocks run on several threads. Statistics are first taken per block (the sums, then the
  centred sum of squares around the block's own mean while the block is still in the cache), then combined in
  float64 in block order (Chan et al.'s formula ``M2 = sum_b M2_b + sum_b n_b (mean_b - mean)^2``), so the
  variance still comes from centred values and does not depend on the number of threads.
* **Batch norm followed by ReLU** (:func:`batchnorm2d_relu_forward`) in the same passes: forward clamps the
  output in place and keeps the ReLU mask; backward applies the mask while it takes the sums.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_batchnorm_args, check_batchnorm_cache, check_cache, check_dout
from .activation import relu_mask
from .layout import fold_w, from_nhwc, tile_w, to_nhwc
from .threads import parallel_over_batch, scratch

LAYER, LAYER_RELU = "batchnorm2d", "batchnorm2d_relu"


class FastBatchNormCache(NamedTuple):
    x2: np.ndarray             # (N*H, W*C): the channels-last rows of x
    mean: np.ndarray           # (C,), the batch mean (training) or running mean (eval)
    inv_std: np.ndarray        # (C,)
    gamma: np.ndarray          # (C,)
    training: bool
    count: int                 # M = N*H*W values per channel behind the batch statistics; 0 in eval mode
    x_shape: tuple             # (N, C, H, W)


class FastBatchNormReluCache(NamedTuple):
    bn: FastBatchNormCache
    passes: np.ndarray         # bool (N*H, W*C): where the ReLU lets the gradient through (not out <= 0)


def _rows(x):
    """The ``(N*H, W*C)`` channels-last view (a copy only when ``x`` is not channels-last already)."""
    N, C, H, W = x.shape
    return to_nhwc(x).reshape(N * H, W * C)


def _batch_stats(x2, N, C):
    """Per-channel mean and biased variance of the ``(N*H, W*C)`` rows, in float64.

    Each block of images gives its channel sums and its sum of squares around its *own* channel mean (two passes
    over a block that is still in the cache); blocks are then combined with
    ``M2 = sum_b M2_b + sum_b n_b (mean_b - mean)^2``. A single block is exactly the plain two-pass formula.
    """
    H = x2.shape[0] // N
    W = x2.shape[1] // C
    M = N * H * W

    def block(n0, n1):
        xb = x2[n0 * H:n1 * H]
        n = xb.shape[0] * W
        s = fold_w(xb.sum(axis=0, dtype=xb.dtype).astype(np.float64), C)
        centred = np.subtract(xb, tile_w((s / n).astype(xb.dtype), W), out=scratch("centred block", xb.shape, xb.dtype))
        return s, fold_w(np.einsum("ij,ij->j", centred, centred).astype(np.float64), C), n

    parts = parallel_over_batch(block, N, x2.shape[1] * H)
    if len(parts) == 1:
        s, m2, _ = parts[0]
        return s / M, m2 / M
    sums, m2s, counts = (np.array(column) for column in zip(*parts))      # (blocks, C), (blocks, C), (blocks,)
    mean = sums.sum(axis=0) / M
    m2 = m2s.sum(axis=0) + (counts[:, None] * (sums / counts[:, None] - mean) ** 2).sum(axis=0)
    return mean, m2 / M


def _normalise(x2, N, C, scale, shift, relu):
    """``out = x * scale + shift`` per channel (then ``max(out, 0)`` and its mask when ``relu``), by blocks."""
    H, W = x2.shape[0] // N, x2.shape[1] // C
    out2 = np.empty_like(x2)
    passes = np.empty(x2.shape, dtype=bool) if relu else None
    scale_t, shift_t = tile_w(scale, W), tile_w(shift, W)

    def block(n0, n1):
        rows = slice(n0 * H, n1 * H)
        ob = np.multiply(x2[rows], scale_t, out=out2[rows])
        ob += shift_t
        if relu:
            np.maximum(ob, 0, out=ob)
            relu_mask(ob, passes[rows])           # where the ReLU's gradient passes (also at NaN, as PyTorch)

    parallel_over_batch(block, N, x2.shape[1] * H)
    return out2, passes


def _forward(layer, x, gamma, beta, running_mean, running_var, training, momentum, eps, relu):
    momentum, eps = check_batchnorm_args(layer, x, gamma, beta, running_mean, running_var, training, momentum, eps)
    N, C, H, W = x.shape
    x2 = _rows(x)
    if training:
        M = N * H * W
        mean64, var64 = _batch_stats(x2, N, C)
        mean, var = mean64.astype(x.dtype), var64.astype(x.dtype)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (M / (M - 1))             # unbiased
    else:
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
    scale = gamma * inv_std
    shift = beta - mean * scale
    out2, passes = _normalise(x2, N, C, scale, shift, relu)
    cache = FastBatchNormCache(x2, mean, inv_std, gamma, bool(training), N * H * W if training else 0, x.shape)
    return from_nhwc(out2.reshape(N, H, W, C)), (cache if not relu else FastBatchNormReluCache(cache, passes))


def _backward(layer, dout, cache, passes=None):
    x2, mean, inv_std, gamma, training, count, x_shape = cache
    check_batchnorm_cache(layer, training, count, x_shape)
    N, C, H, W = x_shape
    dout = check_dout(layer, dout, x_shape, x2.dtype)
    dy2 = _rows(dout)
    dx2 = np.empty_like(x2)
    per_image = x2.shape[1] * H

    # Pass 1: the ReLU's mask (when fused), then sum(dy) and sum(dy * x) per block and column.
    def sums(n0, n1):
        rows = slice(n0 * H, n1 * H)
        g = dy2[rows] if passes is None else np.multiply(dy2[rows], passes[rows], out=dx2[rows])
        return (fold_w(g.sum(axis=0, dtype=g.dtype).astype(np.float64), C),
                fold_w(np.einsum("ij,ij->j", g, x2[rows]).astype(np.float64), C))

    parts = parallel_over_batch(sums, N, per_image)
    sdy, sdyx = parts[0] if len(parts) == 1 else np.sum(parts, axis=0)       # added in block order
    inv64, mean64 = inv_std.astype(np.float64), mean.astype(np.float64)
    dgamma64 = inv64 * (sdyx - mean64 * sdy)
    a = gamma.astype(np.float64) * inv64
    a_t = tile_w(a.astype(x2.dtype), W)
    if training:
        M = N * H * W
        b = -a * inv64 * dgamma64 / M
        c = -a * sdy / M - b * mean64
        b_t, c_t = tile_w(b.astype(x2.dtype), W), tile_w(c.astype(x2.dtype), W)

    # Pass 2: dx = a * dy + b * x + c (training) or a * dy (eval), written over the masked dy of pass 1.
    def dx_block(n0, n1):
        rows = slice(n0 * H, n1 * H)
        g = dy2[rows] if passes is None else dx2[rows]
        db = np.multiply(g, a_t, out=dx2[rows])
        if training:
            db += np.multiply(x2[rows], b_t, out=scratch("x times b", db.shape, db.dtype))
            db += c_t

    parallel_over_batch(dx_block, N, per_image)
    dx = from_nhwc(dx2.reshape(N, H, W, C))
    return dx, dgamma64.astype(x2.dtype), sdy.astype(x2.dtype)


def batchnorm2d_forward(x, gamma, beta, *, running_mean=None, running_var=None, training=True, momentum=0.1,
                        eps=1e-5):
    """Batch-norm forward pass.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (C,)
        Scale and shift, same dtype as ``x``.
    running_mean, running_var : ndarray, shape (C,), or None
        Updated in place in training mode; required in eval mode.
    training : bool
        Batch statistics (True) or running statistics (False).
    momentum, eps : float

    Returns
    -------
    out : ndarray, shape (N, C, H, W), channels-last in memory
    cache : FastBatchNormCache for :func:`batchnorm2d_backward`
    """
    return _forward(LAYER, x, gamma, beta, running_mean, running_var, training, momentum, eps, relu=False)


def batchnorm2d_backward(dout, cache):
    r"""Batch-norm backward pass.

    With ``dxhat = dout * gamma`` and sums over the ``M = N*H*W`` positions of a channel, training mode gives
    (the mean and variance depend on every ``x`` of the channel)::

        dx     = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
        dgamma = sum(dout * xhat)  = inv_std * (sum(dout * x) - mean * sum(dout))
        dbeta  = sum(dout)

    Substituting ``xhat = (x - mean) * inv_std`` makes ``dx`` an affine map of ``dout`` and ``x`` per channel,
    so ``xhat`` need not be stored::

        dx = a * dout + b * x + c,   a = gamma * inv_std,   b = -a * inv_std * dgamma / M,
                                     c = -a * dbeta / M - b * mean

    In eval mode the statistics are constants, so ``dx = a * dout``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), channels-last in memory
    dgamma, dbeta : ndarray, shape (C,)
    """
    return _backward(LAYER, dout, check_cache(LAYER, cache, FastBatchNormCache))


def batchnorm2d_relu_forward(x, gamma, beta, *, running_mean=None, running_var=None, training=True,
                             momentum=0.1, eps=1e-5):
    """Batch norm then ReLU in one kernel: ``relu(batchnorm2d(x))``, the same numbers as the two layers.

    Same arguments as :func:`batchnorm2d_forward`. The ReLU costs no extra pass over memory: the batch-norm
    output is clamped while it is still in the cache, and its mask is kept for the backward pass.
    """
    return _forward(LAYER_RELU, x, gamma, beta, running_mean, running_var, training, momentum, eps,
                    relu=True)


def batchnorm2d_relu_backward(dout, cache):
    """Backward pass of :func:`batchnorm2d_relu_forward`: ``(dx, dgamma, dbeta)``.

    The ReLU's mask multiplies ``dout`` (PyTorch's rule: the gradient passes where the output is not ``<= 0``)
    in the same pass that takes the sums of the batch-norm backward.
    """
    bn, passes = check_cache(LAYER_RELU, cache, FastBatchNormReluCache)
    return _backward(LAYER_RELU, dout, bn, passes)
