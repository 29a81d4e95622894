"""The baseline networks: hand-computed parameter counts, the paper's unit-cost formulas (Sec. 3.2), gradient
checks of the residual units, MobileNet v1 against paper Table 5, and the deep stacks with and without the
shortcut."""

import numpy as np
import pytest

from numpy_shufflenet import paper
from numpy_shufflenet.models import (MOBILENET_V1_BLOCKS, bottleneck_block, depthwise_separable_block, mobilenet_v1,
                                     resnet_unit, resnext_unit)
from numpy_shufflenet.nn import Residual
from numpy_shufflenet.paper.experiments import plain_shuffle_unit, shuffle_branch, unit_input_gradient_norms, unit_stack
from numpy_shufflenet.analysis.counting import count_flops, count_params
from numpy_shufflenet.gradcheck import check_module, randomize_batchnorm
from numpy_shufflenet.models import ShuffleUnit
from numpy_shufflenet.nn import BatchNorm2d, Conv2d, Linear, ReLU, Sequential


# --------------------------------------------------------------------------------------------------------------
# parameter counts by hand
# --------------------------------------------------------------------------------------------------------------
def test_bottleneck_block_matches_the_blog_example():
    block = bottleneck_block(256, 64)
    assert all(isinstance(m, Conv2d) and m.bias is None for m in block)
    assert count_params(block) == 256 * 1 * 1 * 64 + 64 * 3 * 3 * 64 + 64 * 1 * 1 * 256 == 69_632
    assert count_params(Conv2d(256, 256, 3, padding=1)) == 589_824            # the dense 3x3 it replaces


def test_depthwise_separable_block_counts():
    block = depthwise_separable_block(256, 128)
    assert [type(m) for m in block] == [Conv2d, Conv2d]
    assert block.dw.groups == 256 and block.pw.kernel_size == (1, 1)
    assert count_params(block) == 9 * 256 + 256 * 128 == 35_072
    assert count_flops(block, (256, 56, 56)) == 56 * 56 * (9 * 256 + 256 * 128)
    strided = depthwise_separable_block(16, 32, stride=2)
    assert strided.output_shape((16, 10, 10)) == (32, 5, 5)


@pytest.mark.parametrize("c, m", [(256, 64), (64, 16), (1024, 256)])
def test_resnet_unit_params(c, m):
    # conv weights 2cm + 9m^2, batch-norm gamma and beta of m, m and c channels
    assert count_params(resnet_unit(c, m)) == 2 * c * m + 9 * m * m + 2 * (2 * m + c)


def test_resnet_unit_params_256_64():
    assert count_params(resnet_unit(256, 64)) == 69_632 + 768 == 70_400


@pytest.mark.parametrize("c, m, g", [(256, 128, 32), (256, 64, 8), (512, 256, 32)])
def test_resnext_unit_params(c, m, g):
    assert count_params(resnext_unit(c, m, g)) == 2 * c * m + 9 * m * m // g + 2 * (2 * m + c)


def test_resnext_unit_params_32x4d():
    assert count_params(resnext_unit(256, 128, 32)) == 32_768 + 4_608 + 32_768 + 1_024 == 71_168


# --------------------------------------------------------------------------------------------------------------
# paper Sec. 3.2: unit costs
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c, m, h, w", [(256, 64, 56, 56), (512, 128, 28, 28), (64, 16, 7, 9)])
def test_resnet_unit_cost_formula(c, m, h, w):
    assert count_flops(resnet_unit(c, m), (c, h, w)) == h * w * (2 * c * m + 9 * m * m)


@pytest.mark.parametrize("c, m, g, h, w", [(256, 128, 32, 56, 56), (512, 256, 32, 14, 14), (64, 16, 4, 7, 9)])
def test_resnext_unit_cost_formula(c, m, g, h, w):
    assert count_flops(resnext_unit(c, m, g), (c, h, w)) == h * w * (2 * c * m + 9 * m * m // g)


def test_resnext_pointwise_share_is_93_4_percent():
    # paper Sec. 3.1: with cardinality 32 the 1x1 layers take 93.4% of a ResNeXt unit's multiply-adds
    unit = resnext_unit(256, 128, 32)
    total = count_flops(unit, (256, 1, 1))
    pointwise = count_flops(unit.branch.conv1, (256, 1, 1)) + count_flops(unit.branch.conv3, (128, 1, 1))
    assert round(100 * pointwise / total, 1) == 93.4


@pytest.mark.parametrize("c, g, h", [(240, 3, 28), (480, 3, 14), (384, 8, 28)])
def test_shuffle_unit_cost_formula(c, g, h):
    m = c // 4
    assert count_flops(ShuffleUnit(c, c, groups=g, stride=1), (c, h, h)) == h * h * (2 * c * m // g + 9 * m)
    assert count_flops(plain_shuffle_unit(c, g), (c, h, h)) == h * h * (2 * c * m // g + 9 * m)


# --------------------------------------------------------------------------------------------------------------
# forward, backward, gradient checks
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda rng: resnet_unit(8, 4, rng=rng, dtype=np.float64),
                                  lambda rng: resnext_unit(8, 4, 2, rng=rng, dtype=np.float64),
                                  lambda rng: plain_shuffle_unit(12, 3, rng=rng, dtype=np.float64)],
                         ids=["resnet", "resnext", "plain-shuffle"])
def test_gradient_check(make, rng):
    unit = randomize_batchnorm(make(rng), np.random.default_rng(1))
    channels = unit.branch.conv1.in_channels
    x = rng.standard_normal((2, channels, 5, 5))
    results = check_module(unit, x, verbose=False, rng=np.random.default_rng(2))
    assert len(results) == 1 + len(unit.parameters())
    failed = [str(r) for r in results if not r]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_units_forward_backward_shapes(dtype, rng):
    for unit in (resnet_unit(16, 4, rng=rng, dtype=dtype), resnext_unit(16, 8, 4, rng=rng, dtype=dtype)):
        x = rng.standard_normal((3, 16, 6, 7)).astype(dtype)
        x_copy = x.copy()
        out = unit(x)
        assert out.shape == x.shape and out.dtype == dtype and (out >= 0).all()
        assert unit.output_shape((16, 6, 7)) == (16, 6, 7)
        dx = unit.backward(rng.standard_normal(out.shape).astype(dtype))
        assert dx.shape == x.shape and dx.dtype == dtype
        np.testing.assert_array_equal(x, x_copy)
        names = [name for name, *_ in unit.shape_trace((16, 6, 7))]
        assert names == ["unit.branch.conv1", "unit.branch.bn1", "unit.branch.relu1", "unit.branch.conv2",
                         "unit.branch.bn2", "unit.branch.relu2", "unit.branch.conv3", "unit.branch.bn3",
                         "unit.relu"]


def test_residual_adds_the_input(rng):
    unit = resnet_unit(8, 4, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 8, 4, 4))
    branch = unit.branch.forward(x)
    np.testing.assert_allclose(unit.forward(x), np.maximum(x + branch, 0), rtol=0, atol=1e-12)
    plain = Residual(unit.branch, shortcut=False)
    np.testing.assert_allclose(plain.forward(x), np.maximum(branch, 0), rtol=0, atol=1e-12)


def test_residual_refuses_a_shape_changing_branch():
    unit = Residual(Sequential(Conv2d(8, 16, 1)))
    with pytest.raises(ValueError, match="keep the input's shape"):
        unit.output_shape((8, 4, 4))
    with pytest.raises(ValueError, match="keep the input's shape"):
        unit.forward(np.zeros((1, 8, 4, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="Module"):
        Residual(lambda x: x)
    assert Residual(Sequential(Conv2d(8, 16, 1)), shortcut=False).output_shape((8, 4, 4)) == (16, 4, 4)


# --------------------------------------------------------------------------------------------------------------
# MobileNet v1 against paper Table 5
# --------------------------------------------------------------------------------------------------------------
def mobilenet_macs_by_hand(alpha, size=224, classes=1000):
    """The MobileNet paper's Table 1 layer list, counted with plain arithmetic."""
    c, h = int(32 * alpha), size // 2
    macs = h * h * c * 3 * 9
    for c_out, stride in MOBILENET_V1_BLOCKS:
        c_out, h = int(c_out * alpha), h // stride
        macs += h * h * c * 9 + h * h * c * c_out
        c = c_out
    return macs, c * classes


MOBILENET_EXACT = {  # width: (conv MACs, FC MACs, trainable parameters), 224x224, 1000 classes
    1.0: (567_716_352, 1_024_000, 4_231_976), 0.75: (324_632_448, 768_000, 2_585_560),
    0.5: (148_985_088, 512_000, 1_331_592), 0.25: (40_774_272, 256_000, 470_072),
}


@pytest.mark.parametrize("alpha", [1.0, 0.75, 0.5, 0.25])
def test_mobilenet_counts_match_table5(alpha):
    model = mobilenet_v1(alpha)
    conv, fc, params = MOBILENET_EXACT[alpha]
    assert mobilenet_macs_by_hand(alpha) == (conv, fc)
    assert count_flops(model, include_fc=False) == conv
    assert count_flops(model) == conv + fc
    assert count_params(model) == params
    published_mflops, _ = paper.TABLE5_MOBILENET[f"{alpha} MobileNet-224"]
    assert round((conv + fc) / 1e6) == published_mflops            # Table 5 counts the classifier too
    # parameters as in the MobileNet paper and the authors' README: 4.2, 2.6, 1.3, 0.5 M
    assert round(params / 1e6, 1) == {1.0: 4.2, 0.75: 2.6, 0.5: 1.3, 0.25: 0.5}[alpha]


def test_mobilenet_conv_only_misses_the_published_569():
    assert round(MOBILENET_EXACT[1.0][0] / 1e6) == 568 != paper.TABLE5_MOBILENET["1.0 MobileNet-224"][0]


def test_mobilenet_structure_and_forward_backward(rng):
    model = mobilenet_v1(0.25, num_classes=10, rng=rng)
    assert model.widths == (8, 16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128, 256, 256)
    assert model.names == ["stem"] + [f"block{i}" for i in range(1, 14)] + ["pool", "fc"]
    assert model.block2.dw.stride == (2, 2) and model.block2.dw.groups == 16
    assert isinstance(model.fc, Linear) and model.fc.bias is not None
    assert sum(isinstance(m, BatchNorm2d) for _, m in model.named_modules()) == 27
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    out = model(x)
    assert out.shape == (2, 10) and np.isfinite(out).all()
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape and np.isfinite(dx).all()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_mobilenet_rejects_bad_width():
    with pytest.raises(ValueError, match="width"):
        mobilenet_v1(0)
    with pytest.raises(ValueError, match="no channels"):
        mobilenet_v1(0.01)


# --------------------------------------------------------------------------------------------------------------
# stacks with and without the shortcut
# --------------------------------------------------------------------------------------------------------------
def test_residual_stack_unit_is_a_shuffle_unit(rng):
    stack = unit_stack(2, 48, 3, rng=rng, dtype=np.float64)
    reference = ShuffleUnit(48, 48, groups=3, stride=1, rng=rng, dtype=np.float64)
    randomize_batchnorm(reference)
    stack[0].load_state_dict(reference.state_dict())               # same names, same shapes
    x = rng.standard_normal((2, 48, 6, 6))
    np.testing.assert_allclose(stack[0].forward(x), reference.forward(x), rtol=1e-12, atol=1e-12)
    assert stack[0].branch.names == reference.branch.names


def test_shuffle_branch_options(rng):
    no_bn = shuffle_branch(24, 3, batchnorm=False, rng=rng)
    assert no_bn.names == ["conv1", "relu1", "shuffle", "conv2", "conv3"]
    assert type(no_bn.relu1) is ReLU and not any(isinstance(m, BatchNorm2d) for m in no_bn)   # bn1's ReLU stays
    assert shuffle_branch(24, 1, rng=rng).names == ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3"]
    he = shuffle_branch(480, 3, rng=np.random.default_rng(5))
    lecun = shuffle_branch(480, 3, init="lecun", rng=np.random.default_rng(5))
    np.testing.assert_allclose(lecun.conv1.weight.data, he.conv1.weight.data / np.sqrt(2), rtol=1e-6)
    with pytest.raises(ValueError, match="init"):
        shuffle_branch(24, 3, init="xavier")
    with pytest.raises(ValueError, match="divisible"):
        shuffle_branch(20, 3)


def test_unit_input_gradient_norms(rng):
    stack = unit_stack(3, 12, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 12, 5, 5))
    dout = rng.standard_normal((2, 12, 5, 5))
    norms = unit_input_gradient_norms(stack, x, dout)
    assert norms.shape == (3,)
    stack.forward(x)
    assert norms[0] == pytest.approx(np.linalg.norm(stack.backward(dout)), rel=1e-12)
    d = stack[2].backward(dout)                                   # stack's caches are those of the same x
    assert norms[2] == pytest.approx(np.linalg.norm(d), rel=1e-12)
    with pytest.raises(ValueError, match="dout"):
        unit_input_gradient_norms(stack, x, dout[:1])


def test_plain_stack_gradient_vanishes_and_residual_one_does_not():
    """No batch norm, LeCun init: through 12 plain units the gradient shrinks by orders of magnitude; with the
    shortcut it does not shrink at all."""
    norms = {}
    for residual in (True, False):
        stack = unit_stack(12, 48, 3, residual=residual, batchnorm=False, init="lecun",
                           rng=np.random.default_rng(0), dtype=np.float64)
        x = np.random.default_rng(1).standard_normal((4, 48, 8, 8))
        dout = np.random.default_rng(2).standard_normal((4, 48, 8, 8))
        norms[residual] = unit_input_gradient_norms(stack, x, dout)
    assert norms[False][0] < 1e-2 * norms[False][-1]              # plain: vanishes towards the input
    assert norms[True][0] >= norms[True][-1]                      # residual: does not
    assert norms[False][0] < 1e-3 * norms[True][0]


def test_shuffle_branch_is_the_branch_of_a_shuffle_unit():
    branch = shuffle_branch(48, 3, rng=np.random.default_rng(7), dtype=np.float64)
    unit = ShuffleUnit(48, 48, groups=3, stride=1, rng=np.random.default_rng(7), dtype=np.float64)
    assert branch.names == unit.branch.names
    for (name, p), (_, q) in zip(branch.named_parameters(), unit.branch.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_residual_lives_in_nn_and_is_reexported():
    from numpy_shufflenet import nn
    from numpy_shufflenet.nn import Residual as FromFile
    assert Residual is nn.Residual is FromFile
