"""Training: the loop, evaluation, a linear baseline, checkpoints that resume exactly, and loss curves.

One training step is the whole story of the package in four lines::

    logits = model(x)                                        # forward, caching what backward needs
    loss, dlogits = softmax_cross_entropy(logits, y)         # the loss and its gradient
    model.backward(dlogits)                                  # fills every parameter's .grad
    optimizer.step()                                         # p -= lr * (momentum buffer)

Everything else here is bookkeeping: shuffling, the learning-rate schedule, a progress bar, evaluation in eval
mode, and saving what is needed to continue later.
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ._checks import check_int
from .data import batches
from .functional import softmax_cross_entropy
from .nn import Flatten, Linear, Sequential
from .nn.module import parameter_gradients
from .optim import SGD, linear_lr
from .plotting import plot_history                     # it lived here first: train.plot_history still works
from .weights import read_npz, save_weights

UPDATES_PER_EPOCH = 4      # progress-bar refreshes per epoch when the output is not a terminal


def evaluate(model, x, y, batch_size=256):
    """Mean loss and accuracy of ``model`` on ``(x, y)`` in eval mode (the model's mode is restored after).

    An empty set has no mean: it is a ``ValueError``, not a division by zero.
    """
    if len(y) == 0 or len(x) != len(y):
        raise ValueError(f"evaluate: expected a non-empty set with one label per image, got {len(x)} images and "
                         f"{len(y)} labels")
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for xb, yb in batches(x, y, batch_size):
        logits = model(xb)
        loss, _ = softmax_cross_entropy(logits, yb)
        total_loss += loss * len(yb)
        correct += int(np.sum(logits.argmax(axis=1) == yb))
    model.train(was_training)
    return total_loss / len(y), correct / len(y)


def progress_bar(iterable, *, total, desc, disable=False, file=None):
    """A tqdm bar over one epoch that stays short when nobody watches it live.

    On a terminal it refreshes as usual (every 0.1 s). On any other stream (a pipe, a CI log, a Jupyter kernel's
    stderr, where each refresh is one more stored output) it refreshes only ``UPDATES_PER_EPOCH`` times per epoch:
    in Jupyter that is still one bar updating in place (``\r``), in a log a few lines per epoch.
    """
    file = sys.stderr if file is None else file
    isatty = getattr(file, "isatty", None)
    if callable(isatty) and isatty():
        return tqdm(iterable, total=total, desc=desc, disable=disable, file=file, leave=True)
    return tqdm(iterable, total=total, desc=desc, disable=disable, file=file, leave=True, mininterval=0,
                maxinterval=float("inf"), miniters=max(1, math.ceil(total / UPDATES_PER_EPOCH)))


def new_history(config=None):
    """An empty training record: per-step losses and per-epoch summaries."""
    return {"config": dict(config or {}), "step_loss": [], "epochs": []}


def fit(model, optimizer, train_set, val_set, *, epochs, batch_size, lr, label_smoothing=0.0, seed=0,
        history=None, stop_after=None, progress=True):
    """Train ``model`` until ``epochs`` epochs are done (or ``stop_after`` of them, to pause), continuing
    ``history`` if it already holds some.

    Epoch ``e`` visits the training set in the order drawn from ``default_rng([seed, e])`` and the learning rate
    at global step ``t`` is ``lr * (1 - t / (epochs * steps_per_epoch))``, so stopping after any epoch and
    resuming (same model weights, optimizer buffers and history) continues exactly the same curve.

    Returns
    -------
    history : dict with ``step_loss`` (one float per step) and ``epochs`` (one dict per epoch: train loss and
        accuracy, held-out loss and accuracy, seconds, images per second)
    """
    x_train, y_train = train_set
    epochs = check_int("fit", "epochs", epochs, 1)
    batch_size = check_int("fit", "batch_size", batch_size, 1)
    if len(y_train) == 0 or len(x_train) != len(y_train):
        raise ValueError(f"fit: expected a non-empty training set with one label per image, got {len(x_train)} "
                         f"images and {len(y_train)} labels")
    history = new_history() if history is None else history
    backward = parameter_gradients(model)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total_steps = epochs * steps_per_epoch
    for epoch in range(len(history["epochs"]), epochs if stop_after is None else min(stop_after, epochs)):
        model.train()
        start, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = progress_bar(batches(x_train, y_train, batch_size, rng=np.random.default_rng([seed, epoch])),
                           total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
        for xb, yb in bar:
            optimizer.lr = linear_lr(lr, len(history["step_loss"]), total_steps)
            logits = model(xb)
            loss, dlogits = softmax_cross_entropy(logits, yb, label_smoothing=label_smoothing)
            backward(dlogits)
            optimizer.step()
            history["step_loss"].append(loss)
            seen += len(yb)
            loss_sum += loss * len(yb)
            correct += int(np.sum(logits.argmax(axis=1) == yb))
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{seen / (time.perf_counter() - start):.0f}", refresh=False)
        seconds = time.perf_counter() - start
        val_loss, val_acc = evaluate(model, *val_set)
        history["epochs"].append({"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                                  "val_loss": val_loss, "val_acc": val_acc, "seconds": seconds,
                                  "images_per_second": seen / seconds})
        if progress:
            tqdm.write(f"epoch {epoch + 1}: held-out loss {val_loss:.3f}, accuracy {val_acc:.3f}")
    return history


def linear_baseline(train_set, val_set, *, epochs=5, batch_size=64, lr=0.01, seed=0, progress=False):
    """Softmax regression on raw pixels, trained like the network: the baseline a CNN must beat.

    Returns ``(model, history)``.
    """
    x_train, y_train = train_set
    num_classes = int(y_train.max()) + 1
    model = Sequential(Flatten(), Linear(int(np.prod(x_train.shape[1:])), num_classes,
                                         rng=np.random.default_rng(seed), dtype=x_train.dtype))
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    history = fit(model, optimizer, train_set, val_set, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  progress=progress)
    return model, history


# -- checkpoints --------------------------------------------------------------------------------------------
CHECKPOINT_FILES = ("weights.npz", "optimizer.npz", "history.json")
EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "images_per_second")


def save_checkpoint(out_dir, model, optimizer, history):
    """Write ``weights.npz`` (the model, a weight file :func:`~numpy_shufflenet.weights.load_weights` reads),
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


def load_checkpoint(out_dir, model, optimizer):
    """Restore what :func:`save_checkpoint` wrote; returns the history.

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


def check_out_dir(path, caller):
    """Refuse an output folder that is an existing file or lies under one; returns ``Path(path)``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{caller}: expected an output folder, got {path}, which is a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{caller}: expected an output folder, got {path}, which lies under the file "
                                 f"{parent}")
            break
    return path


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
    from .data import make_shapes
    from .model import ShuffleNet

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
    history = load_checkpoint(out, model, optimizer) if resume else new_history(cfg)
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
            save_checkpoint(out, model, optimizer, history)
    if out is not None:
        plot_history(history, history.get("baseline_acc")).savefig(Path(out) / "curves.png", dpi=100)
    return model, history

