"""``GroupReadout``: keep the channels of one group and drop the others.

A classifier that reads only one output group of a stack of group convolutions sees exactly the input channels
that group is connected to, which makes information flow (or its absence) trainable: see
:func:`numpy_shufflenet.paper.experiments.information_flow_model`.
"""

import numpy as np

from .._checks import check_int
from .module import Module


class GroupReadout(Module):
    """Keep only the channels of one group: ``(N, C, H, W) -> (N, C // groups, H, W)``.

    Forward is the slice ``x[:, group * C_g:(group + 1) * C_g]`` with ``C_g = C // groups``; backward puts
    ``dout`` back in that slice of a zero gradient (the dropped channels get no gradient).
    """

    def __init__(self, group, groups):
        super().__init__()
        self.groups = check_int("GroupReadout", "groups", groups, 1)
        self.group = check_int("GroupReadout", "group", group, 0)
        if self.group >= self.groups:
            raise ValueError(f"GroupReadout: expected group in [0, {self.groups}), got {group}")

    def _slice(self, channels):
        if channels % self.groups:
            raise ValueError(f"GroupReadout: expected channels divisible by groups={self.groups}, got {channels}")
        n = channels // self.groups
        return slice(self.group * n, (self.group + 1) * n)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ValueError(f"GroupReadout: expected x to be a 4-D (N, C, H, W) array, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        channels = self._slice(x.shape[1])
        self._cache = x.shape
        return x[:, channels]

    def backward(self, dout, *, input_grad=True):
        x_shape = self._take_cache()
        if not input_grad:
            return None
        dx = np.zeros(x_shape, dtype=dout.dtype)
        dx[:, self._slice(x_shape[1])] = dout
        return dx

    def output_shape(self, input_shape):
        return (input_shape[0] // self.groups,) + tuple(input_shape[1:])

    def extra_repr(self):
        return f"group={self.group}, groups={self.groups}"
