r"""Batch normalisation over the channels of an NCHW array (PyTorch's ``BatchNorm2d``).

Each channel ``c`` is normalised with statistics over the ``M = N*H*W`` numbers it holds::

    mean_c = (1/M) sum_{n,h,w} x[n, c, h, w]
    var_c  = (1/M) sum_{n,h,w} (x[n, c, h, w] - mean_c)^2          (biased, as PyTorch normalises)
    xhat   = (x - mean_c) / sqrt(var_c + eps)
    out    = gamma_c * xhat + beta_c

In training mode the running buffers, when given, are updated in place as PyTorch does::

    running_mean = (1 - momentum) * running_mean + momentum * mean_c
    running_var  = (1 - momentum) * running_var  + momentum * var_c * M / (M - 1)      (unbiased)

In eval mode ``mean_c`` and ``var_c`` are the running buffers: the layer is a fixed per-channel affine map.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_batchnorm_args, check_batchnorm_cache, check_cache, check_dout

LAYER = "batchnorm2d"


class BatchNormCache(NamedTuple):
    xhat: np.ndarray           # (N, C, H, W), the normalised input
    gamma: np.ndarray          # (C,)
    inv_std: np.ndarray        # (C,), 1 / sqrt(var + eps)
    training: bool             # batch statistics (True: they depend on x) or running ones (False: constants)
    count: int                 # M = N*H*W values per channel behind the batch statistics; 0 in eval mode


def _per_channel(v):
    """A (C,) vector shaped (C, 1, 1), to broadcast over an (N, C, H, W) array."""
    return v[:, None, None]


def batchnorm2d_forward(x, gamma, beta, *, running_mean=None, running_var=None, training=True, momentum=0.1,
                        eps=1e-5):
    """Batch-norm forward pass.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (C,), same dtype as ``x``
    running_mean, running_var : ndarray, shape (C,), or None; updated in place in training mode, used in eval mode
    training : bool; batch statistics (True) or running statistics (False)
    momentum : float in [0, 1];  eps : float > 0

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
    cache : BatchNormCache for :func:`batchnorm2d_backward`
    """
    momentum, eps = check_batchnorm_args(LAYER, x, gamma, beta, running_mean, running_var, training, momentum, eps)
    M = x.shape[0] * x.shape[2] * x.shape[3]
    if training:
        mean = x.mean(axis=(0, 2, 3))
        var = ((x - _per_channel(mean)) ** 2).mean(axis=(0, 2, 3))
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1 - momentum) * running_var + momentum * var * (M / (M - 1))
    else:
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat = (x - _per_channel(mean)) * _per_channel(inv_std)
    out = _per_channel(gamma) * xhat + _per_channel(beta)
    return out, BatchNormCache(xhat, gamma, inv_std, bool(training), M if training else 0)


def batchnorm2d_backward(dout, cache):
    r"""Batch-norm backward pass.

    With ``dxhat = dout * gamma`` and sums over the ``M`` positions of a channel::

        dbeta  = sum(dout)
        dgamma = sum(dout * xhat)
        dx     = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))     (training mode)
        dx     = inv_std * dxhat                                                      (eval mode)

    In training mode the mean and variance depend on every ``x`` of the channel, which gives the two extra
    terms: ``-sum(dxhat)`` through the mean and ``-xhat * sum(dxhat * xhat)`` through the variance.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (C,)
    """
    xhat, gamma, inv_std, training, M = check_cache(LAYER, cache, BatchNormCache)
    check_batchnorm_cache(LAYER, training, M, xhat.shape)
    dout = check_dout(LAYER, dout, xhat.shape, xhat.dtype)
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dxhat = dout * _per_channel(gamma)
    if not training:
        return dxhat * _per_channel(inv_std), dgamma, dbeta
    # sum(dxhat) = gamma * dbeta and sum(dxhat * xhat) = gamma * dgamma, per channel
    dx = _per_channel(inv_std / M) * (M * dxhat - _per_channel(gamma * dbeta) - xhat * _per_channel(gamma * dgamma))
    return dx, dgamma, dbeta
