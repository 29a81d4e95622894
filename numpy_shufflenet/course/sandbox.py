r"""Where the runner runs: a bubblewrap sandbox with resource limits, one per job.

:class:`Sandbox` starts :mod:`numpy_shufflenet.course.runner` on a job folder and waits for it:

* ``mode="bwrap"`` (what ``--sandbox auto`` gives when it works): under bubblewrap (``bwrap``, Debian and Ubuntu
  package ``bubblewrap``, the sandbox behind Flatpak), in namespaces of its own: no network at all (an empty
  network namespace, only its own loopback), its own process-id namespace (it sees and can signal only its own
  processes, and all of them die with it: ``--die-with-parent``, and the namespace ends with its first
  process), IPC and host name, and a new terminal session. Its file system is an empty root holding, read-only,
  ``/usr`` (and ``/lib``, ``/bin``, ...), the Python installation (``sys.prefix``, ``sys.base_prefix`` and the
  site-packages folders holding NumPy, Matplotlib and tqdm) and this package's folder alone; a fresh ``/proc``,
  a minimal ``/dev``, a small ``/tmp`` of its own (:data:`TMP_BYTES`, in memory) and the job folder, where only
  ``out/`` is writable. Nothing else of the machine is there: not the grader's home, the instructor notebooks,
  the catalogue's hidden seeds or the output folder. Run as root, bubblewrap keeps the host's user ids and the
  runner drops to an unprivileged user id of its own (:data:`SANDBOX_UID` + slot, ``setpriv``) with no
  capabilities; run as another user, bubblewrap makes a user namespace.
* ``mode="none"`` (``--sandbox none``): the runner as a plain process with the same limits, in a session of its
  own that is killed at the end. It sees the whole machine as the user that runs it (as root it drops to
  the unprivileged user id when the Python installation is readable by every user). Only for grading that is
  isolated otherwise (a container per submission, as Gradescope runs).

**Limits** (:class:`Limits`), set with ``prlimit`` on the process that starts the sandbox (inherited by all its
processes): address space (``--memory``, default 2 GiB), CPU seconds (the wall-clock limit plus a little), file
size, open files, no core files, and the number of processes of the sandbox's user (inside the sandbox when
bubblewrap makes a user namespace). The wall-clock limit (``--timeout``) is kept by the grader, which kills the
sandbox when it runs out. The runner runs with one BLAS thread (``OPENBLAS_NUM_THREADS=1``, ...): grading runs
many sandboxes at once, and an address-space limit counts every thread's arena.

:func:`check_bwrap` runs one empty job under bubblewrap and raises :class:`SandboxUnavailable` with what to do
when bubblewrap is missing or refused (Ubuntu 24.04's AppArmor rule on user namespaces:
``kernel.apparmor_restrict_unprivileged_userns=1``).
"""

import dataclasses
import functools
import importlib.util
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["MODES", "DEFAULT_MEMORY", "DEFAULT_TIMEOUT", "TMP_BYTES", "SANDBOX_UID", "Limits", "RunReport",
           "SandboxUnavailable", "Sandbox", "find_bwrap", "check_bwrap", "python_folders", "remove_tree"]

MODES = ("auto", "none")                 # what --sandbox accepts; auto resolves to "bwrap" or an error
DEFAULT_MEMORY = 2 * 2**30               # bytes of address space per process
DEFAULT_TIMEOUT = 300.0                  # seconds of wall time for one run of the runner
TMP_BYTES = 64 * 2**20                   # the sandbox's /tmp (memory)
SANDBOX_UID = 1_900_000_000              # the unprivileged user id of slot 0 when grading as root
PACKAGE = Path(__file__).resolve().parents[1]          # this package's folder: numpy_shufflenet/
RUNNER = Path(__file__).resolve().with_name("runner.py")
INSIDE_PACKAGE = "/opt/numpy_shufflenet"               # where the package's folder is in the sandbox
INSIDE_JOB = "/job"
TAIL = 4000                              # characters kept of the runner's stdout and stderr

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install "
                "bubblewrap), or grade with --sandbox none where each grading run is isolated otherwise "
                "(see the README's threat model)")
USERNS_HINT = ("bubblewrap could not create its namespaces. On Ubuntu 24.04 unprivileged user namespaces are "
               "restricted by AppArmor (kernel.apparmor_restrict_unprivileged_userns=1): give bwrap an AppArmor "
               "profile that allows userns, or run sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0, or "
               "grade as root; in a Docker container, allow namespaces (e.g. --security-opt seccomp=unconfined "
               "--cap-add SYS_ADMIN) or grade with --sandbox none inside it")


OTHER_HINT = ("The sandbox holds only /usr, the Python installation (its prefixes and the site-packages of NumPy, "
              "Matplotlib and tqdm) and this package: a Python that needs files elsewhere cannot run in it. Grade "
              "with a Python installed in one of those places, or with --sandbox none where each grading run is "
              "isolated otherwise")


class SandboxUnavailable(ValueError):
    """``--sandbox auto`` cannot sandbox the runner here (raised before anything is graded)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one run of the runner. ``cpu`` defaults to ``timeout`` + 5 s."""

    timeout: float = DEFAULT_TIMEOUT     # wall-clock seconds
    memory: int = DEFAULT_MEMORY         # bytes of address space, per process
    cpu: float = None                    # CPU seconds, per process
    file_size: int = 256 * 2**20         # bytes, per file written
    processes: int = 64                  # processes (and threads) of the sandbox's user
    open_files: int = 256

    def cpu_seconds(self):
        return math.ceil(self.timeout + 5 if self.cpu is None else self.cpu)

    def prlimit_args(self, nproc=True):
        """The ``prlimit`` command's options for these limits (``nproc``: also the process count)."""
        args = [f"--as={int(self.memory)}", f"--cpu={self.cpu_seconds()}", f"--fsize={int(self.file_size)}",
                f"--nofile={int(self.open_files)}", "--core=0"]
        return args + ([f"--nproc={int(self.processes)}"] if nproc else [])


@dataclasses.dataclass
class RunReport:
    """How one run of the runner ended: ``returncode`` (negative: killed by that signal), ``timed_out`` (killed
    by the grader at the wall-clock limit), ``seconds`` of wall time, and the ends of its stdout and stderr."""

    returncode: int
    timed_out: bool
    seconds: float
    stdout: str = ""
    stderr: str = ""
    timeout: float = 0.0             # the wall-clock limit it had

    def reason(self):
        """Why the run ended early, in a few words (for messages); "" when it ended normally."""
        if self.timed_out:
            return f"it was still running after {self.timeout:g} s (the time limit)"
        if self.returncode == 0:
            return ""
        if self.returncode < 0:
            name = signal.Signals(-self.returncode).name if -self.returncode in signal.valid_signals() else ""
            why = {"SIGKILL": " (killed: out of memory, or a process limit)", "SIGXCPU": " (out of CPU time)",
                   "SIGSEGV": " (a crash)"}.get(name, "")
            return f"the runner was killed by signal {name or -self.returncode}{why}"
        last = self.stderr.strip().splitlines()[-1:] or [""]
        if "MemoryError" in last[0]:
            return "the runner ran out of memory"
        return f"the runner exited with status {self.returncode}" + (f": {last[0][:200]}" if last[0] else "")


def find_bwrap():
    """The path of ``bwrap``, or None."""
    return shutil.which("bwrap")


def python_folders():
    """The folders of the Python installation the runner needs: the prefixes and the site-packages folders of
    NumPy, Matplotlib and tqdm (when installed), without duplicates or folders inside others."""
    import importlib.util

    folders = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    for name in ("numpy", "matplotlib", "tqdm"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            folders.add(Path(spec.origin).resolve().parents[1])
    folders |= {p.resolve() for p in folders}
    folders |= {Path(sys.executable).parent, Path(sys.executable).resolve().parent}
    kept = []
    for p in sorted(folders, key=lambda p: len(p.parts)):
        if p.is_dir() and not any(p == k or k in p.parents for k in kept):
            kept.append(p)
    return kept


def _system_binds():
    """``/usr`` and the top-level folders beside it (``/lib``, ``/lib64``, ``/bin``, ...): links stay links."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # the loader's cache, and the links through which Debian's packages pick a BLAS (python3-numpy's libblas)
    return args + ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
                   "--ro-bind-try", "/etc/alternatives", "/etc/alternatives"]


def _ro_bind(path, dest, made):
    """Bind ``path`` read-only at ``dest``, creating the folders above ``dest`` readable by all (bubblewrap would
    make them private to root)."""
    args = []
    for parent in reversed(Path(dest).parents):
        if str(parent) != "/" and parent not in made and not str(parent).startswith(("/usr", "/proc", "/dev")):
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    made.add(Path(dest))
    return args + ["--ro-bind", str(path), str(dest)]


def _environment(package_parent, job, extra_paths=()):
    """The runner's whole environment (nothing of the grader's is passed on)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(package_parent), *map(str, extra_paths)]),
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{job}/out/.matplotlib", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _readable_by_all(path):
    """True when every folder down to ``path`` can be entered by any user, and ``path`` read by any."""
    path = Path(path)
    try:
        for p in [*reversed(path.parents), path]:
            if not os.stat(p).st_mode & 0o001:
                return False
        return bool(os.stat(path).st_mode & 0o004)
    except OSError:
        return False


class Sandbox:
    """Runs the runner on job folders: ``Sandbox("bwrap" | "none", limits).run(job, slot)``.

    ``slot`` (0, 1, ... for concurrent runs) picks the unprivileged user id when grading as root, so that the
    process limit of one run does not count another's processes.
    """

    def __init__(self, mode="bwrap", limits=Limits()):
        if mode not in ("bwrap", "none"):
            raise ValueError(f"sandbox: expected mode 'bwrap' or 'none', got {mode!r}")
        self.mode, self.limits = mode, limits
        self.root = os.geteuid() == 0
        self.bwrap = find_bwrap() if mode == "bwrap" else None
        if mode == "bwrap" and self.bwrap is None:
            raise SandboxUnavailable(f"--sandbox auto needs bubblewrap (bwrap), which is not installed: "
                                     f"{INSTALL_HINT}")
        self.prlimit = shutil.which("prlimit")
        self.setpriv = shutil.which("setpriv")
        self.folders = python_folders()
        # as root without bubblewrap, drop to the unprivileged user only where it can still run Python
        self.drop_user = self.root and self.setpriv is not None and (
            mode == "bwrap" or all(_readable_by_all(p) for p in [*self.folders, PACKAGE, sys.executable]))
        self._fonts = None                   # Matplotlib's font list, built once (see font_cache)
        self._fonts_lock = threading.Lock()

    def describe(self):
        """One line for the grader's log: what isolates the runner."""
        if self.mode == "bwrap":
            who = "an unprivileged user id" if self.drop_user else "a user namespace"
            return f"bubblewrap ({self.bwrap}): no network, own process ids, read-only Python and package, {who}"
        who = "an unprivileged user id" if self.drop_user else "your user id"
        return f"none: the runner sees this machine's files and network, as {who}"

    # -- the command line ----------------------------------------------------------------------------------
    def uid(self, slot):
        return SANDBOX_UID + int(slot)

    def _drop(self, slot):
        uid = self.uid(slot)
        return [self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--"]

    def command(self, job, slot=0, info_fd=None):
        """``(argv, env, cwd)`` that runs the runner on ``job`` (``info_fd``: where bubblewrap writes the process
        id of the sandbox's first process)."""
        job = Path(job)
        limits = [] if self.prlimit is None else [self.prlimit, *self.limits.prlimit_args(
            nproc=self.root or self.mode == "none"), "--"]
        if self.mode == "none":
            drop = self._drop(slot) if self.drop_user else []
            argv = [*limits, *drop, sys.executable, "-B", str(RUNNER), str(job)]
            return argv, _environment(PACKAGE.parent, job), str(job / "out")
        made = set()
        args = [self.bwrap, "--die-with-parent", "--new-session"]
        if info_fd is not None:
            args += ["--info-fd", str(info_fd)]
        if self.root:                # keep the host's user ids, so that the runner can drop to its own one
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                     "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-all"]
        args += _system_binds()
        # /tmp first: a Python installation under /tmp (a CI job's virtual environment) is bound into it after
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
        made.add(Path("/tmp"))
        for folder in self.folders:
            args += _ro_bind(folder, folder, made)
        args += _ro_bind(PACKAGE, f"{INSIDE_PACKAGE}/{PACKAGE.name}", made)
        args += ["--perms", "0755", "--dir", INSIDE_JOB, "--bind", str(job), INSIDE_JOB,
                 "--ro-bind", str(job / "in"), f"{INSIDE_JOB}/in", "--remount-ro", "/", "--chdir", "/tmp",
                 "--clearenv"]
        for key, value in _environment(INSIDE_PACKAGE, INSIDE_JOB).items():
            args += ["--setenv", key, value]
        args.append("--")
        if self.root:
            args += self._drop(slot)
        elif self.prlimit is not None:           # the process count of the sandbox's own user namespace
            args += [self.prlimit, f"--nproc={int(self.limits.processes)}", "--"]
        runner = f"{INSIDE_PACKAGE}/{PACKAGE.name}/course/runner.py"
        args += [sys.executable, "-B", runner, INSIDE_JOB]
        return [*limits, *args], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "/"

    # -- one run -------------------------------------------------------------------------------------------
    def font_cache(self):
        """Matplotlib's font list (``{file name: bytes}``), built once by a run of the runner without any
        student code, and copied into each job: without it every run would spend a third of a second
        rebuilding it."""
        with self._fonts_lock:
            if self._fonts is None:
                self._fonts = {}
                if importlib.util.find_spec("matplotlib") is not None:
                    self._fonts = self._build_font_cache()
            return self._fonts

    def _build_font_cache(self):
        from .jobs import write_job

        folder = tempfile.mkdtemp(prefix="numpy_shufflenet_fonts_")
        try:
            os.chmod(folder, 0o711)
            job = os.path.join(folder, "j")
            write_job(job, [{"label": "fonts", "source": "import matplotlib.font_manager"}], [])
            self._run(job, 0)
            cache = Path(job, "out", ".matplotlib")
            return {p.name: p.read_bytes() for p in cache.glob("fontlist-*.json")
                    if p.is_file() and not p.is_symlink() and p.stat().st_size < 2**22}
        finally:
            remove_tree(folder)

    def prepare(self, job, slot=0):
        """Put the font list into ``job/out`` and make it writable by the runner's user (as root, the
        unprivileged user id of ``slot``)."""
        out = Path(job) / "out"
        os.chmod(job, 0o755)
        fonts = self.font_cache()
        if fonts:
            (out / ".matplotlib").mkdir(exist_ok=True)
            for name, data in fonts.items():
                (out / ".matplotlib" / name).write_bytes(data)

    def run(self, job, slot=0):
        """Run the runner on the job folder ``job`` (written by :func:`~numpy_shufflenet.course.jobs.write_job`)
        and wait at most ``limits.timeout`` seconds; returns a :class:`RunReport`."""
        self.prepare(job, slot)
        return self._run(job, slot)

    def _run(self, job, slot):
        if self.drop_user:
            for folder, _, files in os.walk(Path(job) / "out"):
                os.chown(folder, self.uid(slot), self.uid(slot))
                for name in files:
                    os.chown(os.path.join(folder, name), self.uid(slot), self.uid(slot))
        info_read, info_write = os.pipe() if self.mode == "bwrap" else (None, None)
        argv, env, cwd = self.command(job, slot, info_write)
        preexec = None if self.prlimit is not None else functools.partial(_set_limits, self.limits,
                                                                          self.root or self.mode == "none")
        start = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                        start_new_session=True, preexec_fn=preexec,
                                        pass_fds=() if info_write is None else (info_write,))
            finally:
                if info_write is not None:
                    os.close(info_write)
            try:
                timed_out = not _wait_exit(proc.pid, self.limits.timeout)
                if timed_out and info_read is not None:
                    _end_namespace(proc.pid, info_read)
            finally:
                _kill_group(proc.pid)            # whatever it left in its session (the leader is not reaped yet)
                proc.wait()
                _wait_group_gone(proc.pid)
                if info_read is not None:
                    os.close(info_read)
            return RunReport(proc.returncode, timed_out, time.monotonic() - start, _tail(out), _tail(err),
                             self.limits.timeout)


def _wait_exit(pid, timeout):
    """Wait until the child ``pid`` has exited, without reaping it (so that its process group id cannot be taken
    by another process before the group is killed); False when ``timeout`` seconds ran out first."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        if fd is not None:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if poller.poll(min(left, 3600) * 1000):
                    return True
        pause = 0.001
        while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        return True
    finally:
        if fd is not None:
            os.close(fd)


def _end_namespace(pid, info_fd, wait=10.0):
    """Kill the first process of a bubblewrap sandbox (``pid``: bubblewrap's own, ``info_fd``: where it wrote
    the sandbox's first process id) and wait until bubblewrap has exited: the kernel ends every process of the
    sandbox's process-id namespace before its first process is gone, so nothing of the sandbox is left after."""
    os.set_blocking(info_fd, False)
    try:
        info = json.loads(os.read(info_fd, 65536).decode() or "{}")
        child = int(info.get("child-pid", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        child = 0
    if child > 0 and _parent_of(child) == pid:          # still bubblewrap's child, not a reused process id
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait_exit(pid, wait)


def _parent_of(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return None


def _wait_group_gone(pgid, wait=5.0):
    """Wait until no live process of the process group ``pgid`` is left (they were sent SIGKILL; the zombies
    are for their new parent to reap)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if not _live_members(pgid):
            return
        time.sleep(0.005)


def _live_members(pgid):
    """The ids of the processes of group ``pgid`` that are not zombies (from /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                found.append(int(name))
    return found


def _set_limits(limits, nproc):
    """The limits of :class:`Limits` with ``setrlimit`` (used only where the ``prlimit`` command is missing)."""
    import resource

    cpu = limits.cpu_seconds()
    table = [(resource.RLIMIT_AS, limits.memory), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_FSIZE,
             limits.file_size), (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0)]
    if nproc:
        table.append((resource.RLIMIT_NPROC, limits.processes))
    for which, value in table:
        resource.setrlimit(which, (int(value), int(value)))


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(f):
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - TAIL))
    return f.read().decode("utf-8", "replace")


@functools.lru_cache(maxsize=None)
def _probe(limits):
    """``None`` when bubblewrap runs an empty job here, else what went wrong (stderr)."""
    sandbox = Sandbox("bwrap", limits)
    from .jobs import write_job

    job = tempfile.mkdtemp(prefix="numpy_shufflenet_probe_")
    try:
        write_job(os.path.join(job, "j"), [{"label": "probe", "source": "import numpy"}], [])
        report = sandbox.run(os.path.join(job, "j"))
        results = Path(job, "j", "out", "results.jsonl")
        ok = report.returncode == 0 and results.is_file() and '"done": true' in results.read_text()
        return None if ok else (report.stderr.strip() or report.reason() or "no results were written")
    finally:
        remove_tree(job)


def check_bwrap(limits=Limits()):
    """Raise :class:`SandboxUnavailable` (with what to do) unless bubblewrap is installed and runs the runner
    here; the answer is cached for the process."""
    if find_bwrap() is None:
        raise SandboxUnavailable(f"--sandbox auto needs bubblewrap (bwrap), which is not installed: "
                                 f"{INSTALL_HINT}")
    problem = _probe(dataclasses.replace(limits, timeout=60.0))
    if problem is not None:
        last = problem.strip().splitlines()[-1][:300]
        hint = USERNS_HINT if any(word in problem for word in ("uid map", "namespace", "Operation not permitted",
                                                               "Permission denied")) else OTHER_HINT
        raise SandboxUnavailable(f"--sandbox auto: bubblewrap is installed but could not run the grader's runner "
                                 f"({last}). {hint}")


def remove_tree(path):
    """Delete a job folder, whatever the runner did to its permissions."""
    def retry(function, p, _):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            function(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=retry)
