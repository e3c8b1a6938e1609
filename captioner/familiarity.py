"""How much an image looks like the model's training images, measured on the encoder's features.

A captioner answers every image with a fluent sentence, however unlike its training data the image
is; per-word probabilities do not tell (an emoji-world model is 0.99 sure of nonsense on a photo).
So each checkpoint may carry `familiarity.npz`: the mean and the main directions (PCA) of its
training images' mean-pooled features, and a threshold set on held-out images of the same world.
An image's distance is its Mahalanobis distance in those directions plus what they leave out,
relative to the training images'; above the threshold, the page warns that the caption is likely
wrong. Cheap: one (1280,) x (1280, K) product per image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "familiarity.npz"
UNFAMILIAR = ("This image looks unlike anything this model was trained on (measured on its image features): "
              "the caption is likely wrong, however confident its words look.")
FLAT = "This image is almost one flat colour: there is nothing in it to caption."
NOISE = "This image looks like random noise: there is nothing in it to caption."
# Read on the pixels, where the features cannot tell: a blank image's features sit near the
# training images' mean (the emoji world's plain backgrounds), and pixel noise can too. A photo's
# brightness varies by tens of levels and its neighbouring pixels correlate (0.8 and more);
# one flat colour has a spread of a few levels, per-pixel noise no correlation at all.
FLAT_SPREAD = 6.0           # standard deviation of brightness (0-255) below which an image is flat
NOISE_CORRELATION = 0.3     # mean correlation of neighbouring pixels below which it is noise


def content_warning(picture) -> str | None:
    """An RGB PIL image -> why there is nothing to caption in it (flat, noise), or None."""
    small = picture.convert("L")
    small.thumbnail((256, 256))
    gray = np.asarray(small, np.float32)
    if gray.std() < FLAT_SPREAD:
        return FLAT
    if min(gray.shape) < 2:
        return None
    pairs = [(gray[:, :-1], gray[:, 1:]), (gray[:-1], gray[1:])]
    correlation = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in pairs])
    return NOISE if np.nan_to_num(correlation) < NOISE_CORRELATION else None


@dataclass
class Familiarity:
    mean: np.ndarray          # (C,) mean pooled training feature
    components: np.ndarray    # (K, C) principal directions
    scales: np.ndarray        # (K,) standard deviation along each
    residual_scale: float     # typical norm of what the K directions leave out
    threshold: float          # distances above it: unlike the training data
    heldout_rate: float = 0.0 # share of held-out training-like images above the threshold

    @classmethod
    def fit(cls, train_pooled: np.ndarray, heldout_pooled: np.ndarray, directions: int = 128,
            heldout_quantile: float = 0.99) -> "Familiarity":
        """(N, C) pooled training features, (M, C) held-out ones -> the statistics and a threshold
        that `heldout_quantile` of the held-out images stay under."""
        train = np.asarray(train_pooled, np.float64)
        mean = train.mean(0)
        _, singular, vt = np.linalg.svd(train - mean, full_matrices=False)
        components = vt[:directions]
        scales = np.maximum(singular[:directions] / np.sqrt(len(train) - 1), 1e-6)
        residual = (train - mean) - (train - mean) @ components.T @ components
        stats = cls(mean.astype(np.float32), components.astype(np.float32), scales.astype(np.float32),
                    float(np.sqrt(np.mean(np.sum(residual ** 2, 1)))), threshold=np.inf)
        distances = stats.distances(heldout_pooled)
        stats.threshold = float(np.quantile(distances, heldout_quantile))
        stats.heldout_rate = float(np.mean(distances > stats.threshold))
        return stats

    def distances(self, pooled: np.ndarray) -> np.ndarray:
        """(B, C) pooled features -> (B,) distances (about 1 for a typical training image)."""
        centred = np.asarray(pooled, np.float32) - self.mean
        projected = centred @ self.components.T                                  # (B, K)
        residual = centred - projected @ self.components
        inside = np.mean((projected / self.scales) ** 2, axis=1)                 # ~1 on training data
        outside = np.sum(residual ** 2, axis=1) / self.residual_scale ** 2       # ~1 on training data
        return np.sqrt((inside + outside) / 2)

    def unfamiliar(self, features: np.ndarray) -> np.ndarray:
        """(B, N, C) grid features -> (B,) bool: unlike the training images."""
        return self.distances(np.asarray(features).mean(axis=1)) > self.threshold

    def save(self, path) -> Path:
        np.savez(path, mean=self.mean, components=self.components, scales=self.scales,
                 residual_scale=self.residual_scale, threshold=self.threshold, heldout_rate=self.heldout_rate)
        return Path(path)

    @classmethod
    def load(cls, path) -> "Familiarity":
        data = np.load(path)
        stats = cls(data["mean"], data["components"], data["scales"], float(data["residual_scale"]),
                    float(data["threshold"]), float(data["heldout_rate"]))
        if stats.components.shape[1:] != stats.mean.shape or stats.scales.shape != stats.components.shape[:1]:
            raise ValueError("shapes do not match")
        if not np.isfinite(stats.threshold) or stats.threshold <= 0:
            raise ValueError(f"threshold {stats.threshold} is not a positive number")
        return stats
