"""dcgan_tf: DCGAN for small image sets, in TensorFlow 2 / Keras 3.

    from dcgan_tf import Config, train
    result = train(Config(dataset="data/mice", g_advantage=4, epoch=25))
"""

from dcgan_tf.build import build_dcgan
from dcgan_tf.checkpoints import CheckpointError
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.data import DataError
from dcgan_tf.files import DiskFullError
from dcgan_tf.gan import DCGAN
from dcgan_tf.inference import load_trained, write_test_grid
from dcgan_tf.metrics.evaluate import evaluate_run
from dcgan_tf.metrics.features import MissingWeightsError
from dcgan_tf.networks import build_discriminator, build_generator
from dcgan_tf.run_lock import RunBusyError
from dcgan_tf.runs import RunError
from dcgan_tf.training import TrainResult, train

__all__ = [
    "CheckpointError", "Config", "ConfigError", "DataError", "DCGAN", "DiskFullError", "MissingWeightsError",
    "RunBusyError", "RunError", "TrainResult",
    "build_dcgan", "build_discriminator", "build_generator", "evaluate_run", "load_trained", "train",
    "write_test_grid",
]
__version__ = "0.1.0"
