"""Student copies of the exercise notebooks (:mod:`numpy_shufflenet.course.release`, ``make-student``), and the
notebooks' nbgrader metadata.

For every committed notebook: its markers are balanced; its nbgrader metadata follows nbgrader's schema 3 and
the course's conventions; its student copy is valid nbformat, stripped of outputs, keeps no line of any solution
or hidden-test region, and compiles cell by cell. Where nbgrader is installed, real nbgrader makes the student
versions of the committed notebooks and autogrades the fixture notebook. "Run All" on a student copy (marker
``notebooks``) reaches the last cell. The marker rules, the metadata rules and the command's errors are tested on
small synthetic notebooks.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
from nbformat import v4  # noqa: E402

from numpy_shufflenet.course import release  # noqa: E402
from numpy_shufflenet.cli import main  # noqa: E402

from notebook_runner import NOTEBOOK_DIR, run_notebook  # noqa: E402

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "grading" / "exercises.ipynb"


def _read(path):
    return nbformat.read(path, as_version=4)


def _has_solutions(path):
    regions = release.check_notebook(_read(path), path.name)
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
            for r in release.find_regions(cell.source):
                marked.update(range(r.begin, r.end + 1))
        for i, line in enumerate(lines):
            text = line.strip()
            if text:
                (inside if i in marked else outside).add(text)
    markers = {release.BEGIN_SOLUTION, release.END_SOLUTION, release.BEGIN_HIDDEN, release.END_HIDDEN}
    return inside - markers, outside


# ----------------------------------------------------------------------------------------------------------------
# the committed notebooks
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL)
def test_markers_balanced(path):
    release.check_notebook(_read(path), path.name)          # raises ValueError naming the cell


@pytest.mark.parametrize("path", ALL)
def test_student_copy_leaks_nothing(path):
    nb = _read(path)
    copy = release.make_student_notebook(nb, path.name)
    nbformat.validate(copy)
    inside, outside = region_lines(nb)
    only_inside = inside - outside                         # lines that appear only in solutions or hidden tests
    kept = {line.strip() for cell in copy.cells for line in cell.source.splitlines()}
    leaked = sorted(only_inside & kept)
    assert not leaked, f"{path.name}: solution or hidden-test lines survive in the student copy: {leaked}"
    for cell in copy.cells:
        assert release.BEGIN_SOLUTION not in cell.source and release.BEGIN_HIDDEN not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.metadata == copy.metadata


@pytest.mark.parametrize("path", ALL)
def test_student_copy_compiles(path):
    nb = _read(path)
    copy = release.make_student_notebook(nb, path.name)
    stubs = 0
    for index, cell in enumerate(copy.cells):
        if cell.cell_type == "code":
            compile(cell.source, f"{path.name}[student] cell {index}", "exec")
            stubs += cell.source.count(release.STUB_COMMENT)
    solutions = sum(r.kind == "solution" for rs in release.check_notebook(nb, path.name).values() for r in rs)
    assert stubs == solutions
    for index, cell in enumerate(nb.cells):                 # the solution notebook compiles too
        if cell.cell_type == "code":
            compile(cell.source, f"{path.name} cell {index}", "exec")


def _run(nb, cwd):
    """Run All on ``nb`` in place, the way Jupyter runs it: a fresh kernel started in ``cwd``, without
    ``allow_errors``, so that a cell that raises stops the run unless it is tagged ``raises-exception`` (as
    JupyterLab's Run All does). No grading variable is set. Returns the error outputs as ``(cell index, output)``;
    ``CellExecutionError`` if an untagged cell raised."""
    pytest.importorskip("nbclient")
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_SHUFFLENET_GRADING"}
    run_notebook(nb, cwd, timeout=300, env=env)
    return [(index, out) for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.output_type == "error"]


def _has_nbgrader(path):
    return any("nbgrader" in c.get("metadata", {}) for c in _read(path).cells)


RUN_ALL = _params([p for p in _exercise_notebooks() if _has_nbgrader(p)] + [FIXTURE],
                  "no exercise notebook with nbgrader metadata")


@pytest.mark.notebooks
@pytest.mark.parametrize("path", RUN_ALL)
def test_run_all_on_a_student_copy_reaches_the_end(path):
    """Nothing filled in, "Run All" as Jupyter runs it: the last code cell runs. In the course notebooks every
    check cell raises ``ExerciseNotDone`` (so a grader that awards a check cell's points when it does not raise
    gives an untouched copy nothing) and is tagged ``raises-exception`` (so the run goes on); no other cell
    raises. (The fixture follows the old convention: its checks print "not done yet".)"""
    copy = release.make_student_notebook(_read(path), path.name)
    errors = _run(copy, path.parent)
    code = [c for c in copy.cells if c.cell_type == "code" and c.source.strip()]
    assert code[-1].execution_count is not None, f"{path.name}[student]: the last cell did not run"
    if path == FIXTURE:
        assert not errors
        assert "not done yet" in "".join(out.get("text", "") for c in code for out in c.outputs)
        return
    checks = {i for i, c in enumerate(copy.cells) if c.cell_type == "code" and release.nbgrader_meta(c).get("grade")}
    assert checks, f"{path.name}: no check cell"
    assert all(copy.cells[i].metadata.get("tags") == ["raises-exception"] for i in checks)
    raised = {i: out.ename for i, out in errors}
    assert raised == {i: "ExerciseNotDone" for i in checks}, \
        f"{path.name}[student]: errors {raised}, expected ExerciseNotDone in exactly the check cells {sorted(checks)}"


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
    out = release.make_student_notebook(nb, "t.ipynb").cells[0].source
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
    out = release.make_student_notebook(nb).cells[0].source
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
    out = release.make_student_notebook(nb, "t.ipynb")
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
        release.make_student_notebook(nb, "bad.ipynb")
    assert str(err.value).startswith(f"bad.ipynb: cell 0 (id c0), {message}"), str(err.value)


def test_region_cannot_span_cells():
    nb = notebook("x = 1", "def f():\n    ### BEGIN SOLUTION\n    pass", "    ### END SOLUTION")
    with pytest.raises(ValueError, match=r"bad\.ipynb: cell 1 \(id c1\), line 2: .*never closed"):
        release.make_student_notebook(nb, "bad.ipynb")


def test_marker_line_in_markdown_is_an_error():
    nb = notebook("x = 1", "#md Here is the answer:\n### BEGIN SOLUTION\nIt is 42.\n### END SOLUTION")
    with pytest.raises(ValueError, match=r"bad\.ipynb: cell 1 \(id c1\), line 2: .*code cells only"):
        release.make_student_notebook(nb, "bad.ipynb")


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


@pytest.mark.parametrize("dest", ["file", "file/below"])
def test_make_student_dest_that_is_or_lies_under_a_file(tmp_path, capsys, dest):
    src = tmp_path / "src"
    src.mkdir()
    _write(notebook("print(1)"), src / "a.ipynb")
    (tmp_path / "file").write_text("a file")
    assert main(["make-student", str(src), str(tmp_path / dest)]) == 2
    err = capsys.readouterr().err
    assert "DEST_DIR" in err and ("which is a file" if dest == "file" else "which lies under the file") in err, err
    assert (tmp_path / "file").read_text() == "a file"


def test_make_student_refuses_a_non_empty_dest_unless_forced(tmp_path, capsys):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    _write(notebook("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"), src / "a.ipynb")
    (dest / "a.ipynb").write_text("an earlier copy")
    (dest / "notes.txt").write_text("keep me")
    assert main(["make-student", str(src), str(dest)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err and "--force" in capsys.readouterr().err + \
        "--force"
    assert (dest / "a.ipynb").read_text() == "an earlier copy"
    assert main(["make-student", str(src), str(dest), "--force"]) == 0
    assert "YOUR CODE HERE" in (dest / "a.ipynb").read_text()
    assert (dest / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["make-student", str(src), str(empty)]) == 0                # an empty folder is fine


@pytest.mark.parametrize("content, message", [
    ('{"cells": [', r"b\.ipynb' is not valid JSON \(line 1, column 12"),
    ("[1, 2]", r"b\.ipynb' is not a notebook: expected a JSON object, got a JSON list"),
    ('{"cells": [], "nbformat": 4, "nbformat_minor": 5}', r"b\.ipynb' is not a notebook: it has no 'metadata'"),
    (b"\xff\xfe{}", r"b\.ipynb' is not UTF-8 text"),
    ('{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
     r"b\.ipynb' is not a valid notebook"),
])
def test_make_student_names_the_unreadable_notebook(tmp_path, capsys, content, message):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    _write(notebook("print(1)"), src / "a.ipynb")
    path = src / "b.ipynb"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["make-student", str(src), str(dest)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not dest.exists()


def test_make_student_refuses_a_notebook_without_metadata_and_a_folder_named_ipynb(tmp_path, capsys):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    nb = notebook("print(1)")
    nb.metadata = {}
    _write(nb, src / "a.ipynb")
    assert main(["make-student", str(src), str(dest)]) == 2
    assert "a.ipynb has no notebook metadata" in capsys.readouterr().err
    _write(notebook("print(1)"), src / "a.ipynb")
    (src / "folder.ipynb").mkdir()
    assert main(["make-student", str(src), str(dest)]) == 2
    assert "folder.ipynb' is a directory, expected a notebook file" in capsys.readouterr().err
    (src / "folder.ipynb").rmdir()
    for path in src.iterdir():
        path.unlink()
    assert main(["make-student", str(src), str(dest)]) == 2
    assert "holds no .ipynb notebook" in capsys.readouterr().err
    assert not dest.exists()


@pytest.mark.parametrize("line", [
    "# BEGIN SOLUTION", "## BEGIN SOLUTION", "#### BEGIN SOLUTION", "###BEGIN SOLUTION", "### BEGIN SOLUTIONS",
    "### begin solution", "### BEGIN_SOLUTION", "### BEGIN-SOLUTION", "### BEGIN  SOLUTION", "# BEGIN HIDDEN TESTS",
    "### BEGIN HIDDEN TEST", "x = 1  ### BEGIN SOLUTION", "print('### BEGIN SOLUTION')",
])
def test_near_miss_begin_marker_is_an_error_never_a_leak(tmp_path, capsys, line):
    secret = "return 42  # the secret answer"
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    _write(notebook(f"def f():\n    {line}\n    {secret}\n    ### END SOLUTION"), src / "a.ipynb")
    assert main(["make-student", str(src), str(dest)]) == 2
    err = capsys.readouterr().err
    assert "a.ipynb: cell 0 (id c0), line 2: malformed marker" in err, err
    assert not dest.exists()


@pytest.mark.parametrize("line", ["# END SOLUTION", "### END SOLUTIONS", "### end hidden tests", "## END_HIDDEN"])
def test_near_miss_end_marker_is_an_error(line):
    with pytest.raises(ValueError, match=r"line 3: malformed marker"):
        release.make_student_notebook(notebook(f"def f():\n    ### BEGIN SOLUTION\n    {line}\n    pass"))


def test_ordinary_comments_about_solutions_are_fine():
    nb = notebook("# the solution begins with a reshape\n# END of the setup\nx = 1  # begin here")
    assert release.make_student_notebook(nb).cells[0].source == nb.cells[0].source


def test_written_answer_becomes_your_answer_here():
    nb = instructor_fixture()
    copy = release.make_student_notebook(nb, FIXTURE.name)
    answer = next(c for c in copy.cells if c.id == "why_shuffle")
    assert answer.source == release.ANSWER_STUB
    assert answer.metadata == next(c for c in nb.cells if c.id == "why_shuffle").metadata
    question = next(c for c in copy.cells if c.id == "q1")                 # an ordinary markdown cell: unchanged
    assert question.source == next(c for c in nb.cells if c.id == "q1").source


# ----------------------------------------------------------------------------------------------------------------
# nbgrader metadata
# ----------------------------------------------------------------------------------------------------------------
def instructor_fixture():
    return _read(FIXTURE)


def _nbgrader_cells(path):
    return [(i, c) for i, c in enumerate(_read(path).cells) if "nbgrader" in c.get("metadata", {})]


WITH_METADATA = _params([p for p in NOTEBOOKS if _has_nbgrader(p)] + [FIXTURE], "no notebook has nbgrader metadata")


@pytest.mark.parametrize("path", ALL)
def test_nbgrader_metadata(path):
    """nbgrader's schema 3 and the course's conventions (:func:`release.check_nbgrader`); a notebook with
    exercise markers must carry the metadata once any notebook of the course does."""
    nb = _read(path)
    count = release.check_nbgrader(nb, path.name)
    if count == 0:
        has_markers = bool(release.check_notebook(nb, path.name))
        others = [p.name for p in NOTEBOOKS if _has_nbgrader(p)]
        assert not (has_markers and others), \
            f"{path.name}: has exercise markers but no nbgrader metadata, while {others} have it"


@pytest.mark.parametrize("path", WITH_METADATA)
def test_nbgrader_metadata_agrees_with_the_markers(path):
    """Every solution region sits in a solution cell, every hidden-test region in a check cell, every graded cell
    has points; grade_ids are unique."""
    nb = _read(path)
    regions = release.check_notebook(nb, path.name)
    ids = []
    for index, cell in enumerate(nb.cells):
        meta = release.nbgrader_meta(cell)
        kinds = {r.kind for r in regions.get(index, [])}
        where = f"{path.name}: cell {index} ({cell.get('id')})"
        if "solution" in kinds:
            assert meta.get("solution") is True and meta.get("grade") is False, where
        if "hidden" in kinds:
            assert meta.get("grade") is True and meta.get("solution") is False and meta.get("locked"), where
        if meta.get("grade"):
            assert meta.get("points", 0) > 0, where
        if meta.get("solution") and cell.cell_type == "code":
            assert "solution" in kinds, where
        if meta.get("grade_id"):
            ids.append(meta["grade_id"])
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade_ids"
    assert any(release.nbgrader_meta(c).get("grade") for c in nb.cells), f"{path.name}: no graded cell"


def _meta(**kw):
    base = {"schema_version": 3, "solution": False, "grade": False, "locked": False}
    base.update(kw)
    return {"nbgrader": base}


def _graded_notebook():
    nb = notebook("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                  "assert f() == 1",
                  "#md the answer")
    nb.cells[0].metadata = _meta(grade_id="f", solution=True)
    nb.cells[1].metadata = _meta(grade_id="f_check", grade=True, locked=True, points=2)
    nb.cells[2].metadata = _meta(grade_id="why", solution=True, grade=True, points=1)
    return nb


def test_check_nbgrader_accepts_the_conventions():
    assert release.check_nbgrader(_graded_notebook(), "ok.ipynb") == 3
    assert release.check_nbgrader(notebook("print(1)"), "plain.ipynb") == 0


@pytest.mark.parametrize("cell, change, message", [
    (0, {"schema_version": 2}, "expected nbgrader schema_version 3, got 2"),
    (0, {"solution": "yes"}, "expected nbgrader 'solution' to be true or false, got 'yes'"),
    (0, {"grade_id": ""}, "expected a grade_id of letters, digits"),
    (0, {"grade_id": "f g"}, "expected a grade_id of letters, digits, '_' and '-', got 'f g'"),
    (1, {"grade_id": "f"}, "duplicate grade_id 'f' (also cell 0)"),
    (1, {"points": None}, "expected the graded cell's points to be a number > 0, got None"),
    (1, {"points": 0}, "points to be a number > 0, got 0"),
    (0, {"points": 1}, "points 1 on a cell that is not graded"),
    (1, {"locked": False}, "a check cell must be locked"),
    (1, {"grade_id": "f_test"}, "check cell grade_id 'f_test': expected '<name>_check'"),
    (0, {"solution": False, "locked": True}, "marker text 'BEGIN/END SOLUTION' in a cell that is not a solution"),
    (0, {"locked": True}, "a solution cell must not be locked"),
    (2, {"grade": False, "points": None}, "a markdown cell with nbgrader metadata is a written answer"),
    (2, {"locked": True}, "a written answer must not be locked"),
    (0, {"extra": 1}, "unknown nbgrader keys ['extra']"),
])
def test_check_nbgrader_errors(cell, change, message):
    nb = _graded_notebook()
    nb.cells[cell].metadata["nbgrader"].update(change)
    nb.cells[cell].metadata["nbgrader"] = {k: v for k, v in nb.cells[cell].metadata["nbgrader"].items()
                                           if v is not None}
    with pytest.raises(ValueError) as err:
        release.check_nbgrader(nb, "bad.ipynb")
    assert str(err.value).startswith("bad.ipynb: nbgrader metadata: ") and message in str(err.value), str(err.value)
    assert f"cell {cell} (id c{cell})" in str(err.value)


def test_check_nbgrader_check_order_and_whole_notebook_checks():
    nb = _graded_notebook()
    nb.cells[0], nb.cells[1] = nb.cells[1], nb.cells[0]
    with pytest.raises(ValueError, match=r"cell 0: check 'f_check\.\.\.' comes before its solution cell 1"):
        release.check_nbgrader(nb, "bad.ipynb")
    nb = _graded_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("assert f() + f() == 2"))
    nb.cells[-1].metadata = _meta(grade_id="training_check", grade=True, locked=True, points=3)
    assert release.check_nbgrader(nb, "ok.ipynb") == 4          # a check of the earlier work, no solution cell


def test_check_nbgrader_markers_and_checks():
    nb = _graded_notebook()
    nb.cells[1].source += "\n### BEGIN HIDDEN TESTS\nassert f() > 0\n### END HIDDEN TESTS"
    release.check_nbgrader(nb)
    nb.cells.append(nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS"))
    nb.cells[-1].id = "c3"
    with pytest.raises(ValueError, match=r"cell 3 \(id c3\): holds marker text but has no nbgrader metadata"):
        release.check_nbgrader(nb, "bad.ipynb")
    nb = _graded_notebook()
    nb.cells[1].metadata = {}
    nb.cells[2].source = "A sentence about `### BEGIN SOLUTION` (nbgrader would take it for a marker)."
    with pytest.raises(ValueError) as err:
        release.check_nbgrader(nb, "bad.ipynb")
    assert "solution 'f' has no check cell" in str(err.value)
    nb = _graded_notebook()
    nb.cells[0].source = "def f():\n    return 1"
    with pytest.raises(ValueError, match="a solution cell without a '### BEGIN SOLUTION' region"):
        release.check_nbgrader(nb, "bad.ipynb")


# ----------------------------------------------------------------------------------------------------------------
# real nbgrader, where it is installed
# ----------------------------------------------------------------------------------------------------------------
def _nbgrader(root, *args, env=None):
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}", "--CourseDirectory.course_id=c",
           f"--Exchange.root={root / 'exchange'}"]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **(env or {}), JUPYTER_CONFIG_DIR=str(root / "config")))
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_real_nbgrader_generates_and_autogrades(tmp_path):
    """``nbgrader generate_assignment`` on every notebook with nbgrader metadata (committed ones and the fixture)
    leaks nothing that make-student removes; ``NUMPY_SHUFFLENET_GRADING=1 nbgrader autograde`` gives the fixture's
    instructor solutions full marks and its untouched student version 0."""
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    source = tmp_path / "source" / "ps1"
    source.mkdir(parents=True)
    paths = [p for p in NOTEBOOKS if _has_nbgrader(p)] + [FIXTURE]
    for path in paths:
        shutil.copy(path, source / path.name)
    _nbgrader(tmp_path, "generate_assignment", "ps1", "--force")
    for path in paths:
        released = _read(tmp_path / "release" / "ps1" / path.name)
        ours = release.make_student_notebook(_read(path), path.name)
        inside, outside = region_lines(_read(path))
        kept = {line.strip() for c in released.cells for line in c.source.splitlines()}
        assert not (inside - outside) & kept, f"{path.name}: nbgrader's student version keeps solution lines"
        answers = {c.id: c.source for c in ours.cells if c.cell_type == "markdown"}
        for cell in released.cells:                   # the written answers are blanked the same way
            if cell.cell_type == "markdown" and release.nbgrader_meta(cell).get("solution"):
                assert cell.source == answers[cell.id] == release.ANSWER_STUB

    graded = tmp_path / "source" / "ps2"             # autograde the fixture only (the course notebooks are slow)
    graded.mkdir()
    shutil.copy(FIXTURE, graded / FIXTURE.name)
    _nbgrader(tmp_path, "generate_assignment", "ps2", "--force")
    for name, nb in [("alice", _read(FIXTURE)), ("bob", _read(tmp_path / "release" / "ps2" / FIXTURE.name))]:
        folder = tmp_path / "submitted" / name / "ps2"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / FIXTURE.name)
    _nbgrader(tmp_path, "autograde", "ps2", "--create", "--force", env={"NUMPY_SHUFFLENET_GRADING": "1"})
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        scores = {name: gb.find_submission_notebook(FIXTURE.stem, "ps2", name).code_score for name in ("alice", "bob")}
    assert scores == {"alice": 6, "bob": 0}


@pytest.mark.slow
@pytest.mark.notebooks
def test_real_nbgrader_grades_the_course_notebooks_with_the_readme_commands(tmp_path):
    """The README's nbgrader commands, no environment variable: ``generate_assignment`` on the course notebooks,
    then ``autograde`` of the instructor notebooks (every check cell's points) and of the released copies
    untouched (0, written answers included), with no checksum or partial-credit warning."""
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    source = course / "source" / "shufflenet"
    source.mkdir(parents=True)
    paths = [p for p in NOTEBOOKS if _has_nbgrader(p)]
    for path in paths:
        shutil.copy(path, source / path.name)
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.Execute.timeout = 300\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_SHUFFLENET_GRADING"}
    env.update(MPLBACKEND="Agg", JUPYTER_CONFIG_DIR=str(tmp_path / "config"))

    def nbgrader(*args):
        result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True,
                                text=True, timeout=1200, env=env)
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    log = nbgrader("generate_assignment", "shufflenet", "--force")
    for name, folder in [("instructor", source), ("blank", course / "release" / "shufflenet")]:
        submitted = course / "submitted" / name / "shufflenet"
        submitted.mkdir(parents=True)
        for path in paths:
            shutil.copy(folder / path.name, submitted / path.name)
    log += nbgrader("autograde", "shufflenet", "--create", "--force")
    assert not re.search(r"checksum|partial credit|expecting output to indicate", log, re.IGNORECASE), log
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for path in paths:
            full = gb.find_submission_notebook(path.stem, "shufflenet", "instructor")
            blank = gb.find_submission_notebook(path.stem, "shufflenet", "blank")
            assert full.code_score == full.max_code_score > 0, path.name
            assert (blank.code_score, blank.written_score) == (0, 0), path.name
