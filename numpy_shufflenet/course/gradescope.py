r"""A Gradescope autograder: the same sandboxed grader, one submission per container.

``python -m numpy_shufflenet make-autograder --source notebooks --out autograder.zip`` (or
:func:`make_autograder`) writes the zip file Gradescope asks for (its "Autograder Specifications": ``setup.sh`` and
``run_autograder`` at the top of the archive); upload it as the assignment's autograder. It holds:

==========================  ==========================================================================================
``setup.sh``                run once when Gradescope builds the image (as root): installs Python, bubblewrap and
                            the Python packages of ``requirements.txt``
``run_autograder``          run once per submission: grades ``/autograder/submission/`` and writes
                            ``/autograder/results/results.json``; the root folder is ``$AUTOGRADER_ROOT`` when set
                            (for testing the bundle on your machine), the Python ``$AUTOGRADER_PYTHON``
``numpy_shufflenet/``       this package, with its exercise catalogue and the runner
``notebooks/``              the instructor notebooks (made readable by root only before the students' code runs)
``config.json``             the notebooks, the catalogue, the time and memory limits
==========================  ==========================================================================================

A run (``python -m numpy_shufflenet.course.gradescope ROOT``, which ``run_autograder`` calls) finds each notebook
of the bundle among the submitted files by its name (a single submitted notebook is taken for a single-notebook
bundle whatever its name), grades it with :func:`~numpy_shufflenet.course.autograde.grade_notebook` (the runner
under bubblewrap when the container allows it, else as an unprivileged user, as Gradescope's security advice
has it), and writes ``results.json``: ``score`` (the autograded points), ``execution_time``, ``output`` (a summary,
and the written answers left to grade by hand), ``visibility``, ``stdout_visibility: hidden`` and one test per
exercise with ``name``, ``number``, ``score``, ``max_score``, ``output`` (the catalogue's message), ``tags`` and
``visibility``. Written answers are not tests: grade them by hand in Gradescope (a separate question). A failure
of the autograder itself still writes a ``results.json``, with score 0 and the error for the instructor.
"""

import json
import os
import secrets
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from .autograde import (DEFAULT_CATALOGUE, DEFAULT_TIMEOUT, grade_notebook, load_assignment, load_catalogue,
                        make_sandbox)

__all__ = ["REQUIREMENTS", "make_autograder", "run", "results_json", "main"]

REQUIREMENTS = ("numpy>=1.24", "matplotlib>=3.6", "tqdm>=4.60", "nbformat>=5.7")
PACKAGE = Path(__file__).resolve().parents[1]

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
apt-get update
apt-get install -y python3 python3-pip bubblewrap util-linux
python3 -m pip install -r /autograder/source/requirements.txt \\
    || python3 -m pip install --break-system-packages -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission, as root. AUTOGRADER_ROOT (default /autograder) and AUTOGRADER_PYTHON
# (default python3) let it run on a copy of that tree elsewhere.
set -euo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
python="${AUTOGRADER_PYTHON:-python3}"
mkdir -p "$root/results"
chmod 700 "$root/source/notebooks" "$root/results"     # the students' code never reads these
cd "$root/source"
exec env PYTHONPATH="$root/source" "$python" -m numpy_shufflenet.course.gradescope "$root"
"""


def _package_files():
    """``(path, name in the zip)`` of this package's files (source and data, no caches)."""
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            yield path, f"numpy_shufflenet/{path.relative_to(PACKAGE).as_posix()}"


def make_autograder(source="notebooks", out="autograder.zip", catalogue=None, timeout=DEFAULT_TIMEOUT,
                    memory=None):
    """Write the Gradescope autograder ``out`` for the notebooks of ``source`` (a folder, or one notebook) that
    have exercises in ``catalogue``; returns ``(path, [notebook names])``. ``ValueError`` (before anything is
    written) when a notebook does not match the catalogue, or none has exercises."""
    source, out = Path(source), Path(out)
    paths = [source] if source.suffix == ".ipynb" else sorted(source.glob("*.ipynb"))
    if not source.exists() or not paths:
        raise ValueError(f"make-autograder: --source {str(source)!r} is not a notebook or a folder of notebooks")
    if out.is_dir():
        raise ValueError(f"make-autograder: --out {str(out)!r} is a directory, expected a .zip file name")
    module = load_catalogue(catalogue)
    assignments = [(p, a) for p, a in ((p, load_assignment(p, module)) for p in paths) if a is not None]
    if not assignments:
        raise ValueError(f"make-autograder: --source {str(source)!r} holds no notebook with exercises in the "
                         f"catalogue")
    catalogue_file = isinstance(catalogue, (str, os.PathLike)) and str(catalogue).endswith(".py")
    config = {"notebooks": [a.name for _, a in assignments], "timeout": timeout, "memory": memory,
              "catalogue": "catalogue.py" if catalogue_file else (catalogue or DEFAULT_CATALOGUE)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text, mode in (("setup.sh", SETUP_SH, 0o755), ("run_autograder", RUN_AUTOGRADER, 0o755),
                                 ("requirements.txt", "\n".join(REQUIREMENTS) + "\n", 0o644),
                                 ("config.json", json.dumps(config, indent=1) + "\n", 0o644)):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
        for path, name in _package_files():
            z.write(path, name)
        for path, assignment in assignments:
            z.write(path, f"notebooks/{assignment.name}")
        if catalogue_file:
            z.write(catalogue, "catalogue.py")
    return out, config["notebooks"]


# ----------------------------------------------------------------------------------------------------------------
# one run, in the container
# ----------------------------------------------------------------------------------------------------------------
def _find_submission(folder, name, single):
    """The submitted file for the notebook ``name``: the file of that name anywhere under ``folder``, else (for a
    single-notebook bundle) the only ``.ipynb`` submitted; ``(path or None, note)``."""
    found = sorted(p for p in Path(folder).rglob(name) if p.is_file() and not p.is_symlink())
    if found:
        return found[0], ""
    if single:
        notebooks = sorted(p for p in Path(folder).rglob("*.ipynb") if p.is_file() and not p.is_symlink()
                           and ".ipynb_checkpoints" not in p.parts)
        if len(notebooks) == 1:
            return notebooks[0], f"graded {notebooks[0].name} as {name}"
    return None, ""


def results_json(grades, seconds, notes=()):
    """The ``results.json`` document (a dict) of a list of :class:`~numpy_shufflenet.course.autograde.Grade`."""
    tests, by_hand, numbers = [], [], {}
    for g in grades:
        if g.manual:
            by_hand.append(f"{g.notebook}: {g.exercise} ({g.max_points:g} points): {g.message}")
            continue
        stem = Path(g.notebook).stem
        section = numbers.setdefault(stem, [len(numbers) + 1, 0])
        section[1] += 1
        output = g.message + (f"\n\n{g.details}" if g.details and g.status != "passed" else "")
        tests.append({"name": f"{stem}: {g.exercise}", "number": f"{section[0]}.{section[1]}",
                      "score": float(g.points), "max_score": float(g.max_points), "output": output,
                      "tags": [stem, g.status], "visibility": "visible"})
    score = sum(t["score"] for t in tests)
    most = sum(t["max_score"] for t in tests)
    lines = [f"Autograded: {score:g} of {most:g} points.", *notes]
    if by_hand:
        lines += ["", "Graded by hand (not in this score):", *by_hand]
    return {"score": score, "execution_time": round(seconds), "output": "\n".join(lines), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}


def run(root):
    """Grade the submission of a Gradescope tree ``root`` (``source/``, ``submission/``, ``results/``) and
    write ``results/results.json``; returns the document written."""
    root = Path(root)
    start = time.monotonic()
    config = json.loads((root / "source" / "config.json").read_text(encoding="utf-8"))
    catalogue = config["catalogue"]
    catalogue = str(root / "source" / catalogue) if catalogue.endswith(".py") else catalogue
    module = load_catalogue(catalogue)
    assignments = [load_assignment(root / "source" / "notebooks" / name, module) for name in config["notebooks"]]
    notes = []
    log = notes.append
    try:
        sandbox = make_sandbox("auto", config.get("timeout") or DEFAULT_TIMEOUT, config.get("memory"))
    except ValueError as err:                            # no namespaces in this container: its own isolation
        print(f"bubblewrap is not available here ({err}); running the students' code without it", flush=True)
        sandbox = make_sandbox("none", config.get("timeout") or DEFAULT_TIMEOUT, config.get("memory"),
                               log=lambda line: print(line, flush=True))
    seed = secrets.randbits(64)
    print(f"sandbox: {sandbox.describe()}; seed {seed}", flush=True)
    grades = []
    with tempfile.TemporaryDirectory(prefix="numpy_shufflenet_gradescope_") as work:
        os.chmod(work, 0o711)
        for assignment in assignments:
            path, note = _find_submission(root / "submission", assignment.name, len(assignments) == 1)
            if note:
                log(note)
            grades += grade_notebook(assignment, path or root / "submission" / assignment.name, "submission",
                                     sandbox, seed, 0, work)
    document = results_json(grades, time.monotonic() - start, notes)
    _write_results(root, document)
    return document


def _write_results(root, document):
    results = Path(root) / "results"
    results.mkdir(parents=True, exist_ok=True)
    tmp = results / "results.json.tmp"
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(tmp, results / "results.json")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    start = time.monotonic()
    try:
        run(root)
    except Exception as err:                             # still a results.json, with the error for the instructor
        traceback.print_exc()
        output = (f"The autograder failed: {type(err).__name__}: {err}. Please tell your instructor (the details "
                  f"are in the autograder's log).")
        _write_results(root, {"score": 0.0, "execution_time": round(time.monotonic() - start), "output": output,
                              "stdout_visibility": "hidden", "tests": []})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
