r"""Fused pairs: two layers that always run one after the other, as one forward/backward pair.

ShuffleNet has three such places (paper Fig. 2):

* ``batchnorm2d_relu``: ``out = relu(batchnorm2d(x))``, the "BN ReLU" box after the first 1x1 convolution of
  every unit, and after the stem's convolution;
* ``add_relu``: ``out = relu(x + y)``, the end of a stride-1 unit (Fig. 2 b), with ``y`` the residual branch;
* ``concat_relu``: ``out = relu(concatenate([a, b], axis=1))``, the end of a stride-2 unit (Fig. 2 c), with ``a``
  the pooled shortcut and ``b`` the branch.

Here each is nothing but its plain pairs one after the other. The forward pass runs them in order and keeps
both caches; the backward pass runs their backward passes in the reverse order (the chain rule)::

    bn_out, bn_cache = batchnorm2d_forward(x, gamma, beta)      d = relu_backward(dout, relu_cache)
    out, relu_cache = relu_forward(bn_out)                      dx, dgamma, dbeta = batchnorm2d_backward(d, bn_cache)

The sum sends its gradient to both inputs unchanged (``dx = dy = d``); the concatenation cuts it into the
channels of ``a`` and those of ``b``. :mod:`numpy_shufflenet.fast` computes the same numbers in one pass over
memory, which is why the ``nn`` modules call each as one pair.

Each pair is written once, as a recipe that takes the plain pairs it is made of:
``add_relu_pair(relu_forward, relu_backward) -> (add_relu_forward, add_relu_backward)``. This module's pairs are the
recipes applied to the textbook's own plain pairs; :func:`numpy_shufflenet.use_kernels` applies them to a
student's, so that a student's ReLU also runs at the end of every unit.
"""

from typing import Any, NamedTuple

import numpy as np

from .._checks import check_add_args, check_batchnorm_args, check_cache, check_concat_args, check_dout
from .activation import relu_backward, relu_forward
from .norm import batchnorm2d_backward, batchnorm2d_forward

LAYER_BN, LAYER_ADD, LAYER_CONCAT = "batchnorm2d_relu", "add_relu", "concat_relu"


class BatchNormReluCache(NamedTuple):
    batchnorm: Any             # the batch norm's cache
    relu: Any                  # the ReLU's cache (of the normalised x)
    shape: tuple               # (N, C, H, W): of x and of the output
    dtype: np.dtype


class AddReluCache(NamedTuple):
    relu: Any                  # the ReLU's cache (of the sum x + y)
    shape: tuple               # of x, y and the output
    dtype: np.dtype


class ConcatReluCache(NamedTuple):
    relu: Any                  # the ReLU's cache (of the concatenation)
    channels_a: int            # C_a: the gradient's first C_a channels belong to a, the others to b
    shape: tuple               # (N, C_a + C_b, H, W): of the output
    dtype: np.dtype


def batchnorm2d_relu_pair(batchnorm2d_forward, batchnorm2d_backward, relu_forward, relu_backward):
    """``relu(batchnorm2d(x))`` as one pair, made of the batch-norm pair and the ReLU pair given."""

    def batchnorm2d_relu_forward(x, gamma, beta, *, running_mean=None, running_var=None, training=True,
                                 momentum=0.1, eps=1e-5):
        """Batch norm then ReLU: ``out = max(gamma * xhat + beta, 0)`` per channel.

        Parameters
        ----------
        x : ndarray, shape (N, C, H, W)
        gamma, beta, running_mean, running_var, training, momentum, eps : as :func:`batchnorm2d_forward`
            (the running buffers are updated in place in training mode)

        Returns
        -------
        out : ndarray, shape (N, C, H, W)
        cache : BatchNormReluCache for ``batchnorm2d_relu_backward``
        """
        check_batchnorm_args(LAYER_BN, x, gamma, beta, running_mean, running_var, training, momentum, eps)
        y, bn_cache = batchnorm2d_forward(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                                          training=training, momentum=momentum, eps=eps)
        out, relu_cache = relu_forward(y)
        return out, BatchNormReluCache(bn_cache, relu_cache, x.shape, x.dtype)

    def batchnorm2d_relu_backward(dout, cache):
        """Backward pass: the ReLU's backward, then the batch norm's.

        Returns
        -------
        dx : ndarray, shape (N, C, H, W)
        dgamma, dbeta : ndarray, shape (C,)
        """
        bn_cache, relu_cache, shape, dtype = check_cache(LAYER_BN, cache, BatchNormReluCache)
        dout = check_dout(LAYER_BN, dout, shape, dtype)
        return batchnorm2d_backward(relu_backward(dout, relu_cache), bn_cache)

    return batchnorm2d_relu_forward, batchnorm2d_relu_backward


def add_relu_pair(relu_forward, relu_backward):
    """``relu(x + y)`` as one pair, made of the ReLU pair given."""

    def add_relu_forward(x, y):
        """The sum, then ReLU: ``out = max(x + y, 0)``.

        Parameters
        ----------
        x, y : ndarray, the same shape and dtype (no broadcasting)

        Returns
        -------
        out : ndarray, the shape of ``x``
        cache : AddReluCache for ``add_relu_backward``
        """
        check_add_args(LAYER_ADD, x, y)
        out, relu_cache = relu_forward(x + y)
        return out, AddReluCache(relu_cache, x.shape, x.dtype)

    def add_relu_backward(dout, cache):
        """Backward pass: ``d = relu_backward(dout)``, and the sum passes ``d`` to both inputs: ``dx = dy = d``.

        Returns
        -------
        dx, dy : ndarray, the shape of ``x`` (one array, returned twice)
        """
        relu_cache, shape, dtype = check_cache(LAYER_ADD, cache, AddReluCache)
        d = relu_backward(check_dout(LAYER_ADD, dout, shape, dtype), relu_cache)
        return d, d

    return add_relu_forward, add_relu_backward


def concat_relu_pair(relu_forward, relu_backward):
    """``relu(concatenate([a, b], axis=1))`` as one pair, made of the ReLU pair given."""

    def concat_relu_forward(a, b):
        """The concatenation along the channels, then ReLU: ``out = max([a, b], 0)``.

        Parameters
        ----------
        a : ndarray, shape (N, C_a, H, W)
        b : ndarray, shape (N, C_b, H, W), the dtype of ``a``

        Returns
        -------
        out : ndarray, shape (N, C_a + C_b, H, W), ``a``'s channels first
        cache : ConcatReluCache for ``concat_relu_backward``
        """
        check_concat_args(LAYER_CONCAT, a, b)
        out, relu_cache = relu_forward(np.concatenate([a, b], axis=1))
        return out, ConcatReluCache(relu_cache, a.shape[1], out.shape, a.dtype)

    def concat_relu_backward(dout, cache):
        """Backward pass: ``d = relu_backward(dout)``, cut into the channels of ``a`` and those of ``b``.

        Returns
        -------
        da : ndarray, shape (N, C_a, H, W)
        db : ndarray, shape (N, C_b, H, W)
        """
        relu_cache, channels_a, shape, dtype = check_cache(LAYER_CONCAT, cache, ConcatReluCache)
        d = relu_backward(check_dout(LAYER_CONCAT, dout, shape, dtype), relu_cache)
        return d[:, :channels_a], d[:, channels_a:]

    return concat_relu_forward, concat_relu_backward


# The textbook's fused pairs: the recipes applied to the textbook's plain pairs.
batchnorm2d_relu_forward, batchnorm2d_relu_backward = batchnorm2d_relu_pair(batchnorm2d_forward,
                                                                            batchnorm2d_backward,
                                                                            relu_forward, relu_backward)
add_relu_forward, add_relu_backward = add_relu_pair(relu_forward, relu_backward)
concat_relu_forward, concat_relu_backward = concat_relu_pair(relu_forward, relu_backward)
