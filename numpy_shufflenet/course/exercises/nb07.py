"""Notebook 07, ShuffleNet among its peers: a MobileNet block counted by hand; the widest unit for a budget."""

from ...analysis.counting import count_flops, count_params
from ...models.builders import build_shapes_only
from ...nn import BatchNorm2d, Conv2d, ReLU, Sequential
from ..exercise import Exercise, Mistake, Out
from .draw import case, label, pick

NOTEBOOK = "07_shufflenet_among_its_peers"


def _mobilenet_block(c_in, c_out, stride, *, rng):
    """One block of MobileNet v1, as ``models.mobilenet_v1`` builds it."""
    return Sequential({"dw": Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, rng=rng),
                       "bn1": BatchNorm2d(c_in), "relu1": ReLU(), "pw": Conv2d(c_in, c_out, 1, rng=rng),
                       "bn2": BatchNorm2d(c_out), "relu2": ReLU()})


def _block_cost(c_in, c_out, h, w, stride):
    block = build_shapes_only(_mobilenet_block, c_in, c_out, stride)
    return count_params(block), count_flops(block, (c_in, h, w))


def _draw_block(rng, i):
    stride = pick(rng, i, (1, 2, 2), (1, 2))
    c_in, c_out = int(rng.integers(1, 257)), int(rng.integers(1, 257))
    h, w = pick(rng, i, (14, 7, 15), (3, 5, 7, 9, 14, 15, 28)), int(rng.integers(2, 30))
    return case((c_in, c_out, h, w, stride), label(c_in=c_in, c_out=c_out, h=h, w=w, stride=stride))


def _cost(c_in, c_out, h, w, s, *, out_hw=None, bn=True, dense=False, pw_at_input=False):
    h_out, w_out = out_hw or ((h - 1) // s + 1, (w - 1) // s + 1)
    dw = 9 * c_in * (c_in if dense else 1)
    params = dw + c_in * c_out + (2 * (c_in + c_out) if bn else 0)
    pw_pixels = h * w if pw_at_input else h_out * w_out
    return params, h_out * w_out * dw + pw_pixels * c_in * c_out


MOBILENET_BLOCK_COST = Exercise(
    "mobilenet_block_cost", NOTEBOOK, "a MobileNet block counted by hand", 2, function="mobilenet_block_cost",
    args=("c_in", "c_out", "h", "w", "stride"), returns=(Out("params", "int"), Out("mult_adds", "int")),
    draw=_draw_block, n_cases=6, reference=_block_cost, mistakes=(
        Mistake("stride ignored", "With stride 2 the depthwise convolution's output, and so the pointwise "
                "convolution's input, is (h - 1) // 2 + 1 by (w - 1) // 2 + 1.",
                lambda c_in, c_out, h, w, s: _cost(c_in, c_out, h, w, s, out_hw=(h, w))),
        Mistake("H // stride as the output size", "With padding 1 the output is (h - 1) // stride + 1 high: for an "
                "odd h and stride 2 that is one more than h // 2.",
                lambda c_in, c_out, h, w, s: _cost(c_in, c_out, h, w, s, out_hw=(h // s, w // s))),
        Mistake("batch-norm parameters left out", "count_params counts gamma and beta of both batch norms: "
                "2 * (c_in + c_out).", lambda *a: _cost(*a, bn=False)),
        Mistake("the depthwise 3x3 counted as a dense convolution", "A depthwise 3x3 has 9 weights per channel, "
                "9 * c_in in all, not 9 * c_in * c_in.", lambda *a: _cost(*a, dense=True)),
        Mistake("the pointwise layer counted at the input's resolution", "The 1x1 convolution runs on the "
                "depthwise convolution's output, after the stride.", lambda *a: _cost(*a, pw_at_input=True)),
    ))


def _unit_cost(c, h, w, g, *, dense=False, bottleneck=True):
    m = c // 4 if bottleneck else c
    return h * w * (2 * c * m // g + (9 * m * m if dense else 9 * m))


def _widest(budget, h, w, g, *, step=None, cost=_unit_cost, one_more=False):
    """The widest ``c``, a multiple of ``step`` (4g: so that c and m = c/4 split into g groups), whose unit costs
    at most ``budget``; 0 when not even the narrowest fits."""
    step = step or 4 * g
    c = 0
    while cost(c + step, h, w, g) <= budget:
        c += step
    return c + step if one_more else c


def _draw_budget(rng, i):
    g = pick(rng, i, (3, 8), (1, 2, 3, 4, 8))
    h = w = int(pick(rng, i, (28, 14), (7, 14, 28, 56)))
    w = w if i < 2 else int(rng.integers(3, 57))
    c = 4 * g * int(rng.integers(2, 40))
    budget = _unit_cost(c, h, w, g) + int(rng.integers(0, _unit_cost(c + 4 * g, h, w, g) - _unit_cost(c, h, w, g)))
    return case((budget, h, w, g), label(budget=budget, h=h, w=w, g=g))


def _widest_real(budget, h, w, g):
    """The real solution of hw(c^2/(2g) + 9c/4) = budget, rounded down: not a multiple of 4g."""
    a, b = h * w / (2 * g), h * w * 9 / 4
    return int((-b + (b * b + 4 * a * budget) ** 0.5) / (2 * a))


WIDTH_FOR_BUDGET = Exercise(
    "width_for_budget", NOTEBOOK, "the widest unit a budget of multiply-adds allows", 3, function="width_for_budget",
    args=("budget", "h", "w", "g"), returns=(Out("c", "int"),), draw=_draw_budget, n_cases=6, reference=_widest,
    mistakes=(
        Mistake("not a multiple of 4g", "c must split into g groups, and so must m = c / 4: only multiples of 4g "
                "are widths a unit can have.", _widest_real),
        Mistake("one step past the budget", "Return the widest c whose cost is *at most* the budget, not the "
                "first that exceeds it.", lambda *a: _widest(*a, one_more=True)),
        Mistake("the 3x3 counted as a dense convolution", "The unit's 3x3 is depthwise: hw * 9m, not hw * 9m^2.",
                lambda *a: _widest(*a, cost=lambda c, h, w, g: _unit_cost(c, h, w, g, dense=True))),
        Mistake("the bottleneck left out: m taken as c", "The unit's 1x1 convolutions go from c to m = c / 4 "
                "channels and back.", lambda *a: _widest(*a, cost=lambda c, h, w, g: _unit_cost(c, h, w, g,
                                                                                              bottleneck=False))),
    ))


EXERCISES = (MOBILENET_BLOCK_COST, WIDTH_FOR_BUDGET)
