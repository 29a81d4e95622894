"""Parameter and multiply-add counts against the paper, the released models and hand-computed formulas."""

import numpy as np
import pytest

from numpy_shufflenet import paper
from numpy_shufflenet.analysis.counting import count_flops, count_params, layer_macs, summary, summary_rows
from numpy_shufflenet.models import ShuffleNet, ShuffleUnit
from numpy_shufflenet.nn import BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, ReLU, Sequential

# Exact counts of the Table 1 networks at 224x224 (conv-only, conv+FC, trainable parameters), by g.
EXACT = {1: (142_502_976, 143_078_976, 1_530_936), 2: (140_036_512, 140_836_512, 1_732_848),
         3: (136_500_672, 137_460_672, 1_864_728), 4: (133_251_776, 134_339_776, 1_967_344),
         8: (136_829_952, 138_365_952, 2_433_768)}


@pytest.mark.parametrize("groups", sorted(EXACT))
def test_table1_exact_counts_and_paper_rounding(groups):
    model = ShuffleNet(groups=groups, scale=1.0)
    conv_only, conv_fc, params = EXACT[groups]
    assert count_flops(model, (3, 224, 224), include_fc=False) == conv_only
    assert count_flops(model, (3, 224, 224)) == conv_fc
    assert count_params(model) == params
    assert round(conv_only / 1e6) == paper.TABLE1_MFLOPS[groups]          # Table 1: 143/140/137/133/137


# Released models: conv+FC multiply-adds and parameters (conv w + BN gamma/beta + FC w), computed by hand
# from the layer shapes of the authors' network.
RELEASED = {(3, 0.5): (37_589_856, 717_324), (3, 1.0): (137_460_672, 1_864_728),
            (3, 1.5): (292_443_552, 3_441_168), (3, 2.0): (524_045_184, 5_449_776),
            (8, 0.5): (40_469_760, 1_010_448), (8, 1.0): (138_365_952, 2_433_768),
            (8, 1.5): (290_188_800, 4_268_952), (8, 2.0): (521_942_016, 6_521_232)}


@pytest.mark.parametrize("key", sorted(RELEASED))
def test_released_models_match_published_figures(key):
    groups, scale = key
    model = ShuffleNet(groups=groups, scale=scale)
    macs, params = RELEASED[key]
    assert count_flops(model) == macs and count_params(model) == params
    readme_mflops, readme_mparams, _ = paper.OFFICIAL_MODELS[key]
    assert round(params / 1e6, 1) == readme_mparams
    if key != (3, 1.0):                    # the README says 138 M; the exact count is 137.46 M (Table 1: 137 M)
        assert round(macs / 1e6) == readme_mflops
    else:
        assert round(macs / 1e6) == 137 and readme_mflops == 138


def test_unit_cost_formula_of_section_3_2():
    # ShuffleNet unit on c x h x w with bottleneck m: h*w*(2*c*m/g + 9*m) multiply-adds.
    c, h, g = 240, 28, 3
    m = c // 4
    unit = ShuffleUnit(c, c, groups=g, stride=1)
    assert count_flops(unit, (c, h, h)) == h * h * (2 * c * m // g + 9 * m)


def test_per_unit_breakdown_stage2():
    model = ShuffleNet(groups=3)
    rows = {name: macs for name, _, _, _, macs in summary_rows(model, (3, 224, 224), depth=2)}
    assert rows["stem.conv"] == 8_128_512
    assert rows["stage2.0"] == 8_326_080 and rows["stage2.1"] == 7_949_760
    assert rows["stage3.0"] == 9_619_680 and rows["stage4.3"] == 7_632_240 and rows["fc"] == 960_000


def test_counts_any_network_built_from_the_layers():
    # A MobileNet-style block and a ResNet-style stack, counted by hand.
    net = Sequential(Conv2d(3, 32, 3, stride=2, padding=1), BatchNorm2d(32), ReLU(),
                     Conv2d(32, 32, 3, padding=1, groups=32), BatchNorm2d(32), ReLU(),
                     Conv2d(32, 64, 1), BatchNorm2d(64), ReLU(), GlobalAvgPool2d(), Linear(64, 10))
    hw = 112 * 112
    expected = hw * 32 * 27 + hw * 32 * 9 + hw * 64 * 32 + 64 * 10
    assert count_flops(net, (3, 224, 224)) == expected
    assert count_flops(net, (3, 224, 224), include_fc=False) == expected - 640
    assert count_flops(net, (3, 224, 224), flops_per_mac=2) == 2 * expected
    assert count_params(net) == 32 * 27 + 64 + 32 * 9 + 64 + 64 * 32 + 128 + 64 * 10 + 10


def test_layer_macs_ignores_uncounted_layers():
    assert layer_macs(ReLU(), (4, 5, 5), (4, 5, 5)) == 0
    assert layer_macs(BatchNorm2d(4), (4, 5, 5), (4, 5, 5)) == 0
    assert layer_macs(Conv2d(6, 4, 3, groups=2), (6, 5, 5), (4, 3, 3)) == 4 * 9 * 3 * 9


def test_counting_does_not_run_the_network():
    model = ShuffleNet(groups=3, scale=2.0)
    assert all(m._cache is None for _, m in model.named_modules())
    count_flops(model, (3, 224, 224))
    summary(model, (3, 224, 224))
    assert all(m._cache is None for _, m in model.named_modules())


def test_summary_lists_every_layer_with_totals():
    model = ShuffleNet(groups=8, scale=0.5)
    text = summary(model, (3, 224, 224))
    assert "stage2.0.branch.conv1" in text and "stage4.3.relu" in text
    assert f"{count_params(model):,d}" in text and f"{count_flops(model):,d}" in text
    assert summary_rows(model, (3, 224, 224))[-1][2] == (1000,)


def test_bad_input_shape_for_counting():
    net = Sequential(Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match=r"Conv2d: expected 3 input channels, got input shape \(4, 8, 8\)"):
        count_flops(net, (4, 8, 8))
    np.testing.assert_equal(count_flops(net, (3, 8, 8)), 8 * 36 * 27)


# --------------------------------------------------------------------------------------------------------------
# the name, the arguments, the layers
# --------------------------------------------------------------------------------------------------------------
def test_count_multiply_adds_is_count_flops():
    import numpy_shufflenet
    from numpy_shufflenet.analysis.counting import count_multiply_adds
    assert count_flops is count_multiply_adds and numpy_shufflenet.count_multiply_adds is count_multiply_adds
    net = Sequential(Conv2d(3, 8, 3), GlobalAvgPool2d(), Linear(8, 4))
    assert count_multiply_adds(net, (3, 8, 8), flops_per_mac=2) == 2 * (8 * 36 * 27 + 32)


@pytest.mark.parametrize("shape, error, words", [
    ((3, 8.0, 8), TypeError, r"input_shape to hold integers, got \(3, 8.0, 8\)"),
    ((3, True, 8), TypeError, "input_shape to hold integers"),
    ((3, 0, 8), ValueError, r"input_shape to hold positive sizes, got \(3, 0, 8\)"),
    ((3, -8, 8), ValueError, "positive sizes"),
    (224, TypeError, "input_shape to be a tuple of positive integers .* got 224"),
    ("3x224x224", TypeError, "input_shape to be a tuple"),
])
def test_count_refuses_bad_input_shapes(shape, error, words):
    with pytest.raises(error, match=words):
        count_flops(Sequential(Conv2d(3, 8, 3)), shape)


@pytest.mark.parametrize("value, error", [(3, ValueError), (0, ValueError), (2.0, TypeError), ("2", TypeError),
                                          (True, TypeError)])
def test_count_refuses_a_bad_flops_per_mac(value, error):
    with pytest.raises(error, match=f"flops_per_mac.*got {value!r}"):
        count_flops(Sequential(Conv2d(3, 8, 3)), (3, 8, 8), flops_per_mac=value)


def test_numpy_integer_shapes_are_accepted():
    shape = tuple(np.array([3, 8, 8]))
    assert count_flops(Sequential(Conv2d(3, 8, 3)), shape) == 8 * 36 * 27


def test_count_layers_gives_the_paper_depths():
    from numpy_shufflenet.models import build_shapes_only, mobilenet_v1
    from numpy_shufflenet.analysis.counting import count_layers
    assert count_layers(build_shapes_only(ShuffleNet, groups=3)) == 50          # paper Sec. 4.3
    assert count_layers(build_shapes_only(mobilenet_v1, 1.0)) == 28
    assert count_layers(Sequential(Conv2d(3, 8, 3), ReLU(), BatchNorm2d(8))) == 1
