"""Student copies of the exercise notebooks (:mod:`numpy_shufflenet.student`, ``make-student``).

For every committed notebook: its markers are balanced; its student copy is valid nbformat, stripped of outputs,
keeps no line of any solution or hidden-test region, and compiles cell by cell. For every committed notebook that
has exercises (marker ``notebooks``): the student copy runs up to its first exercise and stops there with the
stub's ``NotImplementedError``, not earlier. The marker rules and their errors are tested on small synthetic
notebooks.
"""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
from nbformat import v4  # noqa: E402

from numpy_shufflenet import student  # noqa: E402
from numpy_shufflenet.__main__ import main  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _read(path):
    return nbformat.read(path, as_version=4)


def _has_solutions(path):
    regions = student.check_notebook(_read(path), path.name)
    return any(r.kind == "solution" for rs in regions.values() for r in rs)


def _params(paths, why):
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=why), id="none")]
    return [pytest.param(p, id=p.name) for p in paths]


ALL = _params(NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}")


def _exercise_notebooks():
    try:
        return [p for p in NOTEBOOKS if _has_solutions(p)]
    except ValueError:
        return NOTEBOOKS          # a marker error: let the tests below report it
EXERCISES = _params(_exercise_notebooks(), "no notebook with '### BEGIN SOLUTION' regions")


def notebook(*cells):
    """A synthetic notebook: strings starting with '#md ' become markdown cells, the others code cells."""
    nb = v4.new_notebook()
    for i, text in enumerate(cells):
        cell = v4.new_markdown_cell(text[4:]) if text.startswith("#md ") else v4.new_code_cell(text)
        cell.id = f"c{i}"
        nb.cells.append(cell)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    return nb


def region_lines(nb):
    """Stripped non-blank lines inside marked regions, and the ones outside (markers excluded), of a notebook."""
    inside, outside = set(), set()
    for cell in nb.cells:
        lines = cell.source.splitlines()
        marked = set()
        if cell.cell_type == "code":
            for r in student.find_regions(cell.source):
                marked.update(range(r.begin, r.end + 1))
        for i, line in enumerate(lines):
            text = line.strip()
            if text:
                (inside if i in marked else outside).add(text)
    markers = {student.BEGIN_SOLUTION, student.END_SOLUTION, student.BEGIN_HIDDEN, student.END_HIDDEN}
    return inside - markers, outside


# ----------------------------------------------------------------------------------------------------------------
# the committed notebooks
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL)
def test_markers_balanced(path):
    student.check_notebook(_read(path), path.name)          # raises ValueError naming the cell


@pytest.mark.parametrize("path", ALL)
def test_student_copy_leaks_nothing(path):
    nb = _read(path)
    copy = student.make_student_notebook(nb, path.name)
    nbformat.validate(copy)
    inside, outside = region_lines(nb)
    only_inside = inside - outside                         # lines that appear only in solutions or hidden tests
    kept = {line.strip() for cell in copy.cells for line in cell.source.splitlines()}
    leaked = sorted(only_inside & kept)
    assert not leaked, f"{path.name}: solution or hidden-test lines survive in the student copy: {leaked}"
    for cell in copy.cells:
        assert student.BEGIN_SOLUTION not in cell.source and student.BEGIN_HIDDEN not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.metadata == copy.metadata


@pytest.mark.parametrize("path", ALL)
def test_student_copy_compiles(path):
    nb = _read(path)
    copy = student.make_student_notebook(nb, path.name)
    stubs = 0
    for index, cell in enumerate(copy.cells):
        if cell.cell_type == "code":
            compile(cell.source, f"{path.name}[student] cell {index}", "exec")
            stubs += cell.source.count(student.STUB_COMMENT)
    solutions = sum(r.kind == "solution" for rs in student.check_notebook(nb, path.name).values() for r in rs)
    assert stubs == solutions
    for index, cell in enumerate(nb.cells):                 # the solution notebook compiles too
        if cell.cell_type == "code":
            compile(cell.source, f"{path.name} cell {index}", "exec")


@pytest.mark.notebooks
@pytest.mark.parametrize("path", EXERCISES)
def test_student_copy_stops_at_first_exercise(path, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    copy = student.make_student_notebook(_read(path), path.name)
    stub_cells = [i for i, c in enumerate(copy.cells) if c.cell_type == "code" and student.STUB_COMMENT in c.source]
    first_stub = copy.cells[stub_cells[0]].source
    expected_message = first_stub.split("raise NotImplementedError(")[1].split(")")[0].strip('"')

    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    try:
        client = nbclient.NotebookClient(copy, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
        with pytest.raises(CellExecutionError):
            client.execute()
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved

    errors = [(i, out) for i, c in enumerate(copy.cells) if c.cell_type == "code"
              for out in c.get("outputs", []) if out.output_type == "error"]
    assert len(errors) == 1, f"{path.name}: expected exactly one failing cell, got {[i for i, _ in errors]}"
    index, error = errors[0]
    assert error.ename == "NotImplementedError", \
        f"{path.name}: the student copy failed at cell {index} with {error.ename}: {error.evalue} (expected the " \
        f"first exercise's NotImplementedError)"
    assert error.evalue == expected_message, \
        f"{path.name}: stopped at cell {index} with {error.evalue!r}, expected the first exercise {expected_message!r}"
    next_stub = stub_cells[1] if len(stub_cells) > 1 else len(copy.cells)
    assert stub_cells[0] <= index < next_stub, \
        f"{path.name}: stopped at cell {index}, expected between the first exercise (cell {stub_cells[0]}) and the " \
        f"second (cell {next_stub})"
    ran = [c for c in copy.cells[:index] if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in ran), f"{path.name}: cells before {index} did not all run"


# ----------------------------------------------------------------------------------------------------------------
# the conversion, on synthetic notebooks
# ----------------------------------------------------------------------------------------------------------------
def test_stub_keeps_indentation_and_names_the_function():
    nb = notebook("import numpy as np\n"
                  "\n"
                  "def f(x):\n"
                  "    y = 2 * x\n"
                  "    ### BEGIN SOLUTION\n"
                  "    z = y + 1\n"
                  "    return z\n"
                  "    ### END SOLUTION\n"
                  "\n"
                  "class A:\n"
                  "    def method(self):\n"
                  "        if True:\n"
                  "            ### BEGIN SOLUTION\n"
                  "            return 42\n"
                  "            ### END SOLUTION\n"
                  "        return 0\n")
    out = student.make_student_notebook(nb, "t.ipynb").cells[0].source
    assert out == ("import numpy as np\n"
                   "\n"
                   "def f(x):\n"
                   "    y = 2 * x\n"
                   "    # YOUR CODE HERE\n"
                   "    raise NotImplementedError(\"exercise: f\")\n"
                   "\n"
                   "class A:\n"
                   "    def method(self):\n"
                   "        if True:\n"
                   "            # YOUR CODE HERE\n"
                   "            raise NotImplementedError(\"exercise: method\")\n"
                   "        return 0")
    compile(out, "t", "exec")


def test_top_level_solution_is_named_by_cell_id():
    nb = notebook("a = 1\n### BEGIN SOLUTION\nb = a + 1\n### END SOLUTION\nprint(b)")
    out = student.make_student_notebook(nb).cells[0].source
    assert out == 'a = 1\n# YOUR CODE HERE\nraise NotImplementedError("exercise: c0")\nprint(b)'
    with pytest.raises(NotImplementedError, match="exercise: c0"):
        exec(compile(out, "t", "exec"), {"print": lambda *a: None})


def test_hidden_tests_removed_and_hidden_only_cells_dropped():
    nb = notebook("#md Some text mentioning `### BEGIN SOLUTION` inside a sentence.",
                  "x = 1\n  ### BEGIN HIDDEN TESTS\nassert x == 1\n  ### END HIDDEN TESTS\ny = 2",
                  "### BEGIN HIDDEN TESTS\nassert secret()\n### END HIDDEN TESTS\n",
                  "def g():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
                  "### BEGIN HIDDEN TESTS\nassert g() == 1\n### END HIDDEN TESTS",
                  "")
    nb.cells[1].outputs = [v4.new_output("stream", text="hi\n")]
    nb.cells[1].execution_count = 3
    out = student.make_student_notebook(nb, "t.ipynb")
    assert [c.id for c in out.cells] == ["c0", "c1", "c3", "c4"]      # c2 held hidden tests only (dropped)
    assert out.cells[0].source == nb.cells[0].source                   # markdown untouched
    assert out.cells[1].source == "x = 1\ny = 2"
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert out.cells[2].source == 'def g():\n    # YOUR CODE HERE\n    raise NotImplementedError("exercise: g")'
    assert nb.cells[1].outputs and "BEGIN HIDDEN" in nb.cells[1].source    # the original is not modified
    nbformat.validate(out)


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "line 1: unbalanced markers: '### BEGIN SOLUTION' is never closed"),
    ("x = 1\n### END SOLUTION", "line 2: unbalanced markers: '### END SOLUTION' without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "line 2: nested markers"),
    ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION", "line 2: nested"),
    ("### BEGIN HIDDEN TESTS\nx = 1\n### END SOLUTION",
     "line 3: unbalanced markers: '### END SOLUTION' closes the HIDDEN TESTS region"),
    ("    ### BEGIN SOLUTIONS\n    x = 1\n    ### END SOLUTION", "line 1: malformed marker '### BEGIN SOLUTIONS'"),
    ("x = 1\n### end solution", "line 2: malformed marker '### end solution'"),
])
def test_marker_errors_name_notebook_and_cell(source, message):
    nb = notebook(source)
    with pytest.raises(ValueError) as err:
        student.make_student_notebook(nb, "bad.ipynb")
    assert str(err.value).startswith(f"bad.ipynb: cell 0 (id c0), {message}"), str(err.value)


def test_region_cannot_span_cells():
    nb = notebook("x = 1", "def f():\n    ### BEGIN SOLUTION\n    pass", "    ### END SOLUTION")
    with pytest.raises(ValueError, match=r"bad\.ipynb: cell 1 \(id c1\), line 2: .*never closed"):
        student.make_student_notebook(nb, "bad.ipynb")


def test_marker_line_in_markdown_is_an_error():
    nb = notebook("x = 1", "#md Here is the answer:\n### BEGIN SOLUTION\nIt is 42.\n### END SOLUTION")
    with pytest.raises(ValueError, match=r"bad\.ipynb: cell 1 \(id c1\), line 2: .*code cells only"):
        student.make_student_notebook(nb, "bad.ipynb")


# ----------------------------------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------------------------------
def _write(nb, path):
    nbformat.write(nb, path)
    return path


def test_make_student_command(tmp_path, capsys):
    src, dest = tmp_path / "src", tmp_path / "out" / "student"
    src.mkdir()
    _write(notebook("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"), src / "a.ipynb")
    _write(notebook("#md no exercises here", "print(1)"), src / "b.ipynb")
    (src / "notes.txt").write_text("not a notebook")
    assert main(["make-student", str(src), str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["a.ipynb", "b.ipynb"]
    a = nbformat.read(dest / "a.ipynb", as_version=4)
    nbformat.validate(a)
    assert a.cells[0].source == 'def f():\n    # YOUR CODE HERE\n    raise NotImplementedError("exercise: f")'
    assert "2 student notebook(s)" in capsys.readouterr().out


def test_make_student_command_errors(tmp_path, capsys):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    _write(notebook("print(1)"), src / "a.ipynb")
    _write(notebook("x = 1", "### BEGIN SOLUTION\ny = 2"), src / "b.ipynb")
    assert main(["make-student", str(src), str(dest)]) == 2
    err = capsys.readouterr().err
    assert "b.ipynb: cell 1 (id c1), line 1: unbalanced markers" in err
    assert not dest.exists()                                  # nothing written when any notebook fails

    assert main(["make-student", str(src), str(src)]) == 2    # would overwrite the solutions
    assert "DEST_DIR is SRC_DIR" in capsys.readouterr().err
    assert main(["make-student", str(tmp_path / "missing"), str(dest)]) == 2
    assert "expected SRC_DIR to be a directory" in capsys.readouterr().err
