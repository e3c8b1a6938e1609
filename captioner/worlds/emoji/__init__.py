"""The emoji world: emoji glyphs of COCO object categories and people doing things, on generated
backgrounds of eight settings, each drawn in one of five texture families.

Its tables (tables.py, tables/) say which objects and actors a setting has and how captions name
them; scene.py draws one scene, render.py its background and glyphs. instances.json uses COCO's
own category names and ids ("sports ball" for a "ball"), and each image has its `setting` and
`texture` family. Renders: `worlds.render("emoji", out, n, seed, families=...)` or
`python -m captioner scenes`.
"""
from __future__ import annotations

from ..world import Plan, World
from . import tables
from .render import FAMILIES, HELDOUT_FAMILY, TRAIN_FAMILIES
from .scene import make_scene


def plan(families=TRAIN_FAMILIES) -> Plan:
    """`families`: the background texture families to draw from; the default leaves out
    HELDOUT_FAMILY, which `families=(HELDOUT_FAMILY,)` renders alone to measure settings on it."""
    families = tuple(families)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"texture families {unknown or '(none)'}: choose from {', '.join(FAMILIES)}")
    names = sorted({o.coco_category for o in tables.objects()}, key=tables.COCO_IDS.get)
    return Plan({"families": families}, "scene", [{"id": tables.COCO_IDS[name], "name": name} for name in names],
                {"families": list(families)})


EMOJI = World(
    name="emoji",
    nouns=lambda: [(o.noun, o.plural) for o in tables.objects()],
    settings=tables.settings,
    plan=plan,
    draw=make_scene,
    noun_categories=lambda: {o.noun: o.coco_category for o in tables.objects()},
    counts=True,
)

__all__ = ["EMOJI", "FAMILIES", "HELDOUT_FAMILY", "TRAIN_FAMILIES", "plan"]
