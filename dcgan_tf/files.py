"""Files written whole or not at all (temporary file, then an atomic rename), their fingerprints, and .npz caches."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import sys

import numpy as np

log = logging.getLogger(__name__)

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A write failed for want of disk space; the message says what, where, and how to go on."""


def is_disk_full(error: BaseException) -> bool:
    """Whether an error is a write that found no space: OSError ENOSPC / EDQUOT, or a TensorFlow error (a
    checkpoint save's ResourceExhaustedError) carrying their message. Out-of-memory errors are not."""
    if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
        return True
    return any(os.strerror(number) in str(error) for number in NO_SPACE_ERRNOS)


def _existing(folder: str) -> str:
    """`folder`, or its nearest existing parent."""
    folder = os.path.abspath(folder)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder


def free_mb(folder: str) -> float:
    """Free space (MB) on the disk of `folder` (or of its nearest existing parent)."""
    return shutil.disk_usage(_existing(folder)).free / 2**20


def free_space(folders) -> list[tuple[str, float]]:
    """[(folder, free MB)] for each disk the folders are on (the first folder named on each disk)."""
    seen, found = set(), []
    for folder in folders:
        device = os.stat(_existing(folder)).st_dev
        if device not in seen:
            seen.add(device)
            found.append((folder, free_mb(folder)))
    return found


@contextlib.contextmanager
def replacing(path: str, suffix: str = ""):
    """Yield a temporary path beside `path` to write; on success it replaces `path` in one rename, so a reader
    (or a killed writer) never sees half a file. The parent folder is created; on an error the temporary is removed.

    `suffix` ends the temporary name, for writers that insist on an extension (`.weights.h5`, `.npz`).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        remove_if_present(temporary)


def write_text(path: str, text: str) -> str:
    """Replace the text file at `path` atomically (see replacing)."""
    with replacing(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def write_json(path: str, value) -> str:
    """`value` as indented JSON at `path`, atomically."""
    return write_text(path, json.dumps(value, indent=2))


class DamagedFileError(ValueError):
    """A file a run reads back is torn or is not what it should be; the message names the file and the fault."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path} is damaged: {reason}")
        self.path, self.reason = path, reason


def read_json_object(path: str) -> dict | None:
    """The JSON object at `path`; None when there is no such file; DamagedFileError naming the file when it is
    empty, torn, not JSON or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        raise DamagedFileError(path, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise DamagedFileError(path, "it is empty")
    try:
        value = json.loads(text)
    except ValueError as error:
        where = f": line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise DamagedFileError(path, f"not valid JSON ({getattr(error, 'msg', error)}{where})") from None
    if not isinstance(value, dict):
        raise DamagedFileError(path, f"a JSON {type(value).__name__}, not an object")
    return value


def set_aside(path: str, suffix: str = ".damaged", folder: str | None = None) -> str:
    """Rename `path` to `<path><suffix>` (`<path><suffix>.2` ... when taken), into `folder` if given, keeping it for
    the user to look at; the new path."""
    base = os.path.join(folder, os.path.basename(path)) if folder else path
    target, number = base + suffix, 1
    while os.path.exists(target):
        number += 1
        target = f"{base}{suffix}.{number}"
    os.replace(path, target)
    return target


def read_json(path: str) -> dict | None:
    """The JSON at `path`, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (not a log file, a pipe or a scheduler's capture): live progress bars only
    there. Keras 3 cannot tell (it treats every POSIX process as interactive)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def remove_if_present(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def file_digest(path: str) -> str:
    """sha256 of a file's bytes, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def array_fingerprint(array: np.ndarray) -> str:
    """sha256 of an array's shape and values: changes whenever an element (an image, a pixel) changes."""
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))  # no copy of the data
    return digest.hexdigest()


def write_keyed_npz(path: str, key: str, **arrays) -> str:
    """Arrays cached in an .npz under `key` (what they were made from), atomically."""
    with replacing(path, suffix=".npz") as temporary:
        np.savez(temporary, key=np.array(key), **arrays)
    return path


def read_keyed_npz(path: str, key: str, names: tuple[str, ...], what: str = "cache") -> tuple | None:
    """The arrays `names` of a cache written under `key`; None when absent, made under another key, or torn.
    `what` names the cache in the log."""
    try:
        with np.load(path, allow_pickle=False) as cache:
            if str(cache["key"]) != key:
                log.info("%s %s is stale (made from other inputs); recomputing", what, path)
                return None
            return tuple(cache[name] for name in names)
    except FileNotFoundError:
        return None
    except Exception as error:  # noqa: BLE001 - a torn or foreign file: recompute, never fail the run
        log.warning("ignoring unreadable %s %s (%s)", what, path, error)
        return None
