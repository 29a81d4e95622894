"""Stochastic gradient descent with momentum and weight decay, and the paper's linear learning-rate decay.

One step, for every parameter ``p`` with gradient ``g`` (PyTorch's ``SGD`` update)::

    g   = g + weight_decay * p          (only for conv and FC weights: arrays with more than one axis)
    buf = momentum * buf + g
    p   = p - lr * buf

As in the authors' training recipe, batch-norm ``gamma``/``beta`` and biases (one-axis arrays) get no weight
decay. The learning rate falls linearly from its initial value to 0 over training (paper Sec. 4).
"""

import numpy as np

from .nn import Parameter


class SGD:
    """SGD with momentum; ``params`` is a list of :class:`~numpy_shufflenet.nn.Parameter` (``model.parameters()``)."""

    def __init__(self, params, lr=0.1, momentum=0.9, weight_decay=4e-5):
        self.params = list(params)
        for p in self.params:
            if not isinstance(p, Parameter):
                raise TypeError(f"SGD: expected Parameters (model.parameters()), got {type(p).__name__}")
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: expected lr, momentum, weight_decay >= 0, got {lr}, {momentum}, {weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers = [np.zeros_like(p.data) for p in self.params]

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

    def state_dict(self):
        """Momentum buffers, as ``{"momentum.<i>": array}``, to resume training exactly."""
        return {f"momentum.{i}": buf.copy() for i, buf in enumerate(self.buffers)}

    def load_state_dict(self, state):
        if len(state) != len(self.buffers):
            raise ValueError(f"SGD.load_state_dict: expected {len(self.buffers)} momentum buffers, got {len(state)}")
        for i, buf in enumerate(self.buffers):
            value = state[f"momentum.{i}"]
            if value.shape != buf.shape:
                raise ValueError(f"SGD.load_state_dict: expected momentum.{i} of shape {buf.shape}, got {value.shape}")
            buf[...] = value


def linear_lr(base_lr, step, total_steps):
    """The paper's schedule: ``base_lr * (1 - step / total_steps)``, reaching 0 at the end."""
    return base_lr * max(0.0, 1.0 - step / total_steps)
