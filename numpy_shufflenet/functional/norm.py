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
"""

import numpy as np

from .._checks import check_cache, check_dout, check_float_array, check_shape

LAYER = "batchnorm2d"


def _per_channel(v):
    """(C,) -> (1, C, 1, 1), to broadcast over an NCHW array."""
    return v[None, :, None, None]


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
    out : ndarray, shape (N, C, H, W)
    cache : tuple for :func:`batchnorm2d_backward`
    """
    check_float_array(LAYER, "x", x, ndim=4)
    C = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta)):
        check_float_array(LAYER, name, v, ndim=1, dtype=x.dtype)
        check_shape(LAYER, name, v, (C,))
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        if v is not None:
            check_float_array(LAYER, name, v, ndim=1)
            check_shape(LAYER, name, v, (C,))
    if training:
        M = x.shape[0] * x.shape[2] * x.shape[3]
        if M < 2:
            raise ValueError(f"{LAYER}: expected more than 1 value per channel in training mode, "
                             f"got input of shape {x.shape}")
        mean = x.mean(axis=(0, 2, 3))
        var = x.var(axis=(0, 2, 3))                                   # biased: divides by M
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (M / (M - 1))             # unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{LAYER}: eval mode (training=False) expects running_mean and running_var, "
                             f"got None")
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    xhat = (x - _per_channel(mean)) * _per_channel(inv_std)
    out = xhat * _per_channel(gamma) + _per_channel(beta)
    cache = (xhat, gamma, inv_std, training, x.shape)
    return out, cache


def batchnorm2d_backward(dout, cache):
    r"""Batch-norm backward pass.

    With ``dxhat = dout * gamma`` and sums over the ``M = N*H*W`` positions of a channel, training mode gives
    (the mean and variance depend on every ``x`` of the channel)::

        dx     = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
        dgamma = sum(dout * xhat)
        dbeta  = sum(dout)

    In eval mode the statistics are constants, so ``dx = dxhat * inv_std``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (C,)
    """
    xhat, gamma, inv_std, training, x_shape = check_cache(LAYER, cache)
    dout = check_dout(LAYER, dout, x_shape, xhat.dtype)
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = np.einsum("nchw,nchw->c", dout, xhat)
    if training:
        M = x_shape[0] * x_shape[2] * x_shape[3]
        # sum(dxhat) = gamma * dbeta and sum(dxhat * xhat) = gamma * dgamma: no extra pass over the data.
        scale = gamma * inv_std
        dx = _per_channel(scale) * (dout - _per_channel(dbeta / M) - xhat * _per_channel(dgamma / M))
    else:
        dx = dout * _per_channel(gamma * inv_std)
    return dx, dgamma, dbeta
