"""The fast kernels: dtype preservation, agreement with plain reference versions, layout independence, speed.

* **dtype**: float32 work stays float32 (no silent promotion to float64) in every layer's forward and backward,
  also inside a ShuffleUnit and a whole ShuffleNet (every leaf layer's output and gradient is checked);
* **reference routes**: each fast kernel (channels-last, separable pools, one-pass batch norm, im2col as a
  patch matrix) equals the plain NCHW version of the same maths written out here, to 1e-10 in float64;
* **layout**: an NCHW-contiguous input and the same numbers in channels-last memory give identical results;
* **caches**: each convolution path (im2col, 1x1 pointwise, depthwise) has a cache type of its own;
"""

import numpy as np
import pytest

from numpy_shufflenet import fast as F
from numpy_shufflenet.functional.windows import col2im, im2col, pad2d, tap, unpad2d
from numpy_shufflenet.fast.layout import from_nhwc, merge_crop, pad_split, to_nhwc
from numpy_shufflenet.models import ShuffleNet, ShuffleUnit

from conftest import assert_same


def channels_last(x):
    """The same numbers as ``x`` (NCHW shape), stored channels-last."""
    return from_nhwc(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


# --------------------------------------------------------------------------------------------------------------
# every functional layer: float32 in, float32 out (forward and backward), and the same for float64
# --------------------------------------------------------------------------------------------------------------
def _layer_calls(rng, dtype):
    """``(name, forward_fn, x)``: forward_fn(x) -> (out, cache, backward_fn)."""
    def conv(F_out, k, stride, padding, groups, bias=False):
        def run(x):
            w = rng.standard_normal((F_out, x.shape[1] // groups, k, k)).astype(dtype)
            b = rng.standard_normal(F_out).astype(dtype) if bias else None
            out, cache = F.conv2d_forward(x, w, b, stride=stride, padding=padding, groups=groups)
            return out, cache, F.conv2d_backward
        return run

    def bn(training):
        def run(x):
            C = x.shape[1]
            g, b = np.ones(C, dtype), np.zeros(C, dtype)
            rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
            out, cache = F.batchnorm2d_forward(x, g, b, running_mean=rm, running_var=rv, training=training)
            assert rm.dtype == dtype and rv.dtype == dtype
            return out, cache, F.batchnorm2d_backward
        return run

    def simple(fwd, bwd, **kw):
        def run(x):
            out, cache = fwd(x, **kw)
            return out, cache, bwd
        return run

    x = rng.standard_normal((2, 6, 9, 8)).astype(dtype)
    return [
        ("dense 3x3 s2 conv", conv(4, 3, 2, 1, 1, bias=True), x),
        ("1x1 group conv", conv(9, 1, 1, 0, 3), x),
        ("1x1 conv", conv(4, 1, 1, 0, 1, bias=True), x),
        ("depthwise s1", conv(6, 3, 1, 1, 6, bias=True), x),
        ("depthwise s2", conv(6, 3, 2, 1, 6), x),
        ("batch norm train", bn(True), x),
        ("batch norm eval", bn(False), x),
        ("relu", simple(F.relu_forward, F.relu_backward), x),
        ("shuffle", simple(F.channel_shuffle_forward, F.channel_shuffle_backward, groups=3), x),
        ("max pool", simple(F.max_pool2d_forward, F.max_pool2d_backward, kernel_size=3, stride=2, padding=1), x),
        ("avg pool", simple(F.avg_pool2d_forward, F.avg_pool2d_backward, kernel_size=3, stride=2, padding=1), x),
        ("global avg pool", simple(F.global_avg_pool2d_forward, F.global_avg_pool2d_backward), x),
    ]


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_functional_layer_keeps_the_dtype(rng, dtype, layout):
    for name, run, x in _layer_calls(rng, dtype):
        x = channels_last(x) if layout == "channels_last" else x
        out, cache, backward = run(x)
        assert out.dtype == dtype, f"{name}: forward returned {out.dtype}"
        dout = rng.standard_normal(out.shape).astype(dtype)
        dout = channels_last(dout) if layout == "channels_last" and dout.ndim == 4 else dout
        grads = backward(dout, cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        for g in grads:
            assert g is None or g.dtype == dtype, f"{name}: backward returned {g.dtype}"


def test_linear_and_loss_keep_float32(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    out, cache = F.linear_forward(x, w, np.zeros(3, np.float32))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.linear_backward(np.ones_like(out), cache))
    _, dlogits = F.softmax_cross_entropy(out, np.array([0, 1, 2, 0]))
    assert dlogits.dtype == np.float32


class _DtypeSpy:
    """Wrap every leaf layer's forward and backward to record the dtypes they return."""

    def __init__(self, model):
        self.seen = []
        self.model = model
        for name, m in model.named_modules():
            if not list(m.named_children()):
                for attr in ("forward", "backward"):
                    setattr(m, attr, self._wrap(f"{name}.{attr}", getattr(m, attr)))

    def _wrap(self, label, method):
        def wrapper(*args, **kwargs):
            out = method(*args, **kwargs)
            for a in (out if isinstance(out, tuple) else (out,)):      # a unit's AddReLU returns (dx, dy)
                self.seen.append((label, a.dtype))
            return out
        return wrapper

    def remove(self):
        for _, m in self.model.named_modules():
            m.__dict__.pop("forward", None)
            m.__dict__.pop("backward", None)


@pytest.mark.parametrize("model_fn, shape", [
    (lambda rng: ShuffleUnit(24, 24, groups=3, stride=1, rng=rng), (2, 24, 8, 8)),
    (lambda rng: ShuffleUnit(12, 24, groups=3, stride=2, rng=rng), (2, 12, 8, 8)),
    (lambda rng: ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng), (2, 3, 32, 32)),
], ids=["unit-s1", "unit-s2", "shufflenet"])
def test_float32_stays_float32_through_units_and_the_network(model_fn, shape):
    rng = np.random.default_rng(0)
    model = model_fn(rng)
    spy = _DtypeSpy(model)
    try:
        x = rng.standard_normal(shape).astype(np.float32)
        out = model(x)
        dx = model.backward(np.ones_like(out))
    finally:
        spy.remove()
    assert out.dtype == np.float32 and dx.dtype == np.float32
    assert spy.seen, "no leaf layer was recorded"
    bad = [(label, dt) for label, dt in spy.seen if dt != np.float32]
    assert not bad, f"layers promoted float32: {bad}"
    for name, p in model.named_parameters():
        assert p.grad.dtype == np.float32, name
    for name, module, buf in model.named_buffers():
        assert getattr(module, buf).dtype == np.float32, name


# --------------------------------------------------------------------------------------------------------------
# fast kernels == the plain NCHW versions of the same maths (float64, 1e-10)
# --------------------------------------------------------------------------------------------------------------
def plain_conv_forward(x, w, stride, padding, groups):
    """The readable NCHW im2col + batched matmul (the textbook form the fast kernel rearranges)."""
    N, C, H, W = x.shape
    F_out, C_g, KH, KW = w.shape
    H_out = (H + 2 * padding - KH) // stride + 1
    W_out = (W + 2 * padding - KW) // stride + 1
    cols = im2col(pad2d(x, (padding, padding)), (KH, KW), (stride, stride), (H_out, W_out))
    cols = cols.reshape(N, groups, -1, H_out * W_out)
    out = np.matmul(w.reshape(groups, F_out // groups, -1), cols)
    return out.reshape(N, F_out, H_out, W_out), cols


def plain_conv_backward(dout, cols, x_shape, w, stride, padding, groups):
    N, C, H, W = x_shape
    F_out, _, KH, KW = w.shape
    H_out, W_out = dout.shape[2:]
    dout_g = dout.reshape(N, groups, F_out // groups, H_out * W_out)
    dw = np.matmul(dout_g, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(w.reshape(groups, F_out // groups, -1).transpose(0, 2, 1), dout_g)
    x_pad_shape = (N, C, H + 2 * padding, W + 2 * padding)
    dx_pad = col2im(dcols, x_pad_shape, (KH, KW), (stride, stride), (H_out, W_out))
    return unpad2d(dx_pad, (padding, padding)), dw


CONV_CASES = [
    pytest.param((2, 12, 9, 8), 12, 3, 1, 1, 12, id="depthwise-s1"),
    pytest.param((2, 12, 9, 8), 12, 3, 2, 1, 12, id="depthwise-s2-even-odd-split"),
    pytest.param((2, 12, 10, 7), 12, 3, 2, 1, 12, id="depthwise-s2-odd-width"),
    pytest.param((2, 12, 9, 8), 24, 1, 1, 0, 3, id="1x1-group3"),
    pytest.param((2, 12, 9, 8), 24, 1, 1, 0, 1, id="1x1-dense"),
    pytest.param((2, 3, 16, 16), 8, 3, 2, 1, 1, id="stem-3x3-s2"),
    pytest.param((2, 6, 9, 8), 6, 3, 1, 1, 2, id="grouped-3x3"),
]


@pytest.mark.parametrize("x_shape, F_out, k, stride, padding, groups", CONV_CASES)
def test_fast_conv_equals_plain_nchw_im2col(rng, x_shape, F_out, k, stride, padding, groups):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((F_out, x_shape[1] // groups, k, k))
    out, cache = F.conv2d_forward(x, w, stride=stride, padding=padding, groups=groups)
    ref, cols = plain_conv_forward(x, w, stride, padding, groups)
    assert_same(out, ref)
    dout = rng.standard_normal(out.shape)
    dx, dw, _ = F.conv2d_backward(dout, cache)
    ref_dx, ref_dw = plain_conv_backward(dout, cols, x.shape, w, stride, padding, groups)
    assert_same(dx, ref_dx)
    assert_same(dw, ref_dw)


@pytest.mark.parametrize("x_shape, F_out, k, stride, padding, groups, path", [
    ((2, 12, 9, 8), 24, 1, 1, 0, 3, "pointwise"), ((2, 12, 9, 8), 24, 1, 2, 0, 3, "im2col"),
    ((2, 6, 9, 8), 6, 3, 1, 1, 2, "im2col"), ((2, 12, 9, 8), 12, 3, 2, 1, 12, "depthwise")])
def test_each_conv_path_has_its_own_cache_that_says_what_it_holds(rng, x_shape, F_out, k, stride, padding, groups,
                                                                  path):
    from numpy_shufflenet.fast import conv
    x = channels_last(rng.standard_normal(x_shape))
    w = rng.standard_normal((F_out, x_shape[1] // groups, k, k))
    out, cache = F.conv2d_forward(x, w, stride=stride, padding=padding, groups=groups)
    N, C, H, W = x_shape
    if path == "pointwise":
        assert type(cache) is conv.FastPointwiseCache
        assert cache.x_rows.shape == (N * H * W, C) and np.shares_memory(cache.x_rows, x)   # x itself, no copy
    elif path == "im2col":
        assert type(cache) is conv.FastIm2colCache
        assert cache.patches.shape == (out[:, 0].size, C * k * k)
    else:
        assert type(cache) is conv.FastDepthwiseCache
        assert [a.shape for a in cache.x_phases] == [(N, H + 2, 5, C), (N, H + 2, 5, C)]   # even, odd columns
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    no_dx, dw_alone, _ = F.conv2d_backward(dout, cache, need_dx=False)
    assert dx.shape == x_shape and db is None
    assert no_dx is None and np.array_equal(dw_alone, dw)


def test_conv_backward_names_every_cache_it_takes():
    with pytest.raises(TypeError, match="conv2d: expected the FastIm2colCache or FastPointwiseCache or "
                                        "FastDepthwiseCache of a conv2d forward pass, got ReluCache"):
        F.conv2d_backward(np.ones((1, 1, 2, 2)), F.relu_forward(np.ones((1, 1, 2, 2)))[1])


def plain_batchnorm(x, gamma, beta, dout, eps=1e-5):
    """Textbook two-pass batch norm that stores xhat (training mode), forward and backward."""
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    out = gamma[:, None, None] * xhat + beta[:, None, None]
    M = x.size // x.shape[1]
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dxhat = dout * gamma[:, None, None]
    dx = inv_std / M * (M * dxhat - dxhat.sum(axis=(0, 2, 3), keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=(0, 2, 3), keepdims=True))
    return out, dx, dgamma, dbeta


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 24, 7, 7), (1, 5, 1, 9)])
def test_fast_batchnorm_equals_textbook_version(rng, shape):
    x = 3 * rng.standard_normal(shape) + 2
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    dout = rng.standard_normal(shape)
    out, cache = F.batchnorm2d_forward(x, gamma, beta)
    dx, dgamma, dbeta = F.batchnorm2d_backward(dout, cache)
    ref = plain_batchnorm(x, gamma, beta, dout)
    for got, want in zip((out, dx, dgamma, dbeta), ref):
        assert_same(got, want)


def plain_pool(x, kernel_size, stride, padding, reduce):
    """Max or mean over the KxK taps, each a strided slice of the padded NCHW input (no separation)."""
    k, s, p = kernel_size, stride, padding
    H_out = (x.shape[2] + 2 * p - k) // s + 1
    W_out = (x.shape[3] + 2 * p - k) // s + 1
    fill = -np.inf if reduce == "max" else 0.0
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    taps = np.stack([tap(x_pad, i, j, (s, s), (H_out, W_out)) for i in range(k) for j in range(k)])
    return taps.max(axis=0) if reduce == "max" else taps.mean(axis=0)


@pytest.mark.parametrize("x_shape, k, s, p", [((2, 5, 9, 8), 3, 2, 1), ((2, 5, 9, 8), 3, 1, 1),
                                              ((1, 3, 10, 11), 3, 2, 0), ((2, 4, 8, 8), 2, 2, 0)])
def test_separable_pools_equal_plain_tap_loops(rng, x_shape, k, s, p):
    x = rng.standard_normal(x_shape)
    out, _ = F.max_pool2d_forward(x, kernel_size=k, stride=s, padding=p)
    assert_same(out, plain_pool(x, k, s, p, "max"))
    out, _ = F.avg_pool2d_forward(x, kernel_size=k, stride=s, padding=p)
    assert_same(out, plain_pool(x, k, s, p, "mean"))


@pytest.mark.parametrize("padding, stride", [((1, 1), (1, 1)), ((1, 1), (2, 2)), ((0, 2), (1, 3)), ((2, 0), (2, 2))])
def test_pad_split_and_merge_crop_are_adjoint(rng, padding, stride):
    """<pad_split(x), d> == <x, merge_crop(d)>: the backward helper is the exact adjoint of the forward one."""
    xh = rng.standard_normal((2, 5, 7, 3))
    phases = pad_split(xh, padding, stride)
    d = [rng.standard_normal(ph.shape) for ph in phases]
    lhs = sum(float((ph * dp).sum()) for ph, dp in zip(phases, d))
    rhs = float((xh * merge_crop(d, padding, stride, xh.shape)).sum())
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))
    # and padded columns interleave back to the padded array
    (ph, pw) = padding
    x_pad = np.pad(xh, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    for r, ph in enumerate(phases):
        assert_same(ph, x_pad[:, :, r::stride[1]])


# --------------------------------------------------------------------------------------------------------------
# layout independence: NCHW memory and channels-last memory give identical numbers
# --------------------------------------------------------------------------------------------------------------
def test_channels_last_input_gives_identical_results(rng):
    for name, run, x in _layer_calls(rng, np.float64):
        state = rng.bit_generator.state
        out_a, cache_a, backward = run(x)
        rng.bit_generator.state = state                  # the same random weights for the second run
        out_b, cache_b, _ = run(channels_last(x))
        np.testing.assert_array_equal(out_a, out_b, err_msg=name)
        dout = rng.standard_normal(out_a.shape)
        ga = backward(dout, cache_a)
        gb = backward(channels_last(dout) if dout.ndim == 4 else dout, cache_b)
        for a, b in zip(ga if isinstance(ga, tuple) else (ga,), gb if isinstance(gb, tuple) else (gb,)):
            if a is not None:
                np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_no_layer_writes_into_its_inputs(rng, layout):
    # A channels-last input is used in place (no copy), so a kernel must never write into it.
    for name, run, x in _layer_calls(rng, np.float64):
        x = channels_last(x) if layout == "channels_last" else x
        x_before = x.copy()
        out, cache, backward = run(x)
        dout = rng.standard_normal(out.shape)
        dout = channels_last(dout) if layout == "channels_last" and dout.ndim == 4 else dout
        dout_before = dout.copy()
        backward(dout, cache)
        np.testing.assert_array_equal(x, x_before, err_msg=name)
        np.testing.assert_array_equal(dout, dout_before, err_msg=name)


def test_network_input_is_not_modified_and_outputs_are_channels_last(rng):
    x = rng.standard_normal((2, 12, 8, 8)).astype(np.float32)
    copy = x.copy()
    unit = ShuffleUnit(12, 24, groups=3, stride=2, rng=rng)
    out = unit(channels_last(x))
    dx = unit.backward(np.ones_like(out))
    np.testing.assert_array_equal(x, copy)
    assert to_nhwc(out).base is not None or out.transpose(0, 2, 3, 1).flags.c_contiguous
    assert dx.shape == x.shape


def test_float32_batchnorm_keeps_precision_when_the_mean_is_large():
    # A one-pass E[x^2] - E[x]^2 would lose about 1% of the variance here in float32.
    x = np.random.default_rng(0).standard_normal((8, 6, 32, 32)) + 100.0
    gamma, beta = np.ones(6), np.zeros(6)
    out64, _ = F.batchnorm2d_forward(x, gamma, beta)
    out32, _ = F.batchnorm2d_forward(x.astype(np.float32), gamma.astype(np.float32), beta.astype(np.float32))
    np.testing.assert_allclose(out32, out64, rtol=0, atol=1e-4)


def test_float32_training_follows_float64_training():
    from numpy_shufflenet.training.data import make_shapes
    from numpy_shufflenet.models import ShuffleNet
    from numpy_shufflenet.paper.experiments import SGD

    x, y = make_shapes(32, 32, seed=0)
    losses = {}
    for dtype in (np.float32, np.float64):
        model = ShuffleNet(groups=3, scale=0.25, num_classes=8, rng=np.random.default_rng(0)).to(dtype)
        opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
        losses[dtype] = []
        for _ in range(3):
            loss, dlogits = F.softmax_cross_entropy(model(x.astype(dtype)), y)
            model.backward(dlogits)
            opt.step()
            losses[dtype].append(loss)
    # Same weights, same data: float32 rounding (about 1e-7 relative per operation) grows a little through 50
    # layers and the updates. (Over more steps at this tiny batch the two runs drift apart chaotically, and
    # PyTorch's float32 and float64 runs of the same network drift apart the same way by step 4 or 5.)
    assert losses[np.float32][0] != losses[np.float32][2]                # the updates really change the loss
    np.testing.assert_allclose(losses[np.float32][:2], losses[np.float64][:2], rtol=1e-5)
    # By the third step a ReLU or max-pool decision within rounding of a tie may already have flipped: scaling
    # the images by (1 + 1e-7) moves this loss's float32/float64 gap from 3e-7 to 2e-5 with the same kernels.
    np.testing.assert_allclose(losses[np.float32][2], losses[np.float64][2], rtol=1e-3)


def test_backward_returns_the_forward_dtype_even_for_a_float64_dout(rng):
    # A float64 upstream gradient into a float32 layer is cast, so float32 work stays float32.
    for name, run, x in _layer_calls(rng, np.float32):
        out, cache, backward = run(x)
        grads = backward(rng.standard_normal(out.shape), cache)           # float64 dout
        for g in grads if isinstance(grads, tuple) else (grads,):
            assert g is None or g.dtype == np.float32, f"{name}: backward returned {g.dtype}"


# --------------------------------------------------------------------------------------------------------------
# the network's fused pairs (one pass in the fast set, composed for a student's), the stem without the image gradient
# --------------------------------------------------------------------------------------------------------------
def _net_step(model, x, y, **backward_options):
    _, dlogits = F.softmax_cross_entropy(model(x), y)
    dx = model.backward(dlogits, **backward_options)
    return dx, {name: p.grad.copy() for name, p in model.named_parameters()}


def _small_net_and_batch():
    from numpy_shufflenet.models import ShuffleNet
    rng = np.random.default_rng(11)
    model = ShuffleNet(groups=3, scale=0.25, num_classes=6, rng=rng)
    return model, rng.standard_normal((3, 3, 32, 32)).astype(np.float32), rng.integers(0, 6, 3)


def test_the_fast_fused_pairs_give_the_bits_of_the_plain_fast_pairs_one_after_the_other():
    import numpy_shufflenet as ns
    from numpy_shufflenet import fast

    model, x, y = _small_net_and_batch()
    unit = model.stage2[1]
    fused_dx, fused_grads = _net_step(model, x, y)
    model(x)
    assert unit.branch.bn1._cache[0] is fast.batchnorm2d_relu_backward          # the one-pass kernels ran
    assert model.stem.bn._cache[0] is fast.batchnorm2d_relu_backward
    assert unit.relu._cache[0] is fast.add_relu_backward
    assert model.stage2[0].relu._cache[0] is fast.concat_relu_backward
    # The same fast ReLU, but handed in as a student's pair: every fused pair is composed of the plain ones.
    with ns.use_kernels({"relu_forward": fast.relu_forward, "relu_backward": fast.relu_backward}):
        separate_dx, separate_grads = _net_step(model, x, y)
        model(x)
        assert unit.branch.bn1._cache[0] is not fast.batchnorm2d_relu_backward
        assert unit.relu._cache[0] is not fast.add_relu_backward
    assert np.array_equal(fused_dx, separate_dx)
    for name in fused_grads:
        assert np.array_equal(fused_grads[name], separate_grads[name]), name


def test_reference_and_student_kernels_run_batch_norm_then_relu_as_written():
    import numpy_shufflenet as ns
    from numpy_shufflenet import functional
    from numpy_shufflenet.nn import ReLU

    model, x, y = _small_net_and_batch()
    with ns.use_kernels("reference"):
        model(x)
        assert model.stage2[1].branch.bn1._cache[0] is functional.batchnorm2d_relu_backward
    calls = []

    def student_relu_forward(x):
        calls.append(x.shape)
        return functional.relu_forward(x)

    with ns.use_kernels({"relu_forward": student_relu_forward, "relu_backward": functional.relu_backward}):
        model(x)
    relus = [m for _, m in model.named_modules() if isinstance(m, ReLU) or type(m).__name__ == "BatchNormReLU2d"]
    assert len(relus) == 1 + 16 + 16                     # the stem's BN ReLU, every unit's bn1 and its end
    assert len(calls) == len(relus)                      # every ReLU of the network ran the student's function


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_batch_norm_relu_is_batch_norm_then_relu(kernels):
    import numpy_shufflenet as ns
    from numpy_shufflenet.nn import BatchNorm2d, BatchNormReLU2d

    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    plain, fused = BatchNorm2d(4), BatchNormReLU2d(4)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    with ns.use_kernels(kernels):
        out, normalised = fused(x), plain(x)
        expected = np.maximum(normalised, 0)
        assert (out >= 0).all() and (normalised < 0).any() and np.array_equal(out, expected)
        fused.backward(dout)
        plain.backward(dout * (expected > 0))
    for p, q in zip(fused.parameters(), plain.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fused.running_mean, plain.running_mean)
    assert list(fused.state_dict()) == list(plain.state_dict()) and list(fused.named_children()) == []


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_the_stem_can_skip_the_image_gradient(kernels):
    import numpy_shufflenet as ns
    from numpy_shufflenet.kernels import KERNEL_NAMES, KernelSet

    model, x, y = _small_net_and_batch()
    with ns.use_kernels(kernels) as active:
        dx, grads = _net_step(model, x, y)
        asked = []

        def conv2d_backward(dout, cache, **options):
            asked.append(options.get("need_dx", True))
            return active["conv2d_backward"](dout, cache, **options)

        spy = KernelSet("spy", {**{k: active[k] for k in KERNEL_NAMES}, "conv2d_backward": conv2d_backward})
        with ns.use_kernels(spy):
            none, grads_without = _net_step(model, x, y, input_grad=False)
    assert dx.shape == x.shape and none is None
    assert asked[-1] is False and not any(a is False for a in asked[:-1])     # only the stem's conv skips dx
    for name in grads:
        assert np.array_equal(grads[name], grads_without[name]), name
