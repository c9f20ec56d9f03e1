"""Layers 1-2, the model: the networks, the losses and augmentations its training step uses (layer 1), and the DCGAN
that puts them together (layer 2).

- networks: `build_generator`, `build_discriminator` (carpedm20's nets, as Keras models)
- losses: the adversarial losses and the penalties on D (WGAN-GP's, R1)
- augment: DiffAugment and ADA's adaptive probability
- distribution: --strategy, and the replica plumbing of the training step
- model: `DCGAN(keras.Model)` and its `train_step` (layer 2)
- build: `build_dcgan(config)`: dtype policy, optimizers, replica scope (layer 2)
"""
