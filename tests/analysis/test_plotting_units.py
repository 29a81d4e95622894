"""Paper Fig. 2 (a) drawn from a Residual's own layers, headless."""

import matplotlib

matplotlib.use("Agg")                       # before pyplot: no window, works without a display

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from numpy_shufflenet.models import depthwise_bottleneck_unit, resnext_unit  # noqa: E402
from numpy_shufflenet.models import ShuffleUnit  # noqa: E402
from numpy_shufflenet.nn import Residual  # noqa: E402
from numpy_shufflenet.analysis.plotting import plot_residual_diagram  # noqa: E402


def box_labels(fig):
    """gid -> text of every box, read back from the drawn patches and texts."""
    ax = fig.axes[0]
    boxes = {p.get_gid(): p for p in ax.patches if isinstance(p, FancyBboxPatch)}
    labels = {}
    for gid, patch in boxes.items():
        x, y = patch.get_x() + patch.get_width() / 2, patch.get_y() + patch.get_height() / 2
        inside = [t.get_text() for t in ax.texts if abs(t.get_position()[0] - x) < 1e-9
                  and abs(t.get_position()[1] - y) < 1e-9]
        labels[gid] = inside[0]
    return labels


def test_fig_2a_is_read_from_the_unit(tmp_path):
    unit = depthwise_bottleneck_unit(240, 60)
    fig = plot_residual_diagram(unit)
    assert isinstance(fig, Figure)
    labels = box_labels(fig)
    branch = [labels[f"box:branch.{name}"] for name in unit.branch.names]
    assert branch == ["1x1 Conv", "BN", "ReLU", "3x3 DWConv", "BN", "ReLU", "1x1 Conv", "BN"]
    assert labels["box:add"] == "Add" and labels["box:relu"] == "ReLU" and len(labels) == len(branch) + 2
    assert "240 \u2192 240 channels" in fig.axes[0].get_title()
    fig.savefig(tmp_path / "fig2a.png", dpi=60)
    plt.close(fig)
    fig = plot_residual_diagram(resnext_unit(64, 32, 8), title="ResNeXt unit")
    assert "3x3 GConv (g=8)" in box_labels(fig).values()
    plt.close(fig)


def test_refuses_what_it_cannot_draw():
    with pytest.raises(TypeError, match="Residual"):
        plot_residual_diagram(ShuffleUnit(48, 48, groups=3, stride=1))
    with pytest.raises(TypeError, match="without it"):
        plot_residual_diagram(Residual(depthwise_bottleneck_unit(8, 4).branch, shortcut=False))
