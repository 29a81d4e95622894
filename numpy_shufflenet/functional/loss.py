r"""Softmax cross-entropy loss (PyTorch's ``CrossEntropyLoss`` with mean reduction).

With ``p = softmax(logits)`` row by row and target distribution ``q`` (one-hot on the label, or smoothed:
``q = (1 - eps) * onehot + eps / K``)::

    loss     = -(1/N) * sum_{n,k} q[n, k] * log p[n, k]
    dlogits  = (p - q) / N
"""

import numpy as np

from .._checks import check_float_array

LAYER = "softmax_cross_entropy"


def softmax_cross_entropy(logits, labels, *, label_smoothing=0.0):
    """Mean softmax cross-entropy of ``logits`` against integer ``labels``, and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (N, K)
    labels : integer ndarray, shape (N,), values in ``[0, K)``
    label_smoothing : float in [0, 1)

    Returns
    -------
    loss : float
    dlogits : ndarray, shape (N, K), same dtype as ``logits``
    """
    check_float_array(LAYER, "logits", logits, ndim=2)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{LAYER}: expected integer class labels, got dtype {labels.dtype}")
    N, K = logits.shape
    if labels.shape != (N,):
        raise ValueError(f"{LAYER}: expected labels of shape ({N},), got {labels.shape}")
    if N and (labels.min() < 0 or labels.max() >= K):
        bad = labels[(labels < 0) | (labels >= K)][0]
        raise ValueError(f"{LAYER}: expected labels in [0, {K}), got {bad}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"{LAYER}: expected label_smoothing in [0, 1), got {label_smoothing}")
    shifted = logits - logits.max(axis=1, keepdims=True)      # softmax is shift-invariant; avoids overflow
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    q = np.full_like(logits, label_smoothing / K)
    q[np.arange(N), labels] += 1.0 - label_smoothing
    loss = -(q * log_p).sum() / N
    dlogits = (np.exp(log_p) - q) / logits.dtype.type(N)
    return float(loss), dlogits
