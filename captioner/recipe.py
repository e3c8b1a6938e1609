"""A model's recipe as data: recipes/*.toml, read by `make model` (scripts/make_model.py).

A recipe's [model] and [train] tables hold only the ModelConfig and TrainConfig fields that differ
from their defaults (captioner/config.py), checked like a checkpoint's config; the other tables say
what to render, how to calibrate the word prior's scale, the bars the model card holds figures to,
and which images the page shows as examples.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .config import ModelConfig, TrainConfig, build_section

DEFAULT = Path(__file__).resolve().parent.parent / "recipes" / "default.toml"


@dataclass(frozen=True)
class Data:
    emoji_images: int
    photo_images: int
    heldout_images: int
    train_seed: int
    heldout_seed: int
    texture_seed: int
    workers: int = 2
    probe_images: int = 0      # per world, for the evidence gate's photograph probe (photo_probe.py)
    probe_seed: int = 0


@dataclass(frozen=True)
class Calibration:
    source: str
    seed: int
    images: int
    multiples: tuple[float, ...]
    emoji_floor: float
    copy_weights: tuple[float, ...] = (0.0,)
    noun_evidence: tuple[float, ...] = ()              # the evidence gate's candidates (model.CopyPath.seen)
    setting_evidence: tuple[float, ...] = ()           # the setting gate's candidates (settings_seen.py)


@dataclass(frozen=True)
class Examples:
    photos: tuple[str, ...]
    composites: int
    emoji_scenes: int


@dataclass(frozen=True)
class Recipe:
    path: Path
    data: Data
    model: ModelConfig
    train: TrainConfig
    calibration: Calibration
    floors: dict                # {set: {metric: bar}}; floors.emoji.pointing_over_chance: x chance
    examples: Examples

    def differences(self) -> dict:
        """The model and training fields this recipe sets: {"model": {...}, "train": {...}}."""
        return {"model": _changed(self.model, ModelConfig()), "train": _changed(self.train, TrainConfig())}


def load_recipe(path=DEFAULT) -> Recipe:
    path = Path(path)
    try:
        tables = tomllib.loads(path.read_text())
        return Recipe(path=path, data=_table(Data, tables, "data"),
                      model=build_section(ModelConfig, tables.get("model", {})),
                      train=build_section(TrainConfig, tables.get("train", {})),
                      calibration=_table(Calibration, tables, "calibration", multiples=tuple, copy_weights=tuple,
                                                  noun_evidence=tuple,
                                                  setting_evidence=tuple),
                      floors=tables.get("floors", {}), examples=_table(Examples, tables, "examples", photos=tuple))
    except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


def _table(cls, tables: dict, name: str, **convert):
    values = dict(tables.get(name, {}))
    for key, kind in convert.items():
        if key in values:
            values[key] = kind(values[key])
    return cls(**values)   # a missing or unknown key is a TypeError naming it


def _changed(config, default) -> dict:
    ours, theirs = dataclasses.asdict(config), dataclasses.asdict(default)
    return {key: value for key, value in ours.items() if value != theirs[key]}
