"""Seconds per graded notebook: the sandbox on and off, one and two submissions at a time.

    python benchmarks/bench_grading.py                          # 4 students x the course's exercise notebooks
    python benchmarks/bench_grading.py --students 8 --jobs 1 2 --sandbox none auto
    python benchmarks/bench_grading.py --notebooks 01 02 03 04 09          # the issue's five exercise notebooks

Each student submits the instructor notebooks themselves (every answer written, so every cell of every program
runs: the heaviest submission there is, 09's training included). After a warm-up, ``grade``
(:func:`numpy_shufflenet.course.autograde.grade_dir`) grades the class once per setting and round, the settings
interleaved, with the same seed; the table gives the wall seconds per notebook (a run's wall time over students
x notebooks, the median over the rounds) and the speed-ups the issue asks about:

* ``--jobs 2`` against ``--jobs 1`` (target: at least 1.7x on 2 cores), for each sandbox setting;
* bubblewrap's cost per notebook against ``--sandbox none`` (target: at most 15 %), for each ``--jobs``, and
  its own cost per run, measured on an empty program (the load of a shared machine moves whole runs by more
  than that cost).

The exercise catalogue is the course's (``numpy_shufflenet.course.exercises``); where it is not installed the
benchmark says so and uses a stand-in that asks one call per exercise and judges nothing, so that the figures
are those of the grader's machinery and the notebooks' programs, without the catalogue's reference
computations. The machine's load is printed before and after: on a shared machine, compare figures of one run.
The benchmark reports; it never fails.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from numpy_shufflenet.course import autograde, release  # noqa: E402

TARGET_JOBS = 1.7           # --jobs 2 at least this much faster than --jobs 1 on 2 cores
TARGET_SANDBOX = 0.15       # bubblewrap's cost per notebook at most this fraction


def stand_in_catalogue(source):
    """One exercise per solution cell of each notebook, one call each (of its ``grade_id`` with no arguments),
    judged as nothing: the grader's path without the catalogue's references."""
    class Exercise(types.SimpleNamespace):
        def cases(self, seed):
            return [] if self.kind == "written" else [types.SimpleNamespace(args=(), kwargs={}, label="called",
                                                                            function=None, return_args=False)]

        def judge(self, cases, outcomes):
            return types.SimpleNamespace(points=0, max_points=self.points, status="manual", message="not judged")

    table = {}
    for path in sorted(Path(source).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            meta = release.nbgrader_meta(cell)
            if meta.get("solution") is True:
                kind = "written" if cell.cell_type == "markdown" else "function"
                table.setdefault(path.stem, []).append(Exercise(name=meta["grade_id"], notebook=path.stem, points=1,
                                                                kind=kind, function=meta["grade_id"]))
    from collections import namedtuple

    return types.SimpleNamespace(__name__="stand-in", CATALOGUE={e.name: e for v in table.values() for e in v},
                                 exercises_of=lambda stem: table.get(stem, []),
                                 Outcome=namedtuple("Outcome", "value error args_after", defaults=(None,) * 3))


OVERHEAD_RUNS = 15


def run_overhead(modes):
    """``(seconds without a sandbox, seconds under bubblewrap)`` of one run of an empty program, the median of
    :data:`OVERHEAD_RUNS` runs each, alternating: bubblewrap's own cost, which the load of a shared machine
    hides in the whole runs' figures. None unless both settings are benchmarked."""
    from numpy_shufflenet.course import jobs, sandbox

    if set(modes) != {"none", "auto"}:
        return None
    limits = sandbox.Limits(timeout=60)
    boxes = {"none": sandbox.Sandbox("none", limits), "bwrap": sandbox.Sandbox("bwrap", limits)}
    times = {name: [] for name in boxes}
    for _ in range(OVERHEAD_RUNS):
        for name, box in boxes.items():
            folder = tempfile.mkdtemp(prefix="bench_run_")
            os.chmod(folder, 0o711)
            try:
                jobs.write_job(os.path.join(folder, "j"), [{"label": "c", "source": "import numpy"}], [])
                start = time.perf_counter()
                box.run(os.path.join(folder, "j"))
                times[name].append(time.perf_counter() - start)
            finally:
                sandbox.remove_tree(folder)
    return statistics.median(times["none"]), statistics.median(times["bwrap"])


def load(catalogue, source):
    try:
        return autograde.load_catalogue(catalogue), "the course's catalogue"
    except ValueError as err:
        print(f"{err}: using a stand-in catalogue (one call per exercise, nothing judged)")
        return stand_in_catalogue(source), "a stand-in catalogue"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--source", default=str(ROOT / "notebooks"))
    parser.add_argument("--catalogue", default=None)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sandbox", nargs="+", default=["none", "auto"])
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every setting, interleaved (default 2)")
    parser.add_argument("--notebooks", nargs="+", default=None, metavar="PREFIX",
                        help="only the notebooks whose names start with these (default: every one with exercises)")
    args = parser.parse_args(argv)

    catalogue, what = load(args.catalogue, args.source)
    notebooks = [p for p in sorted(Path(args.source).glob("*.ipynb")) if catalogue.exercises_of(p.stem)
                 and (args.notebooks is None or p.name.startswith(tuple(args.notebooks)))]
    work = Path(tempfile.mkdtemp(prefix="bench_grading_"))
    try:
        source = work / "source"                      # the chosen notebooks only
        source.mkdir()
        for path in notebooks:
            shutil.copy(path, source / path.name)
        for s in range(args.students):
            folder = work / "submissions" / f"student{s:03d}"
            folder.mkdir(parents=True)
            for path in notebooks:
                shutil.copy(path, folder / path.name)
        count = args.students * len(notebooks)
        print(f"{args.students} students x {len(notebooks)} notebooks ({', '.join(p.stem[:2] for p in notebooks)}), "
              f"{what}; {len(os.sched_getaffinity(0))} cores; load before: {os.getloadavg()[0]:.2f}")
        one = work / "warm-up" / "student"                # caches warm before anything is timed
        one.mkdir(parents=True)
        shutil.copy(notebooks[0], one / notebooks[0].name)
        for mode in args.sandbox:
            autograde.grade_dir(one.parent, source, work / "warm-up-out" / "grades.csv", jobs=1, sandbox=mode,
                                seed=1, catalogue=catalogue)
        times = {}
        for round_ in range(args.rounds):                 # the settings interleaved, so that load changes hit all
            for mode in args.sandbox:
                for jobs in args.jobs:
                    out = work / f"{mode}-{jobs}-{round_}" / "grades.csv"
                    start = time.perf_counter()
                    grades = autograde.grade_dir(work / "submissions", source, out, timeout=args.timeout,
                                                 jobs=jobs, sandbox=mode, seed=1, catalogue=catalogue)
                    times.setdefault((mode, jobs), []).append((time.perf_counter() - start) / count)
                    odd = sorted({f"{g.exercise} {g.status}" for g in grades if g.status not in ("passed", "manual")})
                    print(f"  round {round_ + 1}: --sandbox {mode:4s} --jobs {jobs}: {times[mode, jobs][-1]:6.2f} s "
                          f"per notebook, load {os.getloadavg()[0]:.2f}" + (f"   (not passed: {', '.join(odd)})"
                                                                            if odd else ""), flush=True)
        overhead = run_overhead(args.sandbox)
        seconds = {key: statistics.median(values) for key, values in times.items()}
        for (mode, jobs), value in seconds.items():
            print(f"--sandbox {mode:4s} --jobs {jobs}: {value:6.2f} s per notebook (median of {args.rounds})")
        print(f"load after: {os.getloadavg()[0]:.2f}")
        for mode in args.sandbox:
            if (mode, 1) in seconds and (mode, 2) in seconds:
                speedup = seconds[mode, 1] / seconds[mode, 2]
                print(f"--sandbox {mode}: --jobs 2 is {speedup:.2f}x faster than --jobs 1 "
                      f"(target >= {TARGET_JOBS}x): {'met' if speedup >= TARGET_JOBS else 'NOT met'}")
        for jobs in args.jobs:
            if ("none", jobs) in seconds and ("auto", jobs) in seconds:
                cost = seconds["auto", jobs] / seconds["none", jobs] - 1
                print(f"--jobs {jobs}: bubblewrap costs {cost:+.1%} per notebook (target <= {TARGET_SANDBOX:.0%}): "
                      f"{'met' if cost <= TARGET_SANDBOX else 'NOT met'}")
        if overhead is not None:
            none, bwrap = overhead
            per_notebook = (bwrap - none) / seconds.get(("auto", 1), seconds[min(seconds)])
            print(f"one run of an empty program (import numpy), median of {OVERHEAD_RUNS}, interleaved: "
                  f"{none * 1000:.0f} ms without a sandbox, {bwrap * 1000:.0f} ms under bubblewrap: "
                  f"{(bwrap - none) * 1000:+.0f} ms a run, {per_notebook:+.1%} of a notebook's time")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
