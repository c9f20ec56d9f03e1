"""Resolving a Config against the disk, once: the settings' own derivations (Config.resolved), a labelled folder's
classes (data.labelled), then the values' checks (Config.validate). Every entry point (the command line, train(),
a sweep's plan) calls `resolve`; the library below takes the Config it returns and reads no folder to complete it.
"""

from __future__ import annotations

import dataclasses
import os

from dcgan_tf.config import MNIST, Config, ConfigError
from dcgan_tf.data import labelled
from dcgan_tf.runs.folders import CONFIG_FILE


def resolve(config: Config) -> Config:
    """`config` resolved and validated; a conditional run on a labelled folder gets the folder's classes (sorted) as
    class_names and their count as y_dim. ConfigError naming --conditional when the folder has no classes, unless the
    run already exists (its config.json names them: reading the run takes them there, though the folder be gone)."""
    c = config.resolved()
    if c.conditional and c.dataset not in (None, MNIST) and c.class_names is None:
        found = labelled.labelled_folder_classes(c.image_folder())
        if found:
            c = dataclasses.replace(config, class_names=tuple(found)).resolved()  # y_dim, grid rows from them
        elif not c.y_dim and not os.path.isfile(os.path.join(c.checkpoint_path, CONFIG_FILE)):
            raise ConfigError("conditional", labelled.classes_problem(c.image_folder()))
        else:  # the run's config.json names them
            c = dataclasses.replace(c, grid_rows=c.grid_rows or 8)
    return c.validate()
