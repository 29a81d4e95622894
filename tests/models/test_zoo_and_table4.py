"""The networks ShuffleNet is compared with: paper Table 6 (VGG-16, AlexNet, GoogLeNet, SqueezeNet), the Table 4
structures and Fig. 2 (a), and the two small modules they need (``Concat``, ``CeilMaxPool2d``).

Counts are asserted exactly (our counter on our layers) and against the paper with the tolerances of the
comparison: 3% for Table 6, 5% for Table 4. Every builder also runs forward and backward at a small width and
input, and the new modules pass a numeric gradient check in float64.
"""

import numpy as np
import pytest

from numpy_shufflenet import nn, paper
from numpy_shufflenet.models import (TABLE4_STRUCTURES, alexnet, build_shapes_only, depthwise_bottleneck_unit, fire,
                                     googlenet, inception, macro_network, mobilenet_v1, shufflenet_with_widths,
                                     squeezenet, table4_network, vgg16)
from numpy_shufflenet.nn import CeilMaxPool2d, Concat
from numpy_shufflenet.analysis.counting import count_multiply_adds, count_params
from numpy_shufflenet.gradcheck import check_module, randomize_batchnorm
from numpy_shufflenet.models import ShuffleNet
from numpy_shufflenet.nn import AvgPool2d, Conv2d, ReLU, Sequential


def _assert_gradients(module, x, seed=2):
    """Numeric gradient check of ``module`` at ``x``. Biases are made random first: with the zero biases of a
    fresh layer, a pixel where a ReLU fed the convolution only zeros gives an output of exactly 0, on the kink
    of the next ReLU, where no finite difference can agree with the derivative."""
    bias_rng = np.random.default_rng(seed + 1)
    for _, layer in module.named_modules():
        if getattr(layer, "bias", None) is not None:
            layer.bias.data = bias_rng.uniform(0.1, 0.5, layer.bias.shape)
    results = check_module(module, x, verbose=False, rng=np.random.default_rng(seed))
    failed = [str(r) for r in results if not r]
    assert not failed, "\n".join(failed)


def _forward_backward(model, x, rng):
    """One forward and backward pass: finite output, a gradient for x and for every parameter, x untouched."""
    x_copy = x.copy()
    out = model.forward(x)
    assert out.shape == (x.shape[0],) + model.output_shape(x.shape[1:]) and np.isfinite(out).all()
    dx = model.backward(rng.standard_normal(out.shape).astype(x.dtype))
    assert dx.shape == x.shape and dx.dtype == x.dtype and np.isfinite(dx).all()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    np.testing.assert_array_equal(x, x_copy)
    return out


# --------------------------------------------------------------------------------------------------------------
# paper Table 6
# --------------------------------------------------------------------------------------------------------------
TABLE6_EXACT = {     # (builder, input size, conv-only MACs, conv + FC MACs, parameters)
    "VGG-16": (vgg16, 224, 15_346_630_656, 15_470_264_320, 138_357_544),
    "AlexNet": (alexnet, 227, 665_784_864, 724_406_816, 60_965_224),
    "GoogleNet* (BVLC)": (googlenet, 224, 1_581_647_872, 1_582_671_872, 6_998_552),
    "SqueezeNet": (squeezenet, 224, 818_924_576, 818_924_576, 1_248_424),
}


@pytest.mark.parametrize("name", list(TABLE6_EXACT))
def test_table6_exact_counts(name):
    builder, size, conv, total, params = TABLE6_EXACT[name]
    model = build_shapes_only(builder)
    assert count_multiply_adds(model, (3, size, size), include_fc=False) == conv
    assert count_multiply_adds(model, (3, size, size)) == total
    assert count_params(model) == params


def test_table6_against_the_paper_within_3_percent():
    def off(count, name):
        return abs(count / 1e6 / paper.TABLE6[name][1] - 1)

    assert off(TABLE6_EXACT["VGG-16"][2], "VGG-16") < 0.03 and off(TABLE6_EXACT["VGG-16"][3], "VGG-16") < 0.03
    assert off(TABLE6_EXACT["AlexNet"][3], "AlexNet") < 0.03       # with the classifier ...
    assert off(TABLE6_EXACT["AlexNet"][2], "AlexNet") > 0.07       # ... not without it
    assert off(TABLE6_EXACT["SqueezeNet"][3], "SqueezeNet") < 0.03
    assert round(count_multiply_adds(build_shapes_only(squeezenet), (3, 227, 227)) / 1e6) == 833   # Caffe's input
    # GoogLeNet: 5.5% over the round 1500 under any choice of layers (the documented mismatch)
    assert 0.05 < off(TABLE6_EXACT["GoogleNet* (BVLC)"][2], "GoogleNet* (BVLC)") < 0.06
    assert round(paper.TABLE6["AlexNet"][1] / paper.TABLE6["ShuffleNet 0.5x (g=4)"][1], 1) == 18.9


def test_alexnet_groups_halve_the_grouped_layers():
    model = build_shapes_only(alexnet)
    f = model.features
    assert [f[n].conv.groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
    assert f.conv2.conv.weight.shape == (256, 48, 5, 5)
    assert model.features.output_shape((3, 227, 227)) == (256, 6, 6)
    assert model.classifier.fc6.weight.shape == (4096, 9216)


@pytest.mark.parametrize("build", [lambda: ShuffleNet(groups=3, scale=0.5), lambda: mobilenet_v1(0.25),
                                   lambda: table4_network("resnet", 13),
                                   lambda: shufflenet_with_widths(2, (8, 48, 96, 192))],
                         ids=["ShuffleNet", "MobileNet", "table4_network", "shufflenet_with_widths"])
def test_every_network_starts_with_one_conv_bn_relu_stem(build):
    stem = build().stem
    assert [name for name, _ in stem.named_children()] == ["conv", "bn"]
    assert isinstance(stem.bn, nn.BatchNormReLU2d)                       # the "BN ReLU" of paper Fig. 2
    assert (stem.conv.kernel_size, stem.conv.stride, stem.conv.padding) == ((3, 3), (2, 2), (1, 1))
    assert stem.conv.bias is None and stem.bn.num_features == stem.conv.out_channels


def test_shapes_only_weights_are_read_only_views():
    model = build_shapes_only(vgg16)
    w = model.classifier.fc6.weight.data
    assert w.shape == (4096, 25088) and w.strides == (0, 0) and not w.flags.writeable
    with pytest.raises(ValueError):
        w[0, 0] = 1.0
    net = build_shapes_only(ShuffleNet, groups=3, scale=1.0)
    assert count_multiply_adds(net) == 137_460_672 and count_params(net) == 1_864_728


def test_googlenet_and_squeezenet_pool_sizes():
    trace = {name: out for name, _, _, out in build_shapes_only(googlenet).shape_trace((3, 224, 224))}
    assert [trace[f"pool{i}"][1:] for i in (1, 2, 3, 4)] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert trace["inception5b.branch4.proj.relu"] == (128, 7, 7)
    trace = {name: out for name, _, _, out in build_shapes_only(squeezenet).shape_trace((3, 224, 224))}
    assert [trace[n][1:] for n in ("conv1.conv", "pool1", "pool4", "pool8")] == [(109, 109), (54, 54), (27, 27),
                                                                                 (13, 13)]


@pytest.mark.parametrize("make, size", [
    (lambda rng: vgg16(10, width=1 / 16, input_size=32, hidden=16, rng=rng), 32),
    (lambda rng: alexnet(10, width=1 / 16, input_size=67, hidden=16, rng=rng), 67),
    (lambda rng: googlenet(10, width=1 / 16, rng=rng), 64),
    (lambda rng: squeezenet(10, width=1 / 16, rng=rng), 48),
], ids=["vgg16", "alexnet", "googlenet", "squeezenet"])
def test_table6_builders_forward_backward(make, size, rng):
    model = make(rng)
    out = _forward_backward(model, rng.standard_normal((2, 3, size, size)).astype(np.float32), rng)
    assert out.shape == (2, 10) and out.dtype == np.float32


def test_table6_builders_refuse_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        vgg16(width=0)
    with pytest.raises(ValueError, match="input_size"):
        alexnet(input_size=40)
    with pytest.raises(TypeError, match="num_classes"):
        squeezenet(num_classes=2.5)


# --------------------------------------------------------------------------------------------------------------
# paper Table 4 and Fig. 2 (a)
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mflops", [140, 38, 13])
def test_table4_networks_within_5_percent(mflops):
    for structure in TABLE4_STRUCTURES:
        count = count_multiply_adds(build_shapes_only(table4_network, structure, mflops))
        assert abs(count / 1e6 / mflops - 1) < 0.05, (structure, mflops, count)


def test_table4_stage4_widths_of_section_4_2():
    widths = {s: table4_network(s, 38, rng=np.random.default_rng(0)).widths[3] for s in TABLE4_STRUCTURES}
    assert widths == paper.TABLE4_STAGE4_WIDTHS_38


def test_table4_xception_like_is_shufflenet_g1():
    for mflops, scale in ((140, 1.0), (38, 0.5)):
        ours = build_shapes_only(table4_network, "xception-like", mflops)
        assert count_multiply_adds(ours) == count_multiply_adds(build_shapes_only(ShuffleNet, groups=1, scale=scale))
        assert count_params(ours) == count_params(build_shapes_only(ShuffleNet, groups=1, scale=scale))
    shuffle_140 = build_shapes_only(table4_network, "shufflenet", 140)
    assert count_multiply_adds(shuffle_140) == count_multiply_adds(build_shapes_only(ShuffleNet, groups=8))


def test_table4_units():
    rng = np.random.default_rng(0)
    resnext = table4_network("resnext", 140, rng=rng)
    unit = resnext.stage3[1]
    assert unit.branch.conv2.groups == 16 and unit.branch.conv1.out_channels == 192 // 2
    stride2 = resnext.stage3[0]
    assert isinstance(stride2.concat.shortcut, AvgPool2d) and stride2.concat.branch.conv3.out_channels == 192 - 96
    resnet = table4_network("resnet", 140, rng=rng)
    assert resnet.stage4[1].branch.conv1.out_channels == 400 // 4
    vgg = table4_network("vgg-like", 140, rng=rng)
    assert [c.kernel_size for _, c in vgg.stage2[0].named_modules() if isinstance(c, Conv2d)] == [(3, 3)] * 2
    with pytest.raises(ValueError, match="structure"):
        table4_network("densenet", 140)
    with pytest.raises(ValueError, match="mflops"):
        table4_network("resnet", 100)


@pytest.mark.parametrize("structure", TABLE4_STRUCTURES)
def test_table4_forward_backward(structure, rng):
    model = table4_network(structure, 13, num_classes=10, rng=rng)
    out = _forward_backward(model, rng.standard_normal((2, 3, 32, 32)).astype(np.float32), rng)
    assert out.shape == (2, 10)


def test_shufflenet_with_widths_is_shufflenet(rng):
    ours = shufflenet_with_widths(3, (24, 240, 480, 960), rng=np.random.default_rng(0))
    reference = ShuffleNet(groups=3, rng=np.random.default_rng(0))
    assert count_multiply_adds(ours) == count_multiply_adds(reference) and count_params(ours) == count_params(
        reference)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in reference.named_parameters()]
    shallow = build_shapes_only(shufflenet_with_widths, 3, (12, 120, 240, 480), repeats=(2, 4, 2))
    assert count_multiply_adds(shallow) == 21_584_496
    with pytest.raises(ValueError, match="widths"):
        macro_network(lambda *args: None, (24, 240, 480))


def test_depthwise_bottleneck_unit_is_fig_2a(rng):
    c, m, h = 48, 12, 6
    unit = depthwise_bottleneck_unit(c, m, rng=rng)
    assert unit.branch.conv2.groups == m and "relu2" in unit.branch.names
    assert count_multiply_adds(unit, (c, h, h)) == h * h * (2 * c * m + 9 * m)     # hw(2cm + 9m)
    unit64 = randomize_batchnorm(depthwise_bottleneck_unit(8, 4, rng=rng, dtype=np.float64),
                                 np.random.default_rng(1))
    _assert_gradients(unit64, rng.standard_normal((2, 8, 4, 4)))


# --------------------------------------------------------------------------------------------------------------
# Concat and CeilMaxPool2d
# --------------------------------------------------------------------------------------------------------------
def test_concat_forward_backward_and_gradients(rng):
    cat = Concat({"a": Conv2d(4, 3, 1, rng=rng, dtype=np.float64),
                  "b": Sequential(Conv2d(4, 2, 3, padding=1, rng=rng, dtype=np.float64), ReLU())})
    x = rng.standard_normal((2, 4, 5, 5))
    out = cat.forward(x)
    assert out.shape == (2, 5, 5, 5) and cat.output_shape((4, 5, 5)) == (5, 5, 5)
    np.testing.assert_allclose(out[:, :3], cat.a.forward(x), rtol=1e-12)
    assert [n for n, *_ in cat.shape_trace((4, 5, 5), "cat")] == ["cat.a", "cat.b.0", "cat.b.1"]
    _assert_gradients(cat, x)
    with pytest.raises(ValueError, match="height and width"):
        Concat(Conv2d(4, 3, 1), Conv2d(4, 3, 3)).output_shape((4, 5, 5))
    with pytest.raises(TypeError, match="Module"):
        Concat(lambda x: x)


def test_inception_and_fire_gradients(rng):
    block = inception(6, 2, 2, 3, 1, 2, 2, rng=rng, dtype=np.float64)
    assert block.output_shape((6, 5, 5)) == (9, 5, 5)
    _assert_gradients(block, rng.standard_normal((1, 6, 4, 4)))
    module = fire(6, 2, 3, 3, rng=rng, dtype=np.float64)
    assert module.output_shape((6, 5, 5)) == (6, 5, 5)
    _assert_gradients(module, rng.standard_normal((1, 6, 4, 4)))


@pytest.mark.parametrize("size, expected", [(54, 27), (109, 54), (7, 3), (8, 4)])
def test_ceil_max_pool_sizes(size, expected):
    assert CeilMaxPool2d(3, stride=2).output_shape((1, size, size)) == (1, expected, expected)


def test_ceil_max_pool_values_and_gradient(rng):
    pool = CeilMaxPool2d(3, stride=2)
    x = rng.standard_normal((2, 3, 6, 6))
    out = pool.forward(x)
    assert out.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(out[:, :, 2, 2], x[:, :, 4:, 4:].max(axis=(2, 3)))   # the overhanging window
    np.testing.assert_array_equal(out[:, :, 0, 0], x[:, :, :3, :3].max(axis=(2, 3)))
    _assert_gradients(pool, x)


def test_ceil_max_pool_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 9, 10))
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, stride=2, ceil_mode=True).numpy()
    np.testing.assert_array_equal(CeilMaxPool2d(3, stride=2).forward(x), expected)


@pytest.mark.parametrize("size, kernel, stride, padding", [(5, 2, 2, 1), (9, 3, 3, 0), (10, 3, 2, 1)])
def test_ceil_max_pool_matches_torch_with_padding(size, kernel, stride, padding, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((1, 2, size, size))
    pool = CeilMaxPool2d(kernel, stride=stride, padding=padding)
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel, stride=stride, padding=padding,
                                              ceil_mode=True).numpy()
    np.testing.assert_array_equal(pool.forward(x), expected)
    assert pool.output_shape(x.shape[1:]) == expected.shape[1:]
