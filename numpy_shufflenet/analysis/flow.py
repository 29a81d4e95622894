r"""Channel information flow: which output channel can see which input channel (paper Sec. 3.1, Fig. 1).

A group convolution with ``g`` groups splits its channels into ``g`` blocks and lets output block ``j`` see only
input block ``j``. Stack two of them and output block ``j`` *still* sees only input block ``j``: information never
crosses between groups. A channel shuffle between the two convolutions sends channels of every group into every
block of the second one, so each output channel sees every input group::

    no shuffle:  GConv -> GConv              shuffle:  GConv -> Shuffle -> GConv
        M = [X . .]                              M = [X X X]
            [. X .]    (g = 3 blocks)                [X X X]    (every entry True)
            [. . X]                                  [X X X]

Everything here is a **boolean connectivity matrix** ``M`` of shape ``(out_channels, in_channels)``:
``M[o, i]`` is True when output channel ``o`` *can depend* on input channel ``i``. Two ways to get it:

* :func:`connectivity` derives ``M`` **analytically** from the layers' hyper-parameters (``groups``, the shuffle
  permutation, ...): block-diagonal for a group convolution, a permutation for a shuffle, the identity for
  per-channel layers, and boolean matrix products through a stack.
* :func:`jacobian_connectivity` **measures** ``M`` with real backward passes: an upstream gradient that is
  nonzero on output channel ``o`` only reaches the input channels that ``o`` depends on.

The two agree (the tests check it), which is a good way to convince yourself that the analytic rules are right.

Only *channels* are tracked: which pixels of a channel feed which pixels (the 3x3 kernels, strides, pooling
windows) is ignored. ``M[o, i]`` says "some pixel of output channel ``o`` depends on some pixel of input channel
``i``".
"""

import numpy as np

from .._checks import as_rng, check_divisible, check_float_array, check_int
from ..functional.shuffle import channel_shuffle_indices
from ..models import ShuffleUnit
from ..nn import (AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d, Module,
                 ReLU, Sequential)

__all__ = [
    "channel_groups", "identity_matrix", "group_conv_matrix", "permutation_matrix", "shuffle_matrix", "compose",
    "connectivity", "jacobian_connectivity", "group_conv_stack",
    "groups_seen", "layers_to_full_mixing",
    "shuffle_permutation", "inverse_permutation", "compose_permutations", "group_mixing_counts",
]

LAYER = "flow"

# Layers that act on each channel separately (they mix pixels, never channels): identity connectivity.
PER_CHANNEL_LAYERS = (BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d)


# ----------------------------------------------------------------------------------------------------------------
# building blocks: the matrices of single layers
# ----------------------------------------------------------------------------------------------------------------
def channel_groups(channels, groups):
    """The group index of every channel when ``channels`` are split into ``groups`` consecutive blocks.

    Returns
    -------
    ndarray of int, shape (channels,)
        ``channel_groups(12, 3) -> [0 0 0 0 1 1 1 1 2 2 2 2]``.
    """
    channels = check_int(LAYER, "channels", channels, 1)
    groups = check_int(LAYER, "groups", groups, 1)
    check_divisible(LAYER, "channels", channels, groups)
    return np.arange(channels) // (channels // groups)


def identity_matrix(channels):
    """Connectivity of a per-channel layer (BN, ReLU, pooling): output ``c`` sees input ``c`` only.

    Returns
    -------
    ndarray of bool, shape (channels, channels)
    """
    return np.eye(check_int(LAYER, "channels", channels, 1), dtype=bool)


def group_conv_matrix(out_channels, in_channels, groups):
    """Connectivity of a convolution with ``groups`` groups: block-diagonal with ``groups`` blocks.

    Output channel ``o`` belongs to group ``o // (out_channels // groups)`` and sees exactly the input channels of
    the same group. ``groups=1`` (a dense convolution) gives all True; ``groups == in_channels == out_channels``
    (depthwise) gives the identity.

    Returns
    -------
    ndarray of bool, shape (out_channels, in_channels)
    """
    out_group = channel_groups(out_channels, groups)
    in_group = channel_groups(in_channels, groups)
    return out_group[:, None] == in_group[None, :]


def permutation_matrix(perm):
    """Connectivity of a channel permutation ``out[k] = in[perm[k]]``: ``P[k, perm[k]] = True``.

    Parameters
    ----------
    perm : array of int, shape (C,), a permutation of ``0 .. C-1``

    Returns
    -------
    ndarray of bool, shape (C, C), exactly one True in every row and every column
    """
    perm = np.asarray(perm)
    if perm.ndim != 1 or not np.array_equal(np.sort(perm), np.arange(perm.size)):
        raise ValueError(f"{LAYER}: expected a permutation of 0..{perm.size - 1}, got {perm}")
    P = np.zeros((perm.size, perm.size), dtype=bool)
    P[np.arange(perm.size), perm] = True
    return P


def shuffle_permutation(channels, groups, order="paper"):
    """The channel shuffle as a permutation: output channel ``k`` is input channel ``perm[k]``.

    ``order="paper"``: reshape the channels to ``(groups, n)``, transpose, flatten (paper Sec. 3.1, and what
    :class:`numpy_shufflenet.nn.ChannelShuffle` does). ``order="official"``: reshape to ``(n, groups)`` instead, as
    the authors' released code does. The two are inverse permutations of each other (see
    :func:`compose_permutations`) and mix the groups equally well (see :func:`group_mixing_counts`).

    Returns
    -------
    ndarray of int, shape (channels,)
        ``shuffle_permutation(12, 3) -> [0 4 8 1 5 9 2 6 10 3 7 11]``.
    """
    return channel_shuffle_indices(channels, groups, order=order)


def shuffle_matrix(channels, groups, order="paper"):
    """Connectivity of a channel shuffle: the permutation matrix of :func:`shuffle_permutation`.

    Returns
    -------
    ndarray of bool, shape (channels, channels)
    """
    return permutation_matrix(shuffle_permutation(channels, groups, order))


def _is_identity(M):
    n = M.shape[0]
    return M.shape == (n, n) and np.count_nonzero(M) == n and bool(M.diagonal().all())


def compose(*matrices):
    """Connectivity of layers run one after another, **given in forward order** (the first layer first).

    ``compose(M1, M2)`` is the boolean matrix product ``M2 @ M1``: output ``o`` of the second layer sees input
    ``i`` of the first when some middle channel ``m`` has ``M2[o, m]`` and ``M1[m, i]``.

    Parameters
    ----------
    *matrices : ndarrays of bool, shapes (C1, C0), (C2, C1), ..., (Ck, Ck-1)

    Returns
    -------
    ndarray of bool, shape (Ck, C0)
    """
    if not matrices:
        raise ValueError(f"{LAYER}: compose expects at least one matrix, got none")
    M = np.asarray(matrices[0], dtype=bool)
    for step, M_next in enumerate(matrices[1:], start=1):
        M_next = np.asarray(M_next, dtype=bool)
        if M_next.shape[1] != M.shape[0]:
            raise ValueError(f"{LAYER}: compose expects matrix {step} to take {M.shape[0]} input channels "
                             f"(the previous layer's outputs), got shape {M_next.shape}")
        if _is_identity(M_next):
            continue                                    # a per-channel layer (BN, ReLU, pooling) changes nothing
        # The product counts the paths from i to o; "at least one path" is "can depend". (Counts of paths are
        # sums of non-negative terms, so float64, which BLAS multiplies fast, decides "> 0" exactly.)
        M = (M_next.astype(np.float64) @ M.astype(np.float64)) > 0
    return M


# ----------------------------------------------------------------------------------------------------------------
# connectivity of a module, derived from its hyper-parameters
# ----------------------------------------------------------------------------------------------------------------
def _expect_channels(module, expected, in_channels):
    if expected != in_channels:
        raise ValueError(f"{LAYER}: {type(module).__name__} expects {expected} input channels, "
                         f"got in_channels={in_channels}")


def _unit_connectivity(unit, in_channels):
    """Fig. 2 (b): branch OR identity (the residual add). Fig. 2 (c): [shortcut rows ; branch rows] (concat)."""
    _expect_channels(unit, unit.in_channels, in_channels)
    branch = connectivity(unit.branch, in_channels)                       # (branch_channels, in_channels)
    shortcut = identity_matrix(in_channels)                               # add: identity; avg pool: per channel
    if unit.stride == 1:
        M = branch | shortcut                                             # out = relu(x + branch(x))
    else:
        M = np.concatenate([shortcut, branch], axis=0)                    # out = relu(concat[pool(x), branch(x)])
    return compose(M, connectivity(unit.relu, M.shape[0]))


def connectivity(module, in_channels):
    """Which output channel can depend on which input channel, derived from the layers' hyper-parameters.

    The rules, one per kind of layer:

    * ``Conv2d`` with ``groups=g``: block-diagonal with ``g`` blocks (:func:`group_conv_matrix`); a dense
      convolution is all True, a depthwise one the identity.
    * ``ChannelShuffle``: the permutation matrix ``P[k, perm[k]]`` of ``out[k] = in[perm[k]]``
      (:func:`shuffle_matrix`, paper order, as the layer computes it).
    * ``BatchNorm2d``, ``ReLU``, ``MaxPool2d``, ``AvgPool2d``, ``GlobalAvgPool2d``: the identity (they work on each
      channel separately; batch norm's batch statistics couple pixels and samples, never channels).
    * ``Linear``: all True.
    * ``Sequential`` (a stage, a ``ShuffleNet``): the boolean product of its children's matrices (:func:`compose`).
    * ``ShuffleUnit``: its branch composed; stride 1 ORs it with the identity (the residual add), stride 2 stacks
      the identity of the pooled shortcut above the branch rows (``concat([shortcut, branch])``); then the final
      ReLU (identity).

    Spatial mixing is ignored: only channels are tracked.

    Parameters
    ----------
    module : Module
        Built from :mod:`numpy_shufflenet.nn` and :mod:`numpy_shufflenet.models`.
    in_channels : int
        Channels (or features, for a ``Linear``) of the module's input.

    Returns
    -------
    M : ndarray of bool, shape (out_channels, in_channels)
        ``M[o, i]`` is True when output channel ``o`` can depend on input channel ``i``.

    Raises
    ------
    TypeError
        For a module type whose channel flow is not known here.
    ValueError
        When ``in_channels`` does not match what the module expects.

    Examples
    --------
    >>> from numpy_shufflenet.nn import Conv2d, Sequential
    >>> stack = Sequential(Conv2d(6, 6, 1, groups=3), Conv2d(6, 6, 1, groups=3))
    >>> connectivity(stack, 6).astype(int)
    array([[1, 1, 0, 0, 0, 0],
           [1, 1, 0, 0, 0, 0],
           [0, 0, 1, 1, 0, 0],
           [0, 0, 1, 1, 0, 0],
           [0, 0, 0, 0, 1, 1],
           [0, 0, 0, 0, 1, 1]])
    """
    in_channels = check_int(LAYER, "in_channels", in_channels, 1)
    if isinstance(module, ShuffleUnit):
        return _unit_connectivity(module, in_channels)
    if isinstance(module, Sequential):                                    # also a stage and a ShuffleNet
        M = identity_matrix(in_channels)
        for _, child in module.named_children():
            M = compose(M, connectivity(child, M.shape[0]))
        return M
    if isinstance(module, Conv2d):
        _expect_channels(module, module.in_channels, in_channels)
        return group_conv_matrix(module.out_channels, module.in_channels, module.groups)
    if isinstance(module, ChannelShuffle):
        return shuffle_matrix(in_channels, module.groups)
    if isinstance(module, BatchNorm2d):
        _expect_channels(module, module.num_features, in_channels)
        return identity_matrix(in_channels)
    if isinstance(module, PER_CHANNEL_LAYERS):
        return identity_matrix(in_channels)
    if isinstance(module, Linear):
        _expect_channels(module, module.in_features, in_channels)
        return np.ones((module.out_features, module.in_features), dtype=bool)
    known = ", ".join(t.__name__ for t in (Conv2d, ChannelShuffle, Linear, Sequential, ShuffleUnit)
                      + PER_CHANNEL_LAYERS)
    raise TypeError(f"{LAYER}: connectivity does not know how channels flow through {type(module).__name__}; "
                    f"expected one of {known}")


# ----------------------------------------------------------------------------------------------------------------
# the same matrix, measured with backward passes
# ----------------------------------------------------------------------------------------------------------------
def _param_dtype(module, default):
    for _, p in module.named_parameters():
        return p.data.dtype
    return default


def _channel_magnitudes(dx):
    """``dx`` of shape ``(k, N, C_in, ...)`` (``k`` backward passes) -> ``max |dx|`` per pass and input channel,
    shape ``(k, C_in)``."""
    return np.abs(dx).max(axis=tuple(a for a in range(dx.ndim) if a not in (0, 2)))


def _rows_from_magnitudes(mag, rtol):
    """Row ``o``: input channels whose gradient is larger than ``rtol`` times the row's largest one."""
    return mag > rtol * mag.max(axis=1, keepdims=True)


def _jacobian_rows_eval(module, x, rng, rtol, max_elements):
    """Eval mode: samples are independent, so one forward/backward handles many output channels at once.

    The input is repeated ``k`` times along the batch axis; copy ``j`` gets an upstream gradient on its own
    output channel only.
    """
    N = x.shape[0]
    out_channels = module.forward(x).shape[1]
    k_max = max(1, max_elements // x.size)
    rows = []
    for start in range(0, out_channels, k_max):
        chans = np.arange(start, min(start + k_max, out_channels))
        k = chans.size
        out = module.forward(np.concatenate([x] * k, axis=0))
        dout = np.zeros((k, N) + out.shape[1:], dtype=out.dtype)
        # copy j, every sample, channel chans[j]: random positive values at every position
        dout[np.arange(k), :, chans] = rng.uniform(0.5, 1.5, size=(k, N) + out.shape[2:])
        dx = module.backward(dout.reshape(out.shape)).reshape((k, N) + x.shape[1:])
        rows.append(_rows_from_magnitudes(_channel_magnitudes(dx), rtol))
    return np.concatenate(rows, axis=0)


def _jacobian_rows_train(module, x, rng, rtol):
    """Training mode: batch norm couples the samples, so one backward pass per output channel (same forward)."""
    out = module.forward(x)
    mags = []
    for c in range(out.shape[1]):
        dout = np.zeros_like(out)
        dout[:, c] = rng.uniform(0.5, 1.5, size=dout[:, c].shape)
        dx = module.backward(dout)
        mags.append(_channel_magnitudes(dx[None])[0])
    return _rows_from_magnitudes(np.stack(mags), rtol)


def jacobian_connectivity(module, x, *, training=True, rtol=1e-12, rng=None, max_elements=2 ** 21):
    """Which output channel depends on which input channel, **measured** with backward passes.

    For every output channel ``o``: run ``module.forward(x)``, then ``module.backward(dout)`` with an upstream
    gradient that is random positive on channel ``o`` and zero elsewhere. Row ``o`` of the result is True where
    ``dx`` is nonzero somewhere in the channel (over ``N``, ``H``, ``W``)::

        M[o, i] = max |dx[:, i]| > rtol * max |dx|

    Compare with the analytic :func:`connectivity`.

    Parameters
    ----------
    module : Module
    x : ndarray, shape (N, C_in, H, W) (or (N, C_in) for a ``Linear``)
        Use random values; the result holds for this ``x``. It is cast to the module's parameter dtype; a float64
        module (``module.to(np.float64)``) is recommended.
    training : bool
        True (default) runs in training mode: batch norm uses batch statistics, which centres every channel right
        before each ReLU of ShuffleNet, so on random inputs no ReLU is dead for a whole channel. Batch statistics
        couple the samples, so this takes one backward pass per output channel (after one forward pass).
        False runs in eval mode: every sample is then independent, so the work is batched (many output channels
        in one backward pass on copies of ``x``), but a ReLU after an eval-mode batch norm can be negative on a
        whole small channel, which hides that channel's row (see Notes).
    rtol : float
        The relative threshold above. Structural zeros are exact zeros (``0 * w`` summed is ``0``), so any tiny
        ``rtol`` works; it only has to be above rounding noise.
    rng : numpy.random.Generator, optional
        For the random upstream gradients (default: seed 0).
    max_elements : int
        Bound on the size of the repeated input in eval mode (memory).

    Returns
    -------
    M : ndarray of bool, shape (C_out, C_in)

    Notes
    -----
    * The module's modes and its batch-norm running statistics are restored afterwards; the parameters'
      ``.grad`` are overwritten.
    * Why a *random* upstream gradient and not ones: in training mode the sum of a batch-norm output over a
      channel is a constant (``beta * N * H * W``), so the gradient of that sum with respect to everything below
      is zero in exact arithmetic and comes out as 0 or as ``1e-17``-sized rounding noise. An all-ones ``dout`` right
      after a batch norm would hide real dependencies (or, with a threshold of 0, show noise as dependencies).
    * A ReLU blocks gradients where its input is negative. After a training-mode batch norm some pixel of every
      channel is positive, but not every ReLU follows a batch norm: the last ReLU of a stride-2 ShuffleUnit also
      sees the average-pooled shortcut, and a pooled channel of a random standard-normal ``x`` on a small map can
      be negative everywhere, which empties its row. The analytic matrix says "can depend", so compare on
      generic inputs that a real stage would see: non-negative ones (a stage's input comes out of a ReLU), or
      larger maps, or OR the results of two random inputs.
    """
    if not isinstance(module, Module):
        raise TypeError(f"{LAYER}: expected a Module, got {type(module).__name__}")
    check_float_array(LAYER, "x", x)
    if x.ndim not in (2, 4):
        raise ValueError(f"{LAYER}: expected x to be 4-D (N, C, H, W) or 2-D (N, F), got shape {x.shape}")
    x = x.astype(_param_dtype(module, x.dtype))
    rng = as_rng(rng, seed=0)
    modes = [(m, m.training) for _, m in module.named_modules()]
    state = module.state_dict()                       # running statistics change in a training-mode forward
    try:
        module.train(training)
        if training:
            return _jacobian_rows_train(module, x, rng, rtol)
        return _jacobian_rows_eval(module, x, rng, rtol, max_elements)
    finally:
        for m, mode in modes:
            m.training = mode
        module.load_state_dict(state)


# ----------------------------------------------------------------------------------------------------------------
# stacks of group convolutions, and how fast they mix
# ----------------------------------------------------------------------------------------------------------------
def group_conv_stack(channels, groups, layers=2, shuffle=True, *, rng=None, dtype=np.float64):
    """``layers`` 1x1 group convolutions, ``channels -> channels``, with a channel shuffle between each two.

    The modules of paper Fig. 1: ``group_conv_stack(12, 3, 2, shuffle=False)`` is (a), ``shuffle=True`` is (c).
    Children are named ``gconv1``, ``shuffle1``, ``gconv2``, ... (no shuffle after the last convolution).

    Returns
    -------
    Sequential, ``(N, channels, H, W) -> (N, channels, H, W)``
    """
    layers = check_int(LAYER, "layers", layers, 1)
    children = {}
    for i in range(1, layers + 1):
        children[f"gconv{i}"] = Conv2d(channels, channels, 1, groups=groups, rng=rng, dtype=dtype)
        if shuffle and i < layers:
            children[f"shuffle{i}"] = ChannelShuffle(groups)
    return Sequential(children)


def groups_seen(M, in_groups):
    """For each output channel, how many of the ``in_groups`` input groups it sees.

    Parameters
    ----------
    M : ndarray of bool, shape (C_out, C_in)
    in_groups : int, dividing ``C_in``; input channels are split into consecutive blocks

    Returns
    -------
    ndarray of int, shape (C_out,), values in ``0 .. in_groups``
        All 1 for two stacked group convolutions, all ``in_groups`` with a shuffle between them.
    """
    M = np.asarray(M, dtype=bool)
    group = channel_groups(M.shape[1], in_groups)
    sees_group = np.stack([M[:, group == j].any(axis=1) for j in range(in_groups)], axis=1)   # (C_out, groups)
    return sees_group.sum(axis=1)


def layers_to_full_mixing(channels, groups, shuffle, max_layers=None):
    """How many stacked 1x1 group convolutions it takes until every output channel sees every input channel.

    The stack is ``GConv -> [Shuffle] -> GConv -> [Shuffle] -> ...`` with ``channels -> channels`` and ``groups``
    groups everywhere; the shuffles are there only when ``shuffle`` is True.

    Parameters
    ----------
    channels, groups : int
    shuffle : bool
    max_layers : int, optional
        Stop after this many layers. By default the search stops when the connectivity repeats a pattern it
        had before (it will never become full then).

    Returns
    -------
    int or None
        The number of layers, or None if the stack never mixes fully: without shuffle and ``groups > 1`` (each
        group stays on its own forever), or when ``channels // groups == 1`` (the shuffle is then the identity).

    Examples
    --------
    >>> layers_to_full_mixing(12, 3, shuffle=True), layers_to_full_mixing(12, 3, shuffle=False)
    (2, None)
    """
    G = group_conv_matrix(channels, channels, groups)
    M, layers, seen = G, 1, set()
    while not M.all():
        key = M.tobytes()
        if key in seen or (max_layers is not None and layers >= max_layers):
            return None
        seen.add(key)
        # next layer: shuffle what the previous convolution produced (if shuffling), then convolve.
        M = compose(M, shuffle_matrix(channels, groups), G) if shuffle else compose(M, G)
        layers += 1
    return layers


# ----------------------------------------------------------------------------------------------------------------
# paper order and official order of the shuffle
# ----------------------------------------------------------------------------------------------------------------
def _check_permutation(caller, name, perm):
    """Return ``perm`` as an int array after checking it is a 1-D permutation of ``0 .. C-1``."""
    perm = np.asarray(perm)
    if perm.dtype == bool or not np.issubdtype(perm.dtype, np.integer):
        raise TypeError(f"{LAYER}.{caller}: expected {name} to be an array of integers, got dtype {perm.dtype}")
    if perm.ndim != 1 or not np.array_equal(np.sort(perm), np.arange(perm.size)):
        raise ValueError(f"{LAYER}.{caller}: expected {name} to be a 1-D permutation of 0..{perm.size - 1} "
                         f"(each index exactly once), got {perm.tolist()}")
    return perm


def inverse_permutation(perm):
    """The permutation that undoes ``perm``: ``inv[perm[k]] = k``.

    Returns
    -------
    ndarray of int, shape (C,)

    Raises
    ------
    TypeError, ValueError
        when ``perm`` is not a 1-D integer permutation of ``0 .. C-1`` (a repeated or missing index has no
        inverse).
    """
    perm = _check_permutation("inverse_permutation", "perm", perm)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    return inv


def compose_permutations(first, second):
    """The permutation of "apply ``first``, then ``second``" (both in the ``out[k] = in[perm[k]]`` convention).

    ``y = x[first]`` then ``z = y[second] = x[first[second]]``, so the result is ``first[second]``. For the two
    shuffle orders, ``compose_permutations(paper, official)`` is ``0, 1, ..., C-1``: they undo each other.

    Returns
    -------
    ndarray of int, shape (C,)

    Raises
    ------
    TypeError, ValueError
        when either argument is not a 1-D integer permutation of ``0 .. C-1``, or their lengths differ.
    """
    first = _check_permutation("compose_permutations", "first", first)
    second = _check_permutation("compose_permutations", "second", second)
    if first.shape != second.shape:
        raise ValueError(f"{LAYER}.compose_permutations: expected two permutations of the same length, got "
                         f"{first.shape} and {second.shape}")
    return first[second]


def group_mixing_counts(channels, groups, order="paper"):
    """How many channels the shuffle moves from each input group to each output group.

    Parameters
    ----------
    channels, groups : int
    order : "paper" or "official" (see :func:`shuffle_permutation`)

    Returns
    -------
    counts : ndarray of int, shape (groups, groups)
        ``counts[i, j]``: channels of input group ``i`` that land in output group ``j``. Every row and every column
        sums to ``channels // groups``. The official order gives the transpose of the paper order's matrix (the
        permutations are inverses); for ``channels=60, groups=3`` both are ``[[7, 7, 6], [7, 6, 7], [6, 7, 7]]``.
    """
    perm = shuffle_permutation(channels, groups, order)
    group = channel_groups(channels, groups)
    counts = np.zeros((groups, groups), dtype=np.int64)
    np.add.at(counts, (group[perm], group), 1)            # output k is in group[k], came from group[perm[k]]
    return counts
