"""The kernel switch: use_kernels("fast" | "reference" | obj), active_kernels(), and a whole network run on each."""

import numpy as np
import pytest

import numpy_shufflenet as ns
from numpy_shufflenet import fast, functional
from numpy_shufflenet.functional import softmax_cross_entropy
from numpy_shufflenet.gradcheck import rel_error
from numpy_shufflenet.kernels import KERNEL_NAMES
from numpy_shufflenet.models import ShuffleNet, ShuffleUnit
from numpy_shufflenet.paper.experiments import SGD


def tiny_net(groups=3, seed=0, dtype=np.float64):
    net = ShuffleNet(groups=groups, scale=0.25, num_classes=5, rng=np.random.default_rng(seed), dtype=dtype)
    ns.gradcheck.randomize_batchnorm(net, np.random.default_rng(seed + 1))
    return net


def run_step(net, x, labels):
    """Logits, dx and every parameter gradient of one training-mode forward/backward pass."""
    logits = net(x)
    _, dlogits = softmax_cross_entropy(logits, labels)
    dx = net.backward(dlogits)
    return logits, dx, {name: p.grad.copy() for name, p in net.named_parameters()}


def test_default_is_fast_and_both_sets_hold_every_name():
    assert ns.active_kernels() == "fast"
    for name in KERNEL_NAMES:
        assert callable(getattr(fast, name)) and callable(getattr(functional, name))


def test_plain_call_and_context_manager_restore():
    with ns.use_kernels("reference") as k:
        assert ns.active_kernels() == "reference" and k.name == "reference"
        with ns.use_kernels("fast"):
            assert ns.active_kernels() == "fast"
        assert ns.active_kernels() == "reference"
    assert ns.active_kernels() == "fast"
    switch = ns.use_kernels("reference")
    try:
        assert ns.active_kernels() == "reference"
    finally:
        ns.use_kernels("fast")
    assert switch.previous.name == "fast"


def test_context_manager_restores_after_an_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with ns.use_kernels("reference"):
            raise RuntimeError("boom")
    assert ns.active_kernels() == "fast"


@pytest.mark.parametrize("groups", [1, 3, 8])
def test_reference_equals_fast_on_a_whole_network(groups):
    """Logits, dx and every parameter gradient agree to 1e-10 (float64, training mode, both unit strides).

    (Rounding differs between the two sets at the 1e-16 level, so a pre-activation within that distance of a
    ReLU's kink could route one element's gradient differently; these inputs have none.)"""
    rng = np.random.default_rng(groups + 10)
    x = rng.standard_normal((2, 3, 32, 32))
    labels = rng.integers(0, 5, size=2)
    with ns.use_kernels("reference"):
        ref = run_step(tiny_net(groups), x, labels)
    with ns.use_kernels("fast"):
        got = run_step(tiny_net(groups), x, labels)
    assert rel_error(got[0], ref[0]) < 1e-10 and rel_error(got[1], ref[1]) < 1e-10
    assert got[2].keys() == ref[2].keys()
    largest = max(np.abs(g).max() for g in ref[2].values())
    for name in ref[2]:
        if name.endswith("bn2.bias"):
            # zero by structure (a batch norm follows through a 1x1 conv): both sides are rounding noise
            assert max(np.abs(got[2][name]).max(), np.abs(ref[2][name]).max()) < 1e-10 * largest, name
        else:
            assert rel_error(got[2][name], ref[2][name]) < 1e-10, name


def test_backward_uses_the_set_of_its_own_forward():
    """Switching sets between forward and backward must not hand one set's cache to the other's backward."""
    rng = np.random.default_rng(0)
    unit = ShuffleUnit(12, 24, groups=3, stride=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 12, 8, 8))
    dout = rng.standard_normal((2, 24, 4, 4))
    with ns.use_kernels("reference"):
        unit(x)
    dx_mixed = unit.backward(dout)                 # backward under "fast", caches from "reference"
    with ns.use_kernels("reference"):
        unit(x)
        dx_ref = unit.backward(dout)
    np.testing.assert_allclose(dx_mixed, dx_ref, rtol=0, atol=1e-12)


class StudentShuffle:
    """A student's partial kernel object: only the channel shuffle, written their own way."""

    __name__ = "student"

    @staticmethod
    def channel_shuffle_forward(x, groups):
        N, C, H, W = x.shape
        out = x.reshape(N, groups, C // groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)
        return out, groups

    @staticmethod
    def channel_shuffle_backward(dout, cache):
        N, C, H, W = dout.shape
        groups = cache
        return dout.reshape(N, C // groups, groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)


def test_a_partial_student_object_trains_with_the_rest_falling_back():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 5, size=8)
    calls = []

    class Counting(StudentShuffle):
        @staticmethod
        def channel_shuffle_forward(x, groups):
            calls.append(groups)
            return StudentShuffle.channel_shuffle_forward(x, groups)

    net = ShuffleNet(groups=3, scale=0.25, num_classes=5, rng=np.random.default_rng(1), zero_init_residual=True)
    opt = SGD(net.parameters(), lr=0.01)
    losses = []
    with ns.use_kernels(Counting()) as k:
        assert ns.active_kernels() == "student" and k.name == "student"
        assert k["conv2d_forward"] is fast.conv2d_forward            # the rest falls back to the default set
        for _ in range(4):
            loss, dlogits = softmax_cross_entropy(net(x), labels)
            net.backward(dlogits)
            opt.step()
            losses.append(loss)
    assert len(calls) == 4 * 16 and set(calls) == {3}                   # every unit's shuffle, every step
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    # the same network under the reference shuffle gives the same numbers
    with ns.use_kernels(StudentShuffle()):
        student = run_step(tiny_net(), x.astype(np.float64), labels)
    reference = run_step(tiny_net(), x.astype(np.float64), labels)
    assert rel_error(student[1], reference[1]) < 1e-10


@pytest.mark.parametrize("kernels, error, words", [
    ("slow", ValueError, ["use_kernels", "'fast', 'reference'", "'slow'"]),
    ({"conv2d_foward": lambda x: x}, ValueError, ["unknown kernel name", "'conv2d_foward'"]),
    ({"relu_forward": 3, "relu_backward": 4}, TypeError, ["relu_forward", "a function", "int"]),
    ({"relu_forward": lambda x: (x, None)}, ValueError, ["relu_forward comes without relu_backward"]),
    ({"relu_backward": lambda d, c: d}, ValueError, ["relu_backward comes without relu_forward"]),
    (object(), ValueError, ["holds none of the kernel names"]),
])
def test_bad_kernel_sets_are_refused_by_name(kernels, error, words):
    with pytest.raises(error) as info:
        ns.use_kernels(kernels)
    for w in words:
        assert w in str(info.value)
    assert ns.active_kernels() == "fast"


def _relu_pair(forward_result=None, backward_result=None):
    def relu_forward(x):
        out = np.maximum(x, 0)
        return (out, x > 0) if forward_result is None else forward_result(out)

    def relu_backward(dout, mask):
        return dout * mask if backward_result is None else backward_result(dout)

    return {"relu_forward": relu_forward, "relu_backward": relu_backward}


@pytest.mark.parametrize("pair, error, words", [
    (_relu_pair(forward_result=lambda out: out), TypeError, ["relu_forward must return (out, cache)", "ndarray"]),
    (_relu_pair(forward_result=lambda out: (out, 1, 2)), TypeError, ["relu_forward", "a tuple of 3"]),
    (_relu_pair(backward_result=lambda d: d[:, :1]), ValueError, ["relu_backward must return dx", "shape"]),
])
def test_a_broken_contract_is_an_error_naming_the_function(pair, error, words):
    layer = ns.nn.ReLU()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    with ns.use_kernels(pair):
        with pytest.raises(error) as info:
            layer(x)
            layer.backward(np.ones_like(x))
    for w in words:
        assert w in str(info.value)


def test_a_backward_returning_the_wrong_arity_is_named():
    def conv2d_backward(dout, cache):
        dx, dw, db = functional.conv2d_backward(dout, cache)
        return dx, dw                                       # forgot db
    kernels = {"conv2d_forward": functional.conv2d_forward, "conv2d_backward": conv2d_backward}
    conv = ns.nn.Conv2d(3, 6, 3, padding=1, dtype=np.float64, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((1, 3, 5, 5))
    with ns.use_kernels(kernels, name="mine"):
        out = conv(x)
        with pytest.raises(TypeError, match=r"use_kernels\(mine\): conv2d_backward must return \(dx, dw, db\), "
                                            r"got a tuple of 2"):
            conv.backward(np.ones_like(out))


def test_a_students_relu_only_set_runs_every_relu_of_the_network():
    """A set holding only relu_forward/relu_backward: the fused pairs are composed of it, so the student's ReLU
    ends every unit (relu(x + y), relu(concat)) and follows every BN; gradients as the default set's."""
    outputs, backward_calls = [], []

    def relu_forward(x):
        out, cache = functional.relu_forward(x)
        outputs.append(out)
        return out, cache

    def relu_backward(dout, cache):
        backward_calls.append(dout.shape)
        return functional.relu_backward(dout, cache)

    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 32, 32))
    labels = rng.integers(0, 5, size=2)
    expected = run_step(tiny_net(), x, labels)
    net = tiny_net()
    with ns.use_kernels({"relu_forward": relu_forward, "relu_backward": relu_backward}, name="student") as k:
        assert k["add_relu_forward"] is not fast.add_relu_forward and k["conv2d_forward"] is fast.conv2d_forward
        got = run_step(net, x, labels)
        outputs.clear()
        h = net.stem(x)
        assert len(outputs) == 1 and outputs[-1] is h           # the stem's BN ReLU: the student's relu
        h = net.maxpool(h)
        units = [unit for stage in (net.stage2, net.stage3, net.stage4) for unit in stage]
        for unit in units:
            h = unit(h)
            assert outputs[-1] is h, f"{unit!r} did not end in the student's ReLU"
        assert len(outputs) == 1 + 2 * len(units)                # and each unit's bn1
    assert len(backward_calls) == 1 + 2 * len(units)         # the stem's BN ReLU, every bn1 and every unit end
    assert rel_error(got[0], expected[0]) < 1e-12 and rel_error(got[1], expected[1]) < 1e-12
    largest = max(np.abs(g).max() for g in expected[2].values())
    for name in expected[2]:
        assert np.abs(got[2][name] - expected[2][name]).max() <= 1e-12 * largest, name


def test_fused_pairs_are_composed_of_the_students_plain_pairs_or_taken_from_the_default():
    calls = []

    def batchnorm2d_forward(x, gamma, beta, **kwargs):
        calls.append("batchnorm2d_forward")
        return functional.batchnorm2d_forward(x, gamma, beta, **kwargs)

    with ns.use_kernels({"batchnorm2d_forward": batchnorm2d_forward,
                         "batchnorm2d_backward": functional.batchnorm2d_backward}) as k:
        assert k["add_relu_forward"] is fast.add_relu_forward              # no relu given: the default fused pair
        assert k["concat_relu_backward"] is fast.concat_relu_backward
        assert k["batchnorm2d_relu_forward"] is not fast.batchnorm2d_relu_forward
        layer = ns.nn.BatchNormReLU2d(3, dtype=np.float64)
        x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
        out = layer(x)
    assert calls == ["batchnorm2d_forward"] and (out >= 0).all()         # the student's batch norm, then a ReLU
    with ns.use_kernels(StudentShuffle()) as k:                           # neither part given: all three default
        assert all(k[f"{p}_{d}"] is getattr(fast, f"{p}_{d}") for p in ("batchnorm2d_relu", "add_relu",
                                                                          "concat_relu") for d in ("forward",
                                                                                                   "backward"))


def test_a_students_own_fused_pair_is_used_and_checked():
    seen = []

    def add_relu_forward(x, y):
        seen.append("forward")
        return functional.add_relu_forward(x, y)

    def add_relu_backward(dout, cache):
        seen.append("backward")
        return functional.add_relu_backward(dout, cache)

    rng = np.random.default_rng(3)
    unit = ShuffleUnit(12, 12, groups=3, stride=1, rng=rng, dtype=np.float64)
    x, dout = rng.standard_normal((2, 12, 4, 4)), rng.standard_normal((2, 12, 4, 4))
    expected, dx_expected = unit(x), unit.backward(dout)
    with ns.use_kernels({"add_relu_forward": add_relu_forward, "add_relu_backward": add_relu_backward}):
        out = unit(x)
        dx = unit.backward(dout)
    assert seen == ["forward", "backward"]
    assert rel_error(out, expected) < 1e-12 and rel_error(dx, dx_expected) < 1e-12

    def forgets_dy(dout, cache):
        return functional.add_relu_backward(dout, cache)[0]

    with ns.use_kernels({"add_relu_forward": functional.add_relu_forward, "add_relu_backward": forgets_dy},
                        name="mine"):
        unit(x)
        with pytest.raises(TypeError, match=r"use_kernels\(mine\): add_relu_backward must return \(dx, dy\), "
                                            r"got ndarray"):
            unit.backward(dout)

    def wrong_db(dout, cache):
        da, db = functional.concat_relu_backward(dout, cache)
        return da, db[:, :1]

    unit2 = ShuffleUnit(12, 24, groups=3, stride=2, rng=rng, dtype=np.float64)
    with ns.use_kernels({"concat_relu_forward": functional.concat_relu_forward, "concat_relu_backward": wrong_db},
                        name="mine"):
        out = unit2(x)
        with pytest.raises(ValueError, match=r"use_kernels\(mine\): concat_relu_backward must return db of the "
                                             r"input's shape \(2, 12, 2, 2\)"):
            unit2.backward(np.ones_like(out))
    with pytest.raises(ValueError, match="batchnorm2d_relu_forward comes without batchnorm2d_relu_backward"):
        ns.use_kernels({"batchnorm2d_relu_forward": functional.batchnorm2d_relu_forward})


def test_a_students_conv_skips_no_work_but_the_module_still_returns_none():
    """need_dx belongs to the contract's conv2d_backward; a student's conv2d_backward (dout, cache) is called
    without it, and its dx is dropped."""
    rng = np.random.default_rng(4)
    conv = ns.nn.Conv2d(3, 6, 3, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 5, 5))
    out = conv(x)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    dw = conv.weight.grad.copy()
    with ns.use_kernels({"conv2d_forward": functional.conv2d_forward,
                         "conv2d_backward": lambda d, c: functional.conv2d_backward(d, c)}):
        conv(x)
        assert conv.backward(dout, input_grad=False) is None
        np.testing.assert_allclose(conv.weight.grad, dw, rtol=1e-12, atol=1e-14)
        conv(x)
        np.testing.assert_allclose(conv.backward(dout), dx, rtol=1e-12, atol=1e-14)
