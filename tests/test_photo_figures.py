"""Figures on labelled real photos beyond the main subject (captioner/photo_figures.py)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from captioner.confidence import platt, scaled_confidence
from captioner.photo_figures import (chair, expected_calibration_error, noun_confidences, noun_steps,
                                     pointing, setting_named, settings)

DOG_ON_SOFA = {"file": "a.jpg", "nouns": ["dog", "puppy"], "objects": ["sofa", "couch", "cushion", "pillow"],
               "setting": "room", "box": [0.1, 0.2, 0.5, 0.9]}
CHEETAH = {"file": "b.jpg", "nouns": ["cheetah", "cat"], "objects": [], "setting": "", "box": [0.5, 0.0, 1.0, 0.5]}


def test_chair_counts_captions_and_objects_that_name_what_is_not_there():
    captions = {"a.jpg": "a dog and a pillow in a room", "b.jpg": "two cheetahs and a pair of scissors on the road"}
    figures = chair(captions, [DOG_ON_SOFA, CHEETAH])
    assert figures["chair_s"] == 0.5                      # one caption of two invents something
    assert figures["nouns_named"] == 4                     # dog, pillow, cheetah, scissors ("road" is a setting)
    assert figures["chair_i"] == 0.25
    assert figures["invented"] == {"b.jpg": ["scissors"]}


def test_settings_said_where_none_is_clear_count_against_precision():
    assert setting_named("a dog on a city street") == "road"
    assert setting_named("a dog") is None
    captions = {"a.jpg": "a dog in a living room", "b.jpg": "a cheetah in the snow"}
    figures = settings(captions, [DOG_ON_SOFA, CHEETAH])
    assert (figures["setting_precision"], figures["setting_recall"]) == (0.5, 1.0)
    figures = settings({"a.jpg": "a dog", "b.jpg": "a cheetah"}, [DOG_ON_SOFA, CHEETAH])
    assert (figures["setting_precision"], figures["setting_recall"]) == (None, 0.0)


def caption(words, probs, attention=None):
    return SimpleNamespace(words=words, probs=np.asarray(probs, np.float32), text=" ".join(words),
                           attention=attention)


def test_a_copied_name_of_two_words_is_one_noun():
    assert noun_steps(["a", "frying pan", "and", "two", "dogs", "on", "the", "road"]) == [(1, "pan"), (4, "dog")]
    pairs = noun_confidences(caption(["a", "dog", "and", "a", "frisbee"], [0.9, 0.8, 0.5, 0.9, 0.3]), DOG_ON_SOFA)
    assert pairs == [(np.float32(0.8), True), (np.float32(0.3), False)]


def test_expected_calibration_error():
    assert expected_calibration_error([]) is None
    assert expected_calibration_error([(0.95, True)] * 19 + [(0.95, False)]) == 0.0
    assert expected_calibration_error([(0.9, False)] * 10) == 0.9
    # two bins: 0.25 said, half right (0.25 off); 0.85 said, all right (0.15 off); equal shares
    assert abs(expected_calibration_error([(0.25, True), (0.25, False), (0.85, True), (0.85, True)]) - 0.2) < 1e-6


def test_platt_scaling_brings_overconfident_nouns_down():
    pairs = [(0.9, True)] * 5 + [(0.9, False)] * 5 + [(0.3, False)] * 8 + [(0.3, True)] * 2
    slope, bias = platt(pairs)
    after = [(float(scaled_confidence(p, slope, bias)), ok) for p, ok in pairs]
    assert expected_calibration_error(after) < 0.05 < expected_calibration_error(pairs)
    assert abs(scaled_confidence(0.9, slope, bias) - 0.5) < 0.05


def test_probabilities_that_say_nothing_become_the_rate_nouns_are_right():
    # The surer, the more often wrong: a fitted slope would be negative (out of a checkpoint's range).
    pairs = [(0.9, False)] * 6 + [(0.9, True)] * 2 + [(0.3, True)] * 6 + [(0.3, False)] * 6
    slope, bias = platt(pairs)
    assert slope == 0.0
    assert scaled_confidence(0.9, slope, bias) == scaled_confidence(0.3, slope, bias) == pytest.approx(8 / 20, abs=1e-3)


def test_the_heads_evidence_makes_the_confidence_tell_right_nouns_from_invented_ones():
    from captioner.confidence import platt_with_evidence
    # The decoder is as sure of both kinds; the head saw the right ones (0.6) and not the others (0.05).
    triples = [(0.8, 0.6, True)] * 8 + [(0.8, 0.6, False)] * 2 + [(0.8, 0.05, False)] * 8 + [(0.8, 0.05, True)] * 2
    slope, reads, bias = platt_with_evidence(triples)
    assert reads > 0
    seen, unseen = (scaled_confidence(0.8, slope, bias, e, reads) for e in (0.6, 0.05))
    assert seen == pytest.approx(0.8, abs=0.05) and unseen == pytest.approx(0.2, abs=0.05)
    assert platt([(p, ok) for p, _, ok in triples]) == (0.0, pytest.approx(0.0, abs=1e-2))   # p alone: no help


def test_pointing_game_reads_the_peak_of_the_step_that_names_the_subject():
    attention = np.zeros((3, 4, 4), np.float32)
    attention[1, 3, 0] = 1.0                              # "dog": bottom-left cell, centre (0.125, 0.875)
    assert pointing(caption(["a", "dog", "indoors"], [1, 1, 1], attention), DOG_ON_SOFA) is True
    attention[1] = 0
    attention[1, 0, 3] = 1.0                              # top-right: outside the dog's box
    assert pointing(caption(["a", "dog", "indoors"], [1, 1, 1], attention), DOG_ON_SOFA) is False
    assert pointing(caption(["a", "cat", "indoors"], [1, 1, 1], attention), DOG_ON_SOFA) is None
    assert pointing(caption(["a", "dog"], [1, 1], attention), {"nouns": ["dog"]}) is None
