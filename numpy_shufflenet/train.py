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
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .functional import softmax_cross_entropy
from .data import batches
from .nn import Flatten, Linear, Sequential
from .optim import SGD, linear_lr
from .weights import load_weights, save_weights


def evaluate(model, x, y, batch_size=256):
    """Mean loss and accuracy of ``model`` on ``(x, y)`` in eval mode (the model's mode is restored after)."""
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
    history = new_history() if history is None else history
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total_steps = epochs * steps_per_epoch
    for epoch in range(len(history["epochs"]), epochs if stop_after is None else min(stop_after, epochs)):
        model.train()
        start, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = tqdm(batches(x_train, y_train, batch_size, rng=np.random.default_rng([seed, epoch])),
                   total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True)
        for xb, yb in bar:
            optimizer.lr = linear_lr(lr, len(history["step_loss"]), total_steps)
            logits = model(xb)
            loss, dlogits = softmax_cross_entropy(logits, yb, label_smoothing=label_smoothing)
            model.backward(dlogits)
            optimizer.step()
            history["step_loss"].append(loss)
            seen += len(yb)
            loss_sum += loss * len(yb)
            correct += int(np.sum(logits.argmax(axis=1) == yb))
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{seen / (time.perf_counter() - start):.0f}")
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
def save_checkpoint(out_dir, model, optimizer, history):
    """Write ``weights.npz`` (the model, a weight file :func:`~numpy_shufflenet.weights.load_weights` reads),
    ``optimizer.npz`` (momentum buffers) and ``history.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, out_dir / "weights.npz")
    np.savez(out_dir / "optimizer.npz", **optimizer.state_dict())
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))


def load_checkpoint(out_dir, model, optimizer):
    """Restore what :func:`save_checkpoint` wrote; returns the history. Clear errors for missing or bad files."""
    out_dir = Path(out_dir)
    for name in ("weights.npz", "optimizer.npz", "history.json"):
        if not (out_dir / name).is_file():
            raise ValueError(f"resume: expected {name} in {out_dir}, found none")
    load_weights(model, out_dir / "weights.npz")
    with np.load(out_dir / "optimizer.npz", allow_pickle=False) as archive:
        optimizer.load_state_dict({k: archive[k] for k in archive.files})
    try:
        history = json.loads((out_dir / "history.json").read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"resume: {out_dir / 'history.json'} is not valid JSON ({err})") from None
    if not isinstance(history, dict) or "epochs" not in history or "step_loss" not in history:
        raise ValueError(f"resume: {out_dir / 'history.json'} is not a training history")
    return history


def _saved_config(out_dir):
    path = Path(out_dir) / "history.json"
    if not path.is_file():
        raise ValueError(f"resume: expected history.json in {out_dir}, found none")
    try:
        return json.loads(path.read_text()).get("config", {})
    except (json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"resume: {path} is not a training history ({err})") from None


def plot_history(history, baseline_acc=None):
    """Loss per step and held-out accuracy per epoch, side by side; returns a matplotlib Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    steps = np.arange(1, len(history["step_loss"]) + 1)
    ax_loss.plot(steps, history["step_loss"], lw=0.6, alpha=0.5, label="each step")
    if len(steps) >= 20:
        k = max(len(steps) // 50, 5)
        smooth = np.convolve(history["step_loss"], np.ones(k) / k, mode="valid")
        ax_loss.plot(steps[k - 1:], smooth, lw=1.8, label=f"mean of {k}")
    ax_loss.set(xlabel="step", ylabel="training loss", title="Training loss")
    ax_loss.legend()
    epochs = [e["epoch"] for e in history["epochs"]]
    ax_acc.plot(epochs, [e["train_acc"] for e in history["epochs"]], "o-", label="training")
    ax_acc.plot(epochs, [e["val_acc"] for e in history["epochs"]], "s-", label="held-out")
    if baseline_acc is not None:
        ax_acc.axhline(baseline_acc, color="gray", ls="--", label="linear baseline (held-out)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="Accuracy", xticks=epochs)
    ax_acc.legend(loc="upper left")
    return fig


# -- the whole recipe, as the command line runs it ----------------------------------------------------------
DEFAULTS = {"groups": 3, "scale": 0.5, "shuffle": True, "epochs": 8, "batch_size": 64, "lr": 0.1,
            "weight_decay": 4e-5, "label_smoothing": 0.0, "train_size": 16000, "val_size": 2000,
            "image_size": 32, "seed": 0}


def train_shapes(out=None, *, resume=False, stop_after=None, progress=True, baseline=True, **overrides):
    """Train a ShuffleNet on the generated shapes data set; the recipe of ``python -m numpy_shufflenet train``.

    Settings (``DEFAULTS``, overridable by keyword): a 0.5x g=3 ShuffleNet started with zero-initialised residual
    branches, SGD with momentum 0.9, learning rate 0.1 decaying linearly to 0, 8 epochs of 16,000 images 32x32.
    With ``out`` it writes a checkpoint (``weights.npz``, ``optimizer.npz``, ``history.json``) after every epoch and
    ``curves.png`` at the end; ``resume=True`` continues from the checkpoint in ``out``, with its saved settings
    unless overridden. ``stop_after=k`` pauses after epoch ``k`` (the schedule still spans every epoch).

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
    saved = {}
    if resume:
        if out is None:
            raise ValueError("train_shapes: resume=True expects the folder of a previous run (out), got None")
        saved = {k: v for k, v in _saved_config(out).items() if k in DEFAULTS}
    cfg = {**DEFAULTS, **saved, **overrides}           # a resumed run keeps its settings unless told otherwise
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

