"""Each export format against the run's own sampling: agreement on the same z, and images per second.

Run by hand (it prints numbers; it is not a test and asserts nothing), from the folder holding the run's
checkpoints/, after `python main.py ... --export --export_format keras,savedmodel,tflite,onnx`:

    PYTHONPATH=/path/to/repo python /path/to/repo/benchmarks/export_formats.py --run_name <run> [--samples 1000]

For `--samples` z (seeded), every format present in <run>/export/ makes the images, and the script prints how many
uint8 values differ from the run's own sampling (`load_trained` + `generate`, the EMA generator when the run keeps
one, rounded to uint8 as grids are) and the largest difference; then images/s at batch 1 and batch 64 (the
best of 3 rounds after a warm-up call).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def best_rate(function, z, batch: int, rounds: int = 3) -> float:
    """Images per second of function over z in batches of `batch` (the best of `rounds`)."""
    function(z[:batch])  # warm-up: tracing, allocation
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for start in range(0, len(z), batch):
            function(z[start:start + batch])
        best = max(best, len(z) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_name", required=True)
    parser.add_argument("--checkpoint_dir", default="checkpoints")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--rate_samples", type=int, default=256, help="z per timing round")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from dcgan_tf.config import Config
    from dcgan_tf.images import to_uint8
    from dcgan_tf.latent import sample_z
    from dcgan_tf.runs.trained import load_trained
    from dcgan_tf.serving import export

    config = Config(run_name=args.run_name, checkpoint_dir=args.checkpoint_dir)
    saved, model, step = load_trained(config)
    folder = export.export_folder(saved)
    info = export.read_info(folder)
    z = np.asarray(sample_z((args.samples, saved.z_dim), saved.z_dist, 7), np.float32)
    labels = np.arange(args.samples) % saved.y_dim if saved.conditional else None
    one_hot = None if labels is None else np.eye(saved.y_dim, dtype=np.float32)[labels]

    def own(batch_z, batch_labels=None):
        return to_uint8(np.asarray(model.generate(batch_z, batch_labels)))

    reference = np.concatenate([own(z[i:i + 256], None if one_hot is None else one_hot[i:i + 256])
                                for i in range(0, len(z), 256)])
    makers = {}
    files = info["files"]
    if "savedmodel" in files:
        loaded = export.load_export(folder)
        makers["savedmodel"] = lambda b, l=None: loaded.generate(b, l)
    if "keras" in files:
        keras_model = keras.saving.load_model(os.path.join(folder, files["keras"]))
        makers["keras"] = lambda b, l=None: to_uint8(np.asarray(
            keras_model(b if l is None else [b, np.eye(saved.y_dim, dtype=np.float32)[l]], training=False)))
    if "tflite" in files:
        interpreter = tf.lite.Interpreter(model_path=os.path.join(folder, files["tflite"]))
        runner = interpreter.get_signature_runner(export.SIGNATURE)
        makers["tflite"] = lambda b, l=None: runner(z=b)["images"] if l is None else \
            runner(z=b, labels=l.astype(np.int32))["images"]
    if "onnx" in files:
        import onnxruntime

        session = onnxruntime.InferenceSession(os.path.join(folder, files["onnx"]), providers=["CPUExecutionProvider"])
        makers["onnx"] = lambda b, l=None: session.run(["images"], {"z": b} if l is None else
                                                       {"z": b, "labels": l.astype(np.int32)})[0]

    print(f"{saved.name} step {step} ({'EMA generator' if info['ema'] else 'G'}), export of step {info['step']}; "
          f"{args.samples} z; tensorflow {tf.__version__}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'format':<11} {'differing uint8 values':>24} {'max |diff|':>10} {'img/s b=1':>10} {'img/s b=64':>11}")
    rate_z = z[:args.rate_samples]
    rate_labels = None if labels is None else labels[:args.rate_samples]
    for name, make in [("run itself", own)] + list(makers.items()):
        if name == "run itself":
            images = reference
            call = (lambda b: own(b)) if one_hot is None else (lambda b: own(b, np.eye(saved.y_dim)[rate_labels[:len(b)]]))
        else:
            images = np.concatenate([make(z[i:i + 256], None if labels is None else labels[i:i + 256])
                                     for i in range(0, len(z), 256)])
            call = (lambda b, make=make: make(b)) if labels is None else \
                (lambda b, make=make: make(b, rate_labels[:len(b)]))
        diff = np.abs(images.astype(int) - reference.astype(int))
        print(f"{name:<11} {int((diff > 0).sum()):>12,} of {diff.size:>9,} {int(diff.max()):>10} "
              f"{best_rate(call, rate_z, 1):>10.0f} {best_rate(call, rate_z, 64):>11.0f}")


if __name__ == "__main__":
    main()
