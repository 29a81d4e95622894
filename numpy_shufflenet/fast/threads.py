"""A small persistent thread pool for the memory-bound kernels (batch norm, depthwise conv, pooling, ReLU, shuffle).

NumPy releases the GIL inside its element-wise loops and reductions, so two Python threads working on two halves
of a batch really do run on two cores. The kernels in this package split their work into **blocks of whole
images** along the batch axis (:func:`batch_blocks`) and hand the blocks to :func:`run_blocks`:

* the blocks depend only on the array's shape, never on the number of threads, and every block writes its own
  slice of the output (or its own partial sums, which the caller adds in block order). So a kernel gives
  **bitwise the same result with 1 thread or with 8**. A block is about half a million numbers: small enough
  that its temporaries stay in the processor's cache, large enough that the Python around each block's NumPy
  calls (which holds the GIL, so two threads take turns at it) is a small share of the block's time;
* with one thread (``set_num_threads(1)``), or when the arrays are small (:data:`PARALLEL_ELEMENTS`), the blocks
  run one after the other in the calling thread: no pool, no dispatch cost;
* work inside a block never calls BLAS (no ``matmul``, ``dot``, ``tensordot`` or ``einsum(optimize=True)``):
  OpenBLAS runs its own threads, and it is never called from two of ours at once. Matrix products stay in the
  calling thread; before the blocks go to several threads, OpenBLAS's idle threads, which busy-wait for a while
  after every product, are paused (:mod:`.blas`), so that our threads get the cores.

The number of threads is the number of cores this process may use (``os.sched_getaffinity``), or the value of the
environment variable ``NUMPY_SHUFFLENET_NUM_THREADS`` when it is set, or what :func:`set_num_threads` last set.
"""

import itertools
import math
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .blas import pause_blas_threads

ENV_VAR = "NUMPY_SHUFFLENET_NUM_THREADS"
BLOCK_ELEMENTS = 1 << 19          # about 512K numbers (2 MB of float32) per block (see the module docstring)
PARALLEL_ELEMENTS = 1 << 19       # below 512K numbers the blocks run in the calling thread (waking threads costs more)

_lock = threading.Lock()
_state = threading.local()        # .busy is True inside a pool worker (nested calls then run serially)
_pool = None
_num_threads = None


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):           # not every platform has sched_getaffinity
        return os.cpu_count() or 1


def _check_count(n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads: expected a positive integer, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n}")
    return int(n)


def _default_threads():
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return _available_cores()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"numpy_shufflenet: expected the environment variable {ENV_VAR} to be a positive "
                         f"integer, got {value!r}")
    return int(value)


def get_num_threads():
    """The number of threads the fast kernels use (1 means everything runs in the calling thread)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n):
    """Use ``n`` threads (a positive int) for the fast kernels from now on; returns the previous number."""
    global _pool, _num_threads
    n = _check_count(n)
    previous = get_num_threads()
    with _lock:
        if _pool is not None and n != previous:
            _pool.shutdown(wait=True)
            _pool = None
        _num_threads = n
    return previous


def _get_pool(threads):
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="numpy_shufflenet")
        return _pool


def _forget_pool_after_fork():
    global _pool
    _pool = None                  # a forked child has none of the parent's threads; it starts a new pool


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def scratch(shape, dtype, slot=0, fill=None):
    """A work array of ``shape`` and ``dtype`` for a block's temporaries, reused by the calling thread; its
    contents are undefined and it must not outlive the block.

    Blocks need temporaries of the same few sizes over and over. A fresh array of a few megabytes is fresh
    memory from the operating system every time, and the first write to each of its pages is a page fault (batch
    norm + ReLU over (32, 480, 14, 14) on one thread: 5.2 ms with fresh temporaries, 3.9 ms with these). Each
    thread keeps one buffer per ``(dtype, slot)``, grown to the largest size asked for; a block that needs two
    temporaries at once uses two slots. ``fill``, when given, is written into every element first (``fill=0``
    for a gradient to add into).
    """
    buffers = _state.__dict__.setdefault("scratch", {})
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    buffer = buffers.get((dtype, slot))
    if buffer is None or buffer.size < size:
        buffer = buffers[(dtype, slot)] = np.empty(size, dtype=dtype)
    a = buffer[:size].reshape(shape)
    if fill is not None:
        a.fill(fill)
    return a


def batch_blocks(N, per_image, target=None):
    """Split ``range(N)`` into consecutive ``(start, stop)`` blocks of about ``target`` numbers each
    (default :data:`BLOCK_ELEMENTS`).

    ``per_image`` is the number of elements one image contributes to the largest array a block touches. The
    split depends only on ``N`` and ``per_image``, so results never depend on the number of threads.
    """
    target = BLOCK_ELEMENTS if target is None else target
    size = max(1, min(N, target // max(1, int(per_image))))
    return [(start, min(start + size, N)) for start in range(0, N, size)]


def run_blocks(fn, blocks):
    """Call ``fn(start, stop)`` for every block; return the results in block order.

    The blocks run on :func:`get_num_threads` threads (the calling thread takes part); ``fn`` must only write to
    its own block's slices and must not call BLAS. An exception in any block is raised here.
    """
    threads = min(get_num_threads(), len(blocks))
    if threads <= 1 or getattr(_state, "busy", False):
        return [fn(start, stop) for start, stop in blocks]
    results = [None] * len(blocks)
    order = itertools.count()     # next() on a count is atomic under the GIL: each block is taken exactly once

    def work():
        _state.busy = True
        try:
            for i in iter(order.__next__, None):
                if i >= len(blocks):
                    return
                results[i] = fn(*blocks[i])
        finally:
            _state.busy = False

    pause_blas_threads()          # OpenBLAS's waiting threads would take the cores our threads need
    futures = [_get_pool(get_num_threads()).submit(work) for _ in range(threads - 1)]
    error = None
    try:
        work()
    except BaseException as e:   # still wait for the others: they may be writing into the caller's arrays
        error = e
    for future in futures:
        try:
            future.result()
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error
    return results


def parallel_over_batch(fn, N, per_image):
    """``run_blocks(fn, batch_blocks(N, per_image))``: the usual way a kernel splits its batch (in the calling
    thread alone when the whole batch holds fewer than :data:`PARALLEL_ELEMENTS` numbers)."""
    blocks = batch_blocks(N, per_image)
    if N * per_image < PARALLEL_ELEMENTS:
        return [fn(start, stop) for start, stop in blocks]
    return run_blocks(fn, blocks)
