"""ReLU: ``out = max(x, 0)``; its gradient passes ``dout`` where ``x > 0`` and blocks it where ``x <= 0``.

As in PyTorch, NaN propagates (``relu(NaN) = NaN``) and passes its gradient (NaN is not ``<= 0``), and the
gradient at exactly 0 is 0.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_dout, check_float_array

LAYER = "relu"


class ReluCache(NamedTuple):
    passes: np.ndarray         # bool, shape of x: where the gradient goes through (x > 0, or NaN)
    dtype: np.dtype


def relu_forward(x):
    """ReLU forward pass.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, same shape and dtype as ``x``
    cache : ReluCache for :func:`relu_backward`
    """
    check_float_array(LAYER, "x", x)
    return np.maximum(x, 0), ReluCache(~(x <= 0), x.dtype)


def relu_backward(dout, cache):
    """ReLU backward pass: ``dx = dout * (x > 0)``.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    passes, dtype = check_cache(LAYER, cache, ReluCache)
    dout = check_dout(LAYER, dout, passes.shape, dtype)
    return dout * passes
