"""The catalogue against the notebooks and the README.

* every exercise of the catalogue has its cells in its notebook: a solution cell with its ``grade_id`` (a code
  cell defining the function, or a markdown answer), a check cell ``<name>_check`` calling its face, with its
  points, tagged ``raises-exception`` and without hidden tests (nbgrader warns that such a cell's checksum
  changed); every graded cell of a notebook belongs to an exercise of the catalogue;
* every written answer of an instructor notebook holds a model answer and a rubric;
* nothing is answered early: no cell outside the solutions, in any notebook, holds a distinctive line of any
  solution;
* the README's exercise list names every exercise, and its counts are the catalogue's.
"""

import ast
import json
import re
from pathlib import Path

import pytest

from numpy_shufflenet.course.exercises import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
MIN_DISTINCTIVE = 25         # characters of a solution line long enough to give something away


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _source(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("exercise", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_every_exercise_has_its_cells(exercise):
    cells = _cells(NOTEBOOK_DIR / f"{exercise.notebook}.ipynb")
    by_id = {_meta(c).get("grade_id"): c for c in cells if _meta(c).get("grade_id")}
    if exercise.kind == "written":
        answer = by_id[exercise.name]
        assert answer["cell_type"] == "markdown" and _meta(answer)["points"] == exercise.points
        assert _meta(answer)["solution"] and _meta(answer)["grade"]
        return
    check = by_id[f"{exercise.name}_check"]
    assert _source(check).strip() == f"course.check_{exercise.name}({exercise.function})"
    assert check["metadata"].get("tags") == ["raises-exception"]
    assert _meta(check)["points"] == exercise.points and _meta(check)["locked"]
    if exercise.requires is None:                        # notebook 09's training checks earlier work as a whole
        solution = by_id[exercise.name]
        defined = [n.name for n in ast.parse(_source(solution)).body if isinstance(n, ast.FunctionDef)]
        given = [n.name for c in cells if c["cell_type"] == "code" and not _meta(c)
                 for n in ast.parse(_source(c)).body if isinstance(n, ast.FunctionDef)]
        assert exercise.function in defined + given
        assert cells.index(solution) < cells.index(check)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_graded_cell_belongs_to_the_catalogue_and_no_check_hides_tests(path):
    for cell in _cells(path):
        meta = _meta(cell)
        if not meta.get("grade"):
            continue
        name = meta["grade_id"] if meta.get("solution") else meta["grade_id"].removesuffix("_check")
        assert name in CATALOGUE and CATALOGUE[name].notebook == path.stem, meta["grade_id"]
        assert "HIDDEN TESTS" not in _source(cell), f"{path.name}: {meta['grade_id']} hides tests"


WRITTEN = [ex for ex in CATALOGUE.values() if ex.kind == "written"]


@pytest.mark.parametrize("exercise", WRITTEN, ids=[e.name for e in WRITTEN])
def test_every_written_answer_has_a_model_answer_and_a_rubric(exercise):
    cell = next(c for c in _cells(NOTEBOOK_DIR / f"{exercise.notebook}.ipynb")
                if _meta(c).get("grade_id") == exercise.name)
    text = _source(cell)
    assert text.startswith("**Model answer.**")
    rubric = re.search(r"\*\*Rubric\*\* \((\d+(?:\.\d+)?) points?\)\.", text)
    assert rubric and float(rubric.group(1)) == exercise.points


def _distinctive_lines():
    """``{line: notebook}`` of the solution lines long enough to give an answer away."""
    lines = {}
    for path in NOTEBOOKS:
        for cell in _cells(path):
            if cell["cell_type"] != "code" or not _meta(cell).get("solution"):
                continue
            inside = False
            for line in _source(cell).splitlines():
                text = line.split("#")[0].strip()
                if "BEGIN SOLUTION" in line or "END SOLUTION" in line:
                    inside = "BEGIN" in line
                elif inside and len(text) >= MIN_DISTINCTIVE:
                    lines[" ".join(text.split())] = path.name
    return lines


def test_nothing_is_answered_early():
    """No cell outside the solution cells (code or markdown, in any notebook: they are handed out together) holds
    a distinctive line of any solution."""
    solutions = _distinctive_lines()
    assert len(solutions) > 60
    leaks = []
    for path in NOTEBOOKS:
        for index, cell in enumerate(_cells(path)):
            if _meta(cell).get("solution"):
                continue
            for line in _source(cell).splitlines():
                text = " ".join(line.split("#")[0].strip().split())
                if text in solutions:
                    leaks.append(f"{path.name} cell {index}: {text!r} (a solution of {solutions[text]})")
    assert not leaks, "\n".join(leaks)


def test_the_readme_lists_every_exercise_with_the_catalogue_counts():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("**Exercises**")
    listing = readme[start:readme.index("\n\n", start)]
    missing = [ex.name for ex in CATALOGUE.values() if ex.kind == "function" and f"`{ex.function}`" not in listing
               and f"`{ex.name}`" not in listing]
    assert not missing, f"the README's exercise list lacks {missing}"
    functions = sum(ex.kind == "function" for ex in CATALOGUE.values())
    written = len(CATALOGUE) - functions
    points = sum(ex.points for ex in CATALOGUE.values())
    notebooks = len({ex.notebook for ex in CATALOGUE.values()})
    assert f"({len(CATALOGUE)} exercises in {notebooks} notebooks: {functions} functions and {written} written " \
           f"questions, {points:g} points" in listing
