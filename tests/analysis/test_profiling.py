"""Per-layer timing: structure of the result, the instrumentation is removed again, times add up."""

import numpy as np
import pytest

from numpy_shufflenet.models import resnext_unit
from numpy_shufflenet.analysis.counting import count_flops
from numpy_shufflenet.models import ShuffleNet, ShuffleUnit
from numpy_shufflenet.nn import (AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d,
                                 Module, ReLU, Sequential)
from numpy_shufflenet.analysis.profiling import (KINDS, LayerTimes, by_kind, layer_kind, time_by_kind,
                                                 time_forward_backward, time_layers, time_models)


def tiny_net(rng):
    return ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng)


@pytest.fixture
def timed(rng):
    model = tiny_net(rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    return model, x, time_layers(model, x, repeat=2)


def test_rows_follow_the_shape_trace(timed):
    model, x, times = timed
    trace = list(model.shape_trace((3, 32, 32)))
    assert isinstance(times, LayerTimes) and len(times) == len(trace) == len(times.rows)
    assert [r.name for r in times] == [name for name, *_ in trace]
    assert [r.type for r in times] == [type(m).__name__ for _, m, *_ in trace]
    assert sum(r.macs for r in times) == count_flops(model, (3, 32, 32))
    assert times.batch == 2 and times.repeat == 2 and times.statistic == "median"


def test_times_are_positive_and_add_up(timed):
    _, _, times = timed
    assert all(r.forward > 0 and r.backward > 0 for r in times)
    assert times.other_forward >= 0 and times.other_backward >= 0
    leaves_f = sum(r.forward for r in times)
    leaves_b = sum(r.backward for r in times)
    assert leaves_f <= times.total_forward and leaves_b <= times.total_backward
    assert times.total == pytest.approx(leaves_f + leaves_b + times.other_forward + times.other_backward)
    assert times.measured_forward > 0 and times.measured_backward > 0


def test_instrumentation_is_removed(rng):
    model = tiny_net(rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    state = model.state_dict()
    time_layers(model, x, repeat=1)
    for _, module in model.named_modules():
        assert "forward" not in vars(module) and "backward" not in vars(module)
    after = model.state_dict()
    for name in state:                                      # running statistics restored, weights untouched
        np.testing.assert_array_equal(after[name], state[name])


def test_instrumentation_is_removed_after_an_error(rng):
    model = tiny_net(rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match="dout"):
        time_layers(model, x, dout=np.zeros((2, 3), dtype=np.float32))
    assert all("forward" not in vars(m) and "backward" not in vars(m) for _, m in model.named_modules())


def test_an_instance_attribute_is_put_back(rng):
    relu = ReLU()
    own = relu.forward                                     # an instance attribute set by someone else
    relu.forward = own
    model = Sequential(Conv2d(4, 4, 1, rng=rng), relu)
    time_layers(model, rng.standard_normal((1, 4, 3, 3)).astype(np.float32), repeat=1)
    assert vars(relu)["forward"] is own and "backward" not in vars(relu)


def test_by_kind(timed):
    _, _, times = timed
    kinds = by_kind(times)
    names = [k.kind for k in kinds]
    assert names == [k for k in KINDS if k in names]                              # KINDS order
    assert names == ["dense conv", "1x1 conv", "1x1 group conv", "depthwise conv", "FC", "batch norm", "ReLU",
                     "channel shuffle", "pooling", "other"]
    assert sum(k.time_share for k in kinds) == pytest.approx(1.0)
    assert sum(k.mac_share for k in kinds) == pytest.approx(1.0)
    assert sum(k.layers for k in kinds) == len(times)
    assert all(k.macs == 0 for k in kinds if k.kind in ("batch norm", "ReLU", "channel shuffle", "pooling", "other"))
    # ShuffleNet 0.25x g=3: 16 units, each with a depthwise conv and a shuffle; 5 pools (max, 3 avg, global)
    counts = {k.kind: k.layers for k in kinds}
    assert counts["depthwise conv"] == 16 and counts["channel shuffle"] == 16 and counts["pooling"] == 5
    assert counts["1x1 group conv"] == 31 and counts["1x1 conv"] == 1
    with pytest.raises(TypeError):
        by_kind(times.rows)


def test_time_by_kind_is_json_ready(rng):
    import json

    model = tiny_net(rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    before = model.state_dict()
    rows = time_by_kind(model, x, np.array([1, 7]), repeat=1)
    assert [r["kind"] for r in rows][-1] == "other" and "depthwise conv" in [r["kind"] for r in rows]
    assert sum(r["time_share"] for r in rows) == pytest.approx(1.0)
    assert all(r["seconds"] == pytest.approx(r["forward"] + r["backward"]) for r in rows)
    assert json.loads(json.dumps(rows)) == rows
    after = model.state_dict()
    assert all(np.array_equal(after[k], before[k]) for k in before)
    assert [r["kind"] for r in time_by_kind(model, x, repeat=1)] == [r["kind"] for r in rows]


def test_layer_kind():
    assert layer_kind(Conv2d(3, 24, 3, stride=2, padding=1)) == "dense conv"
    assert layer_kind(Conv2d(24, 60, 1)) == "1x1 conv"
    assert layer_kind(Conv2d(240, 60, 1, groups=3)) == "1x1 group conv"
    assert layer_kind(Conv2d(60, 60, 3, padding=1, groups=60)) == "depthwise conv"
    assert layer_kind(Conv2d(64, 64, 3, padding=1, groups=32)) == "grouped conv"
    assert layer_kind(Conv2d(1, 1, 3)) == "dense conv"                 # one channel: nothing to be depthwise about
    assert layer_kind(Linear(4, 2)) == "FC"
    assert layer_kind(BatchNorm2d(4)) == "batch norm"
    assert layer_kind(ChannelShuffle(2)) == "channel shuffle"
    for pool in (MaxPool2d(3, 2, 1), AvgPool2d(3, 2, 1), GlobalAvgPool2d()):
        assert layer_kind(pool) == "pooling"
    with pytest.raises(TypeError):
        layer_kind(Module())


def test_other_covers_the_residual_add(rng):
    """A lone ShuffleUnit and a ResNeXt unit: their add and concat are outside the leaves, so "other" is there."""
    cases = ((ShuffleUnit(12, 24, groups=3, stride=2, rng=rng), (2, 12, 8, 8), "pooling"),
             (resnext_unit(16, 8, 4, rng=rng), (2, 16, 6, 6), "grouped conv"))
    for unit, shape, expected_kind in cases:
        times = time_layers(unit, rng.standard_normal(shape).astype(np.float32), repeat=1)
        kinds = by_kind(times)
        assert kinds[-1].kind == "other" and kinds[-1].layers == 0 and kinds[-1].total >= 0
        assert expected_kind in {r.kind for r in times}
        assert times.other_forward + times.other_backward > 0          # the add / concat take some time


def test_time_forward_backward(rng):
    model = tiny_net(rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    before = model.state_dict()
    fwd, bwd = time_forward_backward(model, x, repeat=2)
    assert fwd > 0 and bwd > 0
    after = model.state_dict()
    assert all(np.array_equal(after[k], before[k]) for k in before)


def test_time_models(rng):
    small, big = tiny_net(rng), ShuffleNet(groups=3, scale=0.5, num_classes=10, rng=rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    before = [m.state_dict() for m in (small, big)]
    result = time_models([small, big], x, repeat=2)
    assert len(result) == 2 and all(f > 0 and b > 0 for f, b in result)
    for m, state in zip((small, big), before):
        after = m.state_dict()
        assert all(np.array_equal(after[k], state[k]) for k in state)
    with pytest.raises(TypeError):
        time_models([], x)
    with pytest.raises(ValueError, match="repeat"):
        time_models([small], x, repeat=0)


def test_statistic_min(rng):
    model = tiny_net(rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    fastest = time_layers(model, x, repeat=3, statistic="min")
    assert fastest.statistic == "min" and all(r.forward > 0 and r.backward > 0 for r in fastest)
    assert sum(r.forward for r in fastest) <= fastest.total_forward
    (f_min, b_min), = time_models([model], x, repeat=3, statistic="min")
    assert f_min > 0 and b_min > 0
    with pytest.raises(ValueError, match="statistic"):
        time_layers(model, x, statistic="mean")
    with pytest.raises(ValueError, match="statistic"):
        time_forward_backward(model, x, statistic="max")


def test_bad_arguments(rng):
    model = Sequential(Conv2d(2, 2, 1, rng=rng))
    x = np.zeros((1, 2, 3, 3), dtype=np.float32)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="repeat"):
            time_layers(model, x, repeat=bad)
        with pytest.raises(ValueError, match="repeat"):
            time_forward_backward(model, x, repeat=bad)
    with pytest.raises(TypeError):
        time_layers(lambda v: v, x)


def test_time_layers_can_time_a_training_steps_backward_without_the_image_gradient(monkeypatch):
    model = ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    seen = []
    original = model.backward

    def spy(dout, input_grad=True):
        seen.append(input_grad)
        return original(dout, input_grad=input_grad)

    monkeypatch.setattr(model, "backward", spy)
    time_layers(model, x, repeat=1, input_grad=False)
    assert seen == [False, False]                        # the warm-up pass and the timed one
    seen.clear()
    time_layers(model, x, repeat=1)
    assert seen == [True, True]
