"""Settings only when seen (captioner/settings_seen.py): a photograph's caption keeps its setting only
where the encoder's ImageNet head sees it."""
from __future__ import annotations

import numpy as np
import pytest

from captioner.settings_seen import fit_setting_classes, load, random_crops, save, setting_span, unseen_setting_cut

WORDS = "a picture of a dog on the grass".split()


def head(classes: dict[int, float]) -> np.ndarray:
    whole = np.full(1000, (1.0 - sum(classes.values())) / (1000 - len(classes)))
    for k, p in classes.items():
        whole[k] = p
    return whole


def test_the_setting_phrase_is_found_with_its_name():
    assert setting_span(WORDS) == (5, "grass")
    assert setting_span("two cats in front of a building".split()) == (2, "building")
    assert setting_span("a dog".split()) is None


def test_a_setting_the_head_does_not_see_is_cut_and_one_it_sees_kept():
    classes = {"grass": np.array([10, 11])}
    assert unseen_setting_cut(WORDS, head({10: 0.2}), classes, 0.05) is None      # seen: the caption stays whole
    assert unseen_setting_cut(WORDS, head({10: 0.01}), classes, 0.05) == 5        # unseen: "a picture of a dog"
    assert unseen_setting_cut(WORDS, head({10: 0.03, 11: 0.03}), classes, 0.05) is None   # the classes add up
    # A setting no background showed (the emoji world's "sky") is never seen in a photograph.
    assert unseen_setting_cut("a kite in the sky".split(), head({10: 0.9}), classes, 0.05) == 2


def test_the_classes_of_a_setting_are_those_in_the_top_five_of_several_crops():
    crops = np.random.default_rng(0).uniform(0, 1e-3, (16, 1000))   # the rest: a different top each crop
    crops[:, 7] = 0.5                 # every crop: class 7
    crops[:5, 9] = 0.3                # five crops: class 9
    crops[5:7, 8] = 0.4               # two crops only: class 8 (too few)
    assert fit_setting_classes({"beach": [crops]}) == {"beach": [7, 9]}


def test_crops_lie_inside_the_picture():
    from PIL import Image
    crops = random_crops(Image.new("RGB", (300, 120)), np.random.default_rng(0))
    assert len(crops) == 16 and all(48 <= c.size[0] == c.size[1] <= 120 for c in crops)


def test_the_table_loads_only_class_indices(tmp_path):
    assert {k: v.tolist() for k, v in load(save({"room": [1, 2]}, tmp_path / "s.json")).items()} == {"room": [1, 2]}
    (tmp_path / "bad.json").write_text('{"room": [1, 5000]}')
    with pytest.raises(ValueError, match="class indices"):
        load(tmp_path / "bad.json")
