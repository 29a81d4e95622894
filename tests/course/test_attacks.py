"""Attacks on the grader, each from a student's answer cell, graded in one run beside an honest student.

Each attacker submits the instructor's own notebook with the first exercise's cell (``double``) replaced by an
attack; its other two exercises keep right answers. The attacker is given everything the grader knows (the path
of the instructor notebook, the grader's process id, home folder, output folder and a listening port), as if
it had read the grader's command line. For each attack the test checks that it earns 0 for the exercise it
touches, that its other exercises and the honest student are graded as usual, and that it left no trace
outside its sandbox: no file in the grader's home, ``/tmp`` or output folder, no connection to the port, no
signal to the grader, no process left, no job folder left. :data:`ATTACKS` says, for each, what it tried and
what stopped it; the table is printed with ``-s``. These tests need bubblewrap (``.ci/run`` installs it).
"""

import csv
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

from numpy_shufflenet.cli import main  # noqa: E402

from conftest import GRADING_CATALOGUE, GRADING_FIXTURE  # noqa: E402

NOTEBOOK = "exercises.ipynb"
TIMEOUT = "5"
MEMORY = "1G"

# name: (the double cell, what it tried, what stopped it, expected status of double)
ATTACKS = {
    "replace the checks": ('''
class _Anything:
    def __getattr__(self, name):
        return lambda *a, **k: None
course = _Anything()
import sys
for name in [n for n in sys.modules if n.startswith("numpy_shufflenet")] + ["numpy_shufflenet.course"]:
    sys.modules[name] = _Anything()
def double(x):
    return None
''', "replace `course` and every numpy_shufflenet module with an object whose checks pass",
        "no check runs in the student's process: the runner only calls double, the judge runs in the grader",
        "failed"),
    "patch NumPy's comparisons": ('''
import numpy as np
np.array_equal = np.allclose = np.isclose = lambda *a, **k: True
np.testing.assert_allclose = np.testing.assert_array_equal = lambda *a, **k: None
def double(x):
    return np.zeros_like(x)
''', "make every NumPy comparison say equal, then return zeros",
        "the comparisons run in the grader's own NumPy, on the returned array", "failed"),
    "array subclass that lies": ('''
import numpy as np
class Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), bool)
    def __array_ufunc__(self, *args, **kwargs):
        return True
    def tolist(self):
        return [0, 2, 4]
def double(x):
    return np.zeros(np.shape(x)).view(Liar)
''', "return an ndarray subclass whose ==, ufuncs and tolist() all agree with anything",
        "the runner saves only the plain numbers (.npy); the grader loads a plain ndarray", "failed"),
    "read the instructor notebook": ('''
import glob, json, os
seen = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        seen += open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\\0")
    except OSError:
        pass
candidates = [INSTRUCTOR, *[s for s in seen if s.endswith(".ipynb")], *glob.glob("/*/*.ipynb"),
              *glob.glob("/job/**/*.ipynb", recursive=True), *glob.glob("/opt/**/*.ipynb", recursive=True)]
solution = None
for path in candidates:
    try:
        cells = json.load(open(path))["cells"]
        solution = "".join(next(c for c in cells if c.get("id") == "double")["source"])
        break
    except Exception:
        pass
exec(solution)
''', "find the instructor notebook (its path, /proc/*/cmdline, a search of the file system) and run its "
     "solution", "the notebook is not in the sandbox's file system; /proc shows only the sandbox's processes",
        "error"),
    "write files outside": ('''
written = []
for path in [HOME + "/" + MARKER, "/tmp/" + MARKER, OUT + "/" + MARKER, "/job/" + MARKER, "/" + MARKER]:
    try:
        open(path, "w").write("x")
        written.append(path)
    except OSError:
        pass
def double(x):
    return written
''', "write a file into the grader's home, /tmp, the folder of grades.csv and the job folder",
        "read-only root and job folder; /tmp is the sandbox's own (in memory); home and output folder are not "
        "there", "failed"),
    "connect to the grader": ('''
import socket
def double(x):
    for host in ("127.0.0.1", HOST):
        try:
            s = socket.create_connection((host, PORT), timeout=2)
            s.sendall(b"points please")
        except OSError:
            pass
    return None
''', "connect to a port the grader listens on (127.0.0.1 and the machine's address) and send data",
        "its own network namespace: only its own loopback, no route out", "failed"),
    "signal the grader": ('''
import os, signal
for pid in (GRADER_PID, os.getppid(), 1):
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        pass
os.kill(-1, signal.SIGKILL)
def double(x):
    return 2 * x
''', "signal the grader's process id, its parent and pid 1, then SIGKILL every process it can",
        "its own PID namespace and user id: it can signal only itself; its run ends, the rest is graded again "
        "without the cell", "error"),
    "leave processes running": ('''
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", MARKER])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", MARKER])
    os._exit(0)
def double(x):
    return None
''', "start a child and a double-forked daemon in a new session, both sleeping 10 minutes",
        "the sandbox's PID namespace ends with its run: the kernel kills every process in it", "failed"),
    "grab gigabytes": ('''
import numpy as np
hog = []
try:
    while True:
        hog.append(np.ones(2**27))
except MemoryError:
    hog = None
def double(x):
    return np.ones(2**31) * 0 + 2 * x[..., None]
''', "fill memory in the cell, then return a 16 GiB array", "the address-space limit (--memory): MemoryError",
        "error"),
    "loop forever": ('''
def double(x):
    while True:
        pass
''', "never return", "the wall-clock limit (--timeout): the runner is killed, the rest graded again without it",
        "timeout"),
    "exit the interpreter": ('''
import os, sys
def double(x):
    os._exit(0)
sys.exit(0)
''', "sys.exit in the cell, os._exit in the function", "SystemExit is an error of the cell; the runner's "
                                                           "death is read as an error of the call it was in",
        "error"),
    "forge the results": ('''
import json, os
import numpy as np
np.save("/job/out/arrays/evil.npy", np.array([object()]), allow_pickle=True)
os.symlink(INSTRUCTOR, "/job/out/arrays/link.npy")
with open("/job/out/results.jsonl", "a") as f:
    for i in range(4):
        f.write(json.dumps({"id": f"double/{i}", "value": {"__array__": "evil" if i % 2 else "link"},
                            "error": None, "args_after": None}) + "\\n")
    f.write(json.dumps({"done": True}) + "\\n")
def double(x):
    return 2 * x
''', "write result lines first: an object array (a pickle) and a link to the instructor notebook",
        "the grader checks each .npy header before loading, never unpickles, never follows a link", "error"),
}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, bwrap):
    """Grade every attacker and an honest student in one run: ``(rows, context, log)``."""
    root = tmp_path_factory.mktemp("attacks")
    source = root / "source"
    source.mkdir()
    shutil.copy(GRADING_FIXTURE / NOTEBOOK, source / NOTEBOOK)
    out = root / "out"
    out.mkdir()
    scratch = root / "tmp"                               # the grader's temporary folder, checked empty at the end
    scratch.mkdir()
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    listener.setblocking(False)
    try:
        host = socket.gethostbyname(socket.gethostname())
    except OSError:
        host = "127.0.0.1"
    context = {"INSTRUCTOR": str(source / NOTEBOOK), "GRADER_PID": os.getpid(), "HOME": str(Path.home()),
               "OUT": str(out), "PORT": listener.getsockname()[1], "HOST": host,
               "MARKER": f"numpy_shufflenet_attack_{os.getpid()}"}
    prelude = "".join(f"{k} = {v!r}\n" for k, v in context.items())
    subs = root / "submissions"
    (subs / "honest").mkdir(parents=True)
    nbformat.write(nbformat.read(source / NOTEBOOK, as_version=4), subs / "honest" / NOTEBOOK)
    for i, (name, (code, *_)) in enumerate(ATTACKS.items()):
        nb = nbformat.read(source / NOTEBOOK, as_version=4)
        next(c for c in nb.cells if c.id == "double").source = prelude + code.strip()
        (subs / f"attacker{i:02d}").mkdir()
        nbformat.write(nb, subs / f"attacker{i:02d}" / NOTEBOOK)

    signals = []
    previous = signal.signal(signal.SIGUSR1, lambda *a: signals.append(a))
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = str(scratch)
    try:
        code = main(["grade", str(subs), "--source", str(source), "--out", str(out / "grades.csv"), "--catalogue",
                     str(GRADING_CATALOGUE), "--timeout", TIMEOUT, "--memory", MEMORY, "--jobs", "2",
                     "--seed", "5"])
        connections = []
        while True:
            try:
                connections.append(listener.accept())
            except BlockingIOError:
                break
    finally:
        tempfile.tempdir = saved_tempdir
        signal.signal(signal.SIGUSR1, previous)
        listener.close()
    assert code == 0
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    traces = {"signals": signals, "connections": connections, "scratch": sorted(os.listdir(scratch)),
              "files": [p for p in (Path.home() / context["MARKER"], Path("/tmp") / context["MARKER"],
                                    out / context["MARKER"]) if p.exists()],
              "processes": [p.name for p in Path("/proc").iterdir() if p.name.isdigit()
                            and context["MARKER"].encode() in _cmdline(p)]}
    for path in traces["files"]:
        path.unlink()
    return rows, traces


def _cmdline(proc):
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_each_attack_earns_nothing_for_what_it_touches(attacked):
    rows, _ = attacked
    table = [("attack", "points", "status", "what it tried", "what stopped it")]
    for i, (name, (_, tried, stopped, status)) in enumerate(ATTACKS.items()):
        row = rows[f"attacker{i:02d}", "double"]
        table.append((name, f"{row['points']}/{row['max_points']}", row["status"], tried, stopped))
        assert (row["points"], row["status"]) == ("0", status), (name, row)
    print()
    for line in table:
        print(" | ".join(line))


def test_the_rest_is_graded_as_usual(attacked):
    rows, _ = attacked
    assert {ex: rows["honest", ex]["points"] for ex in ("double", "shuffle", "depthwise_params")} == \
        {"double": "2", "shuffle": "3", "depthwise_params": "1"}
    for i, name in enumerate(ATTACKS):
        got = {ex: (rows[f"attacker{i:02d}", ex]["points"], rows[f"attacker{i:02d}", ex]["status"])
               for ex in ("shuffle", "depthwise_params")}
        assert got == {"shuffle": ("3", "passed"), "depthwise_params": ("1", "passed")}, (name, got)


def test_no_attack_leaves_a_trace_outside_its_sandbox(attacked):
    _, traces = attacked
    assert traces == {"signals": [], "connections": [], "scratch": [], "files": [], "processes": []}


def test_what_the_attacks_found_inside(attacked):
    """The feedback says what each attack met: the notebook was not found, the memory ran out, the time ran
    out, the forged results were refused."""
    rows, _ = attacked
    message = {name: rows[f"attacker{i:02d}", "double"]["message"] for i, name in enumerate(ATTACKS)}
    assert "your cell raised TypeError" in message["read the instructor notebook"]      # exec(None): nothing found
    assert "MemoryError" in message["grab gigabytes"]
    assert f"still running after {TIMEOUT} s" in message["loop forever"]
    assert "the result was refused" in message["forge the results"]
    assert "got ['/tmp/numpy_shufflenet_attack_" in message["write files outside"]     # only its own /tmp
