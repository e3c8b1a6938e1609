"""main_subject_recall: whole-word matches of hand-labelled nouns, overall and within the vocabulary."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from captioner.__main__ import main
from captioner.caption_checks import broken_caption, noun_forms, nouns_said, world_forms
from captioner.subjects import evaluate_photos, in_vocabulary, load_labels, main_subject_recall, names_subject, plural

LABELS = [{"file": "a.jpg", "nouns": ["dog", "puppy"]}, {"file": "b.jpg", "nouns": ["cat"]},
          {"file": "c.jpg", "nouns": ["goose", "bird"]}, {"file": "d.jpg", "nouns": ["bottle cap", "cap"]},
          {"file": "e.jpg", "nouns": ["yurt"]}]


def test_names_subject_whole_words_and_plurals():
    assert names_subject("two dogs on the grass", ["dog"])
    assert names_subject("three geese by the water", ["goose"])
    assert names_subject("a bottle cap on a table", ["bottle cap"])
    assert not names_subject("a hotdog on a table", ["dog"])
    assert not names_subject("a cattle farm", ["cat"])
    assert plural("strawberry") == "strawberries" and plural("box") == "boxes" and plural("bus") == "buses"
    assert plural("tennis racket") == "tennis rackets" and plural("person") == "people"


def test_a_broken_caption_puts_a_noun_first_or_names_one_twice():
    forms = noun_forms([("cat", "cats"), ("cone", "cones"), ("traffic cone", "traffic cones"),
                        ("pair of scissors", "pairs of scissors"), ("potato", "potatoes"), ("train", "trains")],
                       phrases=["on the train tracks"])
    # What a too-loud word prior wrote on real photos:
    for caption in ("a cat in a cat a cat and a cat in a cats cats", "cats in a room", "a cat and two cats",
                    "potato a picture of a cat"):
        assert broken_caption(caption, forms), caption
    # The worlds' grammar: a longer noun is one noun, not the shorter one inside it.
    assert nouns_said("a cone and two traffic cones on the road", forms) == (["cone", "traffic cone"], False)
    assert nouns_said("two pairs of scissors and a potato", forms) == (["pair of scissors", "potato"], False)
    assert nouns_said("a train on the train tracks", forms) == (["train"], False)   # a setting is no noun
    assert broken_caption("a train and a train on the train tracks", forms)
    # A decoder in a loop (a real photo's greedy caption, 2026-11-26), with no noun at all:
    assert broken_caption("a picture of a picture of a picture of a picture of", forms)
    assert not broken_caption("a pair of scissors and a pair of pliers", forms)   # three words twice is grammar
    for caption in ("a picture of a cat on the grass", "a cone and a traffic cone", "", "there is a dog",
                    "a train on the train tracks"):
        assert not broken_caption(caption, forms), caption


def test_no_emoji_world_caption_is_broken(tmp_path):
    from captioner.worlds import render
    forms = world_forms()
    assert forms[("on", "the", "train", "tracks")] is None and forms[("trains",)] == "train"
    render("emoji", tmp_path, 60, 7, workers=1)
    captions = [entry["caption"] for entry in json.loads((tmp_path / "captions.json").read_text())["annotations"]]
    assert len(captions) == 300
    assert not [caption for caption in captions if broken_caption(caption, forms)]


def test_recall_overall_and_in_vocabulary():
    captions = {"a.jpg": "a dog on the grass", "b.jpg": "a dog on a bed", "c.jpg": "two birds in the sky",
                "d.jpg": "a bottle on a table", "e.jpg": "a tent in the forest", "unlabelled.jpg": "a cat"}
    vocabulary = ["<pad>", "a", "dog", "cat", "birds", "bottle", "tent", "on", "the"]
    figures = main_subject_recall(captions, LABELS, vocabulary)
    assert figures["photos"] == 5
    assert figures["main_subject_recall"] == pytest.approx(2 / 5, abs=1e-3)          # a.jpg and c.jpg
    # in the vocabulary: dog, cat, bird (plural "birds" is a word it has); not cap, not yurt
    assert figures["photos_in_vocabulary"] == 3
    assert figures["main_subject_recall_in_vocabulary"] == pytest.approx(2 / 3, abs=1e-3)
    assert not in_vocabulary(["bottle cap"], vocabulary)
    assert "photos_in_vocabulary" not in main_subject_recall(captions, LABELS)
    with pytest.raises(ValueError):
        main_subject_recall({"zzz.jpg": "x"}, LABELS)


SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "validation" / "labels.json"


def setting_names() -> set[str]:
    """The settings captions use: the photo world's (settings.tsv) and the emoji world's backgrounds."""
    from captioner.worlds.emoji.render import BACKGROUNDS
    from captioner.worlds.photos.tables import photo_settings
    return set(photo_settings()) | set(BACKGROUNDS)


def test_the_shipped_labels():
    labels = load_labels(SHIPPED)
    assert len(labels) >= 120 and len({p["file"] for p in labels}) == len(labels)
    assert all(p["licence"] and p["source"] == p["file"].split("/")[0] for p in labels)
    words = [w for p in labels for w in p["nouns"] + p["objects"]]
    assert all(w and w == w.lower().strip() for w in words)
    assert all(p["nouns"] and not set(p["nouns"]) & set(p["objects"]) for p in labels)
    assert all(p["setting"] in setting_names() | {""} for p in labels)
    assert all(p.get("rotate", 0) in (0, 90, 180, 270) for p in labels)


def test_every_shipped_photo_has_a_box_inside_it():
    for photo in load_labels(SHIPPED):
        x0, y0, x1, y1 = photo["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, photo["file"]
        assert (x1 - x0) * (y1 - y0) >= 0.005, photo["file"]   # no box of a few pixels: each was drawn and looked at


def test_every_shipped_photo_is_there_after_fetching():
    """scripts/fetch_validation.py puts every listed photo in data/validation/ (skipped before it has run)."""
    photos = SHIPPED.parent.parent.parent / "data" / "validation"
    if not photos.is_dir():
        pytest.skip("run scripts/fetch_validation.py first")
    missing = [p["file"] for p in load_labels(SHIPPED) if not (photos / p["file"]).is_file()]
    assert not missing, missing
    for photo in load_labels(SHIPPED):
        with Image.open(photos / photo["file"]) as image:
            assert min(image.size) >= 90, photo["file"]


def test_fetching_decodes_scipys_photos_and_turns_photos_on_their_side(tmp_path):
    import bz2
    import pickle
    import sys
    sys.path.insert(0, str(SHIPPED.parent.parent.parent / "scripts"))
    from fetch_validation import decode_dat, place
    face = np.zeros((768, 1024, 3), np.uint8)
    face[:10, :20] = 255
    (tmp_path / "face.dat").write_bytes(bz2.compress(face.tobytes()))
    place(tmp_path / "face.dat", tmp_path / "out" / "face.png")
    assert (np.asarray(Image.open(tmp_path / "out" / "face.png")) == face).all()
    (tmp_path / "ascent.dat").write_bytes(pickle.dumps([[0, 255, 7]] * 2))
    assert np.asarray(decode_dat(tmp_path / "ascent.dat")).tolist() == [[0, 255, 7]] * 2
    (tmp_path / "evil.dat").write_bytes(pickle.dumps(Path("x")))
    (tmp_path / "ascent.dat").write_bytes((tmp_path / "evil.dat").read_bytes())
    with pytest.raises(pickle.UnpicklingError):
        decode_dat(tmp_path / "ascent.dat")
    Image.fromarray(face[:40, :60]).save(tmp_path / "side.png")
    place(tmp_path / "side.png", tmp_path / "out" / "side.png", rotate=270)   # a quarter turn clockwise
    turned = np.asarray(Image.open(tmp_path / "out" / "side.png"))
    assert turned.shape == (60, 40, 3) and turned[:20, -10:].all() and not turned[-20:, :10].any()


class FakeCaptioner:
    vocab = SimpleNamespace(words=["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "on", "grass"])

    def caption_batch(self, paths, strategy="greedy", **kw):
        return [SimpleNamespace(text="a dog on the grass") for _ in paths]


def test_evaluate_photos_and_the_cli(tmp_path, monkeypatch, capsys):
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "labels.json").write_text(json.dumps({"photos": LABELS}))
    figures, captions = evaluate_photos(FakeCaptioner(), tmp_path / "labels.json", tmp_path,
                                        captions_out=tmp_path / "out" / "captions.jsonl")
    assert figures == {"photos": 2, "main_subject_recall": 0.5, "photos_in_vocabulary": 1,
                       "main_subject_recall_in_vocabulary": 1.0}
    lines = [json.loads(line) for line in (tmp_path / "out" / "captions.jsonl").read_text().splitlines()]
    assert [(r["file"], r["named"]) for r in lines] == [("a.jpg", True), ("b.jpg", False)]

    import captioner.api
    monkeypatch.setattr(captioner.api.Captioner, "load", classmethod(lambda cls, *a, **k: FakeCaptioner()))
    assert main(["evaluate", "--labels", str(tmp_path / "labels.json"), "--photos", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["main_subject_recall"] == 0.5
    assert "a.jpg: a dog on the grass" in out.err
    with pytest.raises(SystemExit):
        main(["evaluate", "--labels", str(tmp_path / "labels.json")])
