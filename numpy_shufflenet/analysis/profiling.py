"""Wall-clock time of every layer, beside its multiply-adds: FLOPs are not time.

The paper counts complexity in multiply-adds of convolutions and FC layers (:mod:`numpy_shufflenet.analysis.counting`),
and Table 8 then reports that a 4x smaller count gave only about a 2.6x faster network on a phone. The layers the
count calls free (batch norm, ReLU, channel shuffle, pooling, the residual additions) still read and write
every element of their input, and a depthwise convolution does 9 multiply-adds per element it reads, far too
few to keep a processor busy. This module measures where the time really goes, on a real forward and backward
pass of a model:

* :func:`time_layers`: forward and backward seconds of every leaf layer, plus the "other" time spent outside
  the leaves (ShuffleNet's residual additions and concatenations, and the Python of the containers);
* :func:`layer_kind` and :func:`by_kind`: the same, added up by kind of layer ("1x1 group conv",
  "depthwise conv", "batch norm", ...), with each kind's share of the time and of the multiply-adds
  (:func:`time_by_kind` does both and returns plain dicts);
* :func:`time_forward_backward`: the whole model's forward and backward time, without instrumentation;
  :func:`time_models` the same for several models, measured in turns so that their ratios survive a busy
  machine.

Timings are medians over ``repeat`` passes after one warm-up pass, taken with ``time.perf_counter``
(``statistic="min"`` keeps the fastest pass instead, as Python's ``timeit`` advises: a slower pass is slower
because something else disturbed it, which on a busy machine can be most passes). They are measurements on a
shared machine: compare them in ratios and shares, not to the digit.
"""

import dataclasses
import time

import numpy as np

from .counting import layer_macs
from ..functional.depthwise import is_depthwise
from ..functional import softmax_cross_entropy
from ..nn.module import parameter_gradients
from ..nn import AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d, Module, ReLU

__all__ = ["LayerTiming", "LayerTimes", "KindTiming", "KINDS", "layer_kind", "time_layers", "by_kind",
           "time_by_kind", "time_forward_backward", "time_models"]

# Kinds of layer, in the order tables list them; "other" is the time outside every leaf layer.
KINDS = ("dense conv", "grouped conv", "1x1 conv", "1x1 group conv", "depthwise conv", "FC", "batch norm", "ReLU",
         "channel shuffle", "pooling", "other")


def layer_kind(module):
    """The kind of a leaf layer, one of :data:`KINDS` (except "other").

    Convolutions are told apart by their hyper-parameters: "depthwise conv" (``groups == in_channels ==
    out_channels > 1``), "1x1 group conv" / "1x1 conv" (a 1x1 kernel with / without groups), "grouped conv"
    (a larger kernel with groups, as in ResNeXt) and "dense conv" (a larger kernel, no groups: ShuffleNet's
    stem). Max, average and global average pooling are all "pooling". A batch norm with its ReLU
    (``BatchNormReLU2d``, one kernel) is "batch norm"; a unit's end, ``relu(x + y)`` or ``relu(concat)``
    (``AddReLU``, ``ConcatReLU``), is "ReLU".
    """
    if isinstance(module, Conv2d):
        g = module.groups
        if is_depthwise(module.in_channels, module.out_channels, g):
            return "depthwise conv"
        if module.kernel_size == (1, 1):
            return "1x1 group conv" if g > 1 else "1x1 conv"
        return "grouped conv" if g > 1 else "dense conv"
    if isinstance(module, Linear):
        return "FC"
    if isinstance(module, BatchNorm2d):
        return "batch norm"
    if isinstance(module, ReLU):
        return "ReLU"
    if isinstance(module, ChannelShuffle):
        return "channel shuffle"
    if isinstance(module, (MaxPool2d, AvgPool2d, GlobalAvgPool2d)):
        return "pooling"
    raise TypeError(f"layer_kind: expected a leaf layer of numpy_shufflenet.nn, got {type(module).__name__}")


@dataclasses.dataclass(frozen=True)
class LayerTiming:
    """One leaf layer: dotted ``name``, layer ``type`` (class name), ``kind`` (:func:`layer_kind`), multiply-adds
    per input sample (``macs``, as :func:`~numpy_shufflenet.analysis.counting.layer_macs`) and median seconds of its
    ``forward`` and ``backward`` over the whole batch."""

    name: str
    type: str
    kind: str
    macs: int
    forward: float
    backward: float

    @property
    def total(self):
        return self.forward + self.backward


@dataclasses.dataclass(frozen=True)
class LayerTimes:
    """What :func:`time_layers` measured.

    ``rows`` holds one :class:`LayerTiming` per leaf layer, in forward order (iterating over a ``LayerTimes``
    iterates over them). ``other_forward`` / ``other_backward`` are the median (or, with ``statistic="min"``,
    the smallest) time spent inside the model but
    outside every leaf layer (the residual additions and concatenations of ShuffleNet units, the Python loops
    of containers); ``total_forward`` / ``total_backward`` are the leaves' medians plus that, so that the rows
    and "other" add up to the total exactly. ``measured_forward`` / ``measured_backward`` are the medians of
    the whole passes as timed (close to the totals; medians do not add up exactly). ``batch`` is the batch size,
    ``repeat`` the number of timed passes and ``statistic`` "median" or "min".
    """

    rows: list
    other_forward: float
    other_backward: float
    measured_forward: float
    measured_backward: float
    batch: int
    repeat: int
    statistic: str = "median"

    @property
    def total_forward(self):
        return sum(r.forward for r in self.rows) + self.other_forward

    @property
    def total_backward(self):
        return sum(r.backward for r in self.rows) + self.other_backward

    @property
    def total(self):
        return self.total_forward + self.total_backward

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)


_MISSING = object()
_STATISTICS = {"median": np.median, "min": np.min}


def _statistic(name, statistic):
    if statistic not in _STATISTICS:
        raise ValueError(f"{name}: expected statistic 'median' or 'min', got {statistic!r}")
    return _STATISTICS[statistic]


def _leaf_layers(model, input_shape):
    """``(name, module, macs)`` of every leaf layer, from the model's shape trace (no forward pass)."""
    leaves = []
    for name, module, in_shape, out_shape in model.shape_trace(tuple(input_shape)):
        leaves.append((name, module, layer_macs(module, in_shape, out_shape)))
    ids = [id(m) for _, m, _ in leaves]
    if len(set(ids)) != len(ids):
        raise ValueError("time_layers: a layer object appears twice in the model; its calls could not be told apart")
    return leaves


def _timed(method, slot):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            slot[0] += time.perf_counter() - start
    return wrapper


def _save_buffers(model):
    return [(module, name, getattr(module, name).copy()) for _, module, name in model.named_buffers()]


def _restore_buffers(saved):
    for module, name, value in saved:
        getattr(module, name)[...] = value


def _upstream(out, dout):
    if dout is None:
        return np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
    if dout.shape != out.shape:
        raise ValueError(f"expected dout of the model output's shape {out.shape}, got {dout.shape}")
    return dout


def _one_pass(model, x, dout, input_grad=True):
    """Seconds of one forward and one backward pass (the upstream gradient is made outside the timing)."""
    backward = model.backward if input_grad else parameter_gradients(model)
    start = time.perf_counter()
    out = model.forward(x)
    forward = time.perf_counter() - start
    d = _upstream(out, dout)
    start = time.perf_counter()
    backward(d)
    return forward, time.perf_counter() - start


def time_layers(model, x, repeat=3, *, dout=None, statistic="median", input_grad=True):
    """Time the forward and backward pass of every leaf layer of ``model`` on the batch ``x``.

    Each leaf layer's ``forward`` and ``backward`` are wrapped, on the instance only, by a timer; the model then
    runs one warm-up forward and backward pass and ``repeat`` timed ones, and every wrapper is removed again
    (also when a pass fails). Batch-norm running statistics, which a training-mode pass updates, are restored
    afterwards; the parameters' ``.grad`` are those of the last pass.

    Parameters
    ----------
    model : Module
        Any model built from :mod:`numpy_shufflenet.nn` (ShuffleNet, a baseline, a single unit).
    x : ndarray, the input batch ``(N, C, H, W)``
    repeat : int, default 3, the number of timed passes (medians are reported)
    dout : ndarray, optional
        The upstream gradient of the output; a fixed random one when omitted.
    statistic : "median" (default) or "min"
        How the ``repeat`` timings of each layer (and of "other") are summarised.
    input_grad : bool, default True
        False times a training step's backward pass, which needs no gradient of ``x``: ``backward(dout,
        input_grad=False)`` (:func:`~numpy_shufflenet.nn.module.parameter_gradients`; ShuffleNet's stem then
        skips its image gradient).

    Returns
    -------
    LayerTimes
        ``rows`` of :class:`LayerTiming` (name, type, kind, multiply-adds per sample, forward and backward
        seconds), and the "other" time outside the leaves.
    """
    if not isinstance(model, Module):
        raise TypeError(f"time_layers: expected a Module, got {type(model).__name__}")
    if not isinstance(x, np.ndarray) or x.ndim < 2:
        raise ValueError(f"time_layers: expected a batch of inputs (N, C, H, W), got {getattr(x, 'shape', x)!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"time_layers: expected repeat to be a positive integer, got {repeat!r}")
    stat = _statistic("time_layers", statistic)
    leaves = _leaf_layers(model, x.shape[1:])
    slots = [([0.0], [0.0]) for _ in leaves]
    saved = _save_buffers(model)
    patched = []                                        # (module, attribute, what its __dict__ held before)
    try:
        for (_, module, _), (fwd_slot, bwd_slot) in zip(leaves, slots):
            for attr, slot in (("forward", fwd_slot), ("backward", bwd_slot)):
                patched.append((module, attr, module.__dict__.get(attr, _MISSING)))
                setattr(module, attr, _timed(getattr(module, attr), slot))
        fwd = np.zeros((repeat, len(leaves)))
        bwd = np.zeros((repeat, len(leaves)))
        whole = np.zeros((repeat, 2))
        for r in range(-1, repeat):                     # r = -1 is the warm-up pass
            for fwd_slot, bwd_slot in slots:
                fwd_slot[0] = bwd_slot[0] = 0.0
            seconds = _one_pass(model, x, dout, input_grad)
            if r >= 0:
                whole[r] = seconds
                fwd[r] = [s[0][0] for s in slots]
                bwd[r] = [s[1][0] for s in slots]
    finally:
        for module, attr, before in reversed(patched):
            if before is _MISSING:
                del module.__dict__[attr]
            else:
                module.__dict__[attr] = before
        _restore_buffers(saved)
    # "other" per pass is what the pass took beyond its leaves (never negative: the leaves' calls are disjoint
    # stretches of the pass); then the statistic (median or min) of everything.
    other_fwd = stat(whole[:, 0] - fwd.sum(axis=1))
    other_bwd = stat(whole[:, 1] - bwd.sum(axis=1))
    med_fwd, med_bwd = stat(fwd, axis=0), stat(bwd, axis=0)
    rows = [LayerTiming(name, type(module).__name__, layer_kind(module), int(macs), float(f), float(b))
            for (name, module, macs), f, b in zip(leaves, med_fwd, med_bwd)]
    return LayerTimes(rows, float(other_fwd), float(other_bwd),
                      float(stat(whole[:, 0])), float(stat(whole[:, 1])), int(x.shape[0]), repeat, statistic)


@dataclasses.dataclass(frozen=True)
class KindTiming:
    """One kind of layer, summed: how many layers, their multiply-adds per sample, forward and backward seconds,
    and the kind's share (0 to 1) of all multiply-adds and of the total time (forward + backward)."""

    kind: str
    layers: int
    macs: int
    forward: float
    backward: float
    mac_share: float
    time_share: float

    @property
    def total(self):
        return self.forward + self.backward


def by_kind(times):
    """Add up a :func:`time_layers` result by kind of layer (:data:`KINDS` order, kinds absent from the model
    left out), with an "other" row for the time outside the leaves (ShuffleNet's residual add and concat).

    Returns
    -------
    list of KindTiming; their ``time_share`` add up to 1, and so do their ``mac_share``.
    """
    if not isinstance(times, LayerTimes):
        raise TypeError(f"by_kind: expected the LayerTimes of time_layers, got {type(times).__name__}")
    total_time = times.total
    total_macs = sum(r.macs for r in times.rows)
    out = []
    for kind in KINDS:
        if kind == "other":
            rows_f, rows_b, n, macs = times.other_forward, times.other_backward, 0, 0
        else:
            rows = [r for r in times.rows if r.kind == kind]
            if not rows:
                continue
            rows_f, rows_b = sum(r.forward for r in rows), sum(r.backward for r in rows)
            n, macs = len(rows), sum(r.macs for r in rows)
        out.append(KindTiming(kind, n, macs, rows_f, rows_b, macs / total_macs if total_macs else 0.0,
                              (rows_f + rows_b) / total_time if total_time else 0.0))
    return out


def time_by_kind(model, x, labels=None, repeat=3, *, statistic="median"):
    """:func:`time_layers` then :func:`by_kind`, as plain dicts (ready for JSON): one per kind of layer, with keys
    ``kind``, ``layers``, ``macs``, ``forward``, ``backward``, ``seconds`` (forward + backward), ``mac_share`` and
    ``time_share``.

    With integer class ``labels`` the backward pass starts from the gradient of the softmax cross-entropy loss
    of the model's output (a training step); without, from a fixed random gradient. The values of that gradient
    do not change the timings. Batch-norm running statistics are restored afterwards.
    """
    dout = None
    if labels is not None:
        saved = _save_buffers(model)
        try:
            _, dout = softmax_cross_entropy(model.forward(x), labels)
        finally:
            _restore_buffers(saved)
    kinds = by_kind(time_layers(model, x, repeat, dout=dout, statistic=statistic))
    return [{"kind": k.kind, "layers": k.layers, "macs": k.macs, "forward": k.forward, "backward": k.backward,
             "seconds": k.total, "mac_share": k.mac_share, "time_share": k.time_share} for k in kinds]


def time_forward_backward(model, x, repeat=3, *, dout=None, statistic="median"):
    """Median (or ``statistic="min"``: smallest) seconds of ``model``'s whole forward pass and backward pass on
    ``x`` (one warm-up pass first, no per-layer instrumentation). Batch-norm running statistics are restored
    afterwards.

    Returns
    -------
    (forward_seconds, backward_seconds)
    """
    return time_models([model], x, repeat, dout=dout, statistic=statistic)[0]


def time_models(models, x, repeat=5, *, dout=None, statistic="median"):
    """Median forward and backward seconds of several models on the same input, measured **interleaved**.

    After one warm-up pass of each model, every round runs each model once, in turn, ``repeat`` rounds in all.
    Interleaving matters on a busy machine: a burst of load from another program then slows every model's
    passes alike, instead of ruining all the passes of whichever model happened to be running, so *ratios* of
    the times stay meaningful. Batch-norm running statistics are restored afterwards.

    Parameters
    ----------
    models : sequence of Module
    x : ndarray, the input batch, the same for every model
    repeat : int, default 5, rounds (medians are reported)
    dout : ndarray, optional
        The upstream gradient of every model's output (they must then share an output shape); a fixed random
        one when omitted.
    statistic : "median" (default) or "min", how each model's ``repeat`` timings are summarised

    Returns
    -------
    list of (forward_seconds, backward_seconds), one per model, in order
    """
    models = list(models)
    if not models or not all(isinstance(m, Module) for m in models):
        raise TypeError("time_models: expected a non-empty sequence of Modules")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"time_models: expected repeat to be a positive integer, got {repeat!r}")
    stat = _statistic("time_models", statistic)
    saved = [_save_buffers(m) for m in models]
    fwd = np.zeros((repeat, len(models)))
    bwd = np.zeros((repeat, len(models)))
    try:
        for r in range(-1, repeat):                     # r = -1 is the warm-up round
            for i, model in enumerate(models):
                seconds = _one_pass(model, x, dout)
                if r >= 0:
                    fwd[r, i], bwd[r, i] = seconds
    finally:
        for s in saved:
            _restore_buffers(s)
    return [(float(f), float(b)) for f, b in zip(stat(fwd, axis=0), stat(bwd, axis=0))]
