"""Parameter and multiply-add counting, from layer hyper-parameters and propagated shapes (no forward pass).

What is counted (this docstring is the one place that says it; :func:`layer_macs` implements it):

* The unit is the **multiply-add** (MAC): ``a * b + c`` counts once. The paper calls its complexity "FLOPs, i.e.
  the number of floating-point multiplication-adds" (caption of its Table 1), so its "MFLOPs" are millions of
  these. :func:`count_multiply_adds` is the name that says so; :func:`count_flops` is the same function under
  the paper's word.
* Which layers: **convolutions and fully connected layers only**. Batch norm, ReLU, pooling, channel shuffle,
  concatenations and the residual additions count zero. The paper does not say which layers it counts; this
  is the maintainer's answer in the authors' repository (megvii-model/ShuffleNet-Series, issue 12, asked about
  ShuffleNet V2 from the same code base): "we compute FLOPs of all conv layers and fc layers", and not of batch
  norm, "as they are zero at inference time".
* With that rule, paper Table 1 matches the convolutions *without* the classifier (``include_fc=False``) for
  all five ``g``, while the released models (7 of 8) and the paper's Table 5 (1.5x, 2x) and Table 8 (0.5x, 2x)
  figures match convolutions *and* classifier (the default). Other figures are round labels (140 for every 1x
  network, 38 for Table 5's 0.5x g = 4, which counts 40.71 M); :mod:`numpy_shufflenet.paper.tables` checks them all.

For a convolution and a fully connected layer::

    MACs = C_out * H_out * W_out * (C_in / groups) * KH * KW        (convolution)
    MACs = in_features * out_features                              (fully connected)

A bias adds no multiply-add. Tools that report "FLOPs" as 2 x multiply-adds (TensorFlow's profiler, for one),
or that count batch norm and ReLU, give larger numbers for the same network; ``flops_per_mac=2`` gives the
former.
"""

import numbers

from ..nn import Conv2d, Linear


def layer_macs(module, input_shape, output_shape):
    """Multiply-adds of one leaf layer for one sample (0 for the layers the module docstring does not count)."""
    if isinstance(module, Conv2d):
        C_out, H_out, W_out = output_shape
        KH, KW = module.kernel_size
        return C_out * H_out * W_out * (module.in_channels // module.groups) * KH * KW
    if isinstance(module, Linear):
        return module.in_features * module.out_features
    return 0


def count_params(model):
    """Number of trainable numbers: convolution and FC weights and biases, batch-norm gamma and beta."""
    return int(sum(p.size for p in model.parameters()))


def _check_input_shape(input_shape):
    """``input_shape`` as a tuple of positive Python ints, or a clear error naming the argument."""
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__"):
        raise TypeError(f"count_multiply_adds: expected input_shape to be a tuple of positive integers such as "
                        f"(3, 224, 224), got {input_shape!r}")
    for size in input_shape:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"count_multiply_adds: expected input_shape to hold integers, "
                            f"got {tuple(input_shape)!r}")
        if size < 1:
            raise ValueError(f"count_multiply_adds: expected input_shape to hold positive sizes, "
                             f"got {tuple(input_shape)!r}")
    return tuple(int(size) for size in input_shape)


def count_multiply_adds(model, input_shape=(3, 224, 224), *, include_fc=True, flops_per_mac=1):
    """Multiply-adds of ``model`` for one input of ``input_shape = (C, H, W)`` (what is counted: module docstring).

    Parameters
    ----------
    model : any ``numpy_shufflenet.nn.Module`` (a ShuffleNet, a MobileNet built from the same layers, ...)
    input_shape : (C, H, W), positive integers
    include_fc : bool
        False counts the convolutions only (paper Table 1's complexity column matches that).
    flops_per_mac : 1 or 2
        2 reports FLOPs as two operations per multiply-add, as some tools do.

    Returns
    -------
    int
    """
    input_shape = _check_input_shape(input_shape)
    if isinstance(flops_per_mac, bool) or not isinstance(flops_per_mac, numbers.Integral):
        raise TypeError(f"count_multiply_adds: expected flops_per_mac to be the integer 1 or 2, "
                        f"got {flops_per_mac!r}")
    if flops_per_mac not in (1, 2):
        raise ValueError(f"count_multiply_adds: expected flops_per_mac 1 or 2, got {flops_per_mac!r}")
    total = 0
    for _, module, in_shape, out_shape in model.shape_trace(input_shape):
        if include_fc or not isinstance(module, Linear):
            total += layer_macs(module, in_shape, out_shape)
    return int(total * flops_per_mac)


count_flops = count_multiply_adds       # the paper's word for the same count


def count_layers(model, kinds=(Conv2d, Linear)):
    """Number of layers with weights (convolutions and FC, by default) in ``model``: the paper's "layers".

    Paper Sec. 4.3 counts ShuffleNet's depth so: 50 layers (the stem, 16 units of three convolutions, the FC),
    against MobileNet's 28 (the stem, 13 depthwise separable blocks of two, the FC).
    """
    return sum(1 for _, module in model.named_modules() if isinstance(module, kinds))


def summary_rows(model, input_shape=(3, 224, 224), depth=None):
    """``(name, layer, output_shape, params, macs)`` per leaf layer, or per block when ``depth`` is set:
    ``depth=2`` sums ``stage2.0.branch.conv1``, ``stage2.0.branch.bn1``, ... into one row ``stage2.0``."""
    rows = []
    for name, module, in_shape, out_shape in model.shape_trace(tuple(input_shape)):
        params = sum(p.size for _, p in module.named_parameters())
        macs = layer_macs(module, in_shape, out_shape)
        if depth is not None:
            name = ".".join(name.split(".")[:depth])
            if rows and rows[-1][0] == name:                    # same block: add up, keep the last shape
                _, layers, _, p0, m0 = rows[-1]
                rows[-1] = (name, layers + [module], out_shape, p0 + params, m0 + macs)
                continue
        rows.append((name, [module], out_shape, params, macs))
    return [(n, type(ms[0]).__name__ if len(ms) == 1 else f"{len(ms)} layers", s, p, m) for n, ms, s, p, m in rows]


def summary(model, input_shape=(3, 224, 224), depth=None):
    """A per-layer table: name, layer type, output shape, parameters and multiply-adds, with totals.

    The totals equal :func:`count_params` and :func:`count_multiply_adds` (``include_fc=True``).
    """
    rows = summary_rows(model, input_shape, depth)
    header = f"{'layer':<28s} {'type':<16s} {'output shape':<16s} {'params':>11s} {'mult-adds':>14s}"
    lines = [header, "-" * len(header)]
    for name, label, out_shape, params, macs in rows:
        lines.append(f"{name:<28s} {label:<16s} {str(tuple(out_shape)):<16s} {params:>11,d} {macs:>14,d}")
    total_params = sum(r[3] for r in rows)
    total_macs = sum(r[4] for r in rows)
    lines += ["-" * len(header),
              f"{'total':<28s} {'':<16s} {'':<16s} {total_params:>11,d} {total_macs:>14,d}",
              f"input {tuple(input_shape)}: {total_params / 1e6:.3f} M parameters, "
              f"{total_macs / 1e6:.2f} M multiply-adds (convolutions and FC only)"]
    return "\n".join(lines)
