"""Written answers graded by hand (:mod:`numpy_shufflenet.course.manual`, ``grade --manual MANUAL.csv``): the
points are checked before anything is graded and merged into ``grades.csv`` and the feedback; ``grades.csv`` ends
with totals per student and notebook; the feedback shows each written question's model answer and rubric."""

import contextlib
import csv
import io
from pathlib import Path

import pytest

from numpy_shufflenet.course import manual
from numpy_shufflenet.course.autograde import Grade

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "grading"
NB = "exercises.ipynb"
WRITTEN = {("alice", NB, "why_shuffle"): 2.0, ("bob", NB, "why_shuffle"): 2.0}


def write(tmp_path, text, name="manual.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_points_are_read_with_or_without_the_notebook_suffix(tmp_path):
    path = write(tmp_path, "\ufeffstudent,notebook,exercise,points\nalice,exercises,why_shuffle,1.5\n\n"
                           "bob,exercises.ipynb,why_shuffle,0\n")
    assert manual.read_manual(path, WRITTEN) == {("alice", NB, "why_shuffle"): 1.5, ("bob", NB, "why_shuffle"): 0.0}


@pytest.mark.parametrize("text, message", [
    ("student,notebook,exercise,points\ncarol,exercises,why_shuffle,1\n",
     "line 2: no written answer 'why_shuffle' of student 'carol' in notebook 'exercises' is graded"),
    ("student,notebook,exercise,points\nalice,exercises,double,1\n",
     "line 2: no written answer 'double' of student 'alice'"),
    ("student,notebook,exercise,points\nalice,other,why_shuffle,1\n", "in notebook 'other' is graded"),
    ("student,notebook,exercise,points\nalice,exercises,why_shuffle,2.5\n",
     "line 2: expected points from 0 to 2 for alice/why_shuffle, got '2.5'"),
    ("student,notebook,exercise,points\nalice,exercises,why_shuffle,-1\n", "got '-1'"),
    ("student,notebook,exercise,points\nalice,exercises,why_shuffle,nan\n", "got 'nan'"),
    ("student,notebook,exercise,points\nalice,exercises,why_shuffle,two\n", "got 'two'"),
    ("student,notebook,exercise,points\nalice,exercises,why_shuffle,1\nalice,exercises.ipynb,why_shuffle,2\n",
     "line 3: alice/exercises.ipynb/why_shuffle is given twice"),
    ("student,notebook,exercise,points\nalice,exercises,why_shuffle\n", "line 2: expected 4 columns, got 3"),
    ("student,exercise,points\nalice,why_shuffle,1\n", "expected the header student,notebook,exercise,points"),
    ("", "got an empty file"),
])
def test_a_bad_row_is_refused_with_its_line(tmp_path, text, message):
    with pytest.raises(ValueError, match="grade: --manual") as raised:
        manual.read_manual(write(tmp_path, text), WRITTEN)
    assert message in str(raised.value)


def test_every_problem_is_listed_and_a_missing_file_is_named(tmp_path):
    text = "student,notebook,exercise,points\ncarol,exercises,why_shuffle,1\nalice,exercises,why_shuffle,9\n"
    with pytest.raises(ValueError, match="line 2: .*; line 3: "):
        manual.read_manual(write(tmp_path, text), WRITTEN)
    with pytest.raises(ValueError, match="is not a file"):
        manual.read_manual(tmp_path / "none.csv", WRITTEN)


def _grades():
    return [Grade("alice", NB, "double", 2.0, 2.0, "passed", "all checks passed"),
            Grade("alice", NB, "why_shuffle", None, 2.0, "manual", "written answer", manual=True),
            Grade("alice", "other.ipynb", "f", 1.0, 3.0, "failed", "wrong"),
            Grade("bob", NB, "double", 0.0, 2.0, "not done", "stub"),
            Grade("bob", NB, "why_shuffle", None, 2.0, "manual", "written answer", manual=True)]


def test_merged_points_and_totals():
    grades = _grades()
    assert manual.merge_manual(grades, {("alice", NB, "why_shuffle"): 1.5}) == 1
    assert (grades[1].points, grades[1].message) == (1.5, "graded by hand: 1.5 of 2")
    totals = {(t.student, t.notebook): t for t in manual.total_rows(grades)}
    assert list(totals) == [("alice", NB), ("alice", "other.ipynb"), ("alice", "ALL"), ("bob", NB), ("bob", "ALL")]
    assert all(t.exercise == "TOTAL" and t.status == "total" for t in totals.values())
    assert (totals["alice", NB].points, totals["alice", NB].max_points) == (3.5, 4.0)
    assert totals["alice", NB].message == "2 of 2 autograded, 1.5 of 2 by hand"
    assert (totals["alice", "ALL"].points, totals["alice", "ALL"].max_points) == (4.5, 7.0)
    assert totals["bob", NB].message == "0 of 2 autograded, 0 of 2 by hand; written answers worth 2 points not " \
                                        "graded yet"


def test_rubrics_come_from_the_instructor_notebooks_answer_cells():
    nbformat = pytest.importorskip("nbformat")
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[2] / "notebooks"
    assignments = [SimpleNamespace(name=p.name, nb=nbformat.read(p, as_version=4))
                   for p in sorted(root.glob("0*.ipynb"))]
    found = manual.rubrics(assignments)
    assert ("01_group_convolution_and_parameters.ipynb", "question_equal_cost") in found
    assert all(text.startswith("**Model answer.**") and "**Rubric** (" in text for text in found.values())
    assert len(found) >= 7


@pytest.mark.notebooks
def test_grade_merges_the_manual_points_into_the_csv_and_the_feedback(tmp_path, sandbox_mode):
    pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    from numpy_shufflenet.cli import main

    subs = tmp_path / "submissions"
    for name in ("alice", "bob"):
        (subs / name).mkdir(parents=True)
        nbformat.write(nbformat.read(FIXTURE / NB, as_version=4), subs / name / NB)
    out = tmp_path / "out" / "grades.csv"
    grading = ["--catalogue", str(FIXTURE / "catalogue.py"), "--sandbox", sandbox_mode]     # the fixture's exercises
    bad = write(tmp_path, "student,notebook,exercise,points\nalice,exercises,why_shuffle,3\n", "bad.csv")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["grade", str(subs), "--source", str(FIXTURE), "--out", str(out), "--manual", str(bad),
                     *grading]) == 2
    assert "expected points from 0 to 2" in err.getvalue() and not out.exists()       # refused before grading

    good = write(tmp_path, "student,notebook,exercise,points\nalice,exercises,why_shuffle,1.5\n")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["grade", str(subs), "--source", str(FIXTURE), "--out", str(out), "--manual", str(good),
                     "--timeout", "20", *grading]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = {(r["student"], r["notebook"], r["exercise"]): r for r in csv.DictReader(f)}
    assert rows["alice", NB, "why_shuffle"]["points"] == "1.5"
    assert rows["alice", NB, "why_shuffle"]["message"] == "graded by hand: 1.5 of 2"
    assert rows["bob", NB, "why_shuffle"]["points"] == ""
    assert (rows["alice", NB, "TOTAL"]["points"], rows["alice", NB, "TOTAL"]["max_points"]) == ("7.5", "8")
    assert (rows["alice", "ALL", "TOTAL"]["points"], rows["bob", "ALL", "TOTAL"]["points"]) == ("7.5", "6")
    feedback = (out.parent / "feedback" / "alice.md").read_text(encoding="utf-8")
    assert "## exercises.ipynb: 7.5 of 8 points (6 of 6 autograded, 1.5 of 2 by hand)" in feedback
    assert "Total: 7.5 of 13 points (6 of 11 autograded, 1.5 of 2 by hand)" in feedback     # steps.ipynb: missing
    assert "Model answer and rubric (instructor notebook):" in feedback
    assert "> Without it, each output group sees only its own input group" in feedback
