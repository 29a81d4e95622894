"""Bad layer and module input, in both kernel sets: unsupported dtypes, out-of-range hyper-parameters, read-only
buffers, caches of another layer or tampered with. Each case asserts the exception type, the layer or argument
name and the offending value."""

import re
import warnings

import numpy as np
import pytest

from numpy_shufflenet import fast, functional, nn
from numpy_shufflenet.models import ShuffleNet

KERNELS = [pytest.param(functional, id="functional"), pytest.param(fast, id="fast")]
rng = np.random.default_rng(5)
X = rng.standard_normal((2, 3, 6, 6))
G, B = np.ones(3), np.zeros(3)


def raises(exc, *fragments):
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("call, name", [
    (lambda k, x: k.conv2d_forward(x, np.ones((4, 3, 3, 3), x.dtype)), "conv2d"),
    (lambda k, x: k.batchnorm2d_forward(x, G.astype(x.dtype), B.astype(x.dtype)), "batchnorm2d"),
    (lambda k, x: k.relu_forward(x), "relu"),
    (lambda k, x: k.max_pool2d_forward(x, kernel_size=2), "max_pool2d"),
    (lambda k, x: k.avg_pool2d_forward(x, kernel_size=2), "avg_pool2d"),
    (lambda k, x: k.channel_shuffle_forward(x, 3), "channel_shuffle"),
    (lambda k, x: k.global_avg_pool2d_forward(x), "global_avg_pool2d"),
])
@pytest.mark.parametrize("dtype", [np.float16, np.longdouble], ids=["float16", "longdouble"])
def test_unsupported_float_types_are_refused(k, call, name, dtype):
    if np.dtype(dtype) == np.float64:                       # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    with raises(TypeError, name, "float32 or float64", str(np.dtype(dtype))):
        call(k, X.astype(dtype))


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("kwargs, exc, fragments", [
    (dict(eps=0.0), ValueError, ["batchnorm2d", "eps", "0.0"]),
    (dict(eps=-1e-5), ValueError, ["batchnorm2d", "eps", "-1e-05"]),
    (dict(eps=float("nan")), ValueError, ["batchnorm2d", "eps", "nan"]),
    (dict(momentum=1.5), ValueError, ["batchnorm2d", "momentum", "[0, 1]", "1.5"]),
    (dict(momentum=-0.1), ValueError, ["batchnorm2d", "momentum", "-0.1"]),
    (dict(momentum="0.1"), TypeError, ["batchnorm2d", "momentum", "a number", "'0.1'"]),
    (dict(training="yes"), TypeError, ["batchnorm2d", "training", "True or False", "'yes'"]),
])
def test_batchnorm_hyper_parameters(k, kwargs, exc, fragments):
    rm, rv = np.zeros(3), np.ones(3)
    with raises(exc, *fragments):
        k.batchnorm2d_forward(X, G, B, running_mean=rm, running_var=rv, **kwargs)
    assert (rm == 0).all() and (rv == 1).all()


@pytest.mark.parametrize("k", KERNELS)
def test_batchnorm_zero_channels_and_channel_mismatch(k):
    with raises(ValueError, "batchnorm2d", "at least one channel", "(2, 0, 4, 4)"):
        k.batchnorm2d_forward(np.zeros((2, 0, 4, 4)), np.ones(0), np.zeros(0))
    with raises(ValueError, "batchnorm2d", "expected x with 4 channels", "(2, 3, 6, 6)"):
        k.batchnorm2d_forward(X, np.ones(4), np.zeros(4))          # blames the input, not gamma
    with raises(ValueError, "batchnorm2d", "gamma", "(3,)", "(4,)"):
        k.batchnorm2d_forward(X, np.ones(4), np.zeros(3))


@pytest.mark.parametrize("k", KERNELS)
def test_read_only_running_buffers_are_refused_before_anything_changes(k):
    rm, rv = np.zeros(3), np.ones(3)
    rv.flags.writeable = False
    with raises(ValueError, "batchnorm2d", "writeable running_var", "read-only"):
        k.batchnorm2d_forward(X, G, B, running_mean=rm, running_var=rv)
    assert (rm == 0).all()                                   # running_mean was not updated either
    out, _ = k.batchnorm2d_forward(X, G, B, running_mean=rm, running_var=rv, training=False)   # eval reads only
    assert out.shape == X.shape


def test_module_batchnorm_given_the_wrong_channels_blames_the_input():
    with raises(ValueError, "batchnorm2d", "expected x with 4 channels", "(2, 3, 6, 6)"):
        nn.BatchNorm2d(4, dtype=np.float64)(X)


@pytest.mark.parametrize("k", KERNELS)
def test_a_zero_by_zero_kernel_is_refused(k):
    with raises(ValueError, "conv2d", "at least 1x1", "(4, 3, 0, 0)"):
        k.conv2d_forward(X, np.ones((4, 3, 0, 0)))


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("shape", [(2, 4, 0, 0), (2, 4, 0, 3), (1, 1, 5, 0)])
@pytest.mark.parametrize("call, layer", [
    (lambda k, x: k.global_avg_pool2d_forward(x), "global_avg_pool2d"),
    (lambda k, x: k.max_pool2d_forward(x, kernel_size=2, padding=1), "max_pool2d"),
    (lambda k, x: k.avg_pool2d_forward(x, kernel_size=2, padding=1), "avg_pool2d"),
    (lambda k, x: k.conv2d_forward(x, np.ones((2, x.shape[1], 1, 1)), padding=1), "conv2d"),
])
def test_an_input_without_pixels_is_refused_without_numpy_warnings(k, shape, call, layer):
    """Nothing to average or pool over: a clear error (not NaN from a mean of nothing, nor a window of padding)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")                              # a NumPy warning would fail the test
        with raises(ValueError, layer, "at least one pixel per channel", str(shape)):
            call(k, np.zeros(shape))


@pytest.mark.parametrize("call, exc, fragments", [
    (lambda: nn.Conv2d(3, 4, 3, dtype=int), TypeError, ["Conv2d", "float32 or float64", "int64"]),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.float16), TypeError, ["Conv2d", "float32 or float64", "float16"]),
    (lambda: nn.Conv2d(3, 4, 3, dtype="banana"), TypeError, ["Conv2d", "float32 or float64", "'banana'"]),
    (lambda: nn.Linear(3, 4, dtype=np.int32), TypeError, ["Linear", "float32 or float64", "int32"]),
    (lambda: nn.BatchNorm2d(3, dtype=bool), TypeError, ["BatchNorm2d", "float32 or float64", "bool"]),
    (lambda: nn.BatchNorm2d(3, momentum=2), ValueError, ["BatchNorm2d", "momentum", "2.0"]),
    (lambda: nn.BatchNorm2d(3, eps=0), ValueError, ["BatchNorm2d", "eps", "0.0"]),
    (lambda: nn.Conv2d(3, 4, 3, rng=np.random.RandomState(0)), TypeError, ["numpy.random.Generator", "RandomState"]),
    (lambda: ShuffleNet(scale=True), ValueError, ["ShuffleNet", "scale", "True"]),
    (lambda: ShuffleNet(scale="1.0"), ValueError, ["ShuffleNet", "scale", "'1.0'"]),
])
def test_bad_module_construction(call, exc, fragments):
    with raises(exc, *fragments):
        call()


def _caches(k):
    """One forward cache of each layer kind."""
    w = rng.standard_normal((6, 1, 3, 3))
    x6 = rng.standard_normal((2, 6, 5, 5))
    return {
        "conv2d": k.conv2d_forward(X, rng.standard_normal((4, 3, 3, 3)), padding=1),
        "depthwise": k.conv2d_forward(x6, w, padding=1, groups=6),
        "batchnorm2d": k.batchnorm2d_forward(X, G, B),
        "relu": k.relu_forward(X),
        "max_pool2d": k.max_pool2d_forward(X, kernel_size=2),
        "avg_pool2d": k.avg_pool2d_forward(X, kernel_size=2),
        "channel_shuffle": k.channel_shuffle_forward(X, 3),
    }


BACKWARDS = {"conv2d": "conv2d", "depthwise": "conv2d", "batchnorm2d": "batchnorm2d", "relu": "relu",
             "max_pool2d": "max_pool2d", "avg_pool2d": "avg_pool2d", "channel_shuffle": "channel_shuffle"}


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("layer, other", [("conv2d", "relu"), ("batchnorm2d", "conv2d"), ("relu", "batchnorm2d"),
                                          ("max_pool2d", "relu"), ("channel_shuffle", "max_pool2d"),
                                          ("conv2d", "tuple"), ("avg_pool2d", "max_pool2d"),
                                          ("max_pool2d", "avg_pool2d")])
def test_backward_with_the_cache_of_another_layer(k, layer, other):
    caches = _caches(k)
    out, _ = caches[layer]
    foreign = tuple(caches["conv2d"][1]) if other == "tuple" else caches[other][1]
    with raises(TypeError, layer, "expected the", "got"):
        getattr(k, f"{BACKWARDS[layer]}_backward")(np.ones_like(out), foreign)


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_cache_with_a_flipped_training_flag(k, training):
    rm, rv = np.zeros(3), np.ones(3)
    out, cache = k.batchnorm2d_forward(X, G, B, running_mean=rm, running_var=rv, training=training)
    with raises(ValueError, "batchnorm2d", "the cache is inconsistent", f"training={not training}"):
        k.batchnorm2d_backward(np.ones_like(out), cache._replace(training=not training))


CONV_SETS = {"functional": (functional.conv2d_forward, functional.conv2d_backward),
             "functional-naive": (functional.conv2d_forward_naive, functional.conv2d_backward_naive),
             "fast": (fast.conv2d_forward, fast.conv2d_backward)}
EDITED_GROUPS = {"dense": (4, 6, 3, 1, 2), "grouped": (4, 6, 3, 2, 1), "grouped-same-width": (8, 8, 3, 4, 3),
                 "pointwise": (6, 6, 1, 3, 2), "zero": (4, 6, 3, 1, 0), "depthwise": (4, 4, 3, 4, 3)}


@pytest.mark.parametrize("kernels, case", [
    pytest.param(kernels, case, id=f"{kernels}-{case}") for kernels in CONV_SETS for case in EDITED_GROUPS
    if not (case == "depthwise" and kernels in ("functional", "fast"))])   # their depthwise caches hold no groups
def test_conv_cache_with_edited_groups_is_an_error_naming_the_layer(kernels, case):
    (forward, backward), (c_in, c_out, k, groups, edited) = CONV_SETS[kernels], EDITED_GROUPS[case]
    out, cache = forward(rng.standard_normal((2, c_in, 5, 5)), rng.standard_normal((c_out, c_in // groups, k, k)),
                         padding=k // 2, groups=groups)
    with raises(ValueError, "conv2d", "the cache is inconsistent", f"groups={edited}", "unchanged"):
        backward(np.ones_like(out), cache._replace(groups=edited))


@pytest.mark.parametrize("k", KERNELS)
def test_tampered_conv_cache_is_an_error_naming_the_layer(k):
    out, cache = k.conv2d_forward(X, rng.standard_normal((4, 3, 3, 3)), padding=1)
    with raises(ValueError, "conv2d", "shape"):
        k.conv2d_backward(np.ones_like(out), cache._replace(w=cache.w[:2]))


@pytest.mark.parametrize("args, error, message", [
    ((3, 3), ValueError, r"GroupReadout: expected group in \[0, 3\), got 3"),
    ((-1, 3), ValueError, r"GroupReadout: expected group >= 0, got -1"),
    ((0, 0), ValueError, r"GroupReadout: expected groups >= 1, got 0"),
    ((0.0, 3), TypeError, r"GroupReadout: expected group to be an integer, got 0.0"),
])
def test_group_readout_refuses_bad_groups(args, error, message):
    with pytest.raises(error, match=message):
        nn.GroupReadout(*args)


def test_group_readout_refuses_indivisible_channels():
    with pytest.raises(ValueError, match=r"GroupReadout: expected channels divisible by groups=3, got 7"):
        nn.GroupReadout(0, 3).forward(np.zeros((1, 7, 2, 2)))


@pytest.mark.parametrize("x, error, fragments", [
    ([[1.0, 2.0]], TypeError, ["Flatten", "numpy.ndarray", "list"]),
    (np.zeros(3), ValueError, ["Flatten", "at least 2 dimensions", "(3,)"]),
    (np.zeros((2, 3), dtype=np.int64), TypeError, ["Flatten", "float dtype", "int64"]),
])
def test_flatten_refuses_what_is_not_a_batch_of_float_arrays(x, error, fragments):
    with raises(error, *fragments):
        nn.Flatten().forward(x)
