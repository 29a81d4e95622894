"""Stochastic gradient descent with momentum and weight decay, and the paper's linear learning-rate decay.

One step, for every parameter ``p`` with gradient ``g`` (PyTorch's ``SGD`` update)::

    g   = g + weight_decay * p          (only for conv and FC weights: arrays with more than one axis)
    buf = momentum * buf + g
    p   = p - lr * buf

As in the authors' training recipe, batch-norm ``gamma``/``beta`` and biases (one-axis arrays) get no weight
decay. The learning rate falls linearly from its initial value to 0 over training (paper Sec. 4).
"""

import numpy as np

from .._checks import check_same_keys
from ..nn import Parameter


class SGD:
    """SGD with momentum; ``params`` is a list of :class:`~numpy_shufflenet.nn.Parameter` (``model.parameters()``).

    ``steps`` counts the updates made, so that a saved training state can be checked against its history.
    """

    def __init__(self, params, lr=0.1, momentum=0.9, weight_decay=4e-5):
        self.params = list(params)
        for p in self.params:
            if not isinstance(p, Parameter):
                raise TypeError(f"SGD: expected Parameters (model.parameters()), got {type(p).__name__}")
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"SGD: expected {name} to be a number, got {value!r}")
        if not all(np.isfinite(v) and v >= 0 for v in (lr, momentum, weight_decay)):
            raise ValueError(f"SGD: expected lr, momentum, weight_decay >= 0 and finite, got {lr}, {momentum}, "
                             f"{weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers = [np.zeros_like(p.data) for p in self.params]
        self.steps = 0

    def step(self):
        """Update every parameter from its ``.grad`` (parameters without a gradient are skipped)."""
        for p, buf in zip(self.params, self.buffers):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay and p.data.ndim > 1:
                g = g + self.weight_decay * p.data
            buf *= self.momentum
            buf += g
            p.data -= p.data.dtype.type(self.lr) * buf
        self.steps += 1

    def state_dict(self):
        """The step count and the momentum buffers, as ``{"steps": 0-d int64 array, "momentum.<i>": array}``, to
        resume training exactly."""
        state = {"steps": np.array(self.steps, dtype=np.int64)}
        state.update({f"momentum.{i}": buf.copy() for i, buf in enumerate(self.buffers)})
        return state

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`'s output; every entry is checked before any buffer changes."""
        expected = self.state_dict()
        check_same_keys("SGD.load_state_dict", expected, state,
                        f"{len(self.buffers)} momentum buffers and the step count")
        for name, value in state.items():
            if not isinstance(value, np.ndarray):
                raise TypeError(f"SGD.load_state_dict: expected {name} to be a NumPy array, got "
                                f"{type(value).__name__}")
            if value.shape != expected[name].shape:
                raise ValueError(f"SGD.load_state_dict: expected {name} of shape {expected[name].shape}, got "
                                 f"{value.shape}")
            kind = "i" if name == "steps" else "f"
            if value.dtype.kind != kind:
                raise TypeError(f"SGD.load_state_dict: expected {name} to have a "
                                f"{'integer' if kind == 'i' else 'real float'} dtype, got {value.dtype}")
            if kind == "f" and not np.all(np.isfinite(value)):
                raise ValueError(f"SGD.load_state_dict: expected {name} to be finite, got NaN or inf")
        if int(state["steps"]) < 0:
            raise ValueError(f"SGD.load_state_dict: expected steps >= 0, got {int(state['steps'])}")
        for i, buf in enumerate(self.buffers):
            buf[...] = state[f"momentum.{i}"]
        self.steps = int(state["steps"])


def linear_lr(base_lr, step, total_steps):
    """The paper's schedule: ``base_lr * (1 - step / total_steps)``, reaching 0 at the end."""
    return base_lr * max(0.0, 1.0 - step / total_steps)
