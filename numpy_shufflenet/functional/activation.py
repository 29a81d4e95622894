"""ReLU: ``out = max(x, 0)``; its gradient passes ``dout`` where ``x > 0`` and blocks it elsewhere."""

import numpy as np

from .._checks import check_cache, check_dout, check_float_array

LAYER = "relu"


def relu_forward(x):
    """ReLU forward pass.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, same shape and dtype as ``x``
    cache : the boolean mask ``x > 0`` and the dtype of ``x``
    """
    check_float_array(LAYER, "x", x)
    out = np.maximum(x, 0)
    return out, (out > 0, x.dtype)


def relu_backward(dout, cache):
    """ReLU backward pass: ``dx = dout * (x > 0)`` (the gradient at exactly 0 is taken as 0, as PyTorch does)."""
    mask, dtype = check_cache(LAYER, cache)
    dout = check_dout(LAYER, dout, mask.shape, dtype)
    return dout * mask
