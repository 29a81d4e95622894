"""The input contract: every bad call raises a ValueError or TypeError whose message names the layer, what it
expected and the value it got; and good calls never write into their inputs.

Each bad call is checked on its own with ``pytest.raises(..., match=...)``; the pattern requires the layer's name
and the offending value (and usually the expectation) to appear, in that order.
"""

import re

import numpy as np
import pytest

from numpy_shufflenet import nn
from numpy_shufflenet.functional import (avg_pool2d_forward, batchnorm2d_backward, batchnorm2d_forward,
                                         channel_shuffle_forward, channel_shuffle_indices, conv2d_backward_naive,
                                         conv2d_forward, conv2d_forward_naive, global_avg_pool2d_forward,
                                         linear_forward, max_pool2d_forward, relu_forward, softmax_cross_entropy)

from conftest import LAYER_CASE_IDS, assert_unchanged, make_layer_case, snapshot

_rng = np.random.default_rng(99)


def randn(*shape, dtype=np.float64):
    return _rng.standard_normal(shape).astype(dtype)


def message(*fragments):
    """A ``match`` pattern requiring every fragment, literally and in order, in the error message."""
    return ".*".join(re.escape(f) for f in fragments)


def bad(call, exc, *fragments, id):
    return pytest.param(call, exc, fragments, id=id)


X = randn(1, 3, 7, 5)            # a good input for the calls below
W = randn(4, 3, 3, 3)            # a good conv weight for X

BAD_CALLS = [
    # ---- conv2d -------------------------------------------------------------------------------------------------
    bad(lambda: conv2d_forward(randn(3, 7, 5), W), ValueError, "conv2d", "4-D", "(3, 7, 5)", id="conv-x-3d"),
    bad(lambda: conv2d_forward(X, randn(4, 3, 3)), ValueError, "conv2d", "w", "4-D", "(4, 3, 3)", id="conv-w-3d"),
    bad(lambda: conv2d_forward(randn(1, 4, 5, 5), W), ValueError,
        "conv2d", "expects 3 input channels", "4 channels", id="conv-channels-mismatch"),
    bad(lambda: conv2d_forward(randn(1, 6, 5, 5), randn(4, 2, 3, 3), groups=2), ValueError,
        "conv2d", "expects 4 input channels", "6 channels", id="conv-group-channels-mismatch"),
    bad(lambda: conv2d_forward(randn(1, 5, 5, 5), randn(4, 2, 3, 3), groups=2), ValueError,
        "conv2d", "divisible by groups=2", "in_channels=5", id="conv-in-not-divisible"),
    bad(lambda: conv2d_forward(randn(1, 4, 5, 5), randn(5, 2, 3, 3), groups=2), ValueError,
        "conv2d", "divisible by groups=2", "out_channels=5", id="conv-out-not-divisible"),
    bad(lambda: conv2d_forward(randn(1, 1, 3, 3), randn(1, 1, 5, 5)), ValueError,
        "conv2d", "kernel size 5", "larger than the padded input", "3 + 2*0 = 3", id="conv-kernel-too-large"),
    bad(lambda: conv2d_forward(randn(1, 1, 5, 3), randn(1, 1, 3, 6), padding=1), ValueError,
        "conv2d", "kernel size 6", "along W", "3 + 2*1 = 5", id="conv-kernel-too-large-W"),
    bad(lambda: conv2d_forward(X, W, stride=0), ValueError, "conv2d", "stride >= 1", "got 0", id="conv-stride-0"),
    bad(lambda: conv2d_forward(X, W, stride=(1, -2)), ValueError, "conv2d", "stride >= 1", "got -2",
        id="conv-stride-pair"),
    bad(lambda: conv2d_forward(X, W, stride=1.5), TypeError, "conv2d", "stride", "integer", "1.5",
        id="conv-stride-float"),
    bad(lambda: conv2d_forward(X, W, padding=-1), ValueError, "conv2d", "padding >= 0", "got -1",
        id="conv-padding-negative"),
    bad(lambda: conv2d_forward(X, W, groups=0), ValueError, "conv2d", "groups >= 1", "got 0", id="conv-groups-0"),
    bad(lambda: conv2d_forward(X.astype(np.int64), W), TypeError, "conv2d", "float dtype", "int64",
        id="conv-x-int"),
    bad(lambda: conv2d_forward(X.astype(object), W), TypeError, "conv2d", "float dtype", "object",
        id="conv-x-object"),
    bad(lambda: conv2d_forward(X, W.astype(np.int32)), TypeError, "conv2d", "w", "float dtype", "int32",
        id="conv-w-int"),
    bad(lambda: conv2d_forward(X.tolist(), W), TypeError, "conv2d", "numpy.ndarray", "list", id="conv-x-list"),
    bad(lambda: conv2d_forward(X.astype(np.float32), W), TypeError, "conv2d", "w", "float32", "float64",
        id="conv-x32-w64"),
    bad(lambda: conv2d_forward(X, W, randn(3)), ValueError, "conv2d", "b", "(4,)", "(3,)", id="conv-b-shape"),
    bad(lambda: conv2d_forward(X, W, randn(4, dtype=np.float32)), TypeError, "conv2d", "b", "float64", "float32",
        id="conv-b-dtype"),
    bad(lambda: conv2d_forward_naive(randn(3, 7, 5), W), ValueError, "conv2d", "4-D", "(3, 7, 5)",
        id="conv-naive-x-3d"),
    bad(lambda: conv2d_forward_naive(randn(1, 5, 5, 5), randn(4, 2, 3, 3), groups=2), ValueError,
        "conv2d", "in_channels=5", id="conv-naive-in-not-divisible"),
    # ---- batchnorm2d --------------------------------------------------------------------------------------------
    bad(lambda: batchnorm2d_forward(randn(3, 7, 5), randn(3), randn(3)), ValueError,
        "batchnorm2d", "4-D", "(3, 7, 5)", id="bn-x-3d"),
    bad(lambda: batchnorm2d_forward(X, randn(4), randn(3)), ValueError,
        "batchnorm2d", "gamma", "(3,)", "(4,)", id="bn-gamma-shape"),
    bad(lambda: batchnorm2d_forward(X, randn(3), randn(3, 1)), ValueError,
        "batchnorm2d", "beta", "1-D", "(3, 1)", id="bn-beta-2d"),
    bad(lambda: batchnorm2d_forward(X.astype(np.float32), randn(3), randn(3)), TypeError,
        "batchnorm2d", "gamma", "float32", "float64", id="bn-x32-gamma64"),
    bad(lambda: batchnorm2d_forward(X.astype(np.int16), randn(3), randn(3)), TypeError,
        "batchnorm2d", "float dtype", "int16", id="bn-x-int"),
    bad(lambda: batchnorm2d_forward(X.astype(object), randn(3), randn(3)), TypeError,
        "batchnorm2d", "float dtype", "object", id="bn-x-object"),
    bad(lambda: batchnorm2d_forward(X, randn(3), randn(3), running_mean=randn(2), running_var=randn(3)),
        ValueError, "batchnorm2d", "running_mean", "(3,)", "(2,)", id="bn-running-mean-shape"),
    bad(lambda: batchnorm2d_forward(X, randn(3), randn(3), training=False), ValueError,
        "batchnorm2d", "eval mode", "running_mean and running_var", "None", id="bn-eval-without-stats"),
    bad(lambda: batchnorm2d_forward(randn(1, 3, 1, 1), randn(3), randn(3)), ValueError,
        "batchnorm2d", "more than 1 value per channel", "(1, 3, 1, 1)", id="bn-one-value-per-channel"),
    # ---- channel_shuffle ----------------------------------------------------------------------------------------
    bad(lambda: channel_shuffle_forward(randn(3, 7, 5), 3), ValueError, "channel_shuffle", "4-D", "(3, 7, 5)",
        id="shuffle-x-3d"),
    bad(lambda: channel_shuffle_forward(randn(1, 5, 2, 2), 2), ValueError,
        "channel_shuffle", "divisible by groups=2", "channels=5", id="shuffle-not-divisible"),
    bad(lambda: channel_shuffle_forward(X, 0), ValueError, "channel_shuffle", "groups >= 1", "got 0",
        id="shuffle-groups-0"),
    bad(lambda: channel_shuffle_forward(X.astype(np.int64), 3), TypeError, "channel_shuffle", "float dtype",
        "int64", id="shuffle-x-int"),
    bad(lambda: channel_shuffle_indices(10, 3), ValueError, "channel_shuffle", "divisible by groups=3",
        "10 channels", id="shuffle-indices-not-divisible"),
    bad(lambda: channel_shuffle_indices(12, 3, order="bogus"), ValueError, "channel_shuffle", "'paper'",
        "'bogus'", id="shuffle-indices-order"),
    # ---- relu ---------------------------------------------------------------------------------------------------
    bad(lambda: relu_forward(X.astype(np.int64)), TypeError, "relu", "float dtype", "int64", id="relu-x-int"),
    bad(lambda: relu_forward(X.astype(object)), TypeError, "relu", "float dtype", "object", id="relu-x-object"),
    # ---- pooling ------------------------------------------------------------------------------------------------
    bad(lambda: max_pool2d_forward(randn(3, 7, 5), kernel_size=2), ValueError, "max_pool2d", "4-D", "(3, 7, 5)",
        id="maxpool-x-3d"),
    bad(lambda: max_pool2d_forward(randn(1, 1, 2, 2), kernel_size=3), ValueError,
        "max_pool2d", "kernel size 3", "larger than the padded input", "2 + 2*0 = 2", id="maxpool-kernel-too-large"),
    bad(lambda: max_pool2d_forward(X, kernel_size=3, stride=0), ValueError, "max_pool2d", "stride >= 1", "got 0",
        id="maxpool-stride-0"),
    bad(lambda: max_pool2d_forward(X, kernel_size=3, padding=-1), ValueError, "max_pool2d", "padding >= 0",
        "got -1", id="maxpool-padding-negative"),
    bad(lambda: max_pool2d_forward(X, kernel_size=3, padding=2), ValueError,
        "max_pool2d", "padding at most half the kernel size (1)", "got 2", id="maxpool-padding-too-large"),
    bad(lambda: max_pool2d_forward(X, kernel_size=0), ValueError, "max_pool2d", "kernel_size >= 1", "got 0",
        id="maxpool-kernel-0"),
    bad(lambda: max_pool2d_forward(X.astype(np.int8), kernel_size=2), TypeError, "max_pool2d", "float dtype",
        "int8", id="maxpool-x-int"),
    bad(lambda: avg_pool2d_forward(randn(3, 7, 5), kernel_size=2), ValueError, "avg_pool2d", "4-D", "(3, 7, 5)",
        id="avgpool-x-3d"),
    bad(lambda: avg_pool2d_forward(randn(1, 1, 4, 2), kernel_size=3, padding=0), ValueError,
        "avg_pool2d", "kernel size 3", "along W", "2 + 2*0 = 2", id="avgpool-kernel-too-large"),
    bad(lambda: avg_pool2d_forward(X, kernel_size=3, stride=(2, 0)), ValueError, "avg_pool2d", "stride >= 1",
        "got 0", id="avgpool-stride-0"),
    bad(lambda: avg_pool2d_forward(X, kernel_size=3, padding=-1), ValueError, "avg_pool2d", "padding >= 0",
        "got -1", id="avgpool-padding-negative"),
    bad(lambda: avg_pool2d_forward(X.astype(object), kernel_size=2), TypeError, "avg_pool2d", "float dtype",
        "object", id="avgpool-x-object"),
    bad(lambda: global_avg_pool2d_forward(randn(3, 7)), ValueError, "global_avg_pool2d", "4-D", "(3, 7)",
        id="gap-x-2d"),
    bad(lambda: global_avg_pool2d_forward(X.astype(np.int32)), TypeError, "global_avg_pool2d", "float dtype",
        "int32", id="gap-x-int"),
    # ---- linear -------------------------------------------------------------------------------------------------
    bad(lambda: linear_forward(X, randn(4, 105)), ValueError, "linear", "2-D", "(1, 3, 7, 5)", id="linear-x-4d"),
    bad(lambda: linear_forward(randn(2, 5), randn(3, 4)), ValueError,
        "linear", "expects 4 input features", "5 features", id="linear-features-mismatch"),
    bad(lambda: linear_forward(randn(2, 5, dtype=np.float32), randn(3, 5)), TypeError,
        "linear", "w", "float32", "float64", id="linear-x32-w64"),
    bad(lambda: linear_forward(randn(2, 5), randn(3, 5), randn(4)), ValueError, "linear", "b", "(3,)", "(4,)",
        id="linear-b-shape"),
    bad(lambda: linear_forward(randn(2, 5).astype(np.int64), randn(3, 5)), TypeError, "linear", "float dtype",
        "int64", id="linear-x-int"),
    # ---- softmax_cross_entropy ----------------------------------------------------------------------------------
    bad(lambda: softmax_cross_entropy(randn(2, 3), np.array([0, 5])), ValueError,
        "softmax_cross_entropy", "labels in [0, 3)", "got 5", id="ce-label-too-large"),
    bad(lambda: softmax_cross_entropy(randn(2, 3), np.array([-1, 0])), ValueError,
        "softmax_cross_entropy", "labels in [0, 3)", "got -1", id="ce-label-negative"),
    bad(lambda: softmax_cross_entropy(randn(2, 3), np.array([0.0, 1.0])), TypeError,
        "softmax_cross_entropy", "integer", "float64", id="ce-labels-float"),
    bad(lambda: softmax_cross_entropy(randn(2, 3), np.array([0, 1, 2])), ValueError,
        "softmax_cross_entropy", "labels of shape (2,)", "(3,)", id="ce-labels-shape"),
    bad(lambda: softmax_cross_entropy(randn(2, 3, 1), np.array([0, 1])), ValueError,
        "softmax_cross_entropy", "2-D", "(2, 3, 1)", id="ce-logits-3d"),
    bad(lambda: softmax_cross_entropy(randn(2, 3), np.array([0, 1]), label_smoothing=1.0), ValueError,
        "softmax_cross_entropy", "label_smoothing in [0, 1)", "1.0", id="ce-smoothing-1"),
    # ---- module constructors and module inputs ------------------------------------------------------------------
    bad(lambda: nn.Conv2d(5, 4, 3, groups=2), ValueError, "Conv2d", "divisible by groups=2", "in_channels=5",
        id="Conv2d-in-not-divisible"),
    bad(lambda: nn.Conv2d(4, 5, 3, groups=2), ValueError, "Conv2d", "divisible by groups=2", "out_channels=5",
        id="Conv2d-out-not-divisible"),
    bad(lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "Conv2d", "stride >= 1", "got 0", id="Conv2d-stride-0"),
    bad(lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "Conv2d", "padding >= 0", "got -1",
        id="Conv2d-padding-negative"),
    bad(lambda: nn.Conv2d(3, 4, 3)(randn(1, 5, 5, 5, dtype=np.float32)), ValueError,
        "conv2d", "expects 3 input channels", "5 channels", id="Conv2d-channels-mismatch"),
    bad(lambda: nn.Conv2d(3, 4, 3)(X), TypeError, "Conv2d", "float32", "float64", id="Conv2d-x64-w32"),
    bad(lambda: nn.BatchNorm2d(3)(X), TypeError, "BatchNorm2d", "float32", "float64", id="BatchNorm2d-x64"),
    bad(lambda: nn.Linear(5, 2)(randn(2, 5)), TypeError, "Linear", "float32", "float64", id="Linear-x64"),
    bad(lambda: nn.ChannelShuffle(2)(randn(1, 5, 2, 2)), ValueError, "channel_shuffle", "channels=5",
        id="ChannelShuffle-not-divisible"),
    bad(lambda: nn.ChannelShuffle(0), ValueError, "ChannelShuffle", "groups >= 1", "got 0",
        id="ChannelShuffle-groups-0"),
    bad(lambda: nn.MaxPool2d(3, padding=-1), ValueError, "MaxPool2d", "padding >= 0", "got -1",
        id="MaxPool2d-padding-negative"),
    bad(lambda: nn.AvgPool2d(3, stride=0), ValueError, "AvgPool2d", "stride >= 1", "got 0", id="AvgPool2d-stride-0"),
    bad(lambda: nn.Sequential(nn.ReLU(), 3), TypeError, "Sequential", "Module", "int", id="Sequential-not-module"),
    bad(lambda: nn.ReLU().to(np.int32), TypeError, "ReLU", "float dtype", "int32", id="Module-to-int"),
]


@pytest.mark.parametrize("call, exc, fragments", BAD_CALLS)
def test_bad_call_raises_a_clear_error(call, exc, fragments):
    with pytest.raises(exc, match=message(*fragments)):
        call()


# --------------------------------------------------------------------------------------------------------------
# backward passes: before the forward, and with a dout of the wrong shape or dtype
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", LAYER_CASE_IDS)
def test_backward_before_forward(rng, case_id):
    case = make_layer_case(case_id, rng)
    out, _ = case.run()
    with pytest.raises(ValueError, match=message(case.layer, "backward called before forward", "None")):
        case.backward(np.ones_like(out), None)


@pytest.mark.parametrize("case_id", LAYER_CASE_IDS)
def test_dout_of_the_wrong_shape(rng, case_id):
    case = make_layer_case(case_id, rng)
    out, cache = case.run()
    wrong = np.ones(out.shape[:-1] + (out.shape[-1] + 1,))
    with pytest.raises(ValueError, match=message(case.layer, "dout", str(out.shape), str(wrong.shape))):
        case.backward(wrong, cache)


@pytest.mark.parametrize("case_id", LAYER_CASE_IDS)
def test_dout_of_integer_dtype(rng, case_id):
    case = make_layer_case(case_id, rng)
    out, cache = case.run()
    with pytest.raises(TypeError, match=message(case.layer, "dout", "float dtype", "int64")):
        case.backward(np.ones(out.shape, dtype=np.int64), cache)


@pytest.mark.parametrize("case_id", ["conv2d-dense", "conv2d-depthwise", "conv2d_naive", "batchnorm2d-train",
                                     "batchnorm2d-eval", "linear"])
def test_float32_x_with_float64_parameters(rng, case_id):
    case = make_layer_case(case_id, rng, dtype=np.float64)
    x32 = case.args[0].astype(np.float32)
    with pytest.raises(TypeError, match=message(case.layer.replace("_naive", ""), "float32", "float64")):
        case.forward(x32, *case.args[1:], **case.kwargs)


@pytest.mark.parametrize("module", [nn.Conv2d(3, 4, 3), nn.BatchNorm2d(3), nn.ChannelShuffle(3), nn.ReLU(),
                                    nn.MaxPool2d(2), nn.AvgPool2d(2), nn.GlobalAvgPool2d(), nn.Linear(3, 2),
                                    nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())],
                         ids=lambda m: type(m).__name__)
def test_module_backward_before_forward(module):
    with pytest.raises(ValueError, match=message(type(module).__name__, "backward called before forward", "None")):
        module.backward(np.ones((1, 3, 2, 2), dtype=np.float32))


def test_naive_backward_before_forward():
    with pytest.raises(ValueError, match=message("conv2d_naive", "backward called before forward", "None")):
        conv2d_backward_naive(np.ones((1, 1, 2, 2)), None)


# --------------------------------------------------------------------------------------------------------------
# load_state_dict
# --------------------------------------------------------------------------------------------------------------
def make_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, rng=np.random.default_rng(0)), nn.BatchNorm2d(4))


def test_load_state_dict_missing_entry():
    state = make_net().state_dict()
    del state["0.weight"]
    with pytest.raises(ValueError, match=message("load_state_dict", "missing", "'0.weight'")):
        make_net().load_state_dict(state)


def test_load_state_dict_unexpected_entry():
    state = make_net().state_dict()
    state["2.weight"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match=message("load_state_dict", "unexpected", "'2.weight'")):
        make_net().load_state_dict(state)


def test_load_state_dict_wrong_shape_changes_nothing():
    net = make_net()
    before = net.state_dict()
    state = make_net().state_dict()
    state["0.weight"] = np.zeros((4, 3, 3, 3), dtype=np.float32)         # a valid entry, before the bad one
    state["1.running_var"] = np.ones(5, dtype=np.float32)
    with pytest.raises(ValueError, match=message("load_state_dict", "1.running_var", "(4,)", "(5,)")):
        net.load_state_dict(state)
    for name, value in net.state_dict().items():                         # all checks happen before any copy
        assert np.array_equal(value, before[name]), name


def test_load_state_dict_integer_entry():
    state = make_net().state_dict()
    state["1.bias"] = np.zeros(4, dtype=np.int64)
    with pytest.raises(TypeError, match=message("load_state_dict", "1.bias", "float dtype", "int64")):
        make_net().load_state_dict(state)


# --------------------------------------------------------------------------------------------------------------
# inputs are never modified; outputs are new arrays
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case_id", LAYER_CASE_IDS)
def test_inputs_are_never_modified(rng, case_id, dtype):
    case = make_layer_case(case_id, rng, dtype)
    buffers = [case.kwargs.get("running_mean"), case.kwargs.get("running_var")]      # eval mode only
    inputs = list(case.args) + buffers
    copies = snapshot(*inputs)
    out, cache = case.run()
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout_copy = dout.copy()
    grads = case.grads(dout, cache)
    case.grads(dout, cache)                              # a second backward from the same cache
    assert_unchanged(inputs, copies)
    assert_unchanged([dout], [dout_copy])
    for a in case.args + (dout,):
        if a is not None:
            assert not np.shares_memory(out, a), "the output must be a new array"
            assert not any(np.shares_memory(g, a) for g in grads if g is not None), "gradients must be new"


def test_batchnorm_training_changes_only_the_running_buffers(rng):
    x, gamma, beta = 5 * rng.standard_normal((2, 3, 4, 4)) + 12, rng.standard_normal(3), rng.standard_normal(3)
    mean, var = np.zeros(3), np.ones(3)
    copies = snapshot(x, gamma, beta)
    out, cache = batchnorm2d_forward(x, gamma, beta, running_mean=mean, running_var=var)
    batchnorm2d_backward(rng.standard_normal(out.shape), cache)
    assert_unchanged([x, gamma, beta], copies)
    assert not np.array_equal(mean, np.zeros(3)) and not np.array_equal(var, np.ones(3))


def test_cross_entropy_does_not_modify_its_inputs(rng):
    logits, labels = rng.standard_normal((4, 5)), rng.integers(0, 5, 4)
    copies = snapshot(logits, labels)
    _, dlogits = softmax_cross_entropy(logits, labels, label_smoothing=0.1)
    assert_unchanged([logits, labels], copies)
    assert not np.shares_memory(dlogits, logits)


def test_module_network_does_not_modify_x_or_dout(rng):
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, groups=3), nn.BatchNorm2d(6), nn.ReLU(), nn.ChannelShuffle(3),
                        nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1), nn.GlobalAvgPool2d(), nn.Linear(6, 2))
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    dout = rng.standard_normal((2, 2)).astype(np.float32)
    copies = snapshot(x, dout)
    net(x)
    net.backward(dout)
    assert_unchanged([x, dout], copies)
