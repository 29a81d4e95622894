"""The sandbox (:mod:`numpy_shufflenet.course.sandbox`): what a student's code sees and can do from inside it,
asked from inside it. A probe function runs in the runner under bubblewrap and returns, as plain data, what it
found: the file system, the processes, the network, its user id and its limits; the test compares that with
the grader's own machine. The limits are then tested by exceeding each one. Tests that need bubblewrap skip
with its reason where it is missing or refused (``.ci/run`` installs it)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from numpy_shufflenet.course import jobs, sandbox

from conftest import GRADING_FIXTURE

ROOT = Path(__file__).resolve().parents[2]

PROBE = '''
import os, resource, socket


def probe(paths, port, grader_pid):
    found = {"uid": os.getuid(), "top": sorted(os.listdir("/")), "cwd": os.getcwd(),
             "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
             "exists": {p: os.path.exists(p) for p in paths}, "writable": {}}
    for path in ["/tmp/x", "/job/out/x", "/job/in/x", "/job/x", "/usr/x", "/x",
                 "/opt/numpy_shufflenet/numpy_shufflenet/x"]:
        try:
            open(path, "w").close()
            found["writable"][path] = True
        except OSError:
            found["writable"][path] = False
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        found["connect"] = "connected"
    except OSError as err:
        found["connect"] = type(err).__name__
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2)
        found["internet"] = True
    except OSError:
        found["internet"] = False
    found["interfaces"] = [name for _, name in socket.if_nameindex()]
    try:
        os.kill(grader_pid, 0)
        found["signal grader"] = "delivered"
    except OSError as err:
        found["signal grader"] = type(err).__name__
    found["limits"] = {name: resource.getrlimit(getattr(resource, name))[0]
                       for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_NOFILE",
                                    "RLIMIT_CORE")}
    found["environment"] = sorted(os.environ)
    return found
'''


def run(tmp_path, mode, cells, calls, **limits):
    """One run of the runner in ``mode`` ("bwrap" or "none"): ``(RunReport, Results)``."""
    job = tmp_path / "job"
    jobs.write_job(job, cells, calls)
    box = sandbox.Sandbox(mode, sandbox.Limits(**{"timeout": 60, **limits}))
    report = box.run(job)
    return report, jobs.read_results(job, [c["label"] for c in cells], [c.id for c in calls])


@pytest.fixture
def listener():
    """A socket listening on 127.0.0.1 in the grader's process: ``(socket, port)``."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    s.setblocking(False)
    yield s, s.getsockname()[1]
    s.close()


def probe(tmp_path, mode, listener, **limits):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden")
    paths = [str(secret), str(GRADING_FIXTURE / "exercises.ipynb"), str(ROOT / "tests"), str(Path.home() / ".bashrc"),
             "/etc/passwd", "/proc/1/root/etc/passwd", str(Path(sys.prefix) / "bin")]
    report, results = run(tmp_path, mode, [{"label": "probe", "source": PROBE}],
                          [jobs.Call("p", "probe", (paths, listener[1], os.getpid()), {})], **limits)
    value, error, _, _ = results.calls["p"]
    assert error is None, (error, report)
    return value, paths


def test_what_the_code_sees_inside_bubblewrap(tmp_path, bwrap, listener):
    found, paths = probe(tmp_path, "bwrap", listener, memory=2**30, processes=32)
    secret, instructor, tests, home_file, passwd, host_passwd, python = paths
    # only the Python installation, the package and its own folders: no notebook, no test, no home, no /etc
    assert found["exists"] == {secret: False, instructor: False, tests: False, home_file: False, passwd: False,
                               host_passwd: False, python: True}
    assert set(found["top"]) <= {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "opt", "proc", "dev",
                                 "tmp", "job", *(f.parts[1] for f in sandbox.python_folders())}
    assert found["writable"] == {"/tmp/x": True, "/job/out/x": True, "/job/in/x": False, "/job/x": False,
                                 "/usr/x": False, "/x": False, "/opt/numpy_shufflenet/numpy_shufflenet/x": False}
    # its own process ids (bubblewrap's init and the runner): the grader's process is not there to signal
    assert max(found["pids"]) < 10 and found["signal grader"] == "ProcessLookupError"
    # no network: its own loopback only, so the grader's listening port is not reachable
    assert found["interfaces"] == ["lo"] and not found["internet"]
    assert found["connect"] == "ConnectionRefusedError"
    with pytest.raises(BlockingIOError):
        listener[0].accept()                                   # nothing connected to the grader's port
    if os.geteuid() == 0:                                      # as root: an unprivileged user id of its own
        assert found["uid"] == sandbox.SANDBOX_UID
    assert found["limits"]["RLIMIT_AS"] == 2**30 and found["limits"]["RLIMIT_NPROC"] == 32
    assert found["limits"]["RLIMIT_CORE"] == 0 and found["limits"]["RLIMIT_CPU"] == 65
    assert "HOME" in found["environment"] and not {"USER", "SSH_AUTH_SOCK", "PYTEST_CURRENT_TEST"} & set(
        found["environment"])


def test_without_a_sandbox_the_code_sees_the_machine_but_keeps_the_limits(tmp_path, listener):
    found, paths = probe(tmp_path, "none", listener, memory=2**30)
    assert found["exists"][paths[0]] and found["exists"][paths[1]]       # what --sandbox none gives up
    assert found["connect"] == "connected"
    assert found["limits"]["RLIMIT_AS"] == 2**30 and found["limits"]["RLIMIT_FSIZE"] == 256 * 2**20
    assert "PYTEST_CURRENT_TEST" not in found["environment"]              # still a clean environment


@pytest.mark.parametrize("mode", ["bwrap", "none"])
def test_memory_time_file_size_and_processes_are_limited(tmp_path, mode, request):
    if mode == "bwrap":
        request.getfixturevalue("bwrap")
    cells = [{"label": "c", "source": (
        "import numpy as np, os, subprocess, sys\n"
        "def grab():\n    return float(np.ones(2**30 // 8 * 3).sum())\n"          # 3 GiB, past the 1 GiB limit
        "def write():\n    with open('big', 'wb') as f:\n        f.write(b'x' * 2**21)\n"
        "def spawn():\n    children = []\n    try:\n        for _ in range(40):\n"
        "            children.append(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']))\n"
        "    finally:\n        for c in children:\n            c.kill()\n")}]
    calls = [jobs.Call(name, name, (), {}) for name in ("grab", "write", "spawn")]
    report, results = run(tmp_path, mode, cells, calls, memory=2**30, file_size=2**20, processes=16)
    assert report.returncode == 0, report
    assert results.calls["grab"][1].startswith("MemoryError")
    assert results.calls["write"][1].startswith("OSError: [Errno 27] File too large")
    if mode == "bwrap" or os.geteuid() != 0:                 # root's own processes are not counted by the kernel
        assert results.calls["spawn"][1].startswith("BlockingIOError: [Errno 11] Resource temporarily unavailable")


@pytest.mark.parametrize("mode", ["bwrap", "none"])
def test_a_run_past_its_time_is_killed_with_everything_it_started(tmp_path, mode, request):
    if mode == "bwrap":
        request.getfixturevalue("bwrap")
    marker = f"left-behind-{os.getpid()}-{mode}"
    cells = [{"label": "a", "source": "x = 1"},
             {"label": "b", "source": (
                 "import subprocess, sys, time\n"
                 f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
                 "while True:\n    time.sleep(0.1)\n")}]
    report, results = run(tmp_path, mode, cells, [], timeout=3)
    assert report.timed_out and "still running after 3 s" in report.reason()
    assert results.cells == {"a": None} and not results.done
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and marker.encode() in _cmdline(p)]
    assert left == []


def _cmdline(proc):
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_check_bwrap_says_what_to_do_when_bubblewrap_is_missing(monkeypatch):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    with pytest.raises(sandbox.SandboxUnavailable, match=r"not installed: install bubblewrap \(Debian/Ubuntu: "
                                                         r"sudo apt-get install bubblewrap.*--sandbox none"):
        sandbox.check_bwrap()


def test_check_bwrap_explains_a_refused_namespace(monkeypatch):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: "/usr/bin/bwrap")
    monkeypatch.setattr(sandbox, "_probe", lambda limits: "bwrap: setting up uid map: Permission denied")
    with pytest.raises(sandbox.SandboxUnavailable, match="setting up uid map: Permission denied.*AppArmor.*"
                                                         "apparmor_restrict_unprivileged_userns=0"):
        sandbox.check_bwrap()


def test_the_runner_has_one_blas_thread_and_no_grader_environment():
    env = sandbox._environment("/opt/p", "/job")
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["PYTHONPATH"] == "/opt/p" and env["HOME"] == "/tmp"


def test_python_folders_are_the_installation_and_its_site_packages():
    folders = sandbox.python_folders()
    assert Path(np.__file__).resolve().parents[1] in folders or any(
        f in Path(np.__file__).resolve().parents for f in folders)
    assert all(f.is_dir() for f in folders)
    assert not any(f == ROOT or f in ROOT.parents for f in folders)      # never the project with its notebooks


UNPRIVILEGED = '''
import json, os, sys, tempfile
from numpy_shufflenet.course import jobs, sandbox
sandbox.check_bwrap()
box = sandbox.Sandbox("bwrap", sandbox.Limits(timeout=60, processes=16, memory=2**30))
root = tempfile.mkdtemp()
jobs.write_job(os.path.join(root, "j"), [{"label": "probe", "source": sys.argv[1]}],
               [jobs.Call("p", "probe", (sys.argv[2:], 1, 1), {})])
report = box.run(os.path.join(root, "j"))
value, error, _, _ = jobs.read_results(os.path.join(root, "j"), ["probe"], ["p"]).calls["p"]
print(json.dumps({"describe": box.describe(), "returncode": report.returncode, "error": error, "found": value}))
'''


def test_as_an_unprivileged_user_bubblewrap_makes_a_user_namespace(bwrap):
    """The grader run by an ordinary user (an instructor's laptop): bubblewrap makes a user namespace, and the
    process limit is set inside it, so that it counts the sandbox's processes, not the user's."""
    python = shutil.which("python3", path="/usr/bin")
    importable = python is not None and subprocess.run(
        [python, "-c", "import numpy_shufflenet.course.sandbox"], capture_output=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}).returncode == 0
    if os.geteuid() != 0 or not importable:
        pytest.skip("needs root (to become another user) and a Python every user can run that imports this package "
                    "(Debian: apt-get install python3-numpy python3-matplotlib python3-tqdm)")
    if not all(os.stat(p).st_mode & 0o005 == 0o005 for p in [ROOT, *ROOT.parents]):
        pytest.skip(f"{ROOT} is not readable by every user")
    secret = Path(tempfile.mkdtemp())                 # its home: under /tmp, where that user can go
    os.chmod(secret, 0o777)
    script = secret / "probe.py"
    script.write_text(UNPRIVILEGED)
    os.chmod(script, 0o644)
    paths = [str(GRADING_FIXTURE / "exercises.ipynb"), str(ROOT / "README.md")]
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, str(script), PROBE,
                           *paths], capture_output=True, text=True, timeout=300, cwd=secret,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(secret), "PYTHONPATH": str(ROOT)})
    shutil.rmtree(secret, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    found = result["found"]
    assert "a user namespace" in result["describe"] and result["error"] is None
    assert found["uid"] == 65534 and max(found["pids"]) < 10 and found["interfaces"] == ["lo"]
    assert found["exists"] == dict.fromkeys(paths, False)
    assert found["limits"]["RLIMIT_NPROC"] == 16 and found["limits"]["RLIMIT_AS"] == 2**30
