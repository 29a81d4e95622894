"""Keep OpenBLAS's idle threads from spinning while our threads do the element-wise work.

NumPy's matrix products run in OpenBLAS, which has a thread pool of its own. After every product those threads
do not sleep at once: they busy-wait for about 0.1 s (OpenBLAS's ``THREAD_TIMEOUT``) in case another product
follows. In a network a product comes every few milliseconds, so one core is always taken by a waiting BLAS
thread, and two of our threads doing batch norm on two cores get one and a half at best. Measured on the
development machine (2 cores), a matrix product followed by a batch norm + ReLU over (32, 240, 28, 28): 11.7 ms
on two of our threads while OpenBLAS waits, 8.5 ms after :func:`pause_blas_threads`, 12.3 ms on one thread.

:func:`pause_blas_threads` asks OpenBLAS to stop its threads (``blas_thread_shutdown_``, the routine OpenBLAS
itself runs before a ``fork``); the next matrix product starts them again (about 60 microseconds). It does
nothing when nothing needs pausing, and nothing at all when NumPy's BLAS is not OpenBLAS's own thread pool
(MKL, Accelerate, an OpenMP build of OpenBLAS) or the library cannot be found: then the kernels run as before.
:mod:`.threads` calls it just before it splits work over several threads, so with one thread
(``set_num_threads(1)``) it is never called.

Only the calling thread may be using BLAS at that moment: the fast kernels call BLAS from the thread that runs
the network and never from two threads at once. A program that runs NumPy matrix products in *another* thread
while a network runs should use ``set_num_threads(1)``.
"""

import ctypes
import os
import threading

import numpy as np

_lock = threading.Lock()
_shutdown = None            # the library's blas_thread_shutdown_, once found
_info = None                # what was found, for benchmarks and bug reports

_CONFIG_NAMES = ("openblas_get_config", "scipy_openblas_get_config64_", "openblas_get_config64_",
                 "scipy_openblas_get_config")


def _loaded_openblas_paths():
    """Paths of the loaded shared libraries whose file name mentions OpenBLAS (Linux: ``/proc/self/maps``)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    except OSError:
        return []
    return sorted(p for p in paths if "openblas" in os.path.basename(p).lower() and ".so" in p)


def _find():
    """``(shutdown function or None, description)`` of the OpenBLAS NumPy loaded."""
    np.ones((2, 2)) @ np.ones((2, 2))            # make sure NumPy's BLAS is loaded
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path)               # already loaded: the same library, not a second copy
        except OSError:
            continue
        config = next((getattr(lib, name) for name in _CONFIG_NAMES if hasattr(lib, name)), None)
        if config is None or not hasattr(lib, "blas_thread_shutdown_"):
            continue
        config.restype = ctypes.c_char_p
        text = (config() or b"").decode("ascii", "replace").strip()
        if "USE_OPENMP" in text.split():
            return None, f"{text} (OpenMP build: its threads are not paused)"
        shutdown = lib.blas_thread_shutdown_
        shutdown.restype = ctypes.c_int
        shutdown.argtypes = []
        return shutdown, f"{text} (idle threads paused before our threads run)"
    return None, "no OpenBLAS thread pool found (nothing to pause)"


def _load():
    global _shutdown, _info
    with _lock:
        if _info is None:
            _shutdown, _info = _find()
    return _shutdown


def pause_blas_threads():
    """Stop OpenBLAS's waiting threads now (they restart with the next matrix product); a no-op without them."""
    shutdown = _shutdown if _info is not None else _load()
    if shutdown is not None:
        shutdown()


def blas_description():
    """One line on the BLAS found and whether its threads are paused (benchmarks print it)."""
    _load()
    return _info
