"""Pictures of the paper's ideas, drawn from the layers themselves (matplotlib only).

* :func:`plot_group_conv_flow`: paper Fig. 1, two stacked group convolutions without and with a channel shuffle.
* :func:`plot_connectivity`: connectivity matrices (:mod:`numpy_shufflenet.analysis.flow`) as heat maps, side by side.
* :func:`plot_unit_diagram`: paper Fig. 2 (b) / (c), the block diagram of a :class:`~numpy_shufflenet.models.ShuffleUnit`
  read from its own list of layers.
* :func:`plot_history`: a training run's loss per step and accuracy per epoch
  (:func:`~numpy_shufflenet.training.loop.fit`'s history).

Every function returns the ``matplotlib.figure.Figure`` and never calls ``plt.show()``: in a notebook the figure
shows itself, in a script call ``fig.savefig("name.png")``. Close figures you no longer need with
``plt.close(fig)``.

Drawn objects carry a ``gid`` so that a program (or a test) can find them again: ``"edges:<panel>:<layer>"``
for the lines of one connection layer in Fig. 1, ``"nodes:<panel>:<row>"`` for its channels,
``"connectivity:<title>"`` for a heat map, ``"box:<name>"`` for a box of the unit diagram.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Rectangle

from . import flow
from ..nn import AvgPool2d, BatchNorm2d, BatchNormReLU2d, ChannelShuffle, Conv2d, MaxPool2d, ReLU, Residual

__all__ = ["group_colors", "plot_group_conv_flow", "plot_connectivity", "layer_label", "plot_unit_diagram",
           "plot_residual_diagram", "plot_history"]

# Red, green, blue as in the paper's Fig. 1, then more distinct colours for more groups.
GROUP_COLORS = ["#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                "#bcbd22", "#7f7f7f"]


def group_colors(groups):
    """One colour per group (the paper's red, green, blue first), as a list of ``groups`` colour strings."""
    return [GROUP_COLORS[j % len(GROUP_COLORS)] for j in range(groups)]


# ----------------------------------------------------------------------------------------------------------------
# Fig. 1: channels as nodes, connections as edges
# ----------------------------------------------------------------------------------------------------------------
def _channel_x(channels, groups, gap=0.8):
    """x position of every channel: one unit apart, with a ``gap`` between groups."""
    return np.arange(channels) + gap * flow.channel_groups(channels, groups)


def _draw_nodes(ax, x, y, seen, colors, gid, size=110):
    """Channels as square scatter points; a channel that sees several input groups is a stack of small squares,
    one per group it sees, in that group's colour."""
    xs, ys, cs, ss = [], [], [], []
    for xc, groups_here in zip(x, seen):
        k = len(groups_here)
        offsets = ((k - 1) / 2 - np.arange(k)) * 0.11 if k > 1 else [0.0]       # first group on top
        for j, dy in zip(groups_here, offsets):
            xs.append(xc), ys.append(y + dy), cs.append(colors[j]), ss.append(size if k == 1 else size / k)
    return ax.scatter(xs, ys, s=ss, c=cs, marker="s", edgecolors="black", linewidths=0.6, zorder=3, gid=gid)


def _draw_edges(ax, M, x_in, y_in, x_out, y_out, source_groups, colors, gid, label):
    """One line per True entry of ``M[out, in]``, from input node ``in`` (row above) to output node ``out``,
    coloured by the input group the source channel carries. Returns the ``LineCollection``."""
    outs, ins = np.nonzero(M)
    segments = [((x_in[i], y_in), (x_out[o], y_out)) for o, i in zip(outs, ins)]
    edge_colors = [colors[source_groups[i]] for i in ins]
    lines = LineCollection(segments, colors=edge_colors, linewidths=0.9, alpha=0.55, zorder=2, gid=gid,
                           label=label)
    ax.add_collection(lines)
    return lines


def _draw_group_boxes(ax, x, groups, y_top, y_bottom):
    """Light boxes behind the edges of a group convolution, one per group (the paper's GConv boxes)."""
    g_of = flow.channel_groups(len(x), groups)
    for j in range(groups):
        xs = x[g_of == j]
        ax.add_patch(Rectangle((xs.min() - 0.45, y_bottom + 0.18), xs.max() - xs.min() + 0.9,
                               y_top - y_bottom - 0.36, facecolor="0.93", edgecolor="0.75", linewidth=0.8,
                               zorder=1))


def _seen_sets(M, groups):
    """For each output channel (row of ``M``), the sorted list of input groups it sees."""
    g_of = flow.channel_groups(M.shape[1], groups)
    return [sorted(set(g_of[np.nonzero(row)[0]])) for row in M]


def _flow_panel(ax, title, rows, layers, channels, groups, colors):
    """Draw one panel: ``rows`` = [(name, y)], ``layers`` = [(name, M, kind)] between consecutive rows."""
    x = _channel_x(channels, groups)
    total = flow.identity_matrix(channels)                  # what each node of the current row sees of the input
    source_groups = flow.channel_groups(channels, groups)   # the input group a node carries (first one it sees)
    _draw_nodes(ax, x, rows[0][1], _seen_sets(total, groups), colors, gid=f"nodes:{title}:{rows[0][0]}")
    for (row_name, y), (layer_name, M, kind), (_, y_prev) in zip(rows[1:], layers, rows[:-1]):
        if kind == "gconv":
            _draw_group_boxes(ax, x, groups, y_prev, y)
        _draw_edges(ax, M, x, y_prev, x, y, source_groups, colors, gid=f"edges:{title}:{layer_name}",
                    label=layer_name)
        ax.text(x.min() - 1.0, (y_prev + y) / 2, layer_name, ha="right", va="center", fontsize=9,
                style="italic", color="0.25")
        total = flow.compose(total, M)
        seen = _seen_sets(total, groups)
        source_groups = np.array([s[0] for s in seen])
        _draw_nodes(ax, x, y, seen, colors, gid=f"nodes:{title}:{row_name}")
    for row_name, y in rows:
        ax.text(x.max() + 1.0, y, row_name, ha="left", va="center", fontsize=9, color="0.15")
    n_seen = flow.groups_seen(total, groups)
    seen_text = (f"every output sees {n_seen.min()} of {groups} input groups" if n_seen.min() == n_seen.max()
                 else f"outputs see {n_seen.min()} to {n_seen.max()} of {groups} input groups")
    ax.set_title(f"{title}\n{seen_text}", fontsize=10)
    ax.set_xlim(x.min() - 5.0, x.max() + 5.5)
    ax.set_ylim(min(y for _, y in rows) - 0.5, 0.5)
    ax.set_axis_off()


def plot_group_conv_flow(channels=12, groups=3, *, order="paper", figsize=None):
    """Paper Fig. 1 rebuilt from the layers: two stacked group convolutions, without and with a channel shuffle.

    Three panels, input at the top, output at the bottom; channels are square nodes coloured by the input
    group they carry (a node that sees several groups is a stack of small squares, one per group); every True
    entry of a layer's connectivity matrix is one line, coloured by the group of its source channel.

    * (a) ``GConv1 -> GConv2``: each output channel only sees the input channels of its own group.
    * (b) ``GConv2`` takes data from different groups: its connections are the matrix of ``shuffle -> GConv2``,
      drawn straight from the ``GConv1`` features. Every output sees every group.
    * (c) the equivalent implementation with the channel shuffle drawn as a layer of its own.

    The matrices come from :func:`numpy_shufflenet.analysis.flow.connectivity` of the modules of
    :func:`numpy_shufflenet.analysis.flow.group_conv_stack`.

    Parameters
    ----------
    channels, groups : int
        Channels of every layer (divisible by ``groups``).
    order : "paper" or "official"
        The shuffle permutation (:func:`numpy_shufflenet.analysis.flow.shuffle_permutation`).
    figsize : (width, height) in inches, optional

    Returns
    -------
    matplotlib.figure.Figure
        Edges of panel ``p`` and layer ``l`` are the ``LineCollection`` with gid ``"edges:<p>:<l>"``, one segment
        per True matrix entry.
    """
    plain = flow.group_conv_stack(channels, groups, 2, shuffle=False)
    G1 = flow.connectivity(plain.gconv1, channels)
    G2 = flow.connectivity(plain.gconv2, channels)
    P = flow.shuffle_matrix(channels, groups, order)
    if order == "paper":                                   # the module and the permutation say the same
        P = flow.connectivity(flow.group_conv_stack(channels, groups, 2, shuffle=True).shuffle1, channels)
    colors = group_colors(groups)
    g = f"g={groups}"
    panels = [
        ("(a) no shuffle", [("Input", 0), ("Features", -1), ("Output", -3)],
         [(f"GConv1 ({g})", G1, "gconv"), (f"GConv2 ({g})", G2, "gconv")]),
        ("(b) GConv2 takes data from every group", [("Input", 0), ("Features", -1), ("Output", -3)],
         [(f"GConv1 ({g})", G1, "gconv"), (f"GConv2 ({g})", flow.compose(P, G2), "gconv")]),
        ("(c) the same with a channel shuffle", [("Input", 0), ("Features", -1), ("Shuffled", -2), ("Output", -3)],
         [(f"GConv1 ({g})", G1, "gconv"), ("Channel Shuffle", P, "shuffle"), (f"GConv2 ({g})", G2, "gconv")]),
    ]
    width = 1.6 + 0.26 * (channels + 0.8 * (groups - 1))
    fig, axes = plt.subplots(1, 3, figsize=figsize or (3 * width, 5.0))
    for ax, (title, rows, layers) in zip(axes, panels):
        _flow_panel(ax, title, rows, layers, channels, groups, colors)
    handles = [Line2D([], [], marker="s", linestyle="", markersize=8, markerfacecolor=c, markeredgecolor="black",
                      label=f"input group {j + 1}") for j, c in enumerate(colors)]
    fig.legend(handles=handles, loc="lower center", ncol=min(groups, 8), frameon=False, fontsize=9)
    fig.suptitle(f"Channel flow through two stacked group convolutions ({channels} channels, {groups} groups;"
                 f" shuffle order: {order})", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig


# ----------------------------------------------------------------------------------------------------------------
# heat maps of connectivity matrices
# ----------------------------------------------------------------------------------------------------------------
def _group_boundaries(ax, channels, groups, axis):
    if not groups or groups <= 1 or channels % groups:
        return
    for b in range(channels // groups, channels, channels // groups):
        line = ax.axhline if axis == "out" else ax.axvline
        line(b - 0.5, color="#ff7f0e", linewidth=1.2, gid="group-boundary")


def plot_connectivity(matrices, *, groups=None, titles=None, ncols=None, figsize=None):
    """Connectivity matrices as heat maps, side by side (for instance no shuffle vs shuffle).

    Parameters
    ----------
    matrices : dict {title: M} or sequence of M
        Boolean matrices ``M[out, in]`` (:func:`numpy_shufflenet.analysis.flow.connectivity`). A sequence of two gets the
        titles "no shuffle" and "shuffle" unless ``titles`` says otherwise.
    groups : int or (out_groups, in_groups), optional
        Mark the group boundaries (orange lines) on every axis the number divides; also reports, for each
        output channel, how many input groups it sees.
    titles : sequence of str, optional
    ncols : int, optional
        Panels per row (default: all in one row).
    figsize : (width, height) in inches, optional

    Returns
    -------
    matplotlib.figure.Figure
        Each heat map is an ``AxesImage`` with gid ``"connectivity:<title>"`` whose data is ``M`` as 0/1.

    Examples
    --------
    >>> from numpy_shufflenet import flow
    >>> fig = plot_connectivity({"no shuffle": flow.connectivity(flow.group_conv_stack(12, 3, shuffle=False), 12),
    ...                          "shuffle": flow.connectivity(flow.group_conv_stack(12, 3, shuffle=True), 12)},
    ...                         groups=3)
    """
    if isinstance(matrices, dict):
        titles, mats = list(matrices.keys()), list(matrices.values())
    else:
        mats = list(matrices)
        if titles is None:
            titles = ["no shuffle", "shuffle"] if len(mats) == 2 else [f"matrix {i + 1}" for i in range(len(mats))]
    if len(titles) != len(mats):
        raise ValueError(f"plot_connectivity: expected one title per matrix, got {len(titles)} titles for "
                         f"{len(mats)} matrices")
    if not mats:
        raise ValueError("plot_connectivity: expected at least one matrix, got none")
    out_groups, in_groups = groups if isinstance(groups, (tuple, list)) else (groups, groups)
    ncols = ncols or len(mats)
    nrows = -(-len(mats) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (4.6 * ncols, 4.6 * nrows + 0.3), squeeze=False)
    cmap = ListedColormap(["#f2f2f2", "#1f4e79"])          # False: light grey, True: dark blue
    for ax, title, M in zip(axes.flat, titles, mats):
        M = np.asarray(M, dtype=bool)
        ax.imshow(M.astype(int), cmap=cmap, vmin=0, vmax=1, interpolation="nearest",
                  aspect="equal" if max(M.shape) <= 4 * min(M.shape) else "auto", gid=f"connectivity:{title}")
        _group_boundaries(ax, M.shape[0], out_groups, "out")
        _group_boundaries(ax, M.shape[1], in_groups, "in")
        details = f"{M.sum():,} of {M.size:,} True ({M.mean():.0%})"
        if in_groups and M.shape[1] % in_groups == 0:
            seen = flow.groups_seen(M, in_groups)
            span = f"{seen.min()}" if seen.min() == seen.max() else f"{seen.min()}-{seen.max()}"
            details += f"\noutputs see {span} of {in_groups} input groups"
        ax.set_title(f"{title}\n{details}", fontsize=10)
        ax.set_xlabel(f"input channel ({M.shape[1]})")
        ax.set_ylabel(f"output channel ({M.shape[0]})")
    for ax in list(axes.flat)[len(mats):]:
        ax.set_axis_off()
    fig.suptitle("Channel connectivity: dark = output channel can depend on input channel", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


# ----------------------------------------------------------------------------------------------------------------
# Fig. 2: a ShuffleNet unit as a block diagram
# ----------------------------------------------------------------------------------------------------------------
BOX_COLORS = {"conv": "#cfe2f3", "dwconv": "#d9ead3", "bn": "#eeeeee", "relu": "#fff2cc", "shuffle": "#f9cb9c",
              "pool": "#d9d2e9", "merge": "#ffffff"}


def _size(pair):
    return f"{pair[0]}x{pair[1]}"


def _stride_text(stride):
    return "" if tuple(stride) == (1, 1) else f" (stride {stride[0] if stride[0] == stride[1] else stride})"


def layer_label(module):
    """The paper's name of a layer, e.g. ``"1x1 GConv (g=3)"``, ``"3x3 DWConv (stride 2)"``, ``"BN"``, ``"BN ReLU"``.

    Returns
    -------
    (label, kind) : (str, str), ``kind`` chooses the box colour
    """
    if isinstance(module, Conv2d):
        k, g = _size(module.kernel_size), module.groups
        if g > 1 and g == module.in_channels == module.out_channels:
            name, kind = f"{k} DWConv", "dwconv"
        elif g > 1:
            name, kind = f"{k} GConv (g={g})", "conv"
        else:
            name, kind = f"{k} Conv", "conv"
        return name + _stride_text(module.stride), kind
    if isinstance(module, BatchNormReLU2d):
        return "BN ReLU", "bn"
    if isinstance(module, BatchNorm2d):
        return "BN", "bn"
    if isinstance(module, ReLU):
        return "ReLU", "relu"
    if isinstance(module, ChannelShuffle):
        return "Channel Shuffle", "shuffle"
    if isinstance(module, AvgPool2d):
        return f"{_size(module.kernel_size)} AVG Pool" + _stride_text(module.stride), "pool"
    if isinstance(module, MaxPool2d):
        return f"{_size(module.kernel_size)} Max Pool" + _stride_text(module.stride), "pool"
    return type(module).__name__, "bn"


def _box(ax, x, y, text, kind, gid, width=0.46, height=0.62, side=None):
    patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0,rounding_size=0.08",
                           facecolor=BOX_COLORS[kind], edgecolor="0.2", linewidth=1.0, zorder=3, gid=gid,
                           mutation_aspect=1)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=10, zorder=4,
            fontweight="bold" if kind == "shuffle" else "normal")
    if side:
        ax.text(x + width / 2 + 0.03, y, side, ha="left", va="center", fontsize=8, color="0.35", zorder=4)
    return patch


def _arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, zorder=2,
                arrowprops=dict(arrowstyle="-|>", color="0.2", linewidth=1.1, shrinkA=0, shrinkB=0))


class _UnitLayout:
    """Where a unit diagram's parts go: the branch on the right, the shortcut on the left, then merge and ReLU."""

    def __init__(self, n_layers):
        self.x_branch, self.x_short = 0.62, 0.18
        self.y_in, self.y_merge = 0.0, -(n_layers + 1)
        self.y_relu, self.y_out = self.y_merge - 1, self.y_merge - 2
        self.y_split = self.y_in - 0.45


def _draw_branch(ax, layout, children, input_text):
    """The input, its split into branch and shortcut, and the branch's layers as boxes (read from ``children``)."""
    xb, xs = layout.x_branch, layout.x_short
    ax.text(xb, layout.y_in, input_text, ha="center", va="center", fontsize=10)
    ax.plot([xb, xs, xs], [layout.y_split, layout.y_split, layout.y_merge], color="0.2", linewidth=1.1, zorder=1)
    _arrow(ax, (xs, layout.y_merge), (xb - 0.23, layout.y_merge))
    ax.plot(xb, layout.y_split, "o", color="0.2", markersize=4)
    y_prev = layout.y_in - 0.3
    for i, (name, module) in enumerate(children, start=1):
        label, kind = layer_label(module)
        side = f"{module.in_channels} \u2192 {module.out_channels} ch" if isinstance(module, Conv2d) else None
        _arrow(ax, (xb, y_prev), (xb, -i + 0.31))
        _box(ax, xb, -i, label, kind, gid=f"box:branch.{name}", side=side)
        y_prev = -i - 0.31
    _arrow(ax, (xb, y_prev), (xb, layout.y_merge + 0.31))


def _draw_merge_and_output(ax, layout, merge, relu, output_text, title):
    """The merge box (``merge``: label, gid, side note), the ReLU, the output line and the title."""
    xb = layout.x_branch
    label, gid, side = merge
    _box(ax, xb, layout.y_merge, label, "merge", gid=gid, side=side)
    _arrow(ax, (xb, layout.y_merge - 0.31), (xb, layout.y_relu + 0.31))
    _box(ax, xb, layout.y_relu, layer_label(relu)[0], "relu", gid="box:relu")
    _arrow(ax, (xb, layout.y_relu - 0.31), (xb, layout.y_out + 0.2))
    ax.text(xb, layout.y_out, output_text, ha="center", va="center", fontsize=10)
    ax.set_title(title, fontsize=11)
    ax.set_xlim(0, 1.12)
    ax.set_ylim(layout.y_out - 0.5, layout.y_in + 0.5)
    ax.set_axis_off()


def plot_unit_diagram(unit, *, figsize=None):
    """Paper Fig. 2 (b) (stride 1) or (c) (stride 2): the block diagram of a ``ShuffleUnit``.

    The boxes of the residual branch are read from ``unit.branch.named_children()``, so the diagram shows what
    the unit really computes: no "Channel Shuffle" box when ``shuffle=False``, a dense "1x1 Conv" when
    ``grouped_first=False``. The shortcut is the identity (stride 1, then "Add") or a 3x3 average pool
    (stride 2, then "Concat" with the shortcut first); a ReLU follows. Channel counts are written beside the
    convolutions.

    Parameters
    ----------
    unit : ShuffleUnit
    figsize : (width, height) in inches, optional

    Returns
    -------
    matplotlib.figure.Figure
        Boxes are ``FancyBboxPatch`` with gids ``"box:branch.<name>"``, ``"box:shortcut"``, ``"box:add"`` or
        ``"box:concat"``, and ``"box:relu"``.
    """
    children = list(unit.branch.named_children())
    fig, ax = plt.subplots(figsize=figsize or (6.4, 0.62 * (len(children) + 4) + 1.0))
    layout = _UnitLayout(len(children))
    _draw_branch(ax, layout, children, f"input ({unit.in_channels} channels)")
    if unit.stride == 2:
        label, kind = layer_label(unit.shortcut)
        _box(ax, layout.x_short, (layout.y_split + layout.y_merge) / 2, label.replace(" (", "\n("), kind,
             gid="box:shortcut", width=0.3, height=0.9)
        merge = ("Concat", "box:concat",
                 f"[shortcut, branch]\n{unit.in_channels} + {unit.branch_channels} = {unit.out_channels} ch")
        out_text = f"output ({unit.out_channels} channels, half the height and width)"
    else:
        merge, out_text = ("Add", "box:add", None), f"output ({unit.out_channels} channels)"
    notes = [f"g={unit.groups}"]
    if not unit.shuffle:
        notes.append("no shuffle")
    if not unit.grouped_first:
        notes.append("dense first 1x1")
    fig_name = "Fig. 2 (b)" if unit.stride == 1 else "Fig. 2 (c)"
    _draw_merge_and_output(ax, layout, merge, unit.relu, out_text,
                           f"ShuffleNet unit, stride {unit.stride} (paper {fig_name})\n"
                           f"{unit.in_channels} \u2192 {unit.out_channels} channels, {', '.join(notes)}")
    fig.tight_layout()
    return fig


def plot_residual_diagram(unit, *, title="Bottleneck unit with depthwise convolution (paper Fig. 2 a)",
                          figsize=None):
    """The block diagram of any residual unit ``ReLU(x + branch(x))`` (:class:`~numpy_shufflenet.nn.Residual`:
    paper Fig. 2 (a), a ResNet or ResNeXt unit), read from ``unit.branch``, with the boxes and colours of
    :func:`plot_unit_diagram`, so that (a), (b) and (c) compare side by side.

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
    where = f" ({channels} channels)" if channels else ""
    fig, ax = plt.subplots(figsize=figsize or (6.4, 0.62 * (len(children) + 4) + 1.0))
    layout = _UnitLayout(len(children))
    _draw_branch(ax, layout, children, "input" + where)
    _draw_merge_and_output(ax, layout, ("Add", "box:add", None), unit.relu, "output" + where,
                           f"{title}\nidentity shortcut, {channels} \u2192 {channels} channels")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------------
# training curves
# ----------------------------------------------------------------------------------------------------------------
def plot_history(history, baseline_acc=None):
    """Loss per step and held-out accuracy per epoch, side by side; returns a matplotlib Figure."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    steps = np.arange(1, len(history["step_loss"]) + 1)
    ax_loss.plot(steps, history["step_loss"], lw=0.6, alpha=0.5, label="each step")
    if len(steps) >= 20:
        k = max(len(steps) // 50, 5)
        smooth = np.convolve(history["step_loss"], np.ones(k) / k, mode="valid")
        ax_loss.plot(steps[k - 1:], smooth, lw=1.8, label=f"mean of {k}")
    ax_loss.set(xlabel="step", ylabel="training loss", title="Training loss")
    ax_loss.legend()
    epochs = [e["epoch"] for e in history["epochs"]]
    ax_acc.plot(epochs, [e["train_acc"] for e in history["epochs"]], "o-", label="training")
    ax_acc.plot(epochs, [e["val_acc"] for e in history["epochs"]], "s-", label="held-out")
    if baseline_acc is not None:
        ax_acc.axhline(baseline_acc, color="gray", ls="--", label="linear baseline (held-out)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="Accuracy", xticks=epochs)
    ax_acc.legend(loc="upper left")
    return fig
