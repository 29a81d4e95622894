"""Block diagrams of residual units that are not ``ShuffleUnit``s: paper Fig. 2 (a), and any other
:class:`~numpy_shufflenet.nn.Residual` (a ResNet or ResNeXt bottleneck unit, say).

:func:`~numpy_shufflenet.plotting.plot_unit_diagram` draws Fig. 2 (b) and (c) from a ``ShuffleUnit``;
:func:`plot_residual_diagram` draws the same kind of picture from a ``Residual``'s own list of layers, with the
same boxes and colours, so (a), (b) and (c) can be compared side by side.
"""

import matplotlib.pyplot as plt

from .nn import Conv2d, Residual
from .plotting import _arrow, _box, layer_label

__all__ = ["plot_residual_diagram"]


def plot_residual_diagram(unit, *, title="Bottleneck unit with depthwise convolution (paper Fig. 2 a)",
                          figsize=None):
    """The block diagram of a residual unit ``ReLU(x + branch(x))``, read from ``unit.branch``.

    Parameters
    ----------
    unit : Residual
        With the identity shortcut (``shortcut=True``); its branch's convolutions give the channel counts.
    title : str, the first line of the title (the second gives the channels)
    figsize : (width, height) in inches, optional

    Returns
    -------
    matplotlib.figure.Figure
        Boxes are ``FancyBboxPatch`` with gids ``"box:branch.<name>"``, ``"box:add"`` and ``"box:relu"``.
    """
    if not isinstance(unit, Residual) or not unit.shortcut:
        raise TypeError(f"plot_residual_diagram: expected a Residual with its identity shortcut, got "
                        f"{type(unit).__name__}" + ("" if not isinstance(unit, Residual) else " without it"))
    children = list(unit.branch.named_children())
    convs = [m for _, m in children if isinstance(m, Conv2d)]
    channels = convs[0].in_channels if convs else None
    n = len(children)
    fig, ax = plt.subplots(figsize=figsize or (6.4, 0.62 * (n + 4) + 1.0))
    x_branch, x_short = 0.62, 0.18
    y_in, y_merge = 0.0, -(n + 1)
    y_relu, y_out = y_merge - 1, y_merge - 2
    where = f" ({channels} channels)" if channels else ""

    ax.text(x_branch, y_in, "input" + where, ha="center", va="center", fontsize=10)
    y_split = y_in - 0.45
    ax.plot([x_branch, x_short, x_short], [y_split, y_split, y_merge], color="0.2", linewidth=1.1, zorder=1)
    _arrow(ax, (x_short, y_merge), (x_branch - 0.23, y_merge))
    ax.plot(x_branch, y_split, "o", color="0.2", markersize=4)

    y_prev = y_in - 0.3
    for i, (name, module) in enumerate(children, start=1):
        label, kind = layer_label(module)
        side = f"{module.in_channels} \u2192 {module.out_channels} ch" if isinstance(module, Conv2d) else None
        _arrow(ax, (x_branch, y_prev), (x_branch, -i + 0.31))
        _box(ax, x_branch, -i, label, kind, gid=f"box:branch.{name}", side=side)
        y_prev = -i - 0.31

    _arrow(ax, (x_branch, y_prev), (x_branch, y_merge + 0.31))
    _box(ax, x_branch, y_merge, "Add", "merge", gid="box:add")
    _arrow(ax, (x_branch, y_merge - 0.31), (x_branch, y_relu + 0.31))
    _box(ax, x_branch, y_relu, layer_label(unit.relu)[0], "relu", gid="box:relu")
    _arrow(ax, (x_branch, y_relu - 0.31), (x_branch, y_out + 0.2))
    ax.text(x_branch, y_out, "output" + where, ha="center", va="center", fontsize=10)

    ax.set_title(f"{title}\nidentity shortcut, {channels} \u2192 {channels} channels", fontsize=11)
    ax.set_xlim(0, 1.12)
    ax.set_ylim(y_out - 0.5, y_in + 0.5)
    ax.set_axis_off()
    fig.tight_layout()
    return fig
