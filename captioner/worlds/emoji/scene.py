"""One emoji scene: a setting's background, emoji glyphs placed on it, and five true captions.

Either one person doing something (an actor of the setting), maybe with one to three of an object
beside them, or one to three kinds of object, one to three of each.
"""
from __future__ import annotations

from ..captions import Group, actor_captions, object_captions
from . import tables
from .render import TRAIN_FAMILIES, background, place

KIND_WEIGHTS = (0.45, 0.35, 0.2)     # one, two or three kinds of object
COUNT_WEIGHTS = (0.5, 0.3, 0.2)      # one, two or three of each
ACTOR_SHARE, EXTRA_SHARE = 0.3, 0.4


def glyph_sides(instances: int) -> tuple[float, float]:
    """Glyph side as a share of the image: smaller as the scene fills up."""
    return {1: (0.32, 0.44), 2: (0.26, 0.36), 3: (0.22, 0.3), 4: (0.2, 0.28)}.get(instances, (0.17, 0.23))


def make_scene(rng, size: int, families=TRAIN_FAMILIES) -> dict:
    """-> {"image", "setting", "texture", "objects": [{"category": COCO category, "bbox"}],
    "captions": [5 strings]} (World.draw's image). The background's texture family is drawn from
    `families` (render.FAMILIES)."""
    setting = tables.settings()[str(rng.choice(sorted(tables.settings())))]
    family = str(families[int(rng.integers(len(families)))])
    image = background(setting.name, rng, size, family)
    actors = [a for a in tables.actors() if setting.name in a.settings]
    kinds = [o for o in tables.objects() if setting.name in o.settings]
    if actors and rng.random() < ACTOR_SHARE:
        actor = actors[int(rng.integers(len(actors)))]
        extras = [k for k in kinds if k.noun != "person"]
        extra = extras[int(rng.integers(len(extras)))] if extras and rng.random() < EXTRA_SHARE else None
        count = int(rng.choice(3, p=COUNT_WEIGHTS)) + 1 if extra else 0
        codes = [actor.emoji] + [extra.emoji] * count if extra else [actor.emoji]
        boxes = place(image, codes, rng, (0.28, 0.38) if extra else (0.34, 0.46))
        actor_group = Group(actor, boxes[:1])
        extra_group = Group(extra, boxes[1:]) if extra else None
        captions = actor_captions(actor_group, extra_group, setting, rng, size)
        objects = [("person", boxes[0])] + [(extra.coco_category, b) for b in boxes[1:]]
    else:
        chosen = rng.choice(len(kinds), size=min(len(kinds), int(rng.choice(3, p=KIND_WEIGHTS)) + 1),
                            replace=False)
        counts = [int(rng.choice(3, p=COUNT_WEIGHTS)) + 1 for _ in chosen]
        codes = [kinds[k].emoji for k, c in zip(chosen, counts) for _ in range(c)]
        boxes = place(image, codes, rng, glyph_sides(len(codes)))
        groups, start = [], 0
        for k, c in zip(chosen, counts):
            groups.append(Group(kinds[k], boxes[start:start + c]))
            start += c
        captions = object_captions(groups, setting, rng, size)
        objects = [(g.kind.coco_category, b) for g in groups for b in g.boxes]
    return {"image": image, "setting": setting.name, "texture": family,
            "objects": [{"category": name, "bbox": box} for name, box in objects], "captions": captions}
