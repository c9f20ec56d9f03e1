"""Layer 1, the images a run trains on: finding and decoding image files, the tf.data pipeline, MNIST, and the
built-in data set.

- loading: find files, decode them (Pillow), one channel count, crop/resize, labelled folders, tf.data
- datasets: `load_training_data(config)`, a run's images (the built-in set, MNIST or a folder), in memory or streamed
- mnist: MNIST's IDX files (plain or .gz), else keras.datasets
- builtin_data/: the Twemoji smileys, the quick start's data set (package data)
"""
