"""The registered worlds, by name: what the command line, evaluation and the word lists iterate.

captioner/worlds/__init__.py registers the shipped ones (emoji, photos); a new world is one module
defining a World and one `register(...)` of it there.
"""
from __future__ import annotations

WORLDS: dict = {}            # name -> World, in the order they were registered


def register(world):
    """Add a World under its name (a second world of the same name is an error); -> the world."""
    if WORLDS.get(world.name, world) is not world:
        raise ValueError(f"a world named {world.name!r} is already registered")
    WORLDS[world.name] = world
    return world


def get_world(world):
    """A World, or the registered World of that name (ValueError naming the registered ones)."""
    if not isinstance(world, str):
        return world
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}: choose from {', '.join(WORLDS)}")
    return WORLDS[world]
