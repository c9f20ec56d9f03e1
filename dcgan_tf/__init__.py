"""dcgan_tf: DCGAN for small image sets, in TensorFlow 2 / Keras 3.

    from dcgan_tf import Config, train
    result = train(Config(dataset="data/mice", g_advantage=4, epoch=25))

The names below load on first use (PEP 562), so `import dcgan_tf.config` (what the command line's flags and
`--help` need) does not load TensorFlow.
"""

import importlib

# Each public name and the module that defines it.
_EXPORTS = {
    "CheckpointError": "runs.checkpoints", "Config": "config", "ConfigError": "config", "DamagedFileError": "files",
    "DataError": "data.loading",
    "DCGAN": "core.model", "DiskFullError": "files", "MissingWeightsError": "metrics.features",
    "RunBusyError": "runs.lock", "RunError": "runs.folders", "RunFolderGoneError": "runs.lock",
    "TrainResult": "training.loop",
    "build_dcgan": "core.build", "build_discriminator": "core.networks", "build_generator": "core.networks",
    "evaluate_run": "metrics.evaluate", "load_trained": "runs.trained", "train": "training.loop",
    "write_test_grid": "runs.trained",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dcgan_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"dcgan_tf.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
