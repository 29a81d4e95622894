"""Every notebook in ``notebooks/`` runs without error, keeps its stored outputs small, and is committed clean.

* ``test_notebook_runs`` (marker ``notebooks``) executes each notebook top to bottom in a fresh ``python3`` kernel
  with :mod:`nbclient`, working directory ``notebooks/`` and ``MPLBACKEND=Agg``, and fails on the first cell that
  raises. Notebooks assert their own results, so running them is testing them. Nothing here is timed: how long
  each notebook takes is ``benchmarks/bench_notebooks.py``'s business (a slower machine must not turn the suite
  red).
* ``test_notebook_output_stays_small`` (marker ``notebooks``) looks at the same run (each notebook executes once
  per session, see ``executed_notebook`` in ``conftest.py``): progress bars must not store hundreds of
  ``stderr`` outputs, and the executed notebook must stay small.
* ``test_notebook_is_clean`` checks what is committed: valid nbformat 4, no outputs, no execution counts, notebook
  metadata limited to ``kernelspec`` (the ``python3`` kernel) and ``language_info``, cell metadata limited to
  ``tags`` and ``nbgrader`` (the exercise cells' grading metadata), and code without IPython magics or shell
  escapes (the notebooks must stay plain Python), without ``np.random.seed`` (use ``np.random.default_rng``) and
  without ``sys.path`` edits (import the installed package).

The notebooks are collected when pytest starts (sorted by name), so a notebook added to ``notebooks/`` is tested
without touching this file. With no notebooks at all, the tests are reported as skipped.
"""

import json

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from notebook_runner import NOTEBOOK_DIR  # noqa: E402

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
MAX_STDERR_OUTPUTS = 40      # stored stderr outputs per notebook (a progress bar: a few per epoch, not hundreds)
MAX_EXECUTED_BYTES = 2_000_000     # the executed notebook, figures included
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info"}
ALLOWED_CELL_METADATA = {"tags", "nbgrader"}     # nbgrader: the course's exercise cells (grade_id, points)


def _params():
    if not NOTEBOOKS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no notebooks in {NOTEBOOK_DIR}"),
                             id="no-notebooks")]
    return [pytest.param(path, id=path.name) for path in NOTEBOOKS]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", _params())
def test_notebook_runs(path, executed_notebook):
    run = executed_notebook(path)
    if run.error is not None:
        pytest.fail(f"{path.name}: a cell raised\n{run.error}", pytrace=False)


@pytest.mark.notebooks
@pytest.mark.parametrize("path", _params())
def test_notebook_output_stays_small(path, executed_notebook):
    run = executed_notebook(path)
    if run.error is not None:
        pytest.skip(f"{path.name} did not run to the end (test_notebook_runs reports why)")
    stderr = [(i, out) for i, cell in enumerate(run.nb.cells) if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "stream" and out.name == "stderr"]
    per_cell = {}
    for i, _ in stderr:
        per_cell[i] = per_cell.get(i, 0) + 1
    assert len(stderr) <= MAX_STDERR_OUTPUTS, \
        f"{path.name}: {len(stderr)} stored stderr outputs (per cell {per_cell}), expected at most " \
        f"{MAX_STDERR_OUTPUTS}: a progress bar writing too often?"
    size = len(json.dumps(run.nb))
    assert size <= MAX_EXECUTED_BYTES, f"{path.name}: executed notebook is {size} bytes, expected at most " \
                                       f"{MAX_EXECUTED_BYTES}"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", _params())
def test_check_cells_pass_quietly(path, executed_notebook):
    """In the instructor notebook every check cell passes and shows one line on stdout: no ``Out`` (nbgrader would
    read it as partial credit and warn), nothing on stderr (nbgrader would give the cell 0)."""
    run = executed_notebook(path)
    if run.error is not None:
        pytest.skip(f"{path.name} did not run to the end (test_notebook_runs reports why)")
    checks = [c for c in run.nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    for cell in checks:
        kinds = [(out.output_type, out.get("name")) for out in cell.outputs]
        assert kinds == [("stream", "stdout")], f"{path.name}: {cell.metadata['nbgrader']['grade_id']}: {kinds}"
        text = cell.outputs[0].text.strip()
        assert "\n" not in text and ": right in all " in text, text


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
        assert not extra, \
            f"{where}: cell metadata {sorted(extra)} should be stripped (only {sorted(ALLOWED_CELL_METADATA)} may stay)"
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{where}: outputs should be stripped before committing"
        assert cell.execution_count is None, f"{where}: execution count should be stripped before committing"
        for line_no, line in enumerate(cell.source.splitlines(), start=1):
            assert not line.lstrip().startswith(("%", "!")), \
                f"{where}, line {line_no}: IPython magic or shell escape {line.strip()!r}; use plain Python"
        assert "np.random.seed" not in cell.source, f"{where}: use rng = np.random.default_rng(seed)"
        assert "sys.path" not in cell.source, f"{where}: import the installed package, do not edit sys.path"
