"""Whether a photograph shows a person (people.py): the detectors, the probe fitted on their scores,
and a checkpoint that reads it naming the person its ImageNet head has no class for."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from captioner.assets import EXAMPLES
from captioner.people import PERSON_SEEN, PersonDetectors, PersonProbe, shows_person


@pytest.fixture(scope="module")
def detectors():
    return PersonDetectors()


def test_the_detectors_see_a_person_in_a_portrait_and_none_in_a_cat_or_a_blank(detectors):
    astronaut = Image.open(EXAMPLES / "photo_3_astronaut.jpg")
    cat = Image.open(EXAMPLES / "photo_1_chelsea.jpg")
    blank = Image.new("RGB", (300, 200), (127, 127, 127))
    scores = detectors([astronaut, cat, np.asarray(blank)])   # PIL images or arrays
    assert scores.shape == (3, 2) and ((0 <= scores) & (scores <= 1)).all()
    face, body = scores[:, 0], scores[:, 1]
    assert face[0] > 0.8 and body[0] > 0.6            # a portrait: a face and a body
    assert face[1] < 0.5 and face[2] < 0.5             # a cat's face is no person's
    assert body[2] < 0.5


def test_the_probe_is_off_until_fitted_and_fits_what_tells_people_apart():
    assert not PersonProbe().fitted
    rng = np.random.default_rng(0)
    # Faces score high where a person is, bodies are a weaker cue; a few of each kind of mistake.
    truth = rng.random(200) < 0.3
    face = np.clip(np.where(truth, rng.normal(0.85, 0.1, 200), rng.normal(0.25, 0.15, 200)), 0.01, 0.99)
    body = np.clip(np.where(truth, rng.normal(0.7, 0.2, 200), rng.normal(0.3, 0.2, 200)), 0.01, 0.99)
    probe = PersonProbe.fit(np.c_[face, body], truth)
    assert probe.fitted and probe.face > probe.body > 0
    p = probe.probability(np.c_[face, body])
    assert ((p >= 0.5) == truth).mean() > 0.9
    assert probe.probability([[0.95, 0.9]])[0] > 0.9 > 0.1 > probe.probability([[0.05, 0.1]])[0]


def test_a_labelled_photo_shows_a_person_where_its_nouns_or_objects_name_one():
    assert shows_person({"nouns": ["woman", "person"], "objects": []})
    assert shows_person({"nouns": ["dog"], "objects": ["man", "leash"]})
    assert not shows_person({"nouns": ["dog"], "objects": ["grass"]})


@pytest.fixture(scope="module")
def reads_people(tmp_path_factory):
    """The shipped model with a person probe that reads faces (a checkpoint of its own)."""
    from captioner.api import Captioner
    from captioner.assets import DEFAULT_CHECKPOINT
    folder = tmp_path_factory.mktemp("people") / "model"
    shutil.copytree(DEFAULT_CHECKPOINT, folder)
    config = json.loads((folder / "config.json").read_text())
    if not config["model"].get("noun_evidence"):
        pytest.skip("the shipped model has no noun gate to read a person with")
    config["model"].update(person_face=1.0, person_body=0.3, person_bias=-0.5)
    (folder / "config.json").write_text(json.dumps(config))
    return Captioner.load(folder, use_litert=False)


class Counting:
    """The detectors, counting the pictures they are given (every call goes through to them)."""

    def __init__(self, detectors):
        self.detectors, self.pictures = detectors, 0

    def __call__(self, pictures):
        self.pictures += len(pictures)
        return self.detectors(pictures)


def test_a_checkpoint_that_reads_people_names_the_person_and_says_why(reads_people):
    astronaut = Image.open(EXAMPLES / "photo_3_astronaut.jpg")
    for strategy in ("greedy", "beam", "sample"):
        caption = reads_people.caption(astronaut, strategy=strategy, seed=0)
        said = [i for i, word in enumerate(caption.words) if word in ("person", "people")]
        assert said, (strategy, caption.text)
        # The word view's reason: the detectors, and the probability the gate read.
        source, person = caption.imagenet[said[0]]
        assert source == PERSON_SEEN and person > 0.8
        assert person <= caption.evidence[said[0]] <= 1.0
        assert caption.words.count("person") + caption.words.count("people") == 1, caption.text
    assert reads_people.compare(astronaut)[0].imagenet[said[0]][0] == PERSON_SEEN


def test_a_cat_is_still_a_cat_and_a_rendered_scene_is_not_looked_at(reads_people):
    counting = reads_people._detectors = Counting(reads_people._detectors)
    try:
        cat = reads_people.caption(EXAMPLES / "photo_1_chelsea.jpg")
        assert "cat" in cat.words and not {"person", "people"} & set(cat.words), cat.text
        assert counting.pictures == 1
        # The gate leaves a rendered scene's nouns alone: the detectors' time is not spent on it.
        reads_people.caption(EXAMPLES / "scene_1.jpg")
        assert counting.pictures == 1
    finally:
        reads_people._detectors = counting.detectors


def test_a_batch_with_and_without_people_gives_each_its_own_caption(reads_people):
    from captioner.api import Captioner
    pictures = [EXAMPLES / name for name in ("photo_3_astronaut.jpg", "photo_1_chelsea.jpg", "scene_1.jpg")]
    alone = [reads_people.caption(picture).text for picture in pictures]
    assert [c.text for c in reads_people.caption_batch(pictures)] == alone
    on_litert = Captioner.load(reads_people.checkpoint.path, use_litert=True)
    if on_litert.greedy_on_litert is None:
        print("LiteRT is not installed here: only TensorFlow's loop was compared")
        return
    # LiteRT's batched loops pad the batch (with the first image and its person probability).
    assert [c.text for c in on_litert.caption_batch(pictures)] == alone
    assert [on_litert.caption(picture).text for picture in pictures] == alone
    np.testing.assert_allclose(on_litert.caption(pictures[0]).probs, reads_people.caption(pictures[0]).probs, atol=2e-3)
