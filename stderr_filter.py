"""Keep TensorFlow's C++ start-up chatter off main.py's console, and nothing else.

TensorFlow's C++ side writes to the process's stderr (file descriptor 2) directly, in glog's format, and some of it
ignores TF_CPP_MIN_LOG_LEVEL: "Could not find cuda drivers", the CPU-feature notice, and on a machine without a GPU
an *error* line, "failed call to cuInit", that is no failure at all (grappler's "remapper failed" is another). So
main.py routes fd 2 through a small child process (`install`) that drops those lines and passes every other one
through unchanged: Python tracebacks, the project's own messages, and any TensorFlow error or fatal line not on the
list below. A child process, not a thread: if the main process dies hard, the child still passes on what was
written before. `python main.py --tf_log ...` skips all this and shows TensorFlow's full log.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import sys

# glog's line prefix: severity letter, MMDD, time, thread id, file:line]
_GLOG = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")  # before absl::InitializeLog the
# seconds field holds the seconds since 1970: "I0000 00:00:1796025203.758406   20664 cudart_stub.cc:31] ..."
# Error lines TensorFlow prints when nothing is wrong (each seen on a normal CPU or GPU run)
_HARMLESS_ERRORS = re.compile(
    rb"failed call to cuInit|remapper failed|Unable to register cu(DNN|FFT|BLAS) factory|"
    rb"computation placer already registered|could not retrieve CUDA device count")
# Lines without the prefix that belong to the notices above
_NOTICES = re.compile(
    rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$|"
    rb"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$")


def is_chatter(line: bytes) -> bool:
    """True for a line of TensorFlow's C++ log that says nothing is wrong: INFO and WARNING lines, the known
    harmless error lines, and the start-up notices. Error and fatal lines otherwise stay."""
    line = line.rstrip(b"\r\n")
    if _NOTICES.match(line):
        return True
    prefix = _GLOG.match(line)
    if not prefix:
        return False
    return prefix.group(1) in (b"I", b"W") or (prefix.group(1) == b"E" and bool(_HARMLESS_ERRORS.search(line)))


def copy_without_chatter(source, sink) -> None:
    """Copy `source` to `sink` line by line (binary streams), leaving out the chatter; until `source` ends."""
    for line in iter(source.readline, b""):
        if not is_chatter(line):
            sink.write(line)
            sink.flush()


def install() -> subprocess.Popen:
    """From now on, this process's stderr (fd 2, so C++ writes too) goes through the filter (the child process it
    returns). Call it before TensorFlow loads; undone at exit, after the filter has passed on everything written."""
    sys.stderr.flush()
    terminal = os.dup(2)
    child = subprocess.Popen([sys.executable, "-S", "-u", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                             stdout=terminal, close_fds=True, preexec_fn=_ignore_stop_signals)
    os.dup2(child.stdin.fileno(), 2)

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(terminal, 2)  # the pipe's last writer closes below, so the child reads to its end and exits
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()

    atexit.register(restore)
    return child


def _ignore_stop_signals() -> None:
    """In the child, from before it starts: Ctrl-C reaches the whole process group, and the filter must outlive it
    (and a SIGTERM), as main.py then saves a checkpoint and says so. It ends when main.py's end of the pipe closes,
    at exit, however main.py ends. (Ignored signals stay ignored across exec, and Python keeps them so.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":  # the child process
    copy_without_chatter(sys.stdin.buffer, sys.stdout.buffer)
