"""How captions of a world are scored (the spec's "How quality is measured"), from its nouns and settings.

Nouns are found as phrases, longest first, so "hot dog" is not a "dog" and "teddy bear" not a
"bear". A named kind's count comes from the word before its noun: a/an/one -> 1, two -> 2,
three -> 3 ("a pair of skis", "two pairs of skis" skip the "pair(s) of"); a kind named with no
count word counts as a wrong count. Worlds whose counts are scored (World.counts) get
count_accuracy; worlds with a `breakdown` get recall per noun and setting accuracy per value of
that image field.
"""
from __future__ import annotations

import numpy as np

from ..boxes import box_cells, boxes_by_image, match_phrases

COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
MEASURE_WORDS = {"pair", "pairs", "piece", "pieces"}


def noun_phrases(pairs) -> dict[tuple[str, ...], str]:
    """(noun, plural) pairs -> {words: noun} for every singular and plural form ("pairs of skis"
    is found as "skis", so the count before "pairs of" is read)."""
    phrases = {}
    for noun, plural in pairs:
        phrases[tuple(noun.split())] = noun
        words = plural.split()
        phrases[tuple(words[-1:] if words[0] in MEASURE_WORDS else words)] = noun
    return phrases


def find_nouns(words: list[str], phrases: dict) -> list[tuple[str, int, int | None]]:
    """-> (noun, index of the noun's LAST word, count or None) for each noun named.
    phrases: {words: noun} (World.noun_phrases)."""
    return [(noun, end, _count_before(words, start)) for noun, start, end in match_phrases(words, phrases)]


def _count_before(words: list[str], start: int) -> int | None:
    j = start - 1
    if j >= 1 and words[j] == "of" and words[j - 1] in MEASURE_WORDS:
        j -= 2
    return COUNT_WORDS.get(words[j]) if j >= 0 else None


def setting_of(words: list[str], settings) -> str | None:
    """The first of `settings` (Setting objects) one of whose phrases the caption says, or None."""
    text = " " + " ".join(words) + " "
    for setting in settings:
        if any(f" {phrase} " in text for phrase in setting.phrases):
            return setting.name
    return None


def pointing(attention: np.ndarray, kind_boxes: list, width: int, height: int) -> tuple[bool, float]:
    """Is the peak cell's centre inside a box of the kind grown by half a cell? -> (hit, chance).

    Chance is the share of the image those grown boxes cover (their union).
    """
    grid_h, grid_w = attention.shape
    row, col = np.unravel_index(int(np.argmax(attention)), attention.shape)
    hit = box_cells(kind_boxes, width, height, grid_h, grid_w)[row, col]
    cell_w, cell_h = width / grid_w, height / grid_h
    covered = np.zeros((height, width), bool)
    for x, y, w, h in kind_boxes:
        x0, y0, x1, y1 = x - cell_w / 2, y - cell_h / 2, x + w + cell_w / 2, y + h + cell_h / 2
        covered[max(int(y0), 0):int(np.ceil(y1)), max(int(x0), 0):int(np.ceil(x1))] = True
    return bool(hit), float(covered.mean())


def _point(tally: dict, chance: list, prediction: dict, image: dict, present: dict, named) -> None:
    """The pointing game for one caption: at each step that names a present object (noun, step),
    does the attention peak fall on it? Counts into tally; each box's share of the image into chance."""
    for noun, end in named:
        if noun in present and end < len(prediction["attention"]):
            hit, share = pointing(prediction["attention"][end], present[noun], image["width"], image["height"])
            tally["pointed"] += 1
            tally["hits"] += hit
            chance.append(share)


def _nouns_present(world, instances: dict) -> dict[int, dict[str, list]]:
    """{image id: {noun: boxes}}; ValueError where a category is none of the world's (another
    world's set: the message names the registered worlds that know every category)."""
    noun_of = {category: noun for noun, category in world.category_of().items()}
    names = {c["name"] for c in instances["categories"]}
    unknown = sorted(names - set(noun_of))
    if unknown:
        from .registry import WORLDS
        others = [w.name for w in WORLDS.values() if w.name != world.name and names <= set(w.category_of().values())]
        hint = "".join(f" (the {o} world's: evaluate with world={o!r}, --world {o})" for o in others[:1])
        raise ValueError(f"categories the {world.name} world has no nouns for: {', '.join(unknown[:5])}{hint}")
    return {image_id: {noun_of[name]: boxes for name, boxes in named.items()}
            for image_id, named in boxes_by_image(instances).items()}


def _tally_nouns(tally: dict, named: list, present: dict, counts: bool) -> set[str]:
    """Recall, precision and (`counts`) count words of one caption's nouns; -> the nouns named."""
    names = {noun for noun, _, _ in named}
    tally["present"] += len(present)
    tally["recalled"] += len(names & set(present))
    tally["named"] += len(names)
    tally["named_present"] += len(names & set(present))
    if counts:
        for noun in names & set(present):
            said = [c for n, _, c in named if n == noun]
            tally["counted"] += 1
            tally["count_right"] += said[0] == len(present[noun])
    return names


def _break_down(parts: dict, key, right: bool) -> None:
    hits, seen = parts.get(key, (0, 0))
    parts[key] = (hits + right, seen + 1)


def caption_metrics(world, predictions: list[dict], instances: dict) -> dict:
    """Object recall and precision, count accuracy (World.counts), setting accuracy and the
    pointing game of captions of a world's images, with the world's nouns and settings.

    predictions: [{"image_id", "words", "attention" (T, gh, gw)}]; instances: instances.json.
    `per_noun` and `per_{world.breakdown}` where the world has a breakdown (the photo world's
    background photos), so what generalises to unseen parts can be told apart.
    """
    images = {im["id"]: im for im in instances["images"]}
    boxes, phrases, settings = _nouns_present(world, instances), world.noun_phrases(), world.settings().values()
    keys = ("present", "recalled", "named", "named_present") + (("counted", "count_right") if world.counts else ())
    tally = dict.fromkeys(keys + ("settings_right", "pointed", "hits"), 0)
    chance, per_noun, per_part = [], {}, {}
    for prediction in predictions:
        image = images[prediction["image_id"]]
        present = boxes.get(prediction["image_id"], {})
        named = find_nouns(prediction["words"], phrases)
        names = _tally_nouns(tally, named, present, world.counts)
        setting_right = setting_of(prediction["words"], settings) == image.get("setting")
        tally["settings_right"] += setting_right
        if world.breakdown:
            for noun in present:
                _break_down(per_noun, noun, noun in names)
            _break_down(per_part, image.get(world.breakdown, ""), setting_right)
        _point(tally, chance, prediction, image, present, [(noun, end) for noun, end, _ in named])
    return _figures(world, tally, chance, len(predictions), per_noun, per_part)


def _figures(world, tally: dict, chance: list, captions: int, per_noun: dict, per_part: dict) -> dict:
    ratio = lambda a, b: round(tally[a] / tally[b], 4) if tally[b] else 0.0
    figures = {"object_recall": ratio("recalled", "present"), "object_precision": ratio("named_present", "named")}
    if world.counts:
        figures["count_accuracy"] = ratio("count_right", "counted")
    figures.update({"setting_accuracy": round(tally["settings_right"] / max(captions, 1), 4),
                    "pointing_game": ratio("hits", "pointed"),
                    "pointing_chance": round(float(np.mean(chance)), 4) if chance else 0.0, "counts": tally})
    if world.breakdown:
        figures["per_noun"] = {noun: {"recalled": r, "present": n} for noun, (r, n) in sorted(per_noun.items())}
        figures[f"per_{world.breakdown}"] = {key: {"setting_right": r, "images": n}
                                             for key, (r, n) in sorted(per_part.items())}
    return figures
