"""A third world, made the way a contributor would: one definition, registered, rendered with the
shared driver, scored through captioner.evaluate, and known to the word lists."""
import hashlib
import json
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from captioner.worlds import WORLDS, Plan, Setting, World, get_world, register, render
from captioner.worlds.captions import Group, object_captions

# --- the world: coloured squares on a flat ground --------------------------------------------------


@dataclass(frozen=True)
class Square:
    """What captions call a square (the fields captions.counted reads)."""
    noun: str
    plural: str
    article: str = "a"


SQUARES_KINDS = (Square("red square", "red squares"), Square("blue square", "blue squares"))
FILL = {"red square": (220, 40, 40), "blue square": (40, 70, 220)}
GROUNDS = {"grey": (128, 128, 128), "white": (245, 245, 245)}
SETTINGS = {"grey": Setting("grey", ("on a grey background", "on grey"), "flat grey"),
            "white": Setting("white", ("on a white background", "on white"), "flat white")}


def draw(rng, size: int, kinds) -> dict:
    """One to three squares of one or both colours, each in its own cell of a 3x3 grid."""
    setting = SETTINGS[str(rng.choice(sorted(SETTINGS)))]
    image = Image.new("RGB", (size, size), GROUNDS[setting.name])
    chosen = sorted(rng.choice(len(kinds), size=int(rng.integers(1, len(kinds) + 1)), replace=False))
    counts = [int(rng.integers(1, 4)) for _ in chosen]
    side, cell = size // 4, size // 3
    cells = rng.choice(9, size=sum(counts), replace=False)
    boxes = [[int(c % 3 * cell + rng.integers(0, cell - side)), int(c // 3 * cell + rng.integers(0, cell - side)),
              side, side] for c in cells]
    groups, start = [], 0
    for k, n in zip(chosen, counts):
        groups.append(Group(kinds[k], boxes[start:start + n]))
        start += n
    pen = ImageDraw.Draw(image)
    for group in groups:
        for x, y, w, h in group.boxes:
            pen.rectangle([x, y, x + w - 1, y + h - 1], fill=FILL[group.kind.noun])
    return {"image": image, "setting": setting.name, "captions": object_captions(groups, setting, rng, size),
            "objects": [{"category": g.kind.noun, "bbox": box} for g in groups for box in g.boxes]}


def plan(kinds=SQUARES_KINDS) -> Plan:
    categories = [{"id": n, "name": kind.noun} for n, kind in enumerate(kinds, start=1)]
    return Plan({"kinds": tuple(kinds)}, "squares", categories, {"kinds": len(kinds)})


SQUARES = World(name="squares", nouns=lambda: [(k.noun, k.plural) for k in SQUARES_KINDS],
                settings=lambda: SETTINGS, plan=plan, draw=draw, counts=True)

# --- the tests --------------------------------------------------------------------------------------


@pytest.fixture
def squares():
    register(SQUARES)
    yield SQUARES
    del WORLDS["squares"]


def digest(folder):
    files = [folder / "captions.json", folder / "instances.json", *sorted((folder / "images").iterdir())]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def read(folder):
    return (json.loads((folder / "captions.json").read_text()), json.loads((folder / "instances.json").read_text()))


def test_a_registered_world_is_found_by_name_and_known_to_the_word_lists(squares):
    from captioner.word_map import world_nouns
    from captioner.caption_checks import world_forms
    assert get_world("squares") is squares and list(WORLDS)[:2] == ["emoji", "photos"]
    assert ("red square", "red squares") in world_nouns()
    forms = world_forms()
    assert forms[("blue", "squares")] == "blue square" and forms[("on", "grey")] is None
    with pytest.raises(ValueError, match="already registered"):
        register(World("squares", SQUARES.nouns, SQUARES.settings, plan, draw))
    with pytest.raises(ValueError, match="choose from emoji, photos, squares"):
        get_world("circles")


def test_the_shared_driver_renders_it_in_the_common_format(squares, tmp_path):
    summary = render("squares", tmp_path / "a", 8, seed=3, image_size=64)
    assert summary["n_images"] == 8 and summary["kinds"] == 2 and summary["seed"] == 3
    render(squares, tmp_path / "b", 8, seed=3, workers=2, image_size=64)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")           # whatever the workers
    captions, instances = read(tmp_path / "a")
    assert [im["file_name"] for im in captions["images"]] == [f"squares_3_{i:06d}.jpg" for i in range(8)]
    assert all(len([a for a in captions["annotations"] if a["image_id"] == im["id"]]) == 5
               for im in captions["images"])
    assert instances["categories"] == [{"id": 1, "name": "red square"}, {"id": 2, "name": "blue square"}]
    assert {im["setting"] for im in instances["images"]} <= set(SETTINGS)
    image = np.asarray(Image.open(tmp_path / "a" / "images" / captions["images"][0]["file_name"]))
    for note in (n for n in instances["annotations"] if n["image_id"] == 1):
        x, y, w, h = note["bbox"]
        red, blue = image[y + h // 2, x + w // 2, 0], image[y + h // 2, x + w // 2, 2]
        assert (red > blue) == (note["category_id"] == 1)                # the box holds its square


class StandIn:
    """A captioner for `evaluate`: says what `say(image id)` returns, looking at the first box of
    each noun it names while it says the noun."""

    def __init__(self, folder, say):
        captions, self.instances = read(folder)
        self.ids = {im["file_name"]: im["id"] for im in captions["images"]}
        self.say = say

    def caption_batch(self, paths, **options):
        return [self._caption(self.ids[path.name]) for path in paths]

    def _caption(self, image_id):
        from captioner.worlds.metrics import find_nouns
        words = self.say(image_id).split()
        attention = np.full((len(words), 8, 8), 1 / 64)
        names = {c["id"]: c["name"] for c in self.instances["categories"]}
        for noun, end, _ in find_nouns(words, SQUARES.noun_phrases()):
            boxes = [n["bbox"] for n in self.instances["annotations"]
                     if n["image_id"] == image_id and names[n["category_id"]] == noun]
            if boxes:
                x, y, w, h = boxes[0]
                attention[end, int((y + h / 2) // 8), int((x + w / 2) // 8)] = 1.0
        return SimpleNamespace(text=" ".join(words), words=words, attention=attention)


def test_evaluate_scores_captions_with_the_worlds_nouns_and_settings(squares, tmp_path, monkeypatch):
    from captioner.evaluate import evaluate
    monkeypatch.setattr("captioner.scores.shutil.which", lambda name: None)   # no Java: seconds, not minutes
    folder = tmp_path / "set"
    render(squares, folder, 8, seed=5, image_size=64)
    captions, instances = read(folder)
    first = {}
    for note in captions["annotations"]:
        first.setdefault(note["image_id"], note["caption"])
    files = (folder / "captions.json", folder / "images", folder / "instances.json")
    perfect = evaluate(StandIn(folder, first.get), *files, progress=False, world="squares")
    assert perfect["object_recall"] == perfect["object_precision"] == perfect["count_accuracy"] == 1.0
    assert perfect["setting_accuracy"] == 1.0 and perfect["pointing_game"] == 1.0 and perfect["bleu1"] > 0.99
    wrong = evaluate(StandIn(folder, lambda _: "a blue square on a grey background"), *files, progress=False,
                     world=squares)
    present = {im["id"]: {n["category_id"] for n in instances["annotations"] if n["image_id"] == im["id"]}
               for im in instances["images"]}
    with_blue = sum(2 in kinds for kinds in present.values())
    assert 0 < with_blue < 8                                              # the sample has both
    assert wrong["object_recall"] == round(with_blue / sum(map(len, present.values())), 4) < 1.0
    assert wrong["object_precision"] == round(with_blue / 8, 4)
    grey = sum(im["setting"] == "grey" for im in instances["images"])
    assert wrong["setting_accuracy"] == round(grey / 8, 4)
    with pytest.raises(ValueError, match="--world squares"):             # the emoji world knows no squares
        evaluate(StandIn(folder, first.get), *files, progress=False)
