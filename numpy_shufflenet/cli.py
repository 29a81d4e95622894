"""Command line: ``python -m numpy_shufflenet {table1,summary,make-student,grade,make-autograder,train,convert,
predict} ...``; ``--help`` on each."""

import argparse
import math
import sys
import time
from pathlib import Path

from .analysis.counting import summary
from .models import GROUPS, SCALES, ShuffleNet
from .paper.tables import format_table1
from ._checks import check_out_dir
from .training.runs import DEFAULTS, train_shapes


# -- argument types: an invalid value is an argparse error naming the option, before any work is done --------
def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _learning_rate(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _out_dir(text):
    try:
        check_out_dir(text, "--out")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--out: ")) from None
    return text


def _table1(args):
    print(format_table1(args.input_size))


def _summary(args):
    model = ShuffleNet(groups=args.groups, scale=args.scale, num_classes=args.num_classes)
    table = summary(model, (3, args.input_size, args.input_size), depth=args.depth)
    print(f"ShuffleNet {args.scale}x, g={args.groups}, widths {model.widths}")
    print(table)


def _make_student(args):
    try:
        import nbformat  # noqa: F401              # a dev dependency: checked before any work
    except ImportError as err:
        raise ValueError(f"make-student needs nbformat ({err}); install it with "
                         f"python -m pip install -e \".[dev]\"") from None
    from .course.release import make_student_dir

    written = make_student_dir(args.src_dir, args.dest_dir, force=args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} student notebook(s) in {args.dest_dir}")


def _grade(args):
    try:
        import nbformat  # noqa: F401                  # the dev extra: checked before any work
    except ImportError as err:
        raise ValueError(f"grade needs nbformat ({err}); install it with "
                         f"python -m pip install -e \".[dev]\"") from None
    from .course.autograde import format_table, grade_dir

    grades = grade_dir(args.submissions, source=args.source, out=args.out, feedback=args.feedback,
                       timeout=args.timeout, log=lambda line: print(line, file=sys.stderr, flush=True),
                       **_grading_options(args), gradebook=args.gradebook, progress=True,
                       manual=args.manual)
    print(format_table(grades))
    feedback = args.feedback or str(Path(args.out).parent / "feedback")
    gradebook = args.gradebook or str(Path(args.out).parent / "gradebook.csv")
    print(f"wrote {args.out} ({len(grades)} rows), {gradebook} and one feedback file per student in {feedback}")


def _grading_options(args):
    """The options of ``grade`` that say how the students' code runs (shared with ``make-autograder``)."""
    return {"jobs": args.jobs, "sandbox": args.sandbox, "memory": args.memory, "seed": args.seed,
            "catalogue": args.catalogue}


def _make_autograder(args):
    try:
        import nbformat  # noqa: F401
    except ImportError as err:
        raise ValueError(f"make-autograder needs nbformat ({err}); install it with "
                         f"python -m pip install -e \".[dev]\"") from None
    from .course.gradescope import make_autograder

    path, notebooks = make_autograder(args.source, args.out, catalogue=args.catalogue, timeout=args.timeout,
                                      memory=args.memory)
    print(f"wrote {path}: a Gradescope autograder for {', '.join(notebooks)}")


def _bytes(text):
    """argparse type of --memory: bytes, or a number with K, M or G (binary units: 2G = 2 GiB)."""
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in ("K", "M", "G") else ""
    try:
        value = float(raw.removesuffix(unit) if unit else raw) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 2G or 512M, got {text!r}") from None
    if not math.isfinite(value) or value < 2**27:
        raise argparse.ArgumentTypeError(f"expected a size of at least 128M, got {text!r}")
    return int(value)


def _add_sandbox_options(p, jobs=True):
    """The options of how the students' code runs (``grade``, and the Gradescope bundle's defaults)."""
    p.add_argument("--timeout", type=_seconds, default=300.0,
                   help="seconds of wall time for one run of a notebook's code (default 300); a step that runs "
                        "out of time gets 0 and the rest is run again without it")
    p.add_argument("--memory", type=_bytes, default=None,
                   help="address space of each process running a student's code, e.g. 2G (the default) or 512M")
    p.add_argument("--catalogue", default=None,
                   help="the exercise catalogue: a module name or a .py file with CATALOGUE and exercises_of "
                        "(default numpy_shufflenet.course.exercises)")
    if not jobs:
        return
    p.add_argument("--jobs", type=_int_at_least(1), default=None,
                   help="submissions graded at once, one sandbox each (default: the cores this process may use)")
    p.add_argument("--sandbox", choices=("auto", "none"), default="auto",
                   help="auto (default): run each student's code under bubblewrap (bwrap), and stop with what to "
                        "do when it is missing or refused; none: without isolation (a warning; only where each "
                        "grading run is isolated otherwise)")
    p.add_argument("--seed", type=_int_at_least(0), default=None,
                   help="seed of the inputs drawn for every student (default: a new one each run, printed)")


def _seconds(text):
    """argparse type of --timeout: the number, as the grader's own :func:`~.course.autograde.check_timeout` takes it."""
    from .course.autograde import check_timeout

    try:
        return check_timeout(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") from None


def _train(args):
    settings = {k: getattr(args, k) for k in ("groups", "scale", "shuffle", "epochs", "batch_size", "lr",
                                              "train_size", "val_size", "seed") if getattr(args, k) is not None}
    start = time.perf_counter()
    _, history = train_shapes(args.out, resume=args.resume, progress=not args.quiet, baseline=args.baseline,
                              **settings)
    last = history["epochs"][-1]
    cfg = history["config"]
    print(f"ShuffleNet {cfg['scale']}x g={cfg['groups']}{'' if cfg['shuffle'] else ' (no shuffle)'}: held-out "
          f"accuracy {last['val_acc']:.3f} after {last['epoch']} epochs ({time.perf_counter() - start:.0f} s)")
    if "baseline_acc" in history:
        print(f"linear classifier on pixels (the baseline): held-out accuracy {history['baseline_acc']:.3f}")
    print(f"saved {args.out}/weights.npz, optimizer.npz, history.json, curves.png")


def _convert(args):
    from .interop.convert import convert                 # imported on demand, as the other faces do

    model, info = convert(args.checkpoint, args.out, layout=args.layout)
    params = sum(p.size for p in model.parameters())
    print(f"{info['source']} ShuffleNet v1, g={info['groups']}, widths {tuple(info['widths'])}, "
          f"{info['num_classes']} classes, shuffle_order={info['shuffle_order']!r}, {params:,} parameters")
    out = args.out if args.out.endswith(".npz") else args.out + ".npz"
    print(f"wrote {out} and {out[:-len('.npz')]}.json")


def _predict(args):
    """Top-k ImageNet classes of each image (preprocessing: numpy_shufflenet.interop.convert.predict)."""
    from .interop.convert import predict

    for image, top in predict(args.weights, args.images, k=args.top):
        print(image)
        for index, name, p in top:
            print(f"  {p:7.2%}  {index:4d}  {name}")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m numpy_shufflenet",
                                     description="ShuffleNet v1 in NumPy: rebuild the paper's numbers.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("table1", help="paper Table 1: widths and complexity for g = 1, 2, 3, 4, 8",
                            description="Rebuild paper Table 1 and the released models' FLOPs/params.")
    p.add_argument("--input-size", type=int, default=224, help="image side in pixels (default 224)")
    p.set_defaults(run=_table1)

    p = commands.add_parser("summary", help="per-layer table of shapes, parameters and multiply-adds",
                            description="Per-layer summary of one ShuffleNet.")
    p.add_argument("--groups", type=int, default=3, choices=GROUPS, help="groups g (default 3)")
    p.add_argument("--scale", type=float, default=1.0, choices=SCALES, help="width multiplier (default 1.0)")
    p.add_argument("--input-size", type=int, default=224, help="image side in pixels, at least 32 (default 224)")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--depth", type=_int_at_least(1), default=None,
                   help="sum rows into blocks named by the first DEPTH name parts (2: one row per unit)")
    p.set_defaults(run=_summary)

    p = commands.add_parser("make-student", help="student copies of exercise notebooks (solutions blanked)",
                            description="For every .ipynb in SRC_DIR write a student copy to DEST_DIR: each "
                                        "'### BEGIN SOLUTION' ... '### END SOLUTION' region becomes a "
                                        "NotImplementedError stub, each '### BEGIN HIDDEN TESTS' ... "
                                        "'### END HIDDEN TESTS' region is removed, outputs are stripped.")
    p.add_argument("src_dir", metavar="SRC_DIR", help="folder of solution notebooks")
    p.add_argument("dest_dir", metavar="DEST_DIR", help="folder for the student copies (created if needed; "
                                                        "refused if it exists and is not empty)")
    p.add_argument("--force", action="store_true", help="write into a DEST_DIR that is not empty, overwriting "
                                                        "copies of the same names")
    p.set_defaults(run=_make_student)

    p = commands.add_parser("grade", help="grade submitted notebooks: each student's code in a sandbox, the "
                                          "points from its results",
                            description="For every SUBMISSIONS/<student>/<notebook>.ipynb, take the student's "
                                        "solution and answer cells (matched by nbgrader grade_id) into the "
                                        "student copy of the notebook of --source, run it in a sandbox "
                                        "(bubblewrap: no network, no view of your files, limits on memory and "
                                        "time), call each exercise's functions on inputs drawn now from the "
                                        "exercise catalogue, and judge the returned data outside the sandbox. "
                                        "Writes --out (CSV: student, notebook, exercise, points, max_points, "
                                        "status, message), gradebook.csv (one row per student) and one feedback "
                                        "file per student.")
    p.add_argument("submissions", metavar="SUBMISSIONS", help="folder with one sub-folder of notebooks per student")
    p.add_argument("--source", default="notebooks", help="folder of instructor notebooks (default notebooks)")
    p.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    p.add_argument("--feedback", default=None, help="folder for the feedback files (default: feedback/ beside "
                                                    "--out)")
    p.add_argument("--gradebook", default=None, help="one row per student, for an LMS (default: gradebook.csv "
                                                     "beside --out)")
    _add_sandbox_options(p)
    p.add_argument("--manual", default=None, metavar="MANUAL.csv",
                   help="points given by hand to written answers (CSV: student, notebook, exercise, points), "
                        "checked before grading and merged into --out and the feedback")
    p.set_defaults(run=_grade)

    p = commands.add_parser("make-autograder", help="a Gradescope autograder (.zip) for the notebooks of --source",
                            description="Write a Gradescope autograder: setup.sh, run_autograder, this package "
                                        "(with its exercise catalogue) and the instructor notebooks of --source. "
                                        "Gradescope runs it once per submission: it grades the submitted "
                                        "notebooks with the same sandboxed runner as grade and writes "
                                        "results/results.json.")
    p.add_argument("--source", default="notebooks", help="folder of instructor notebooks, or one notebook "
                                                         "(default notebooks)")
    p.add_argument("--out", default="autograder.zip", help="zip file to write (default autograder.zip)")
    _add_sandbox_options(p, jobs=False)
    p.set_defaults(run=_make_autograder)

    p = commands.add_parser("train", help="train a small ShuffleNet on the generated shapes data set",
                            description="Train a ShuffleNet on generated 32x32 shape images (8 classes) with SGD "
                                        "and a linear learning-rate decay; print held-out accuracy beside a linear "
                                        "baseline; save weights, history and a curve PNG. Defaults: "
                                        + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()) + ".")
    p.add_argument("--groups", type=int, choices=GROUPS, help=f"groups g (default {DEFAULTS['groups']})")
    p.add_argument("--scale", type=float, choices=SCALES, help=f"width multiplier (default {DEFAULTS['scale']})")
    p.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                   help="drop every channel shuffle (the paper's Table 3 ablation)")
    p.add_argument("--epochs", type=_int_at_least(1), help=f"epochs (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=_int_at_least(1), help=f"images per step (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=_learning_rate, help=f"initial learning rate (default {DEFAULTS['lr']})")
    p.add_argument("--train-size", type=_int_at_least(1), help=f"training images (default {DEFAULTS['train_size']})")
    p.add_argument("--val-size", type=_int_at_least(1), help=f"held-out images (default {DEFAULTS['val_size']})")
    p.add_argument("--seed", type=_int_at_least(0), help=f"seed of data, weights and order (default "
                                                         f"{DEFAULTS['seed']})")
    p.add_argument("--out", type=_out_dir, default="runs/shapes", help="folder for weights, history and curves "
                                                                       "(default runs/shapes)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the linear baseline")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)

    p = commands.add_parser("convert", help="a PyTorch checkpoint of the authors' or mmpretrain's ShuffleNet v1 "
                                            "to a .npz weight file",
                            description="Read CHECKPOINT (.pth / .pth.tar, zip or legacy format) without PyTorch "
                                        "and without running pickled code, rebuild the network it holds (groups "
                                        "and widths from its shapes) and write its weights to OUT plus OUT's "
                                        ".json (source, architecture, class names) for predict.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the .pth / .pth.tar file")
    p.add_argument("--out", default="weights.npz", help="weight file to write (default weights.npz)")
    p.add_argument("--layout", choices=("official", "mmpretrain"), default=None,
                   help="names of the checkpoint (default: detected)")
    p.set_defaults(run=_convert)

    p = commands.add_parser("predict", help="top-5 ImageNet classes of images, with converted weights",
                            description="Classify each IMAGE with weights written by convert: short side "
                                        "resized to 256 (bilinear), centre crop 224, then BGR 0..255 (the "
                                        "authors' weights) or RGB normalised by the ImageNet mean and std "
                                        "(mmpretrain's), as each evaluated.")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--weights", required=True, help="a .npz written by convert (its .json beside it)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")
    p.set_defaults(run=_predict)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

