"""The public API: `Captioner.load(...).caption(image)` -> `Caption`."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from .checkpoint import Checkpoint, load_checkpoint
from .decoding import Decoder
from .images import InputError, load_image

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_CHECKPOINT = ASSETS / "model"
STRATEGIES = ("greedy", "sample", "beam")


@dataclass
class Caption:
    text: str
    words: list[str]
    probs: np.ndarray                  # (T,) probability of each word under the model
    attention: np.ndarray              # (T, grid, grid) where the model looked for each word
    image: object = field(repr=False)  # the RGB PIL image that was captioned
    log_prob: float = 0.0              # of the whole caption, <end> included
    strategy: str = "greedy"
    seed: int | None = None            # the seed a sampled caption can be repeated with

    def to_dict(self) -> dict:
        return {"caption": self.text, "words": self.words,
                "probs": [round(float(p), 4) for p in self.probs],
                "log_prob": round(self.log_prob, 4), "strategy": self.strategy, "seed": self.seed}


class Captioner:
    """A loaded checkpoint with its encoder; thread-safe (model calls are serialised)."""

    def __init__(self, checkpoint: Checkpoint, encoder_weights="default", source: str | None = None):
        from .encoders import build_encoder
        self.checkpoint = checkpoint
        self.source = source or checkpoint.path.name   # how the page names it: never a server path
        self.config = checkpoint.config.model
        self.vocab = checkpoint.vocab
        self.encoder = build_encoder(self.config.encoder, encoder_weights, self.config.image_size)
        if (self.encoder.grid_size, self.encoder.feature_dim) != (self.config.grid_size, self.config.feature_dim):
            raise ValueError(f"{checkpoint.path}: encoder {self.config.encoder} gives "
                             f"{self.encoder.grid_size}x{self.encoder.grid_size}x{self.encoder.feature_dim} "
                             f"features, the checkpoint expects {self.config.grid_size}x"
                             f"{self.config.grid_size}x{self.config.feature_dim}")
        self.decoder = Decoder(checkpoint.model)
        self._lock = threading.Lock()   # TF/Keras calls are not safe from several threads at once

    @classmethod
    def load(cls, path=None, encoder_weights="default") -> "Captioner":
        """A checkpoint directory, or `hf://owner/repo` (from the Hub), or None: $CAPTIONER_CHECKPOINT
        if set, else the default model shipped under assets/model."""
        path = path or os.environ.get("CAPTIONER_CHECKPOINT") or DEFAULT_CHECKPOINT
        source = "the shipped default model" if Path(path) == DEFAULT_CHECKPOINT else None
        if str(path).startswith("hf://"):
            from .hub import download
            source, path = str(path), download(str(path)[len("hf://"):])
        return cls(load_checkpoint(path), encoder_weights, source)

    @classmethod
    def from_pretrained(cls, repo_id: str, **kwargs) -> "Captioner":
        return cls.load(f"hf://{repo_id}", **kwargs)

    def warm_up(self) -> "Captioner":
        """Trace every compiled function once, so the first real request is as fast as the rest."""
        blank = np.full((self.encoder.input_size, self.encoder.input_size, 3), 127, np.uint8)
        for strategy in STRATEGIES:
            self.caption(blank, strategy, seed=0)
        self.sample_captions(blank, n=2, seed=0)
        return self

    # --- images -> features ------------------------------------------------------------------

    def features(self, images) -> tf.Tensor:
        """RGB PIL images -> (B, N, C), rounded through float16 exactly as the training cache is."""
        batch = tf.stack([self.encoder.resize(np.asarray(im, np.uint8)) for im in images])
        features = self.encoder.features(batch)
        return tf.cast(tf.cast(features, tf.float16), tf.float32)

    # --- captions ----------------------------------------------------------------------------

    def caption(self, image, strategy: str = "greedy", temperature: float = 1.0, top_k: int = 0,
                beam_size: int = 3, seed: int | None = None, max_length: int | None = None,
                length_alpha: float = 0.7) -> Caption:
        return self.caption_batch([image], strategy, temperature, top_k, beam_size, seed,
                                  max_length, length_alpha)[0]

    def caption_batch(self, images, strategy: str = "greedy", temperature: float = 1.0, top_k: int = 0,
                      beam_size: int = 3, seed: int | None = None, max_length: int | None = None,
                      length_alpha: float = 0.7) -> list[Caption]:
        steps = self._check(strategy, temperature, top_k, beam_size, max_length)
        pictures = [load_image(im) for im in images]
        if not pictures:
            return []
        with self._lock:
            features = self.features(pictures)
            if strategy == "beam":
                outputs = [self.decoder.beam(features[i:i + 1], steps, tf.constant(beam_size),
                                             tf.constant(length_alpha, tf.float32))
                           for i in range(len(pictures))]
                outputs = [np.concatenate([o[j].numpy() for o in outputs]) if j == 3 else
                           [o[j].numpy()[0] for o in outputs] for j in range(4)]
            elif strategy == "sample":
                seed = _pick_seed(seed)
                outputs = [x.numpy() for x in self.decoder.sample(
                    features, steps, tf.constant(temperature, tf.float32), tf.constant(top_k), _seed_pair(seed))]
            else:
                outputs = [x.numpy() for x in self.decoder.greedy(features, steps)]
        ids, probs, attention, log_probs = outputs
        return [self._caption(pictures[i], ids[i], probs[i], attention[i], log_probs[i], strategy,
                              seed if strategy == "sample" else None) for i in range(len(pictures))]

    def sample_captions(self, image, n: int = 5, temperature: float = 1.0, top_k: int = 0,
                        seed: int | None = None, max_length: int | None = None) -> list[Caption]:
        """n samples for one image in one batch, most likely first; the same seed repeats them."""
        steps = self._check("sample", temperature, top_k, 1, max_length)
        if not 1 <= int(n) <= 50:
            raise InputError("The number of samples must be between 1 and 50")
        picture = load_image(image)
        seed = _pick_seed(seed)
        with self._lock:
            features = tf.repeat(self.features([picture]), int(n), axis=0)
            ids, probs, attention, log_probs = [x.numpy() for x in self.decoder.sample(
                features, steps, tf.constant(temperature, tf.float32), tf.constant(top_k), _seed_pair(seed))]
        captions = [self._caption(picture, ids[i], probs[i], attention[i], log_probs[i], "sample", seed)
                    for i in range(int(n))]
        return sorted(captions, key=lambda c: -c.log_prob)

    def _caption(self, picture, ids, probs, attention, log_prob, strategy, seed) -> Caption:
        words = self.vocab.decode(ids)
        grid = self.config.grid_size
        return Caption(text=" ".join(words), words=words, probs=np.asarray(probs[:len(words)], np.float32),
                       attention=np.asarray(attention[:len(words)], np.float32).reshape(len(words), grid, grid),
                       image=picture, log_prob=float(log_prob), strategy=strategy, seed=seed)

    def _check(self, strategy, temperature, top_k, beam_size, max_length) -> tf.Tensor:
        if strategy not in STRATEGIES:
            raise InputError(f"Unknown strategy {strategy!r}: use greedy, sample or beam")
        if not 0.05 <= float(temperature) <= 5.0:
            raise InputError("Temperature must be between 0.05 and 5")
        if not 0 <= int(top_k) <= len(self.vocab):
            raise InputError(f"top-k must be between 0 (off) and {len(self.vocab)}")
        if not 1 <= int(beam_size) <= 20:
            raise InputError("Beam size must be between 1 and 20")
        steps = self.config.max_length if max_length is None else int(max_length)
        if not 1 <= steps <= 100:
            raise InputError("max_length must be between 1 and 100 words")
        return tf.constant(steps, tf.int32)


def _pick_seed(seed) -> int:
    return int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed) % 2**31


def _seed_pair(seed: int) -> tf.Tensor:
    return tf.constant([seed, 0], tf.int32)
