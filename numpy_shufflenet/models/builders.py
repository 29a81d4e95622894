"""Helpers every network builder shares: the conv-BN(-ReLU) block, width scaling, and building without weights.

* :func:`conv_bn`: a convolution, batch norm and (optionally) a ReLU, as one named ``Sequential``: the stem of
  every network of Table 1 and Table 4, MobileNet's layers, the VGG-like unit.
* :func:`scaled`, :func:`check_width`, :func:`round_up`: a width multiplier applied to a channel count.
* :func:`build_shapes_only`: any builder, without drawing its weights (for counting big networks instantly).
"""

import numbers

import numpy as np

from .._checks import as_rng
from ..nn import BatchNorm2d, Conv2d, Linear, ReLU, Sequential

# ----------------------------------------------------------------------------------------------------------------
# building networks without drawing their weights (for counting)
# ----------------------------------------------------------------------------------------------------------------
class _NoDraws(np.random.Generator):
    """A random generator whose normal "draws" are a single zero, for when only the layers' shapes matter.

    The layers draw their initial weights with ``rng.standard_normal(shape)``; with this generator that costs
    nothing, and :func:`_shapes_only` then gives each weight its shape back as a zero-stride view.
    """

    def __init__(self):
        super().__init__(np.random.PCG64(0))

    def standard_normal(self, *args, **kwargs):
        return np.zeros(())

    def normal(self, *args, **kwargs):
        return np.zeros(())


def shapes_only_weights(model):
    """Give every convolution and FC layer of ``model`` a read-only zero weight of the right shape.

    ``np.broadcast_to`` makes a view of one number with the full shape: ``size`` and ``shape`` are right (so
    the counters work), no memory is used, and nothing can train it by mistake (it is read-only).
    """
    for _, module in model.named_modules():
        if isinstance(module, Conv2d):
            shape = (module.out_channels, module.in_channels // module.groups) + tuple(module.kernel_size)
        elif isinstance(module, Linear):
            shape = (module.out_features, module.in_features)
        else:
            continue
        module.weight.data = np.broadcast_to(np.zeros((), module.weight.data.dtype), shape)
    return model


def build_shapes_only(builder, *args, **kwargs):
    """``builder(*args, rng=..., **kwargs)`` without drawing any weights: for counting big networks instantly.

    Works with every builder that takes an ``rng`` (:class:`~numpy_shufflenet.models.ShuffleNet`,
    :func:`table4_network`, :func:`mobilenet_v1`, ...). Convolution and FC weights become read-only zero views
    of the right shapes, so :func:`~numpy_shufflenet.analysis.counting.count_multiply_adds`, ``count_params`` and
    ``summary`` give the real network's numbers; a forward pass runs but computes with zero weights.
    """
    return shapes_only_weights(builder(*args, rng=_NoDraws(), **kwargs))


def network_rng(rng, shapes_only):
    if shapes_only:
        return _NoDraws()
    return as_rng(rng)


def scaled(layer, c, width, multiple=1):
    """``int(c * width)`` rounded up to a multiple of ``multiple``; a clear error if nothing is left."""
    c = int(c * width)
    c = -(-c // multiple) * multiple
    if c < 1:
        raise ValueError(f"{layer}: width {width!r} leaves a layer with no channels")
    return c


def check_width(layer, width):
    if not isinstance(width, numbers.Real) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"{layer}: expected a positive width multiplier, got {width!r}")
    return float(width)


def conv_relu(c_in, c_out, k, rng, dtype, **kwargs):
    return Sequential({"conv": Conv2d(c_in, c_out, k, bias=True, rng=rng, dtype=dtype, **kwargs), "relu": ReLU()})


def conv_bn(c_in, c_out, k, rng, dtype, *, stride=1, groups=1, relu=True):
    layers = {"conv": Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, rng=rng, dtype=dtype),
              "bn": BatchNorm2d(c_out, dtype=dtype)}
    if relu:
        layers["relu"] = ReLU()
    return Sequential(layers)


def round_up(value, multiple):
    """The smallest multiple of ``multiple`` that is at least ``value`` (an ``int``)."""
    return int(-(-value // multiple) * multiple)


