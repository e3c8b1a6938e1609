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
