"""Looking at a network without training it: what it costs, how its channels connect, where its time goes.

* :mod:`.counting`: parameters and multiply-adds (the paper's "FLOPs"), a per-layer ``summary``.
* :mod:`.flow`: boolean channel-connectivity matrices of group convolutions, shuffles and whole units.
* :mod:`.profiling`: per-layer forward and backward times, grouped by kind of layer.
* :mod:`.plotting`: the figures (matplotlib, imported on demand: ``from numpy_shufflenet.analysis import plotting``).
"""

from . import counting, flow, profiling
from .counting import count_flops, count_layers, count_multiply_adds, count_params, summary, summary_rows

__all__ = ["counting", "flow", "profiling", "count_params", "count_flops", "count_multiply_adds", "count_layers",
           "summary", "summary_rows"]
