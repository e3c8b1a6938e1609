"""EfficientNet-Lite0 as a Keras 3 functional model, layer for layer like the PyTorch original.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 everywhere and a fixed stem
(32) and head (1280). The original weights were trained with TensorFlow's "SAME" padding, which is
asymmetric for stride 2 (the odd pixel goes bottom/right). Stride-2 convolutions here pad explicitly
(`ZeroPadding2D` + "valid"), so the port does not depend on how a backend reads "same"; on the
TensorFlow backend the two give bit-identical outputs (checked on photos and noise). Layer names
follow the PyTorch state dict (`_blocks.3._expand_conv` -> `blocks_3_expand_conv`) so the weight
mapping is plain.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

BN_EPSILON = 1e-3
# (repeats, kernel, first stride, expansion, in, out) per stage
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


def _pad_for(x, kernel: int, stride: int, name: str):
    """TensorFlow "SAME" as explicit padding: (x, "valid") for the conv that follows."""
    if stride == 1:
        return x, "same"                      # symmetric for odd kernels: no ambiguity
    size = int(x.shape[1])                    # square input, fixed at 224
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    pads = (total // 2, total - total // 2)   # e.g. 224, k3 -> (0, 1); 112, k5 -> (1, 2)
    return keras.layers.ZeroPadding2D((pads, pads), name=name)(x), "valid"


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, bn_name: str, relu: bool = True):
    x, padding = _pad_for(x, kernel, stride, name + "_pad")
    x = keras.layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=bn_name)(x)
    return keras.layers.ReLU(6.0)(x) if relu else x


def _block(x, index: int, kernel: int, stride: int, expansion: int, filters_in: int, filters_out: int):
    prefix = f"blocks_{index}_"
    inputs = x
    if expansion != 1:
        x = _conv_bn(x, filters_in * expansion, 1, 1, prefix + "expand_conv", prefix + "bn0")
    x, padding = _pad_for(x, kernel, stride, prefix + "pad")
    x = keras.layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False,
                                     name=prefix + "depthwise_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=prefix + "bn1")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = _conv_bn(x, filters_out, 1, 1, prefix + "project_conv", prefix + "bn2", relu=False)
    if stride == 1 and filters_in == filters_out:
        x = keras.layers.Add(name=prefix + "add")([x, inputs])
    return x


def build_efficientnet_lite0(include_top: bool = False, input_size: int = 224) -> keras.Model:
    """(B, 224, 224, 3) scaled as (x - 127) / 128 -> (B, 7, 7, 1280) features, or (B, 1000) logits.
    Trained at 224; any side works (features: side / 32 cells a side, rounded up)."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = _conv_bn(inputs, 32, 3, 2, "conv_stem", "bn0")                    # (B, 112, 112, 32)
    index = 0
    for repeats, kernel, stride, expansion, filters_in, filters_out in STAGES:
        for repeat in range(repeats):
            x = _block(x, index, kernel, stride if repeat == 0 else 1, expansion,
                       filters_in if repeat == 0 else filters_out, filters_out)
            index += 1
    x = _conv_bn(x, 1280, 1, 1, "conv_head", "bn1")                        # (B, 7, 7, 1280)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)          # (B, 1280)
        x = keras.layers.Dense(1000, name="fc")(x)                          # (B, 1000) logits
    return keras.Model(inputs, x, name="efficientnet_lite0")


def keras_weight_names(layer) -> list[str]:
    """Names of a layer's weights in the converted file, in the order Keras stores them."""
    if isinstance(layer, keras.layers.BatchNormalization):
        fields = ["gamma", "beta", "moving_mean", "moving_variance"]
    elif isinstance(layer, keras.layers.Dense):
        fields = ["kernel", "bias"]
    else:
        fields = ["kernel"]
    return [f"{layer.name}/{field}" for field in fields]


def load_lite0_weights(model: keras.Model, path) -> None:
    """Load the converted `.npz` (any float dtype; cast to the model's float32)."""
    path = Path(path)
    try:
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except Exception as error:
        raise ValueError(f"{path}: not a readable EfficientNet-Lite0 weights file ({error})") from None
    for layer in model.layers:
        if not layer.weights:
            continue
        names = keras_weight_names(layer)
        missing = [n for n in names if n not in arrays]
        if missing:
            raise ValueError(f"{path}: missing weights {missing[:2]}")
        values = [arrays[n].astype(np.float32) for n in names]
        if [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
            raise ValueError(f"{path}: weights of {layer.name} have the wrong shape")
        layer.set_weights(values)
