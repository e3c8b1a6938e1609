"""Frozen ImageNet encoders and their preprocessing, the same at training and at use.

Images are resized WHOLE to the encoder's input (no centre crop, aspect not kept): the attention
grid then covers the whole picture and overlays line up with it. `resize`, then the network on
LiteRT where enabled (else `features`), then rounding through float16, is the only way images
reach the model: in the feature cache (`batch_features`) and the API (`image_features`) alike; the
exported SavedModel carries `resize` and `features`.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .assets import LITE0_WEIGHTS

ENCODER_NAMES = ("efficientnet_lite0", "inception_v3")
NATIVE_SIZES = {"efficientnet_lite0": 224, "inception_v3": 299}   # the input each was trained at


class Encoder(tf.Module):
    """A frozen CNN: uint8 image -> (grid*grid, channels) features."""

    def __init__(self, name: str, network: keras.Model, input_size: int, scale, offset):
        super().__init__(name=name)
        self.network = network          # tracked by tf.Module, so exports carry its weights
        self.network.trainable = False
        self.input_size = input_size
        # Features at another input size are other features: they get their own cache folder.
        self.cache_name = name if input_size == NATIVE_SIZES[name] else f"{name}_{input_size}px"
        self.grid_size = int(network.output_shape[1])
        self.feature_dim = int(network.output_shape[-1])
        self.scale, self.offset = float(scale), float(offset)
        self.litert = None              # the LiteRT twin of `features`, once enable_litert has made it
        size = input_size
        # A fixed signature (any batch size) traces once: feature extraction, the app and the
        # export never pay for a retrace.
        self.features = tf.function(self._features,
                                    input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        # One compiled call per image instead of four eager ops: at inference the resize otherwise
        # costs a third of the LiteRT encoder's time. Any image size, one trace.
        self._resize_one = tf.function(self.resize, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])

    def resize(self, image) -> tf.Tensor:
        """One uint8 image (H, W, 3) of any size -> (S, S, 3) float32 in [0, 255]."""
        image = tf.cast(tf.convert_to_tensor(image), tf.float32)
        resized = tf.image.resize(image, [self.input_size, self.input_size], "bilinear", antialias=True)
        return tf.clip_by_value(resized, 0.0, 255.0)   # a guarantee; the triangle filter has no overshoot

    def _features(self, batch):
        """(B, S, S, 3) float32 in [0, 255] -> (B, grid*grid, C), e.g. (B, 49, 1280)."""
        scaled = batch * self.scale + self.offset                       # the encoder's own scaling
        grid = self.network(scaled, training=False)                     # (B, g, g, C)
        return tf.reshape(grid, [tf.shape(grid)[0], -1, self.feature_dim])  # (B, g*g, C)

    def batch_features(self, batch) -> tf.Tensor:
        """(B, S, S, 3) resized images -> (B, grid*grid, C) float32: on LiteRT once `enable_litert`
        has made it (the app's path, and the feature cache's), else on TensorFlow."""
        fast = self.litert
        return tf.convert_to_tensor(fast(np.asarray(batch, np.float32))) if fast is not None else self.features(batch)

    def image_features(self, images) -> tf.Tensor:
        """RGB images (PIL or uint8 (H, W, 3) arrays) of any sizes -> (B, grid*grid, C), rounded
        exactly as the training cache stores them."""
        batch = np.stack([self._resize_one(np.asarray(im, np.uint8)).numpy() for im in images])
        # Rounded in numpy as the cache rounds (data.extract_features), the very numbers `as_stored`
        # gives: no TensorFlow op between this LiteRT call and the decoder's.
        return tf.convert_to_tensor(self.batch_features(batch).numpy().astype(np.float16).astype(np.float32))

    def enable_litert(self, weights_id: str) -> bool:
        """Run inference on LiteRT with XNNPACK when it is installed (captioner/litert.py); the first
        time for these weights and size, the conversion takes seconds, then it is cached."""
        from .litert import litert_features
        self.litert = litert_features(self, weights_id)
        return self.litert is not None


def as_stored(features: tf.Tensor) -> tf.Tensor:
    """Features rounded through float16, as the training cache keeps them: the model sees the same
    numbers at use as in training."""
    return tf.cast(tf.cast(features, tf.float16), tf.float32)


def decode_image_bytes(data) -> tf.Tensor:
    """Encoded bytes -> (H, W, 3) uint8, pixel for pixel what Pillow decodes at use.

    TensorFlow's default JPEG DCT is a fast, less accurate one (pixels off by up to 6 from
    Pillow's); the cached training features and the app must see the same pixels.
    """
    return tf.cond(tf.io.is_jpeg(data),
                   lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                   lambda: tf.io.decode_image(data, channels=3, expand_animations=False))


def build_encoder(name: str = "efficientnet_lite0", weights: str | None = "default", image_size: int = 0,
                  litert: bool = False) -> Encoder:
    """`weights`: "default" (shipped Lite0 / Keras' InceptionV3 download), a file path, or None (random).

    `image_size`: the side images are resized to; 0 = the size the network was trained at (224 for
    Lite0, 299 for InceptionV3). Both are fully convolutional, so a larger side gives a finer
    attention grid (Lite0: side / 32, e.g. 256 -> 8x8) from the same weights.
    `litert`: compute features on LiteRT where it is installed, the weights are named (random ones
    are not) and no GPU is visible (LiteRT runs on the CPU; a GPU's TensorFlow batches are faster):
    the app and the feature cache then use one engine, ~2x faster on a CPU.
    """
    if image_size and not 96 <= image_size <= 1024:
        raise ValueError(f"image size {image_size}: choose 0 (the encoder's own) or 96 to 1024 pixels")
    if name == "efficientnet_lite0":
        encoder = _lite0(weights, image_size or NATIVE_SIZES[name])
    elif name == "inception_v3":
        encoder = _inception_v3(weights, image_size or NATIVE_SIZES[name])
    else:
        raise ValueError(f"unknown encoder {name!r}: choose one of {', '.join(ENCODER_NAMES)}")
    if litert and not tf.config.list_physical_devices("GPU"):
        from .litert import weights_id
        if (key := weights_id(name, weights)):
            encoder.enable_litert(key)
    return encoder


def _lite0(weights, size: int) -> Encoder:
    from .lite0 import build_efficientnet_lite0, load_lite0_weights
    network = build_efficientnet_lite0(include_top=False, input_size=size)
    if weights is not None:
        path = LITE0_WEIGHTS if weights == "default" else Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: EfficientNet-Lite0 weights not found")
        load_lite0_weights(network, path)
    return Encoder("efficientnet_lite0", network, size, 1 / 128, -127 / 128)   # (x - 127) / 128


def _inception_v3(weights, size: int) -> Encoder:
    download = weights in ("default", "imagenet")
    if not download and weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: InceptionV3 weights file not found")
    try:
        network = keras.applications.InceptionV3(
            include_top=False, weights="imagenet" if download else weights, input_shape=(size, size, 3))
    except Exception as error:   # Keras raises several kinds when the download or the file fails
        if download:
            raise RuntimeError(
                f"InceptionV3 ImageNet weights could not be downloaded ({type(error).__name__}: {error}). "
                "Keras fetches them from the internet; offline, pass a local weights file "
                "(--encoder-weights PATH, an .h5 file) or None for random weights") from None
        raise ValueError(f"{weights}: not a readable InceptionV3 (include_top=False) weights file "
                         f"({type(error).__name__}: {error})") from None
    return Encoder("inception_v3", network, size, 1 / 127.5, -1.0)           # x / 127.5 - 1
