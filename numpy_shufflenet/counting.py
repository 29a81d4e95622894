"""Parameter and multiply-add counting, from layer hyper-parameters and propagated shapes (no forward pass).

The convention, the paper's (and defined here only, in :func:`layer_macs`): the complexity of a network is the
number of **multiply-adds of its convolutions and fully connected layers**. Batch norm, ReLU, pooling, channel
shuffle and the residual additions are not counted. For a convolution::

    MACs = C_out * H_out * W_out * (C_in / groups) * KH * KW

Tools that report "FLOPs" as 2 x multiply-adds, or that count batch norm, give larger numbers for the same
network; ``flops_per_mac=2`` gives the former.
"""

from .nn import Conv2d, Linear


def layer_macs(module, input_shape, output_shape):
    """Multiply-adds of one leaf layer for one sample (0 for layers the convention does not count)."""
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


def count_flops(model, input_shape=(3, 224, 224), *, include_fc=True, flops_per_mac=1):
    """Multiply-adds of ``model`` for one input of ``input_shape = (C, H, W)``, the paper's convention.

    Parameters
    ----------
    model : any ``numpy_shufflenet.nn.Module`` (a ShuffleNet, a MobileNet built from the same layers, ...)
    input_shape : (C, H, W)
    include_fc : bool
        False counts the convolutions only (paper Table 1's complexity column matches that).
    flops_per_mac : 1 or 2
        2 reports FLOPs as two operations per multiply-add, as some tools do.
    """
    total = 0
    for _, module, in_shape, out_shape in model.shape_trace(tuple(input_shape)):
        if include_fc or not isinstance(module, Linear):
            total += layer_macs(module, in_shape, out_shape)
    return int(total * flops_per_mac)


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

    The totals equal :func:`count_params` and :func:`count_flops` (``include_fc=True``).
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
