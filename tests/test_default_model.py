"""The shipped default model on a freshly rendered held-out scene set (looser bars than the model
card's 500-image figures: this is a small sample; it is not a timed test)."""
import json

import pytest

from captioner import Captioner
from captioner.api import DEFAULT_CHECKPOINT
from captioner.evaluate import evaluate
from captioner.scenes import render_dataset

UNSEEN_SEED = 4242   # used neither for training (1) nor for the model card's held-out set (20261124)


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("heldout")
    render_dataset(out, 80, UNSEEN_SEED, workers=2)
    model = Captioner.load()
    return evaluate(model, out / "captions.json", out / "images", out / "instances.json", progress=False)


def test_the_default_checkpoint_ships_complete():
    for name in ("config.json", "vocab.json", "model.weights.h5", "model_card.md"):
        assert (DEFAULT_CHECKPOINT / name).is_file(), name
    card = (DEFAULT_CHECKPOINT / "model_card.md").read_text()
    assert "scene world" in card and "photograph" in card and "Open Font License" in card
    assert json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())["model"]["encoder"] == "efficientnet_lite0"


def test_default_model_quality_on_unseen_scenes(figures):
    print(json.dumps(figures))
    assert figures["object_recall"] >= 0.8 and figures["object_precision"] >= 0.8
    assert figures["setting_accuracy"] >= 0.8 and figures["count_accuracy"] >= 0.7
    assert figures["pointing_game"] >= 0.5 and figures["pointing_game"] >= 1.5 * figures["pointing_chance"]
    assert figures["bleu4"] > 0.3 and figures["cider"] > 1.0
