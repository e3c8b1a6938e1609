"""COCO-format captions, the feature cache, and tf.data pipelines with padded, masked captions."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from .encoders import decode_image_bytes
from .vocab import Vocabulary


@dataclass
class CaptionSet:
    """Image file names and (image index, caption) pairs from a COCO captions file."""
    files: list[str]                 # file_name per image, in the file's order
    image_ids: list[int]
    pairs: list[tuple[int, str]]     # (index into files, caption)


def load_captions(path, images_dir=None, limit: int = 0, per_image: int = 0, seed: int = 0) -> CaptionSet:
    """Read `captions_*.json` ({"images": [...], "annotations": [{"image_id", "caption"}]}).

    `limit` keeps the first N captions (the seed tutorial trains on 30,000); then `per_image` keeps
    at most that many of each image's captions, drawn with `seed`, in the file's order. With `images_dir`,
    captions of images missing from the folder fail loudly rather than silently shrinking the set.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        images = {int(im["id"]): im["file_name"] for im in data["images"]}
        notes = [(int(a["image_id"]), str(a["caption"])) for a in data["annotations"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a COCO captions file ({error})") from None
    if limit:
        notes = notes[:limit]
    if per_image:
        notes = _some_per_image(notes, per_image, seed)
    used = sorted({image_id for image_id, _ in notes})
    unknown = [i for i in used if i not in images]
    if unknown:
        raise ValueError(f"{path}: captions refer to unknown image ids, e.g. {unknown[:3]}")
    files = [images[i] for i in used]
    if images_dir is not None:
        missing = [f for f in files if not (Path(images_dir) / f).is_file()]
        if missing:
            raise ValueError(f"{len(missing)} images are missing from {images_dir}, e.g. {missing[0]}")
    row = {image_id: n for n, image_id in enumerate(used)}
    return CaptionSet(files, used, [(row[i], c) for i, c in notes])


def _some_per_image(notes: list[tuple[int, str]], per_image: int, seed: int) -> list[tuple[int, str]]:
    by_image: dict[int, list[int]] = {}
    for n, (image_id, _) in enumerate(notes):
        by_image.setdefault(image_id, []).append(n)
    rng = np.random.default_rng(seed)
    kept = set()
    for image_id in sorted(by_image):
        where = by_image[image_id]
        kept.update(where if len(where) <= per_image else rng.choice(where, per_image, replace=False).tolist())
    return [note for n, note in enumerate(notes) if n in kept]


def split_by_image(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split image indices (not captions) so no validation image is ever seen in training."""
    order = np.random.default_rng(seed).permutation(count)
    n_val = int(round(count * val_fraction)) if count > 1 else 0
    if val_fraction > 0 and count > 1:
        n_val = max(n_val, 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# --- feature cache -----------------------------------------------------------------------------

def cache_dir(root, encoder_name: str) -> Path:
    return Path(root) / encoder_name


def image_dataset(paths: list[str], encoder, batch_size: int) -> tf.data.Dataset:
    """Files -> resized float batches, decoded in parallel (tf.data, AUTOTUNE)."""
    def read(path):
        return encoder.resize(decode_image_bytes(tf.io.read_file(path)))
    return (tf.data.Dataset.from_tensor_slices(paths)
            .map(read, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))


def extract_features(encoder, images_dir, files: list[str], root, batch_size: int = 32,
                     progress: bool = True) -> Path:
    """Encode the images not yet cached; the cache is `root/<encoder>/features.npy` + `index.json`.

    Features are stored as float16 (half the disk and memory); the model always sees them cast
    back to float32, in training and at use alike. They come from the encoder's LiteRT twin where
    `enable_litert` made one (as the app's do), else from TensorFlow (the two agree to ~1e-4; the
    cache does not record which made a row, so a cache extended by the other engine mixes them).
    """
    from tqdm import tqdm
    folder = cache_dir(root, encoder.cache_name)
    index, features = load_feature_cache(folder) if (folder / "index.json").exists() else ({}, None)
    todo = [f for f in dict.fromkeys(files) if f not in index]
    if not todo:
        return folder
    paths = [str(Path(images_dir) / f) for f in todo]
    old = 0 if features is None else len(features)
    folder.mkdir(parents=True, exist_ok=True)
    # Written into the file as it is made, not gathered and joined in memory: a 64,000-image cache
    # is 8 GB, and gathering it held it twice (training's other 8 GB beside it ran a 24 GB machine out).
    combined = np.lib.format.open_memmap(folder / "features.tmp.npy", mode="w+", dtype=np.float16,
                                         shape=(old + len(todo), *encoder_shape(encoder)))
    if features is not None:
        combined[:old] = features
    done = old
    with tqdm(total=len(todo), unit="img", desc=f"features ({encoder.cache_name})", disable=not progress) as bar:
        for batch in image_dataset(paths, encoder, batch_size):
            rows = encoder.batch_features(batch).numpy().astype(np.float16)
            combined[done:done + len(rows)] = rows
            done += len(rows)
            bar.update(len(rows))
    combined.flush()
    del combined
    index.update({f: len(index) + n for n, f in enumerate(todo)})
    _write_cache(folder, index)
    return folder


def encoder_shape(encoder) -> tuple[int, int]:
    """(cells, channels) of one image's features."""
    return encoder.grid_size * encoder.grid_size, encoder.feature_dim


def _write_cache(folder: Path, index: dict) -> None:
    """The features are written beside the old cache (features.tmp.npy); rename both: an interrupted
    run never loses what was cached."""
    (folder / "index.tmp.json").write_text(json.dumps(index))
    (folder / "features.tmp.npy").replace(folder / "features.npy")
    (folder / "index.tmp.json").replace(folder / "index.json")


def load_feature_cache(folder) -> tuple[dict, np.ndarray]:
    """-> ({file_name: row}, memory-mapped (images, N, C) float16 array)."""
    folder = Path(folder)
    try:
        index = json.loads((folder / "index.json").read_text())
        features = np.load(folder / "features.npy", mmap_mode="r")
    except (OSError, ValueError) as error:
        raise ValueError(f"feature cache {folder} is unreadable ({error}); delete it to rebuild") from None
    if features.ndim != 3 or len(features) < len(index):
        raise ValueError(f"feature cache {folder} does not match its index; delete it to rebuild")
    return index, features


# --- caption batches ---------------------------------------------------------------------------

def encode_captions(pairs, vocab: Vocabulary, max_words: int):
    """-> image rows (n,) and token id lists with <start>/<end>, cut to `max_words` words."""
    rows = np.array([row for row, _ in pairs], np.int64)
    tokens = [vocab.encode(caption, max_words) for _, caption in pairs]
    return rows, tokens


def _steps(ids):
    """(B, L) padded <start> ... <end> ids -> (B,) decoder steps each caption takes (<end> included)."""
    return tf.reduce_sum(tf.cast(ids[:, 1:] != 0, tf.int32), axis=1)


def _bucket_bounds(limit: int, length_step: int) -> list[int]:
    return list(range(length_step + 1, limit + 1, length_step))


def batches_per_epoch(tokens: list[list[int]], batch_size: int, max_words: int, length_step: int = 0,
                      drop_remainder: bool = False) -> int:
    """How many batches caption_dataset makes of these captions (each bucket has its own remainder)."""
    steps = [min(len(ids), max_words + 2) - 1 for ids in tokens]
    buckets = np.digitize(steps, _bucket_bounds(max_words + 1, length_step)) if length_step > 0 else np.zeros(len(steps))
    sizes = np.bincount(buckets.astype(int))
    return int(sum(n // batch_size if drop_remainder else -(-n // batch_size) for n in sizes))


def pad_captions(tokens: list[list[int]], length: int) -> np.ndarray:
    """Token lists of any length -> (n, length) int32, filled with <pad> = 0."""
    padded = np.zeros((len(tokens), length), np.int32)
    for n, ids in enumerate(tokens):
        padded[n, :len(ids)] = ids[:length]
    return padded


def caption_dataset(features: np.ndarray, rows: np.ndarray, tokens: list[list[int]],
                    batch_size: int, max_words: int, shuffle: bool, seed: int = 0,
                    drop_remainder: bool = False, grounding=None, length_step: int = 0) -> tf.data.Dataset:
    """Batches ((features (B,N,C), inputs (B,T)), targets (B,T)), T <= max_words + 1.

    Captions are padded with <pad> = 0 and the loss masks the pads out (`targets != 0`). With
    `length_step` = 0 every batch is padded to max_words + 1 steps, so the compiled train step is
    traced once. With `length_step` = s, captions are batched with others of about their length
    and each batch is cut to its longest caption rounded up to a multiple of s: the unrolled
    decoder runs the steps the batch has, not the longest caption's (one trace per length,
    ceil((max_words + 1) / s) at most). Pads never change a real step's loss, so a batch's loss is the same
    either way. Features are gathered per batch, so a memory-mapped cache larger than RAM works
    too. With `grounding` = (regions (n, L), cells (R, N)) from `grounding.caption_object_cells`,
    each batch also carries the cells of the object that each target word names, (B, T, N), all
    zero where a word names none.
    """
    padded = pad_captions(tokens, max_words + 2)
    columns = (rows, padded)
    if grounding is not None:   # the cells table gets one zero row last, for steps that name no object
        columns += (np.where(grounding[0] < 0, len(grounding[1]), grounding[0]),)
        object_cells = tf.constant(np.concatenate([grounding[1], np.zeros((1, grounding[1].shape[1]), np.float32)]))
    data = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        data = data.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    limit = max_words + 1
    if length_step > 0:   # buckets of captions taking <= s, <= 2s, ... steps
        bounds = _bucket_bounds(limit, length_step)
        data = data.bucket_by_sequence_length(
            lambda row, ids, *regions: _steps(ids[None])[0], bucket_boundaries=bounds,
            bucket_batch_sizes=[batch_size] * (len(bounds) + 1), drop_remainder=drop_remainder)
    else:
        data = data.batch(batch_size, drop_remainder=drop_remainder)

    def gather(batch_rows):
        return np.asarray(features[np.asarray(batch_rows)], np.float32)

    def to_model(batch_rows, ids, regions=None):
        feats = tf.numpy_function(gather, [batch_rows], tf.float32)
        feats.set_shape([None, features.shape[1], features.shape[2]])
        steps = limit
        if length_step > 0:
            longest = tf.reduce_max(_steps(ids))
            steps = tf.minimum(-(-longest // length_step) * length_step, limit)
        inputs, targets = ids[:, :-1][:, :steps], ids[:, 1:][:, :steps]
        if grounding is None:
            return (feats, inputs), targets
        return (feats, inputs), targets, tf.gather(object_cells, regions[:, :steps])   # (B, T, N)
    return data.map(to_model, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
