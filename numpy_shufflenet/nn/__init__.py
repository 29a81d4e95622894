"""Modules holding parameters, built on :mod:`numpy_shufflenet.functional`."""

from .layers import (AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d,
                     ReLU)
from .module import Module, Parameter, Sequential
from .readout import GroupReadout
from .residual import Residual

__all__ = ["Parameter", "Module", "Sequential", "Conv2d", "BatchNorm2d", "ChannelShuffle", "ReLU", "MaxPool2d",
           "AvgPool2d", "GlobalAvgPool2d", "Flatten", "Linear", "GroupReadout", "Residual"]
