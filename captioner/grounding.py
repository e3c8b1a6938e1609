"""Attention supervision from boxes: which caption words name a boxed object, and where it lies.

Show, Attend and Tell learns where to look from captions alone, and on the scene world its
attention tends to sit on an object while the model says the count ("two") and move on when it
says the noun. Where the training images have boxes (COCO `instances.json`, the scene world), the
step that says a noun can also be told where that object is: the loss -log(attention mass on the
object's cells) (Liu et al. 2017, "Attention correctness in neural image captioning"). Off unless
`TrainConfig.attention_supervision > 0`.

An object's cells are the pointing game's: grid cells whose centre lies in one of its boxes grown
by half a cell, so training and measurement agree on what "on the object" means.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .vocab import tokenize


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


def category_phrases(category_names) -> dict[tuple[str, ...], str]:
    """Words that name each category: the scene world's nouns and plurals where its table has them,
    else the category name and its plural with an "s" (a rough rule, enough for most COCO names)."""
    from .scenes import tables
    from .scenes.metrics import noun_phrases
    phrases = {}
    for name in category_names:
        words = tuple(name.split())
        phrases[words] = phrases[words[:-1] + (words[-1] + "s",)] = name
    category_of = {kind.noun: kind.coco_category for kind in tables.objects()}
    phrases.update({words: category_of[noun] for words, noun in noun_phrases()
                    if category_of[noun] in category_names})
    return phrases


def boxes_by_image(instances: dict) -> dict[int, dict[str, list]]:
    """instances.json -> {image id: {category name: [[x, y, w, h], ...]}}."""
    name_of = {c["id"]: c["name"] for c in instances["categories"]}
    boxes = {}
    for note in instances["annotations"]:
        boxes.setdefault(note["image_id"], {}).setdefault(name_of[note["category_id"]], []).append(note["bbox"])
    return boxes


def caption_object_cells(instances_path, image_ids: list[int], pairs, max_words: int, grid: int):
    """Which target steps name a boxed object, and that object's cells.

    pairs: (image row, caption), rows index `image_ids`. -> regions (captions, max_words + 1) int32,
    the row of `cells` for each target step (-1: not supervised), and cells (R, grid * grid) float32.
    Step i of a caption is the step that produces its word i, as in `Vocabulary.encode`.
    """
    instances = _read_instances(instances_path)
    sizes = {im["id"]: (im["width"], im["height"]) for im in instances["images"]}
    boxes = boxes_by_image(instances)
    phrases = category_phrases({c["name"] for c in instances["categories"]})
    regions = np.full((len(pairs), max_words + 1), -1, np.int32)
    cells, row_of = [], {}
    for n, (row, caption) in enumerate(pairs):
        image_id = image_ids[row]
        present = boxes.get(image_id, {})
        for name, _, end in match_phrases(tokenize(caption)[:max_words], phrases):
            if name not in present:
                continue
            if (image_id, name) not in row_of:
                row_of[image_id, name] = len(cells)
                cells.append(box_cells(present[name], *sizes[image_id], grid, grid).ravel())
            regions[n, end] = row_of[image_id, name]
    cells = np.array(cells, np.float32).reshape(-1, grid * grid)
    return regions, cells


def _read_instances(path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        for key in ("images", "categories", "annotations"):
            if not isinstance(data[key], list):
                raise TypeError(f"{key} is not a list")
        return data
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a COCO instances file ({error})") from None
