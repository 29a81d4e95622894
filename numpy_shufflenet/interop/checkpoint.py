"""Read a PyTorch checkpoint (``.pth``, ``.pth.tar``) into NumPy arrays, without PyTorch and without running
anything the file asks for.

``torch.save(obj, f)`` writes ``obj`` with Python's :mod:`pickle`, except that every tensor's numbers are kept
out of the pickle: the pickle holds a *persistent id* ``("storage", storage_type, key, location, numel, ...)``
for each storage (a flat buffer of ``numel`` numbers of one dtype) and, for each tensor, a call
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`` that views the storage.
The raw storages are stored beside the pickle, in one of two layouts:

* **zip** (PyTorch >= 1.6, the default since): an uncompressed zip archive ``<name>/data.pkl`` (the pickle),
  ``<name>/data/<key>`` (one record of raw bytes per storage), ``<name>/byteorder`` (``little`` or ``big``;
  absent in old files, meaning little) and a few version records.
* **legacy** (PyTorch < 1.6, e.g. the 2019 releases; ``_use_new_zipfile_serialization=False`` today): one stream
  of five pickles, the magic number ``0x1950a86a20f9469cfc6c``, the protocol version ``1001``, a dict of system
  information (``little_endian``, ...), the object itself, then the list of storage keys; after them, for each key
  in that order, an int64 element count and the storage's raw bytes.

Unpickling is *restricted*: the only globals a tensor checkpoint needs are served
(``collections.OrderedDict``, the tensor-rebuild functions of ``torch._utils``, the storage types such as
``torch.FloatStorage``, the dtypes and ``torch.Size``, and the data types ``set``, ``frozenset``, ``bytearray``
and ``complex``), each by a stand-in of our own that only builds NumPy
arrays; any other global (``os.system``, ``builtins.eval``, a model class, ...) stops the load with a
:class:`CheckpointRefusedError` that names it, before it is looked up, so nothing from the file ever runs.
Sizes are checked before anything is allocated: every storage must lie inside the file, every tensor inside its
storage, and the tensors together may not claim more memory than the storages hold. A broken file is a clear
``ValueError``.
"""

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import numpy as np

LAYER = "load_checkpoint"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C      # the legacy format's first pickle
LEGACY_PROTOCOL = 1001                      # its second
MAX_PICKLE_BYTES = 256 * 2**20              # the object pickle of a checkpoint (tensor data is outside it)
MAX_NESTING = 64                            # dicts/lists inside dicts/lists; checkpoints use 2 or 3

# PyTorch's storage classes and dtypes, by the names the pickle uses (module ``torch``) -> NumPy dtype code.
# "bfloat16" has no NumPy dtype: its 16 bits are the top half of a float32, which is what we return.
STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bfloat16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?", "UntypedStorage": "u1",
}
DTYPES = {
    "float64": "f8", "double": "f8", "float32": "f4", "float": "f4", "float16": "f2", "half": "f2",
    "bfloat16": "bfloat16", "int64": "i8", "long": "i8", "int32": "i4", "int": "i4", "int16": "i2",
    "short": "i2", "int8": "i1", "uint8": "u1", "bool": "?",
}


class CheckpointRefusedError(ValueError):
    """The checkpoint asks for a global that a tensor checkpoint does not need; nothing of it was run."""


# --------------------------------------------------------------------------------------------------------------
# What the pickle builds: placeholders, turned into arrays once every storage's bytes are known
# --------------------------------------------------------------------------------------------------------------
class _Marker(NamedTuple):
    """A storage type, dtype or class named by the pickle (``torch.FloatStorage``, ``torch.float32``, ...)."""
    kind: str          # "storage", "dtype" or "class"
    name: str


class _Storage(NamedTuple):
    """One storage: ``numel`` elements of ``dtype`` under ``key``; ``view`` = (offset, numel) of an old-style
    storage view inside it (legacy format only), else None."""
    key: str
    dtype: str
    numel: int
    view: tuple = None


class _Tensor(NamedTuple):
    """A tensor to build: ``size`` elements from ``storage``, starting at ``offset`` with ``stride``."""
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple
    dtype: str
    negative: bool


def _fail(message):
    raise ValueError(f"{LAYER}: {message}")


def _check_ints(name, values, minimum=0):
    if not isinstance(values, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                                 for v in values):
        _fail(f"expected the tensor's {name} to be a tuple of integers >= {minimum}, got {values!r}")
    return values


def _tensor(storage, offset, size, stride, dtype=None, metadata=None):
    if not isinstance(storage, _Storage):
        _fail(f"expected a storage as the first argument of a tensor, got {type(storage).__name__}")
    (offset,) = _check_ints("storage offset", (offset,))
    size, stride = _check_ints("size", tuple(size)), _check_ints("stride", tuple(stride))
    if len(size) != len(stride):
        _fail(f"expected a tensor's size and stride to have the same length, got {size} and {stride}")
    if dtype is None:
        dtype = storage.dtype
    elif storage.dtype != "u1":
        _fail(f"expected an untyped storage under a tensor of explicit dtype, got {storage.dtype}")
    metadata = metadata or {}
    if not isinstance(metadata, dict) or set(metadata) - {"neg", "conj"}:
        _fail(f"expected tensor metadata with only 'neg' and 'conj' flags, got {metadata!r}")
    return _Tensor(storage, offset, size, stride, dtype, bool(metadata.get("neg")))


class _Function:
    """A stand-in for one allowed function of the pickle: calls ``fn`` with the pickle's arguments, which are
    checked there. Immutable (the pickle's BUILD opcode cannot re-point it) and made fresh for every load."""

    __slots__ = ("name", "fn")

    def __init__(self, name, fn):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fn", fn)

    def __setattr__(self, key, value):
        raise AttributeError(f"{self.name} cannot be changed")

    def __call__(self, *args):
        try:
            return self.fn(*args)
        except TypeError as err:
            _fail(f"{self.name} called with arguments it does not take ({err})")


def _rebuild_tensor(storage, offset, size, stride):
    return _tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    return _tensor(storage, offset, size, stride, metadata=metadata)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
    if not (isinstance(dtype, _Marker) and dtype.kind == "dtype"):
        _fail(f"expected a torch dtype in _rebuild_tensor_v3, got {dtype!r}")
    return _tensor(storage, offset, size, stride, DTYPES[dtype.name], metadata)


def _rebuild_parameter(data, requires_grad, hooks, state=None):
    if not isinstance(data, _Tensor):
        _fail(f"expected a tensor inside a Parameter, got {type(data).__name__}")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if not (isinstance(func, _Function) and isinstance(new_type, _Marker) and new_type.kind == "class"
            and isinstance(args, tuple)):
        _fail("expected _rebuild_from_type_v2(rebuild function, tensor class, args, state)")
    return func(*args)


def _size(values=()):
    return _check_ints("size", tuple(values))


def _encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        _fail(f"expected _codecs.encode(str, 'latin1') (how protocol 2 writes bytes), got encoding {encoding!r}")
    return text.encode("latin1")


def _data_type(kind):
    """set, frozenset, bytearray and complex, as protocol 2 writes them (``__builtin__.set([...])``), from data only."""
    def build(*args):
        items = [i for a in args if isinstance(a, (list, tuple)) for i in a]
        if not all(isinstance(a, (list, tuple, str, bytes, int, float)) for a in args) \
                or any(isinstance(i, (_Tensor, _Storage, _Marker)) for i in items):
            _fail(f"expected plain data as the arguments of {kind.__name__}, got {[type(a).__name__ for a in args]}")
        return kind(*args)
    return build


_FUNCTIONS = {
    "torch._utils._rebuild_tensor": _rebuild_tensor, "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3, "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2, "torch.Size": _size, "_codecs.encode": _encode,
}
for _module in ("builtins", "__builtin__"):
    _FUNCTIONS.update({f"{_module}.{kind.__name__}": _data_type(kind) for kind in (set, frozenset, bytearray, complex)})


class _RestrictedUnpickler(pickle.Unpickler):
    """Python's unpickler with every global looked up in our short table instead of imported."""

    def __init__(self, file, storage_id):
        super().__init__(file)
        self._storage_id = storage_id       # persistent id -> _Storage, per format; None allows none

    def find_class(self, module, name):
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":
            return OrderedDict
        if full in _FUNCTIONS:
            return _Function(full, _FUNCTIONS[full])
        if module == "torch" and name in STORAGE_DTYPES:
            return _Marker("storage", name)
        if module == "torch" and name in DTYPES:
            return _Marker("dtype", name)
        if full in ("torch.Tensor", "torch.nn.parameter.Parameter"):
            return _Marker("class", full)
        raise CheckpointRefusedError(
            f"{LAYER}: refused: the file asks for the global {full!r}, which a tensor checkpoint does not need "
            f"(allowed: collections.OrderedDict, torch.Size, torch._utils rebuild functions, torch storage types "
            f"and dtypes, set, bytearray, complex); nothing from the file was run. Only load checkpoints whose "
            f"origin you trust, and save weights alone with torch.save(model.state_dict(), path)")

    def persistent_load(self, pid):
        if self._storage_id is None:
            _fail(f"expected no tensor storage in this part of the file, got {pid!r}")
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage")):
            _fail(f"expected a persistent id ('storage', ...), got {str(pid)[:80]!r}")
        return self._storage_id(pid)


def _storage_type(marker):
    if not (isinstance(marker, _Marker) and marker.kind == "storage"):
        _fail(f"expected a torch storage type in a persistent id, got {marker!r}")
    return STORAGE_DTYPES[marker.name]


def _key(key):
    key = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    if not isinstance(key, str) or not key or "/" in key or ".." in key:
        _fail(f"expected a storage key such as '0', got {key!r}")
    return key


def _numel(numel):
    if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
        _fail(f"expected a storage's element count to be an integer >= 0, got {numel!r}")
    return numel


def _unpickle(data, storage_id=None):
    try:
        return _RestrictedUnpickler(io.BytesIO(data) if isinstance(data, bytes) else data, storage_id).load()
    except CheckpointRefusedError:
        raise
    except ValueError as err:
        if str(err).startswith(LAYER):
            raise
        _fail(f"the pickle inside is broken ({err})")
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, KeyError, RecursionError,
            MemoryError, OverflowError, UnicodeDecodeError, struct.error) as err:
        _fail(f"the pickle inside is broken ({type(err).__name__}: {err})")


# --------------------------------------------------------------------------------------------------------------
# From storages' bytes to arrays
# --------------------------------------------------------------------------------------------------------------
def _itemsize(code):
    return 2 if code == "bfloat16" else np.dtype(code).itemsize


def _as_array(raw, code, count, byteorder):
    """``count`` elements of dtype ``code`` from the bytes ``raw`` (a view, not a copy)."""
    prefix = "<" if byteorder == "little" else ">"
    if code == "bfloat16":
        bits = np.frombuffer(raw, dtype=prefix + "u2", count=count).astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(code).newbyteorder(prefix), count=count)


def _build_tensor(t, buffers):
    """The array of tensor ``t``, copied out of its storage's buffer after checking it lies inside."""
    base = buffers[t.storage.key]
    start, numel = (0, t.storage.numel) if t.storage.view is None else t.storage.view
    if start + numel > base.size:
        _fail(f"a storage view [{start}, {start + numel}) lies outside storage {t.storage.key!r} of "
              f"{base.size} elements")
    raw = base[start:start + numel]
    if t.dtype != t.storage.dtype:                      # _rebuild_tensor_v3 over untyped bytes
        item = _itemsize(t.dtype)
        raw = _as_array(raw.tobytes()[:numel // item * item], t.dtype, numel // item, "little")
    count = int(np.prod(t.size, dtype=np.int64)) if t.size else 1
    if count:
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
        if last >= raw.size:
            _fail(f"a tensor of size {t.size}, stride {t.stride} and offset {t.offset} reaches element {last} "
                  f"of a storage with {raw.size}")
        view = np.lib.stride_tricks.as_strided(raw[t.offset:], shape=t.size,
                                               strides=[s * raw.itemsize for s in t.stride], writeable=False)
        out = np.array(view, dtype=raw.dtype.newbyteorder("="), order="C")
    else:
        out = np.zeros(t.size, dtype=raw.dtype.newbyteorder("="))
    return -out if t.negative else out


def _collect_tensors(obj, found, depth=0):
    if depth > MAX_NESTING:
        _fail(f"expected containers nested at most {MAX_NESTING} deep")
    if isinstance(obj, _Tensor):
        found[id(obj)] = obj
    elif isinstance(obj, _Storage):                     # a storage saved on its own: a 1-D array
        found[id(obj)] = _Tensor(obj, 0, (obj.numel,) if obj.view is None else (obj.view[1],), (1,), obj.dtype,
                                 False)
    elif isinstance(obj, dict):
        for value in obj.values():
            _collect_tensors(value, found, depth + 1)
    elif isinstance(obj, (list, tuple)) and not isinstance(obj, _Marker):
        for value in obj:
            _collect_tensors(value, found, depth + 1)


def _replace_tensors(obj, arrays):
    if isinstance(obj, (_Tensor, _Storage)):
        return arrays[id(obj)]
    if isinstance(obj, dict):
        return type(obj)((k, _replace_tensors(v, arrays)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_replace_tensors(v, arrays) for v in obj]
    if isinstance(obj, tuple) and not isinstance(obj, _Marker):
        return tuple(_replace_tensors(v, arrays) for v in obj)
    if isinstance(obj, _Marker):
        return f"torch.{obj.name}"
    return obj


def _materialize(obj, storages, read_storage, byteorder):
    """Replace every tensor placeholder in ``obj`` by its array; ``read_storage(key, nbytes)`` gives the bytes."""
    tensors = {}
    _collect_tensors(obj, tensors)
    stored = sum(s.numel * _itemsize(s.dtype) for s in storages.values())
    claimed = sum(int(np.prod(t.size, dtype=np.float64)) * _itemsize(t.dtype) for t in tensors.values())
    if claimed > 2 * stored + 2**20:
        _fail(f"the tensors claim {claimed} bytes, far more than the {stored} bytes of storage in the file")
    buffers = {key: _as_array(read_storage(key, s.numel * _itemsize(s.dtype)), s.dtype, s.numel, byteorder)
               for key, s in storages.items()}
    arrays = {i: _build_tensor(t, buffers) for i, t in tensors.items()}
    return _replace_tensors(obj, arrays)


# --------------------------------------------------------------------------------------------------------------
# The two formats
# --------------------------------------------------------------------------------------------------------------
def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [i for i in archive.infolist() if i.filename.endswith("data.pkl")
                   and i.filename.count("/") == 1]
        if len(pickles) != 1:
            _fail(f"expected one '<name>/data.pkl' record in the zip archive (torch.save's format), "
                  f"found {len(pickles)}")
        prefix = pickles[0].filename[:-len("data.pkl")]
        records = {i.filename: i for i in archive.infolist()}
        if pickles[0].file_size > MAX_PICKLE_BYTES:
            _fail(f"expected data.pkl of at most {MAX_PICKLE_BYTES} bytes, got {pickles[0].file_size}")
        byteorder = "little"
        if prefix + "byteorder" in records:
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                _fail(f"expected byteorder 'little' or 'big', got {byteorder!r}")
        storages = {}

        def storage_id(pid):
            if len(pid) != 5:
                _fail(f"expected a zip-format persistent id ('storage', type, key, location, numel), got {pid!r}")
            _, marker, key, _location, numel = pid
            key, code, numel = _key(key), _storage_type(marker), _numel(numel)
            if key in storages:
                if storages[key].dtype != code:
                    _fail(f"storage {key!r} is declared with two dtypes")
                return storages[key]
            info = records.get(f"{prefix}data/{key}")
            if info is None:
                _fail(f"storage {key!r} is named in data.pkl but its record {prefix}data/{key} is missing")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != numel * _itemsize(code):
                _fail(f"expected record data/{key} to hold {numel * _itemsize(code)} uncompressed bytes "
                      f"({numel} x {code}), got {info.file_size} bytes (compression {info.compress_type})")
            storages[key] = _Storage(key, code, numel)
            return storages[key]

        obj = _unpickle(archive.read(pickles[0]), storage_id)
        return _materialize(obj, storages, lambda key, nbytes: archive.read(f"{prefix}data/{key}"), byteorder)


def _load_legacy(data):
    stream = io.BytesIO(data)
    magic = _unpickle(stream)
    if magic != LEGACY_MAGIC:
        _fail(f"expected the legacy format's magic number {LEGACY_MAGIC:#x} at the start, got {magic!r}")
    protocol = _unpickle(stream)
    if protocol != LEGACY_PROTOCOL:
        _fail(f"expected legacy protocol version {LEGACY_PROTOCOL}, got {protocol!r}")
    sys_info = _unpickle(stream)
    if not isinstance(sys_info, dict):
        _fail(f"expected the legacy format's system information dict, got {type(sys_info).__name__}")
    byteorder = "little" if sys_info.get("little_endian", True) else "big"
    storages = {}

    def storage_id(pid):
        if len(pid) != 6:
            _fail(f"expected a legacy persistent id ('storage', type, key, location, numel, view), got {pid!r}")
        _, marker, key, _location, numel, view = pid
        key, code, numel = _key(key), _storage_type(marker), _numel(numel)
        root = storages.setdefault(key, _Storage(key, code, numel))
        if root.dtype != code or root.numel != numel:
            _fail(f"storage {key!r} is declared twice with different dtypes or sizes")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            _fail(f"expected a storage view (key, offset, size), got {view!r}")
        return _Storage(key, code, numel, (_numel(view[1]), _numel(view[2])))

    obj = _unpickle(stream, storage_id)
    keys = _unpickle(stream)
    if not isinstance(keys, list) or set(map(_key, keys)) != set(storages) or len(keys) != len(storages):
        _fail(f"expected the list of the {len(storages)} storage keys after the object, got {str(keys)[:80]}")
    offsets, position = {}, stream.tell()
    for key in map(_key, keys):
        nbytes = storages[key].numel * _itemsize(storages[key].dtype)
        if position + 8 + nbytes > len(data):
            _fail(f"the file is truncated: storage {key!r} needs {nbytes} bytes at offset {position + 8}, the file "
                  f"has {len(data)}")
        (count,) = struct.unpack("<q" if byteorder == "little" else ">q", data[position:position + 8])
        if count != storages[key].numel:
            _fail(f"storage {key!r} is declared with {storages[key].numel} elements but stored with {count}")
        offsets[key] = position + 8
        position += 8 + nbytes
    view = memoryview(data)
    return _materialize(obj, storages, lambda key, nbytes: view[offsets[key]:offsets[key] + nbytes], byteorder)


def load_checkpoint(path):
    """Read a PyTorch checkpoint into NumPy: the saved object with every tensor replaced by a NumPy array.

    Parameters
    ----------
    path : str or Path
        A file written by ``torch.save`` (``.pth``, ``.pth.tar``, ``.pt``), zip or legacy format.

    Returns
    -------
    The saved object (usually a dict, e.g. ``{"state_dict": OrderedDict(name -> array), ...}``); tensors become
    C-contiguous arrays of their dtype (bfloat16 becomes float32), storage types and dtypes named outside a
    tensor become strings such as ``"torch.float32"``.

    Raises
    ------
    CheckpointRefusedError (a ValueError)
        The pickle asks for a global outside the short list a tensor checkpoint needs (module docstring);
        nothing of the file was run.
    ValueError
        The file is missing, truncated, garbled, of another format, or declares sizes it does not hold.
    """
    path = Path(path)
    if not path.is_file():
        _fail(f"expected a checkpoint file, got {str(path)!r}, which is not a file")
    try:
        return _load(path)
    except ValueError as err:                 # name the file in every message (CheckpointRefusedError included)
        message = str(err).removeprefix(f"{LAYER}: ")
        raise type(err)(f"{LAYER}: {path}: {message}") from None


def _load(path):
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":                            # a zip archive's first local header
        try:
            return _load_zip(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as err:
            _fail(f"a broken zip checkpoint ({type(err).__name__}: {err})")
    data = path.read_bytes()
    if data[:1] != b"\x80":
        if data[:262].endswith(b"ustar") or data[257:262] == b"ustar":
            _fail("a tar archive: the tar checkpoint format of PyTorch < 0.4 is not supported")
        _fail(f"neither a zip nor a legacy PyTorch checkpoint (it does not start with a pickle; first bytes "
              f"{data[:8]!r})")
    return _load_legacy(data)
