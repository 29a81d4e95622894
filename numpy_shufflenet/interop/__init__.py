"""Interoperability with PyTorch: read the authors' and mmpretrain's checkpoints, write state dicts for PyTorch.

* :func:`load_checkpoint` reads a ``.pth`` / ``.pth.tar`` file without PyTorch, through a restricted unpickler
  (:mod:`~numpy_shufflenet.interop.checkpoint`).
* :func:`from_official`, :func:`from_mmpretrain` turn the state dict of the authors' ``ShuffleNetV1`` or of
  mmpretrain's into a :class:`~numpy_shufflenet.ShuffleNet` computing the same function;
  :func:`to_torch_state_dict` goes back (:mod:`~numpy_shufflenet.interop.layouts`).
* :mod:`~numpy_shufflenet.interop.imagenet`: the 1000 class names and each source's evaluation preprocessing.
* :func:`save_weights`, :func:`load_weights`: the package's own ``.npz`` weight files, read without unpickling and
  checked before anything is loaded (:mod:`~numpy_shufflenet.interop.weights`).
"""

from .checkpoint import CheckpointRefusedError, load_checkpoint
from .layouts import from_mmpretrain, from_official, to_torch_state_dict, unwrap_state_dict
from .weights import load_weights, save_weights

__all__ = ["load_checkpoint", "CheckpointRefusedError", "from_official", "from_mmpretrain", "to_torch_state_dict",
           "unwrap_state_dict", "save_weights", "load_weights"]
