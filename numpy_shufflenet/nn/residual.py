"""``Residual``: the identity shortcut of ResNet, ``ReLU(x + branch(x))``, around any branch.

The ResNet bottleneck unit, its ResNeXt and depthwise variants (:mod:`numpy_shufflenet.baselines`) and the stride-1
ShuffleNet unit all share this shape: a branch that keeps the input's shape, the input added back, one ReLU.
(:class:`~numpy_shufflenet.model.ShuffleUnit` spells the same addition out itself, beside its stride-2 form.)
"""

from .._checks import check_float_array
from .layers import ReLU
from .module import Module

__all__ = ["Residual"]


class Residual(Module):
    """A residual unit ``ReLU(x + branch(x))`` (ResNet's identity shortcut), or a plain one ``ReLU(branch(x))``.

    Parameters
    ----------
    branch : Module
        Must keep the shape of its input (same channels, same height and width) when ``shortcut`` is True.
    shortcut : bool, default True
        False drops the identity shortcut: the unit is then just ``branch`` followed by a ReLU (a "plain" unit,
        as in the plain networks the ResNet paper compares against).

    Children, in forward order: ``branch`` and ``relu``. The backward pass of the addition sends the upstream
    gradient down *both* paths and adds what comes back::

        dL/dx = d + branch.backward(d),   d = relu.backward(dL/dout)

    which is why a gradient cannot vanish through a stack of residual units: the ``d`` term always gets through.
    """

    def __init__(self, branch, *, shortcut=True):
        super().__init__()
        if not isinstance(branch, Module):
            raise TypeError(f"Residual: expected the branch to be a Module, got {type(branch).__name__}")
        self.branch = branch
        self.relu = ReLU()
        self.shortcut = bool(shortcut)

    def forward(self, x):
        check_float_array("Residual", "x", x, ndim=4)
        y = self.branch.forward(x)
        if self.shortcut:
            if y.shape != x.shape:
                raise ValueError(f"Residual: the branch must keep the input's shape for the identity shortcut, "
                                 f"got input {x.shape} and branch output {y.shape}")
            y = x + y
        self._cache = x.shape
        return self.relu.forward(y)

    def backward(self, dout):
        self._take_cache()
        d = self.relu.backward(dout)
        dx = self.branch.backward(d)
        return d + dx if self.shortcut else dx

    def output_shape(self, input_shape):
        out = tuple(self.branch.output_shape(input_shape))
        if self.shortcut and out != tuple(input_shape):
            raise ValueError(f"Residual: the branch must keep the input's shape for the identity shortcut, "
                             f"got input {tuple(input_shape)} and branch output {out}")
        return out

    def shape_trace(self, input_shape, prefix=""):
        prefix = prefix or "unit"
        yield from self.branch.shape_trace(input_shape, f"{prefix}.branch")
        yield from self.relu.shape_trace(self.output_shape(input_shape), f"{prefix}.relu")

    def extra_repr(self):
        return "" if self.shortcut else "shortcut=False"

    def __repr__(self):
        head = f"Residual({self.extra_repr()})" if self.shortcut else "Plain(shortcut=False)"
        return head + "\n" + "\n".join("  " + line for line in repr(self.branch).splitlines())
