"""Drawing the inputs of a case: one helper per repeated idea, so that every record draws the same way.

Every argument is drawn independently within a stated range; ``i``, the index of the case in its seed, only
makes sure that a seed always holds both dtypes and the edge cases a record asks for (``first`` values).
"""

import numpy as np

from ..exercise import Case

__all__ = ["dtype_of_case", "label", "case", "normal", "pick", "multiple_of"]


def dtype_of_case(i):
    """float64 for the even cases, float32 for the odd ones: every seed checks both."""
    return np.float32 if i % 2 else np.float64


def label(dtype=None, **params):
    """``"N=2, C=12, g=3, float32"``: the parameters a student needs to reproduce a case, then the dtype."""
    text = ", ".join(f"{k}={v}" for k, v in params.items())
    return text + (f", {np.dtype(dtype).name}" if dtype is not None else "")


def case(args, label_text, **kwargs):
    """A :class:`~numpy_shufflenet.course.exercise.Case` of positional ``args``."""
    return Case(tuple(args), kwargs, label_text)


def normal(rng, shape, dtype=np.float64, scale=1.0, shift=0.0):
    """``shift + scale * N(0, 1)`` of ``shape``, in ``dtype``."""
    return (shift + scale * rng.standard_normal(shape)).astype(dtype)


def pick(rng, i, first, choices):
    """``first[i]`` for the first cases of a seed (the edge cases every seed checks), then a random choice."""
    return first[i] if i < len(first) else choices[int(rng.integers(len(choices)))]


def multiple_of(rng, k, lo, hi):
    """``k`` times a random integer in ``[lo, hi]``."""
    return k * int(rng.integers(lo, hi + 1))
