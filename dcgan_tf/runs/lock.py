"""One writer per run folder: an exclusive OS file lock (flock) on `<folder>/run.lock`, released when the process
ends however it ends, so a killed writer never leaves a stale lock. The holder's pid, host, start time and command are
written into the file, so a second writer can say who holds the run."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import sys
import time

from dcgan_tf.runs.folders import RunError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked
    fcntl = None

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"
WAIT_LOG_SECONDS = 30  # a waiting writer says again who it waits for this often
_HELD: dict[str, int] = {}  # folders this process holds, and how many times: a holder may lock its folder again


class RunFolderGoneError(RunError):
    """The run's folder (or its run.lock) was removed or replaced while this process held the lock: another
    process may now hold a new lock on a new folder of the same name, so this one must stop writing there."""


class RunBusyError(RunError):
    """Another process holds the run's lock; `holder` is what it wrote about itself ({} if nothing yet)."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


def describe_holder(holder: dict) -> str:
    """'pid 123 on host, since 2026-11-29 22:40:01 (python main.py --train ...)', or a plain 'another process'."""
    if not holder.get("pid"):
        return "another process"
    text = f"pid {holder['pid']} on {holder.get('host', '?')}"
    if holder.get("started"):
        text += f", since {holder['started']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def read_holder(folder: str) -> dict:
    """What the current (or last) holder wrote into the lock file; {} when missing or unreadable."""
    try:
        with open(os.path.join(folder, LOCK_FILE), encoding="utf-8") as handle:
            value = json.loads(handle.read() or "{}")
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


class RunLock:
    """The exclusive lock of one run folder. `acquire()` fails at once (RunBusyError naming the holder) or, with
    wait=True, waits for it; `release()` (or the process ending) frees it. Use as a context manager."""

    def __init__(self, folder: str, what: str = "run", wait: bool = False):
        self.folder, self.what, self.wait = folder, what, wait
        self.path = os.path.join(folder, LOCK_FILE)
        self.handle = None
        self.reentered = None

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        key = os.path.realpath(self.folder)
        if _HELD.get(key):  # this process holds it already (e.g. --train_autoencoder, then its autoencode())
            _HELD[key] += 1
            self.reentered = key
            return self
        while True:
            os.makedirs(self.folder, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # never truncated before the lock is ours
            try:
                self._lock(handle)
            except BaseException:
                handle.close()
                raise
            if _same_file(handle, self.path):
                break
            handle.close()  # the file was removed or replaced while we waited for it: lock the one there now
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(sep=" ", timespec="seconds"),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}))
        handle.flush()
        self.handle = handle
        _HELD[key] = 1
        return self

    def _lock(self, handle) -> None:
        said = 0.0
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                holder = read_holder(self.folder)
                if not self.wait:
                    raise RunBusyError(
                        f"{self.what} {os.path.abspath(self.folder)} is being written by {describe_holder(holder)}: "
                        f"one process writes a run at a time. Wait for it to finish, or stop it (Ctrl-C, or kill "
                        f"{holder.get('pid', 'it')}) and run the same command to resume; test mode, --visualize and "
                        f"--compare can run beside it", holder) from None
                if time.monotonic() - said > WAIT_LOG_SECONDS:
                    log.info("waiting for %s to finish with %s", describe_holder(holder), os.path.abspath(self.folder))
                    said = time.monotonic()
                time.sleep(0.5)

    def still_held(self) -> bool:
        """Whether the file this process locked is still the folder's run.lock (False once the folder, or the
        file, was removed or replaced: a second process could then lock a new one beside us)."""
        if self.handle is None:
            return True  # reentered, or no flock on this system: nothing of ours to compare
        return _same_file(self.handle, self.path)

    def check_still_held(self, before: str = "writing") -> None:
        """RunFolderGoneError unless still_held(), saying what this process stopped before."""
        if not self.still_held():
            raise RunFolderGoneError(
                f"{self.what} folder {os.path.abspath(self.folder)} was removed or replaced while this process "
                f"wrote it (its {LOCK_FILE} is no longer the file this process locked): stopped before {before}, "
                f"so that nothing mixes with whatever is there now. What was trained since the last checkpoint is "
                f"lost; the same command starts the run again (or resumes it, if its checkpoints are back)")

    def release(self) -> None:
        if self.reentered:
            _HELD[self.reentered] -= 1
            self.reentered = None
            return
        if self.handle is not None:
            _HELD.pop(os.path.realpath(self.folder), None)
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(handle, path: str) -> bool:
    """Whether the open `handle` is the file at `path` now (the same device and inode; False if `path` is gone)."""
    try:
        here, opened = os.stat(path), os.fstat(handle.fileno())
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (opened.st_dev, opened.st_ino)


@contextlib.contextmanager
def holding(folder: str | None, what: str = "run", wait: bool = False):
    """RunLock(folder) for the `with` block; nothing when folder is None (a process that writes no run folder)."""
    if folder is None:
        yield None
        return
    with RunLock(folder, what, wait) as lock:
        yield lock
