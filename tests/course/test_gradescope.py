"""The Gradescope autograder (:mod:`numpy_shufflenet.course.gradescope`, ``make-autograder``).

The zip is built for the fixture notebooks and unpacked into a temporary folder laid out as Gradescope's
``/autograder`` (``source/`` holding the zip's contents, ``submission/``, ``results/``); its own
``run_autograder`` then runs with ``AUTOGRADER_ROOT`` pointing there, as Gradescope would run it, once per
submission: the instructor's notebooks (full marks), the untouched student copies (0), and a wrong submission.
Each ``results.json`` is checked against Gradescope's specification: the fields, their types, the visibility
values, and that ``score`` is the sum of the tests' scores.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

from numpy_shufflenet.cli import main  # noqa: E402
from numpy_shufflenet.course import release  # noqa: E402

from conftest import GRADING_CATALOGUE, GRADING_FIXTURE  # noqa: E402

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    assert main(["make-autograder", "--source", str(GRADING_FIXTURE), "--out", str(out), "--catalogue",
                 str(GRADING_CATALOGUE), "--timeout", "20"]) == 0
    return out


def test_the_zip_holds_what_gradescope_asks_for(bundle):
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
        config = json.loads(z.read("config.json"))
        setup = z.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "requirements.txt", "config.json", "catalogue.py",
            "notebooks/exercises.ipynb", "notebooks/steps.ipynb", "numpy_shufflenet/course/runner.py",
            "numpy_shufflenet/course/autograde.py", "numpy_shufflenet/__init__.py"} <= names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert config == {"notebooks": ["exercises.ipynb", "steps.ipynb"], "timeout": 20.0, "memory": None,
                      "catalogue": "catalogue.py"}
    assert "apt-get install -y python3 python3-pip bubblewrap" in setup


def gradescope_run(tmp_path, bundle, files):
    """Lay out ``tmp_path`` as /autograder, put ``files`` ({name: notebook}) into submission/, run the bundle's
    run_autograder there; the results.json it wrote."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    for name, nb in files.items():
        nbformat.write(nb, root / "submission" / name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{root}/source" in proc.stdout or "sandbox:" in proc.stdout       # its log goes to stdout (hidden)
    assert oct(os.stat(root / "source" / "notebooks").st_mode & 0o777) == "0o700"
    return json.loads((root / "results" / "results.json").read_text())


def check_results(document, max_score=11.0):
    """The fields of Gradescope's results.json, their types, and the totals."""
    assert set(document) == {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}
    assert isinstance(document["score"], float) and isinstance(document["execution_time"], int)
    assert isinstance(document["output"], str)
    assert document["visibility"] in VISIBILITY and document["stdout_visibility"] == "hidden"
    for test in document["tests"]:
        assert set(test) == {"name", "number", "score", "max_score", "output", "tags", "visibility"}
        assert isinstance(test["score"], float) and 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in VISIBILITY and isinstance(test["output"], str) and test["output"]
    assert document["score"] == sum(t["score"] for t in document["tests"])
    assert sum(t["max_score"] for t in document["tests"]) == max_score
    assert [t["number"] for t in document["tests"]] == ["1.1", "1.2", "1.3", "2.1", "2.2", "2.3"]
    return {t["name"]: (t["score"], t["tags"][1]) for t in document["tests"]}


def read(name):
    return nbformat.read(GRADING_FIXTURE / name, as_version=4)


def test_instructor_notebooks_get_full_marks(tmp_path, bundle, sandbox_mode):
    document = gradescope_run(tmp_path, bundle, {"exercises.ipynb": read("exercises.ipynb"),
                                                 "steps.ipynb": read("steps.ipynb")})
    print(json.dumps(document, indent=1))
    assert check_results(document) == {"exercises: double": (2, "passed"), "exercises: shuffle": (3, "passed"),
                                       "exercises: depthwise_params": (1, "passed"),
                                       "steps: sgd_step": (2, "passed"), "steps: relu_pair": (2, "passed"),
                                       "steps: relu_energy": (1, "passed")}
    assert document["score"] == 11.0
    assert "Graded by hand (not in this score):\nexercises.ipynb: why_shuffle (2 points)" in document["output"]


def test_blank_copies_get_zero(tmp_path, bundle):
    blank = {name: release.make_student_notebook(read(name), name) for name in ("exercises.ipynb", "steps.ipynb")}
    document = gradescope_run(tmp_path, bundle, blank)
    print(json.dumps(document, indent=1))
    assert set(check_results(document).values()) == {(0, "not done")} and document["score"] == 0


def test_a_wrong_submission_gets_what_it_earned(tmp_path, bundle):
    nb = read("exercises.ipynb")
    next(c for c in nb.cells if c.id == "shuffle").source = "def shuffle(x, groups):\n    return x * 1"
    nested = {"exercises.ipynb": nb}                    # steps.ipynb not submitted
    document = gradescope_run(tmp_path, bundle, nested)
    print(json.dumps(document, indent=1))
    got = check_results(document)
    assert got == {"exercises: double": (2, "passed"), "exercises: shuffle": (0, "failed"),
                   "exercises: depthwise_params": (1, "passed"), "steps: sgd_step": (0, "missing"),
                   "steps: relu_pair": (0, "missing"), "steps: relu_energy": (0, "missing")}
    assert document["score"] == 3.0
    shuffle = next(t for t in document["tests"] if t["name"] == "exercises: shuffle")
    assert "shuffle is wrong for C =" in shuffle["output"]


def test_a_single_notebook_bundle_takes_a_renamed_file(tmp_path):
    out = tmp_path / "one.zip"
    assert main(["make-autograder", "--source", str(GRADING_FIXTURE / "steps.ipynb"), "--out", str(out),
                 "--catalogue", str(GRADING_CATALOGUE)]) == 0
    document = gradescope_run(tmp_path, out, {"steps (2).ipynb": read("steps.ipynb")})
    assert document["score"] == 5.0 and "graded steps (2).ipynb as steps.ipynb" in document["output"]


def test_a_failing_autograder_still_writes_results(tmp_path, bundle):
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    (root / "source" / "config.json").write_text("{not json")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1 and "JSONDecodeError" in proc.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    assert document["score"] == 0.0 and document["tests"] == []
    assert document["output"].startswith("The autograder failed: JSONDecodeError")


def test_make_autograder_argument_errors(tmp_path, capsys):
    assert main(["make-autograder", "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "a.zip")]) == 2
    assert "is not a notebook or a folder of notebooks" in capsys.readouterr().err
    assert main(["make-autograder", "--source", str(GRADING_FIXTURE), "--out", str(tmp_path), "--catalogue",
                 str(GRADING_CATALOGUE)]) == 2
    assert "is a directory, expected a .zip file name" in capsys.readouterr().err
    assert not list(Path(tmp_path).glob("*.zip"))


def _world_readable_python():
    """A Python installation every user can run that imports this package's grader and nbformat (Gradescope's
    kind: the system's)."""
    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        return None
    proc = subprocess.run([python, "-c", "import nbformat, numpy_shufflenet.course.gradescope"], capture_output=True,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"})
    return python if proc.returncode == 0 else None


def test_without_bubblewrap_the_students_code_runs_as_another_user(tmp_path, bundle, request):
    """A container that refuses namespaces (Docker's default): the bundle falls back to --sandbox none, where,
    as root, the runner drops to an unprivileged user id and the notebooks are root's alone; a cell that reads
    the instructor notebook gets PermissionError."""
    python = _world_readable_python()
    if os.geteuid() != 0 or python is None:
        pytest.skip("needs root and a Python that every user can run with this package's requirements and nbformat "
                    "(Debian: apt-get install python3-numpy python3-matplotlib python3-tqdm python3-nbformat)")
    tools = tmp_path / "bin"                             # a PATH with everything run_autograder uses but bwrap
    tools.mkdir()
    for tool in ("bash", "env", "chmod", "mkdir", "setpriv", "prlimit"):
        os.symlink(shutil.which(tool), tools / tool)
    root = Path(tempfile.mkdtemp(prefix="autograder_"))   # as /autograder: every user may enter it
    os.chmod(root, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    nb = read("exercises.ipynb")
    next(c for c in nb.cells if c.id == "double").source = (
        f"solution = open({str(root / 'source' / 'notebooks' / 'exercises.ipynb')!r}).read()\n"
        "def double(x):\n    return 2 * x")
    nbformat.write(nb, root / "submission" / "exercises.ipynb")
    env = {"PATH": str(tools), "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": python}
    proc = subprocess.run([str(tools / "bash"), str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "as an unprivileged user id" in proc.stdout
    document = json.loads((root / "results" / "results.json").read_text())
    tests = {t["name"]: (t["score"], t["output"]) for t in document["tests"]}
    assert tests["exercises: double"][0] == 0 and "PermissionError" in tests["exercises: double"][1]
    assert tests["exercises: shuffle"][0] == 3 and document["score"] == 4.0
