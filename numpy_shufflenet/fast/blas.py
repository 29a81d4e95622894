"""Keep OpenBLAS's idle threads from spinning while our threads do the element-wise work.

NumPy's matrix products run in OpenBLAS, which has a thread pool of its own. After every product those threads
do not sleep at once: they busy-wait (OpenBLAS's ``THREAD_TIMEOUT``, 2^28 cycles by default, about a tenth of a
second) in case another product follows. In a network a product comes far more often than that, so one core is
always taken by a waiting BLAS thread, and two of our threads doing batch norm on two cores share what is left
(the README's performance section has the figures).

:func:`pause_blas_threads` asks OpenBLAS to stop its threads (``blas_thread_shutdown_``, the routine OpenBLAS
itself runs before a ``fork``); the next matrix product starts them again, which costs far less than the time the
waiting threads take from ours. It does nothing when nothing needs pausing, and nothing at all when NumPy's BLAS
is not OpenBLAS's own thread pool (MKL, Accelerate, an OpenMP build of OpenBLAS) or the library cannot be found:
then the kernels run as before.
:mod:`.threads` calls it just before it splits work over several threads, so with one thread
(``set_num_threads(1)``) it is never called.

Only the calling thread may be using BLAS at that moment: the fast kernels call BLAS from the thread that runs
the network and never from two threads at once. A program that runs NumPy matrix products in *another* thread
while a network runs should use ``set_num_threads(1)``.

On WebAssembly (Pyodide, JupyterLite: :data:`NO_THREAD_PLATFORMS`) no thread can start, so there is nothing to
pause: nothing is looked for (no ``/proc``, no ``ctypes``) and :func:`pause_blas_threads` does nothing.
"""

import os
import sys
import threading

import numpy as np

_lock = threading.Lock()
_shutdowns = None           # the blas_thread_shutdown_ of every OpenBLAS pool found (NumPy's, SciPy's, ...)
_info = None                # what was found, for benchmarks and bug reports

NO_THREAD_PLATFORMS = ("emscripten", "wasi")      # WebAssembly (Pyodide, JupyterLite): Thread.start() raises
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
    """``(shutdown functions, description)`` of the OpenBLAS thread pools loaded in this process."""
    if sys.platform in NO_THREAD_PLATFORMS:
        return [], f"no threads on this platform ({sys.platform}): nothing to pause"
    import ctypes                                # only where a library may have threads to pause

    np.ones((2, 2)) @ np.ones((2, 2))            # make sure NumPy's BLAS is loaded
    shutdowns, found = [], []
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path)               # already loaded: the same library, not a second copy
        except OSError:
            continue
        config = next((getattr(lib, name) for name in _CONFIG_NAMES if hasattr(lib, name)), None)
        if config is None or not hasattr(lib, "blas_thread_shutdown_"):
            continue
        config.restype = ctypes.c_char_p
        text = " ".join((config() or b"").decode("ascii", "replace").split())
        if "USE_OPENMP" in text.split():
            found.append(f"{text} (OpenMP build: its threads are not paused)")
            continue
        shutdown = lib.blas_thread_shutdown_
        shutdown.restype, shutdown.argtypes = ctypes.c_int, []
        shutdowns.append(shutdown)
        found.append(f"{text} (idle threads paused before our threads run)")
    return shutdowns, "; ".join(found) or "no OpenBLAS thread pool found (nothing to pause)"


def _load():
    global _shutdowns, _info
    with _lock:
        if _info is None:
            _shutdowns, _info = _find()
    return _shutdowns


def pause_blas_threads():
    """Stop OpenBLAS's waiting threads now (they restart with the next matrix product); a no-op without them."""
    for shutdown in (_shutdowns if _info is not None else _load()):
        shutdown()


def blas_description():
    """One line on the BLAS found and whether its threads are paused (benchmarks print it)."""
    _load()
    return _info
