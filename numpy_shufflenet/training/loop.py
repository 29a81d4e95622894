"""Training: the loop, evaluation and a linear baseline.

One training step is the whole story of the package in four lines::

    logits = model(x)                                        # forward, caching what backward needs
    loss, dlogits = softmax_cross_entropy(logits, y)         # the loss and its gradient
    model.backward(dlogits)                                  # fills every parameter's .grad
    optimizer.step()                                         # p -= lr * (momentum buffer)

Everything else here is bookkeeping: shuffling, the learning-rate schedule, a progress bar, evaluation in eval
mode. Saving and resuming a run is :mod:`numpy_shufflenet.training.runs`.
"""

import math
import sys
import time

import numpy as np
from tqdm import tqdm

from .._checks import check_int
from .data import batches
from ..functional import softmax_cross_entropy
from ..nn import Flatten, Linear, Sequential
from ..nn.module import parameter_gradients
from .optim import SGD, linear_lr

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
