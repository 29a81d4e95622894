"""ShuffleUnit and ShuffleNet: structure, shapes, gradients, modes and bad input."""

import numpy as np
import pytest

from numpy_shufflenet.functional import avg_pool2d_forward
from numpy_shufflenet.analysis.counting import count_flops, count_params, summary, summary_rows
from numpy_shufflenet.gradcheck import check_module, randomize_batchnorm
from numpy_shufflenet.models import GROUPS, SCALES, ShuffleNet, ShuffleUnit, stage_widths
from numpy_shufflenet.nn import AddReLU, AvgPool2d, BatchNorm2d, BatchNormReLU2d, ChannelShuffle, ConcatReLU, Conv2d


def _unit(in_channels, out_channels, stride, rng, **kw):
    unit = ShuffleUnit(in_channels, out_channels, groups=3, stride=stride, rng=rng, **kw).to(np.float64)
    return randomize_batchnorm(unit, rng)


@pytest.mark.parametrize("stride, in_channels", [(1, 24), (2, 12)])
@pytest.mark.parametrize("kw", [{}, {"grouped_first": False}, {"shuffle": False}])
def test_unit_gradients_match_numeric(stride, in_channels, kw):
    rng = np.random.default_rng(3)
    unit = _unit(in_channels, 24, stride, rng, **kw)
    x = rng.standard_normal((2, in_channels, 5, 5))
    results = check_module(unit, x, tol=1e-6, verbose=False)
    assert len(results) == 1 + len(unit.parameters())
    for r in results:
        assert r, str(r)
        if not r.name.endswith("bn2.bias"):            # bn2.bias is exactly zero by structure (see gradcheck)
            assert r.max_rel_error < 1e-6, str(r)


def test_bn2_bias_gradient_is_structurally_zero():
    # BN2 -> 1x1 conv -> BN3 in training mode: BN3 subtracts any per-channel shift again.
    rng = np.random.default_rng(0)
    unit = _unit(24, 24, 1, rng)
    out = unit(rng.standard_normal((2, 24, 5, 5)))
    unit.backward(rng.standard_normal(out.shape))
    grad = unit.branch.bn2.bias.grad
    assert np.max(np.abs(grad)) < 1e-12 * np.max(np.abs(unit.branch.bn3.bias.grad))


def test_unit_structure_follows_figure_2():
    unit = ShuffleUnit(240, 480, groups=3, stride=2)
    assert unit.branch.names == ["conv1", "bn1", "shuffle", "conv2", "bn2", "conv3", "bn3"]
    assert type(unit.branch.bn1) is BatchNormReLU2d and type(unit.branch.bn2) is BatchNorm2d     # "BN ReLU", "BN"
    assert type(unit.relu) is ConcatReLU and type(ShuffleUnit(24, 24, groups=3, stride=1).relu) is AddReLU
    # the state dict keeps the names of separate layers (weight files and interop/layouts.py rely on them)
    assert [k for k in unit.state_dict() if k.startswith("branch.bn1")] == [
        "branch.bn1.weight", "branch.bn1.bias", "branch.bn1.running_mean", "branch.bn1.running_var"]
    assert {"stem.bn.weight", "stem.bn.running_var"} <= set(ShuffleNet(scale=0.25, num_classes=4).state_dict())
    assert (unit.branch.conv1.in_channels, unit.branch.conv1.out_channels, unit.branch.conv1.groups) == (240, 120, 3)
    assert (unit.branch.conv2.groups, unit.branch.conv2.stride, unit.branch.conv2.kernel_size) == (120, (2, 2), (3, 3))
    assert (unit.branch.conv3.out_channels, unit.branch.conv3.groups) == (240, 3)      # 480 - 240
    assert isinstance(unit.shortcut, AvgPool2d) and unit.shortcut.padding == (1, 1)
    assert ShuffleUnit(24, 240, groups=3, stride=2, grouped_first=False).branch.conv1.groups == 1
    assert "shuffle" not in ShuffleUnit(240, 240, groups=3, stride=1, shuffle=False).branch.names
    assert ShuffleUnit(240, 240, groups=3, stride=1).shortcut is None


def test_stride2_unit_concatenates_pooled_shortcut_first():
    rng = np.random.default_rng(1)
    unit = ShuffleUnit(6, 24, groups=3, stride=2, rng=rng).to(np.float64)
    x = np.abs(rng.standard_normal((2, 6, 8, 8)))              # >= 0, so ReLU keeps the pooled shortcut as is
    out = unit(x)
    pooled, _ = avg_pool2d_forward(x, kernel_size=3, stride=2, padding=1)
    assert out.shape == (2, 24, 4, 4)
    np.testing.assert_allclose(out[:, :6], pooled, rtol=0, atol=1e-12)


def test_stride1_unit_adds_input_then_relu():
    rng = np.random.default_rng(2)
    unit = ShuffleUnit(12, 12, groups=3, stride=1, rng=rng).to(np.float64)
    x = rng.standard_normal((2, 12, 6, 6))
    y = unit.branch(x)
    np.testing.assert_allclose(unit(x), np.maximum(x + y, 0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize("scale", SCALES)
def test_all_25_configurations_build_and_run(groups, scale):
    model = ShuffleNet(groups=groups, scale=scale, num_classes=7, rng=np.random.default_rng(0))
    stem, c2, c3, c4 = model.widths
    assert c3 == 2 * c2 and c4 == 2 * c3 and c2 % (4 * groups) == 0 and stem % groups == 0
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    out = model(x)
    assert out.shape == (2, 7) and out.dtype == np.float32 and np.all(np.isfinite(out))
    dx = model.backward(np.ones_like(out) / out.size)
    assert dx.shape == x.shape and dx.dtype == np.float32 and np.all(np.isfinite(dx))
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_widths_table1_and_released():
    assert stage_widths(3, 1.0) == (24, 240, 480, 960)
    assert stage_widths(1, 1.0) == (24, 144, 288, 576)
    assert stage_widths(8, 0.5) == (16, 192, 384, 768)
    assert stage_widths(3, 1.5) == (24, 360, 720, 1440)
    assert stage_widths(4, 0.5) == (12, 144, 288, 576)       # paper Sec. 4.3: Stage-4 width 576 at 38 MFLOPs


def test_units_per_stage_and_depth():
    model = ShuffleNet(groups=3)
    assert [len(model.stage2), len(model.stage3), len(model.stage4)] == [4, 8, 4]
    convs = [m for _, m in model.named_modules() if isinstance(m, Conv2d)]
    assert len(convs) + 1 == 50                                  # conv1 + 16 units x 3 convs + FC
    assert model.fc.bias is None and all(c.bias is None for c in convs)
    assert not model.stage2[0].grouped_first and all(u.grouped_first for u in model.stage3)


def test_no_shuffle_ablation_drops_every_shuffle():
    with_shuffle = ShuffleNet(groups=8)
    without = ShuffleNet(groups=8, shuffle=False)
    count = lambda m: sum(isinstance(x, ChannelShuffle) for _, x in m.named_modules())
    assert count(with_shuffle) == 16 and count(without) == 0
    assert count_params(with_shuffle) == count_params(without)


def test_whole_tiny_network_gradient_check_training_mode():
    rng = np.random.default_rng(0)
    model = randomize_batchnorm(ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng).to(np.float64), rng)
    x = rng.standard_normal((8, 3, 32, 32))
    # Three sampled coordinates per tensor. h = 1e-7 rather than 1e-6: a stem weight moves every one of the
    # ~10^5 ReLU and max-pool inputs, and with h = 1e-6 some of them cross their kink, which spoils the
    # central difference of that coordinate (the analytic gradient is right; smaller h agrees with it).
    results = check_module(model, x, num_samples=3, h=1e-7, tol=1e-5, verbose=False, rng=np.random.default_rng(5))
    failed = [str(r) for r in results if not r]
    assert not failed, "\n".join(failed)
    checked = [r for r in results if not r.name.endswith("bn2.bias")]
    assert len(checked) == len(results) - 16 and max(r.max_rel_error for r in checked) < 1e-5
    for name, p in model.named_parameters():                   # the 16 structural zeros are exactly zero
        if name.endswith("bn2.bias"):
            assert np.max(np.abs(p.grad)) < 1e-9


def test_full_224_forward_backward_is_finite_and_summary_totals_agree():
    model = ShuffleNet(groups=3, scale=1.0, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)     # one image is enough
    out = model(x)
    dx = model.backward(np.random.default_rng(2).standard_normal(out.shape).astype(np.float32))
    assert out.shape == (1, 1000) and np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
    rows = summary_rows(model, (3, 224, 224))
    assert sum(r[3] for r in rows) == count_params(model) == 1_864_728
    assert sum(r[4] for r in rows) == count_flops(model) == 137_460_672
    assert "137,460,672" in summary(model) and "1,864,728" in summary(model)


def test_train_eval_switch_batch_norm():
    rng = np.random.default_rng(0)
    model = ShuffleNet(groups=2, scale=0.25, num_classes=5, rng=rng)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    before = model.stem.bn.running_mean.copy()
    model.train()
    a = model(x)
    assert not np.array_equal(model.stem.bn.running_mean, before)       # training updates the statistics
    model.eval()
    assert all(not m.training for _, m in model.named_modules())
    frozen = model.stem.bn.running_mean.copy()
    b1, b2 = model(x), model(x[:1])
    np.testing.assert_array_equal(model.stem.bn.running_mean, frozen)
    np.testing.assert_allclose(b1[:1], b2, rtol=1e-5, atol=1e-6)      # eval: a sample does not see the batch
    assert not np.allclose(a, b1)


def test_any_input_size_of_at_least_32():
    model = ShuffleNet(groups=3, scale=0.5, num_classes=4, rng=np.random.default_rng(0))
    for size in [(32, 32), (40, 56), (65, 33)]:
        x = np.random.default_rng(0).standard_normal((2, 3) + size).astype(np.float32)
        assert model(x).shape == (2, 4)
    assert model.output_shape((3, 40, 56)) == (4,)


@pytest.mark.parametrize("kwargs, match", [
    ({"groups": 5}, r"groups in \(1, 2, 3, 4, 8\), got 5"),
    ({"scale": 0.75}, r"scale in .*got 0.75"),
    ({"groups": 2.0}, r"groups to be an integer, got 2.0"),
])
def test_unsupported_groups_or_scale(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ShuffleNet(**kwargs)


def test_bad_network_inputs():
    model = ShuffleNet(groups=3, scale=0.25, num_classes=4)
    with pytest.raises(ValueError, match=r"ShuffleNet: expected an input of at least 32x32.*got 16x16"):
        model(np.zeros((2, 3, 16, 16), dtype=np.float32))
    with pytest.raises(ValueError, match=r"ShuffleNet: expected input of shape \(N, 3, H, W\), got \(2, 1, 32, 32\)"):
        model(np.zeros((2, 1, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"ShuffleNet: expected x to be 4-D"):
        model(np.zeros((3, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"at least 32x32"):
        count_flops(model, (3, 16, 16))


def test_bad_unit_arguments():
    with pytest.raises(ValueError, match=r"ShuffleUnit: .*in_channels == out_channels, got 12 and 24"):
        ShuffleUnit(12, 24, groups=3, stride=1)
    with pytest.raises(ValueError, match=r"ShuffleUnit: expected stride 1 or 2, got 3"):
        ShuffleUnit(12, 12, groups=3, stride=3)
    with pytest.raises(ValueError, match=r"ShuffleUnit: expected the bottleneck .* multiple of groups=3, got 4"):
        ShuffleUnit(16, 16, groups=3, stride=1)
    unit = ShuffleUnit(12, 12, groups=3, stride=1)
    with pytest.raises(ValueError, match=r"ShuffleUnit: expected 12 input channels, got x of shape \(1, 6, 4, 4\)"):
        unit(np.zeros((1, 6, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"ShuffleUnit: backward called before forward"):
        ShuffleUnit(12, 12, groups=3, stride=1).backward(np.zeros((1, 12, 4, 4), dtype=np.float32))
