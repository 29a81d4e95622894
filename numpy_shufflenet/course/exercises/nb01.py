"""Notebook 01, group convolution and counting: four functions and a written question."""

import numpy as np

from ... import functional as F
from ...analysis.counting import count_flops, count_params
from ...models.builders import build_shapes_only
from ...nn import BatchNorm2d, Conv2d, Sequential
from ..exercise import Exercise, Mistake, Out
from .draw import case, dtype_of_case, label, multiple_of, normal, pick

NOTEBOOK = "01_group_convolution_and_parameters"


# -- conv_params ---------------------------------------------------------------------------------------------------
def _conv_params(c_in, c_out, kernel_size, groups=1):
    return count_params(build_shapes_only(Conv2d, c_in, c_out, kernel_size, groups=groups, bias=False))


def _draw_conv_params(rng, i):
    g = pick(rng, i, (1, 8, 3), (1, 2, 3, 4, 6, 8))
    c_in, c_out = multiple_of(rng, g, 1, 12), multiple_of(rng, g, 1, 12)
    k = pick(rng, i, (3, 3, 1), (1, 3, 5, 7))
    return case((c_in, c_out, k, g), label(c_in=c_in, c_out=c_out, k=k, g=g))


_COUNT = "Each of the c_out filters sees c_in / groups input channels through a k x k window."

CONV_PARAMS = Exercise(
    "conv_params", NOTEBOOK, "the parameters of a (group) convolution", 2, function="conv_params",
    args=("c_in", "c_out", "kernel_size", "groups"), returns=(Out("params", "int"),), draw=_draw_conv_params,
    n_cases=8, reference=_conv_params, mistakes=(
        Mistake("groups ignored", _COUNT, lambda ci, co, k, g=1: ci * co * k * k),
        Mistake("divided by groups twice", _COUNT + " The blog's g blocks of (c_out/g) x (c_in/g) are the same "
                "count: divide once.", lambda ci, co, k, g=1: ci * co * k * k // (g * g)),
        Mistake("the kernel's area left out", _COUNT, lambda ci, co, k, g=1: ci * co // g),
        Mistake("kernel size not squared", _COUNT + " The window has k * k taps.",
                lambda ci, co, k, g=1: ci * co * k // g),
        Mistake("returned a float where an int is asked for", "c_in / groups is a float in Python 3: use //.",
                lambda ci, co, k, g=1: co * (ci / g) * k * k),
    ))


# -- group_conv1x1_forward -------------------------------------------------------------------------------------------
def _group_conv1x1(x, w, groups):
    return F.conv2d_forward(x, w, groups=groups)[0]


def _draw_conv1x1(rng, i, backward=False):
    """``(x, w, groups)``, or ``(dout, x, w, groups)`` for the backward pass (notebook 04)."""
    dt = dtype_of_case(i)
    g = pick(rng, i, (3, 2, 1), (1, 2, 3, 4))
    N, H, W = int(rng.integers(2, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    c_in, c_out = multiple_of(rng, g, 1, 4), multiple_of(rng, g, 1, 4)
    args = (normal(rng, (N, c_in, H, W), dt), normal(rng, (c_out, c_in // g, 1, 1), dt), g)
    if backward:
        args = (normal(rng, (N, c_out, H, W), dt),) + args
    return case(args, label(dt, N=N, C_in=c_in, C_out=c_out, H=H, W=W, groups=g))


def _interleaved(channels, groups):
    """The channel order that puts channels k, k + g, k + 2g, ... into group k."""
    return np.arange(channels).reshape(channels // groups, groups).T.reshape(-1)


def _conv1x1_interleaved_input(x, w, groups):
    return _group_conv1x1(x[:, _interleaved(x.shape[1], groups)], w, groups)


def _conv1x1_interleaved_both(x, w, groups):
    out = np.empty((x.shape[0], w.shape[0]) + x.shape[2:], dtype=x.dtype)
    out[:, _interleaved(w.shape[0], groups)] = _conv1x1_interleaved_input(x, w, groups)
    return out


_INTERLEAVED = ("Group k is the k-th block of C/g *consecutive* channels, so reshape the channel axis to "
                "(groups, C // groups), groups first. (C // groups, groups) puts channels k, k+g, k+2g, ... into "
                "group k.")

GROUP_CONV1X1_FORWARD = Exercise(
    "group_conv1x1_forward", NOTEBOOK, "a 1x1 group convolution, one matrix product per group", 3,
    function="group_conv1x1_forward", args=("x", "w", "groups"), draw=_draw_conv1x1, reference=_group_conv1x1,
    mistakes=(
        Mistake("groups interleaved instead of contiguous", _INTERLEAVED, _conv1x1_interleaved_input),
        Mistake("groups interleaved in the input and the output", _INTERLEAVED, _conv1x1_interleaved_both),
        Mistake("returned float64 for float32 input", "np.einsum keeps the dtype of its operands; an array made "
                "with np.zeros(...) without dtype= is float64.",
                lambda x, w, g: _group_conv1x1(x.astype(np.float64), w.astype(np.float64), g)),
        Mistake("returned 2 values where one is asked for", "The package's kernels return (out, cache); this "
                "exercise returns out only.", lambda x, w, g: (_group_conv1x1(x, w, g), None)),
    ))


# -- blog_numbers ----------------------------------------------------------------------------------------------------
def _blog(c, m, g):
    return (_conv_params(c, c, 3), _conv_params(c, c, 3, g),
            _conv_params(c, m, 1) + _conv_params(m, m, 3) + _conv_params(m, c, 1))


def _draw_blog(rng, i):
    if i == 0:
        return case((256, 64, 8), label(c=256, m=64, g=8))           # the blog's own example
    g = int(rng.choice([2, 3, 4, 8]))
    c = multiple_of(rng, g, 2, 40)
    m = multiple_of(rng, g, 1, c // g)
    return case((c, m, g), label(c=c, m=m, g=g))


BLOG_NUMBERS = Exercise(
    "blog_numbers", NOTEBOOK, "the blog's three parameter counts, for any widths", 1, function="blog_numbers",
    args=("c", "m", "g"), returns=(Out("dense", "int"), Out("grouped", "int"), Out("bottleneck", "int")),
    draw=_draw_blog, n_cases=5, reference=_blog, needs=("conv_params",), mistakes=(
        Mistake("the blog's numbers typed in: c, m and g ignored", "The check draws other widths too: compute "
                "the three counts with conv_params from c, m and g.", lambda c, m, g: (589_824, 73_728, 69_632)),
        Mistake("the blog's 3x3 taken as depthwise", "The blog's middle term is m*3*3*m: a dense 3x3 from m to m "
                "channels.", lambda c, m, g: _blog(c, m, g)[:2] + (2 * c * m + 9 * m,)),
        Mistake("the bottleneck's 3x3 given the g groups", "Only the second count is a group convolution; the "
                "bottleneck's three convolutions are dense.",
                lambda c, m, g: _blog(c, m, g)[:2] + (2 * c * m + 9 * m * m // g,)),
    ))


# -- unit_cost -------------------------------------------------------------------------------------------------------
def _unit_branch(c, m, g, *, rng):
    """The layers of a stride-1 unit with bottleneck ``m`` (the shuffle and ReLUs hold no weights, cost nothing)."""
    return Sequential({"conv1": Conv2d(c, m, 1, groups=g, rng=rng), "bn1": BatchNorm2d(m),
                       "conv2": Conv2d(m, m, 3, padding=1, groups=m, rng=rng), "bn2": BatchNorm2d(m),
                       "conv3": Conv2d(m, c, 1, groups=g, rng=rng), "bn3": BatchNorm2d(c)})


def _unit_cost(c, m, g, h, w):
    branch = build_shapes_only(_unit_branch, c, m, g)
    return count_params(branch), count_flops(branch, (c, h, w))


def _draw_unit_cost(rng, i):
    g = pick(rng, i, (3, 8), (1, 2, 3, 4, 8))
    c, m = multiple_of(rng, g, 2, 24), multiple_of(rng, g, 1, 16)
    if i == 0:
        c, m = 240, 60                                     # Stage 2 of ShuffleNet 1x, g = 3
    h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    return case((c, m, g, h, w), label(c=c, m=m, g=g, h=h, w=w))


def _cost(c, m, g, h, w, *, bn=True, dw=None, pw_g=None, mm=None, ww=None):
    """The right counts, with one of their parts changed (for the mistakes below)."""
    mm = m if mm is None else mm
    pw_g = g if pw_g is None else pw_g
    dw = 9 * mm if dw is None else dw
    weights = 2 * c * mm // pw_g + 9 * mm
    return weights + (2 * (2 * mm + c) if bn else 0), h * (w if ww is None else ww) * (2 * c * mm // pw_g + dw)


UNIT_COST = Exercise(
    "unit_cost", NOTEBOOK, "parameters and multiply-adds of a ShuffleNet unit, by hand", 3, function="unit_cost",
    args=("c", "m", "g", "h", "w"), returns=(Out("params", "int"), Out("mult_adds", "int")),
    draw=_draw_unit_cost, reference=_unit_cost, mistakes=(
        Mistake("batch-norm parameters left out", "count_params counts every trainable number: the three batch "
                "norms add gamma and beta per channel, 2 * (m + m + c).",
                lambda c, m, g, h, w: _cost(c, m, g, h, w, bn=False)),
        Mistake("the 3x3 counted as a dense convolution", "The 3x3 of a ShuffleNet unit is depthwise: 9 "
                "multiply-adds per pixel and channel, 9m, not 9m^2.",
                lambda c, m, g, h, w: (_cost(c, m, g, h, w)[0], h * w * (2 * c * m // g + 9 * m * m))),
        Mistake("the 1x1 convolutions not divided by g", "Each 1x1 *group* convolution costs hw * c * m / g.",
                lambda c, m, g, h, w: _cost(c, m, g, h, w, pw_g=1)),
        Mistake("values swapped", "Return (params, mult_adds), in that order.",
                lambda c, m, g, h, w: _cost(c, m, g, h, w)[::-1]),
        Mistake("m taken as c / 4: the argument m ignored", "The paper's units have m = c/4, but the function "
                "takes m as an argument, and the check varies it on its own.",
                lambda c, m, g, h, w: _cost(c, m, g, h, w, mm=c // 4)),
        Mistake("h * h instead of h * w: the argument w ignored", "The feature map is h x w; the check draws h and "
                "w independently.", lambda c, m, g, h, w: _cost(c, m, g, h, w, ww=h)),
    ))


QUESTION_EQUAL_COST = Exercise("question_equal_cost", NOTEBOOK, "what a larger g buys at an equal cost", 2,
                               kind="written")

EXERCISES = (CONV_PARAMS, GROUP_CONV1X1_FORWARD, BLOG_NUMBERS, UNIT_COST, QUESTION_EQUAL_COST)
