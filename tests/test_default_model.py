"""The shipped default model on a freshly rendered held-out scene set (looser bars than the model
card's 500-image figures: this is a small sample; it is not a timed test)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from captioner import Captioner
from captioner.assets import DEFAULT_CHECKPOINT
from captioner.evaluate import evaluate
from captioner.worlds import render

VALIDATION_LABELS = Path(__file__).resolve().parent.parent / "assets" / "validation" / "labels.json"
EXAMPLE_PHOTOS_NAMED = 3   # of the 6 (the shipped model names 4: model card, validation_captions.jsonl)
UNSEEN_SEED = 4242   # used neither for training (1) nor for the model card's held-out set (20261124)


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("heldout")
    render("emoji", out, 80, UNSEEN_SEED, workers=2)
    model = Captioner.load()
    return evaluate(model, out / "captions.json", out / "images", out / "instances.json", progress=False)


def test_the_default_checkpoint_ships_complete():
    for name in ("config.json", "vocab.json", "model.weights.h5", "model_card.md", "photo_probe.npz",
                 "setting_classes.json"):
        assert (DEFAULT_CHECKPOINT / name).is_file(), name
    card = (DEFAULT_CHECKPOINT / "model_card.md").read_text()
    assert "emoji world" in card and "photo world" in card and "Open Font License" in card
    assert "tuxpaint-stamps" in card and "CC-BY-SA-3.0" in card and "Summary:" in card
    model = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())["model"]
    assert (model["encoder"], model["image_size"], model["grid_size"]) == ("efficientnet_lite0", 256, 8)
    assert (model["imagenet_head"], model["imagenet_words"]) == ("softmax", True)


def test_the_shipped_card_is_its_template_filled_from_the_shipped_measurements():
    """assets/model/model_card.md is recipes/model_card.md rendered from heldout_figures.json (every
    figure measured by `make model`), the config and the vocabulary: nothing written by hand."""
    from captioner.checkpoint import load_checkpoint
    from captioner.model_card import render_card
    checkpoint = load_checkpoint(DEFAULT_CHECKPOINT)
    measured = json.loads((DEFAULT_CHECKPOINT / "heldout_figures.json").read_text())
    card = render_card(checkpoint.config, checkpoint.vocab.words, measured)
    assert card == checkpoint.card
    assert f"{measured['figures']['object_recall']:.3f}" in card and f"**{measured['calibration']['scale']:g}**" in card
    measured["figures"]["object_recall"] = 0.5                    # a figure below its bar is said to be
    assert "Below the bar: object_recall 0.500 < 0.900" in render_card(checkpoint.config, checkpoint.vocab.words, measured)
    # A ceiling (invented objects) is missed from above.
    measured["recipe"]["floors"].setdefault("validation", {})["not_calibrated_chair_s"] = 0.25
    measured["validation_photos"]["not_calibrated_chair_s"] = 0.5
    card = render_card(checkpoint.config, checkpoint.vocab.words, measured)
    assert "validation photos: not_calibrated_chair_s 0.500 > 0.250" in card and "| <= 0.25 |" in card


def test_default_model_quality_on_unseen_scenes(figures):
    print(json.dumps(figures))
    # 500 held-out images give recall 0.95, count 0.81, pointing 0.96 (model card); 80 are noisier.
    assert figures["object_recall"] >= 0.85 and figures["object_precision"] >= 0.85
    assert figures["setting_accuracy"] >= 0.85 and figures["count_accuracy"] >= 0.75
    assert figures["pointing_game"] >= 0.8 and figures["pointing_game"] >= 2.5 * figures["pointing_chance"]
    assert figures["bleu4"] > 0.3 and figures["cider"] > 1.0


def test_default_model_names_what_the_example_photos_show():
    """The page's real example photos (chosen before training, in the hand-labelled validation set)."""
    from captioner.assets import EXAMPLES
    from captioner.subjects import load_labels, names_subject
    labels = {Path(photo["file"]).stem: photo["nouns"] for photo in load_labels(VALIDATION_LABELS)}
    photos = sorted(EXAMPLES.glob("photo_*.jpg"))
    assert len(photos) == 6
    model = Captioner.load()
    captions = {p.name: model.caption(p).text for p in photos}
    print(json.dumps(captions, indent=1))
    stem = lambda name: re.sub(r"^photo_\d+_", "", name)[:-len(".jpg")]   # photo_1_chelsea.jpg -> chelsea
    named = [name for name, text in captions.items() if names_subject(text, labels[stem(name)])]
    assert len(named) >= EXAMPLE_PHOTOS_NAMED, captions


def test_the_card_splits_composite_recall_by_what_the_imagenet_head_names():
    """The held-out composites' recall, split by nouns an ImageNet class names and those none does,
    adds up to the whole, and each noun sits in the group the model's own word map says."""
    from captioner.word_map import mapped
    model = Captioner.load(use_litert=False)
    word_map = model.checkpoint.model.word_prior.word_map.numpy()
    shipped = json.loads((DEFAULT_CHECKPOINT / "heldout_figures.json").read_text())
    composites, groups = shipped["photo_composites"], shipped["composites_by_head"]
    assert sorted(n for g in groups.values() for n in g["nouns"]) == sorted(composites["per_noun"])
    for key in ("present", "recalled"):
        assert sum(g[key] for g in groups.values()) == composites["counts"][key]
    for noun in groups["named_by_imagenet"]["nouns"]:
        assert mapped(word_map, model.vocab, noun), noun
    for noun in groups["not_named_by_imagenet"]["nouns"]:
        assert not mapped(word_map, model.vocab, noun), noun
    card = (DEFAULT_CHECKPOINT / "model_card.md").read_text()
    assert f"{groups['named_by_imagenet']['object_recall']:.3f} over the" in card


def test_the_shipped_model_warns_on_blank_flat_and_noise_images_and_not_on_its_examples():
    """The warning under a caption, on the shipped model: images with nothing to caption get it; the
    example pictures, whose subjects it can name, do not (scripts/measure_warning.py chose the
    threshold so; the model card gives its rates)."""
    import numpy as np
    from PIL import Image
    from captioner.assets import EXAMPLES
    model = Captioner.load()
    rng = np.random.default_rng(5)
    nothing = [Image.new("RGB", (320, 240), (0, 0, 0)), Image.new("RGB", (320, 240), (255, 255, 255)),
               Image.new("RGB", (8, 8), (200, 30, 30)), Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))]
    for picture in nothing:
        caption = model.caption(picture)
        assert caption.unfamiliar is True and "nothing in it to caption" in caption.warning, caption.text
    for path in sorted(EXAMPLES.glob("*.jpg")):
        caption = model.caption(path)
        assert caption.unfamiliar is False and caption.warning is None, (path.name, caption.text)


def test_loading_and_warming_the_shipped_model_prints_nothing(tmp_path):
    """What `make demo` shows before its URL: no TensorFlow C++ line (oneDNN's one-time DT_HALF
    notice on CPUs without AVX-512 came while warm-up compiled the searches)."""
    script = ("import captioner; captioner.import_tensorflow_quietly()\n"
              "from captioner import Captioner; Captioner.load().warm_up(); print('warm')")
    env = {k: v for k, v in os.environ.items() if k not in ("CAPTIONER_TF_LOGS", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "warm" and done.stderr == "", done.stderr[-2000:]
