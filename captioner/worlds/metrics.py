"""How captions of the scene world are scored (the spec's "How quality is measured").

Nouns are found as phrases, longest first, so "hot dog" is not a "dog" and "teddy bear" not a
"bear". A named kind's count comes from the word before its noun: a/an/one -> 1, two -> 2,
three -> 3 ("a pair of skis", "two pairs of skis" skip the "pair(s) of"); a kind named with no
count word counts as a wrong count.
"""
from __future__ import annotations

import shutil
import warnings
from functools import lru_cache

import numpy as np

from ..boxes import box_cells, boxes_by_image, match_phrases
from . import tables

COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
MEASURE_WORDS = {"pair", "pairs", "piece", "pieces"}


@lru_cache(maxsize=None)
def noun_phrases() -> tuple[tuple[tuple[str, ...], str], ...]:
    """(words, kind noun) for every singular and plural form."""
    phrases = {}
    for kind in tables.objects():
        phrases[tuple(kind.noun.split())] = kind.noun
        plural = kind.plural.split()
        phrases[tuple(plural[-1:] if plural[0] in MEASURE_WORDS else plural)] = kind.noun
    return tuple(phrases.items())


def category_phrases() -> dict[tuple[str, ...], str]:
    """{words: COCO category} for every singular and plural form in the scene world's table."""
    category_of = {kind.noun: kind.coco_category for kind in tables.objects()}
    return {words: category_of[noun] for words, noun in noun_phrases()}


def find_nouns(words: list[str]) -> list[tuple[str, int, int | None]]:
    """-> (kind noun, index of the noun's LAST word, count or None) for each noun named."""
    return [(noun, end, _count_before(words, start))
            for noun, start, end in match_phrases(words, dict(noun_phrases()))]


def _count_before(words: list[str], start: int) -> int | None:
    j = start - 1
    if j >= 1 and words[j] == "of" and words[j - 1] in MEASURE_WORDS:
        j -= 2
    return COUNT_WORDS.get(words[j]) if j >= 0 else None


def _kind_of_category() -> dict[str, str]:
    return {kind.coco_category: kind.noun for kind in tables.objects()}


def _setting_of(words: list[str]) -> str | None:
    text = " " + " ".join(words) + " "
    for setting in tables.settings().values():
        if any(f" {phrase} " in text for phrase in setting.phrases):
            return setting.name
    return None


def _point(tally: dict, chance: list, prediction: dict, image: dict, present: dict, named) -> None:
    """The pointing game for one caption: at each step that names a present object (noun, step),
    does the attention peak fall on it? Counts into tally; each box's share of the image into chance."""
    for noun, end in named:
        if noun in present and end < len(prediction["attention"]):
            hit, share = pointing(prediction["attention"][end], present[noun], image["width"], image["height"])
            tally["pointed"] += 1
            tally["hits"] += hit
            chance.append(share)


def scene_metrics(predictions: list[dict], instances: dict) -> dict:
    """predictions: [{"image_id", "words", "attention" (T, gh, gw)}]; instances: instances.json."""
    kind_of = _kind_of_category()
    unknown = sorted({c["name"] for c in instances["categories"]} - set(kind_of))
    if unknown:
        raise ValueError(f"categories the scene world has no objects for: {', '.join(unknown[:5])} "
                         "(photo composites: evaluate with world='photos', --world photos)")
    images = {im["id"]: im for im in instances["images"]}
    boxes = {image_id: {kind_of[name]: kind_boxes for name, kind_boxes in named.items()}
             for image_id, named in boxes_by_image(instances).items()}
    tally = dict.fromkeys(("present", "recalled", "named", "named_present", "counted", "count_right",
                           "settings_right", "pointed", "hits"), 0)
    chance = []
    for prediction in predictions:
        image = images[prediction["image_id"]]
        present = boxes.get(prediction["image_id"], {})
        named = find_nouns(prediction["words"])
        names = {noun for noun, _, _ in named}
        tally["present"] += len(present)
        tally["recalled"] += len(names & set(present))
        tally["named"] += len(names)
        tally["named_present"] += len(names & set(present))
        for noun in names & set(present):
            counts = [c for n, _, c in named if n == noun]
            tally["counted"] += 1
            tally["count_right"] += counts[0] == len(present[noun])
        tally["settings_right"] += _setting_of(prediction["words"]) == image.get("setting")
        _point(tally, chance, prediction, image, present, [(noun, end) for noun, end, _ in named])
    ratio = lambda a, b: round(tally[a] / tally[b], 4) if tally[b] else 0.0
    return {"object_recall": ratio("recalled", "present"), "object_precision": ratio("named_present", "named"),
            "count_accuracy": ratio("count_right", "counted"),
            "setting_accuracy": round(tally["settings_right"] / max(len(predictions), 1), 4),
            "pointing_game": ratio("hits", "pointed"),
            "pointing_chance": round(float(np.mean(chance)), 4) if chance else 0.0, "counts": tally}


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


def caption_scores(references: dict, hypotheses: dict, meteor: bool = True) -> dict:
    """BLEU-1..4 and CIDEr from pycocoevalcap (METEOR too where Java runs), like the COCO server.

    references: {image id: [captions]}; hypotheses: {image id: caption}. METEOR's Java start-up
    (loading its paraphrase table) takes several seconds: `meteor=False` skips it.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    refs, hyps = _tokenised(references, hypotheses)
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    cider, _ = Cider().compute_score(refs, hyps)
    scores = {f"bleu{n + 1}": round(float(b), 4) for n, b in enumerate(bleu)}
    scores["cider"] = round(float(cider), 4)
    if meteor and shutil.which("java"):
        try:
            from pycocoevalcap.meteor.meteor import Meteor
            scores["meteor"] = round(float(Meteor().compute_score(refs, hyps)[0]), 4)
        except Exception as error:   # METEOR is optional: a broken Java set-up must not lose the rest
            warnings.warn(f"METEOR skipped: {error}")
    return scores


def _tokenised(references: dict, hypotheses: dict):
    """The COCO server's PTB tokenizer (Java) where available; else lower case, punctuation dropped."""
    if shutil.which("java"):
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
        tokenizer = PTBTokenizer()
        refs = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
        hyps = tokenizer.tokenize({k: [{"caption": hypotheses[k]}] for k in references})
        return refs, hyps
    from ..vocab import tokenize
    return ({k: [" ".join(tokenize(c)) for c in v] for k, v in references.items()},
            {k: [" ".join(tokenize(hypotheses[k]))] for k in references})


# --- the photo world -----------------------------------------------------------------------------

@lru_cache(maxsize=None)
def photo_noun_phrases() -> tuple[tuple[tuple[str, ...], str], ...]:
    """(words, noun) for every noun of the photo world's stamp table, singular and plural."""
    from .photos import load_stamps
    phrases = {}
    for stamp in load_stamps():
        phrases[tuple(stamp.kind.noun.split())] = stamp.kind.noun
        phrases[tuple(stamp.kind.plural.split())] = stamp.kind.noun
    return tuple(phrases.items())


def _photo_setting_of(words: list[str]) -> str | None:
    from .photos import photo_settings
    text = " " + " ".join(words) + " "
    for setting in photo_settings().values():
        if any(f" {phrase} " in text for phrase in setting.phrases):
            return setting.name
    return None


def photo_metrics(predictions: list[dict], instances: dict) -> dict:
    """The scene world's object recall/precision, setting accuracy and pointing game for photo
    composites (captioner/scenes/photos.py): nouns from the stamp table, settings from its table.
    Counts are left out: a photo's count words mean what the scene world's do, but recall is the aim.
    `per_noun`: recall of each noun present, `per_background`: setting accuracy on each background
    photo, so what generalises to unseen cut-outs and backgrounds can be told apart."""
    images = {im["id"]: im for im in instances["images"]}
    boxes = boxes_by_image(instances)
    phrases = dict(photo_noun_phrases())
    tally = dict.fromkeys(("present", "recalled", "named", "named_present", "settings_right", "pointed", "hits"), 0)
    chance, per_noun, per_background = [], {}, {}
    for prediction in predictions:
        image = images[prediction["image_id"]]
        present = boxes.get(prediction["image_id"], {})
        named = [(noun, end) for noun, _, end in match_phrases(prediction["words"], phrases)]
        names = {noun for noun, _ in named}
        tally["present"] += len(present)
        tally["recalled"] += len(names & set(present))
        tally["named"] += len(names)
        tally["named_present"] += len(names & set(present))
        for noun in present:
            recalled, seen = per_noun.get(noun, (0, 0))
            per_noun[noun] = (recalled + (noun in names), seen + 1)
        setting_right = _photo_setting_of(prediction["words"]) == image.get("setting")
        tally["settings_right"] += setting_right
        background = image.get("background", "")
        right, seen = per_background.get(background, (0, 0))
        per_background[background] = (right + setting_right, seen + 1)
        _point(tally, chance, prediction, image, present, named)
    ratio = lambda a, b: round(tally[a] / tally[b], 4) if tally[b] else 0.0
    return {"object_recall": ratio("recalled", "present"), "object_precision": ratio("named_present", "named"),
            "setting_accuracy": round(tally["settings_right"] / max(len(predictions), 1), 4),
            "pointing_game": ratio("hits", "pointed"),
            "pointing_chance": round(float(np.mean(chance)), 4) if chance else 0.0, "counts": tally,
            "per_noun": {noun: {"recalled": r, "present": n} for noun, (r, n) in sorted(per_noun.items())},
            "per_background": {name: {"setting_right": r, "images": n} for name, (r, n) in sorted(per_background.items())}}
