"""The image encoder on LiteRT with XNNPACK, for inference on a CPU.

EfficientNet-Lite was designed for this runtime (no squeeze-excite, ReLU6): converted once from the
Keras encoder by the TensorFlow Lite converter and run by LiteRT's interpreter with XNNPACK, the
same feature extractor is about 2.5x faster than the `tf.function` on a 2-core CPU, with features
equal to about 3e-5 (then rounded through float16 like every feature, as the training cache is).
Training and feature caching keep TensorFlow, so the features a model learns from stay the same.

The converted model is cached (keyed by encoder, weights, image size and TensorFlow version) in
$CAPTIONER_CACHE, else ~/.cache/captioner. Without `ai-edge-litert` installed, or with
CAPTIONER_LITERT=0, nothing here is used and the encoder runs on TensorFlow.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("captioner.litert")


def available() -> bool:
    if os.environ.get("CAPTIONER_LITERT", "1") == "0":
        return False
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def cache_folder() -> Path:
    return Path(os.environ.get("CAPTIONER_CACHE") or Path.home() / ".cache" / "captioner") / "litert"


class LiteRTFeatures:
    """(1, S, S, 3) float32 resized images -> (1, grid*grid, C) features, as `Encoder.features`.
    Not thread-safe (one interpreter): the Captioner's lock serialises its calls."""

    def __init__(self, model_path: Path, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter
        self.path = model_path
        self._interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        rows = []
        for image in np.asarray(batch, np.float32):   # converted for a batch of one
            self._interpreter.set_tensor(self._input, image[None])
            self._interpreter.invoke()
            rows.append(self._interpreter.get_tensor(self._output)[0].copy())
        return np.stack(rows)


def weights_id(encoder_name: str, weights) -> str | None:
    """What names an encoder's weights in the cache key; None for random weights (never cached)."""
    if weights is None:
        return None
    if weights in ("default", "imagenet"):
        from .assets import LITE0_WEIGHTS
        path = LITE0_WEIGHTS if encoder_name == "efficientnet_lite0" else None
        return _file_digest(path) if path else f"{encoder_name}-imagenet"
    return _file_digest(Path(weights))


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def litert_features(encoder, weights_id: str, threads: int = 2) -> LiteRTFeatures | None:
    """The encoder's LiteRT twin, converted on first use and cached; None when LiteRT is not
    installed or the conversion fails (then TensorFlow serves, as before)."""
    if not available():
        return None
    import tensorflow as tf
    key = hashlib.sha256(f"{encoder.name}|{weights_id}|{encoder.input_size}|{tf.__version__}".encode())
    path = cache_folder() / f"{encoder.name}_{encoder.input_size}px_{key.hexdigest()[:16]}.tflite"
    try:
        if not path.is_file():
            _write_atomically(path, convert(encoder))
        return LiteRTFeatures(path, threads)
    except Exception as error:   # a converter or runtime failure must never stop the app
        log.warning("LiteRT encoder unavailable, using TensorFlow: %s: %s", type(error).__name__, error)
        return None


def convert(encoder) -> bytes:
    """The encoder as a LiteRT flatbuffer: input (1, S, S, 3) float32 in [0, 255], its own scaling
    inside, output (1, grid*grid, C)."""
    import keras
    import tensorflow as tf
    size = encoder.input_size
    pixels = keras.Input((size, size, 3), batch_size=1)
    scaled = keras.layers.Rescaling(encoder.scale, offset=encoder.offset)(pixels)
    grid = keras.layers.Reshape((-1, encoder.feature_dim))(encoder.network(scaled))
    return tf.lite.TFLiteConverter.from_keras_model(keras.Model(pixels, grid)).convert()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as part:
        part.write(data)
    Path(part.name).replace(path)
