"""A training run on disk: its files, resuming it exactly, and the whole recipe the command line runs.

* :func:`save_run` / :func:`load_run`: ``weights.npz`` (a weight file :func:`~numpy_shufflenet.interop.load_weights`
  reads), ``optimizer.npz`` (step count and momentum buffers) and ``history.json``; loading checks every file
  before anything changes.
* :func:`train_shapes`: a ShuffleNet trained on the generated shapes, ``python -m numpy_shufflenet train``.
"""

import json
import math
import os
from pathlib import Path

import numpy as np

from .._checks import check_int, check_out_dir
from ..interop.weights import read_npz, save_weights
from .loop import fit, linear_baseline, new_history
from .optim import SGD

# -- a run's files --------------------------------------------------------------------------------------------
CHECKPOINT_FILES = ("weights.npz", "optimizer.npz", "history.json")
EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "images_per_second")


def save_run(out_dir, model, optimizer, history):
    """Write ``weights.npz`` (the model, a weight file :func:`~numpy_shufflenet.interop.weights.load_weights` reads),
    ``optimizer.npz`` (step count and momentum buffers) and ``history.json`` into ``out_dir``.

    Each file is written beside its final name and then renamed over it, so an interrupted save leaves the
    previous checkpoint's file whole.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {"weights.npz": lambda f: save_weights(model, f),
               "optimizer.npz": lambda f: np.savez(f, **optimizer.state_dict()),
               "history.json": lambda f: f.write(json.dumps(history, indent=1).encode())}
    for name, write in writers.items():
        partial = out_dir / f".{name}.partial"
        with open(partial, "wb") as f:
            write(f)
        os.replace(partial, out_dir / name)


def load_run(out_dir, model, optimizer):
    """Restore what :func:`save_run` wrote; returns the history.

    Every file is read and checked before the model or the optimizer changes: the weights and momentum buffers
    against the model (names, shapes, dtypes, finite values), the history's structure, and the history's step
    count against the optimizer's. Any problem is a ``ValueError`` starting ``resume:`` that names the file (and
    the key).
    """
    out_dir = Path(out_dir)
    for name in CHECKPOINT_FILES:
        if not (out_dir / name).is_file():
            raise ValueError(f"resume: expected {name} in {out_dir}, found none")
    weights = read_npz(out_dir / "weights.npz", model.state_dict(), caller="resume")
    moments = read_npz(out_dir / "optimizer.npz", optimizer.state_dict(), caller="resume")
    history = read_history(out_dir / "history.json")
    steps = int(moments["steps"])
    if steps != len(history["step_loss"]):
        raise ValueError(f"resume: {out_dir / 'history.json'} records {len(history['step_loss'])} steps (key "
                         f"'step_loss') but {out_dir / 'optimizer.npz'} made {steps} (key 'steps'); the files "
                         f"are from different runs")
    model.load_state_dict(weights)               # both atomic, and every array above is already checked
    optimizer.load_state_dict(moments)
    return history


def read_history(path):
    """Read and check a ``history.json``: a dict with ``config`` (dict), ``step_loss`` (finite numbers) and
    ``epochs`` (one record per epoch, numbered 1, 2, ...); a ``ValueError`` naming the file and key otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"resume: expected {path.name} in {path.parent}, found none")
    try:
        history = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"resume: {path} is not a training history: not valid JSON ({err})") from None

    def bad(key, expected, got):
        return ValueError(f"resume: {path} is not a training history: expected key {key!r} to be {expected}, "
                          f"got {got!r:.60}")

    if not isinstance(history, dict):
        raise bad("(top level)", "a dict", history)
    for key, kind in (("config", dict), ("step_loss", list), ("epochs", list)):
        if not isinstance(history.get(key), kind):
            raise bad(key, f"a {kind.__name__}", history.get(key, "(missing)"))

    def finite_number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for i, loss in enumerate(history["step_loss"]):
        if not finite_number(loss):
            raise bad(f"step_loss[{i}]", "a finite number", loss)
    for i, record in enumerate(history["epochs"]):
        if not isinstance(record, dict):
            raise bad(f"epochs[{i}]", "a dict", record)
        for key in EPOCH_KEYS:
            if not finite_number(record.get(key)):
                raise bad(f"epochs[{i}].{key}", "a finite number", record.get(key, "(missing)"))
        if record["epoch"] != i + 1:
            raise bad(f"epochs[{i}].epoch", i + 1, record["epoch"])
    if "baseline_acc" in history and not finite_number(history["baseline_acc"]):
        raise bad("baseline_acc", "a finite number", history["baseline_acc"])
    return history


# -- the whole recipe, as the command line runs it ----------------------------------------------------------
DEFAULTS = {"groups": 3, "scale": 0.5, "shuffle": True, "epochs": 8, "batch_size": 64, "lr": 0.1,
            "weight_decay": 4e-5, "label_smoothing": 0.0, "train_size": 16000, "val_size": 2000,
            "image_size": 32, "seed": 0}


RUN_DEFINING = ("groups", "scale", "shuffle", "image_size")      # a resumed run cannot change these


def check_settings(cfg, caller):
    """Check the values of a training recipe (the keys of ``DEFAULTS``); a ``ValueError`` or ``TypeError``
    naming the setting and its value."""
    for key in ("epochs", "batch_size", "train_size", "val_size"):
        check_int(caller, key, cfg[key], 1)
    check_int(caller, "image_size", cfg["image_size"], 32)
    check_int(caller, "seed", cfg["seed"], 0)
    for key, high in (("lr", math.inf), ("weight_decay", math.inf), ("label_smoothing", 1.0)):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{caller}: expected {key} to be a number, got {value!r}")
        if not (math.isfinite(value) and 0 <= value < high):
            bound = "finite and >= 0" if high == math.inf else f"in [0, {high})"
            raise ValueError(f"{caller}: expected {key} {bound}, got {value}")
    if not isinstance(cfg["shuffle"], bool):
        raise TypeError(f"{caller}: expected shuffle to be True or False, got {cfg['shuffle']!r}")


def train_shapes(out=None, *, resume=False, stop_after=None, progress=True, baseline=True, **overrides):
    """Train a ShuffleNet on the generated shapes data set; the recipe of ``python -m numpy_shufflenet train``.

    Settings (``DEFAULTS``, overridable by keyword): a 0.5x g=3 ShuffleNet started with zero-initialised residual
    branches, SGD with momentum 0.9, learning rate 0.1 decaying linearly to 0, 8 epochs of 16,000 images 32x32.
    With ``out`` it writes a checkpoint (``weights.npz``, ``optimizer.npz``, ``history.json``) after every epoch and
    ``curves.png`` at the end; ``resume=True`` continues from the checkpoint in ``out``, with its saved settings
    unless overridden. ``stop_after=k`` pauses after epoch ``k`` (the schedule still spans every epoch).

    A resumed run must keep the network and data it was saved with (``groups``, ``scale``, ``shuffle``,
    ``image_size``: a different value is an error saying what the run was saved with) and must have epochs left
    (``epochs`` greater than the epochs done). The learning rate, batch size and other settings may change; the
    schedule then follows the new values from the step reached. Without ``resume`` a run in ``out`` is replaced.

    Returns
    -------
    model, history : the trained model and its record (``history["baseline_acc"]`` holds the linear baseline's
        held-out accuracy when ``baseline`` is True)
    """
    from ..analysis.plotting import plot_history          # matplotlib, only for the run that draws its curves
    from ..models import ShuffleNet
    from .data import make_shapes

    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"train_shapes: unexpected settings {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    if stop_after is not None:
        check_int("train_shapes", "stop_after", stop_after, 1)
    if out is not None:
        check_out_dir(out, "train_shapes")
    saved = {}
    if resume:
        if out is None:
            raise ValueError("train_shapes: resume=True expects the folder of a previous run (out), got None")
        previous = read_history(Path(out) / "history.json")
        saved = {k: v for k, v in previous["config"].items() if k in DEFAULTS}
        changed = {k: v for k, v in overrides.items() if k in RUN_DEFINING and k in saved and v != saved[k]}
        if changed:
            was = ", ".join(f"{k}={saved[k]!r}" for k in RUN_DEFINING if k in saved)
            got = ", ".join(f"{k}={v!r}" for k, v in changed.items())
            raise ValueError(f"resume: the run in {out} was saved with {was}; got {got}, which would be another "
                             f"network or data set (leave those settings out to continue it, or train into a new "
                             f"folder)")
    cfg = {**DEFAULTS, **saved, **overrides}           # a resumed run keeps its settings unless told otherwise
    check_settings(cfg, "train_shapes")
    if resume and cfg["epochs"] <= len(previous["epochs"]):
        done = len(previous["epochs"])
        raise ValueError(f"resume: the run in {out} has already trained {done} epochs; epochs={cfg['epochs']} asks "
                         f"for no more (expected epochs > {done} to continue it)")
    train_set = make_shapes(cfg["train_size"], cfg["image_size"], seed=cfg["seed"])
    val_set = make_shapes(cfg["val_size"], cfg["image_size"], seed=cfg["seed"] + 10_000)
    model = ShuffleNet(groups=cfg["groups"], scale=cfg["scale"], num_classes=8, shuffle=cfg["shuffle"],
                       rng=np.random.default_rng(cfg["seed"]), zero_init_residual=True)
    optimizer = SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"])
    history = load_run(out, model, optimizer) if resume else new_history(cfg)
    history["config"] = cfg
    if baseline and "baseline_acc" not in history:
        _, base = linear_baseline(train_set, val_set, seed=cfg["seed"])
        history["baseline_acc"] = base["epochs"][-1]["val_acc"]
    last_epoch = cfg["epochs"] if stop_after is None else min(stop_after, cfg["epochs"])
    for epoch in range(len(history["epochs"]), last_epoch):
        fit(model, optimizer, train_set, val_set, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
            label_smoothing=cfg["label_smoothing"], seed=cfg["seed"], history=history, stop_after=epoch + 1,
            progress=progress)
        if out is not None:
            save_run(out, model, optimizer, history)
    if out is not None:
        plot_history(history, history.get("baseline_acc")).savefig(Path(out) / "curves.png", dpi=100)
    return model, history

