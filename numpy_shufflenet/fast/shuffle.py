"""Channel shuffle (paper Sec. 3.1): let the next group convolution see channels of every group.

"Suppose a convolutional layer with g groups whose output has g x n channels; we first reshape the output
channel dimension into (g, n), transposing and then flattening it back." With ``C = 12, groups = 3``::

    in  channel order  0 1 2 3 | 4 5 6 7 | 8 9 10 11      (3 groups of n = 4)
    out channel order  0 4 8 | 1 5 9 | 2 6 10 | 3 7 11   (out[:, k] = x[:, perm[k]])

The shuffle is a permutation of channels, so its backward pass is the inverse permutation, which is the
shuffle with ``C // groups`` groups.
"""

import numpy as np

from .._checks import check_cache, check_dout, check_shuffle_args
from ..functional.shuffle import ShuffleCache, channel_shuffle_indices  # noqa: F401  (one definition)
from .threads import parallel_over_batch

LAYER = "channel_shuffle"


FEW_GROUPS = 3       # channels-last, up to this many groups: one copy per group (see _shuffle)


def _shuffle(x, groups):
    """The shuffle as one reshape-transpose-copy, done in whichever memory layout ``x`` has.

    NCHW memory: ``x.reshape(N, groups, n, H, W).transpose(0, 2, 1, 3, 4)`` (whole planes move).
    Channels-last memory: the same on the last axis of the NHWC array, which keeps the result channels-last.
    There NumPy's copy runs its inner loop along the output's last axis, only ``groups`` numbers long; with few
    groups (:data:`FEW_GROUPS`) the kernel instead copies each group's ``n`` contiguous channels into every
    ``groups``-th output channel, one copy per group, whose inner loop runs over ``n`` channels. With more groups
    the single copy's inner loop is long enough (the README's performance section has the figures).
    The result is always a new array (also for groups == 1 or groups == C, where the transpose is a no-op).
    """
    N, C, H, W = x.shape
    n = C // groups
    xh = x.transpose(0, 2, 3, 1)
    channels_last = xh.flags.c_contiguous and not x.flags.c_contiguous
    if channels_last:
        src = xh.reshape(N, H, W, groups, n)
        out = np.empty((N, H, W, n, groups), dtype=x.dtype)
    else:
        src = x.reshape(N, groups, n, H, W).transpose(0, 2, 1, 3, 4)
        out = np.empty((N, n, groups, H, W), dtype=x.dtype)
    per_group = channels_last and groups <= FEW_GROUPS

    def block(n0, n1):
        if per_group:
            for g in range(groups):                      # output channels g, g + groups, ... = input group g
                out[n0:n1, :, :, :, g] = src[n0:n1, :, :, g, :]
        elif channels_last:
            out[n0:n1] = src[n0:n1].transpose(0, 1, 2, 4, 3)
        else:
            out[n0:n1] = src[n0:n1]

    parallel_over_batch(block, N, C * H * W)             # blocks of images, on several threads
    if channels_last:
        return out.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return out.reshape(N, C, H, W)


def channel_shuffle_forward(x, groups):
    """Channel shuffle forward pass: reshape channels to ``(groups, C // groups)``, transpose, flatten.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), with ``C % groups == 0``
    groups : int

    Returns
    -------
    out : ndarray, shape (N, C, H, W), a new array
        ``out[:, k] == x[:, channel_shuffle_indices(C, groups)[k]]``.
    cache : ShuffleCache for :func:`channel_shuffle_backward`
    """
    groups = check_shuffle_args(LAYER, x, groups)
    return _shuffle(x, groups), ShuffleCache(groups, x.shape, x.dtype)


def channel_shuffle_backward(dout, cache):
    """Channel shuffle backward pass: the inverse permutation, i.e. the shuffle with ``C // groups`` groups.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    groups, x_shape, dtype = check_cache(LAYER, cache, ShuffleCache)
    dout = check_dout(LAYER, dout, x_shape, dtype)
    return _shuffle(dout, x_shape[1] // groups)
