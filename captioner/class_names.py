"""The everyday name of each ImageNet class, with its plural and article: what a person would call
the thing the encoder's classifier sees ("golden retriever" -> a dog, "airliner" -> an airplane).

assets/encoders/imagenet_names.tsv is made by scripts/imagenet_names.py (WordNet 3.0, word
frequencies from `wordfreq`, plurals and articles from `inflect`) with the hand corrections of
assets/encoders/imagenet_name_corrections.tsv applied; its `rule` column says how each name was
chosen. An empty article marks a mass or plural noun ("hay", "jeans").
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "assets" / "encoders" / "imagenet_names.tsv"


@dataclass(frozen=True)
class ClassName:
    index: int
    imagenet: str       # the class's own first WordNet name ("golden retriever")
    name: str           # the everyday name ("dog")
    plural: str
    article: str        # "a", "an" or "" (a mass or plural noun)
    rule: str           # how the name was chosen: own, head, above:N, family:X, corrected, own:rare

    def with_article(self) -> str:
        return f"{self.article} {self.name}" if self.article else self.name


@lru_cache(maxsize=None)
def class_names() -> tuple[ClassName, ...]:
    """The 1000 classes in index order."""
    with TABLE.open(newline="", encoding="utf-8") as f:
        rows = [ClassName(int(r["index"]), r["imagenet"], r["name"], r["plural"], r["article"], r["rule"])
                for r in csv.DictReader(f, delimiter="\t")]
    if [row.index for row in rows] != list(range(1000)):
        raise ValueError(f"{TABLE}: expected the 1000 ImageNet classes in index order")
    return tuple(rows)
