"""Read the tensors out of PyTorch's files with the standard library and numpy: no torch, no code run from the file.

Three layouts carry them:
- torch.save's zip archive (PyTorch >= 1.6): `<name>/data.pkl` pickles the object, each storage is `<name>/data/<key>`;
- a TorchScript archive (torch.jit.save): the same zip, data.pkl pickling the modules (`__torch__.*` objects whose
  attributes hold the parameters), with code beside it that is never read;
- torch.save's legacy stream (before 1.6): magic number, protocol, system info, the object, its storage keys, then
  each storage's bytes.
`read_tensors(path)` gives {dotted name: numpy array} for any of them (a state dict's keys as they are; a module's
parameters by attribute path, "net.layers.conv.weight"). A wheel or other zip that holds one such file is opened
through `member=`. The unpickler knows only tensors, storages and containers: any other global in the file is refused,
so a file cannot run code here.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "BFloat16Storage": "bfloat16",
}


class TorchFileError(ValueError):
    """The file is not a PyTorch file this reader understands (or is damaged); the message says what was found."""


def _dtype(name: str) -> np.dtype:
    found = _STORAGE_DTYPES[name]
    if found == "bfloat16":
        import ml_dtypes  # installed with TensorFlow
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(found)


class _StorageType:
    """torch.FloatStorage and its kind, as the pickle names them: only the element type matters here."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _dtype(name)


class _ScriptObject:
    """A TorchScript module (`__torch__.*`): its attributes, nothing else."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """torch._utils._rebuild_tensor_v2: a view of `storage` (a flat numpy array) -> a numpy array of its own."""
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[offset])
    itemsize = storage.dtype.itemsize
    needed = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride) if n > 0)
    if needed > len(storage) and all(size):
        raise TorchFileError(f"a tensor of size {size} at offset {offset} runs past its storage ({len(storage)})")
    view = np.lib.stride_tricks.as_strided(storage[offset:], size, tuple(s * itemsize for s in stride),
                                           writeable=False)
    return np.array(view)


def _rebuild_parameter(data, *_ignored):
    return data


def _ordered_dict():
    return collections.OrderedDict()


_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch", "Size"): tuple,
    # TorchScript's typed containers: the list is the value
    ("torch.jit._pickle", "build_intlist"): list,
    ("torch.jit._pickle", "build_doublelist"): list,
    ("torch.jit._pickle", "build_boollist"): list,
    ("torch.jit._pickle", "build_tensorlist"): list,
    ("torch.jit._pickle", "restore_type_tag"): lambda value, _type: value,
}


class _Unpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves storages through `load_storage(key, dtype, numel)` and refuses any global
    but tensors, storages, containers and TorchScript modules."""

    def __init__(self, stream, load_storage):
        super().__init__(stream)
        self.load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module.startswith("__torch__"):
            return type(name, (_ScriptObject,), {})
        raise TorchFileError(f"the file holds a {module}.{name}, which is not a tensor, storage or module: "
                             f"refusing to load it")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise TorchFileError(f"unknown persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError(f"unknown storage type {storage_type!r}")
        return self.load_storage(str(key), storage_type.dtype, int(numel))


# ------------------------------------------------------------------------------------------------------ layouts
def _from_zip(archive: zipfile.ZipFile):
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    if not pickles:
        raise TorchFileError("a zip archive without <name>/data.pkl: not a file torch.save or torch.jit.save wrote")
    prefix = pickles[0][:-len("data.pkl")]
    names = set(archive.namelist())
    order = archive.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
    cache = {}

    def load_storage(key, dtype, numel):
        if key not in cache:
            member = f"{prefix}data/{key}"
            if member not in names:
                raise TorchFileError(f"storage {key} is missing from the archive ({member})")
            raw = np.frombuffer(archive.read(member), dtype.newbyteorder("<" if order == "little" else ">"))
            if len(raw) < numel:
                raise TorchFileError(f"storage {key} holds {len(raw)} values, the file says {numel}")
            cache[key] = raw.astype(dtype, copy=False)
        return cache[key]

    return _Unpickler(io.BytesIO(archive.read(pickles[0])), load_storage).load()


class _Pending:
    """A legacy file's tensor before its storage's bytes are read (they follow the pickled object)."""

    def __init__(self, key: str, rest: tuple):
        self.key, self.rest = key, rest


class _StorageKey:
    def __init__(self, key: str):
        self.key = key


def _from_legacy(stream) -> object:
    stream.seek(0)
    try:
        magic = pickle.Unpickler(stream).load()
    except Exception as error:  # noqa: BLE001 - anything that is not a pickle at all
        raise TorchFileError(f"neither a zip archive nor a legacy torch.save file ({type(error).__name__})") from None
    if magic != LEGACY_MAGIC:
        raise TorchFileError("neither a zip archive nor a legacy torch.save file (no torch magic number)")
    pickle.Unpickler(stream).load()  # protocol version
    pickle.Unpickler(stream).load()  # system info (byte order, type sizes)
    dtypes = {}

    def note_storage(key, dtype, _numel):
        dtypes[key] = dtype
        return _StorageKey(key)

    class Deferring(_Unpickler):
        def find_class(self, module, name):
            if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
                return lambda storage, *rest: _Pending(storage.key, rest)
            return super().find_class(module, name)

    obj = Deferring(stream, note_storage).load()
    storages = {}
    for key in pickle.Unpickler(stream).load():
        dtype = dtypes[str(key)]
        (size,) = struct.unpack("<q", stream.read(8))
        raw = stream.read(size * dtype.itemsize)
        if len(raw) < size * dtype.itemsize:
            raise TorchFileError(f"storage {key} is cut short: the file ends early")
        storages[str(key)] = np.frombuffer(raw, dtype)
    return _resolve(obj, storages)


def _resolve(obj, storages):
    if isinstance(obj, _Pending):
        return _rebuild_tensor(storages[obj.key], *obj.rest)
    if isinstance(obj, dict):
        return type(obj)((key, _resolve(value, storages)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(value, storages) for value in obj)
    return obj


# ------------------------------------------------------------------------------------------------------ reading
def load(path: str, member: str | None = None):
    """The object pickled in a PyTorch file (tensors as numpy arrays, modules as plain objects). `member`: the file's
    name inside a zip that holds it (a wheel)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if member is not None:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as outer:
                data = outer.read(member)
        except (zipfile.BadZipFile, KeyError) as error:
            raise TorchFileError(f"{os.path.basename(path)} has no {member} ({error})") from None
    stream = io.BytesIO(data)
    if zipfile.is_zipfile(stream):
        try:
            with zipfile.ZipFile(stream) as archive:
                return _from_zip(archive)
        except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as error:
            raise TorchFileError(f"a damaged archive ({type(error).__name__}: {error})") from None
    try:
        return _from_legacy(stream)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError) as error:
        raise TorchFileError(f"a damaged legacy file ({type(error).__name__}: {error})") from None


def flatten(obj, prefix: str = "") -> dict[str, np.ndarray]:
    """Every numpy array reachable from obj (dicts by key, modules by attribute, lists by index), by dotted path."""
    found = {}
    if isinstance(obj, np.ndarray):
        found[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            found.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(obj, _ScriptObject):
        found.update(flatten(vars(obj), prefix))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            found.update(flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    return found


def read_tensors(path: str, member: str | None = None) -> dict[str, np.ndarray]:
    """{dotted name: array} of every tensor in a PyTorch file (see load)."""
    return flatten(load(path, member))
