"""Run train() in a fresh process (tests/test_strategy.py): `python run_distributed.py CONFIGS_JSON [LOGICAL_CPUS]`.

CONFIGS_JSON is a list of Config dicts, trained one after the other (a run, then its resume). The logical CPU
devices must be set up before TensorFlow starts, and MultiWorkerMirroredStrategy must be created before any other
TensorFlow work, so these runs cannot share the test process. Prints the step and epoch each run reached.
"""

import json
import logging
import sys

import tensorflow as tf


def main(configs_json: str, logical_cpus: int = 1) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    from dcgan_tf.config import Config
    from dcgan_tf.training.loop import train

    for values in json.loads(configs_json):
        result = train(Config(**values))
        print(json.dumps({"step": result.step, "epoch": result.epoch}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
