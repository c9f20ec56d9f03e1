"""The local web demo of an exported generator (Gradio): samples, z sliders, walks, vector arithmetic."""

from dcgan_tf.serving.demo.app import build_demo, launch

__all__ = ["build_demo", "launch"]
