"""The photo world's tables (tables/, tab-separated): which cut-outs and background photos it is made of.

- tables/stamps.tsv: cut-out -> noun, plural, article, COCO category (or empty), split;
- tables/backgrounds.tsv: background photo -> setting, split;
- tables/settings.tsv: setting -> the two phrases captions use, what its photos show.

Whole stamps and whole backgrounds are held out (`split` column): `select("heldout")` gives only
those, `select("train")` only the others. Files are named from the source folders
(sources.PREFIXES: `stamps/...`, `backgrounds/...`).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..world import Setting

TABLES = Path(__file__).resolve().parent / "tables"
STAMPS_TSV, BACKGROUNDS_TSV, SETTINGS_TSV = (TABLES / f"{n}.tsv" for n in ("stamps", "backgrounds", "settings"))
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class PhotoKind:
    """What captions call a stamp (the fields captions.counted() reads)."""
    noun: str
    plural: str
    article: str
    coco_category: str


@dataclass(frozen=True)
class Stamp:
    file: str
    kind: PhotoKind
    split: str


@dataclass(frozen=True)
class Background:
    file: str
    setting: str
    split: str


def _rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@lru_cache(maxsize=None)
def load_stamps(path=STAMPS_TSV) -> tuple[Stamp, ...]:
    return tuple(Stamp(r["file"], PhotoKind(r["noun"], r["plural"], r["article"], r["coco_category"]), r["split"])
                 for r in _rows(path))


@lru_cache(maxsize=None)
def load_backgrounds(path=BACKGROUNDS_TSV) -> tuple[Background, ...]:
    return tuple(Background(r["file"], r["setting"], r["split"]) for r in _rows(path))


@lru_cache(maxsize=None)
def photo_settings(path=SETTINGS_TSV) -> dict[str, Setting]:
    return {r["setting"]: Setting(r["setting"], tuple(r["phrases"].split("|")), r["shows"]) for r in _rows(path)}


def kinds(stamps) -> list[PhotoKind]:
    """Every noun of a stamp table, once, sorted: the categories of instances.json."""
    return sorted({s.kind for s in stamps}, key=lambda k: k.noun)


def select(split: str, stamps_tsv=STAMPS_TSV, backgrounds_tsv=BACKGROUNDS_TSV) -> tuple[list, list]:
    """-> (stamps, backgrounds) of the split; ValueError for an unknown or empty split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    stamps = [s for s in load_stamps(Path(stamps_tsv)) if s.split == split]
    backgrounds = [b for b in load_backgrounds(Path(backgrounds_tsv)) if b.split == split]
    if not stamps or not backgrounds:
        raise ValueError(f"the {split} split has {len(stamps)} stamps and {len(backgrounds)} backgrounds")
    return stamps, backgrounds
