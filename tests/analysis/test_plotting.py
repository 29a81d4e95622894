"""The plots run headless, return a Figure, and draw exactly what the connectivity matrices say."""

import matplotlib

matplotlib.use("Agg")                       # before pyplot: no window, works without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from numpy_shufflenet import flow
from numpy_shufflenet.analysis import plotting  # noqa: E402
from numpy_shufflenet.models import ShuffleUnit  # noqa: E402


@pytest.fixture
def close_figures():
    yield
    plt.close("all")


def edge_collections(ax):
    """The LineCollections of one panel, in drawing order (= forward order of the layers)."""
    return [c for c in ax.collections if isinstance(c, LineCollection) and (c.get_gid() or "").startswith("edges:")]


@pytest.mark.parametrize("channels, groups, order", [(12, 3, "paper"), (16, 4, "official"), (8, 2, "paper")])
def test_group_conv_flow_draws_one_edge_per_connection(channels, groups, order, tmp_path, close_figures):
    fig = plotting.plot_group_conv_flow(channels, groups, order=order)
    assert isinstance(fig, Figure)
    G = flow.group_conv_matrix(channels, channels, groups)
    P = flow.shuffle_matrix(channels, groups, order)
    expected = [[G, G], [G, flow.compose(P, G)], [G, P, G]]          # panels (a), (b), (c)
    axes = fig.axes
    assert len(axes) == 3
    for ax, matrices in zip(axes, expected):
        collections = edge_collections(ax)
        assert [len(c.get_segments()) for c in collections] == [int(M.sum()) for M in matrices]
    # panel (c): the shuffle layer draws exactly the permutation, from input node perm[k] to output node k
    shuffle_edges = edge_collections(axes[2])[1]
    xs = plotting._channel_x(channels, groups)                         # the x position of every node
    starts = sorted((round(s[1][0], 6), round(s[0][0], 6)) for s in shuffle_edges.get_segments())
    perm = flow.shuffle_permutation(channels, groups, order)
    assert starts == sorted((round(xs[k], 6), round(xs[perm[k]], 6)) for k in range(channels))
    fig.savefig(tmp_path / "fig1.png", dpi=60)
    assert (tmp_path / "fig1.png").stat().st_size > 0


def test_group_conv_flow_panel_titles_report_the_mixing(close_figures):
    fig = plotting.plot_group_conv_flow(12, 3)
    titles = [ax.get_title() for ax in fig.axes]
    assert "1 of 3" in titles[0] and "3 of 3" in titles[1] and "3 of 3" in titles[2]


def test_plot_connectivity_shows_the_matrices(tmp_path, close_figures):
    plain = flow.connectivity(flow.group_conv_stack(12, 3, shuffle=False), 12)
    mixed = flow.connectivity(flow.group_conv_stack(12, 3, shuffle=True), 12)
    unit = ShuffleUnit(12, 48, groups=3, stride=2, shuffle=False)
    fig = plotting.plot_connectivity({"no shuffle": plain, "shuffle": mixed,
                                      "unit, no shuffle": flow.connectivity(unit, 12)}, groups=3, ncols=2)
    assert isinstance(fig, Figure)
    images = {im.get_gid(): im for ax in fig.axes for im in ax.images}
    assert set(images) == {"connectivity:no shuffle", "connectivity:shuffle", "connectivity:unit, no shuffle"}
    np.testing.assert_array_equal(np.asarray(images["connectivity:no shuffle"].get_array()), plain.astype(int))
    assert np.asarray(images["connectivity:shuffle"].get_array()).sum() == mixed.sum()
    boundaries = [line for line in fig.axes[0].lines if line.get_gid() == "group-boundary"]
    assert len(boundaries) == 4                       # 2 horizontal + 2 vertical for 3 groups
    assert "48 of 144" in fig.axes[0].get_title() and "1 of 3" in fig.axes[0].get_title()
    fig.savefig(tmp_path / "connectivity.png", dpi=60)


def test_plot_connectivity_accepts_a_pair(close_figures):
    fig = plotting.plot_connectivity([np.eye(4, dtype=bool), np.ones((4, 4), bool)])
    assert [ax.get_title().splitlines()[0] for ax in fig.axes] == ["no shuffle", "shuffle"]
    with pytest.raises(ValueError, match="title"):
        plotting.plot_connectivity([np.eye(2, dtype=bool)], titles=["a", "b"])


def box_labels(fig):
    """``{gid: text}`` of the unit diagram's boxes (the text drawn at each box's centre)."""
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch) and (p.get_gid() or "").startswith("box:")]
    labels = {}
    for box in boxes:
        cx, cy = box.get_x() + box.get_width() / 2, box.get_y() + box.get_height() / 2
        texts = [t.get_text() for t in ax.texts if np.allclose(t.get_position(), (cx, cy))]
        labels[box.get_gid()] = texts[0] if texts else ""
    return labels


@pytest.mark.parametrize("stride, shuffle, grouped_first", [(1, True, True), (2, True, True), (1, False, True),
                                                            (2, False, False)])
def test_unit_diagram_is_read_from_the_unit(stride, shuffle, grouped_first, tmp_path, close_figures):
    c_in = 48 if stride == 1 else 12
    unit = ShuffleUnit(c_in, 48, groups=3, stride=stride, shuffle=shuffle, grouped_first=grouped_first)
    fig = plotting.plot_unit_diagram(unit)
    assert isinstance(fig, Figure)
    labels = box_labels(fig)
    branch = [labels[f"box:branch.{name}"] for name, _ in unit.branch.named_children()]
    assert len(labels) == len(branch) + 2 + (stride == 2)           # + merge, ReLU, (pool)
    assert ("Channel Shuffle" in branch) == shuffle
    assert branch[0] == ("1x1 GConv (g=3)" if grouped_first else "1x1 Conv")
    assert branch[1] == "BN ReLU" and "ReLU" not in branch          # paper Fig. 2: one "BN ReLU" box
    assert ("3x3 DWConv (stride 2)" if stride == 2 else "3x3 DWConv") in branch
    assert branch[-2:] == ["1x1 GConv (g=3)", "BN"]
    assert labels["box:relu"] == "ReLU"
    if stride == 1:
        assert labels["box:add"] == "Add"
    else:
        assert labels["box:concat"] == "Concat"
        assert labels["box:shortcut"].replace("\n", " ") == "3x3 AVG Pool (stride 2)"
    fig.savefig(tmp_path / "unit.png", dpi=60)


def test_layer_labels():
    unit = ShuffleUnit(12, 48, groups=3, stride=2)
    assert [plotting.layer_label(m)[0] for m in unit.branch] == [
        "1x1 GConv (g=3)", "BN ReLU", "Channel Shuffle", "3x3 DWConv (stride 2)", "BN", "1x1 GConv (g=3)", "BN"]
    assert plotting.layer_label(unit.shortcut)[0] == "3x3 AVG Pool (stride 2)"
