"""The caption grammar the worlds share: five true captions an image, in several sentence shapes, with
counts and relation words from the boxes (actor captions: the emoji world's people doing things)."""
from __future__ import annotations

from dataclasses import dataclass

NUMBERS = {1: "one", 2: "two", 3: "three"}
# Actor captions avoid naming other objects of the table (a "bicycle" under a cyclist is no box).
ACTIVITY = {"surfing": "surfing", "skiing": "skiing", "snowboarding": "snowboarding", "biking": "cycling",
            "horse riding": "riding on horseback", "rowing": "rowing", "swimming": "swimming",
            "walking": "walking", "running": "running"}
SAFE_EXAMPLES = {"surfing", "skiing", "snowboarding", "swimming"}   # their example names no other object
# The first word of each: what a caption says a person is doing ("riding on horseback": "riding").
DEEDS = frozenset(doing.split()[0] for doing in ACTIVITY.values())


@dataclass
class Group:
    """All instances of one kind in a scene."""
    kind: object             # ObjectKind, or an Actor (counted as one person)
    boxes: list

    @property
    def centre(self):
        xs = [x + w / 2 for x, _, w, _ in self.boxes]
        ys = [y + h / 2 for _, y, _, h in self.boxes]
        return sum(xs) / len(xs), sum(ys) / len(ys)


def counted(kind, count: int) -> str:
    """`a dog`, `an apple`, `a pair of skis`, `two dogs`, `three pairs of skis`."""
    if count == 1:
        return f"{kind.article} {kind.noun}"
    return f"{NUMBERS[count]} {kind.plural}"


def listed(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def relation(first: Group, second: Group, size: int) -> str:
    """How `first` stands to `second`: left/right/above/below only when EVERY instance of one is
    clearly beyond every instance of the other (box centres, a margin of a tenth of the image)."""
    margin = 0.1 * size
    centres = lambda g: [(x + w / 2, y + h / 2) for x, y, w, h in g.boxes]
    fx, fy = zip(*centres(first))
    sx, sy = zip(*centres(second))
    clear = {"to the left of": min(sx) - max(fx), "to the right of": min(fx) - max(sx),
             "above": min(sy) - max(fy), "below": min(fy) - max(sy)}
    word, gap = max(clear.items(), key=lambda item: item[1])
    return word if gap > margin else "next to"


def object_captions(groups: list[Group], setting, rng, size: int) -> list[str]:
    groups = sorted(groups, key=lambda g: g.centre[0])      # named left to right, always
    things = listed([counted(g.kind, len(g.boxes)) for g in groups])
    where = setting.phrases
    verb = "is" if len(groups[0].boxes) == 1 else "are"
    shapes = [f"{things} {where[0]}", f"there {verb} {things} {where[1]}",
              f"a picture of {things} {where[0]}", f"{things} {where[1]}"]
    if len(groups) == 2:
        a, b = (counted(g.kind, len(g.boxes)) for g in groups)
        shapes.append(f"{a} {relation(groups[0], groups[1], size)} {b} {where[0]}")
    else:
        shapes.append(f"an image of {things} {where[0]}")
    return shapes


def actor_captions(actor_group: Group, extra: Group | None, setting, rng, size: int) -> list[str]:
    actor, where = actor_group.kind, setting.phrases
    doing = ACTIVITY[actor.activity]
    person = f"a person {doing}"
    if extra is None:
        shapes = [f"{person} {where[0]}", f"there is {person} {where[1]}", f"a picture of {person} {where[0]}",
                  f"{person} {where[1]}"]
        example = actor.example_caption
        return shapes + [example if actor.activity in SAFE_EXAMPLES and example not in shapes
                         else f"a photo of {person} {where[1]}"]
    thing = counted(extra.kind, len(extra.boxes))
    return [f"{person} and {thing} {where[0]}", f"there is {person} and {thing} {where[1]}",
            f"a picture of {person} and {thing} {where[0]}",
            f"{person} {relation(actor_group, extra, size)} {thing} {where[0]}",
            f"{person} with {thing} {where[1]}"]
