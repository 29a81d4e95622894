"""Notebook 02, channel shuffle and information flow: four functions and a written question."""

import numpy as np

from ... import functional as F
from ...analysis.flow import compose, group_conv_matrix, groups_seen, inverse_permutation, shuffle_matrix
from ..exercise import Exercise, Mistake, Out
from .draw import case, dtype_of_case, label, normal, pick

NOTEBOOK = "02_channel_shuffle_and_information_flow"


def _draw_channels(rng, i, first=((12, 3), (8, 1), (6, 6))):
    """``(C, g)``: the notebook's 12 and 3 first, then g = 1 and g = C (where a reshape returns a view)."""
    if i < len(first):
        return first[i]
    g, n = int(rng.integers(2, 7)), int(rng.integers(2, 7))
    return g * n, g


# -- shuffled_order --------------------------------------------------------------------------------------------------
def _shuffled_order(C, g):
    return F.channel_shuffle_indices(C, g).tolist()


def _draw_order(rng, i):
    C, g = _draw_channels(rng, i)
    return case((C, g), label(C=C, g=g))


SHUFFLED_ORDER = Exercise(
    "shuffled_order", NOTEBOOK, "the shuffled channel order, predicted", 1, function="shuffled_order",
    args=("C", "g"), returns=(Out("order", "ints"),), draw=_draw_order, reference=_shuffled_order, mistakes=(
        Mistake("where each input channel goes, not which input each output takes",
                "Your list is the inverse permutation. Output channel k is input channel order[k]: write the table "
                "(g rows of n), then read it column by column.",
                lambda C, g: inverse_permutation(np.array(_shuffled_order(C, g))).tolist()),
        Mistake("the order for C = 12, g = 3 typed in: C and g ignored", "The check asks for other C and g too: "
                "order[k] follows from k, g and n = C / g.", lambda C, g: [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]),
        Mistake("the table read row by row: nothing moved", "Transpose the (g, n) table before reading it.",
                lambda C, g: list(range(C))),
        Mistake("channels counted from 1", "Python counts channels from 0.",
                lambda C, g: [k + 1 for k in _shuffled_order(C, g)]),
    ))


# -- channel_shuffle_forward ------------------------------------------------------------------------------------------
def _shuffle(x, groups):
    return F.channel_shuffle_forward(x, groups)[0]


def _draw_shuffle(rng, i):
    dt = dtype_of_case(i)
    C, g = _draw_channels(rng, i)
    N, H, W = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    return case((normal(rng, (N, C, H, W), dt), g), label(dt, N=N, C=C, H=H, W=W, groups=g))


def _shuffle_no_copy(x, groups):
    N, C, H, W = x.shape
    return x.reshape(N, groups, C // groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)


def _shuffle_into_input(x, groups):
    x[...] = _shuffle(x, groups)
    return x


_INVERSE = ("That is the inverse shuffle (the authors' code order, and the shuffle's backward). The paper reshapes "
            "the channels to (g, n): one row per group, then transposes.")

CHANNEL_SHUFFLE_FORWARD = Exercise(
    "channel_shuffle_forward", NOTEBOOK, "the channel shuffle layer", 2, function="channel_shuffle_forward",
    args=("x", "groups"), draw=_draw_shuffle, reference=_shuffle, mistakes=(
        Mistake("reshaped to (C // groups, groups) instead of (groups, C // groups)", _INVERSE,
                lambda x, g: _shuffle(x, x.shape[1] // g)),
        Mistake("the channels were not moved", "Your output equals the input: the transpose is missing (or undone "
                "by the last reshape).", lambda x, g: x.copy()),
        Mistake("modified its input x in place", "Writing the shuffled channels back into x destroys the input "
                "the backward pass and the next layers still need; return a new array.", _shuffle_into_input),
        Mistake("returned a view of its input x", "With groups = 1 or groups = C the transpose moves nothing and "
                "reshape returns x itself; copy after the transpose: .transpose(...).copy().reshape(...).",
                _shuffle_no_copy),
    ))


# -- stacked_connectivity ---------------------------------------------------------------------------------------------
def _stacked(C, g, shuffle, transposed=False):
    G = group_conv_matrix(C, C, g)
    P = shuffle_matrix(C, g)
    return compose(G, P.T if transposed else P, G) if shuffle else compose(G, G)


def _draw_stacked(rng, i):
    C, g = _draw_channels(rng, i // 2, first=((12, 3), (8, 4), (4, 4)))
    if i >= 6:
        g, n = int(rng.integers(2, 6)), int(rng.integers(1, 6))
        C = g * n
    shuffle = i % 2 == 1
    return case((C, g, shuffle), label(C=C, g=g, shuffle=shuffle))


def _interleaved_blocks(C, g, shuffle):
    G = (np.arange(C)[:, None] % g) == (np.arange(C)[None, :] % g)
    return G if not shuffle else _stacked(C, g, True)


STACKED_CONNECTIVITY = Exercise(
    "stacked_connectivity", NOTEBOOK, "the connectivity of two group convolutions, with and without a shuffle", 3,
    function="stacked_connectivity", args=("C", "g", "shuffle"), returns=(Out("M", "bool"),), draw=_draw_stacked,
    n_cases=8, reference=_stacked, mistakes=(
        Mistake("groups interleaved instead of contiguous", "Group k is the k-th block of C/g *consecutive* "
                "channels: G[o, i] is True when o // n == i // n, not when o % g == i % g.", _interleaved_blocks),
        Mistake("the permutation matrix transposed", "Row k of the shuffle's matrix has its True at column "
                "perm[k] (out[:, k] = x[:, perm[k]]); yours uses the inverse.",
                lambda C, g, shuffle: _stacked(C, g, shuffle, transposed=True)),
        Mistake("assumed one shuffle always mixes everything", "With n = C/g < g channels per group, one shuffle "
                "is not enough: compute the product, do not assume it.",
                lambda C, g, shuffle: np.ones((C, C), bool) if shuffle else _stacked(C, g, False)),
        Mistake("returned integers where booleans are asked for", "A matrix product of 0/1 matrices counts "
                "paths; 'can depend' is whether that count is > 0.",
                lambda C, g, shuffle: _stacked(C, g, shuffle).astype(int)),
    ))


# -- groups_after_one_shuffle -----------------------------------------------------------------------------------------
def _groups_after_one_shuffle(C, g):
    G = group_conv_matrix(C, C, g)
    return int(groups_seen(compose(G, shuffle_matrix(C, g), G), g).min())


def _draw_groups(rng, i):
    g = pick(rng, i, (3, 4, 8), (2, 3, 4, 5, 6, 8))
    n = pick(rng, i, (4, 2, 3), (1, 2, 3, 4, 6, 8, 10))
    return case((g * n, g), label(C=g * n, g=g, n=n))


GROUPS_AFTER_ONE_SHUFFLE = Exercise(
    "groups_after_one_shuffle", NOTEBOOK, "when one shuffle is not enough", 2, function="groups_after_one_shuffle",
    args=("C", "g"), returns=(Out("groups", "int"),), draw=_draw_groups, n_cases=8,
    reference=_groups_after_one_shuffle, mistakes=(
        Mistake("assumed one shuffle is always enough", "When n = C/g < g, a group of the next convolution takes "
                "only n channels of the shuffled order, so it can meet at most n groups.", lambda C, g: g),
        Mistake("n where min(n, g) belongs", "Nobody sees more than the g groups there are.", lambda C, g: C // g),
        Mistake("returned a float where an int is asked for", "C / g is a float: use //.",
                lambda C, g: float(min(C // g, g))),
    ))


QUESTION_NO_SHUFFLE = Exercise("question_no_shuffle", NOTEBOOK, "why the no-shuffle ablation loses more with g = 8",
                               2, kind="written")

EXERCISES = (SHUFFLED_ORDER, CHANNEL_SHUFFLE_FORWARD, STACKED_CONNECTIVITY, GROUPS_AFTER_ONE_SHUFFLE,
             QUESTION_NO_SHUFFLE)
