"""What captions of labelled real photos get right beyond naming the main subject.

- CHAIR (Rohrbach et al. 2018, "Object Hallucination in Image Captioning"): CHAIR-s, the share of
  captions that name an object not in the photo; CHAIR-i, the share of named objects not in it.
  A named noun is in the photo when it is one of the photo's `nouns` or `objects` (or their plurals).
- Settings: precision (of the captions that name a setting, the share whose setting is the photo's)
  and recall (of the photos with a clear setting, the share whose caption names it). A setting
  named for a photo without a clear one counts as wrong: a caption without a setting beats a wrong one.
- Noun confidence: the expected calibration error (Guo et al. 2017, 10 equal-width bins) of the
  probability each named noun's first word was given, against whether the noun is in the photo.
- Pointing game on photos: the attention peak of the step that names the main subject falls in its
  box (`box`, fractions of width and height; the grid covers the whole picture, encoders.py).

The nouns a caption can name: every world's nouns and every ImageNet class's everyday name
(class_names.py); setting phrases name no noun (caption_checks.noun_forms).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import caption_checks
from .caption_checks import noun_forms, nouns_said
from .settings_seen import setting_span
from .subjects import names_subject, plural
from .vocab import tokenize

# Settings a labeller and a caption may name differently for one scene.
SAME_SETTING = {"garden": "grass", "shore": "water", "railway": "road"}
BINS = 10


@lru_cache(maxsize=None)
def caption_nouns() -> dict:
    """noun_forms of the worlds' nouns and the classes' everyday names, setting phrases naming none."""
    from .class_names import class_names
    from .word_map import world_nouns
    from .worlds import WORLDS
    names = {(row.name, row.plural) for row in class_names()}
    phrases = [p for world in WORLDS.values() for setting in world.settings().values() for p in setting.phrases]
    return noun_forms(sorted(set(world_nouns()) | names), phrases)


def in_photo(noun: str, photo: dict) -> bool:
    accepted = [*photo["nouns"], *photo.get("objects", [])]
    return names_subject(noun, accepted) or any(names_subject(form, [noun]) for form in accepted) or \
        plural(noun) in accepted


def chair(captions: dict[str, str], labels: list[dict]) -> dict:
    """-> CHAIR-s and CHAIR-i over the labelled photos that have a caption, and the invented nouns."""
    rows = [(photo, captions[photo["file"]]) for photo in labels if photo["file"] in captions]
    said = [(photo, nouns_said(text, caption_nouns())[0]) for photo, text in rows]
    invented = {photo["file"]: [n for n in nouns if not in_photo(n, photo)] for photo, nouns in said}
    named = sum(len(nouns) for _, nouns in said)
    return {"chair_s": round(sum(bool(v) for v in invented.values()) / max(len(rows), 1), 4),
            "chair_i": round(sum(map(len, invented.values())) / max(named, 1), 4),
            "nouns_named": named, "invented": {k: v for k, v in invented.items() if v}}


def setting_named(caption: str) -> str | None:
    found = setting_span(tokenize(caption))
    return None if found is None else found[1]


def settings(captions: dict[str, str], labels: list[dict]) -> dict:
    """-> setting precision and recall (see the module's docstring)."""
    rows = [(photo.get("setting", ""), setting_named(captions[photo["file"]]))
            for photo in labels if photo["file"] in captions]
    same = lambda label, said: bool(label) and said is not None and SAME_SETTING.get(said, said) == SAME_SETTING.get(label, label)
    said = [r for r in rows if r[1] is not None]
    clear = [r for r in rows if r[0]]
    return {"setting_precision": round(sum(same(*r) for r in said) / len(said), 4) if said else None,
            "setting_recall": round(sum(same(*r) for r in clear) / len(clear), 4) if clear else None,
            "settings_named": len(said), "photos_with_setting": len(clear)}


def noun_steps(words: list[str]) -> list[tuple[int, str]]:
    """caption_checks.noun_steps over every noun a caption can name (the worlds' and the classes')."""
    return caption_checks.noun_steps(words, caption_nouns())


def noun_confidences(caption, photo: dict) -> list[tuple[float, bool]]:
    """(confidence shown for the noun's first word, whether the noun is in the photo) per noun named."""
    return [(float(caption.probs[step]), in_photo(noun, photo)) for step, noun in noun_steps(caption.words)]


def expected_calibration_error(pairs: list[tuple[float, bool]], bins: int = BINS) -> float | None:
    """sum over equal-width confidence bins of |accuracy - mean confidence| x the bin's share."""
    if not pairs:
        return None
    confidence, correct = np.array([p for p, _ in pairs]), np.array([c for _, c in pairs], float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
                for b in range(bins) if (which == b).any())
    return round(float(error), 4)


def pointing(caption, photo: dict) -> bool | None:
    """Whether the attention peak of the step naming the main subject falls in its box; None when
    the caption does not name it or the photo has no box."""
    if "box" not in photo:
        return None
    for step, word in enumerate(caption.words):
        if names_subject(word, photo["nouns"]):
            grid = caption.attention[step]                                   # (g, g)
            row, col = np.unravel_index(int(grid.argmax()), grid.shape)
            x, y = (col + 0.5) / grid.shape[1], (row + 0.5) / grid.shape[0]
            x0, y0, x1, y1 = photo["box"]
            return bool(x0 <= x <= x1 and y0 <= y <= y1)
    return None


def photo_figures(results: dict, labels: list[dict]) -> dict:
    """results: {file: Caption} -> every figure above over the labelled photos that have one."""
    labelled = [photo for photo in labels if photo["file"] in results]
    texts = {photo["file"]: results[photo["file"]].text for photo in labelled}
    points = [p for p in (pointing(results[photo["file"]], photo) for photo in labelled) if p is not None]
    confidences = [pair for photo in labelled for pair in noun_confidences(results[photo["file"]], photo)]
    return {**chair(texts, labelled), **settings(texts, labelled),
            "noun_ece": expected_calibration_error(confidences), "nouns_scored": len(confidences),
            "pointing_game": round(sum(points) / len(points), 4) if points else None, "pointed": len(points)}
