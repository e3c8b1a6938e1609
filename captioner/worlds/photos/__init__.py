"""The photo world: real photo cut-outs composed onto real background photos.

The sources are Debian and PyPI packages fetched into data/sources/ on first use (sources.py);
the tables (tables.py, tables/) say which of their files are used, with what nouns and settings,
and which are held out; compose.py makes one image. Whole stamps and whole backgrounds are held
out: `split="heldout"` composes only those, `split="train"` only the others.

instances.json has one category per caption noun (`name` is the noun, so grounding matches it in
captions; `coco_category` says which COCO category it falls under, empty where none), and each
annotation carries the `stamp` it was cut from; each image its `background`. Renders:
`worlds.render("photos", out, n, seed, split=...)` or `python -m captioner photos`.
"""
from __future__ import annotations

from pathlib import Path

from ..world import Plan, World
from . import sources
from .compose import make_photo
from .tables import BACKGROUNDS_TSV, SETTINGS_TSV, SPLITS, STAMPS_TSV, kinds, load_stamps, photo_settings, select


def plan(split: str = "train", stamps_tsv=STAMPS_TSV, backgrounds_tsv=BACKGROUNDS_TSV, settings_tsv=SETTINGS_TSV,
         roots: dict | None = None) -> Plan:
    """Compose from the split's stamps and backgrounds; `roots` maps `stamps`/`backgrounds` to
    folders (default: the Debian packages, fetched into data/sources/ on first use)."""
    stamps, backgrounds = select(split, stamps_tsv, backgrounds_tsv)
    roots = {k: str(v) for k, v in (roots or sources.default_roots()).items()}
    categories = [{"id": n, "name": k.noun, "coco_category": k.coco_category}
                  for n, k in enumerate(kinds(load_stamps(Path(stamps_tsv))), start=1)]
    options = {"stamps": stamps, "backgrounds": backgrounds, "settings": photo_settings(Path(settings_tsv)),
               "roots": roots}
    summary = {"split": split, "stamps": len(stamps), "nouns": len({s.kind.noun for s in stamps}),
               "backgrounds": len(backgrounds)}
    return Plan(options, f"photo_{split}", categories, summary)


def _nouns() -> list[tuple[str, str]]:
    return list(dict.fromkeys((s.kind.noun, s.kind.plural) for s in load_stamps()))


PHOTOS = World(
    name="photos",
    nouns=_nouns,
    settings=photo_settings,
    plan=plan,
    draw=make_photo,
    breakdown="background",
)

__all__ = ["PHOTOS", "SPLITS", "plan"]
