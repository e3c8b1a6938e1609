"""The emoji world's three tables (copied from the spec): objects, actors (people doing things), settings."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..world import Setting

TABLES = Path(__file__).resolve().parent / "tables"


@dataclass(frozen=True)
class ObjectKind:
    noun: str
    plural: str
    article: str          # a, an, a pair of, a piece of
    emoji: str            # hex code point(s)
    coco_category: str
    settings: tuple[str, ...]


@dataclass(frozen=True)
class Actor:
    activity: str
    emoji: str
    settings: tuple[str, ...]
    example_caption: str


def _rows(name: str) -> list[dict]:
    with open(TABLES / name, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@lru_cache(maxsize=None)
def objects() -> tuple[ObjectKind, ...]:
    return tuple(ObjectKind(r["noun"], r["plural"], r["article"], r["emoji"], r["coco_category"],
                            tuple(r["settings"].split())) for r in _rows("objects.tsv"))


@lru_cache(maxsize=None)
def actors() -> tuple[Actor, ...]:
    return tuple(Actor(r["activity"], r["emoji"], tuple(r["settings"].split()), r["example_caption"])
                 for r in _rows("actors.tsv"))


@lru_cache(maxsize=None)
def settings() -> dict[str, Setting]:
    return {r["setting"]: Setting(r["setting"], tuple(r["phrases"].split("|")), r["look"])
            for r in _rows("settings.tsv")}


# The real COCO 2014 category ids, so instances.json reads like COCO's own.
COCO_IDS = {
    "person": 1, "bicycle": 2, "car": 3, "motorcycle": 4, "airplane": 5, "bus": 6, "train": 7, "truck": 8,
    "boat": 9, "traffic light": 10, "stop sign": 13, "bird": 16, "cat": 17, "dog": 18, "horse": 19,
    "sheep": 20, "cow": 21, "elephant": 22, "bear": 23, "zebra": 24, "giraffe": 25, "backpack": 27,
    "umbrella": 28, "handbag": 31, "tie": 32, "suitcase": 33, "frisbee": 34, "skis": 35,
    "sports ball": 37, "kite": 38, "skateboard": 41, "tennis racket": 43, "bottle": 44,
    "wine glass": 46, "cup": 47, "spoon": 50, "bowl": 51, "banana": 52, "apple": 53, "sandwich": 54,
    "orange": 55, "broccoli": 56, "carrot": 57, "hot dog": 58, "pizza": 59, "donut": 60, "cake": 61,
    "chair": 62, "couch": 63, "potted plant": 64, "bed": 65, "toilet": 70, "tv": 72, "laptop": 73,
    "mouse": 74, "keyboard": 76, "cell phone": 77, "book": 84, "clock": 85, "scissors": 87,
    "teddy bear": 88, "toothbrush": 90,
}
