"""What one evaluation costs: the feature networks on generated images, and the metrics computed from them.

Run by hand (it prints numbers; it is not a test and asserts nothing):

    PYTHONPATH=. /work/venv/bin/python benchmarks/metrics_cost.py                  # 1,000 samples, 64x64 RGB
    PYTHONPATH=. /work/venv/bin/python benchmarks/metrics_cost.py --samples 200    # a quick look

The time of a forward pass does not depend on the weights' values, so each network here has random weights saved to a
temporary .weights.h5 and loaded through the same path a user's file takes (no download). Measured, each once after a
warm-up batch, on `--samples` random images of `--size` (resized to 299x299 inside), all in one process:
  - features: the FID Inception (`FIDInceptionFeatures`, the default `--metrics_features fid_inception`), the same in
    bfloat16 (`fid_inception_bf16`), and Keras' ImageNet InceptionV3 (`keras_inception`, the default before the FID
    Inception), in that order;
  - generation: the canonical DCGAN's G making those images (`Evaluator.samples`' batch size);
  - each metric from the features against `--real` real features (fid, kid with 100 subsets, precision/recall,
    memorisation), and FID's distance with scipy's sqrtm (what pytorch-fid and TTUR use) beside this project's;
  - the smoke network (`--metrics_features smoke`, not a quality measure) on the same images, for comparison.
One KID evaluation during training = generation + FID Inception features + kid. Real-image features are computed once per data
set and cached, so they are not part of an evaluation's cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np


def timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--real", type=int, default=1000, help="real feature vectors the metrics compare against")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from dcgan_tf.config import Config
    from dcgan_tf.core.build import build_dcgan
    from dcgan_tf.metrics import compute_feature_metrics, features
    from dcgan_tf.metrics.evaluate import GENERATE_BATCH

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"{os.cpu_count()} CPUs ({cpu}), TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}; load average {os.getloadavg()[0]:.2f}")

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.samples, args.size, args.size, 3)).astype(np.float32)
    from dcgan_tf.metrics import fid_inception

    def feature_speed(label, make):
        extractor, seconds = timed(make)
        extractor(images[:50])  # trace the batch shape
        found, spent = timed(extractor, images)
        print(f"{label}: built and loaded in {seconds:.1f} s; features of {args.samples} images ({args.size}x"
              f"{args.size} -> 299x299): {spent:.1f} s ({args.samples / spent:.1f} images/s)", flush=True)
        return found, spent

    with tempfile.TemporaryDirectory() as folder:
        fid_path = os.path.join(folder, "random_fid_inception.weights.h5")
        fid_inception.build_network().save_weights(fid_path)
        fake, inception_seconds = feature_speed("FID Inception (float32)",
                                                lambda: features.FIDInceptionFeatures(fid_path))
        feature_speed("FID Inception (bfloat16)", lambda: features.FIDInceptionFeatures(fid_path, bfloat16=True))
        keras_path = os.path.join(folder, "random_inception.weights.h5")
        keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                       input_shape=(299, 299, 3)).save_weights(keras_path)
        feature_speed("Keras' InceptionV3 (float32)", lambda: features.InceptionFeatures(keras_path))

    model = build_dcgan(Config(output_height=args.size, c_dim=3).resolved())
    z = rng.uniform(-1, 1, (args.samples, 100)).astype(np.float32)
    model.generate(z[:GENERATE_BATCH])
    _, generate_seconds = timed(lambda: [model.generate(z[i:i + GENERATE_BATCH]).numpy()
                                         for i in range(0, args.samples, GENERATE_BATCH)])
    print(f"generation of {args.samples} images by the canonical G: {generate_seconds:.1f} s")

    real = fake[rng.permutation(len(fake))[:args.real]] + rng.normal(0, 0.1, (min(args.real, len(fake)),
                                                                              fake.shape[1]))
    costs = {}
    for name in ("kid", "fid", "precision_recall", "memorisation"):
        _, costs[name] = timed(compute_feature_metrics, real, fake, [name])
        print(f"{name} from 2048-d features ({len(real)} real, {len(fake)} samples): {costs[name]:.2f} s")
    try:  # the usual reference code's matrix root, for comparison (scipy: pip install -e '.[test]')
        from scipy import linalg

        from dcgan_tf.metrics.fid import feature_statistics, frechet_distance

        (mu1, s1), (mu2, s2) = feature_statistics(real), feature_statistics(fake)
        reference, seconds = timed(lambda: float((mu1 - mu2) @ (mu1 - mu2)
                                                 + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)))
        ours, ours_seconds = timed(frechet_distance, mu1, s1, mu2, s2)
        print(f"FID's distance alone: scipy.linalg.sqrtm {reference:.4f} in {seconds:.2f} s; this project's "
              f"eigendecompositions {ours:.4f} in {ours_seconds:.2f} s")
    except ImportError:
        pass

    smoke = features.SmokeFeatures()
    smoke(images[:50])
    _, seconds = timed(smoke, images)
    print(f"smoke features (not a quality measure) of the same {args.samples} images: {seconds:.2f} s")
    total = generate_seconds + inception_seconds + costs["kid"]
    print(f"one KID evaluation of {args.samples} samples at {args.size}x{args.size} (generation + FID Inception "
          f"features + kid): {total:.1f} s")


if __name__ == "__main__":
    main()
