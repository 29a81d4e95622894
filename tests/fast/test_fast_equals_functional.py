"""The tuned kernels (numpy_shufflenet.fast) equal the textbook (numpy_shufflenet.functional), forward and every
gradient, in float64 to 1e-10, on hypothesis-drawn configurations; and they pass a numeric gradient check alone."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from numpy_shufflenet import fast, functional
from numpy_shufflenet.gradcheck import numeric_gradient, rel_error

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def assert_pairs_equal(name, args, kwargs, seed, tol=1e-10):
    """Run ``name`` forward and backward in both sets with one random ``dout``; every output within ``tol``."""
    fwd_ref, bwd_ref = getattr(functional, f"{name}_forward"), getattr(functional, f"{name}_backward")
    fwd_fast, bwd_fast = getattr(fast, f"{name}_forward"), getattr(fast, f"{name}_backward")
    copies = [None if a is None or not isinstance(a, np.ndarray) else a.copy() for a in args]
    out_ref, cache_ref = fwd_ref(*args, **kwargs)
    out_fast, cache_fast = fwd_fast(*[c if c is not None else a for a, c in zip(args, copies)], **kwargs)
    assert out_fast.shape == out_ref.shape and out_fast.dtype == out_ref.dtype
    assert rel_error(out_fast, out_ref) <= tol, f"{name} forward"
    dout = np.random.default_rng([seed, 1]).standard_normal(out_ref.shape)       # a stream of its own
    g_ref, g_fast = bwd_ref(dout, cache_ref), bwd_fast(channels_last(dout) if dout.ndim == 4 else dout, cache_fast)
    g_ref = g_ref if isinstance(g_ref, tuple) else (g_ref,)
    g_fast = g_fast if isinstance(g_fast, tuple) else (g_fast,)
    assert len(g_ref) == len(g_fast)
    for i, (a, b) in enumerate(zip(g_ref, g_fast)):
        if a is None:
            assert b is None
        else:
            assert b.shape == a.shape and b.dtype == a.dtype
            assert rel_error(b, a) <= tol, f"{name} gradient {i}"


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    depthwise = draw(st.booleans())
    c_in = groups * draw(st.integers(1, 3)) if not depthwise else draw(st.integers(2, 7))
    groups = c_in if depthwise else groups
    c_out = c_in if depthwise else groups * draw(st.integers(1, 3))
    k = draw(st.sampled_from([1, 3])) if not depthwise else draw(st.sampled_from([3, 5]))
    stride = draw(st.sampled_from([1, 2]))
    padding = draw(st.integers(0, k // 2))
    size = draw(st.integers(k, 9))
    return dict(N=draw(st.integers(1, 3)), c_in=c_in, c_out=c_out, k=k, stride=stride, padding=padding,
                groups=groups, H=size, W=draw(st.integers(k, 9)), bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(conv_configs())
def test_conv2d(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["N"], cfg["c_in"], cfg["H"], cfg["W"]))
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], cfg["k"], cfg["k"]))
    b = rng.standard_normal(cfg["c_out"]) if cfg["bias"] else None
    assert_pairs_equal("conv2d", (x, w, b), dict(stride=cfg["stride"], padding=cfg["padding"], groups=cfg["groups"]),
                       cfg["seed"])


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, groups", [(3, 4, 3, 2, 1, 1), (4, 6, 3, 1, 1, 2),
                                                                    (6, 9, 1, 1, 0, 3), (4, 4, 3, 2, 1, 4)],
                         ids=["dense", "grouped", "pointwise", "depthwise"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_of_an_empty_batch(c_in, c_out, k, stride, padding, groups, bias):
    """N = 0: the same empty output and empty dx as the textbook, and its zero dw and db (PyTorch's too)."""
    rng = np.random.default_rng(3)
    x = np.zeros((0, c_in, 7, 5))
    w = rng.standard_normal((c_out, c_in // groups, k, k))
    b = rng.standard_normal(c_out) if bias else None
    opts = dict(stride=stride, padding=padding, groups=groups)
    out_ref, cache_ref = functional.conv2d_forward(x, w, b, **opts)
    out, cache = fast.conv2d_forward(x, w, b, **opts)
    assert out.shape == out_ref.shape and out.shape[0] == 0 and out.dtype == out_ref.dtype
    for got, want in zip(fast.conv2d_backward(np.zeros(out.shape), cache),
                         functional.conv2d_backward(np.zeros(out.shape), cache_ref)):
        if want is None:
            assert got is None
        else:
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    dx, dw, db = fast.conv2d_backward(np.zeros(out.shape), cache, need_dx=False)
    assert dx is None and not dw.any() and dw.shape == w.shape and (db is None) == (not bias)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 7), st.integers(1, 7), st.booleans(), st.integers(0, 999))
def test_batchnorm2d(N, C, H, W, training, seed):
    # With 2 values per channel, xhat = +-1 and the training-mode dx is exactly 0: both sides are rounding
    # noise, and a relative error between two noises means nothing. From 3 values on dx is a real number.
    assume(not training or N * H * W >= 3)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)) * 3 + 1
    gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
    buffers = [dict(running_mean=rng.standard_normal(C), running_var=rng.uniform(0.5, 2, C)) for _ in range(2)]
    buffers[1] = {k: v.copy() for k, v in buffers[0].items()}
    out = []
    for kernels, buf in zip((functional, fast), buffers):
        out.append(kernels.batchnorm2d_forward(x, gamma, beta, training=training, **buf))
    for k in buffers[0]:                                   # the running statistics are updated alike
        assert rel_error(buffers[0][k], buffers[1][k]) <= 1e-12
    assert_pairs_equal("batchnorm2d", (x, gamma, beta),
                       dict(training=training, **{k: v.copy() for k, v in buffers[0].items()}), seed)


@st.composite
def pool_configs(draw):
    k = draw(st.integers(1, 3))
    return dict(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 4)), H=draw(st.integers(k, 9)),
                W=draw(st.integers(k, 9)), k=k, stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, k // 2)),
                seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(pool_configs(), st.sampled_from(["max_pool2d", "avg_pool2d"]))
def test_pooling(cfg, name):
    x = np.random.default_rng(cfg["seed"]).standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    assert_pairs_equal(name, (x,), dict(kernel_size=cfg["k"], stride=cfg["stride"], padding=cfg["padding"]),
                       cfg["seed"])


def test_max_pool_ties_go_to_the_same_input():
    x = np.zeros((1, 2, 5, 5))
    x[0, 1, 1:4, 1:4] = 7.0                                   # a plateau: every window is a tie
    assert_pairs_equal("max_pool2d", (x,), dict(kernel_size=3, stride=2, padding=1), 0, tol=1e-15)


@SETTINGS
@given(st.integers(1, 3), st.sampled_from([(6, 2), (6, 3), (12, 4), (8, 8), (5, 1), (15, 3), (10, 2), (24, 3),
                                           (36, 4)]),
       st.integers(1, 5), st.booleans(), st.integers(0, 999))
def test_channel_shuffle(N, cg, H, last, seed):
    C, g = cg                                 # g <= 3 on channels-last memory takes the one-copy-per-group path
    x = np.random.default_rng(seed).standard_normal((N, C, H, H + 1))
    x = channels_last(x) if last else x
    out, cache = fast.channel_shuffle_forward(x, g)
    np.testing.assert_array_equal(out, functional.channel_shuffle_forward(x, g)[0])
    assert out.strides == x.strides                                  # the input's memory layout is kept
    dout = np.random.default_rng([seed, 1]).standard_normal(x.shape)
    dout = channels_last(dout) if last else dout
    np.testing.assert_array_equal(fast.channel_shuffle_backward(dout, cache), dout[:, np.argsort(
        functional.channel_shuffle_indices(C, g))])                   # the inverse permutation


@pytest.mark.parametrize("name, shape", [("relu", (2, 3, 4, 5)), ("global_avg_pool2d", (2, 3, 4, 5))])
def test_elementwise_and_global_pool(name, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    assert_pairs_equal(name, (x,), {}, 0)


def test_linear_and_loss():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((3, 6)), rng.standard_normal(3)
    assert_pairs_equal("linear", (x, w, b), {}, 0)
    labels = np.array([0, 2, 1, 2])
    l1, d1 = functional.softmax_cross_entropy(x[:, :3], labels)
    l2, d2 = fast.softmax_cross_entropy(x[:, :3], labels)
    assert abs(l1 - l2) < 1e-14 and rel_error(d1, d2) < 1e-14


@pytest.mark.parametrize("name, args, kwargs", [
    ("conv2d", ((2, 6, 7, 6), (6, 1, 3, 3)), dict(stride=2, padding=1, groups=6)),
    ("conv2d", ((2, 6, 5, 5), (9, 2, 1, 1)), dict(groups=3)),
    ("conv2d", ((1, 3, 7, 7), (4, 3, 3, 3)), dict(stride=2, padding=1)),
    ("batchnorm2d", ((3, 4, 3, 3), (4,), (4,)), dict()),
    ("max_pool2d", ((2, 3, 7, 7),), dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", ((2, 3, 7, 7),), dict(kernel_size=3, stride=2, padding=1)),
])
def test_fast_kernels_pass_a_numeric_gradient_check_alone(name, args, kwargs):
    """Each fast backward against central differences (float64, random dout), for x and every parameter."""
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in args]
    fwd, bwd = getattr(fast, f"{name}_forward"), getattr(fast, f"{name}_backward")
    out, cache = fwd(*arrays, **kwargs)
    dout = rng.standard_normal(out.shape)
    grads = bwd(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for i, a in enumerate(arrays):
        def f(v, i=i):
            return fwd(*arrays[:i], v, *arrays[i + 1:], **kwargs)[0]
        assert rel_error(grads[i], numeric_gradient(f, a, dout)) < 1e-7, f"{name} gradient {i}"


NAN, INF = np.nan, np.inf


@pytest.mark.parametrize("kernels", [functional, fast], ids=["functional", "fast"])
def test_nan_and_minus_inf_route_gradients_as_pytorch(kernels):
    """Golden values from PyTorch 2.13 (CPU): NaN wins a max-pool window and the *last* NaN (row-major) takes the
    gradient; a window of -inf sends it to its first input, never to the padding; ReLU passes NaN's gradient."""
    x = np.array([[[[1.0, NAN, 2.0], [NAN, 0.0, 5.0], [0.0, 0.0, 0.0]]]])
    out, cache = kernels.max_pool2d_forward(x, kernel_size=3, stride=1)
    assert np.isnan(out).all()
    expected = np.zeros_like(x)
    expected[0, 0, 1, 0] = 1.0
    np.testing.assert_array_equal(kernels.max_pool2d_backward(np.ones_like(out), cache), expected)

    x = np.full((1, 1, 2, 2), -INF)
    out, cache = kernels.max_pool2d_forward(x, kernel_size=3, stride=2, padding=1)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == -INF
    np.testing.assert_array_equal(kernels.max_pool2d_backward(np.ones_like(out), cache), [[[[1.0, 0], [0, 0]]]])

    x = np.array([[[[NAN, -1.0], [2.0, 0.0]]]])
    out, cache = kernels.relu_forward(x)
    np.testing.assert_array_equal(out, [[[[NAN, 0.0], [2.0, 0.0]]]])
    np.testing.assert_array_equal(kernels.relu_backward(np.ones_like(x), cache), [[[[1.0, 0.0], [1.0, 0.0]]]])


# --------------------------------------------------------------------------------------------------------------
# the fused ends of a unit: relu(x + y) and relu(concat(a, b)) in one pass equal the two steps of the textbook
# --------------------------------------------------------------------------------------------------------------
SPECIAL = np.array([NAN, -NAN, INF, -INF, 0.0, -0.0, 1e-300, -1e-300])


def _with_specials(x):
    x = x.copy()
    x.reshape(-1)[:SPECIAL.size] = SPECIAL                # NaN, infinities and signed zeros through the fused path
    return x


@pytest.mark.parametrize("layout", [lambda a: a, channels_last], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_add_relu_is_relu_of_the_sum_bitwise(layout, dtype):
    rng = np.random.default_rng(11)
    x = layout(_with_specials(rng.standard_normal((3, 5, 4, 6))).astype(dtype))
    y = layout(rng.standard_normal(x.shape).astype(dtype))
    x0, y0 = x.copy(), y.copy()
    out, cache = fast.add_relu_forward(x, y)
    ref, ref_cache = functional.relu_forward(x + y)
    assert out.dtype == dtype and out.strides == x.strides           # the input's memory layout
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx, dy = fast.add_relu_backward(dout, cache)
    np.testing.assert_array_equal(dx, functional.relu_backward(dout, ref_cache))
    np.testing.assert_array_equal(dy, dx)
    np.testing.assert_array_equal(x, x0), np.testing.assert_array_equal(y, y0)       # inputs untouched


@pytest.mark.parametrize("layout", [lambda a: a, channels_last], ids=["nchw", "channels_last"])
def test_concat_relu_is_relu_of_the_concatenation_bitwise(layout):
    rng = np.random.default_rng(12)
    a = layout(_with_specials(rng.standard_normal((3, 4, 5, 6))))
    b = layout(rng.standard_normal((3, 7, 5, 6)))
    out, cache = fast.concat_relu_forward(a, b)
    ref, ref_cache = functional.relu_forward(np.concatenate([a, b], axis=1))
    assert out.shape == (3, 11, 5, 6) and out.transpose(0, 2, 3, 1).flags.c_contiguous       # channels-last
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    da, db = fast.concat_relu_backward(dout, cache)
    d_ref = functional.relu_backward(dout, ref_cache)
    assert da.shape == a.shape and db.shape == b.shape
    np.testing.assert_array_equal(da, d_ref[:, :4]), np.testing.assert_array_equal(db, d_ref[:, 4:])


@pytest.mark.parametrize("call, error, message", [
    (lambda: fast.add_relu_forward(np.ones((2, 3, 4, 4)), np.ones((2, 3, 4, 5))), ValueError,
     r"add_relu: expected y of shape \(2, 3, 4, 4\), got \(2, 3, 4, 5\)"),
    (lambda: fast.add_relu_forward(np.ones((2, 3)), np.ones((2, 3), np.float32)), TypeError,
     r"add_relu: expected y to have the same dtype as x \(float64\), got float32"),
    (lambda: fast.add_relu_forward(np.ones((2, 3)), [[1.0] * 3] * 2), TypeError,
     r"add_relu: expected y to be a numpy.ndarray, got list"),
    (lambda: fast.concat_relu_forward(np.ones((2, 3, 4, 4)), np.ones((2, 5, 4, 3))), ValueError,
     r"concat_relu: expected b of shape \(N, C_b, H, W\) = \(2, C_b, 4, 4\) like a, got \(2, 5, 4, 3\)"),
    (lambda: fast.concat_relu_forward(np.ones((2, 3, 4)), np.ones((2, 3, 4))), ValueError,
     r"concat_relu: expected a to be 4-D"),
    (lambda: fast.concat_relu_forward(np.ones((1, 1, 2, 2), int), np.ones((1, 1, 2, 2))), TypeError,
     r"concat_relu: expected a to have a float dtype"),
    (lambda: fast.add_relu_backward(np.ones((2, 3)), None), ValueError,
     r"add_relu: backward called before forward"),
    (lambda: fast.add_relu_backward(np.ones((2, 3)), fast.relu_forward(np.ones((2, 3)))[1]), TypeError,
     r"add_relu: expected the FastAddReluCache of a add_relu forward pass, got ReluCache"),
    (lambda: fast.add_relu_backward(np.ones((2, 4)), fast.add_relu_forward(np.ones((2, 3)), np.ones((2, 3)))[1]),
     ValueError, r"add_relu: expected dout of the forward output's shape \(2, 3\), got \(2, 4\)"),
    (lambda: fast.concat_relu_backward(np.ones((1, 2, 1, 1)), fast.add_relu_forward(np.ones((1, 2, 1, 1)),
                                                                                     np.ones((1, 2, 1, 1)))[1]),
     TypeError, r"concat_relu: expected the FastConcatReluCache of a concat_relu forward pass, got FastAddReluCache"),
    (lambda: fast.batchnorm2d_relu_forward(np.ones((2, 3, 4, 4)), np.ones(4), np.zeros(4)), ValueError,
     r"batchnorm2d_relu: expected x with 4 channels"),
    (lambda: fast.batchnorm2d_relu_backward(np.ones((2, 3, 4, 4)), None), ValueError,
     r"batchnorm2d_relu: backward called before forward"),
    (lambda: fast.batchnorm2d_relu_backward(np.ones((2, 3, 4, 4)),
                                            fast.batchnorm2d_forward(np.ones((2, 3, 4, 4)), np.ones(3),
                                                                     np.zeros(3))[1]),
     TypeError, r"batchnorm2d_relu: expected the FastBatchNormReluCache of a batchnorm2d_relu forward pass, "
                r"got FastBatchNormCache"),
    (lambda: fast.concat_relu_backward(np.ones((2, 3, 4, 4)), functional.concat_relu_forward(np.ones((2, 1, 4, 4)),
                                                                                             np.ones((2, 2, 4, 4)))[1]),
     TypeError, r"concat_relu: expected the FastConcatReluCache of a concat_relu forward pass, got ConcatReluCache"),
])
def test_fused_pairs_refuse_bad_input_naming_the_pair(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------------------------------
# the fused pairs of the contract: fast (one pass) == functional (the plain pairs one after the other)
# --------------------------------------------------------------------------------------------------------------
def _fused_case(name, rng, layout, dtype):
    """``(args, kwargs, buffers)`` of one call of the fused pair ``name``; the 4-D inputs stored by ``layout``."""
    x = layout(_with_specials(rng.standard_normal((3, 6, 5, 4))).astype(dtype)) if name != "batchnorm2d_relu" \
        else layout(rng.standard_normal((3, 6, 5, 4)).astype(dtype))
    if name == "add_relu":
        return (x, layout(rng.standard_normal(x.shape).astype(dtype))), {}, ()
    if name == "concat_relu":
        return (x, layout(rng.standard_normal((3, 2, 5, 4)).astype(dtype))), {}, ()
    gamma, beta = (1 + rng.standard_normal(6)).astype(dtype), rng.standard_normal(6).astype(dtype)
    buffers = (np.zeros(6, dtype), np.ones(6, dtype))
    return (x, gamma, beta), dict(momentum=0.3), buffers


@pytest.mark.parametrize("layout", [lambda a: a, channels_last], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["batchnorm2d_relu", "add_relu", "concat_relu"])
def test_fused_pairs_equal_the_textbooks(name, layout, dtype):
    """The one-pass kernels give the textbook's numbers: bitwise for the unit ends (the same additions and
    maximums), to rounding for batch norm + ReLU; in any input layout; the inputs are never modified."""
    rng = np.random.default_rng(31)
    args, kwargs, buffers = _fused_case(name, rng, layout, dtype)
    copies = [a.copy(order="K") for a in args]                   # the same numbers in the same layout
    results = {}
    for kernels in (functional, fast):
        own = [b.copy() for b in buffers]
        extra = dict(zip(("running_mean", "running_var"), own))
        with np.errstate(invalid="ignore"):                      # inf - inf in the specials: NaN, as PyTorch
            out, cache = getattr(kernels, f"{name}_forward")(*args, **kwargs, **extra)
        dout = np.random.default_rng(7).standard_normal(out.shape).astype(dtype)
        grads = getattr(kernels, f"{name}_backward")(channels_last(dout) if kernels is fast else dout, cache)
        results[kernels.__name__] = [out, *grads, *own]
        for a, c in zip(args, copies):
            assert a.tobytes() == c.tobytes() and a.strides == c.strides, f"{kernels.__name__} modified an input"
    ref, got = results["numpy_shufflenet.functional"], results["numpy_shufflenet.fast"]
    assert len(got) == len(ref) == 1 + len(args) + len(buffers)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert g.shape == r.shape and g.dtype == r.dtype == dtype, f"{name} result {i}"
        if name == "batchnorm2d_relu":
            assert rel_error(g, r) < (1e-10 if dtype == np.float64 else 1e-4), f"{name} result {i}"
        else:
            np.testing.assert_array_equal(g, r, err_msg=f"{name} result {i}")
