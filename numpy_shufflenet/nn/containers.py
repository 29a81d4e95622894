"""Containers: modules made of other modules.

* :class:`Sequential`: run children one after another (the network, a stage, a branch).
* :class:`Concat`: run branches side by side on the same input and concatenate their outputs (GoogLeNet's
  inception module, SqueezeNet's fire expansion, the stride-2 unit of paper Fig. 2 c).
* :class:`Residual`: the identity shortcut of ResNet, ``ReLU(x + branch(x))``, around any branch (the ResNet,
  ResNeXt and depthwise bottleneck units of :mod:`numpy_shufflenet.models.units`).
"""

import numpy as np

from .._checks import check_float_array
from .layers import ReLU
from .module import Module

__all__ = ["Sequential", "Concat", "Residual"]


class Sequential(Module):
    """Run modules one after another; backward runs them in reverse.

    ``Sequential(a, b, c)`` names its children ``"0"``, ``"1"``, ``"2"``; ``Sequential({"stem": a, "pool": b})``
    names them by the dict's keys, which are also attributes (``seq.stem``).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            names, modules = list(modules[0].keys()), list(modules[0].values())
        else:
            names = [str(i) for i in range(len(modules))]
        for name, m in zip(names, modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: expected Module arguments, got {type(m).__name__} for {name!r}")
        self.layers = list(modules)
        self.names = names
        for name, m in zip(names, modules):
            if not name.isdigit():
                setattr(self, name, m)

    def named_children(self):
        yield from zip(self.names, self.layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[self.names.index(i)] if isinstance(i, str) else self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def forward(self, x):
        self._cache = getattr(x, "shape", None)
        for m in self.layers:
            x = m.forward(x)
        return x

    def backward(self, dout, *, input_grad=True):
        """Every child's backward, last child first; ``input_grad`` goes to the first child, the one that read
        the input (the others must pass a gradient on)."""
        self._take_cache()
        if not self.layers:
            return dout if input_grad else None
        for m in reversed(self.layers[1:]):
            dout = m.backward(dout)
        return self.layers[0].backward(dout, input_grad=input_grad)

    def output_shape(self, input_shape):
        for m in self.layers:
            input_shape = m.output_shape(input_shape)
        return tuple(input_shape)

    def shape_trace(self, input_shape, prefix=""):
        for name, m in self.named_children():
            for row in m.shape_trace(input_shape, f"{prefix}.{name}" if prefix else name):
                yield row
            input_shape = m.output_shape(input_shape)


class Residual(Module):
    """A residual unit ``ReLU(x + branch(x))`` (ResNet's identity shortcut), or a plain one ``ReLU(branch(x))``.

    Parameters
    ----------
    branch : Module
        Must keep the shape of its input (same channels, same height and width) when ``shortcut`` is True.
    shortcut : bool, default True
        False drops the identity shortcut: the unit is then just ``branch`` followed by a ReLU (a "plain" unit,
        as in the plain networks the ResNet paper compares against).

    Notes
    -----
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

    def backward(self, dout, *, input_grad=True):
        self._take_cache()
        d = self.relu.backward(dout)
        dx = self.branch.backward(d, input_grad=input_grad)
        if not input_grad:
            return None
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


class Concat(Module):
    """Run several branches on the same input and concatenate their outputs along the channels.

    ``Concat(a, b)`` names its children "0", "1"; ``Concat({"shortcut": a, "branch": b})`` names them by the
    dict's keys, as :class:`~numpy_shufflenet.nn.Sequential` does. Every branch must keep the height and width
    it gives equal to the others'. It is GoogLeNet's inception module (four branches), SqueezeNet's fire
    expansion (two) and the stride-2 unit of paper Fig. 2 (c) (``[shortcut, branch]``).

    Shapes: ``(N, C, H, W) -> (N, C_0 + C_1 + ..., H', W')``. The backward pass cuts ``dout`` into the
    branches' channel blocks and *adds* what each branch sends back, since all of them read the same ``x``::

        dL/dx = sum_k branch_k.backward(dout[:, block k])
    """

    def __init__(self, *branches):
        super().__init__()
        if len(branches) == 1 and isinstance(branches[0], dict):
            names, branches = list(branches[0]), list(branches[0].values())
        else:
            names = [str(i) for i in range(len(branches))]
        if not branches:
            raise ValueError("Concat: expected at least one branch, got none")
        for name, branch in zip(names, branches):
            if not isinstance(branch, Module):
                raise TypeError(f"Concat: expected Module branches, got {type(branch).__name__} for {name!r}")
        self.names, self.branches = names, list(branches)
        for name, branch in zip(names, branches):
            if not name.isdigit():
                setattr(self, name, branch)

    def named_children(self):
        yield from zip(self.names, self.branches)

    def forward(self, x):
        check_float_array("Concat", "x", x, ndim=4)
        outs = [branch.forward(x) for branch in self.branches]
        if len({out.shape[2:] for out in outs}) > 1:
            raise ValueError(f"Concat: expected every branch to give the same height and width, got "
                             f"{[out.shape for out in outs]}")
        self._cache = [out.shape[1] for out in outs]
        return np.concatenate(outs, axis=1)

    def backward(self, dout, *, input_grad=True):
        channels = self._take_cache()
        if dout.ndim != 4 or dout.shape[1] != sum(channels):
            raise ValueError(f"Concat: expected dout with {sum(channels)} channels, got shape {dout.shape}")
        edges = np.cumsum([0] + channels)
        dxs = [branch.backward(dout[:, lo:hi], input_grad=input_grad)
               for branch, lo, hi in zip(self.branches, edges, edges[1:])]
        return sum(dxs) if input_grad else None

    def output_shape(self, input_shape):
        shapes = [tuple(branch.output_shape(input_shape)) for branch in self.branches]
        if len({s[1:] for s in shapes}) > 1:
            raise ValueError(f"Concat: expected every branch to give the same height and width, got {shapes}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def shape_trace(self, input_shape, prefix=""):
        for name, branch in self.named_children():
            yield from branch.shape_trace(input_shape, f"{prefix}.{name}" if prefix else name)


