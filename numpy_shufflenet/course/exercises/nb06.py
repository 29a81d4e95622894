"""Notebook 06, training: the learning-rate schedule and the accuracy from logits; a written question on the
ablation."""

import numpy as np

from ...training.optim import linear_lr
from ..exercise import Exercise, Mistake, Out
from .draw import case, dtype_of_case, label, normal, pick

NOTEBOOK = "06_training_and_the_shuffle"


def _learning_rate(step, total_steps, base_lr):
    return linear_lr(base_lr, step, total_steps)


def _draw_lr(rng, i):
    total = int(rng.integers(10, 5000))
    where = pick(rng, i, ("start", "end", "after", "middle"), ("middle", "middle", "middle", "after"))
    step = {"start": 0, "end": total, "after": total + int(rng.integers(1, 100)),
            "middle": int(rng.integers(1, total))}[where]
    base_lr = float(np.round(rng.uniform(0.01, 1.0), 3))
    return case((step, total, base_lr), label(step=step, total_steps=total, base_lr=base_lr))


LEARNING_RATE = Exercise(
    "learning_rate", NOTEBOOK, "the paper's learning-rate schedule", 2, function="learning_rate",
    args=("step", "total_steps", "base_lr"), returns=(Out("lr", "number"),), draw=_draw_lr, n_cases=8,
    reference=_learning_rate, mistakes=(
        Mistake("off by one: (step + 1) / total_steps", "Step 0 runs at base_lr: lr = base_lr * (1 - step / "
                "total_steps).", lambda s, t, lr: lr * max(0.0, 1 - (s + 1) / t)),
        Mistake("not clamped at zero after the last step", "Past total_steps the formula turns negative, and a "
                "negative learning rate climbs the loss: max(0, ...).", lambda s, t, lr: lr * (1 - s / t)),
        Mistake("integer division: step // total_steps", "step // total_steps is 0 until the end: the rate never "
                "falls. Use /.", lambda s, t, lr: lr * max(0.0, 1 - s // t)),
        Mistake("the rate rises instead of falling", "The schedule starts at base_lr and falls to 0.",
                lambda s, t, lr: lr * min(1.0, s / t)),
    ))


def _accuracy(logits, labels):
    return float(np.mean(logits.argmax(axis=1) == labels))


def _draw_accuracy(rng, i):
    dt = dtype_of_case(i)
    N, K = int(rng.integers(3, 40)), int(rng.integers(2, 11))
    if N == K:
        N += 1
    logits, labels = normal(rng, (N, K), dt), rng.integers(0, K, N)
    hits = rng.random(N) < rng.uniform(0.2, 0.9)                 # some rows favour the right class
    logits[np.arange(N)[hits], labels[hits]] += 3
    return case((logits, labels), label(dt, N=N, K=K))


ACCURACY = Exercise(
    "accuracy", NOTEBOOK, "the accuracy from logits", 1, function="accuracy", args=("logits", "labels"),
    returns=(Out("accuracy", "number"),), draw=_draw_accuracy, n_cases=6, reference=_accuracy, mistakes=(
        Mistake("the number right, not the fraction", "Accuracy is the fraction of the batch classified right: "
                "divide by N (np.mean of the booleans).",
                lambda z, y: float(np.sum(z.argmax(axis=1) == y))),
        Mistake("argmin instead of argmax", "The predicted class is the one with the *largest* logit.",
                lambda z, y: float(np.mean(z.argmin(axis=1) == y))),
        Mistake("a percentage, not a fraction", "Return a number between 0 and 1.",
                lambda z, y: 100 * _accuracy(z, y)),
        Mistake("argmax over the batch axis", "Each row is one image: take the argmax along axis=1 (the classes).",
                lambda z, y: float(np.mean(z.argmax(axis=0) == y))),
    ))


QUESTION_ABLATION = Exercise("question_ablation", NOTEBOOK, "what the miniature ablation can and cannot say", 2,
                             kind="written")

EXERCISES = (LEARNING_RATE, ACCURACY, QUESTION_ABLATION)
