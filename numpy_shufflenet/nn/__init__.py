"""Modules holding parameters: thin wrappers that call the active kernel pairs (:func:`numpy_shufflenet.use_kernels`).

* :mod:`.module`: ``Parameter`` and ``Module`` (forward, backward, parameters, state dicts, train/eval).
* :mod:`.layers`: one module per layer of the paper (``Conv2d``, ``BatchNorm2d``, ``ChannelShuffle``, ``ReLU``,
  the pooling layers, ``Flatten``, ``Linear``), and ``BatchNormReLU2d``, ``AddReLU``, ``ConcatReLU`` for the
  places where two of them always run together (the fused pairs of the kernel contract).
* :mod:`.containers`: ``Sequential``, ``Concat`` and ``Residual``, modules made of modules.
* :mod:`.readout`: ``GroupReadout``, a classifier that reads one group of channels.
"""

from .containers import Concat, Residual, Sequential
from .layers import (AddReLU, AvgPool2d, BatchNorm2d, BatchNormReLU2d, CeilMaxPool2d, ChannelShuffle, ConcatReLU,
                     Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU)
from .module import Module, Parameter
from .readout import GroupReadout

__all__ = ["Parameter", "Module", "Sequential", "Concat", "Residual", "Conv2d", "BatchNorm2d", "BatchNormReLU2d",
           "ChannelShuffle", "ReLU", "AddReLU", "ConcatReLU", "MaxPool2d", "CeilMaxPool2d", "AvgPool2d",
           "GlobalAvgPool2d", "Flatten", "Linear", "GroupReadout"]
