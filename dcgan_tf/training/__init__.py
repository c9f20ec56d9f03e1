"""Layer 3, training a run: `train(config)` and the Keras callbacks that watch it.

- loop: `train(config)`: data, model, callbacks, fit with rollbacks, finish
- callbacks: grids, checkpoints, loss CSV, TensorBoard, NaN guard, graceful stop
"""
