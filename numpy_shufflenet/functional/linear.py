"""Fully connected layer (PyTorch's ``Linear``): ``out = x @ w.T + b``."""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_dout, check_float_array, check_shape

LAYER = "linear"


class LinearCache(NamedTuple):
    x: np.ndarray              # (N, F_in)
    w: np.ndarray              # (F_out, F_in)
    has_bias: bool


def linear_forward(x, w, b=None):
    """Linear forward pass.

    Parameters
    ----------
    x : ndarray, shape (N, F_in)
    w : ndarray, shape (F_out, F_in)
    b : ndarray, shape (F_out,), or None

    Returns
    -------
    out : ndarray, shape (N, F_out)
    cache : LinearCache for :func:`linear_backward`
    """
    check_float_array(LAYER, "x", x, ndim=2)
    check_float_array(LAYER, "w", w, ndim=2, dtype=x.dtype)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"{LAYER}: w of shape {w.shape} expects {w.shape[1]} input features, "
                         f"got x with {x.shape[1]} features (shape {x.shape})")
    out = x @ w.T
    if b is not None:
        check_float_array(LAYER, "b", b, ndim=1, dtype=x.dtype)
        check_shape(LAYER, "b", b, (w.shape[0],))
        out += b
    return out, LinearCache(x, w, b is not None)


def linear_backward(dout, cache):
    """Linear backward pass::

        dx = dout @ w        dw = dout.T @ x        db = dout.sum(0)

    Returns
    -------
    dx : (N, F_in), dw : (F_out, F_in), db : (F_out,) or None
    """
    x, w, has_bias = check_cache(LAYER, cache, LinearCache)
    dout = check_dout(LAYER, dout, (x.shape[0], w.shape[0]), x.dtype)
    return dout @ w, dout.T @ x, dout.sum(axis=0) if has_bias else None
