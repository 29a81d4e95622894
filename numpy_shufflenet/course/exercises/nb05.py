"""Notebook 05, FLOPs are not time: the bytes a convolution moves and its arithmetic intensity, by hand; a written
question."""

import numpy as np

from ...analysis.counting import count_flops
from ...nn import Conv2d
from ..exercise import Exercise, Mistake, Out
from .draw import case, label, multiple_of, pick

NOTEBOOK = "05_flops_are_not_time"
_DTYPES = {4: np.float32, 8: np.float64}


def _layer(c_in, c_out, kernel_size, groups, itemsize):
    return Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, groups=groups, dtype=_DTYPES[itemsize],
                  rng=np.random.default_rng(0))


def _conv_bytes(c_in, c_out, kernel_size, groups, h, w, itemsize):
    """Bytes of the arrays one image's forward pass reads and writes, measured on a real layer."""
    layer = _layer(c_in, c_out, kernel_size, groups, itemsize)
    x = np.zeros((1, c_in, h, w), dtype=_DTYPES[itemsize])
    return int(x.nbytes + layer.weight.data.nbytes + layer.forward(x).nbytes)


def _intensity(c_in, c_out, kernel_size, groups, h, w, itemsize):
    layer = _layer(c_in, c_out, kernel_size, groups, itemsize)
    return count_flops(layer, (c_in, h, w)) / _conv_bytes(c_in, c_out, kernel_size, groups, h, w, itemsize)


def _draw(rng, i):
    kind = pick(rng, i, ("1x1 group", "depthwise", "dense 3x3"), ("1x1 group", "depthwise", "dense 3x3", "any"))
    g = int(rng.choice([1, 2, 3, 4, 8]))
    c_in = multiple_of(rng, g, 1, 8)
    if kind == "depthwise":
        c_in = int(rng.integers(1, 33))
        c_out, k, g = c_in, 3, c_in
    elif kind == "dense 3x3":
        c_out, k, g = int(rng.integers(1, 33)), 3, 1
    else:
        c_out, k = multiple_of(rng, g, 1, 8), (1 if kind == "1x1 group" else int(rng.choice([1, 3, 5])))
    h, w, itemsize = int(rng.integers(1, 17)), int(rng.integers(1, 17)), int(rng.choice([4, 8]))
    return case((c_in, c_out, k, g, h, w, itemsize), label(c_in=c_in, c_out=c_out, k=k, g=g, h=h, w=w,
                                                          itemsize=itemsize))


def _bytes(c_in, c_out, k, g, h, w, itemsize, *, weights=True, output=True, size=True, groups=True):
    numbers = c_in * h * w + (c_out * (c_in // (g if groups else 1)) * k * k if weights else 0) + \
        (c_out * h * w if output else 0)
    return numbers * (itemsize if size else 1)


def _macs(c_in, c_out, k, g, h, w):
    return h * w * c_out * (c_in // g) * k * k


CONV_BYTES = Exercise(
    "conv_bytes", NOTEBOOK, "the bytes a convolution moves", 2, function="conv_bytes",
    args=("c_in", "c_out", "kernel_size", "groups", "h", "w", "itemsize"), returns=(Out("bytes", "int"),),
    draw=_draw, n_cases=8, reference=_conv_bytes, mistakes=(
        Mistake("the weights left out", "The layer reads its weight array too: c_out * (c_in / g) * k * k "
                "numbers.", lambda *a: _bytes(*a, weights=False)),
        Mistake("the output left out", "The output is written to memory: c_out * h * w numbers.",
                lambda *a: _bytes(*a, output=False)),
        Mistake("numbers counted, not bytes: itemsize ignored", "Each number takes itemsize bytes (4 in float32, "
                "8 in float64).", lambda *a: _bytes(*a, size=False)),
        Mistake("the weights counted without the groups", "A group convolution's weight is (c_out, c_in / g, k, "
                "k).", lambda *a: _bytes(*a, groups=False)),
    ))


ARITHMETIC_INTENSITY = Exercise(
    "arithmetic_intensity", NOTEBOOK, "multiply-adds per byte moved", 2, function="arithmetic_intensity",
    args=CONV_BYTES.args, returns=(Out("intensity", "number"),), draw=_draw, n_cases=8, reference=_intensity,
    needs=("conv_bytes",), mistakes=(
        Mistake("the ratio upside down: bytes per multiply-add", "Arithmetic intensity is work per byte: "
                "multiply-adds / bytes.", lambda *a: _conv_bytes(*a) / _macs(*a[:6])),
        Mistake("the multiply-adds not divided by g", "Each output channel of a group convolution sees c_in / g "
                "input channels: h * w * c_out * (c_in / g) * k * k.",
                lambda c_in, c_out, k, g, h, w, s: h * w * c_out * c_in * k * k / _conv_bytes(c_in, c_out, k, g,
                                                                                              h, w, s)),
        Mistake("integer division: // instead of /", "The intensity is a ratio, often below 1: divide with /.",
                lambda *a: _macs(*a[:6]) // _conv_bytes(*a)),
        Mistake("per number, not per byte: itemsize ignored", "Divide by the bytes (conv_bytes), not by the count "
                "of numbers.", lambda *a: _macs(*a[:6]) / _bytes(*a, size=False)),
    ))


QUESTION_MEMORY_BOUND = Exercise("question_memory_bound", NOTEBOOK, "why the depthwise convolutions take more time "
                                 "than their FLOPs say", 2, kind="written")

EXERCISES = (CONV_BYTES, ARITHMETIC_INTENSITY, QUESTION_MEMORY_BOUND)
