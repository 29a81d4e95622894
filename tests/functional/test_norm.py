"""Batch normalisation (PyTorch's BatchNorm2d), training and eval mode.

Inputs are shifted away from zero mean (``5 * randn + 12``, as CS231n does) and gamma/beta are random, so the
checks cannot pass by symmetry.
"""

import numpy as np
import pytest

from numpy_shufflenet.functional import batchnorm2d_backward, batchnorm2d_forward

from conftest import assert_same, check_gradient

SHAPES = [(2, 3, 4, 5), (4, 2, 3, 3), (1, 4, 5, 7), (3, 1, 2, 2)]


def make_inputs(rng, shape, dtype=np.float64):
    C = shape[1]
    x = (5 * rng.standard_normal(shape) + 12).astype(dtype)
    gamma = (rng.uniform(0.5, 2.0, C) * rng.choice([-1, 1], C)).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    return x, gamma, beta


def running_stats(rng, C, dtype=np.float64):
    return rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2.0, C).astype(dtype)


# --------------------------------------------------------------------------------------------------------------
# 1. backward == numeric gradient
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_training_gradients_match_numeric(rng, shape):
    x, gamma, beta = make_inputs(rng, shape)
    out, cache = batchnorm2d_forward(x, gamma, beta, training=True)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = batchnorm2d_backward(dout, cache)

    # (no running buffers here: every call of f would update them)
    check_gradient("batchnorm2d(train) dx", lambda v: batchnorm2d_forward(v, gamma, beta)[0], x, dout, dx)
    check_gradient("batchnorm2d(train) dgamma", lambda v: batchnorm2d_forward(x, v, beta)[0], gamma, dout, dgamma)
    check_gradient("batchnorm2d(train) dbeta", lambda v: batchnorm2d_forward(x, gamma, v)[0], beta, dout, dbeta)


@pytest.mark.parametrize("shape", SHAPES)
def test_eval_gradients_match_numeric(rng, shape):
    x, gamma, beta = make_inputs(rng, shape)
    mean, var = running_stats(rng, shape[1])
    opts = dict(running_mean=mean, running_var=var, training=False)
    out, cache = batchnorm2d_forward(x, gamma, beta, **opts)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = batchnorm2d_backward(dout, cache)

    check_gradient("batchnorm2d(eval) dx", lambda v: batchnorm2d_forward(v, gamma, beta, **opts)[0], x, dout, dx)
    check_gradient("batchnorm2d(eval) dgamma", lambda v: batchnorm2d_forward(x, v, beta, **opts)[0], gamma, dout,
                   dgamma)
    check_gradient("batchnorm2d(eval) dbeta", lambda v: batchnorm2d_forward(x, gamma, v, **opts)[0], beta, dout,
                   dbeta)


# --------------------------------------------------------------------------------------------------------------
# behaviour: statistics, modes, running buffers
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_training_output_is_normalised_per_channel(rng, shape):
    x, _, _ = make_inputs(rng, shape)
    C = shape[1]
    out, _ = batchnorm2d_forward(x, np.ones(C), np.zeros(C), eps=1e-300)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, rtol=1e-12)


def test_eval_uses_running_statistics(rng):
    x, gamma, beta = make_inputs(rng, (2, 3, 4, 4))
    mean, var = running_stats(rng, 3)
    out, _ = batchnorm2d_forward(x, gamma, beta, running_mean=mean, running_var=var, training=False, eps=1e-3)
    c = (slice(None), None, None)       # (C,) -> (C, 1, 1)
    assert_same(out, gamma[c] * (x - mean[c]) / np.sqrt(var[c] + 1e-3) + beta[c])


def test_eval_does_not_touch_running_statistics(rng):
    x, gamma, beta = make_inputs(rng, (2, 3, 4, 4))
    mean, var = running_stats(rng, 3)
    before = mean.copy(), var.copy()
    batchnorm2d_forward(x, gamma, beta, running_mean=mean, running_var=var, training=False)
    assert np.array_equal(mean, before[0]) and np.array_equal(var, before[1])


def test_training_ignores_running_statistics_for_the_output(rng):
    x, gamma, beta = make_inputs(rng, (2, 3, 4, 4))
    mean, var = running_stats(rng, 3)
    with_buffers, _ = batchnorm2d_forward(x, gamma, beta, running_mean=mean, running_var=var, training=True)
    without, _ = batchnorm2d_forward(x, gamma, beta, training=True)
    assert_same(with_buffers, without)


# --------------------------------------------------------------------------------------------------------------
# 3. golden values, computed by hand
# --------------------------------------------------------------------------------------------------------------
# Two channels of 4 numbers each (N=1, H=1, W=4):
#   channel 0: 1, 2, 3, 4  mean 2.5   biased var (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25   unbiased 5/3
#   channel 1: 0, 0, 4, 4  mean 2     biased var 4                                       unbiased 16/3
X_GOLDEN = np.array([[1.0, 2, 3, 4], [0, 0, 4, 4]])[None, :, None, :]


def test_golden_forward_uses_biased_variance():
    # eps = 0: channel 0: (x - 2.5) / sqrt(1.25) = [-3, -1, 1, 3] / sqrt(5)    (1.5 / (sqrt(5)/2) = 3/sqrt(5))
    #          channel 1: (x - 2) / 2 = [-1, -1, 1, 1]
    # gamma = (2, -1), beta = (1, 0.5):
    #          channel 0: 1 + 2 * [-3, -1, 1, 3] / sqrt(5)
    #          channel 1: 0.5 - [-1, -1, 1, 1] = [1.5, 1.5, -0.5, -0.5]
    out, _ = batchnorm2d_forward(X_GOLDEN, np.array([2.0, -1]), np.array([1.0, 0.5]), eps=1e-300)
    s5 = np.sqrt(5)
    expected = np.array([[1 - 6 / s5, 1 - 2 / s5, 1 + 2 / s5, 1 + 6 / s5], [1.5, 1.5, -0.5, -0.5]])
    assert_same(out, expected[None, :, None, :])


def test_golden_running_stats_use_unbiased_variance_and_momentum_0_1():
    # running_mean = 0.9 * 0 + 0.1 * mean       = (0.25, 0.2)
    # running_var  = 0.9 * 1 + 0.1 * unbiased   = (0.9 + 1/6, 0.9 + 16/30) = (16/15, 43/30)
    # (the biased variance would give (1.025, 1.3))
    mean, var = np.zeros(2), np.ones(2)
    mean_id, var_id = id(mean), id(var)
    batchnorm2d_forward(X_GOLDEN, np.ones(2), np.zeros(2), running_mean=mean, running_var=var)
    assert_same(mean, [0.25, 0.2])
    assert_same(var, [16 / 15, 43 / 30])
    assert id(mean) == mean_id and id(var) == var_id       # updated in place, as PyTorch does
    # a second step: mean (0.9 * 0.25 + 0.25, 0.9 * 0.2 + 0.2) = (0.475, 0.38); var 0.9 * 16/15 + 1/6 = 0.96 + 1/6
    batchnorm2d_forward(X_GOLDEN, np.ones(2), np.zeros(2), running_mean=mean, running_var=var)
    assert_same(mean, [0.475, 0.38])
    assert_same(var, [0.96 + 1 / 6, 1.29 + 16 / 30])      # 0.9 * 43/30 = 1.29


def test_golden_momentum_is_the_weight_of_the_new_batch():
    # momentum 0.5: running_mean = 0.5 * 0 + 0.5 * (2.5, 2) = (1.25, 1); running_var = 0.5 + 0.5 * (5/3, 16/3)
    mean, var = np.zeros(2), np.ones(2)
    batchnorm2d_forward(X_GOLDEN, np.ones(2), np.zeros(2), running_mean=mean, running_var=var, momentum=0.5)
    assert_same(mean, [1.25, 1.0])
    assert_same(var, [0.5 + 5 / 6, 0.5 + 8 / 3])


def test_golden_eval_is_a_fixed_affine_map():
    # running_mean = (1, 2), running_var = (4, 0.25), eps = 0: channel 0 -> (x - 1) / 2, channel 1 -> (x - 2) / 0.5
    # gamma = 1, beta = 0: channel 0: [0, 0.5, 1, 1.5];  channel 1: [-4, -4, 4, 4]
    out, cache = batchnorm2d_forward(X_GOLDEN, np.ones(2), np.zeros(2), running_mean=np.array([1.0, 2]),
                                     running_var=np.array([4.0, 0.25]), training=False, eps=1e-300)
    assert_same(out, np.array([[0, 0.5, 1, 1.5], [-4, -4, 4, 4]])[None, :, None, :])
    dx, _, _ = batchnorm2d_backward(np.ones_like(out), cache)     # dx = dout * gamma / sqrt(var): 0.5 and 2
    assert_same(dx, np.array([[0.5] * 4, [2.0] * 4])[None, :, None, :])


# --------------------------------------------------------------------------------------------------------------
# 4. dtype in == dtype out
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype, training):
    x, gamma, beta = make_inputs(rng, (2, 3, 4, 5), dtype)
    mean, var = running_stats(rng, 3, dtype)
    out, cache = batchnorm2d_forward(x, gamma, beta, running_mean=mean, running_var=var, training=training)
    grads = batchnorm2d_backward(rng.standard_normal(out.shape).astype(dtype), cache)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in grads)
    assert mean.dtype == dtype and var.dtype == dtype
