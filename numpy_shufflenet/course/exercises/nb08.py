"""Notebook 08, real weights: the inverse of a shuffle order, and moving the shuffle in front of the depthwise
convolution by permuting its parameters."""

import numpy as np

from ... import functional as F
from ...analysis.flow import inverse_permutation
from ..exercise import Exercise, Mistake, Out
from .draw import case, dtype_of_case, label, normal, pick

NOTEBOOK = "08_real_weights_and_pytorch"


def _draw_order(rng, i):
    g, n = int(rng.integers(2, 7)), int(rng.integers(2, 7))
    kind = pick(rng, i, ("paper", "official", "random"), ("paper", "official", "random"))
    order = rng.permutation(g * n) if kind == "random" else F.channel_shuffle_indices(g * n, g, kind)
    return case((np.asarray(order).tolist(),), label(C=g * n, g=g, order=kind))


INVERT_ORDER = Exercise(
    "invert_order", NOTEBOOK, "the permutation that undoes a shuffle order", 2, function="invert_order",
    args=("order",), returns=(Out("inverse", "ints"),), draw=_draw_order, n_cases=6,
    reference=lambda order: inverse_permutation(np.array(order)).tolist(), mistakes=(
        Mistake("the order itself", "The inverse answers the other question: where did input channel k go? "
                "inverse[order[k]] = k.", lambda order: list(order)),
        Mistake("the order applied twice", "order[order[k]] shuffles twice; the inverse undoes one shuffle: "
                "inverse[order[k]] = k.", lambda order: [order[k] for k in order]),
        Mistake("the order reversed", "Reversing the list is not undoing the permutation: inverse[order[k]] = k.",
                lambda order: list(order)[::-1]),
    ))


def _draw_params(rng, i):
    dt = dtype_of_case(i)
    g, n = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    C = g * n
    order = F.channel_shuffle_indices(C, g, pick(rng, i, ("paper", "official"), ("paper", "official")))
    params = (normal(rng, (C, 1, 3, 3), dt), rng.uniform(0.5, 1.5, C).astype(dt), normal(rng, C, dt),
              normal(rng, C, dt), rng.uniform(0.5, 2.0, C).astype(dt))
    return case(params + (order.tolist(),), label(dt, C=C, g=g))


def _move(dw_weight, gamma, beta, running_mean, running_var, order):
    """shuffle(bn(dw(z))) == bn'(dw'(shuffle(z))) when every per-channel parameter k becomes parameter order[k]."""
    return tuple(p[np.asarray(order)] for p in (dw_weight, gamma, beta, running_mean, running_var))


def _move_only(*params, order, keep=()):
    moved = _move(*params, order)
    return tuple(p.copy() if i in keep else m for i, (p, m) in enumerate(zip(params, moved)))


def _move_into_inputs(*a):
    moved = _move(*a)
    for p, m in zip(a[:5], moved):
        p[...] = m
    return a[:5]


MOVE_SHUFFLE_BEFORE_DW = Exercise(
    "move_shuffle_before_dw", NOTEBOOK, "the depthwise and batch-norm parameters for a shuffle moved in front", 3,
    function="move_shuffle_before_dw", args=("dw_weight", "gamma", "beta", "running_mean", "running_var", "order"),
    returns=tuple(Out(n) for n in ("dw_weight", "gamma", "beta", "running_mean", "running_var")), draw=_draw_params,
    n_cases=6, reference=_move, mistakes=(
        Mistake("the inverse permutation used", "After the move, channel k of the depthwise convolution filters "
                "input channel order[k], so it needs the filter that channel had: w'[k] = w[order[k]].",
                lambda *a: _move(*a[:5], inverse_permutation(np.array(a[5])))),
        Mistake("the batch norm's parameters left in place", "The batch norm after the depthwise convolution "
                "works per channel too: gamma, beta and the running statistics move with the channels.",
                lambda *a: _move_only(*a[:5], order=a[5], keep=(1, 2, 3, 4))),
        Mistake("the running statistics left in place", "running_mean and running_var belong to a channel like "
                "gamma and beta: they move too.", lambda *a: _move_only(*a[:5], order=a[5], keep=(3, 4))),
        Mistake("modified its input dw_weight in place", "Return new arrays; the checkpoint the caller holds must "
                "stay as it was.", _move_into_inputs),
    ))


EXERCISES = (INVERT_ORDER, MOVE_SHUFFLE_BEFORE_DW)
