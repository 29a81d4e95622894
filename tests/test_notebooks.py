"""Every notebook in ``notebooks/`` runs without error, fast, and is committed clean.

* ``test_notebook_runs`` (marker ``notebooks``) executes each notebook top to bottom in a fresh ``python3`` kernel
  with :mod:`nbclient`, working directory ``notebooks/`` and ``MPLBACKEND=Agg``, and fails on the first cell that
  raises. Notebooks assert their own results, so running them is testing them. Each must finish in under
  ``TIME_LIMIT`` seconds of wall time (kernel start-up included; the course's budget is "under 60 s on 2
  cores").
* ``test_notebook_is_clean`` checks what is committed: valid nbformat 4, no outputs, no execution counts, notebook
  metadata limited to ``kernelspec`` (the ``python3`` kernel) and ``language_info``, cell metadata limited to
  ``tags``, and code without IPython magics or shell escapes (the notebooks must stay plain Python), without
  ``np.random.seed`` (use ``np.random.default_rng``) and without ``sys.path`` edits (import the installed package).

The notebooks are collected when pytest starts (sorted by name), so a notebook added to ``notebooks/`` is tested
without touching this file. With no notebooks at all, both tests are reported as skipped.
"""

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
from nbclient.exceptions import CellExecutionError  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TIME_LIMIT = 60.0            # seconds of wall time per notebook
CELL_TIMEOUT = 300           # seconds per cell before nbclient gives up
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info"}
ALLOWED_CELL_METADATA = {"tags"}


def _params():
    if not NOTEBOOKS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no notebooks in {NOTEBOOK_DIR}"),
                             id="no-notebooks")]
    return [pytest.param(path, id=path.name) for path in NOTEBOOKS]


def execute_notebook(nb, cwd, timeout=CELL_TIMEOUT):
    """Run ``nb`` in place with a fresh ``python3`` kernel in ``cwd`` and ``MPLBACKEND=Agg``; returns the seconds
    taken. Raises :class:`nbclient.exceptions.CellExecutionError` at the first failing cell.

    The environment variable is set for the kernel's start and restored afterwards.
    """
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    try:
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                         resources={"metadata": {"path": str(cwd)}})
        start = time.perf_counter()
        client.execute()
        return time.perf_counter() - start
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved


@pytest.mark.notebooks
@pytest.mark.parametrize("path", _params())
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    try:
        seconds = execute_notebook(nb, NOTEBOOK_DIR)
    except CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised\n{err}", pytrace=False)
    print(f"\n{path.name}: {seconds:.1f} s")
    assert seconds < TIME_LIMIT, f"{path.name} took {seconds:.1f} s, expected under {TIME_LIMIT:.0f} s"


@pytest.mark.parametrize("path", _params())
def test_notebook_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4, f"{path.name}: expected nbformat 4, got {nb.nbformat}"

    extra = set(nb.metadata) - ALLOWED_NOTEBOOK_METADATA
    assert not extra, (f"{path.name}: notebook metadata {sorted(extra)} should be stripped "
                       f"(keep only {sorted(ALLOWED_NOTEBOOK_METADATA)})")
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", \
        f"{path.name}: expected kernelspec name 'python3', got {nb.metadata.get('kernelspec')}"

    for index, cell in enumerate(nb.cells):
        where = f"{path.name}: cell {index}"
        extra = set(cell.metadata) - ALLOWED_CELL_METADATA
        assert not extra, f"{where}: cell metadata {sorted(extra)} should be stripped (only 'tags' may stay)"
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{where}: outputs should be stripped before committing"
        assert cell.execution_count is None, f"{where}: execution count should be stripped before committing"
        for line_no, line in enumerate(cell.source.splitlines(), start=1):
            assert not line.lstrip().startswith(("%", "!")), \
                f"{where}, line {line_no}: IPython magic or shell escape {line.strip()!r}; use plain Python"
        assert "np.random.seed" not in cell.source, f"{where}: use rng = np.random.default_rng(seed)"
        assert "sys.path" not in cell.source, f"{where}: import the installed package, do not edit sys.path"
