"""A small persistent thread pool for the memory-bound kernels (batch norm, depthwise conv, pooling, ReLU, shuffle).

NumPy releases the GIL inside its element-wise loops and reductions, so two Python threads working on two halves
of a batch really do run on two cores. The kernels in this package split their work into **blocks of whole
images** along the batch axis (:func:`batch_blocks`) and hand the blocks to :func:`run_blocks`:

* the blocks depend only on the array's shape, never on the number of threads, and every block writes its own
  slice of the output (or its own partial sums, which the caller adds in block order). So a kernel gives
  **bitwise the same result with 1 thread or with 8**. A block is about half a million numbers: small enough
  that its temporaries stay in the processor's cache, large enough that the Python around each block's NumPy
  calls (which holds the GIL, so two threads take turns at it) is a small share of the block's time;
* the threads take the blocks' numbers from a ``queue.SimpleQueue`` and hand their results back through another
  one, so every block runs exactly once and the caller waits for every block, with no reliance on the GIL;
* with one thread (``set_num_threads(1)``), or when the arrays are small (:data:`PARALLEL_ELEMENTS`), the blocks
  run one after the other in the calling thread: no pool, no dispatch cost;
* work inside a block never calls BLAS (no ``matmul``, ``dot``, ``tensordot`` or ``einsum(optimize=True)``):
  OpenBLAS runs its own threads, and it is never called from two of ours at once. Matrix products stay in the
  calling thread; before the blocks go to several threads, OpenBLAS's idle threads, which busy-wait for a while
  after every product, are paused (:mod:`.blas`), so that our threads get the cores;
* a block's temporaries come from :func:`scratch`, one reused buffer per thread for each thing a block holds.

The number of threads is the number of cores this process may use (``os.sched_getaffinity``), or the value of the
environment variable ``NUMPY_SHUFFLENET_NUM_THREADS`` when it is set, or what :func:`set_num_threads` last set.

**Where threads cannot start** (WebAssembly, as in Pyodide and JupyterLite: ``sys.platform == "emscripten"``;
or any platform where starting the pool's first thread fails) everything runs in the calling thread: the count
is 1, and ``set_num_threads(n)`` and the environment variable accept any positive ``n`` but the count stays 1
(:func:`set_num_threads`). A thread that fails to start is no error: the blocks it would have taken run in the
calling thread, and from then on the process uses one thread. The numbers are the same bits either way.
"""

import math
import numbers
import os
import queue
import sys
import threading

import numpy as np

from .blas import NO_THREAD_PLATFORMS, pause_blas_threads

ENV_VAR = "NUMPY_SHUFFLENET_NUM_THREADS"
BLOCK_ELEMENTS = 1 << 19          # about 512K numbers (2 MB of float32) per block (see the module docstring)
PARALLEL_ELEMENTS = 1 << 19       # below 512K numbers the blocks run in the calling thread (waking threads costs more)

_lock = threading.Lock()          # held while the pool is made, given work or shut down
_state = threading.local()        # per thread: .busy (inside a pool worker: nested calls run serially),
#                                   .live (the scratch buffers of the running block), .scratch (the buffers)
_pool = None
_num_threads = None
_start_failed = False             # a pool thread failed to start: one thread from then on


def threads_can_start():
    """False on WebAssembly (:data:`NO_THREAD_PLATFORMS`) and after a pool thread failed to start."""
    return not _start_failed and sys.platform not in NO_THREAD_PLATFORMS


def _available_cores():
    if not threads_can_start():
        return 1
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
    """The number of threads the fast kernels use (1 means everything runs in the calling thread; always 1 where
    threads cannot start)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads if threads_can_start() else 1


def set_num_threads(n):
    """Use ``n`` threads (a positive int) for the fast kernels from now on; returns the previous number.

    Where threads cannot start (WebAssembly, or after a thread failed to start) the count stays 1 whatever ``n``
    is: a bad ``n`` is still an error, but a good one only gives up the speed-up, never changes a result (the
    kernels give the same bits on any number of threads), so a notebook that asks for 2 threads runs there too.
    """
    global _pool, _num_threads
    n = _check_count(n)
    previous = get_num_threads()
    if not threads_can_start():
        n = 1
    with _lock:
        if _pool is not None and n != previous:
            _pool.shutdown(wait=True)
            _pool = None
        _num_threads = n
    return previous


def _start_helpers(work, count):
    """Give ``work`` to ``count`` pool threads (the pool, of ``get_num_threads() - 1`` threads, is made on first
    use).

    When a thread cannot start (``RuntimeError: can't start new thread``), the helpers that did start keep their
    work, the calling thread takes every block nobody else takes, and the process uses one thread from then on.
    """
    global _pool, _start_failed
    from concurrent.futures import ThreadPoolExecutor      # only where blocks really go to several threads

    workers = max(count, get_num_threads() - 1)
    with _lock:
        try:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="numpy_shufflenet")
            for _ in range(count):
                _pool.submit(work)
        except RuntimeError:
            _start_failed = True
            if _pool is not None:
                _pool.shutdown(wait=False)
                _pool = None


def _forget_pool_after_fork():
    global _pool
    _pool = None                  # a forked child has none of the parent's threads; it starts a new pool


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def scratch(name, shape, dtype, fill=None):
    """A work array of ``shape`` and ``dtype`` for the running block's temporary ``name`` (what it holds, e.g.
    ``"row maxima"``), reused by the calling thread; its contents are undefined and it must not outlive the block.

    Blocks need temporaries of the same few sizes over and over. A fresh array of a few megabytes is fresh
    memory from the operating system every time, and the first write to each of its pages is a page fault. Each
    thread keeps one buffer per ``(name, dtype)``, grown to the largest size asked for. ``fill``, when given, is
    written into every element first (``fill=0`` for a gradient to add into).

    A block holds each name once: asking again for a name the running block already holds, or being handed
    memory that another buffer the block holds overlaps, is a ``RuntimeError`` (a few comparisons per block).
    Outside a block (:func:`run_blocks`) there is no scratch memory.
    """
    live = getattr(_state, "live", None)
    if live is None:
        raise RuntimeError(f"scratch: {name!r} asked for outside a block; only blocks run by run_blocks may use "
                           f"scratch memory")
    if name in live:
        raise RuntimeError(f"scratch: {name!r} is already in use in this block; give each temporary its own name")
    buffers = _state.__dict__.setdefault("scratch", {})
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    buffer = buffers.get((name, dtype))
    if buffer is None or buffer.size < size:
        buffer = buffers[(name, dtype)] = np.empty(size, dtype=dtype)
    a = buffer[:size].reshape(shape)
    for other, b in live.items():
        if np.shares_memory(a, b):
            raise RuntimeError(f"scratch: {name!r} and {other!r} share memory while both are in use")
    live[name] = a
    if fill is not None:
        a.fill(fill)
    return a


def _run_block(fn, start, stop):
    """``fn(start, stop)`` with its own set of live scratch buffers, released when it returns (a block run inside
    another block, as a nested :func:`run_blocks` runs, also sees the buffers the outer block holds)."""
    outer = getattr(_state, "live", None)
    _state.live = {} if outer is None else dict(outer)
    try:
        return fn(start, stop)
    finally:
        _state.live = outer


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
    its own block's slices and must not call BLAS. An exception in any block is raised here, after every block
    has ended (the others may be writing into the caller's arrays).
    """
    threads = min(get_num_threads(), len(blocks))
    if threads <= 1 or getattr(_state, "busy", False):
        return [_run_block(fn, start, stop) for start, stop in blocks]
    todo, done = queue.SimpleQueue(), queue.SimpleQueue()     # block numbers to take; (number, result, error)
    for i in range(len(blocks)):
        todo.put(i)

    def work():
        _state.busy = True
        try:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((i, _run_block(fn, *blocks[i]), None))
                except BaseException as e:      # reported by the caller, after every block has ended
                    done.put((i, None, e))
        finally:
            _state.busy = False

    pause_blas_threads()          # OpenBLAS's waiting threads would take the cores our threads need
    _start_helpers(work, threads - 1)
    work()
    results, errors = [None] * len(blocks), {}
    for _ in blocks:              # waits for the blocks the helpers still run
        i, result, error = done.get()
        results[i] = result
        if error is not None:
            errors[i] = error
    if errors:
        raise errors[min(errors)]                    # the first failed block's error
    return results


def parallel_over_batch(fn, N, per_image):
    """``run_blocks(fn, batch_blocks(N, per_image))``: the usual way a kernel splits its batch (in the calling
    thread alone when the whole batch holds fewer than :data:`PARALLEL_ELEMENTS` numbers)."""
    blocks = batch_blocks(N, per_image)
    if N * per_image < PARALLEL_ELEMENTS:
        return [_run_block(fn, start, stop) for start, stop in blocks]
    return run_blocks(fn, blocks)
