"""Channel shuffle (paper Sec. 3.1): let the next group convolution see channels of every group.

"Suppose a convolutional layer with g groups whose output has g x n channels; we first reshape the output
channel dimension into (g, n), transposing and then flattening it back." With ``C = 12, groups = 3``::

    in  channel order  0 1 2 3 | 4 5 6 7 | 8 9 10 11      (3 groups of n = 4)
    out channel order  0 4 8 | 1 5 9 | 2 6 10 | 3 7 11   (out[:, k] = x[:, perm[k]])

The shuffle is a permutation of channels, so its backward pass is the inverse permutation: reshape to
``(n, g)`` instead, transpose, flatten, which is the shuffle with ``C // groups`` groups.
"""

from typing import NamedTuple

import numpy as np

from .._checks import check_cache, check_dout, check_int, check_shuffle_args

LAYER = "channel_shuffle"


class ShuffleCache(NamedTuple):
    groups: int
    x_shape: tuple             # (N, C, H, W)
    dtype: np.dtype


def channel_shuffle_indices(channels, groups, order="paper"):
    """The permutation ``perm`` of a channel shuffle: output channel ``k`` is input channel ``perm[k]``.

    ``order="paper"`` reshapes to ``(groups, n)`` and transposes (the paper's description).
    ``order="official"`` reshapes to ``(n, groups)`` and transposes, as the authors' released code does; it is
    the inverse permutation of the paper's, and mixes the groups equally well.
    """
    channels = check_int(LAYER, "channels", channels, 1)
    groups = check_int(LAYER, "groups", groups, 1)
    if channels % groups:
        raise ValueError(f"{LAYER}: expected the number of channels to be divisible by groups={groups}, "
                         f"got {channels} channels")
    n = channels // groups
    if order == "paper":
        return np.arange(channels).reshape(groups, n).T.reshape(-1)
    if order == "official":
        return np.arange(channels).reshape(n, groups).T.reshape(-1)
    raise ValueError(f"{LAYER}: expected order 'paper' or 'official', got {order!r}")


def _shuffle(x, groups):
    """Reshape the channels to ``(groups, C // groups)``, swap the two axes, flatten (a new array)."""
    N, C, H, W = x.shape
    return x.reshape(N, groups, C // groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W).copy()


def channel_shuffle_forward(x, groups):
    """Channel shuffle forward pass.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), with ``C % groups == 0``
    groups : int

    Returns
    -------
    out : ndarray, shape (N, C, H, W), ``out[:, k] == x[:, channel_shuffle_indices(C, groups)[k]]``
    cache : ShuffleCache for :func:`channel_shuffle_backward`
    """
    groups = check_shuffle_args(LAYER, x, groups)
    return _shuffle(x, groups), ShuffleCache(groups, x.shape, x.dtype)


def channel_shuffle_backward(dout, cache):
    """Channel shuffle backward pass: the inverse permutation, the shuffle with ``C // groups`` groups.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    groups, x_shape, dtype = check_cache(LAYER, cache, ShuffleCache)
    dout = check_dout(LAYER, dout, x_shape, dtype)
    return _shuffle(dout, x_shape[1] // groups)
