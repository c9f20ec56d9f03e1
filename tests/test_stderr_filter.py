"""stderr_filter: TensorFlow's C++ chatter leaves main.py's console; errors, tracebacks and our own lines stay."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import stderr_filter  # noqa: E402

CUINIT = (b"E0000 00:00:1796025206.390985   20664 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
          b"Failed call to cuInit: UNKNOWN ERROR (303)\n")
REAL_ERROR = b"E0000 00:00:1796025206.390985   20664 op_kernel.cc:1857] OP_REQUIRES failed: out of memory\n"


@pytest.mark.parametrize("line,chatter", [
    (b"I0000 00:00:1796025203.758406   20664 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
     b"will not be used.\n", True),
    (b"W1130 07:39:18.772830 139972388842368 meta_optimizer.cc:967] layout failed\n", True),
    (CUINIT, True),
    (b"E1130 07:39:18.772830 1399 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply error\n",
     True),
    (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n", True),
    (b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
     b"compiler flags.\n", True),
    (REAL_ERROR, False),
    (b"F0000 00:00:1796025206.390985   20664 logging.cc:43] Check failed: ok\n", False),
    (b"Traceback (most recent call last):\n", False),
    (b"loaded 169 images (32x32x3), skipped 0 unreadable\n", False),
    (b"warning: the disk has 200 MB free\n", False),
])
def test_what_is_chatter(line, chatter):
    assert stderr_filter.is_chatter(line) is chatter


def test_the_installed_filter_drops_chatter_and_passes_errors_through():
    code = ("import os, sys, stderr_filter; stderr_filter.install(); "
            f"os.write(2, {CUINIT!r}); os.write(2, {REAL_ERROR!r}); print('a message', file=sys.stderr); "
            "raise RuntimeError('raised inside training')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)
    assert result.returncode == 1
    assert b"cuInit" not in result.stderr
    assert REAL_ERROR in result.stderr and b"a message\n" in result.stderr
    assert b"Traceback" in result.stderr and b"RuntimeError: raised inside training" in result.stderr


def test_the_filter_outlives_ctrl_c_and_kill():
    """Ctrl-C goes to the whole process group; main.py goes on to save a checkpoint and say so through the filter."""
    code = ("import os, signal, sys, time, stderr_filter; child = stderr_filter.install(); "
            "os.kill(child.pid, signal.SIGINT); os.kill(child.pid, signal.SIGTERM); time.sleep(1); "
            "print('checkpoint saved', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stderr == b"checkpoint saved\n", result.stderr


def test_copy_without_chatter_keeps_order(tmp_path):
    source = tmp_path / "in"
    source.write_bytes(b"first\n" + CUINIT + b"second\n" + REAL_ERROR + b"last, without a newline")
    sink = tmp_path / "out"
    with open(source, "rb") as reading, open(sink, "wb") as writing:
        stderr_filter.copy_without_chatter(reading, writing)
    assert sink.read_bytes() == b"first\nsecond\n" + REAL_ERROR + b"last, without a newline"
