"""The one way the tests and the benchmarks run a notebook: top to bottom, in a fresh ``python3`` kernel.

``tests/conftest.py`` (the course notebooks, once per session), ``tests/course/test_release.py`` (a student copy,
"Run All") and ``benchmarks/bench_notebooks.py`` (how long each notebook takes) all call :func:`run_notebook`, so
the notebooks are timed exactly as they are tested. The benchmark imports this file from ``tests/``.

It lives beside the tests, not in the package: :mod:`nbclient` is a dev dependency, and the autograder runs
students' notebooks its own, guarded way (:mod:`numpy_shufflenet.course.autograde`).
"""

import os
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"      # the numbered course
CELL_TIMEOUT = 600           # seconds per cell before nbclient gives up (a hang, not a budget: nothing is timed)


def run_notebook(nb, cwd, *, timeout=CELL_TIMEOUT, allow_errors=False, env=None):
    """Execute ``nb`` in place in a fresh ``python3`` kernel started in ``cwd``; return ``nb``.

    The kernel gets ``env`` (default: this process's environment) with ``MPLBACKEND=Agg``, so figures are drawn
    without a screen. nbclient records each cell's start and end in ``cell.metadata.execution``. Without
    ``allow_errors`` the first failing cell raises :class:`nbclient.exceptions.CellExecutionError`; with it, every
    cell runs and errors stay in the outputs.
    """
    import nbclient                                   # the dev extra

    env = dict(os.environ if env is None else env, MPLBACKEND="Agg")
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb
