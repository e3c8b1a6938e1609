"""Boxes and the words that name them, shared by attention supervision (grounding.py) and the
worlds' pointing game (worlds/metrics.py), so training and measurement agree on both; and how
much boxes overlap, for the worlds' placing of things."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


def box_cells(boxes, width: float, height: float, grid_h: int, grid_w: int) -> np.ndarray:
    """(grid_h, grid_w) bool: cells whose centre falls inside a box [x, y, w, h] grown by half a cell."""
    cell_w, cell_h = width / grid_w, height / grid_h
    cx = (np.arange(grid_w) + 0.5) * cell_w                                   # (gw,)
    cy = (np.arange(grid_h) + 0.5) * cell_h                                   # (gh,)
    cells = np.zeros((grid_h, grid_w), bool)
    for x, y, w, h in boxes:
        inside_x = (x - cell_w / 2 <= cx) & (cx <= x + w + cell_w / 2)
        inside_y = (y - cell_h / 2 <= cy) & (cy <= y + h + cell_h / 2)
        cells |= inside_y[:, None] & inside_x[None, :]
    return cells


def match_phrases(words: list[str], phrases: dict) -> list[tuple[object, int, int]]:
    """-> (value, first word index, last word index) for each phrase named, longest phrase first,
    so "hot dog" is not a "dog" and "teddy bear" not a "bear". phrases: {tuple of words: value}."""
    by_first = _by_first_word(tuple(phrases.items()))
    found, i = [], 0
    while i < len(words):
        for phrase, value in by_first.get(words[i], ()):
            if tuple(words[i:i + len(phrase)]) == phrase:
                found.append((value, i, i + len(phrase) - 1))
                i += len(phrase) - 1
                break
        i += 1
    return found


@lru_cache(maxsize=8)
def _by_first_word(items: tuple) -> dict:
    """{first word: [(phrase, value), ...] longest first}: one look-up per word, not per phrase."""
    table = {}
    for phrase, value in sorted(items, key=lambda item: -len(item[0])):
        table.setdefault(phrase[0], []).append((phrase, value))
    return table


def boxes_by_image(instances: dict) -> dict[int, dict[str, list]]:
    """instances.json -> {image id: {category name: [[x, y, w, h], ...]}}."""
    name_of = {c["id"]: c["name"] for c in instances["categories"]}
    boxes = {}
    for note in instances["annotations"]:
        boxes.setdefault(note["image_id"], {}).setdefault(name_of[note["category_id"]], []).append(note["bbox"])
    return boxes


def overlaps(box, boxes, limit: float) -> bool:
    """True when `box` covers more than `limit` of itself or of any placed box."""
    x, y, w, h = box
    for bx, by, bw, bh in boxes:
        inter = max(0, min(x + w, bx + bw) - max(x, bx)) * max(0, min(y + h, by + bh) - max(y, by))
        if inter > limit * min(w * h, bw * bh):
            return True
    return False
