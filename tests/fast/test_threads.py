"""The fast kernels on several threads: the thread-count switch, same results on 1 and n threads, no races.

* **the switch**: ``set_num_threads`` / ``get_num_threads`` and ``NUMPY_SHUFFLENET_NUM_THREADS``, with clear
  errors for bad values;
* **1 thread == n threads, bitwise**: the kernels split the batch into blocks that depend on the shape only, so
  the numbers are identical for any thread count; checked kernel by kernel and on a whole ShuffleNet step, with
  tiny blocks so that small arrays already give many blocks;
* **many blocks == one block, to rounding**: splitting changes only the order of the batch-norm and depthwise
  weight sums;
* **no race**: many small random configurations, each run on 1 and on 3 threads and compared bitwise;
* **no BLAS in the workers**: every matrix product of a training step runs in the calling thread;
* **OpenBLAS's idle threads are paused** before our threads run (and never with one thread), and matrix products
  after a pause are still right;
* **the work goes through a queue**: every block runs exactly once, whichever thread takes it;
* **scratch buffers are named**: a block that asks for a name twice, or is handed two names on the same memory,
  is an error;
* **where threads cannot start** (WebAssembly, a failing ``Thread.start``): one thread, the count clamped to 1,
  the same bits, no OpenBLAS lookup; in-process and, for what happens at import, in a fresh process.
"""

import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import numpy_shufflenet
from numpy_shufflenet import fast
from numpy_shufflenet.fast import blas, threads
from numpy_shufflenet.functional import softmax_cross_entropy
from numpy_shufflenet.models import ShuffleNet

from conftest import assert_same


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of ~64 numbers: one image per block for every array in these tests."""
    monkeypatch.setattr(threads, "BLOCK_ELEMENTS", 64)
    monkeypatch.setattr(threads, "PARALLEL_ELEMENTS", 0)


@pytest.fixture(autouse=True)
def restore_thread_count():
    previous = fast.get_num_threads()
    yield
    fast.set_num_threads(previous)


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------------------------
# the switch
# --------------------------------------------------------------------------------------------------------------
def test_set_num_threads_returns_the_previous_count_and_is_used():
    fast.set_num_threads(3)
    assert fast.get_num_threads() == 3
    assert fast.set_num_threads(1) == 3
    assert fast.get_num_threads() == 1


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (2.5, TypeError), ("2", TypeError),
                                        (True, TypeError), (None, TypeError)])
def test_set_num_threads_refuses_bad_values(bad, error):
    with pytest.raises(error, match="set_num_threads: expected a positive integer"):
        fast.set_num_threads(bad)


def test_default_comes_from_the_environment_or_the_cores(monkeypatch):
    monkeypatch.setattr(threads, "_num_threads", None)
    monkeypatch.setenv(threads.ENV_VAR, "5")
    assert fast.get_num_threads() == 5
    monkeypatch.setattr(threads, "_num_threads", None)
    monkeypatch.delenv(threads.ENV_VAR)
    assert fast.get_num_threads() == threads._available_cores() >= 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setattr(threads, "_num_threads", None)
        monkeypatch.setenv(threads.ENV_VAR, bad)
        with pytest.raises(ValueError, match=threads.ENV_VAR):
            fast.get_num_threads()
    monkeypatch.setattr(threads, "_num_threads", None)


def test_batch_blocks_cover_the_batch_and_ignore_the_thread_count():
    for N, per_image, target in [(1, 10, 64), (7, 10, 64), (32, 1000, 64), (5, 3, 10 ** 6)]:
        blocks = threads.batch_blocks(N, per_image, target)
        assert blocks[0][0] == 0 and blocks[-1][1] == N
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
        assert all(stop - start >= 1 for start, stop in blocks)
    assert threads.batch_blocks(32, 1000, 64) == [(n, n + 1) for n in range(32)]
    assert threads.batch_blocks(5, 3, 10 ** 6) == [(0, 5)]


def test_run_blocks_keeps_block_order_and_raises_a_block_error():
    fast.set_num_threads(3)
    assert threads.run_blocks(lambda a, b: (a, b), [(i, i + 1) for i in range(20)]) == [(i, i + 1)
                                                                                       for i in range(20)]

    def fails_on_7(a, b):
        if a == 7:
            raise ValueError("block 7")
        return a

    with pytest.raises(ValueError, match="block 7"):
        threads.run_blocks(fails_on_7, [(i, i + 1) for i in range(20)])


def test_nested_run_blocks_run_serially_instead_of_deadlocking():
    fast.set_num_threads(2)

    def outer(a, b):
        return sum(threads.run_blocks(lambda c, d: c, [(i, i + 1) for i in range(4)]))

    assert threads.run_blocks(outer, [(i, i + 1) for i in range(6)]) == [6] * 6


# --------------------------------------------------------------------------------------------------------------
# every threaded kernel: 1 thread == n threads, bitwise; many blocks == one block, to rounding
# --------------------------------------------------------------------------------------------------------------
def _kernel_runs(rng, x):
    """``name -> fn(x, dout_rng) -> list of arrays``: forward outputs and backward gradients of each kernel."""
    C = x.shape[1]
    gamma, beta = rng.standard_normal(C).astype(x.dtype), rng.standard_normal(C).astype(x.dtype)
    w_dw = rng.standard_normal((C, 1, 3, 3)).astype(x.dtype)

    def pair(forward, backward, **kw):
        def run(x):
            out, cache = forward(x, **kw)
            dout = np.random.default_rng(7).standard_normal(out.shape)
            grads = backward(dout, cache)
            return [out, *(grads if isinstance(grads, tuple) else (grads,))]
        return run

    def bn(forward, backward, training):
        def run(x):
            rm, rv = np.zeros(C, x.dtype), np.ones(C, x.dtype)
            out, cache = forward(x, gamma, beta, running_mean=rm, running_var=rv, training=training)
            dout = np.random.default_rng(7).standard_normal(out.shape)
            return [out, rm, rv, *backward(dout, cache)]
        return run

    def depthwise(stride):
        def run(x):
            out, cache = fast.conv2d_forward(x, w_dw, stride=stride, padding=1, groups=C)
            return [out, *fast.conv2d_backward(np.random.default_rng(7).standard_normal(out.shape), cache)[:2]]
        return run

    return {
        "batch norm train": bn(fast.batchnorm2d_forward, fast.batchnorm2d_backward, True),
        "batch norm eval": bn(fast.batchnorm2d_forward, fast.batchnorm2d_backward, False),
        "batch norm + relu": bn(fast.batchnorm2d_relu_forward, fast.batchnorm2d_relu_backward, True),
        "depthwise s1": depthwise(1),
        "depthwise s2": depthwise(2),
        "max pool": pair(fast.max_pool2d_forward, fast.max_pool2d_backward, kernel_size=3, stride=2, padding=1),
        "avg pool": pair(fast.avg_pool2d_forward, fast.avg_pool2d_backward, kernel_size=3, stride=2, padding=1),
        "relu": pair(fast.relu_forward, fast.relu_backward),
        "add + relu": pair(lambda x: fast.add_relu_forward(x, 0.5 - x * x), fast.add_relu_backward),
        "concat + relu": pair(lambda x: fast.concat_relu_forward(x, x[:, :2] - 0.25), fast.concat_relu_backward),
        "shuffle": pair(fast.channel_shuffle_forward, fast.channel_shuffle_backward, groups=3),
    }


def _run_with(num_threads, run, x):
    fast.set_num_threads(num_threads)
    return run(x)


def _assert_bitwise(a, b, name):
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape and u.dtype == v.dtype, name
        assert np.array_equal(u, v, equal_nan=True), f"{name}: result {i} differs between thread counts"


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_every_threaded_kernel_gives_the_same_bits_on_1_and_4_threads(rng, tiny_blocks, layout):
    x = rng.standard_normal((9, 6, 7, 8))
    x[0, 1, 2, 3] = np.nan                                   # NaN takes the same route on every thread count
    x = channels_last(x) if layout == "channels_last" else x
    for name, run in _kernel_runs(rng, x).items():
        if name.startswith("batch norm"):
            continue                                          # a NaN spreads over its whole channel; below
        _assert_bitwise(_run_with(1, run, x), _run_with(4, run, x), name)
    x = np.nan_to_num(x, nan=0.5)
    for name, run in _kernel_runs(rng, x).items():
        _assert_bitwise(_run_with(1, run, x), _run_with(4, run, x), name)


def test_many_blocks_equal_one_block_to_rounding(rng, monkeypatch):
    x = channels_last(rng.standard_normal((9, 6, 7, 8)))
    runs = _kernel_runs(rng, x)
    one_block = {name: _run_with(1, run, x) for name, run in runs.items()}
    monkeypatch.setattr(threads, "BLOCK_ELEMENTS", 64)
    monkeypatch.setattr(threads, "PARALLEL_ELEMENTS", 0)
    for name, run in runs.items():
        many = _run_with(3, run, x)
        assert threads.batch_blocks(9, 6 * 7 * 8) != [(0, 9)]              # really split
        for u, v in zip(many, one_block[name]):
            assert_same(u, v)


def test_no_race_over_many_small_random_configurations(tiny_blocks):
    """Random shapes, strides, layouts and thread counts; every run compared bitwise with 1 thread."""
    rng = np.random.default_rng(2024)
    for trial in range(40):
        N, C = int(rng.integers(1, 7)), 3 * int(rng.integers(1, 4))
        H, W = int(rng.integers(3, 10)), int(rng.integers(3, 10))
        x = rng.standard_normal((N, C, H, W))
        if rng.random() < 0.5:
            x = channels_last(x)
        if rng.random() < 0.5:
            x = x.astype(np.float32)
        runs = _kernel_runs(np.random.default_rng(trial), x)
        name = list(runs)[trial % len(runs)]
        expected = _run_with(1, runs[name], x)
        for n in (2, 3):
            _assert_bitwise(_run_with(n, runs[name], x), expected, f"trial {trial}: {name} on {n} threads")


def test_fused_batch_norm_relu_is_batch_norm_then_relu_bitwise(rng, tiny_blocks):
    fast.set_num_threads(2)
    x = channels_last(rng.standard_normal((5, 6, 4, 7)))
    x[1, 2] = -x[1, 2] * 1e3                                  # a channel mostly clamped by the ReLU
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    dout = rng.standard_normal(x.shape)
    y, c = fast.batchnorm2d_forward(x, gamma, beta)
    r, rc = fast.relu_forward(y)
    separate = [r, *fast.batchnorm2d_backward(fast.relu_backward(dout, rc), c)]
    fused_out, fc = fast.batchnorm2d_relu_forward(x, gamma, beta)
    _assert_bitwise([fused_out, *fast.batchnorm2d_relu_backward(dout, fc)], separate, "fused bn+relu")


def test_relu_follows_pytorch_at_nan(rng):
    x = np.array([[-1.0, np.nan, 0.0, 2.0, -np.nan]])
    out, cache = fast.relu_forward(x)
    np.testing.assert_array_equal(out, [[0.0, np.nan, 0.0, 2.0, np.nan]])
    np.testing.assert_array_equal(fast.relu_backward(np.ones_like(x), cache), [[0.0, 1.0, 0.0, 1.0, 1.0]])


# --------------------------------------------------------------------------------------------------------------
# a whole training step
# --------------------------------------------------------------------------------------------------------------
def _step(model, x, y):
    loss, dlogits = softmax_cross_entropy(model(x), y)
    dx = model.backward(dlogits)
    return [np.asarray(loss), dx] + [p.grad.copy() for p in model.parameters()]


def test_a_shufflenet_step_gives_the_same_bits_on_1_and_3_threads(tiny_blocks):
    rng = np.random.default_rng(3)
    model = ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    fast.set_num_threads(1)
    one = _step(model, x, y)
    fast.set_num_threads(3)
    _assert_bitwise(_step(model, x, y), one, "ShuffleNet step")


def test_matrix_products_stay_in_the_calling_thread(tiny_blocks, monkeypatch):
    """OpenBLAS has threads of its own: no BLAS call may come from a pool worker."""
    callers = []
    for name in ("matmul", "dot", "tensordot"):
        original = getattr(np, name)

        def spy(*args, _original=original, **kwargs):
            callers.append(threading.current_thread())
            return _original(*args, **kwargs)

        monkeypatch.setattr(np, name, spy)
    original_einsum = np.einsum

    def einsum_spy(*args, **kwargs):
        if kwargs.get("optimize"):                        # only an optimized einsum may call BLAS
            callers.append(threading.current_thread())
        return original_einsum(*args, **kwargs)

    monkeypatch.setattr(np, "einsum", einsum_spy)
    fast.set_num_threads(3)
    rng = np.random.default_rng(4)
    model = ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng)
    _step(model, rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 4))
    assert callers, "the spy saw no matrix product: it would prove nothing"
    assert set(callers) == {threading.main_thread()}


# --------------------------------------------------------------------------------------------------------------
# OpenBLAS's waiting threads
# --------------------------------------------------------------------------------------------------------------
def test_blas_threads_are_paused_before_our_threads_run_and_never_on_one_thread(tiny_blocks, monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "pause_blas_threads", lambda: calls.append(1))
    rng = np.random.default_rng(5)
    model = ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng)
    x, y = rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 4)
    fast.set_num_threads(1)
    _step(model, x, y)
    assert calls == []
    fast.set_num_threads(2)
    _step(model, x, y)
    assert len(calls) > 10                               # one per region that runs on several threads


def test_matrix_products_are_right_after_a_pause():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((700, 300)), rng.standard_normal((300, 200))
    expected = np.einsum("ik,kj->ij", a, b)             # no BLAS: an independent route
    for _ in range(3):
        blas.pause_blas_threads()
        np.testing.assert_allclose(a @ b, expected, rtol=1e-12, atol=1e-12)
        blas.pause_blas_threads()
        blas.pause_blas_threads()                        # pausing twice is harmless
    description = blas.blas_description()
    assert isinstance(description, str) and description


def test_blas_description_says_what_was_found(monkeypatch):
    monkeypatch.setattr(blas, "_info", None)             # both restored after the test
    monkeypatch.setattr(blas, "_shutdowns", None)
    monkeypatch.setattr(blas, "_loaded_openblas_paths", lambda: [])
    assert blas.blas_description() == "no OpenBLAS thread pool found (nothing to pause)"
    blas.pause_blas_threads()                            # nothing found: a no-op


def _threads_of_this_process():
    return len(os.listdir("/proc/self/task"))


def test_a_pause_stops_openblas_threads_and_the_next_product_starts_them():
    """OpenBLAS's workers are real threads of this process: a pause ends them, a product starts them again."""
    if not blas._load() or not os.path.isdir("/proc/self/task"):    # no OpenBLAS pthreads pool, or no /proc
        pytest.skip(f"nothing to pause here: {blas.blas_description()}")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: OpenBLAS runs no worker threads to stop")
    a = np.ones((3000, 400))
    blas.pause_blas_threads()
    without = _threads_of_this_process()
    a @ a.T                                              # large enough for OpenBLAS to use its threads
    running = _threads_of_this_process()
    assert running > without                             # the pause had stopped the workers; the product restarted them
    blas.pause_blas_threads()                            # returns after joining them
    assert _threads_of_this_process() == without
    a @ a.T
    assert _threads_of_this_process() == running



# --------------------------------------------------------------------------------------------------------------
# the blocks are handed out by a queue
# --------------------------------------------------------------------------------------------------------------
def test_every_block_runs_exactly_once_and_the_helpers_take_part():
    fast.set_num_threads(3)
    lock, ran, both_started = threading.Lock(), collections.Counter(), threading.Event()
    workers = set()

    def block(a, b):
        with lock:
            ran[a] += 1
            workers.add(threading.current_thread())
            if len(workers) >= 2:
                both_started.set()
        assert both_started.wait(timeout=30), "no second thread took a block"    # hold the first block
        return a * 10

    for _ in range(5):
        assert threads.run_blocks(block, [(i, i + 1) for i in range(40)]) == [10 * i for i in range(40)]
    assert ran == {i: 5 for i in range(40)}
    assert threading.main_thread() in workers and len(workers) >= 2


def test_the_first_failed_block_is_raised_after_every_block_has_ended():
    fast.set_num_threads(3)
    ended = []

    def block(a, b):
        if a in (3, 11):
            raise ValueError(f"block {a}")
        ended.append(a)

    with pytest.raises(ValueError, match="block 3"):
        threads.run_blocks(block, [(i, i + 1) for i in range(20)])
    assert sorted(ended) == [i for i in range(20) if i not in (3, 11)]


# --------------------------------------------------------------------------------------------------------------
# scratch buffers: named by what they hold, never two live ones on the same memory
# --------------------------------------------------------------------------------------------------------------
def _in_one_block(fn):
    return threads.run_blocks(lambda a, b: fn(), [(0, 1)])[0]


def test_scratch_buffers_of_one_block_are_distinct_and_reused_by_the_next():
    def first():
        a = threads.scratch("a", (4, 5), np.float64, fill=0)
        b = threads.scratch("b", (20,), np.float64)
        assert not np.shares_memory(a, b)
        assert a.shape == (4, 5) and not a.any()
        return a

    a = _in_one_block(first)
    again = _in_one_block(lambda: threads.scratch("a", (2, 3), np.float64))
    assert np.shares_memory(a, again)                                  # the same memory, block after block
    other_dtype = _in_one_block(lambda: threads.scratch("a", (2, 3), np.float32))
    assert not np.shares_memory(a, other_dtype)                        # another dtype: another buffer


def test_a_name_asked_for_twice_in_one_block_is_an_error():
    def twice():
        threads.scratch("row sums", (3,), np.float64)
        threads.scratch("row sums", (3,), np.float64)

    with pytest.raises(RuntimeError, match="'row sums' is already in use in this block"):
        _in_one_block(twice)
    _in_one_block(lambda: threads.scratch("row sums", (3,), np.float64))   # released when the block ended


def test_two_names_on_the_same_memory_are_an_error():
    """Would a bug map two names to one buffer (as numbered slots once could), the block fails."""
    def aliased():
        threads.scratch("a", (8,), np.float64)
        buffers = threads._state.scratch
        buffers[("b", np.dtype(np.float64))] = buffers[("a", np.dtype(np.float64))]
        threads.scratch("b", (8,), np.float64)

    try:
        with pytest.raises(RuntimeError, match="'b' and 'a' share memory while both are in use"):
            _in_one_block(aliased)
    finally:
        threads._state.scratch.pop(("b", np.dtype(np.float64)), None)


def test_a_nested_block_sees_the_buffers_of_the_outer_block():
    def outer():
        threads.scratch("a", (4,), np.float64)
        threads.run_blocks(lambda c, d: threads.scratch("a", (4,), np.float64), [(0, 1)])

    with pytest.raises(RuntimeError, match="'a' is already in use"):
        _in_one_block(outer)


def test_scratch_outside_a_block_is_an_error():
    with pytest.raises(RuntimeError, match="'a' asked for outside a block"):
        threads.scratch("a", (4,), np.float64)


def test_the_kernels_name_their_scratch_buffers(rng, tiny_blocks):
    fast.set_num_threads(1)
    x = channels_last(rng.standard_normal((3, 6, 7, 8)))
    for run in _kernel_runs(rng, x).values():
        run(x)
    names = {name for name, dtype in threads._state.scratch}
    assert {"tap product", "padded gradient, phase 0", "padded gradient, phase 1", "centred block", "x times b",
            "relu mask", "padded input, phase 0", "row maxima", "row maxima gradient", "row sums",
            "row sums gradient"} <= names


# --------------------------------------------------------------------------------------------------------------
# where threads cannot start
# --------------------------------------------------------------------------------------------------------------
def _all_kernels(x):
    runs = _kernel_runs(np.random.default_rng(8), x)
    return {name: run(x) for name, run in runs.items()}


def _assert_same_bits(got, expected):
    for name in expected:
        _assert_bitwise(got[name], expected[name], name)


@pytest.fixture
def no_thread_can_start(monkeypatch):
    """``Thread.start`` raises as on WebAssembly; returns the list of attempts."""
    fast.set_num_threads(1)                                   # no pool left from an earlier test
    attempts = []

    def refuse(self):
        attempts.append(self.name)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    monkeypatch.setattr(threads, "_start_failed", False)     # restored after the test
    return attempts


def test_on_webassembly_everything_runs_on_one_thread(rng, tiny_blocks, monkeypatch, no_thread_can_start):
    x = channels_last(rng.standard_normal((5, 6, 7, 8)))
    expected = _all_kernels(x)
    monkeypatch.setattr(sys, "platform", "emscripten")
    monkeypatch.setattr(threads, "_num_threads", None)
    monkeypatch.setenv(threads.ENV_VAR, "2")
    assert fast.get_num_threads() == 1                        # the variable is clamped to 1
    assert fast.set_num_threads(2) == 1 and fast.get_num_threads() == 1
    with pytest.raises(ValueError, match="set_num_threads: expected a positive integer"):
        fast.set_num_threads(0)                               # a bad value is still an error
    monkeypatch.setattr(threads, "_num_threads", None)
    monkeypatch.setenv(threads.ENV_VAR, "two")
    with pytest.raises(ValueError, match=threads.ENV_VAR):
        fast.get_num_threads()
    monkeypatch.delenv(threads.ENV_VAR)
    monkeypatch.setattr(threads, "_num_threads", None)
    assert fast.get_num_threads() == threads._available_cores() == 1
    _assert_same_bits(_all_kernels(x), expected)
    assert no_thread_can_start == []                          # nothing even tried to start a thread


def test_on_webassembly_the_blas_pause_looks_for_nothing(monkeypatch):
    def must_not_run(*args):
        raise AssertionError("looked for OpenBLAS where threads cannot start")

    monkeypatch.setattr(sys, "platform", "emscripten")
    monkeypatch.setattr(blas, "_info", None)
    monkeypatch.setattr(blas, "_shutdowns", None)
    monkeypatch.setattr(blas, "_loaded_openblas_paths", must_not_run)
    import ctypes
    monkeypatch.setattr(ctypes, "CDLL", must_not_run)
    blas.pause_blas_threads()
    assert blas.blas_description() == "no threads on this platform (emscripten): nothing to pause"


def test_a_thread_that_cannot_start_falls_back_to_one_thread(rng, tiny_blocks, no_thread_can_start):
    x = channels_last(rng.standard_normal((5, 6, 7, 8)))
    expected = _all_kernels(x)
    model = ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=np.random.default_rng(3))
    images = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 4)
    step = _step(model, images, labels)
    fast.set_num_threads(2)
    _assert_same_bits(_all_kernels(x), expected)              # no error, the same bits
    _assert_bitwise(_step(model, images, labels), step, "ShuffleNet step")
    assert len(no_thread_can_start) == 1                      # tried once, then one thread from then on
    assert fast.get_num_threads() == 1 and threads._pool is None
    assert fast.set_num_threads(3) == 1 and fast.get_num_threads() == 1


def test_a_second_thread_that_cannot_start_loses_no_block(rng, tiny_blocks, monkeypatch):
    """The first helper starts, the second does not: the work given to the pool still runs exactly once."""
    fast.set_num_threads(1)
    x = channels_last(rng.standard_normal((5, 6, 7, 8)))
    expected = _all_kernels(x)
    original, started = threading.Thread.start, []

    def second_fails(self):
        if started:
            raise RuntimeError("can't start new thread")
        started.append(self.name)
        run = self.run

        def late_run():                                       # still busy when the second helper is asked for
            time.sleep(0.2)
            run()

        self.run = late_run
        original(self)

    monkeypatch.setattr(threading.Thread, "start", second_fails)
    monkeypatch.setattr(threads, "_start_failed", False)
    fast.set_num_threads(3)
    _assert_same_bits(_all_kernels(x), expected)
    assert len(started) == 1 and fast.get_num_threads() == 1


_NO_THREADS_PROCESS = """
import builtins, os, sys, threading
import numpy as np

sys.platform = "emscripten"                 # as Pyodide; set before the package is imported
refused, proc_reads, libraries = [], [], []
def refuse(self):
    refused.append(self.name)
    raise RuntimeError("can't start new thread")
threading.Thread.start = refuse
del os.sched_getaffinity
os.cpu_count = lambda: None
real_open = builtins.open
def open_without_proc(file, *args, **kwargs):
    if str(file).startswith("/proc"):
        proc_reads.append(str(file))
        raise FileNotFoundError(file)
    return real_open(file, *args, **kwargs)
builtins.open = open_without_proc
import ctypes
ctypes.CDLL = lambda *args, **kwargs: libraries.append(args) or 1 / 0

from numpy_shufflenet import fast, functional, models
from numpy_shufflenet.fast import blas, threads
threads.BLOCK_ELEMENTS, threads.PARALLEL_ELEMENTS = 64, 0
assert fast.get_num_threads() == 1, fast.get_num_threads()
assert fast.set_num_threads(2) == 1 and fast.get_num_threads() == 1
rng = np.random.default_rng(3)
model = models.ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng)
x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
loss, dlogits = functional.softmax_cross_entropy(model(x), rng.integers(0, 10, 4))
model.backward(dlogits)
blas.pause_blas_threads()
print(blas.blas_description())
assert refused == [] and proc_reads == [] and libraries == [], (refused, proc_reads, libraries)
np.savez(sys.argv[1], loss=loss, *[p.grad for p in model.parameters()])
"""


def test_a_fresh_process_without_threads_imports_and_trains_on_one_thread(tmp_path, tiny_blocks):
    """What happens at import: NUMPY_SHUFFLENET_NUM_THREADS=2 on a platform without threads, cpu_count() None, no
    sched_getaffinity, no /proc, no ctypes: one thread, no error, the same bits as here on one thread."""
    root = str(Path(numpy_shufflenet.__file__).resolve().parents[1])
    env = {**os.environ, threads.ENV_VAR: "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "step.npz"
    done = subprocess.run([sys.executable, "-c", _NO_THREADS_PROCESS, str(out)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no threads on this platform (emscripten): nothing to pause"
    fast.set_num_threads(1)
    rng = np.random.default_rng(3)
    model = ShuffleNet(groups=3, scale=0.25, num_classes=10, rng=rng)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    loss, dlogits = softmax_cross_entropy(model(x), rng.integers(0, 10, 4))
    model.backward(dlogits)
    saved = np.load(out)
    expected = [np.asarray(loss)] + [p.grad for p in model.parameters()]
    got = [saved["loss"]] + [saved[f"arr_{i}"] for i in range(len(expected) - 1)]
    _assert_bitwise(got, expected, "a training step without threads")
