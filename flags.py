"""Every command-line flag of main.py (absl), with carpedm20/DCGAN-tensorflow's names and defaults where they exist."""

from absl import flags

from dcgan_tf.config import Z_DISTRIBUTIONS

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
flags.DEFINE_integer("train_size", None, "Train on a seeded random subset of this many images. Unset: all.")
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
flags.DEFINE_integer("seed", 1, "Seed of weights, z draws, data order and sample grids: same seed, same run.")
# outputs
flags.DEFINE_string("checkpoint_dir", "checkpoints", "Folder of run folders holding checkpoints, config.json, "
                    "losses.csv and TensorBoard logs.")
flags.DEFINE_string("sample_dir", "samples", "Folder of run folders holding sample grids.")
flags.DEFINE_string("run_name", None, "Run folder name. Unset: derived from the data set and the model settings.")
flags.DEFINE_integer("sample_freq", 200, "Write a sample grid every this many steps.")
flags.DEFINE_integer("ckpt_freq", 200, "Save a checkpoint every this many steps.")
flags.DEFINE_integer("max_to_keep", 1, "Keep this many newest checkpoints.")
flags.DEFINE_integer("grid_rows", None, "Rows of sample grids. Unset: 8, or one row per digit for MNIST.")
flags.DEFINE_integer("grid_cols", 8, "Columns of sample grids.")
flags.DEFINE_integer("verbose", 1, "Training progress: 0 silent, 1 progress bar, 2 one line per epoch.")
flags.DEFINE_boolean("visualize", False, "Test mode: visualise the latest checkpoint. Option 0 ('grid', a sample "
                     "grid) is what exists so far.")
