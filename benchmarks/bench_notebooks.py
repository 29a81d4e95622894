"""How long each notebook takes, and which of its cells is the heaviest.

    python benchmarks/bench_notebooks.py                         # every notebook in notebooks/
    python benchmarks/bench_notebooks.py 06 03                   # the notebooks whose names start with 06 or 03

Each notebook runs top to bottom in a fresh ``python3`` kernel, by the tests' own runner
(``tests/notebook_runner.py``: working directory ``notebooks/``, ``MPLBACKEND=Agg``). The table gives, per
notebook:

* ``wall s``: the seconds from the first cell's start to the last cell's reply (kernel start-up excluded);
* ``kernel CPU s``: the CPU seconds the kernel process used (user + system). On a machine that other programs
  share, wall time grows with the load while CPU time hardly does, so CPU time is the figure to compare across
  runs; with a multi-threaded BLAS it can exceed the wall time;
* the heaviest cell (its index and first line) and its wall seconds.

The course's budget is 20 s per notebook on the development machine; the benchmark reports, it never fails
(the tests do not time anything). Compare figures from one run, or CPU seconds, never wall times from runs on
differently loaded machines.
"""

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from notebook_runner import NOTEBOOK_DIR, run_notebook  # noqa: E402   (the runner the tests use)

BUDGET = 20.0                     # seconds per notebook on the development machine
CPU_PROBE = "import os as _os\nprint(sum(_os.times()[:2]))"       # run last: the kernel's own CPU seconds


def _seconds(cell):
    """Wall seconds of one executed cell, from nbclient's timing metadata."""
    timing = cell.metadata.get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except KeyError:
        return 0.0
    return (end - start).total_seconds()


def run(path, timeout=600):
    """Execute the notebook at ``path``; returns ``(wall seconds, kernel CPU seconds, [(index, seconds)])``."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CPU_PROBE))
    run_notebook(nb, path.parent, timeout=timeout)
    probe = nb.cells.pop()
    cpu = float("".join(o.get("text", "") for o in probe.outputs).strip() or "nan")
    cells = [(i, _seconds(c)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    return sum(s for _, s in cells), cpu, cells, nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose file names start with these")
    parser.add_argument("--cells", action="store_true", help="also list every cell's seconds")
    args = parser.parse_args(argv)
    paths = [p for p in sorted(NOTEBOOK_DIR.glob("*.ipynb"))
             if not args.prefixes or p.name.startswith(tuple(args.prefixes))]
    if not paths:
        sys.exit(f"no notebooks matching {args.prefixes} in {NOTEBOOK_DIR}")
    print(f"{'notebook':<48s} {'wall s':>7s} {'kernel CPU s':>12s}   heaviest cell")
    started = time.perf_counter()
    for path in paths:
        wall, cpu, cells, nb = run(path)
        index, seconds = max(cells, key=lambda c: c[1])
        first_line = nb.cells[index].source.strip().splitlines()[0][:40] if nb.cells[index].source.strip() else ""
        flag = "" if wall <= BUDGET else f"   (over the {BUDGET:.0f} s budget, if this machine is unloaded)"
        print(f"{path.name:<48s} {wall:7.1f} {cpu:12.1f}   cell {index:>2d} {seconds:5.1f} s  {first_line!r}{flag}")
        if args.cells:
            for i, s in cells:
                print(f"    cell {i:>2d}  {s:6.2f} s")
    print(f"total {time.perf_counter() - started:.0f} s with kernel start-ups; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
