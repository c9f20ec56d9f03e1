"""Layers 3-4, a trained generator out of its run: the export files, and the web demo that serves them.

- export: `--export` (.keras, SavedModel, TensorFlow Lite, ONNX), `load_export`
- demo/: the local web app (Gradio, layer 4); imports only export, latent and images
"""
