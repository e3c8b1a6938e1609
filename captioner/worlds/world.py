"""What a world is: a kind of image rendered offline with true captions, and how captions of it are scored.

A world supplies its parts as plain functions; the rest is shared: `worlds.render` draws its images
in worker processes and writes them in the common format (`images/*.jpg`, `captions.json`,
`instances.json`), `World.metrics` scores captions against its nouns and settings
(worlds/metrics.py), and the registry (worlds/registry.py) lets the command line, evaluation and
the vocabulary's word lists find it by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from .metrics import caption_metrics, noun_phrases


@dataclass(frozen=True)
class Setting:
    """Where an image of a world is: its name, the phrases captions say it with, what it looks like."""
    name: str
    phrases: tuple[str, ...]
    look: str


@dataclass(frozen=True)
class Plan:
    """One render's options, checked once before any image is drawn (`World.plan`)."""
    options: Mapping[str, Any]          # keyword arguments of World.draw, the same for every image
    prefix: str                         # image files are named {prefix}_{seed}_{index:06d}.jpg
    categories: list[dict]              # instances.json's categories: {"id", "name", ...}
    summary: dict = field(default_factory=dict)   # what render()'s summary says of them


@dataclass(frozen=True)
class World:
    """A world's parts.

    - `nouns()`: (noun, plural) of every noun its captions use ("pair of skis" counts as the noun
      "skis", plural "pairs of skis");
    - `settings()`: {name: Setting}, every setting its images are in;
    - `plan(**options)`: the render options (a split, texture families...) -> a Plan, or ValueError;
    - `draw(rng, size, **plan.options)`: one image, from `rng` alone -> {"image": a PIL image,
      "captions": its true captions, "objects": [{"category", "bbox": [x, y, w, h], ...}],
      "setting": a name of settings(), ...}; "quality" (optional) is the JPEG quality to save it at
      (default 90); every other key goes into the image's entry of instances.json, each object's
      other keys into its annotation;
    - `noun_categories()`: {noun: the instances.json category it falls under} where the two
      differ (default: each noun is its own category);
    - `counts`: whether captions' count words are scored (count_accuracy);
    - `breakdown`: an image field of instances.json to break setting accuracy down by (and object
      recall by noun), e.g. "background";
    - `score(world, predictions, instances)`: its metrics (default: worlds.metrics.caption_metrics).
    """
    name: str
    nouns: Callable[[], Iterable[tuple[str, str]]]
    settings: Callable[[], Mapping[str, Setting]]
    plan: Callable[..., Plan]
    draw: Callable[..., dict]
    noun_categories: Callable[[], Mapping[str, str]] | None = None
    counts: bool = False
    breakdown: str = ""
    score: Callable[..., dict] = caption_metrics

    def noun_phrases(self) -> dict[tuple[str, ...], str]:
        """{words: noun} for every singular and plural form its captions use."""
        return noun_phrases(self.nouns())

    def category_of(self) -> dict[str, str]:
        """{noun: instances.json category name} for every noun of its captions."""
        if self.noun_categories is not None:
            return dict(self.noun_categories())
        return {noun: noun for noun, _ in self.nouns()}

    def category_words(self) -> dict[tuple[str, ...], str]:
        """{words: instances.json category name}: the words of its captions that name each category
        (what attention supervision matches: grounding.category_phrases' `known`)."""
        category_of = self.category_of()
        return {words: category_of[noun] for words, noun in self.noun_phrases().items()}

    def metrics(self, predictions: list[dict], instances: dict) -> dict:
        """Its scores of captions: predictions [{"image_id", "words", "attention" (T, gh, gw)}],
        instances: the instances.json of its images."""
        return self.score(self, predictions, instances)
