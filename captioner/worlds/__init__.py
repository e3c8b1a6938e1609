"""The offline worlds the model trains and is measured on, behind one interface.

Each world (world.World) renders images with true captions into the common on-disk format
(`images/*.jpg`, `captions.json`, `instances.json`, COCO's file formats) and says how captions of
it are scored. The shipped worlds:

- `emoji` (worlds/emoji/): emoji glyphs on generated backgrounds, `python -m captioner scenes`;
- `photos` (worlds/photos/): real photo cut-outs on real background photos, `python -m captioner photos`.

`render(world, out, n, seed)` draws any world's images (worlds/dataset.py); `merge_datasets`
joins rendered sets into one to train on (worlds/merge.py); `WORLDS` / `get_world(name)` find a
world by name (worlds/registry.py). A new world: one module defining a World, registered below.
"""
from __future__ import annotations

from .dataset import render
from .emoji import EMOJI
from .merge import merge_datasets
from .photos import PHOTOS
from .registry import WORLDS, get_world, register
from .world import Plan, Setting, World

register(EMOJI)
register(PHOTOS)

__all__ = ["EMOJI", "PHOTOS", "WORLDS", "Plan", "Setting", "World", "get_world", "merge_datasets", "register",
           "render"]
