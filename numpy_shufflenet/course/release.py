r"""Student copies of exercise notebooks: blank out the solutions, drop the hidden tests.

An instructor writes one notebook *with* its solutions, and marks them with nbgrader's marker lines (only the
marker syntax is borrowed; nbgrader itself is not needed)::

    def channel_shuffle_backward(dout, groups):
        ### BEGIN SOLUTION
        N, C, H, W = dout.shape
        return dout.reshape(N, C // groups, groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)
        ### END SOLUTION

    ### BEGIN HIDDEN TESTS
    assert ...            # extra checks that students do not see
    ### END HIDDEN TESTS

``python -m numpy_shufflenet make-student SRC_DIR DEST_DIR`` (or :func:`make_student_dir`) writes, for every
``*.ipynb`` in ``SRC_DIR``, a student copy of the same name in ``DEST_DIR``:

* each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region, markers included, becomes a stub at the
  indentation of its ``BEGIN`` marker::

        # YOUR CODE HERE
        raise NotImplementedError("exercise: channel_shuffle_backward")

  The hint names the function the region sits in (the nearest enclosing ``def``), or else the cell's id;
* each ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region, markers included, is deleted; blank lines
  left at the end of a cell are trimmed, and a code cell left with nothing but blank lines is dropped;
* every code cell loses its outputs and execution count; everything else (markdown, cell ids, tags, notebook
  metadata) is copied unchanged.

Rules for the markers:

* a marker is a line of its own: exactly ``### BEGIN SOLUTION``, ``### END SOLUTION``, ``### BEGIN HIDDEN
  TESTS`` or ``### END HIDDEN TESTS`` after any indentation (trailing spaces allowed);
* markers work in **code cells only**. A region opens and closes in the same cell; regions do not nest.
  A solution region and a hidden-test region may sit one after the other in a cell;
* in a code cell, anything that looks like a marker but is not exactly one is an error rather than silently
  left in, because it would leak a solution into the student copy: a comment line mentioning BEGIN or END and
  SOLUTION or HIDDEN in any spelling (``# BEGIN SOLUTION``, ``### BEGIN SOLUTIONS``, ``###END SOLUTION``,
  ``### end solution``, ``## BEGIN_HIDDEN_TESTS``), and any line holding the text ``BEGIN SOLUTION``, ``END
  SOLUTION``, ``BEGIN HIDDEN TESTS`` or ``END HIDDEN TESTS`` after other text (nbgrader would take such a line
  for a marker). An exact marker line in a markdown or raw cell is an error too. (Mentioning a marker inside a
  sentence of a markdown cell, e.g. in backquotes, is fine: only whole lines count there.)

Cells may carry nbgrader's cell metadata (schema 3, ``metadata.nbgrader``; see :func:`check_nbgrader`). A
notebook that has any is checked against nbgrader's rules and the course's conventions before it is converted,
and a **written answer** (a markdown cell with ``solution: true``) becomes ``YOUR ANSWER HERE`` in the student
copy, as nbgrader does.

Every violation raises ``ValueError`` naming the notebook, the cell (index and id) and the line. Nothing is
written to ``DEST_DIR`` unless every notebook of ``SRC_DIR`` converts, and an existing ``DEST_DIR`` that is not
empty is refused unless ``force=True`` (``--force``), so an earlier set of copies is never overwritten by
accident.

Only :mod:`nbformat` is used (imported by the functions that read and write files, so that the rest of the
module works without it). Whether to commit the student copies is the instructor's choice; the tests
(``tests/test_student.py``) generate them and check that no solution text survives, that every stub compiles,
and that "Run All" on a student copy reaches its last cell.
"""

import copy
import json
import re
from pathlib import Path

__all__ = [
    "BEGIN_SOLUTION", "END_SOLUTION", "BEGIN_HIDDEN", "END_HIDDEN", "STUB_COMMENT", "ANSWER_STUB",
    "MAX_NOTEBOOK_BYTES", "Region", "find_regions", "student_source", "check_notebook", "nbgrader_meta",
    "check_nbgrader", "exercise_of_check", "make_student_notebook", "strip_outputs", "read_notebook",
    "make_student_dir",
]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
STUB_COMMENT = "# YOUR CODE HERE"
ANSWER_STUB = "YOUR ANSWER HERE"
MAX_NOTEBOOK_BYTES = 50 * 2**20      # a notebook file larger than this is refused before it is read

_MARKERS = {BEGIN_SOLUTION: ("begin", "solution"), END_SOLUTION: ("end", "solution"),
            BEGIN_HIDDEN: ("begin", "hidden"), END_HIDDEN: ("end", "hidden")}
_KIND_NAME = {"solution": "SOLUTION", "hidden": "HIDDEN TESTS"}
# Text that nbgrader takes for a marker wherever it sits in a line.
_MARKER_TEXT = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)", re.IGNORECASE)
# A comment line that talks about a marker, e.g. '# BEGIN SOLUTION', '###END_SOLUTION', '## begin hidden':
# after its '#'s, BEGIN or END and then SOLUTION or HIDDEN, whatever separates them.
_NEAR_MISS = re.compile(r"^#.*(BEGIN|END)[\W_]*(SOLUTION|HIDDEN)", re.IGNORECASE)
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)")


class Region:
    """One marked region of a cell: ``kind`` is ``"solution"`` or ``"hidden"``; ``begin`` and ``end`` are the
    0-based line numbers of its two marker lines; ``indent`` is the ``BEGIN`` marker's indentation."""

    __slots__ = ("kind", "begin", "end", "indent")

    def __init__(self, kind, begin, end, indent):
        self.kind, self.begin, self.end, self.indent = kind, begin, end, indent

    def __repr__(self):
        return f"Region({self.kind!r}, begin={self.begin}, end={self.end}, indent={self.indent!r})"


def _marker(line):
    """``(action, kind)`` when ``line`` is a marker line, else None; ValueError for a malformed marker."""
    text = line.strip()
    if text in _MARKERS:
        return _MARKERS[text]
    if _NEAR_MISS.match(text) or _MARKER_TEXT.search(text):
        raise ValueError(f"malformed marker {text!r}: expected exactly one of {', '.join(_MARKERS)} "
                         f"on a line of its own")
    return None


def find_regions(source, where="cell"):
    """The marked regions of one code cell's ``source``, in order.

    Raises ``ValueError`` (prefixed with ``where``) for an ``END`` without its ``BEGIN``, a ``BEGIN`` never
    closed in the cell, one region opened inside another, or a malformed marker.
    """
    regions, open_kind, open_line, open_indent = [], None, None, ""
    for i, line in enumerate(source.splitlines()):
        try:
            found = _marker(line)
        except ValueError as err:
            raise ValueError(f"{where}, line {i + 1}: {err}") from None
        if found is None:
            continue
        action, kind = found
        if action == "begin":
            if open_kind is not None:
                raise ValueError(f"{where}, line {i + 1}: nested markers: '### BEGIN {_KIND_NAME[kind]}' inside "
                                 f"the {_KIND_NAME[open_kind]} region opened at line {open_line + 1} (expected "
                                 f"'### END {_KIND_NAME[open_kind]}' first)")
            open_kind, open_line, open_indent = kind, i, line[:len(line) - len(line.lstrip())]
        else:
            if open_kind is None:
                raise ValueError(f"{where}, line {i + 1}: unbalanced markers: '### END {_KIND_NAME[kind]}' "
                                 f"without a '### BEGIN {_KIND_NAME[kind]}' before it")
            if open_kind != kind:
                raise ValueError(f"{where}, line {i + 1}: unbalanced markers: '### END {_KIND_NAME[kind]}' closes "
                                 f"the {_KIND_NAME[open_kind]} region opened at line {open_line + 1} (expected "
                                 f"'### END {_KIND_NAME[open_kind]}')")
            regions.append(Region(kind, open_line, i, open_indent))
            open_kind = None
    if open_kind is not None:
        raise ValueError(f"{where}, line {open_line + 1}: unbalanced markers: '### BEGIN {_KIND_NAME[open_kind]}' "
                         f"is never closed in this cell (expected '### END {_KIND_NAME[open_kind]}'; a region "
                         f"cannot span cells)")
    return regions


def _hint(lines, region, fallback):
    """The name of the nearest ``def`` enclosing the region, else ``fallback``."""
    for line in reversed(lines[:region.begin]):
        m = _DEF.match(line)
        if m and len(m.group(1)) < len(region.indent):
            return m.group(2)
    return fallback


def student_source(source, where="cell", fallback_hint="exercise"):
    """One code cell's source with its solution regions stubbed and its hidden-test regions removed."""
    lines = source.splitlines()
    regions = find_regions(source, where)
    out, pos = [], 0
    for r in regions:
        out.extend(lines[pos:r.begin])
        if r.kind == "solution":
            message = json.dumps(f"exercise: {_hint(lines, r, fallback_hint)}")
            out += [f"{r.indent}{STUB_COMMENT}", f"{r.indent}raise NotImplementedError({message})"]
        pos = r.end + 1
    out.extend(lines[pos:])
    while regions and out and not out[-1].strip():        # no blank tail where a hidden-test region was
        out.pop()
    return "\n".join(out)


def _cell_label(name, index, cell):
    cell_id = cell.get("id")
    return f"{name}: cell {index}" + (f" (id {cell_id})" if cell_id else "")


def check_notebook(nb, name="notebook"):
    """Check every marker of a notebook; return ``{cell_index: [Region, ...]}`` for the code cells that have some.

    Raises ``ValueError`` naming ``name`` and the cell for any unbalanced, nested or malformed marker, and for a
    marker line in a markdown or raw cell (markers work in code cells only).
    """
    found = {}
    for index, cell in enumerate(nb.cells):
        where = _cell_label(name, index, cell)
        if cell.cell_type == "code":
            regions = find_regions(cell.source, where)
            if regions:
                found[index] = regions
            continue
        for i, line in enumerate(cell.source.splitlines()):
            if line.strip() in _MARKERS:
                raise ValueError(f"{where}, line {i + 1}: marker {line.strip()!r} in a {cell.cell_type} cell: "
                                 f"markers work in code cells only (expected it in a code cell, or inside a "
                                 f"sentence)")
    return found


def nbgrader_meta(cell):
    """A cell's nbgrader metadata as a dict (``{}`` when it has none)."""
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


_NBGRADER_KEYS = {"schema_version", "grade_id", "solution", "grade", "locked", "points", "task", "checksum",
                  "cell_type"}
_GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
_CHECK_ID = re.compile(r"^(?P<name>.+)_check\d*$")


def exercise_of_check(grade_id):
    """The exercise a check cell's ``grade_id`` names: ``"f"`` for ``"f_check"``, ``"f_check2"``, ...; else None."""
    m = _CHECK_ID.match(grade_id) if isinstance(grade_id, str) else None
    return m.group("name") if m else None


def check_nbgrader(nb, name="notebook"):
    """Check the nbgrader cell metadata of a notebook against nbgrader's schema 3 and the course's conventions.

    A notebook without any ``metadata.nbgrader`` passes (there is nothing to check). Otherwise, for every cell:

    * ``metadata.nbgrader`` is a dict with ``schema_version`` 3 and boolean ``solution``, ``grade`` and
      ``locked``, and no key nbgrader does not know;
    * a cell that is a solution, graded or locked has a non-empty ``grade_id`` of letters, digits, ``_`` and
      ``-``, unique in the notebook;
    * a graded cell has ``points``, a number > 0; no other cell has any;
    * a code **solution cell** (``solution: true, grade: false``) holds a ``### BEGIN SOLUTION`` region, and only
      solution cells hold the text ``BEGIN SOLUTION`` or ``END SOLUTION`` anywhere (nbgrader matches it in any
      line of any cell);
    * a **check cell** (code, ``grade: true, solution: false``) is locked, and its ``grade_id`` is
      ``<name>_check``, ``<name>_check2``, ... where ``<name>`` names the exercise: the ``grade_id`` of its
      solution cell, above it (a check of the notebook's earlier work as a whole, such as a training run, may
      have no solution cell of its own); only check cells hold the text ``BEGIN HIDDEN TESTS`` or ``END HIDDEN
      TESTS``;
    * a markdown cell with nbgrader metadata is either a **written answer** (``solution: true, grade: true``,
      not locked) or a plain locked cell;
    * every code solution cell has at least one check cell.

    Raises ``ValueError`` listing every problem (notebook, cell index and id, what was expected and what was
    found); returns the number of cells with nbgrader metadata.
    """
    if not any("nbgrader" in cell.get("metadata", {}) for cell in nb.cells):
        return 0
    problems, ids, solutions, checked, check_names = [], {}, {}, set(), {}
    count = 0
    for index, cell in enumerate(nb.cells):
        where = _cell_label(name, index, cell)
        raw = cell.get("metadata", {}).get("nbgrader")
        text = cell.source
        has_solution_text = bool(re.search(r"(BEGIN|END) SOLUTION", text))
        has_hidden_text = bool(re.search(r"(BEGIN|END) HIDDEN TESTS", text))
        if raw is None:
            if has_solution_text or has_hidden_text:
                problems.append(f"{where}: holds marker text but has no nbgrader metadata (expected a solution "
                                f"or check cell)")
            continue
        count += 1
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected metadata.nbgrader to be a dict, got {type(raw).__name__}")
            continue
        unknown = sorted(set(raw) - _NBGRADER_KEYS)
        if unknown:
            problems.append(f"{where}: unknown nbgrader keys {unknown}")
        if raw.get("schema_version") != 3:
            problems.append(f"{where}: expected nbgrader schema_version 3, got {raw.get('schema_version')!r}")
        flags = {}
        for key in ("solution", "grade", "locked"):
            if not isinstance(raw.get(key), bool):
                problems.append(f"{where}: expected nbgrader {key!r} to be true or false, got {raw.get(key)!r}")
            flags[key] = raw.get(key) is True
        solution, grade, locked = flags["solution"], flags["grade"], flags["locked"]
        grade_id = raw.get("grade_id")
        if solution or grade or locked:
            if not isinstance(grade_id, str) or not _GRADE_ID.match(grade_id):
                problems.append(f"{where}: expected a grade_id of letters, digits, '_' and '-', got {grade_id!r}")
                grade_id = None
            elif grade_id in ids:
                problems.append(f"{where}: duplicate grade_id {grade_id!r} (also cell {ids[grade_id]})")
            else:
                ids[grade_id] = index
        points = raw.get("points")
        if grade:
            if isinstance(points, bool) or not isinstance(points, (int, float)) or not points > 0:
                problems.append(f"{where}: expected the graded cell's points to be a number > 0, got {points!r}")
        elif "points" in raw:
            problems.append(f"{where}: points {points!r} on a cell that is not graded (expected no points)")
        code = cell.cell_type == "code"
        if has_solution_text and not solution:
            problems.append(f"{where}: marker text 'BEGIN/END SOLUTION' in a cell that is not a solution cell")
        if has_hidden_text and not (code and grade and not solution):
            problems.append(f"{where}: marker text 'BEGIN/END HIDDEN TESTS' outside a check cell")
        if code and solution and not grade:
            if BEGIN_SOLUTION not in text:
                problems.append(f"{where}: a solution cell without a '{BEGIN_SOLUTION}' region (nbgrader would "
                                f"blank the whole cell)")
            if locked:
                problems.append(f"{where}: a solution cell must not be locked")
            if grade_id:
                solutions[grade_id] = index
        elif code and grade and not solution:
            if not locked:
                problems.append(f"{where}: a check cell must be locked (expected locked: true)")
            exercise = exercise_of_check(grade_id)
            if grade_id and exercise is None:
                problems.append(f"{where}: check cell grade_id {grade_id!r}: expected '<name>_check' (or "
                                f"'<name>_check2', ...), '<name>' naming the exercise (its solution cell, if "
                                f"it has one)")
            elif exercise is not None:
                checked.add(exercise)
                check_names.setdefault(exercise, index)
        elif cell.cell_type == "markdown" and (solution or grade):
            if not (solution and grade):
                problems.append(f"{where}: a markdown cell with nbgrader metadata is a written answer (expected "
                                f"solution: true and grade: true) or a locked cell")
            elif locked:
                problems.append(f"{where}: a written answer must not be locked")
        elif cell.cell_type == "raw" and (solution or grade):
            problems.append(f"{where}: a raw cell cannot be a solution or graded cell")
    for exercise, index in check_names.items():
        if exercise in solutions and solutions[exercise] > index:
            problems.append(f"{name}: cell {index}: check '{exercise}_check...' comes before its solution "
                            f"cell {solutions[exercise]} (expected it below)")
    for grade_id in solutions:
        if grade_id not in checked:
            problems.append(f"{name}: cell {solutions[grade_id]}: solution {grade_id!r} has no check cell "
                            f"(expected a cell with grade_id '{grade_id}_check' below it)")
    if problems:
        raise ValueError(f"{name}: nbgrader metadata: " + "; ".join(problems))
    return count


def strip_outputs(nb):
    """Remove the outputs and execution counts of every code cell, in place; returns ``nb``."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def make_student_notebook(nb, name="notebook"):
    """The student copy of ``nb`` (a new notebook; ``nb`` is not modified). ``name`` labels error messages."""
    check_notebook(nb, name)
    check_nbgrader(nb, name)
    student = copy.deepcopy(nb)
    cells = []
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "code":
            original = cell.source
            cell.source = student_source(original, _cell_label(name, index, cell),
                                         fallback_hint=cell.get("id") or f"cell {index}")
            if cell.source.strip() == "" and original.strip() != "":
                continue                                    # the cell held hidden tests only
        elif cell.cell_type == "markdown" and nbgrader_meta(cell).get("solution") is True:
            cell.source = ANSWER_STUB                       # a written answer: the student writes it
        cells.append(cell)
    student.cells = cells
    return strip_outputs(student)


def _size(n):
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def read_notebook(path, what="notebook", max_bytes=MAX_NOTEBOOK_BYTES, validate=True):
    """Read the notebook file ``path`` (converted to nbformat 4), treating it as untrusted.

    ``ValueError`` naming ``what`` and the path when it is a directory, is larger than ``max_bytes`` (checked
    before reading), is not UTF-8, is not valid JSON, is not a notebook (a JSON object with ``cells``, ``metadata``
    and ``nbformat``), or (with ``validate``) does not validate against the nbformat schema.
    """
    import nbformat                                          # the dev extra

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a directory, expected a notebook file")
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{what} {str(path)!r} is {_size(size)}, larger than the {_size(max_bytes)} a notebook "
                         f"may have")
    try:
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON (line {err.lineno}, column {err.colno}: "
                         f"{err.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {str(path)!r} is not a notebook: expected a JSON object, got a JSON "
                         f"{type(data).__name__}")
    missing = [key for key in ("cells", "metadata", "nbformat") if key not in data]
    if missing and not (data.get("nbformat") == 3 and "worksheets" in data):
        raise ValueError(f"{what} {str(path)!r} is not a notebook: it has no {', '.join(map(repr, missing))}")
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error={})
        if validate:
            nbformat.validate(nb)
    except Exception as err:                                 # nbformat raises many kinds for malformed input
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{what} {str(path)!r} is not a valid notebook: {first}") from None
    return nb


def make_student_dir(src_dir, dest_dir, force=False):
    """Write the student copy of every ``*.ipynb`` of ``src_dir`` into ``dest_dir`` (created if needed).

    Returns the list of written paths, sorted. ``ValueError`` when ``src_dir`` is not a directory or holds no
    notebook, when a ``*.ipynb`` in it is a directory, not valid JSON or not a notebook, when ``dest_dir`` is
    ``src_dir`` (it would overwrite the solutions), is a file or lies under one, when ``dest_dir`` exists and is
    not empty and ``force`` is false, or when any notebook has a marker or metadata error. In every error case
    nothing is written. With ``force``, copies of the same names are overwritten and other files are left alone.
    """
    import nbformat                                          # the dev extra

    from .._checks import check_out_dir

    src, dest = Path(src_dir), Path(dest_dir)
    if not src.is_dir():
        raise ValueError(f"make-student: expected SRC_DIR to be a directory, got {str(src_dir)!r}")
    check_out_dir(dest, "make-student: DEST_DIR")
    if dest.exists() and dest.resolve() == src.resolve():
        raise ValueError(f"make-student: DEST_DIR is SRC_DIR ({str(src_dir)!r}); expected another directory "
                         f"(the student copies would overwrite the solutions)")
    paths = sorted(src.glob("*.ipynb"))
    if not paths:
        raise ValueError(f"make-student: SRC_DIR {str(src_dir)!r} holds no .ipynb notebook")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise ValueError(f"make-student: DEST_DIR {str(dest_dir)!r} exists and is not empty; expected a new or "
                         f"empty directory (use --force to overwrite the copies in it)")
    converted = []
    for path in paths:
        nb = read_notebook(path, "make-student: SRC_DIR notebook")
        if not nb.metadata:
            raise ValueError(f"make-student: {path.name} has no notebook metadata (expected at least a kernelspec, "
                             f"so that the student copy opens with a Python kernel)")
        student = make_student_notebook(nb, path.name)
        nbformat.validate(student)
        target = dest / path.name
        if target.is_dir():
            raise ValueError(f"make-student: {str(target)!r} is a directory; expected a notebook file name")
        converted.append((target, student))
    dest.mkdir(parents=True, exist_ok=True)
    for path, student in converted:
        nbformat.write(student, path)
    return [path for path, _ in converted]
