"""Whether an image is a photograph or a rendered scene: where the ImageNet head's evidence counts.

The evidence gate (ModelConfig.noun_evidence, model.CopyPath.seen) lets a noun be said only where the
encoder's ImageNet head sees it. The head was trained on photographs: on the emoji world's glyphs its
opinion means nothing ("a cat" glyph reads as a jigsaw puzzle), while the decoder, trained on them,
knows them. So each checkpoint may carry `photo_probe.npz`: a logistic regression on the mean-pooled
encoder features, fitted by `make model` on rendered emoji scenes and photo composites (real cut-outs
on real photos). The gate holds for an image the probe calls a photograph; a rendered scene's nouns
need no evidence. Cheap: one (C,) dot product per image, inside the model's encode.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "photo_probe.npz"


@dataclass
class PhotoProbe:
    weights: np.ndarray    # (C,) on mean-pooled features; logit > 0: a photograph
    bias: float
    heldout_accuracy: float = 0.0   # on held-out images of both worlds

    @classmethod
    def fit(cls, photos: np.ndarray, rendered: np.ndarray, steps: int = 500, l2: float = 1e-3) -> "PhotoProbe":
        """(N, C) pooled features of photographs, (M, C) of rendered scenes -> the probe (plain
        gradient descent on standardised features, folded back into weights on the raw ones)."""
        x = np.concatenate([photos, rendered]).astype(np.float64)
        y = np.concatenate([np.ones(len(photos)), np.zeros(len(rendered))])
        mean, scale = x.mean(0), x.std(0) + 1e-6
        z = (x - mean) / scale
        w, b = np.zeros(z.shape[1]), 0.0
        balance = np.where(y == 1, 0.5 / len(photos), 0.5 / len(rendered))   # each world weighs half
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
            error = (p - y) * balance
            w -= 1.0 * (z.T @ error + l2 * w)
            b -= 1.0 * error.sum()
        weights = w / scale
        return cls(weights.astype(np.float32), float(b - mean @ weights))

    def photo_logits(self, pooled: np.ndarray) -> np.ndarray:
        """(B, C) pooled features -> (B,) logits: > 0 a photograph."""
        return np.asarray(pooled, np.float32) @ self.weights + self.bias

    def photographs(self, pooled: np.ndarray) -> np.ndarray:
        """(B, C) pooled features -> (B,) bool: a photograph (the model's own test, CopyPath.photograph)."""
        return self.photo_logits(pooled) > 0

    def save(self, path) -> Path:
        np.savez(path, weights=self.weights, bias=self.bias, heldout_accuracy=self.heldout_accuracy)
        return Path(path)

    @classmethod
    def load(cls, path) -> "PhotoProbe":
        with np.load(path) as data:
            probe = cls(data["weights"].astype(np.float32), float(data["bias"]), float(data["heldout_accuracy"]))
        if probe.weights.ndim != 1 or not np.isfinite(probe.weights).all() or not np.isfinite(probe.bias):
            raise ValueError("weights must be one finite vector")
        return probe
