"""The emoji world: repeatable renders, COCO formats, and captions that are true of their images."""
import hashlib
import json

import numpy as np
import pytest

from captioner.vocab import tokenize
from captioner.worlds import EMOJI, metrics, render
from captioner.worlds.captions import Group, relation
from captioner.worlds.emoji import tables


def find_nouns(words):
    return metrics.find_nouns(words, EMOJI.noun_phrases())


def digest(folder):
    files = [folder / "captions.json", folder / "instances.json", *sorted((folder / "images").iterdir())]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    render("emoji", out / "a", 60, seed=5, workers=1, image_size=160)
    render("emoji", out / "b", 60, seed=5, workers=2, image_size=160)
    render("emoji", out / "c", 60, seed=6, workers=1, image_size=160)
    return out


def test_same_seed_same_files_whatever_the_workers(scenes):
    assert digest(scenes / "a") == digest(scenes / "b")
    assert digest(scenes / "a") != digest(scenes / "c")


def test_coco_formats(scenes):
    captions = json.loads((scenes / "a" / "captions.json").read_text())
    instances = json.loads((scenes / "a" / "instances.json").read_text())
    assert [im["id"] for im in captions["images"]] == list(range(1, 61))
    assert all(set(im) == {"id", "file_name", "width", "height"} for im in captions["images"])
    per_image = {}
    for note in captions["annotations"]:
        per_image.setdefault(note["image_id"], []).append(note["caption"])
    assert all(len(set(v)) == 5 for v in per_image.values()) and len(per_image) == 60
    for notes in (captions["annotations"], instances["annotations"]):   # ids unique over the file, as in COCO
        assert sorted(n["id"] for n in notes) == list(range(1, len(notes) + 1))
    names = {c["name"] for c in instances["categories"]}
    assert names == {o.coco_category for o in tables.objects()} and "person" in names
    assert all(c["id"] == tables.COCO_IDS[c["name"]] for c in instances["categories"])   # COCO's own ids
    assert [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in instances["images"]] \
        == captions["images"]
    assert all((scenes / "a" / "images" / im["file_name"]).is_file() for im in captions["images"])
    settings = set(tables.settings())
    assert all(im["setting"] in settings for im in instances["images"])
    for note in instances["annotations"]:
        x, y, w, h = note["bbox"]
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 160 and y + h <= 160


def test_every_caption_is_true_of_its_image(scenes):
    captions = json.loads((scenes / "a" / "captions.json").read_text())
    instances = json.loads((scenes / "a" / "instances.json").read_text())
    noun = {o.coco_category: o.noun for o in tables.objects()}
    category = {c["id"]: noun[c["name"]] for c in instances["categories"]}
    present, setting = {}, {im["id"]: im["setting"] for im in instances["images"]}
    for note in instances["annotations"]:
        present.setdefault(note["image_id"], []).append(category[note["category_id"]])
    mentions = {}
    for note in captions["annotations"]:
        text, kinds = note["caption"], present[note["image_id"]]
        assert text == text.lower() and "  " not in text and not text.endswith(".") and text == text.strip()
        named = find_nouns(tokenize(text))
        assert {n for n, _, _ in named} == set(kinds), text           # every kind, nothing else
        assert all(count == kinds.count(n) for n, _, count in named), text
        phrases = tables.settings()[setting[note["image_id"]]].phrases
        mentions[note["image_id"]] = mentions.get(note["image_id"], False) or any(p in text for p in phrases)
    assert all(mentions.values())


def test_relation_words_agree_with_the_boxes():
    kind = tables.objects()[0]
    left, right = Group(kind, [[10, 100, 40, 40]]), Group(kind, [[200, 110, 40, 40]])
    top, bottom = Group(kind, [[100, 10, 40, 40]]), Group(kind, [[105, 200, 40, 40]])
    assert relation(left, right, 256) == "to the left of" and relation(right, left, 256) == "to the right of"
    assert relation(top, bottom, 256) == "above" and relation(bottom, top, 256) == "below"
    spread = Group(kind, [[10, 100, 40, 40], [220, 100, 30, 30]])     # on both sides: no left/right
    assert relation(spread, Group(kind, [[120, 105, 30, 30]]), 256) == "next to"


def test_rendered_relations_hold_in_the_dataset(scenes):
    """Where a caption relates two kinds, the relation is the one their boxes show."""
    captions = json.loads((scenes / "a" / "captions.json").read_text())
    instances = json.loads((scenes / "a" / "instances.json").read_text())
    noun = {o.coco_category: o.noun for o in tables.objects()}
    category = {c["id"]: noun[c["name"]] for c in instances["categories"]}
    boxes = {}
    for note in instances["annotations"]:
        boxes.setdefault((note["image_id"], category[note["category_id"]]), []).append(note["bbox"])
    checked = 0
    for note in captions["annotations"]:
        words = [w for w in ("to the left of", "to the right of", "above", "below", "next to")
                 if f" {w} " in note["caption"]]
        if not words:
            continue
        (first, _, _), (second, _, _) = find_nouns(tokenize(note["caption"]))[:2]
        groups = [Group(None, boxes[(note["image_id"], kind)]) for kind in (first, second)]
        assert relation(*groups, 160) == words[0], note["caption"]
        checked += 1
    assert checked >= 5


def test_actors_are_people_in_boxes_and_captions(scenes):
    captions = json.loads((scenes / "a" / "captions.json").read_text())
    actor_words = {"surfing", "skiing", "snowboarding", "cycling", "rowing", "swimming", "walking", "running"}
    with_actor = {n["image_id"] for n in captions["annotations"] if actor_words & set(n["caption"].split())}
    assert with_actor                                                  # the sample has actors
    for note in captions["annotations"]:
        if note["image_id"] in with_actor:
            assert "a person" in note["caption"], note["caption"]


def test_summary(tmp_path):
    summary = render("emoji", tmp_path, 3, seed=1, image_size=96)
    assert summary["n_images"] == 3 and summary["seconds"] >= 0 and summary["images_per_second"] > 0
    assert len(list((tmp_path / "images").iterdir())) == 3


def test_missing_font_is_a_clear_error(monkeypatch, tmp_path):
    from captioner.worlds.emoji.render import font_path
    monkeypatch.setenv("CAPTIONER_EMOJI_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(FileNotFoundError, match="fonts-noto-color-emoji"):
        font_path()


def test_the_heldout_texture_family_never_appears_in_training_renders(scenes, tmp_path):
    from captioner.worlds.emoji.render import HELDOUT_FAMILY, TRAIN_FAMILIES
    instances = json.loads((scenes / "a" / "instances.json").read_text())
    used = [im["texture"] for im in instances["images"]]
    assert HELDOUT_FAMILY not in used and set(used) <= set(TRAIN_FAMILIES)
    assert len(set(used)) >= 3                      # the training renders do mix families
    render("emoji", tmp_path / "held", 12, seed=5, workers=1, image_size=96, families=(HELDOUT_FAMILY,))
    held = json.loads((tmp_path / "held" / "instances.json").read_text())
    assert {im["texture"] for im in held["images"]} == {HELDOUT_FAMILY}
    with pytest.raises(ValueError, match="texture families"):
        render("emoji", tmp_path / "bad", 1, seed=5, families=("velvet",))


def test_each_texture_family_changes_the_background_but_not_its_setting_colours():
    from captioner.worlds.emoji.render import FAMILIES, background
    for setting in tables.settings():
        images = [np.asarray(background(setting, np.random.default_rng(0), 64, f), np.float32) for f in FAMILIES]
        means = np.array([im.reshape(-1, 3).mean(0) for im in images])
        assert all(np.abs(images[0] - im).mean() > 1 for im in images[1:])     # other surfaces
        assert np.abs(means - means.mean(0)).max() < 60                       # the same colours, roughly


def test_the_command_line_renders_the_same_scenes(tmp_path):
    from captioner.__main__ import main
    render("emoji", tmp_path / "api", 4, seed=2, image_size=96)
    assert main(["scenes", "--out", str(tmp_path / "cli"), "--images", "4", "--seed", "2", "--size", "96"]) == 0
    assert digest(tmp_path / "cli") == digest(tmp_path / "api")
    instances = json.loads((tmp_path / "cli" / "instances.json").read_text())
    assert {"setting", "texture"} <= set(instances["images"][0]) and "varied_surfaces" not in instances["images"][0]
    with pytest.raises(SystemExit):                # the retired experiment's flag is gone
        main(["scenes", "--out", str(tmp_path / "old"), "--images", "1", "--varied-surfaces"])
