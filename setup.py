from setuptools import find_packages, setup

setup(
    name="dcgan_tf",
    version="0.1.0",
    description="DCGAN for small image sets in TensorFlow 2 / Keras 3 (a port of carpedm20/DCGAN-tensorflow)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["dcgan_tf", "dcgan_tf.*"]),
    package_data={"dcgan_tf.data.builtin_data": ["twemoji_smileys/*.png", "twemoji_smileys/*.csv",
                                                 "twemoji_smileys/*.md", "twemoji_smileys/*.txt"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",  # Keras 3
        "keras>=3.0",
        "numpy>=1.23",
        "pillow>=9.1",
        "imageio>=2.20",  # GIFs
        "matplotlib>=3.5",  # loss plots and run comparisons (Agg; no display needed)
        "absl-py>=1.0",
        "tensorboard>=2.16",  # tf.summary writers; TensorFlow 2.21 no longer installs it
        "scikit-learn>=1.1",  # the linear probe's logistic regression (--probe)
    ],
    extras_require={
        # scipy: the tests' reference for FID's matrix root; playwright: drives a system Chromium in the demo's
        # browser tests (it downloads no browser)
        "test": ["pytest>=7", "pytest-xdist>=3.0", "scipy>=1.9", "playwright>=1.40"],
        "demo": ["gradio>=6.0,<7"],  # --demo: the local web app (Gradio changes its API between major versions)
        # --export_format onnx; tf2onnx 1.16 and older pin protobuf 3.20, which TensorFlow 2.16+ cannot use
        "onnx": ["tf2onnx>=1.17", "onnx>=1.17", "onnxruntime>=1.20"],
    },
    license="MIT",
)
