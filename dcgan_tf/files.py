"""Files written whole or not at all (temporary file, then an atomic rename), their fingerprints, and .npz caches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os

import numpy as np

log = logging.getLogger(__name__)


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


def read_json(path: str) -> dict | None:
    """The JSON at `path`, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


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
