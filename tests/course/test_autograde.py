"""Grading (:mod:`numpy_shufflenet.course.autograde`, ``python -m numpy_shufflenet grade``).

One ``grade`` run over a folder of submissions of the two fixture notebooks (``tests/fixtures/grading``:
``exercises.ipynb``, three functions worth 2, 3 and 1 points and a written answer worth 2; ``steps.ipynb``, an
in-place SGD step and a ReLU forward/backward pair, 2 points each, and a given function built on the student's
ReLU, checked for 1 point without an answer cell of its own), judged by the fixture's catalogue
(``catalogue.py``), one student per way a submission can go right or wrong: the instructor's own notebooks score
full marks, the untouched student copies 0, and each wrong submission scores what it should without stopping
the others. The run uses bubblewrap where it works here, else ``--sandbox none`` (the isolation itself is
tested in ``test_sandbox.py`` and ``test_attacks.py``). Then: the same results for every ``--jobs``, the
program the runner gets, the seeds, the argument checks and the CSV formats.
"""

import contextlib
import csv
import filecmp
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

from numpy_shufflenet.course import autograde, release  # noqa: E402
from numpy_shufflenet.cli import main  # noqa: E402

from conftest import GRADING_CATALOGUE as CATALOGUE, GRADING_FIXTURE as FIXTURE  # noqa: E402

NOTEBOOK, STEPS = "exercises.ipynb", "steps.ipynb"
TIMEOUT = "4"        # seconds for one run of a notebook's program; the fixture's take a fraction of a second
MAX_POINTS = {"double": 2, "shuffle": 3, "depthwise_params": 1, "why_shuffle": 2}
STEPS_POINTS = {"sgd_step": 2, "relu_pair": 2, "relu_energy": 1}


def instructor(name=NOTEBOOK):
    return nbformat.read(FIXTURE / name, as_version=4)


def student_copy(name=NOTEBOOK):
    return release.make_student_notebook(instructor(name), name)


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
    """Exercise 1's cell ends the runner; exercise 2 never returns; exercise 3 is right."""
    nb = student_copy()
    edit(nb, "double", "import os\nos._exit(3)")
    edit(nb, "shuffle", "def shuffle(x, groups):\n    while True:\n        pass")
    edit(nb, "depthwise_params", DEPTHWISE)
    return nb


def mangled():
    """Exercise 1's cell deleted; exercise 2's cell lost its metadata and raises before its def; exercise 3 still
    raises NotImplementedError after an edit; the written answer deleted."""
    nb = student_copy()
    edit(nb, "double", delete=True)
    edit(nb, "shuffle", 'raise RuntimeError("oops")\n' + SHUFFLE, drop_metadata=True)
    edit(nb, "depthwise_params", "# I will do this later\n" + cell(student_copy(), "depthwise_params").source)
    edit(nb, "why_shuffle", delete=True)
    return nb


def wrong_steps():
    """The SGD step makes new arrays instead of updating in place; the ReLU backward forgets the mask."""
    nb = student_copy(STEPS)
    edit(nb, "sgd_step", "def sgd_step(params, grads, lr):\n    params = [p - lr * g for p, g in zip(params, grads)]")
    edit(nb, "relu_pair", "def relu_forward(x):\n    return np.maximum(x, 0)\n\n\n"
                          "def relu_backward(dout, x):\n    return dout")
    return nb


def write_submissions(root, names=("instructor", "blank", "cheater", "hang", "mangled", "broken", "huge", "late")):
    subs = root / "submissions"
    for name in names:
        (subs / name).mkdir(parents=True)
    writers = {"instructor": lambda d: (nbformat.write(instructor(), d / NOTEBOOK),
                                        nbformat.write(instructor(STEPS), d / STEPS)),
               "blank": lambda d: (nbformat.write(student_copy(), d / NOTEBOOK),
                                   nbformat.write(student_copy(STEPS), d / STEPS)),
               "cheater": lambda d: (nbformat.write(cheater(), d / NOTEBOOK), nbformat.write(wrong_steps(), d / STEPS)),
               "hang": lambda d: nbformat.write(hang(), d / NOTEBOOK),
               "mangled": lambda d: nbformat.write(mangled(), d / NOTEBOOK),
               "broken": lambda d: (d / NOTEBOOK).write_text('{"cells": [], "metadata": {}, "nbformat": 4,'),
               "huge": lambda d: _huge(d / NOTEBOOK),
               "late": lambda d: nbformat.write(instructor(), d / "exercises (1).ipynb")}   # a name the course lacks
    for name in names:
        writers[name](subs / name)
    return subs


def _huge(path):
    with open(path, "wb") as f:                                       # 51 MB: refused unread
        f.truncate(autograde.MAX_NOTEBOOK_BYTES + 2**20)


def grade(subs, out, sandbox_mode, *extra):
    """``grade`` through the command line: ``(exit code, printed, logged)``."""
    printed, logged = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(logged):
        code = main(["grade", str(subs), "--source", str(FIXTURE), "--out", str(out), "--timeout", TIMEOUT,
                     "--catalogue", str(CATALOGUE), "--sandbox", sandbox_mode, *extra])
    return code, printed.getvalue(), logged.getvalue()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, sandbox_mode):
    """Run ``grade`` once on all the submissions: ``(table printed, {(student, exercise): row}, out folder,
    log)``."""
    root = tmp_path_factory.mktemp("grade")
    subs = write_submissions(root)
    out = root / "out" / "grades.csv"
    code, printed, logged = grade(subs, out, sandbox_mode, "--seed", "7", "--jobs", "2")
    assert code == 0, logged
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    print(printed)
    return printed, {(r["student"], r["exercise"]): r for r in rows if r["exercise"] != "TOTAL"}, out.parent, logged


def expect(rows, name, table, notebook=NOTEBOOK, points=MAX_POINTS):
    """Assert the ``(points, status)`` of every exercise of student ``name``; return its rows."""
    got = {ex: (rows[name, ex]["points"], rows[name, ex]["status"]) for ex in points}
    assert got == table, f"{name}: {got}"
    for ex, most in points.items():
        assert rows[name, ex]["max_points"] == str(most)
        assert rows[name, ex]["notebook"] == notebook
    return {ex: rows[name, ex] for ex in points}


# ----------------------------------------------------------------------------------------------------------------
# one grade run over every kind of submission
# ----------------------------------------------------------------------------------------------------------------
def test_csv_has_one_row_per_student_and_exercise(graded):
    _, rows, out, logged = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == list(autograde.COLUMNS)
    students = {s for s, _ in rows}
    assert students == {"instructor", "blank", "cheater", "hang", "mangled", "broken", "huge", "late"}
    assert len(rows) == len(students) * (len(MAX_POINTS) + len(STEPS_POINTS))
    assert all(r["status"] in autograde.STATUSES for r in rows.values())
    assert all("\n" not in r["message"] and len(r["message"]) <= autograde.MAX_MESSAGE for r in rows.values())
    assert "seed 7" in logged and "8 students x 2 notebooks, 2 at a time" in logged


@pytest.mark.notebooks
def test_csv_ends_with_totals_per_student_and_notebook(graded):
    _, rows, out, _ = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        totals = [r for r in csv.DictReader(f) if r["exercise"] == "TOTAL"]
    students = {s for s, _ in rows}
    assert {(r["student"], r["notebook"]) for r in totals} == {(s, n) for s in students
                                                               for n in (NOTEBOOK, STEPS, "ALL")}
    instructor = {r["notebook"]: r for r in totals if r["student"] == "instructor"}
    assert instructor[NOTEBOOK]["points"] == "6" and instructor[NOTEBOOK]["max_points"] == "8"
    assert instructor[NOTEBOOK]["status"] == "total"
    assert "6 of 6 autograded, 0 of 2 by hand; written answers worth 2 points not graded yet" in \
        instructor[NOTEBOOK]["message"]
    assert {r["points"] for r in totals if r["student"] == "blank"} == {"0"}


@pytest.mark.notebooks
def test_instructor_solutions_score_full_marks(graded):
    _, rows, _, _ = graded
    got = expect(rows, "instructor", {"double": ("2", "passed"), "shuffle": ("3", "passed"),
                                      "depthwise_params": ("1", "passed"), "why_shuffle": ("", "manual")})
    assert "graded by hand" in got["why_shuffle"]["message"]
    expect(rows, "instructor", {"sgd_step": ("2", "passed"), "relu_pair": ("2", "passed"),
                                 "relu_energy": ("1", "passed")}, STEPS, STEPS_POINTS)


def test_untouched_student_copy_scores_zero(graded):
    _, rows, _, _ = graded
    got = expect(rows, "blank", {"double": ("0", "not done"), "shuffle": ("0", "not done"),
                                 "depthwise_params": ("0", "not done"), "why_shuffle": ("0", "manual")})
    assert "not answered" in got["why_shuffle"]["message"]
    expect(rows, "blank", {"sgd_step": ("0", "not done"), "relu_pair": ("0", "not done"),
                            "relu_energy": ("0", "not done")}, STEPS, STEPS_POINTS)


def test_hard_coded_answer_passes_the_visible_check():
    """What the cheater saw: the student copy's own check of exercise 1 accepts the hard-coded answer (run here
    in-process, the way "Run All" runs it); the grader's cases, drawn when grading, do not (below)."""
    nb = edit(student_copy(), "double", HARD_CODED)
    cells = {c.id: c.source for c in nb.cells}
    namespace = {}
    for cell_id in ("setup", "double", "double_check"):
        exec(compile(cells[cell_id], cell_id, "exec"), namespace)
    assert "BEGIN HIDDEN" not in cells["double_check"]


def test_wrong_submissions_score_what_they_should(graded):
    _, rows, _, _ = graded
    got = expect(rows, "cheater", {"double": ("0", "failed"), "shuffle": ("0", "failed"),
                                   "depthwise_params": ("1", "passed"), "why_shuffle": ("", "manual")})
    assert "double is wrong for x of" in got["double"]["message"]               # a case drawn when grading
    assert "shuffle returned a view of its argument 1" in got["shuffle"]["message"]  # edited checks count for nothing
    got = expect(rows, "cheater", {"sgd_step": ("0", "failed"), "relu_pair": ("0", "failed"),
                                   "relu_energy": ("1", "passed")}, STEPS, STEPS_POINTS)
    assert "sgd_step is wrong for parameters" in got["sgd_step"]["message"]     # judged on the arrays after the call
    assert "relu_backward on 2 x 5" in got["relu_pair"]["message"]              # the pair's second function

    got = expect(rows, "hang", {"double": ("0", "error"), "shuffle": ("0", "timeout"),
                                "depthwise_params": ("1", "passed"), "why_shuffle": ("0", "manual")})
    assert "cell 3 (double): the runner exited with status 3" in got["double"]["message"]
    assert f"shuffle: it was still running after {TIMEOUT} s" in got["shuffle"]["message"]
    assert "the other exercises were graded without it" in got["shuffle"]["message"]

    got = expect(rows, "mangled", {"double": ("0", "missing"), "shuffle": ("0", "error"),
                                   "depthwise_params": ("0", "not done"), "why_shuffle": ("0", "manual")})
    assert "your cell raised RuntimeError: oops" in got["shuffle"]["message"]
    assert "no written answer: no cell with grade_id 'why_shuffle'" in got["why_shuffle"]["message"]
    assert "no cell with grade_id 'double'" in got["double"]["message"]


def test_unreadable_submissions_are_statuses(graded):
    _, rows, _, _ = graded
    zero = {ex: ("0", "invalid") for ex in MAX_POINTS}
    assert "not valid JSON (line 1" in expect(rows, "broken", zero)["double"]["message"]
    assert "larger than the 50.0 MB" in expect(rows, "huge", zero)["double"]["message"]
    assert "not in the submission" in expect(rows, "late", {ex: ("0", "missing") for ex in MAX_POINTS})[
        "double"]["message"]
    assert "steps.ipynb is not in the submission" in rows["hang", "sgd_step"]["message"]


def test_table_gradebook_and_feedback_files(graded):
    table, rows, out, _ = graded
    lines = {line.split()[0]: line for line in table.splitlines() if NOTEBOOK in line}
    assert lines["instructor"].split()[2:4] == ["6", "6"]
    assert lines["blank"].split()[2:4] == ["0", "6"]
    assert lines["hang"].split()[2:4] == ["1", "6"]
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        book = list(csv.DictReader(f))
    assert list(book[0]) == ["student_id", "last_name", "first_name", "email", "exercises", "steps", "raw_score",
                             "late_submission_penalty", "score", "max_score"]
    by_student = {r["student_id"]: r for r in book}
    assert len(book) == len(by_student) == 8                        # one row per student
    assert {k: by_student["instructor"][k] for k in ("exercises", "steps", "raw_score", "score", "max_score")} == \
        {"exercises": "6", "steps": "5", "raw_score": "11", "score": "11", "max_score": "13"}
    assert by_student["cheater"]["raw_score"] == "2" and by_student["hang"]["steps"] == "0"
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert feedback == sorted(f"{s}.md" for s in {s for s, _ in rows})
    text = (out / "feedback" / "cheater.md").read_text()
    assert "Autograded: **2 of 11 points**" in text
    assert "double is wrong for x of" in text
    assert "Each group would only ever see its own channels." in text          # the answer, to grade by hand
    assert "exercises (1).ipynb" in (out / "feedback" / "late.md").read_text()  # told what was not graded


def test_results_are_the_same_for_every_number_of_jobs(tmp_path, sandbox_mode):
    subs = write_submissions(tmp_path, ("instructor", "blank", "cheater", "mangled", "broken"))
    outs = []
    for jobs in ("1", "3"):
        out = tmp_path / f"jobs{jobs}" / "grades.csv"
        code, _, logged = grade(subs, out, sandbox_mode, "--seed", "11", "--jobs", jobs)
        assert code == 0, logged
        outs.append(out.parent)
    assert (outs[0] / "grades.csv").read_bytes() == (outs[1] / "grades.csv").read_bytes()
    assert (outs[0] / "gradebook.csv").read_bytes() == (outs[1] / "gradebook.csv").read_bytes()
    same = filecmp.dircmp(outs[0] / "feedback", outs[1] / "feedback")
    assert not same.diff_files and not same.left_only and not same.right_only


# ----------------------------------------------------------------------------------------------------------------
# the program, the seeds and the verdicts, without a run
# ----------------------------------------------------------------------------------------------------------------
def assignment(name=NOTEBOOK):
    return autograde.load_assignment(FIXTURE / name, autograde.load_catalogue(str(CATALOGUE)))


def test_the_program_is_the_student_copy_with_the_answers_and_without_the_checks():
    program = autograde.build_program(assignment(), cheater())
    text = "\n".join(c["source"] for c in program.cells)
    assert [c["label"] for c in program.cells] == ["cell 1", "cell 3 (double)", "cell 6 (shuffle)",
                                                   "cell 10 (depthwise_params)", "cell 14"]
    assert HARD_CODED in text and "return x" in text                  # the student's answers
    assert "\nrun_check(" not in text and "assert" not in text        # no check cell, edited or not
    assert "HIDDEN" not in text and "2 * x" not in text               # nothing of the instructor's notebook
    assert program.written["why_shuffle"] == (True, "Each group would only ever see its own channels.")
    blank = autograde.build_program(assignment(), student_copy())
    assert blank.stubbed == {"double", "shuffle", "depthwise_params"} and blank.missing == {}


def test_blank_submission_is_graded_without_a_run(tmp_path):
    nbformat.write(student_copy(), tmp_path / NOTEBOOK)
    grades = autograde.grade_notebook(assignment(), tmp_path / NOTEBOOK, "s", sandbox=None)   # no sandbox needed
    assert [(g.points, g.status) for g in grades] == [(0, "not done")] * 3 + [(0, "manual")]


def test_the_slowest_notebook_is_graded_first_once_its_time_is_known():
    tasks = [(student, type("A", (), {"name": name})) for student in "abc" for name in ("fast", "slow")]
    order = autograde._Longest(tasks)
    first = [order.next(), order.next()]                 # one of each notebook, in the order given
    assert [tasks[i][1].name for i in first] == ["fast", "slow"]
    order.done("fast", 1.0)
    order.done("slow", 9.0)
    rest = [order.next() for _ in range(4)]
    assert [tasks[i][1].name for i in rest] == ["slow", "slow", "fast", "fast"] and order.next() is None


def test_seeds_are_drawn_per_student_notebook_and_exercise():
    seed = autograde.exercise_seed
    assert seed(7, "alice", "exercises", "double") == seed(7, "alice", "exercises", "double")
    drawn = {seed(r, s, "exercises", e) for r in (7, 8) for s in ("alice", "bob") for e in ("double", "shuffle")}
    assert len(drawn) == 8 and 0 not in drawn and all(0 < d < 2**63 for d in drawn)
    ex = assignment().exercises[0]
    assert [c.label for c in ex.cases(0)] == ["x = [0, 1, 2]"]                 # seed 0: the visible case only
    assert ex.cases(seed(7, "alice", "exercises", "double"))[0].label != ex.cases(seed(7, "bob", "exercises",
                                                                                       "double"))[0].label


def test_a_failing_judge_is_an_error_of_that_exercise_only():
    a = assignment()
    broken = type(a.exercises[0])(**{**a.exercises[0].__dict__, "expected": lambda case: 1 / 0})
    program = autograde.build_program(a, instructor())
    state = autograde._RunState()
    cases = broken.cases(5)
    state.outcomes.update({f"double/{i}": (2 * case.args[0], None, None, ()) for i, case in enumerate(cases)})
    grade = autograde._grade_exercise("s", a, broken, program, cases, state)
    assert (grade.points, grade.status) == (0, "error") and "grading failed: ZeroDivisionError" in grade.message
    right = autograde._grade_exercise("s", a, a.exercises[0], program, cases, state)
    assert (right.points, right.status) == (2, "passed")


# ----------------------------------------------------------------------------------------------------------------
# arguments and formats
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["grade", "{tmp}/missing"], "expected SUBMISSIONS to be a directory"),
    (["grade", "{tmp}", "--source", "{tmp}/missing"], "expected --source to be a directory"),
    (["grade", "{tmp}", "--source", "{tmp}", "--catalogue", "{catalogue}"], "holds no notebook with exercises"),
    (["grade", "{tmp}", "--source", "{fixture}", "--out", "{tmp}"], "--out '{tmp}' is a directory"),
    (["grade", "{tmp}", "--source", "{fixture}", "--out", "{tmp}/file/grades.csv"], "which is a file"),
    (["grade", "{tmp}", "--source", "{fixture}", "--feedback", "{tmp}/file"],
     "--feedback: expected an output folder, got {tmp}/file, which is a file"),
    (["grade", "{tmp}", "--source", "{fixture}", "--catalogue", "{tmp}/nothing.py"],
     "--catalogue '{tmp}/nothing.py' is not a file"),
    (["grade", "{tmp}", "--source", "{fixture}", "--catalogue", "no_such_module_here"], "the exercise catalogue "
                                                                                        "'no_such_module_here' cannot"),
    (["grade", "{tmp}", "--source", "{fixture}", "--catalogue", "json"], "the catalogue 'json' has no CATALOGUE"),
])
def test_grade_argument_errors(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("not a folder")
    fill = {"tmp": str(tmp_path), "fixture": str(FIXTURE), "catalogue": str(CATALOGUE)}
    assert main([a.format(**fill) for a in args]) == 2
    err = capsys.readouterr().err
    assert message.format(**fill) in err, err
    assert not (tmp_path / "grades.csv").exists()


@pytest.mark.parametrize("option, value, expected", [
    ("--timeout", "0", "expected a number of seconds > 0"), ("--timeout", "nan", "expected a number of seconds"),
    ("--timeout", "soon", "expected a number of seconds"), ("--jobs", "0", "expected an integer >= 1"),
    ("--memory", "1M", "expected a size of at least 128M"), ("--memory", "lots", "expected a size such as 2G"),
    ("--sandbox", "docker", "invalid choice: 'docker'"), ("--seed", "-1", "expected an integer >= 0"),
])
def test_grade_options_are_checked_by_the_parser(tmp_path, capsys, option, value, expected):
    with pytest.raises(SystemExit) as exit_:
        main(["grade", str(tmp_path), option, value])
    assert exit_.value.code == 2
    message = capsys.readouterr().err                    # argparse's error names the argument and the value
    assert f"argument {option}: {expected}" in message


def test_grading_stops_before_anything_runs_without_bubblewrap(tmp_path, capsys, monkeypatch):
    from numpy_shufflenet.course import sandbox

    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    subs = write_submissions(tmp_path, ("instructor",))
    out = tmp_path / "out" / "grades.csv"
    assert main(["grade", str(subs), "--source", str(FIXTURE), "--out", str(out), "--catalogue",
                 str(CATALOGUE)]) == 2
    err = capsys.readouterr().err
    assert "error: --sandbox auto needs bubblewrap (bwrap), which is not installed: install bubblewrap" in err
    assert "--sandbox none" in err and not out.exists()


def test_source_that_does_not_match_the_catalogue_is_refused(tmp_path, capsys):
    nb = instructor()
    cell(nb, "shuffle").metadata.nbgrader.grade_id = "shuffle_renamed"
    cell(nb, "shuffle_check").metadata.nbgrader.grade_id = "shuffle_renamed_check"
    cell(nb, "shuffle_check2").metadata.nbgrader.grade_id = "shuffle_renamed_check2"
    nbformat.write(nb, tmp_path / NOTEBOOK)
    assert main(["grade", str(tmp_path), "--source", str(tmp_path), "--catalogue", str(CATALOGUE)]) == 2
    assert "exercises.ipynb: the catalogue's exercise 'shuffle' has no code solution cell with grade_id 'shuffle' " \
           "(or, for a check of earlier work, a check cell shuffle_check)" in capsys.readouterr().err
    nbformat.write(instructor(), tmp_path / "other.ipynb")            # graded cells, no exercise in the catalogue
    (tmp_path / NOTEBOOK).unlink()
    assert main(["grade", str(tmp_path), "--source", str(tmp_path), "--catalogue", str(CATALOGUE)]) == 2
    assert "other.ipynb has graded cells, but the catalogue" in capsys.readouterr().err


def test_source_with_bad_metadata_is_refused(tmp_path, capsys):
    nb = instructor()
    cell(nb, "shuffle_check2").metadata.nbgrader.grade_id = "shuffle_check"              # a duplicate id
    nbformat.write(nb, tmp_path / NOTEBOOK)
    assert main(["grade", str(tmp_path), "--source", str(tmp_path), "--catalogue", str(CATALOGUE)]) == 2
    assert "exercises.ipynb: nbgrader metadata: exercises.ipynb: cell 8 (id shuffle_check2): duplicate grade_id " \
           "'shuffle_check'" in capsys.readouterr().err


def test_csv_cells_never_start_a_formula():
    row = autograde.Grade("s", "n.ipynb", "e", 0, 1, "failed", "=HYPERLINK(\"x\")\nsecond line").row()
    assert row["message"] == "'=HYPERLINK(\"x\") second line"
    assert autograde.Grade("s", "n", "e", 1.5, 2, "passed", "ok").row()["points"] == "1.5"
    from numpy_shufflenet.course.gradebook import gradebook_rows

    _, rows = gradebook_rows([autograde.Grade("=cmd", "n.ipynb", "e", 1, 2, "passed", "")], ["n.ipynb"])
    assert rows[0]["student_id"] == "'=cmd"


def test_package_imports_and_commands_explain_without_the_dev_extra(tmp_path):
    """``import numpy_shufflenet.course.autograde`` (and ``.release``) works without nbformat; the commands then
    say what to install instead of raising ImportError."""
    code = ("import sys\n"
            "for name in ('nbformat', 'nbclient', 'jupyter_client'):\n"
            "    sys.modules[name] = None\n"
            "import numpy_shufflenet.course.autograde, numpy_shufflenet.course.release\n"
            "from numpy_shufflenet.cli import main\n"
            f"assert main(['grade', {str(tmp_path)!r}]) == 2\n"
            f"assert main(['make-student', {str(tmp_path)!r}, {str(tmp_path / 'out')!r}]) == 2\n"
            f"assert main(['make-autograder', '--source', {str(tmp_path)!r}]) == 2\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "grade needs nbformat" in result.stderr
    assert "make-student needs nbformat" in result.stderr
    assert "make-autograder needs nbformat" in result.stderr


def test_malformed_cells_count_as_missing_and_no_folder_is_an_error(tmp_path, capsys):
    data = json.loads(nbformat.writes(student_copy()))
    for c in data["cells"]:
        if c.get("id") in ("double", "shuffle"):
            del c["source"]                                  # invalid nbformat, still JSON
        if c.get("id") == "depthwise_params":
            c["source"] = 42
    (tmp_path / NOTEBOOK).write_text(json.dumps(data))
    grades = autograde.grade_notebook(assignment(), tmp_path / NOTEBOOK, "s", sandbox=None)
    assert [g.status for g in grades[:3]] in (["missing"] * 3, ["invalid"] * 3), [g.message for g in grades]
    assert main(["grade", str(tmp_path), "--source", str(FIXTURE), "--catalogue", str(CATALOGUE)]) == 2
    assert "holds no student folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# the course's notebooks, with the course's catalogue
# ----------------------------------------------------------------------------------------------------------------
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _course_catalogue():
    try:
        return autograde.load_catalogue()
    except ValueError as err:
        pytest.skip(f"the course's exercise catalogue is not in this tree: {err}")


@pytest.mark.notebooks
def test_the_course_notebooks_score_full_marks_and_their_student_copies_zero(tmp_path, sandbox_mode):
    """The instructor notebooks graded as a submission earn every autograded point; their student copies 0."""
    catalogue = _course_catalogue()
    source = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if catalogue.exercises_of(p.stem)]
    for name, make in (("instructor", lambda p: nbformat.read(p, as_version=4)),
                       ("blank", lambda p: release.make_student_notebook(nbformat.read(p, as_version=4), p.name))):
        (tmp_path / "subs" / name).mkdir(parents=True)
        for path in source:
            nbformat.write(make(path), tmp_path / "subs" / name / path.name)
    out = tmp_path / "out" / "grades.csv"
    grades = autograde.grade_dir(tmp_path / "subs", NOTEBOOKS, out, sandbox=sandbox_mode, seed=3, timeout=300)
    auto = [g for g in grades if not g.manual]
    full = [(g.notebook, g.exercise, g.status, g.message) for g in auto if g.student == "instructor"
            and g.points != g.max_points]
    assert full == []
    assert {(g.points, g.status) for g in auto if g.student == "blank"} == {(0, "not done")}
