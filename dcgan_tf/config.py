"""The run configuration: one frozen dataclass, validated, saved as `<run>/config.json`."""

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

# Fields that change the model, the kind of data it is made for, or the G:D ratio. The main ones name the run
# folder (default_run_name), and a saved run refuses to resume under different values of any of them (a new value
# is a new run, not a silent change). The data set is compared by name, so `data/mice/` and `mice` are one run.
MODEL_FIELDS = (
    "dataset", "output_height", "output_width", "crop", "input_height", "input_width", "batch_size",
    "z_dim", "z_dist", "gf_dim", "df_dim", "gfc_dim", "dfc_dim", "y_dim", "c_dim", "g_advantage",
    "d_layers", "d_batchnorm", "d_steps", "d_learning_rate",
    "preprocess", "ae_code_dim", "ae_epochs", "ae_learning_rate", "swap_epoch", "dedupe",
)
# Fields that change the autoencoder or the data it is trained on; they name its folder (autoencoder_name).
AUTOENCODER_FIELDS = ("ae_code_dim", "ae_epochs", "ae_learning_rate")


class ConfigError(ValueError):
    """An invalid configuration value; `field` names the offending setting (the CLI flag of the same name)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Config:
    """Everything a run needs. `None` in a derived field means "work it out" (see `resolved`)."""

    # data
    dataset: str | None = None  # a name under data_dir, a folder path, "mnist", or None for the built-in set
    data_dir: str = "./data"
    input_fname_pattern: str = "*.jpg"
    input_height: int = 108
    input_width: int | None = None  # None: input_height
    output_height: int = 64
    output_width: int | None = None  # None: output_height
    crop: bool = False
    train_size: int | None = None  # None: every image
    cache_limit: int = 4096  # MB of decoded images kept in memory; a bigger data set streams from its files
    c_dim: int | None = None  # None: 1 if every image is grayscale, else 3
    y_dim: int | None = None  # None: 10 for MNIST (conditional DCGAN), else unconditional
    # autoencoder preprocessing
    preprocess: str = "none"  # "autoencoder": train the GAN on the autoencoder's reconstructions
    ae_code_dim: int = 128  # length of the autoencoder's code
    ae_epochs: int = 30
    ae_learning_rate: float = 0.001
    swap_epoch: int | None = None  # with preprocess: epochs >= this train on the originals; None: never swap
    dedupe: float | None = None  # drop images whose codes are this close (x the median code distance); None: keep all
    # model
    z_dim: int = 100
    z_dist: str = "uniform_signed"
    gf_dim: int = 64
    df_dim: int = 64
    d_layers: int = 4  # stride-2 conv layers in D (1-4); fewer make a weaker D
    d_batchnorm: bool = True  # batch norm in D (all but its first layer)
    gfc_dim: int = 1024  # conditional (MNIST) nets only: width of the dense layers
    dfc_dim: int = 1024
    # training
    epoch: int = 25
    batch_size: int = 64
    learning_rate: float = 0.0002
    beta1: float = 0.5
    g_advantage: int = 2
    d_steps: int = 1  # discriminator updates per step, the mirror of g_advantage
    d_learning_rate: float | None = None  # None: learning_rate
    seed: int = 1
    mixed_precision: bool = False  # bf16 on CPU, fp16 with loss scaling on GPU; losses, logits, BN stats in fp32
    jit_compile: bool = False  # XLA-compile train_step (measured slower on CPU; see the README's Performance)
    strategy: str = "default"  # default (one device), mirrored (all local GPUs) or multiworker (TF_CONFIG)
    nan_policy: str = "stop"  # on a NaN/Inf loss: stop, or roll back to the last checkpoint with halved learning rates
    # outputs
    checkpoint_dir: str = "checkpoints"
    sample_dir: str = "samples"
    run_name: str | None = None
    sample_freq: int = 200
    ckpt_freq: int = 200
    max_to_keep: int = 1
    keep_samples: int = 0  # keep the newest N training grids (plus every keep_every-th); 0 keeps all
    keep_every: int = 10
    min_free_mb: int = 500  # below this much free disk, stop writing sample grids (checkpoints go on)
    grid_rows: int | None = None  # None: 8, or one row per label for a conditional model
    grid_cols: int = 8
    verbose: int = 1  # fit() progress: 0 silent, 1 progress bar, 2 one line per epoch

    # ------------------------------------------------------------------ derived values
    def resolved(self) -> "Config":
        """A copy with every derivable `None` filled in (width = height, y_dim for MNIST, grid rows)."""
        changes = {}
        if self.input_width is None:
            changes["input_width"] = self.input_height
        if self.output_width is None:
            changes["output_width"] = self.output_height
        if self.y_dim is None and self.dataset == MNIST:
            changes["y_dim"] = MNIST_Y_DIM
        config = dataclasses.replace(self, **changes)
        if config.grid_rows is None:
            config = dataclasses.replace(config, grid_rows=config.y_dim or 8)
        return config

    @property
    def dataset_name(self) -> str:
        """A short name for the data: the built-in set's name, MNIST, or a folder's base name."""
        if not self.dataset:
            return BUILTIN_DATASET
        return os.path.basename(os.path.normpath(self.dataset)) or "data"

    @property
    def uses_autoencoder(self) -> bool:
        """Reconstructions or dedupe: either needs the autoencoder."""
        return self.preprocess == "autoencoder" or self.dedupe is not None

    @property
    def conditional(self) -> bool:
        return bool(self.y_dim)

    def default_run_name(self) -> str:
        """Data set plus every model-changing setting that matters, so different runs never share a folder."""
        c = self.resolved()
        parts = [c.dataset_name, f"b{c.batch_size}", f"{c.output_height}x{c.output_width}"]
        if c.crop:
            parts.append(f"crop{c.input_height}x{c.input_width}")
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
        if c.d_learning_rate is not None and c.d_learning_rate != c.learning_rate:
            parts.append(f"dlr{c.d_learning_rate:g}")
        if c.uses_autoencoder:
            parts.append(f"ae{c.ae_code_dim}")
            if c.ae_epochs != Config.ae_epochs:
                parts.append(f"e{c.ae_epochs}")
            if c.ae_learning_rate != Config.ae_learning_rate:
                parts.append(f"aelr{c.ae_learning_rate:g}")
        if c.swap_epoch is not None:
            parts.append(f"swap{c.swap_epoch}")
        if c.dedupe is not None:
            parts.append(f"dedupe{c.dedupe:g}")
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
        for name in positive:
            value = getattr(c, name)
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
        if c.conditional and c.d_layers != 4:
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
        if c.verbose not in (0, 1, 2):
            raise ConfigError("verbose", f"must be 0, 1 or 2 (got {c.verbose})")
        if c.run_name is not None and (not c.run_name or os.sep in c.run_name or c.run_name in (".", "..")):
            raise ConfigError("run_name", f"must be a plain folder name (got {c.run_name!r})")
        # Size rules live with the networks; imported here so a bad size fails before any data is read.
        from dcgan_tf.networks import side_problem

        for name in ("output_height", "output_width"):
            problem = side_problem(name.split("_")[1], getattr(c, name), conditional=c.conditional)
            if problem:
                raise ConfigError(name, problem)
        return self

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        values = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

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
            if name in ("input_height", "input_width") and not (a.crop or b.crop):
                continue  # the input size only matters when cropping
            if name in AUTOENCODER_FIELDS and not (a.uses_autoencoder or b.uses_autoencoder):
                continue  # autoencoder settings only matter when it is used
            if x != y:
                diffs[name] = (x, y)
        return diffs
