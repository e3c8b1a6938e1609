"""The evidence gate (ModelConfig.noun_evidence): in a photograph, a noun is said only where the
encoder's ImageNet head sees it in the whole image (model.CopyPath.seen, photo_probe.py)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from captioner.class_names import class_names
from captioner.config import CheckpointConfig, ModelConfig
from captioner.copy_path import build_copy_tables
from captioner.model import CopyPath, ShowAttendTell
from captioner.worlds.captions import DEEDS

from conftest import class_index


@pytest.fixture(scope="module")
def vocab(shipped_vocab):
    return shipped_vocab


@pytest.fixture(scope="module")
def gate(vocab):
    config = ModelConfig(vocab_size=len(vocab), imagenet_head="softmax", imagenet_words=True, copy_weight=0.4,
                         noun_evidence=0.05)
    return CopyPath(config, build_copy_tables(vocab))


def step(gate, vocab, wants: dict, sees: dict, said="a", spent=None, photograph=True, person=0.0,
         person_said=False):
    """The decoder's own distribution (`wants`: word -> logit, others 0) through the gate, for an
    image (a photograph, or a rendered scene) whose head gives `sees` (ImageNet class -> probability,
    the rest spread evenly) and whose person detectors give `person` -> probabilities over the
    output words (1, V')."""
    own = np.zeros((1, len(vocab)), np.float32)
    for word, logit in wants.items():
        own[0, vocab.index[word]] = logit
    whole = np.full((1, 1000), (1.0 - sum(sees.values())) / (1000 - len(sees)), np.float32)
    for name, p in sees.items():
        whole[0, class_index(name)] = p
    log_probs = tf.nn.log_softmax(own)
    log_probs = tf.pad(log_probs, [[0, 0], [0, gate.extra]], constant_values=-1e9)   # no copy mixture here
    whole = np.concatenate([whole, [[person * photograph, float(person_said), float(photograph)]]],
                           -1).astype(np.float32)   # (1, K + 3): classes, person, person said, photograph
    spent = None if spent is None else tf.constant(spent)
    out = gate.seen(log_probs, tf.constant(whole), spent, tf.constant([vocab.index[said]]))
    return tf.nn.softmax(out).numpy()   # as the searches read it: a log-softmax over what is left


def top(gate, probs) -> str:
    return gate.words[int(probs.argmax())]


def test_a_noun_the_head_does_not_see_gives_way_to_one_it_sees_of_the_same_number(gate, vocab):
    # The decoder wants "mug", the head sees a cheetah (after a word that says no number, "and").
    assert top(gate, step(gate, vocab, {"mug": 6.0}, {"cheetah": 0.9}, said="and")) == "cheetah"
    assert top(gate, step(gate, vocab, {"mugs": 6.0}, {"cheetah": 0.9}, said="and")) == "cheetahs"
    # A coffee mug in the picture: the decoder's own word stands.
    assert top(gate, step(gate, vocab, {"mug": 6.0}, {"coffee mug": 0.9})) == "mug"


def test_in_a_rendered_scene_the_head_has_no_say(gate, vocab):
    # The emoji world's glyphs: the head reads them as something else, the decoder knows them.
    assert top(gate, step(gate, vocab, {"mug": 6.0}, {"cheetah": 0.9}, photograph=False)) == "mug"
    assert top(gate, step(gate, vocab, {"and": 6.0, "on": 5.0}, {"cheetah": 0.9}, said="mug", photograph=False)) == "and"


def test_the_first_noun_may_be_the_heads_best_guess_below_the_threshold(vocab):
    # Nothing seen well (at a threshold of 0.5, a cannon at 0.3 and the rest spread thin): the
    # first noun slot still takes a noun, the name the head sees most, rather than a word that is no
    # noun ("a picture of a picture of").
    config = ModelConfig(vocab_size=len(vocab), imagenet_head="softmax", imagenet_words=True, copy_weight=0.4,
                         noun_evidence=0.5)
    strict = CopyPath(config, build_copy_tables(vocab))
    wants = {"mug": 6.0, "picture": 5.5}
    assert top(strict, step(strict, vocab, wants, {"cannon": 0.3}, spent=np.zeros((1, 1000), np.float32))) == "cannon"
    # After a first noun, a further one needs the threshold.
    spent = np.zeros((1, 1000), np.float32)
    spent[0, class_index("golden retriever")] = 1.0
    assert top(strict, step(strict, vocab, wants, {"cannon": 0.3}, spent=spent)) == "picture"


def test_after_a_count_the_noun_that_replaces_another_has_the_counts_number(gate, vocab):
    # The decoder wanted a singular noun after "two" (it is not always right about number).
    assert top(gate, step(gate, vocab, {"mug": 6.0}, {"cheetah": 0.9}, said="two")) == "cheetahs"
    assert top(gate, step(gate, vocab, {"mugs": 6.0}, {"cheetah": 0.9}, said="a")) == "cheetah"


def test_a_measure_word_needs_evidence_for_what_it_counts(gate, vocab):
    # "a pair of binoculars" is decided at "pair": the head must see a thing counted in pairs.
    assert top(gate, step(gate, vocab, {"pair": 6.0}, {"binoculars": 0.9})) == "pair"
    assert top(gate, step(gate, vocab, {"pair": 6.0}, {"cheetah": 0.9})) == "cheetah"


def test_the_mass_moves_rather_than_vanishes_while_something_is_left(gate, vocab):
    probs = step(gate, vocab, {"mug": 6.0, "on": 5.0}, {"cheetah": 0.9})
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
    assert probs[0, vocab.index["mug"]] < 1e-6
    # "on" keeps its share: the mug's went to the cheetah, not to every other word. Only what a
    # person would be doing (no class sees a deed: at logit 0 here) leaves, and the rest renormalises.
    ungated = tf.nn.softmax(np.eye(1, len(vocab), vocab.index["mug"]) * 6.0 +
                            np.eye(1, len(vocab), vocab.index["on"]) * 5.0).numpy()
    deeds = sum(ungated[0, vocab.index[w]] for w in DEEDS if w in vocab.index)
    assert probs[0, vocab.index["on"]] == pytest.approx(ungated[0, vocab.index["on"]] / (1 - deeds), rel=5e-3)


def test_with_nothing_left_to_name_no_further_thing_is_brought_in(gate, vocab):
    dog_classes = [row.index for row in class_names() if row.name == "dog"]
    spent = np.zeros((1, 1000), np.float32)
    spent[0, dog_classes] = 1.0                          # "a dog" said: its classes are spent
    wants = {"and": 6.0, "on": 5.0}
    after_dog = dict(said="dog", spent=spent)
    assert top(gate, step(gate, vocab, wants, {"golden retriever": 0.95}, **after_dog)) == "on"
    # A tennis ball beside the dog: "and" stays.
    assert top(gate, step(gate, vocab, wants, {"golden retriever": 0.6, "tennis ball": 0.35}, **after_dog)) == "and"
    # Nor does an article start one right after the noun ("a dog a mug").
    assert top(gate, step(gate, vocab, {"a": 6.0, "on": 5.0}, {"golden retriever": 0.95}, **after_dog)) == "on"


def test_the_words_of_a_setting_need_no_evidence(gate, vocab):
    # "on the train tracks" names no train, "in a room" no room.
    for word in ("train", "grass", "room", "water", "building"):
        if word in vocab.index:
            assert gate.needs_evidence.numpy()[vocab.index[word]] == 0, word
    probs = step(gate, vocab, {"train": 6.0}, {"cheetah": 0.9}, said="the")
    assert top(gate, probs) == "train"


def test_the_gate_needs_the_copy_path_and_stays_in_range():
    with pytest.raises(ValueError, match="noun_evidence needs copy_weight"):
        ShowAttendTell(ModelConfig(vocab_size=20, imagenet_head="softmax", imagenet_words=True, noun_evidence=0.1))
    for field in ("noun_evidence", "setting_evidence"):
        with pytest.raises(ValueError, match=f"{field} = 1.5 is out of range"):
            CheckpointConfig.from_dict({"version": 2, "model": {field: 1.5}})
    assert ModelConfig().noun_evidence == 0.0   # off unless a recipe's calibration chose it


def test_the_photograph_probe_tells_two_worlds_apart_and_loads_only_what_it_saved(tmp_path):
    from captioner.photo_probe import PhotoProbe
    rng = np.random.default_rng(0)
    photos, rendered = rng.normal(1.0, 1.0, (200, 16)), rng.normal(-1.0, 1.0, (200, 16))
    probe = PhotoProbe.fit(photos, rendered)
    assert (probe.photo_logits(rng.normal(1.0, 1.0, (100, 16))) > 0).mean() > 0.95
    assert (probe.photo_logits(rng.normal(-1.0, 1.0, (100, 16))) < 0).mean() > 0.95
    loaded = PhotoProbe.load(probe.save(tmp_path / "probe.npz"))
    np.testing.assert_array_equal(loaded.weights, probe.weights)
    np.savez(tmp_path / "bad.npz", weights=np.full(16, np.nan), bias=0.0, heldout_accuracy=0.0)
    with pytest.raises(ValueError, match="finite"):
        PhotoProbe.load(tmp_path / "bad.npz")


def test_a_person_the_head_has_no_class_for_is_named_where_the_detectors_see_one(gate, vocab):
    # A woman on a beach: the head's best guess is a dog (ImageNet has no person), the decoder
    # wants "dog"; the detectors see a person.
    wants, sees = {"dog": 6.0, "person": 2.0}, {"golden retriever": 0.3}
    assert top(gate, step(gate, vocab, wants, sees, person=0.95)) == "person"
    assert top(gate, step(gate, vocab, wants, sees, person=0.95, said="two")) == "people"
    # No person seen: as before.
    assert top(gate, step(gate, vocab, wants, sees, person=0.0)) == "dog"
    # A rendered scene: the detectors' opinion counts no more than the head's.
    assert top(gate, step(gate, vocab, {"dog": 6.0}, sees, person=0.95, photograph=False)) == "dog"
    # A dog the head sees well beside the person still may be named after the person.
    assert top(gate, step(gate, vocab, {"dog": 6.0}, {"golden retriever": 0.9}, person=0.5, said="and",
                          person_said=True)) == "dog"


def test_a_person_said_is_said_once_and_with_nothing_left_the_caption_ends(gate, vocab):
    # "a person" said and nothing else seen: "and a person" is not said again, and what the
    # decoder wanted to go on with ("and", "walking": no class sees a deed) ends the caption.
    wants = {"and": 6.0, "walking": 4.0}
    probs = step(gate, vocab, wants, {"golden retriever": 0.3}, said="person", person=0.95, person_said=True)
    assert top(gate, probs) == "<end>"
    again = step(gate, vocab, {"person": 6.0}, {}, said="and", person=0.95, person_said=True)
    assert top(gate, again) != "person"
    # In a rendered scene the emoji world's people still walk.
    assert top(gate, step(gate, vocab, {"walking": 6.0}, {}, said="person", photograph=False)) == "walking"


def test_the_person_is_spent_once_said(gate, vocab):
    whole = tf.constant(np.r_[np.zeros(1000), 0.9, 0.0, 1.0][None].astype(np.float32))
    after = gate.spend_person(whole, tf.constant([vocab.index["people"]])).numpy()
    assert after[0, -2] == 1.0 and after[0, 1000] == pytest.approx(0.9)
    assert gate.spend_person(whole, tf.constant([vocab.index["dog"]])).numpy()[0, -2] == 0.0
