"""Layer 3, the data a run trains on before the GAN sees it: the autoencoder's reconstructions and near-duplicates.

- autoencoder: the convolutional autoencoder, its cache, near-duplicates
- preprocessing: originals or reconstructions (until swap_epoch), dedupe; the standalone --train_autoencoder mode
- pictures: originals over their reconstructions, the code space in 2-D
"""
