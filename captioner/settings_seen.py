"""Settings only when seen: which ImageNet classes show each setting, and the cut of a caption's
setting the encoder's head does not see (`ModelConfig.setting_evidence`).

The decoder names a setting in every caption, because every training caption has one; on real photos
it names a wrong one more often than a right one (a close-up has no setting at all). The encoder's
ImageNet head sees settings through the things in them ("seashore", "sandbar"; "monastery";
"cab", "streetcar"). `fit_setting_classes` reads which classes: crops of the photo world's training
backgrounds (real photos of each setting), and for each setting the classes among the head's top
five in several of its crops. A caption of a photograph (photo_probe.py) keeps its setting only where
the head gives that setting's classes at least `setting_evidence` over the whole image; otherwise
the caption ends before it: every word left is still the decoder's, with its heatmap.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .vocab import tokenize

FILE = "setting_classes.json"
CROPS, TOP, MIN_CROPS = 16, 5, 4   # crops per background; a class counts in its top TOP of MIN_CROPS crops


def fit_setting_classes(head_probs: dict[str, list[np.ndarray]]) -> dict[str, list[int]]:
    """{setting: per background photo, (CROPS, K) head probabilities of its crops} -> {setting: classes}."""
    classes = {}
    for setting, photos in head_probs.items():
        tops = np.argsort(-np.concatenate(photos), axis=1)[:, :TOP]
        counts = np.bincount(tops.ravel(), minlength=tops.max() + 1)
        classes[setting] = sorted(int(k) for k in np.nonzero(counts >= MIN_CROPS)[0])
    return classes


def random_crops(image, rng, count: int = CROPS) -> list:
    """Square crops of 40-100 % of the shorter side, anywhere in the picture."""
    width, height = image.size
    crops = []
    for _ in range(count):
        side = int(min(width, height) * rng.uniform(0.4, 1.0))
        x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crops.append(image.crop((x, y, x + side, y + side)))
    return crops


def save(classes: dict, path) -> Path:
    Path(path).write_text(json.dumps(classes, indent=1, sort_keys=True) + "\n")
    return Path(path)


def load(path) -> dict[str, np.ndarray]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(k, int) and 0 <= k < 1000 for k in v)
                                             for v in data.values()):
        raise ValueError("expected {setting: [class indices 0..999]}")
    return {setting: np.array(indices, np.int64) for setting, indices in data.items()}


@lru_cache(maxsize=None)
def setting_phrases() -> dict[tuple[str, ...], str]:
    """{the words of a setting phrase: its setting}, of every world ("on", "a", "city", "street": road)."""
    from .worlds import WORLDS
    return {tuple(tokenize(phrase)): name for world in WORLDS.values()
            for name, setting in world.settings().items() for phrase in setting.phrases}


def setting_span(words: list[str]) -> tuple[int, str] | None:
    """(index of its first word, the setting's name) of the setting phrase a caption names, if any."""
    phrases = setting_phrases()
    for size in sorted({len(p) for p in phrases}, reverse=True):
        for at in range(len(words) - size + 1):
            if tuple(words[at:at + size]) in phrases:
                return at, phrases[tuple(words[at:at + size])]
    return None


def unseen_setting_cut(words: list[str], whole: np.ndarray, classes: dict, threshold: float) -> int | None:
    """Where to end a caption whose setting the head does not see: the index of the setting phrase's
    first word, or None to keep the caption whole. whole (K,): the head's probabilities."""
    found = setting_span(words)
    if found is None or found[0] == 0:
        return None
    at, name = found
    seen = float(whole[classes[name]].sum()) if name in classes else 0.0
    return at if seen < threshold else None
