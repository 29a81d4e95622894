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
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_batchnorm_args, check_batchnorm_cache, check_cache, check_dout
from .layout import fold_w, from_nhwc, tile_w, to_nhwc

LAYER = "batchnorm2d"


class FastBatchNormCache(NamedTuple):
    x2: np.ndarray             # (N*H, W*C): the channels-last rows of x
    mean: np.ndarray           # (C,), the batch mean (training) or running mean (eval)
    inv_std: np.ndarray        # (C,)
    gamma: np.ndarray          # (C,)
    training: bool
    count: int                 # M = N*H*W values per channel behind the batch statistics; 0 in eval mode
    x_shape: tuple             # (N, C, H, W)


def _rows(x):
    """The ``(N*H, W*C)`` channels-last view (a copy only when ``x`` is not channels-last already)."""
    N, C, H, W = x.shape
    return to_nhwc(x).reshape(N * H, W * C)


def _channel_sum(a2, C):
    """Per-channel ``sum(a)`` over the ``(N*H, W*C)`` rows, folded to ``C`` in float64."""
    return fold_w(a2.sum(axis=0, dtype=a2.dtype).astype(np.float64), C)


def _channel_dot(a2, b2, C):
    """Per-channel ``sum(a * b)`` over the ``(N*H, W*C)`` rows (one fused reduction), folded to ``C`` in float64."""
    return fold_w(np.einsum("ij,ij->j", a2, b2).astype(np.float64), C)


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
    momentum, eps = check_batchnorm_args(LAYER, x, gamma, beta, running_mean, running_var, training, momentum, eps)
    N, C, H, W = x.shape
    x2 = _rows(x)
    if training:
        M = N * H * W
        mean = (_channel_sum(x2, C) / M).astype(x.dtype)
        # Two passes: the variance of the centred values. (E[x^2] - E[x]^2 in one pass would cancel
        # catastrophically in float32 when a channel's mean is large against its spread.)
        centred = x2 - tile_w(mean, W)
        var = (_channel_dot(centred, centred, C) / M).astype(x.dtype)
        del centred
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
    out2 = np.multiply(x2, tile_w(scale, W))
    out2 += tile_w(shift, W)
    cache = FastBatchNormCache(x2, mean, inv_std, gamma, bool(training), N * H * W if training else 0, x.shape)
    return from_nhwc(out2.reshape(N, H, W, C)), cache


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
    x2, mean, inv_std, gamma, training, count, x_shape = check_cache(LAYER, cache, FastBatchNormCache)
    check_batchnorm_cache(LAYER, training, count, x_shape)
    N, C, H, W = x_shape
    dout = check_dout(LAYER, dout, x_shape, x2.dtype)
    dy2 = _rows(dout)
    sdy, sdyx = _channel_sum(dy2, C), _channel_dot(dy2, x2, C)
    inv64, mean64 = inv_std.astype(np.float64), mean.astype(np.float64)
    dgamma64 = inv64 * (sdyx - mean64 * sdy)
    a = gamma.astype(np.float64) * inv64
    dx2 = np.multiply(dy2, tile_w(a.astype(x2.dtype), W))
    if training:
        M = N * H * W
        b = -a * inv64 * dgamma64 / M
        c = -a * sdy / M - b * mean64
        dx2 += np.multiply(x2, tile_w(b.astype(x2.dtype), W))
        dx2 += tile_w(c.astype(x2.dtype), W)
    dx = from_nhwc(dx2.reshape(N, H, W, C))
    return dx, dgamma64.astype(x2.dtype), sdy.astype(x2.dtype)
