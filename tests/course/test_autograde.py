"""Grading (:mod:`numpy_shufflenet.course.autograde`, ``python -m numpy_shufflenet grade``).

One ``grade`` run (marker ``notebooks``) over a folder of submissions of the fixture notebook
``tests/fixtures/grading/exercises.ipynb`` (three exercises worth 2, 3 and 1 points, and a written answer worth 2;
its check cells follow the course's convention: "not done yet" for a student, raise when grading), one student
per way a submission can go right or wrong: the instructor's own notebook scores full marks, the untouched
student copy 0, and each wrong submission scores what it should without stopping the others. The argument
checks and the CSV format are tested without a kernel.
"""

import contextlib
import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from numpy_shufflenet.course import autograde
from numpy_shufflenet.course import release  # noqa: E402
from numpy_shufflenet.cli import main  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "grading"
NOTEBOOK = "exercises.ipynb"
TIMEOUT = "3"        # seconds for the cells of one run; the fixture's cells take a few milliseconds
MAX_POINTS = {"double": 2, "shuffle": 3, "depthwise_params": 1, "why_shuffle": 2}


def instructor():
    return nbformat.read(FIXTURE / NOTEBOOK, as_version=4)


def student_copy():
    return release.make_student_notebook(instructor(), NOTEBOOK)


def cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


def edit(nb, cell_id, source=None, delete=False, drop_metadata=False):
    """Change the cell ``cell_id`` of ``nb`` in place (new source, deleted, or without its nbgrader metadata)."""
    index = next(i for i, c in enumerate(nb.cells) if c.id == cell_id)
    if delete:
        del nb.cells[index]
        return nb
    if source is not None:
        nb.cells[index].source = source
    if drop_metadata:
        nb.cells[index].metadata = {}
    return nb


SHUFFLE = "def shuffle(x, groups):\n    return x.reshape(groups, -1).T.ravel()"
DEPTHWISE = "def depthwise_params(channels, k):\n    return k * k * channels"
HARD_CODED = "def double(x):\n    return np.array([0, 2, 4])            # the one answer the visible check asks"


def cheater():
    """A hard-coded answer; a wrong shuffle whose check cells were edited to pass; a right exercise that prints
    4 MB; a written answer."""
    nb = student_copy()
    edit(nb, "double", HARD_CODED)
    edit(nb, "shuffle", "def shuffle(x, groups):\n    return x")
    edit(nb, "shuffle_check", "run_check(lambda: None)")
    edit(nb, "shuffle_check2", delete=True)
    edit(nb, "depthwise_params", "def depthwise_params(channels, k):\n    print('x' * 4_000_000)\n"
                                 "    return channels * k * k")
    edit(nb, "why_shuffle", "Each group would only ever see its own channels.")
    return nb


def hang():
    """Exercise 1 kills the kernel; exercise 2 never returns; exercise 3 is right."""
    nb = student_copy()
    edit(nb, "double", "import os\nos._exit(3)")
    edit(nb, "shuffle", "def shuffle(x, groups):\n    while True:\n        pass")
    edit(nb, "depthwise_params", DEPTHWISE)
    return nb


def mangled():
    """Exercise 1's cell deleted; exercise 2's cell lost its metadata and raises; exercise 3 still raises
    NotImplementedError after an edit; the written answer deleted."""
    nb = student_copy()
    edit(nb, "double", delete=True)
    edit(nb, "shuffle", 'raise RuntimeError("oops")\n' + SHUFFLE, drop_metadata=True)
    edit(nb, "depthwise_params", "# I will do this later\n" + cell(student_copy(), "depthwise_params").source)
    edit(nb, "why_shuffle", delete=True)
    return nb


def write_submissions(root):
    subs = root / "submissions"
    for name in ("instructor", "blank", "cheater", "hang", "mangled", "broken", "huge", "late"):
        (subs / name).mkdir(parents=True)
    nbformat.write(instructor(), subs / "instructor" / NOTEBOOK)
    nbformat.write(student_copy(), subs / "blank" / NOTEBOOK)
    nbformat.write(cheater(), subs / "cheater" / NOTEBOOK)
    nbformat.write(hang(), subs / "hang" / NOTEBOOK)
    nbformat.write(mangled(), subs / "mangled" / NOTEBOOK)
    (subs / "broken" / NOTEBOOK).write_text('{"cells": [], "metadata": {}, "nbformat": 4,')       # cut short
    with open(subs / "huge" / NOTEBOOK, "wb") as f:                                  # 51 MB: refused unread
        f.truncate(autograde.MAX_NOTEBOOK_BYTES + 2**20)
    nbformat.write(instructor(), subs / "late" / "exercises (1).ipynb")           # a name the course lacks
    return subs


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Run ``grade`` once on all the submissions: ``(table printed, {(student, exercise): row}, out folder)``."""
    root = tmp_path_factory.mktemp("grade")
    subs = write_submissions(root)
    out = root / "out" / "grades.csv"
    printed, logged = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(logged):
        code = main(["grade", str(subs), "--source", str(FIXTURE), "--out", str(out), "--timeout", TIMEOUT])
    assert code == 0, logged.getvalue()
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    print(printed.getvalue())
    return printed.getvalue(), {(r["student"], r["exercise"]): r for r in rows if r["exercise"] != "TOTAL"}, \
        out.parent


def expect(rows, name, table):
    """Assert the ``(points, status)`` of every exercise of student ``name``; return its rows."""
    got = {ex: (rows[name, ex]["points"], rows[name, ex]["status"]) for ex in MAX_POINTS}
    assert got == table, f"{name}: {got}"
    for ex, most in MAX_POINTS.items():
        assert rows[name, ex]["max_points"] == str(most)
        assert rows[name, ex]["notebook"] == NOTEBOOK
    return {ex: rows[name, ex] for ex in MAX_POINTS}


# ----------------------------------------------------------------------------------------------------------------
# one grade run over every kind of submission
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.notebooks
def test_csv_has_one_row_per_student_and_exercise(graded):
    _, rows, out = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == list(autograde.COLUMNS)
    students = {s for s, _ in rows}
    assert students == {"instructor", "blank", "cheater", "hang", "mangled", "broken", "huge", "late"}
    assert len(rows) == len(students) * len(MAX_POINTS)
    assert all(r["status"] in autograde.STATUSES for r in rows.values())
    assert all("\n" not in r["message"] and len(r["message"]) <= autograde.MAX_MESSAGE for r in rows.values())


@pytest.mark.notebooks
def test_csv_ends_with_totals_per_student_and_notebook(graded):
    _, rows, out = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        totals = [r for r in csv.DictReader(f) if r["exercise"] == "TOTAL"]
    students = {s for s, _ in rows}
    assert {(r["student"], r["notebook"]) for r in totals} == {(s, n) for s in students for n in (NOTEBOOK, "ALL")}
    instructor = {r["notebook"]: r for r in totals if r["student"] == "instructor"}
    assert instructor[NOTEBOOK]["points"] == "6" and instructor[NOTEBOOK]["max_points"] == "8"
    assert instructor[NOTEBOOK]["status"] == "total"
    assert "6 of 6 autograded, 0 of 2 by hand; written answers worth 2 points not graded yet" in \
        instructor[NOTEBOOK]["message"]
    assert {r["points"] for r in totals if r["student"] == "blank"} == {"0"}


@pytest.mark.notebooks
def test_instructor_solutions_score_full_marks(graded):
    _, rows, _ = graded
    got = expect(rows, "instructor", {"double": ("2", "passed"), "shuffle": ("3", "passed"),
                                      "depthwise_params": ("1", "passed"), "why_shuffle": ("", "manual")})
    assert "graded by hand" in got["why_shuffle"]["message"]


@pytest.mark.notebooks
def test_untouched_student_copy_scores_zero(graded):
    _, rows, _ = graded
    got = expect(rows, "blank", {"double": ("0", "not done"), "shuffle": ("0", "not done"),
                                 "depthwise_params": ("0", "not done"), "why_shuffle": ("0", "manual")})
    assert "not answered" in got["why_shuffle"]["message"]


def test_hard_coded_answer_passes_the_visible_check():
    """What the cheater saw: the student copy's own check of exercise 1 accepts the hard-coded answer (run here
    in-process, the way "Run All" runs it), so only the hidden test below can catch it."""
    nb = edit(student_copy(), "double", HARD_CODED)
    cells = {c.id: c.source for c in nb.cells}
    namespace = {}
    for cell_id in ("setup", "double", "double_check"):
        exec(compile(cells[cell_id], cell_id, "exec"), namespace)
    assert "BEGIN HIDDEN" not in cells["double_check"]
    with pytest.raises(AssertionError, match="wrong for other inputs"):     # the instructor's check cell
        exec(compile(cell(instructor(), "double_check").source, "check", "exec"), namespace)


@pytest.mark.notebooks
def test_wrong_submissions_score_what_they_should(graded):
    _, rows, _ = graded
    got = expect(rows, "cheater", {"double": ("0", "failed"), "shuffle": ("0", "failed"),
                                   "depthwise_params": ("1", "passed"), "why_shuffle": ("", "manual")})
    assert "double is wrong for other inputs" in got["double"]["message"]            # the hidden test caught it
    assert "should be [0, 2, 4, 1, 3, 5], got [0, 1, 2, 3, 4, 5]" in got["shuffle"]["message"]  # edit ignored
    assert "shuffle_check2" in got["shuffle"]["message"]                        # deleted check cell ran anyway
    assert "output capped" in got["depthwise_params"]["message"]                 # 4 MB printed, 2 MB kept

    got = expect(rows, "hang", {"double": ("0", "error"), "shuffle": ("0", "timeout"),
                                "depthwise_params": ("1", "passed"), "why_shuffle": ("0", "manual")})
    assert "the kernel died while running cell 3, double" in got["double"]["message"]
    assert f"{TIMEOUT} s ran out" in got["shuffle"]["message"] and "shuffle_check" in got["shuffle"]["message"]

    got = expect(rows, "mangled", {"double": ("0", "missing"), "shuffle": ("0", "error"),
                                   "depthwise_params": ("0", "not done"), "why_shuffle": ("0", "manual")})
    assert "RuntimeError: oops" in got["shuffle"]["message"]
    assert "matched by cell id" in got["shuffle"]["message"]
    assert "NotImplementedError" in got["depthwise_params"]["message"]         # raised by the check when grading
    assert "no written answer: no cell with grade_id 'why_shuffle'" in got["why_shuffle"]["message"]


@pytest.mark.notebooks
def test_unreadable_submissions_are_statuses(graded):
    _, rows, _ = graded
    zero = {ex: ("0", "invalid") for ex in MAX_POINTS}
    assert "not valid JSON (line 1" in expect(rows, "broken", zero)["double"]["message"]
    assert "larger than the 50.0 MB" in expect(rows, "huge", zero)["double"]["message"]
    assert "not in the submission" in expect(rows, "late", {ex: ("0", "missing") for ex in MAX_POINTS})[
        "double"]["message"]


@pytest.mark.notebooks
def test_table_and_feedback_files(graded):
    table, rows, out = graded
    lines = {line.split()[0]: line for line in table.splitlines() if NOTEBOOK in line}
    assert lines["instructor"].split()[2:4] == ["6", "6"]
    assert lines["blank"].split()[2:4] == ["0", "6"]
    assert lines["hang"].split()[2:4] == ["1", "6"]
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert feedback == sorted(f"{s}.md" for s in {s for s, _ in rows})
    text = (out / "feedback" / "cheater.md").read_text()
    assert "Autograded: **1 of 6 points**" in text
    assert "double is wrong for other inputs" in text
    assert "Each group would only ever see its own channels." in text          # the answer, to grade by hand
    assert "exercises (1).ipynb" in (out / "feedback" / "late.md").read_text()  # told what was not graded


# ----------------------------------------------------------------------------------------------------------------
# without a kernel
# ----------------------------------------------------------------------------------------------------------------
def test_exercises_come_from_the_metadata():
    assignment = autograde.load_assignment(FIXTURE / NOTEBOOK)
    assert [(ex.name, ex.kind, ex.max_points) for ex in assignment.exercises] == [
        ("double", "code", 2), ("shuffle", "code", 3), ("depthwise_params", "code", 1),
        ("why_shuffle", "manual", 2)]
    assert [grade_id for _, grade_id, _ in assignment.exercises[1].checks] == ["shuffle_check", "shuffle_check2"]


def test_blank_submission_is_graded_without_a_kernel(tmp_path):
    nbformat.write(student_copy(), tmp_path / NOTEBOOK)
    grades = autograde.grade_notebook(autograde.load_assignment(FIXTURE / NOTEBOOK), tmp_path / NOTEBOOK, "s",
                                    kernel_name="no-such-kernel")        # a kernel start would fail
    assert [(g.points, g.status) for g in grades] == [(0, "not done")] * 3 + [(0, "manual")]


@pytest.mark.parametrize("args, message", [
    (["grade", "{tmp}/missing"], "expected SUBMISSIONS to be a directory"),
    (["grade", "{tmp}", "--source", "{tmp}/missing"], "expected --source to be a directory"),
    (["grade", "{tmp}", "--source", "{tmp}"], "holds no notebook with graded cells"),
    (["grade", "{tmp}", "--source", "{fixture}", "--out", "{tmp}"], "--out '{tmp}' is a directory"),
    (["grade", "{tmp}", "--source", "{fixture}", "--out", "{tmp}/file/grades.csv"], "which is a file"),
    (["grade", "{tmp}", "--source", "{fixture}", "--feedback", "{tmp}/file"], "--feedback: expected an output "
                                                                              "folder, got {tmp}/file, which is a file"),
])
def test_grade_argument_errors(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("not a folder")
    fill = {"tmp": str(tmp_path), "fixture": str(FIXTURE)}
    assert main([a.format(**fill) for a in args]) == 2
    err = capsys.readouterr().err
    assert message.format(**fill) in err, err
    assert not (tmp_path / "grades.csv").exists()


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_grade_timeout_must_be_positive_seconds(tmp_path, capsys, timeout):
    with pytest.raises(SystemExit) as exit_:
        main(["grade", str(tmp_path), "--timeout", timeout])
    assert exit_.value.code == 2
    message = capsys.readouterr().err                    # argparse's error names the argument and the value
    assert "argument --timeout: expected a number of" in message and repr(timeout) in message


def test_source_with_bad_metadata_is_refused(tmp_path, capsys):
    nb = instructor()
    cell(nb, "shuffle_check2").metadata.nbgrader.grade_id = "shuffle_check"              # a duplicate id
    nbformat.write(nb, tmp_path / NOTEBOOK)
    assert main(["grade", str(tmp_path), "--source", str(tmp_path)]) == 2
    assert "exercises.ipynb: nbgrader metadata: exercises.ipynb: cell 8 (id shuffle_check2): duplicate grade_id " \
           "'shuffle_check'" in capsys.readouterr().err


def test_csv_cells_never_start_a_formula():
    row = autograde.Grade("s", "n.ipynb", "e", 0, 1, "failed", "=HYPERLINK(\"x\")\nsecond line").row()
    assert row["message"] == "'=HYPERLINK(\"x\") second line"
    assert autograde.Grade("s", "n", "e", 1.5, 2, "passed", "ok").row()["points"] == "1.5"


def test_package_imports_and_commands_explain_without_the_dev_extra(tmp_path):
    """``import numpy_shufflenet.course.autograde`` (and ``.student``) works without nbformat and nbclient; the commands
    then say what to install instead of raising ImportError."""
    code = ("import sys\n"
            "for name in ('nbformat', 'nbclient', 'jupyter_client'):\n"
            "    sys.modules[name] = None\n"
            "import numpy_shufflenet.course.autograde, numpy_shufflenet.course.release\n"
            "from numpy_shufflenet.cli import main\n"
            f"assert main(['grade', {str(tmp_path)!r}]) == 2\n"
            f"assert main(['make-student', {str(tmp_path)!r}, {str(tmp_path / 'out')!r}]) == 2\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "grade needs nbclient and nbformat" in result.stderr
    assert "make-student needs nbformat" in result.stderr


def test_malformed_cells_count_as_missing_and_no_folder_is_an_error(tmp_path, capsys):
    nb = student_copy()
    raw = nbformat.writes(nb)
    import json
    data = json.loads(raw)
    for c in data["cells"]:
        if c.get("id") in ("double", "shuffle"):
            del c["source"]                                  # invalid nbformat, still JSON
        if c.get("id") == "depthwise_params":
            c["source"] = 42
    (tmp_path / NOTEBOOK).write_text(json.dumps(data))
    grades = autograde.grade_notebook(autograde.load_assignment(FIXTURE / NOTEBOOK), tmp_path / NOTEBOOK, "s",
                                    kernel_name="no-such-kernel")
    assert [g.status for g in grades[:3]] in (["missing"] * 3, ["invalid"] * 3), [g.message for g in grades]
    assert main(["grade", str(tmp_path), "--source", str(FIXTURE)]) == 2
    assert "holds no student folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# a real course notebook, end to end
# ----------------------------------------------------------------------------------------------------------------
COURSE = Path(__file__).resolve().parents[2] / "notebooks" / "04_gradient_check_exercises.ipynb"


def _course_assignment():
    if not COURSE.exists() or not any("nbgrader" in c.get("metadata", {}) for c in _read_json(COURSE)["cells"]):
        pytest.skip(f"{COURSE.name} has no nbgrader metadata")
    return autograde.load_assignment(COURSE)


def _read_json(path):
    import json
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.notebooks
def test_a_course_notebook_end_to_end(tmp_path):
    """One run of a real course notebook: the instructor's notebook with its first exercise answered wrongly (the
    function raises ValueError) scores full marks on every other exercise and 0 on that one; its untouched
    student copy scores 0 without a run."""
    assignment = _course_assignment()
    nb = nbformat.read(COURSE, as_version=4)
    first = next(ex for ex in assignment.exercises if ex.kind == "code" and ex.solutions)
    wrong = release.student_source(nb.cells[first.solutions[0]].source)
    nb.cells[first.solutions[0]].source = wrong.replace("raise NotImplementedError(", "raise ValueError(")
    nbformat.write(nb, tmp_path / "wrong_first.ipynb")
    nbformat.write(release.make_student_notebook(nbformat.read(COURSE, as_version=4), COURSE.name),
                   tmp_path / "blank.ipynb")
    graded = autograde.grade_notebook(assignment, tmp_path / "wrong_first.ipynb", "s", timeout=120)
    code = [g for g in graded if not g.manual]
    assert (code[0].exercise, code[0].points, code[0].status) == (first.name, 0, "failed"), code[0]
    assert "ValueError" in code[0].message + code[0].details                # the error, or the check's report
    assert [(g.exercise, g.status) for g in code[1:] if g.status != "passed"] == []
    assert all(g.points == g.max_points > 0 for g in code[1:])
    blank = autograde.grade_notebook(assignment, tmp_path / "blank.ipynb", "s", kernel_name="no-such-kernel")
    assert {(g.points, g.status) for g in blank if not g.manual} == {(0, "not done")}
