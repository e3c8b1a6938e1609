"""Attention supervision from boxes: which caption words name a boxed object, and where it lies.

Show, Attend and Tell learns where to look from captions alone, and on the emoji world its
attention tends to sit on an object while the model says the count ("two") and move on when it
says the noun. Where the training images have boxes (COCO `instances.json`, the rendered worlds), the
step that says a noun can also be told where that object is: the loss -log(attention mass on the
object's cells) (Liu et al. 2017, "Attention correctness in neural image captioning"). Off unless
`TrainConfig.attention_supervision > 0`.

An object's cells are the pointing game's: grid cells whose centre lies in one of its boxes grown
by half a cell, so training and measurement agree on what "on the object" means.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .boxes import box_cells, boxes_by_image, match_phrases
from .vocab import tokenize


def category_phrases(category_names, known: dict | None = None) -> dict[tuple[str, ...], str]:
    """Words that name each category: the category name and its plural with an "s" (a rough rule,
    enough for most COCO names), then `known` {words: category} where a world's own table has
    better ones (World.category_words: the emoji world's "pairs of skis", "mice")."""
    phrases = {}
    for name in category_names:
        words = tuple(name.split())
        phrases[words] = phrases[words[:-1] + (words[-1] + "s",)] = name
    phrases.update({words: name for words, name in (known or {}).items() if name in category_names})
    return phrases


def caption_object_cells(instances_path, image_ids: list[int], pairs, max_words: int, grid: int,
                         known_phrases: dict | None = None):
    """Which target steps name a boxed object, and that object's cells (`known_phrases`: see
    `category_phrases`).

    pairs: (image row, caption), rows index `image_ids`. -> regions (captions, max_words + 1) int32,
    the row of `cells` for each target step (-1: not supervised), and cells (R, grid * grid) float32.
    Step i of a caption is the step that produces its word i, as in `Vocabulary.encode`.
    """
    instances = _read_instances(instances_path)
    sizes = {im["id"]: (im["width"], im["height"]) for im in instances["images"]}
    boxes = boxes_by_image(instances)
    phrases = category_phrases({c["name"] for c in instances["categories"]}, known_phrases)
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
