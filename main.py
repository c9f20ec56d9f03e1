"""dcgan_tf command line: `python main.py --train` trains (or resumes) a run; without --train, test mode."""

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING chatter; errors still show

from absl import app
from absl import flags as absl_flags

import flags  # noqa: F401 - defines the flags
from dcgan_tf.config import Config, ConfigError

FLAGS = absl_flags.FLAGS
CONFIG_FIELDS = list(Config.__dataclass_fields__)


def config_from_flags() -> Config:
    """Every flag that names a Config field, as a validated Config."""
    return Config(**{name: FLAGS[name].value for name in CONFIG_FIELDS if name in FLAGS}).resolved().validate()


def fail(message: str) -> None:
    print(f"main.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}: every setting is a --flag (see --helpfull)")
    try:
        config = config_from_flags()
    except ConfigError as error:
        fail(f"--{error.field}: {error.message}")
    logging.getLogger("dcgan_tf").setLevel(logging.INFO)

    import dcgan_tf  # after validation: a bad flag fails before TensorFlow loads

    logging.getLogger("absl").setLevel(logging.WARNING)  # TensorFlow's per-save "Sharding callback" INFO lines

    try:
        if FLAGS.train:
            result = dcgan_tf.train(config)
            print(f"trained {result.config.name} to step {result.step}, epoch {result.epoch}; "
                  f"samples in {result.config.sample_path}")
        else:
            path = dcgan_tf.write_test_grid(config)
            print(f"wrote {path}")
    except (dcgan_tf.DataError, dcgan_tf.RunError, ConfigError) as error:
        fail(str(error))


if __name__ == "__main__":
    app.run(main)
