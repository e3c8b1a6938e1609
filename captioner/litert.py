"""The image encoder on LiteRT with XNNPACK, for inference on a CPU.

EfficientNet-Lite was designed for this runtime (no squeeze-excite, ReLU6): converted once from the
Keras encoder by the TensorFlow Lite converter and run by LiteRT's interpreter with XNNPACK, the
same feature extractor is about 2.5x faster than the `tf.function` on a 2-core CPU, with features
equal to about 3e-5 (then rounded through float16 like every feature, as the training cache is).
The feature cache that training reads is made on it too (encoders.build_encoder(litert=True)), so
a model learns from the features it will see, about 2x faster than TensorFlow's batches.

The greedy search for one image (decoding.greedy_search, the whole caption loop) is converted the
same way: the TensorFlow loop spends most of its time in per-op overhead, not arithmetic, and the
converted loop gives the same words about 3x faster. It is converted for a few fixed batch sizes
too (BatchingOptions.litert_sizes: the loop's arrays need static shapes), for the visitors'
requests the server batches (batching.py); a row's words, probabilities and attention come out as
they do for that image alone. Sampling and beam search stay on TensorFlow.

The converted models are cached (keyed by what they were made from and the TensorFlow version) in
$CAPTIONER_CACHE, else ~/.cache/captioner, the newest KEEP_PER_KIND of each kind. Without
`ai-edge-litert` installed, or with CAPTIONER_LITERT=0, nothing here is used and the encoder runs
on TensorFlow.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from . import quiet_stderr

log = logging.getLogger("captioner.litert")
GRAPH_ROOTS = ("model", "decoding", "litert")   # the greedy flatbuffer is traced from these and what they import
# Conversions of one kind kept in the cache: each retrained model (or changed decoder source) adds a
# ~24 MB greedy flatbuffer; past this many the oldest conversions go (a later load converts again).
KEEP_PER_KIND = 4


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


def interpreter(model_path: Path, threads: int):
    """A flatbuffer's interpreter, its tensors allocated: LiteRT's, else TensorFlow's own (which runs
    the same files; people.py's detectors run either way)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite import Interpreter
    interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
    with quiet_stderr():   # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter.allocate_tensors()
    return interpreter


class LiteRTFeatures:
    """(1, S, S, 3) float32 resized images -> (1, grid*grid, C) features, as `Encoder.features`.
    Not thread-safe (one interpreter): the Captioner's lock serialises its calls; training and the
    `features` command build an encoder of their own."""

    def __init__(self, model_path: Path, threads: int = 2):
        self.path = model_path
        self._interpreter = interpreter(model_path, threads)
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


def graph_sources(package: Path = Path(__file__).parent, roots=GRAPH_ROOTS) -> list[Path]:
    """Every module of the package the greedy graph is traced from: GRAPH_ROOTS and each module of
    the package they import (`from .x import`, `from . import x`), at any depth and wherever the
    import sits, so a rule kept elsewhere (vocab.REPEAT_WORDS, config.LIMITS) is part of the key."""
    found, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        path = package / f"{name.replace('.', '/')}.py"
        if name in found or not path.is_file():
            continue
        found.add(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                todo += [node.module] if node.module else [alias.name for alias in node.names]
    return [package / f"{name.replace('.', '/')}.py" for name in sorted(found)]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class LiteRTGreedy:
    """`Searches.greedy` for a batch of at most `batch` images (the size it was converted for):
    features (B, N, C), max_length[, people (B,)] -> ids (B, T), probs (B, T), attention (B, T, N),
    log_prob (B,) as numpy arrays. Not thread-safe, like LiteRTFeatures."""

    def __init__(self, model_path: Path, threads: int = 2):
        self.path = model_path
        self._interpreter = interpreter(model_path, threads)
        details = {d["name"]: d for d in self._interpreter.get_input_details()}
        self._features, self._steps = details["features"]["index"], details["max_length"]["index"]
        # A checkpoint without the noun gate never reads it, and the converter may drop it.
        self._people = details["people"]["index"] if "people" in details else None
        self.batch = int(details["features"]["shape"][0])
        # The converter names outputs Identity, Identity_1, ... in the order the function returns them.
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: (len(d["name"]), d["name"]))
        self._outputs = [d["index"] for d in outputs]

    def __call__(self, features, max_length: int, people=None) -> tuple[np.ndarray, ...]:
        features = np.asarray(features, np.float32)
        rows = len(features)
        people = np.zeros(rows, np.float32) if people is None else np.asarray(people, np.float32).reshape(rows)
        if not 1 <= rows <= self.batch:
            raise ValueError(f"{rows} images for a greedy loop converted for {self.batch}")
        # Padded with copies of the first image: rows are independent, and a copy ends when its
        # original does, so the loop runs no step more than the real rows need.
        padded = np.concatenate([features, np.repeat(features[:1], self.batch - rows, 0)])
        self._interpreter.set_tensor(self._features, padded)
        self._interpreter.set_tensor(self._steps, np.asarray(max_length, np.int32))
        if self._people is not None:
            self._interpreter.set_tensor(self._people, np.concatenate([people, np.repeat(people[:1], self.batch - rows)]))
        self._interpreter.invoke()
        return tuple(self._interpreter.get_tensor(index)[:rows].copy() for index in self._outputs)


def litert_features(encoder, weights_id: str, threads: int = 2) -> LiteRTFeatures | None:
    """The encoder's LiteRT twin, converted on first use and cached; None when LiteRT is not
    installed or the conversion fails (then TensorFlow serves, as before)."""
    name = f"{encoder.name}_{encoder.input_size}px"
    return _cached(name, f"{encoder.name}|{weights_id}|{encoder.input_size}", lambda: convert(encoder),
                   lambda path: LiteRTFeatures(path, threads))


def litert_greedy(model, weights_file: Path, threads: int = 2, batch: int = 1) -> LiteRTGreedy | None:
    """The greedy search of `model` (whose weights `weights_file` holds) on LiteRT for up to `batch`
    images; None where LiteRT is not installed or the conversion fails."""
    import json
    config = json.dumps(model.config.__dict__, sort_keys=True)
    # The graph is traced from the code as well as the weights: a changed step must not reuse an old file.
    try:
        code = "|".join(_file_digest(path) for path in graph_sources())
    except OSError as error:   # installed without sources: no key that could tell a changed step
        log.warning("LiteRT greedy unavailable, using TensorFlow: %s", error)
        return None
    # Batch 1 keeps the name (and key) it always had: caches made before batches came stay valid.
    name, key = ("greedy", "") if batch == 1 else (f"greedy{batch}", f"|batch {batch}")
    # The copy path's tables come from the class table, not code: their words are part of the key.
    if model.copy is not None:
        key += "|copy " + hashlib.sha256("|".join(model.copy.words).encode()).hexdigest()[:16]
        if model.copy.probe is not None:   # the photograph probe is a file of its own (photo_probe.py)
            weights, bias = model.copy.probe
            key += "|probe " + hashlib.sha256(weights.numpy().tobytes() + bias.numpy().tobytes()).hexdigest()[:16]
    return _cached(name, f"{_file_digest(weights_file)}|{config}|{code}{key}", lambda: convert_greedy(model, batch),
                   lambda path: LiteRTGreedy(path, threads))


CACHE_DIGEST = 16   # hex digits of a cached flatbuffer's key in its name: {kind}_{digest}.tflite


def _cached(name: str, key: str, convert_now, load):
    """Load the flatbuffer cached under `key` (+ the TensorFlow version), converting it first if
    needed; None, with a warning, where anything fails: a converter or runtime failure must never
    stop the app, TensorFlow serves instead."""
    if not available():
        return None
    import tensorflow as tf
    digest = hashlib.sha256(f"{key}|{tf.__version__}".encode()).hexdigest()[:CACHE_DIGEST]
    path = cache_folder() / f"{name}_{digest}.tflite"
    try:
        if not path.is_file():
            _write_atomically(path, convert_now())
            _prune(name, keep=KEEP_PER_KIND, spare=path)
        return load(path)
    except Exception as error:
        log.warning("LiteRT %s unavailable, using TensorFlow: %s: %s", name, type(error).__name__, error)
        return None


def _prune(name: str, keep: int, spare: Path) -> None:
    """Delete all but the `keep` newest flatbuffers of one kind, never `spare` (the one just made).
    A file another process has loaded stays readable to it; one it is about to load fails there,
    and that process serves on TensorFlow with a warning."""
    def written(path):
        try:
            return path.stat().st_mtime_ns
        except FileNotFoundError:   # pruned by another process meanwhile
            return 0
    kind = [p for p in cache_folder().glob(f"{name}_*.tflite")
            if len(p.stem) == len(name) + 1 + CACHE_DIGEST and p != spare]
    for old in sorted(kind, key=written, reverse=True)[keep - 1:]:
        old.unlink(missing_ok=True)


def convert(encoder) -> bytes:
    """The encoder as a LiteRT flatbuffer: input (1, S, S, 3) float32 in [0, 255], its own scaling
    inside, output (1, grid*grid, C)."""
    import keras
    import tensorflow as tf
    size = encoder.input_size
    pixels = keras.Input((size, size, 3), batch_size=1)
    scaled = keras.layers.Rescaling(encoder.scale, offset=encoder.offset)(pixels)
    grid = keras.layers.Reshape((-1, encoder.feature_dim))(encoder.network(scaled))
    with quiet_conversion():
        return tf.lite.TFLiteConverter.from_keras_model(keras.Model(pixels, grid)).convert()


def convert_greedy(model, batch: int = 1) -> bytes:
    """decoding.greedy_search for `batch` images as a LiteRT flatbuffer, the weights frozen into it:
    inputs "features" (batch, N, C) float32, "max_length" int32 and "people" (batch,) float32 (people.py);
    outputs as `LiteRTGreedy` reads them. The batch is fixed: the loop's arrays need static shapes to convert."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from .decoding import greedy_search
    config = model.config
    spec = tf.TensorSpec([batch, config.grid_size ** 2, config.feature_dim], tf.float32, name="features")

    @tf.function(input_signature=[spec, tf.TensorSpec([], tf.int32, name="max_length"),
                                  tf.TensorSpec([batch], tf.float32, name="people")])
    def search(features, max_length, people):
        return greedy_search(model, features, max_length, people)

    # Frozen: the loop reads its weights as constants (LiteRT cannot read the Keras variables from
    # inside a WHILE body).
    frozen = convert_variables_to_constants_v2(search.get_concrete_function())
    with quiet_conversion():
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()


@contextlib.contextmanager
def quiet_conversion():
    """The converter's chatter kept off a first `make demo`: Keras's "Saved artifact" listing of
    hundreds of captured tensors, absl's deprecation warning, the C++ lines."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), quiet_stderr():
            yield
    finally:
        absl.setLevel(level)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as part:
        part.write(data)
    Path(part.name).replace(path)
