"""The emoji world's metrics on hand-made cases whose answers are known, and the COCO caption scores."""
import shutil

import numpy as np
import pytest

from captioner.scores import caption_scores
from captioner.worlds import EMOJI, metrics
from captioner.worlds.metrics import pointing

INSTANCES = {
    "images": [{"id": 1, "width": 224, "height": 224, "setting": "grass"},
               {"id": 2, "width": 224, "height": 224, "setting": "table"}],
    "categories": [{"id": 18, "name": "dog"}, {"id": 17, "name": "cat"}, {"id": 58, "name": "hot dog"},
                   {"id": 1, "name": "person"}],
    "annotations": [{"image_id": 1, "category_id": 18, "bbox": [0, 0, 64, 64]},
                    {"image_id": 1, "category_id": 18, "bbox": [160, 0, 64, 64]},
                    {"image_id": 1, "category_id": 17, "bbox": [96, 160, 64, 64]},
                    {"image_id": 2, "category_id": 58, "bbox": [100, 100, 60, 60]}],
}


def find_nouns(words):
    return metrics.find_nouns(words, EMOJI.noun_phrases())


def peaked(words, cells):
    """Attention maps peaked on the given (row, col) per word (None: uniform)."""
    maps = np.full((len(words), 7, 7), 0.5 / 48)
    for t, cell in enumerate(cells):
        if cell is None:
            maps[t] = 1 / 49
        else:
            maps[t][cell] = 0.5
    return maps


def test_nouns_are_matched_as_phrases_with_counts():
    found = find_nouns("a hot dog two pairs of skis three teddy bears a dog".split())
    assert found == [("hot dog", 2, 1), ("skis", 6, 2), ("teddy bear", 9, 3), ("dog", 11, 1)]
    assert find_nouns("some mice and sheep".split()) == [("mouse", 1, None), ("sheep", 3, None)]


def test_irregular_plurals_and_measure_words_count():
    found = find_nouns("a piece of broccoli two mice three sheep a pair of scissors two wine glasses".split())
    assert found == [("broccoli", 3, 1), ("mouse", 5, 2), ("sheep", 7, 3), ("scissors", 11, 1),
                     ("wine glass", 14, 2)]


def test_an_actor_is_a_person_and_a_bare_plural_is_a_wrong_count():
    instances = {"images": [{"id": 1, "width": 224, "height": 224, "setting": "water"}],
                 "categories": [{"id": 1, "name": "person"}, {"id": 9, "name": "boat"}],
                 "annotations": [{"image_id": 1, "category_id": 1, "bbox": [20, 20, 80, 80]},
                                 {"image_id": 1, "category_id": 9, "bbox": [120, 120, 60, 60]},
                                 {"image_id": 1, "category_id": 9, "bbox": [20, 150, 60, 60]}]}
    words = "a person rowing near boats on the ocean".split()
    attention = peaked(words, [None, (1, 1), None, None, (5, 5), None, None, None])
    result = EMOJI.metrics([{"image_id": 1, "words": words, "attention": attention}], instances)
    assert result["object_recall"] == result["object_precision"] == 1.0
    assert result["count_accuracy"] == 0.5           # "boats" with no number: not counted right
    assert result["setting_accuracy"] == 1.0 and result["pointing_game"] == 1.0
    assert result["counts"]["pointed"] == 2


def test_pointing_chance_is_the_union_of_the_grown_boxes():
    words = "a hot dog on a table".split()
    result = EMOJI.metrics([{"image_id": 2, "words": words, "attention": peaked(words, [None] * 6)}], INSTANCES)
    assert result["pointing_chance"] == pytest.approx(92 * 92 / 224 ** 2, abs=1e-4)   # 60 px + 2 x 16 px


def test_a_perfect_caption_scores_one():
    words = "two dogs and a cat on the grass".split()
    attention = peaked(words, [None, (0, 0), None, None, (6, 3), None, None, None])
    result = EMOJI.metrics([{"image_id": 1, "words": words, "attention": attention}], INSTANCES)
    assert result["object_recall"] == result["object_precision"] == result["count_accuracy"] == 1.0
    assert result["setting_accuracy"] == 1.0 and result["pointing_game"] == 1.0


def test_wrong_nouns_counts_settings_and_pointing_lower_their_scores():
    words = "a dog and a bird in a room".split()
    attention = peaked(words, [None, (6, 6), None, None, (0, 0), None, None, None])
    result = EMOJI.metrics([{"image_id": 1, "words": words, "attention": attention}], INSTANCES)
    assert result["object_recall"] == 0.5            # the cat is missed
    assert result["object_precision"] == 0.5         # the bird is not there
    assert result["count_accuracy"] == 0.0           # one dog said, two drawn
    assert result["setting_accuracy"] == 0.0 and result["pointing_game"] == 0.0


def test_hot_dog_is_not_a_dog():
    words = "a hot dog on a table".split()
    attention = peaked(words, [None, None, (4, 4), None, None, None])
    result = EMOJI.metrics([{"image_id": 2, "words": words, "attention": attention}], INSTANCES)
    assert result["object_precision"] == 1.0 and result["pointing_game"] == 1.0


def test_pointing_hit_miss_and_chance():
    box = [[0, 0, 64, 64]]                                  # two cells of 32 px, grown by 16 px
    attention = np.zeros((7, 7))
    attention[2, 2] = 1                                     # centre (80, 80): inside 0..80
    assert pointing(attention, box, 224, 224)[0]
    attention = np.zeros((7, 7))
    attention[3, 3] = 1                                     # centre (112, 112): outside
    hit, chance = pointing(attention, box, 224, 224)
    assert not hit and chance == pytest.approx(80 * 80 / 224 ** 2)


REFS = {1: ["a dog on the grass", "a dog in a grassy field"], 2: ["two cats in a room", "two cats in a living room"]}
PERFECT = {1: "a dog on the grass", 2: "two cats in a room"}


def test_caption_scores_are_the_coco_ones():
    perfect = caption_scores(REFS, PERFECT, meteor=False)
    assert perfect["bleu4"] > 0.99 and perfect["cider"] > 1.0 and "meteor" not in perfect
    worse = caption_scores(REFS, {1: "a cat on the road", 2: "a dog on a table"}, meteor=False)
    assert worse["bleu4"] < perfect["bleu4"] and worse["cider"] < perfect["cider"]


def test_caption_scores_without_java_use_the_fallback_tokenizer(monkeypatch):
    """No Java: no PTB tokenizer and no METEOR, but the same BLEU and CIDEr on plain captions."""
    with_java = caption_scores(REFS, {1: "A dog on the grass.", 2: "two cats in a room"}, meteor=False)
    monkeypatch.setattr("captioner.scores.shutil.which", lambda name: None)
    without = caption_scores(REFS, {1: "A dog on the grass.", 2: "two cats in a room"})
    assert "meteor" not in without and without == pytest.approx(with_java)


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_meteor_where_java_runs():
    assert caption_scores(REFS, PERFECT)["meteor"] > 0.99
