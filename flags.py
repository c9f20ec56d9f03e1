"""Every command-line flag of main.py (absl), with carpedm20/DCGAN-tensorflow's names and defaults where they exist."""

from absl import flags

from dcgan_tf.config import NAN_POLICIES, PREPROCESSING, STRATEGIES, Z_DISTRIBUTIONS

# data
flags.DEFINE_string("dataset", None, "Data set: a folder name under --data_dir, a path to a folder, or 'mnist' "
                    "(conditional DCGAN). Unset: the small built-in Twemoji smileys set, offline.")
flags.DEFINE_string("data_dir", "./data", "Folder holding the data sets (data_dir/dataset/input_fname_pattern).")
flags.DEFINE_string("input_fname_pattern", "*.jpg", "Glob of image files inside the data set folder ('**' recurses).")
flags.DEFINE_integer("input_height", 108, "Height of the centre crop taken from each image (with --crop).")
flags.DEFINE_integer("input_width", None, "Width of the centre crop. Unset: --input_height.")
flags.DEFINE_integer("output_height", 64, "Height of the images the GAN trains on and generates.")
flags.DEFINE_integer("output_width", None, "Width of generated images. Unset: --output_height.")
flags.DEFINE_boolean("crop", False, "Centre-crop input_height x input_width before resizing; else resize whole images.")
flags.DEFINE_integer("cache_limit", 4096, "MB of decoded images kept in memory. A data set that needs more is "
                     "streamed from its files instead (decoded batch by batch, in parallel). 0: always stream.")
flags.DEFINE_integer("train_size", None, "Train on a seeded random subset of this many images. Unset: all.")
# autoencoder preprocessing
flags.DEFINE_enum("preprocess", "none", PREPROCESSING, "'autoencoder': train a convolutional autoencoder on the images "
                  "(once; later runs reuse it) and train the GAN on its blurrier reconstructions.")
flags.DEFINE_integer("ae_code_dim", 128, "Length of the autoencoder's code (its bottleneck): smaller, blurrier.")
flags.DEFINE_integer("ae_epochs", 30, "Epochs of autoencoder training.")
flags.DEFINE_float("ae_learning_rate", 0.001, "Adam learning rate of the autoencoder.")
flags.DEFINE_integer("swap_epoch", None, "With --preprocess autoencoder: train on the reconstructions for epochs "
                     "before this one, then on the original images. Unset: reconstructions throughout.")
flags.DEFINE_float("dedupe", None, "Drop near-duplicate images: those whose autoencoder codes lie within this "
                   "fraction of the median code distance of an earlier image (e.g. 0.05; exact copies are at 0). "
                   "Trains the autoencoder if needed; the dropped files are listed in duplicates.csv (the first 10 "
                   "in the log).")
flags.DEFINE_boolean("train_autoencoder", False, "Train (or reuse) only the autoencoder: write its pictures and every "
                     "reconstruction as a PNG into <sample_dir>/<autoencoder name>/, and with --dedupe, "
                     "duplicates.csv. Trains no GAN.")
# model
flags.DEFINE_integer("z_dim", 100, "Dimension of the latent vector z.")
flags.DEFINE_enum("z_dist", "uniform_signed", Z_DISTRIBUTIONS,
                  "Distribution of z: U(-1, 1), U(0, 1) or N(0, 1), used in training and sampling.")
flags.DEFINE_integer("gf_dim", 64, "Filters in the generator's last transposed conv (doubles each stage back).")
flags.DEFINE_integer("df_dim", 64, "Filters in the discriminator's first conv (doubles each stage).")
# training
flags.DEFINE_boolean("train", False, "Train (or resume) the run. Without it: test mode, a sample grid from the "
                     "latest checkpoint.")
flags.DEFINE_integer("epoch", 25, "Train until this many epochs are done (a resumed run continues to it).")
flags.DEFINE_integer("batch_size", 64, "Images per batch.")
flags.DEFINE_float("learning_rate", 0.0002, "Adam learning rate of both networks.")
flags.DEFINE_float("beta1", 0.5, "Adam beta_1 of both networks.")
flags.DEFINE_integer("g_advantage", 2, "Generator updates per discriminator update (>= 1; carpedm20 ran 2).")
flags.DEFINE_integer("d_steps", 1, "Discriminator updates per step (>= 1), each on the step's real batch and a fresh "
                     "fake batch: the mirror of --g_advantage.")
flags.DEFINE_float("d_learning_rate", None, "Adam learning rate of the discriminator. Unset: --learning_rate "
                   "(the clip-art study used half of it).")
flags.DEFINE_integer("d_layers", 4, "Stride-2 conv layers in the discriminator, 1-4 (the clip-art study used 2): "
                     "fewer make a weaker D.")
flags.DEFINE_boolean("d_batchnorm", True, "Batch norm in the discriminator (all but its first layer); "
                     "--nod_batchnorm removes it.")
flags.DEFINE_boolean("mixed_precision", False, "Mixed precision: bf16 on a CPU, fp16 with dynamic loss scaling on a "
                     "GPU; weights, batch-norm statistics, logits and losses stay float32. May change on resume.")
flags.DEFINE_boolean("jit_compile", False, "XLA-compile the training step. Off by default: measured slower on CPU "
                     "(see README, Performance).")
flags.DEFINE_enum("strategy", "default", STRATEGIES, "Where the training step runs: 'default' (one device), "
                  "'mirrored' (every local GPU, the global --batch_size split between them) or 'multiworker' (several "
                  "machines, configured by TF_CONFIG; see README). May change on resume.")
flags.DEFINE_enum("nan_policy", "stop", NAN_POLICIES, "On a NaN/Inf loss: 'stop' the run (exit 1; the last good "
                  "checkpoint stays), or 'rollback' to the last checkpoint with both learning rates halved (at most 3 "
                  "times).")
flags.DEFINE_integer("seed", 1, "Seed of weights, z draws, data order and sample grids: same seed, same run.")
# outputs
flags.DEFINE_string("checkpoint_dir", "checkpoints", "Folder of run folders holding checkpoints, config.json, "
                    "losses.csv and TensorBoard logs.")
flags.DEFINE_string("sample_dir", "samples", "Folder of run folders holding sample grids.")
flags.DEFINE_string("run_name", None, "Run folder name. Unset: derived from the data set and the model settings.")
flags.DEFINE_integer("sample_freq", 200, "Write a sample grid every this many steps.")
flags.DEFINE_integer("ckpt_freq", 200, "Save a checkpoint every this many steps.")
flags.DEFINE_integer("max_to_keep", 1, "Keep this many newest checkpoints.")
flags.DEFINE_integer("keep_samples", 0, "Keep only the newest N training grids, plus every --keep_every-th one. "
                     "0 keeps all.")
flags.DEFINE_integer("keep_every", 10, "With --keep_samples: also keep every this-many-th training grid.")
flags.DEFINE_integer("min_free_mb", 500, "Below this much free disk (MB), stop writing sample grids so checkpoints "
                     "keep their room; warns once. 0: never stop.")
flags.DEFINE_integer("grid_rows", None, "Rows of sample grids. Unset: 8, or one row per digit for MNIST.")
flags.DEFINE_integer("grid_cols", 8, "Columns of sample grids.")
flags.DEFINE_integer("verbose", 1, "Training progress: 0 silent, 1 progress bar, 2 one line per epoch.")
# visualisation (test mode with --visualize) and comparison of runs
flags.DEFINE_boolean("visualize", False, "Test mode: draw --visualize_option from the latest checkpoint into the "
                     "run's sample folder.")
flags.DEFINE_string("visualize_option", "grid", "With --visualize: what to draw. carpedm20's numbers or names: 0 grid, "
                    "1 sweep, 2 random_sweep_gif, 3 sweep_gif, 4 merged_gif; or interpolate, arithmetic, progress, "
                    "plots (loss and log G/D ratio plots).")
flags.DEFINE_integer("num_samples", None, "grid/arithmetic: number of samples, in rows of --grid_cols (default: "
                     "--grid_rows x --grid_cols).")
flags.DEFINE_boolean("save_individual", False, "grid: also write every sample as its own PNG.")
flags.DEFINE_string("sweep_dims", None, "Sweeps: z dimensions to sweep: N (the first N; N random ones for option 2), "
                    "a list like 0-3,7, or all. Default: 10; merged_gif: all.")
flags.DEFINE_integer("visualize_steps", 10, "Sweeps: values per dimension (grid columns; GIF frames each way). "
                     "interpolate: points per walk (>= 2).")
flags.DEFINE_enum("interpolation", "slerp", ["slerp", "linear"], "interpolate: the path between z's.")
flags.DEFINE_integer("walks", None, "interpolate: random z's on the closed tour, one grid row per walk (>= 2; "
                     "default --grid_rows).")
flags.DEFINE_string("arith", None, "arithmetic: groups of indices from arithmetic_numbered_<step>.png joined by + and "
                    "-, e.g. '3,17,22 - 5,9,40 + 1,2,8'. Unset: write only the numbered grid.")
flags.DEFINE_integer("label", None, "Conditional (MNIST) runs: draw only this digit (default: one row per digit).")
flags.DEFINE_float("fps", 10, "GIF frames per second (at most 100).")
flags.DEFINE_integer("max_frames", 200, "progress: at most this many training grids in progress.gif, evenly spaced.")
flags.DEFINE_list("compare", None, "Compare runs: names under --checkpoint_dir or run folders, comma-separated (e.g. "
                  "ga2,ga4,ga50). Writes their log G/D ratios and losses overlaid, and a sheet of their sample grids "
                  "at --compare_steps, into --compare_out. Trains nothing.")
flags.DEFINE_list("compare_steps", None, "Steps for --compare's grid sheet (e.g. 100,400); each run shows its saved "
                  "grid nearest to each step. Unset: each run's last grid.")
flags.DEFINE_list("compare_labels", None, "Legend and row labels for --compare's runs, in order. Unset: run names.")
flags.DEFINE_string("compare_out", None, "Folder for --compare's figures. Unset: <sample_dir>/compare.")
