"""The gradient checker itself: it must not touch its input, must survive functions that return views, must catch
wrong backward passes, and must be used with a random upstream gradient (shown here by a vacuous check)."""

import numpy as np
import pytest

from numpy_shufflenet import nn
from numpy_shufflenet.functional import (batchnorm2d_backward, batchnorm2d_forward, channel_shuffle_backward,
                                         channel_shuffle_forward, conv2d_forward, relu_forward)
from numpy_shufflenet.gradcheck import check_module, numeric_gradient, rel_error, report
from numpy_shufflenet.nn import Module, Parameter


def bn_inputs(rng):
    x = 5 * rng.standard_normal((2, 3, 4, 5)) + 12
    return x, rng.uniform(0.5, 2.0, 3), rng.standard_normal(3)


def bn_dx_without_the_xhat_term(dout, x, gamma, eps=1e-5):
    """A plausible student mistake: forget that the variance depends on x (keep only the mean's term)."""
    inv_std = 1 / np.sqrt(x.var(axis=(0, 2, 3)) + eps)
    return (gamma * inv_std)[None, :, None, None] * (dout - dout.mean(axis=(0, 2, 3), keepdims=True))


# --------------------------------------------------------------------------------------------------------------
# rel_error
# --------------------------------------------------------------------------------------------------------------
def test_rel_error_is_tensor_wise():
    # max|a - b| / (max|a| + max|b|) = 0.3 / (2 + 2.3)
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.3])) == pytest.approx(0.3 / 4.3, rel=1e-12)
    # the maxima of |a| and |b| may sit at different entries: |a - b| = (1, 3), max|a| + max|b| = 3 + 3 -> 3/6
    # (not max(|a| + |b|) = 5)
    assert rel_error(np.array([3.0, 0.0]), np.array([2.0, 3.0])) == pytest.approx(3 / 6, rel=1e-12)
    # an entry that is zero on one side does not blow up the tensor-wise error: 1e-9 / (1 + 1)
    assert rel_error(np.array([0.0, 1.0]), np.array([1e-9, 1.0])) == pytest.approx(5e-10, rel=1e-6)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    with pytest.raises(ValueError, match=r"rel_error.*\(3,\).*\(4,\)"):
        rel_error(np.zeros(3), np.zeros(4))


# --------------------------------------------------------------------------------------------------------------
# numeric_gradient
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numeric_gradient_does_not_modify_x(rng, dtype):
    x = rng.standard_normal((2, 3)).astype(dtype)
    before = x.copy()
    grad = numeric_gradient(lambda v: v ** 2, x, rng.standard_normal((2, 3)))
    assert x.tobytes() == before.tobytes()
    assert grad.dtype == np.float64                      # computed on a private float64 copy


def test_numeric_gradient_of_a_known_function(rng):
    # f(x) = x**3 elementwise: d sum(f * dout) / dx = 3 x**2 * dout (central differences: error h**2 * dout)
    x, dout = rng.standard_normal(6), rng.standard_normal(6)
    np.testing.assert_allclose(numeric_gradient(lambda v: v ** 3, x, dout), 3 * x ** 2 * dout, rtol=1e-8,
                               atol=1e-10)


def test_numeric_gradient_survives_f_returning_a_view_of_a_reused_buffer(rng):
    """f writes into one buffer and returns a reshape (a view) of it, as a layer with a workspace might."""
    buf = np.empty(6)

    def f(v):
        buf[:] = 2 * v.reshape(-1)
        return buf.reshape(2, 3)                         # the next call overwrites what this one returned

    x, dout = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(numeric_gradient(f, x, dout), 2 * dout.reshape(3, 2), rtol=1e-8)

    # Why the copy inside numeric_gradient matters: without it, f(x + h) and f(x - h) are the same buffer.
    def numeric_gradient_without_copy(f, x, dout, h=1e-6):
        x, grad = x.copy(), np.zeros_like(x)
        for i in range(x.size):
            old = x.flat[i]
            x.flat[i] = old + h
            plus = f(x)
            x.flat[i] = old - h
            minus = f(x)
            x.flat[i] = old
            grad.flat[i] = np.sum((plus - minus) * dout) / (2 * h)
        return grad

    assert np.all(numeric_gradient_without_copy(f, x, dout) == 0)


def test_numeric_gradient_checks_the_output_shape(rng):
    with pytest.raises(ValueError, match=r"numeric_gradient.*\(2, 3\).*\(3, 2\)"):
        numeric_gradient(lambda v: v, rng.standard_normal((3, 2)), rng.standard_normal((2, 3)))


def test_sampled_indices_mode(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    w = rng.standard_normal((4, 3, 3, 3))
    out, _ = conv2d_forward(x, w, padding=1)
    dout = rng.standard_normal(out.shape)
    calls = []

    def f(v):
        calls.append(1)
        return conv2d_forward(v, w, padding=1)[0]

    full = numeric_gradient(f, x, dout)
    indices = rng.choice(x.size, size=7, replace=False)
    calls.clear()
    sampled = numeric_gradient(f, x, dout, indices=indices)
    assert len(calls) == 2 * 7                           # two evaluations per sampled coordinate, no more
    flat = sampled.reshape(-1)
    assert np.array_equal(flat[indices], full.reshape(-1)[indices])
    others = np.setdiff1d(np.arange(x.size), indices)
    assert np.all(flat[others] == 0)                     # the coordinates not sampled are left at 0


def test_float32_finite_differences_are_useless(rng):
    """Why gradient checks run in float64: in float32, rounding / (2h) swamps the derivative."""
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    out, _ = conv2d_forward(x, w)
    dout = rng.standard_normal(out.shape)
    numeric64 = numeric_gradient(lambda v: conv2d_forward(v, w)[0], x, dout)
    w32 = w.astype(np.float32)
    numeric32 = numeric_gradient(lambda v: conv2d_forward(v.astype(np.float32), w32)[0], x, dout)
    assert rel_error(numeric32, numeric64) > 1e-2


# --------------------------------------------------------------------------------------------------------------
# report catches wrong backward passes
# --------------------------------------------------------------------------------------------------------------
def test_report_passes_a_correct_and_fails_a_wrong_batchnorm_backward(rng, capsys):
    x, gamma, beta = bn_inputs(rng)
    out, cache = batchnorm2d_forward(x, gamma, beta)
    dout = rng.standard_normal(out.shape)
    numeric = numeric_gradient(lambda v: batchnorm2d_forward(v, gamma, beta)[0], x, dout)

    right = report("bn dx", batchnorm2d_backward(dout, cache)[0], numeric)
    wrong = report("bn dx (no xhat term)", bn_dx_without_the_xhat_term(dout, x, gamma), numeric)
    assert right and right.max_rel_error < 1e-7
    assert not wrong and wrong.max_rel_error > 1e-2
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("bn dx") and "PASS" in printed[0]
    assert "FAIL" in printed[1]


def test_report_fails_the_forward_shuffle_used_as_backward(rng):
    """Another plausible mistake: using the shuffle itself (not its inverse) as the backward pass."""
    x = rng.standard_normal((2, 12, 2, 2))
    out, cache = channel_shuffle_forward(x, 3)
    dout = rng.standard_normal(out.shape)
    numeric = numeric_gradient(lambda v: channel_shuffle_forward(v, 3)[0], x, dout)
    assert report("shuffle dx", channel_shuffle_backward(dout, cache), numeric, verbose=False)
    assert not report("shuffle dx (wrong)", channel_shuffle_forward(dout, 3)[0], numeric, verbose=False)


def test_report_fails_relu_without_its_mask(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    numeric = numeric_gradient(lambda v: relu_forward(v)[0], x, dout)
    assert not report("relu dx (no mask)", dout, numeric, verbose=False)


# --------------------------------------------------------------------------------------------------------------
# why the upstream gradient must be random
# --------------------------------------------------------------------------------------------------------------
def test_all_ones_upstream_gradient_makes_the_batchnorm_dx_check_vacuous(rng):
    """sum(BN(x)) = M * sum(beta) does not depend on x, so with dout = 1 the true dx is 0 and both sides are ~0:
    a correct and a wrong backward pass look the same. A random dout tells them apart."""
    x, gamma, beta = bn_inputs(rng)
    f = lambda v: batchnorm2d_forward(v, gamma, beta)[0]         # noqa: E731
    out, cache = batchnorm2d_forward(x, gamma, beta)

    ones = np.ones_like(out)
    numeric = numeric_gradient(f, x, ones)
    right = batchnorm2d_backward(ones, cache)[0]
    wrong = bn_dx_without_the_xhat_term(ones, x, gamma)
    assert np.max(np.abs(numeric)) < 1e-7                        # rounding noise only
    assert np.max(np.abs(right)) < 1e-12 and np.max(np.abs(wrong)) < 1e-12
    np.testing.assert_allclose(wrong, numeric, atol=1e-7)         # the wrong formula "passes" ...
    assert rel_error(right, numeric) > 0.5                        # ... and the relative error is pure noise

    dout = rng.standard_normal(out.shape)
    numeric = numeric_gradient(f, x, dout)
    assert rel_error(batchnorm2d_backward(dout, cache)[0], numeric) < 1e-7
    assert rel_error(bn_dx_without_the_xhat_term(dout, x, gamma), numeric) > 1e-2


# --------------------------------------------------------------------------------------------------------------
# check_module
# --------------------------------------------------------------------------------------------------------------
class LeakyReLUBackward(nn.ReLU):
    """A ReLU whose backward forgets the mask: a wrong module for check_module to catch."""

    def backward(self, dout, *, input_grad=True):
        self._take_cache()
        return dout if input_grad else None


def small_net(relu=nn.ReLU):
    rng = np.random.default_rng(4)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=True, rng=rng), relu(),
                         nn.Conv2d(4, 2, 1, groups=2, rng=rng)).to(np.float64)


def test_check_module_passes_a_correct_module(rng):
    results = check_module(small_net(), rng.standard_normal((2, 2, 4, 4)), verbose=False)
    assert [r.name for r in results] == ["x", "0.weight", "0.bias", "2.weight"]
    assert all(results) and max(r.max_rel_error for r in results) < 1e-6


def test_check_module_catches_a_wrong_module(rng):
    results = check_module(small_net(LeakyReLUBackward), rng.standard_normal((2, 2, 4, 4)), verbose=False)
    assert not all(results)
    assert not results[0]                                         # dx is wrong ...
    assert not results[1]                                         # ... and so is every weight before the ReLU


@pytest.mark.parametrize("relu, passes", [(nn.ReLU, True), (LeakyReLUBackward, False)])
def test_check_module_sampled_mode(rng, relu, passes):
    net = small_net(relu)
    results = check_module(net, rng.standard_normal((2, 2, 4, 4)), num_samples=8, rng=np.random.default_rng(0),
                           verbose=False)
    assert all(results[:2]) == passes


def test_check_module_refuses_float32_input(rng):
    with pytest.raises(TypeError, match="check_module.*float32"):
        check_module(small_net(), rng.standard_normal((2, 2, 4, 4)).astype(np.float32))


# --------------------------------------------------------------------------------------------------------------
# gradient checks never pass on NaN or inf, and refuse a step that is not a positive number
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [([np.nan, 1.0], [1.0, 1.0]), ([1.0, 1.0], [1.0, np.inf]),
                                  ([np.inf], [np.inf]), ([np.nan], [np.nan]), ([-np.inf, 0.0], [0.0, 0.0])])
def test_rel_error_of_non_finite_is_inf(a, b):
    assert rel_error(np.array(a), np.array(b)) == np.inf


@pytest.mark.parametrize("h", [0, 0.0, -1e-6, np.nan, np.inf, -np.inf, "1e-6", None, True])
def test_numeric_gradient_refuses_a_bad_step(h):
    with pytest.raises(ValueError, match=rf"numeric_gradient: expected h to be a finite number > 0, got {h!r}"):
        numeric_gradient(lambda v: v, np.ones(3), np.ones(3), h=h)


@pytest.mark.parametrize("x", [np.arange(3), np.ones(3, dtype=bool), np.array([1, 2], dtype=np.uint8)])
def test_numeric_gradient_refuses_a_non_float_x(x):
    with pytest.raises(TypeError, match=rf"numeric_gradient: expected x to have a float dtype .*got {x.dtype}"):
        numeric_gradient(lambda v: v, x, np.ones(x.shape))


@pytest.mark.parametrize("bad", ["x", "dout"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_numeric_gradient_refuses_non_finite_inputs(bad, value):
    arrays = {"x": np.ones((2, 2)), "dout": np.ones((2, 2))}
    arrays[bad][1, 0] = value
    with pytest.raises(ValueError, match=rf"numeric_gradient: expected a finite {bad}, got 1 non-finite value\(s\), "
                                         rf"the first {value} at index \(1, 0\)"):
        numeric_gradient(lambda v: v, arrays["x"], arrays["dout"])


@pytest.mark.parametrize("side, analytic, numeric", [
    ("analytic", [np.nan, 1.0], [1.0, 1.0]),
    ("numeric", [1.0, 1.0], [1.0, np.inf]),
    ("analytic", [np.nan, np.nan], [np.nan, np.nan]),           # equal NaNs are not a pass
])
def test_report_fails_non_finite_gradients_and_says_where(side, analytic, numeric):
    result = report("dx", np.array(analytic), np.array(numeric), verbose=False, noise_floor=1e9)
    assert not result and result.max_rel_error == np.inf
    assert f"{side} gradient: " in str(result) and "FAIL" in str(result) and "PASS" not in str(result)


class Scale(Module):
    """``out = w * x``: a one-parameter module whose backward can be broken on purpose."""

    def __init__(self, w, dx_override=None):
        super().__init__()
        self.weight = Parameter(np.array(w, dtype=np.float64))
        self.dx_override = dx_override

    def forward(self, x):
        self._cache = x
        return self.weight.data * x

    def backward(self, dout, *, input_grad=True):
        x = self._take_cache()
        self.weight.grad = np.array([np.sum(dout * x)])
        if not input_grad:
            return None
        return self.weight.data * dout if self.dx_override is None else self.dx_override(dout)


def test_check_module_fails_a_nan_gradient_and_names_it():
    module = Scale([2.0], dx_override=lambda dout: np.full_like(dout, np.nan))
    results = check_module(module, np.ones((2, 3)), verbose=False)
    assert not results[0] and results[0].name == "x" and "analytic gradient: 6 non-finite" in str(results[0])
    assert results[1]                                               # the weight's gradient is still right


@pytest.mark.parametrize("where, make", [
    ("the input x", lambda: (Scale([2.0]), np.array([[1.0, np.nan]]), {})),
    ("parameter weight", lambda: (Scale([np.inf]), np.ones((1, 2)), {})),
    ("the forward output", lambda: (Scale([1e308]), np.array([[1e308, 1.0]]), {})),
    ("dout", lambda: (Scale([2.0]), np.ones((1, 2)), {"dout": np.array([[1.0, -np.inf]])})),
])
def test_check_module_refuses_non_finite_values_and_says_where(where, make):
    module, x, kwargs = make()
    with np.errstate(over="ignore"), \
            pytest.raises(ValueError, match=rf"check_module: expected {where} to be finite, got 1 non-finite"):
        check_module(module, x, verbose=False, **kwargs)


@pytest.mark.parametrize("h", [0.0, -1e-3, np.nan])
def test_check_module_refuses_a_bad_step(h):
    with pytest.raises(ValueError, match=rf"check_module: expected h to be a finite number > 0, got {h!r}"):
        check_module(Scale([2.0]), np.ones((1, 2)), h=h, verbose=False)


def test_check_module_refuses_a_non_array_input():
    with pytest.raises(TypeError, match=r"check_module: expected a float64 input .*got list"):
        check_module(Scale([2.0]), [1.0, 2.0])
