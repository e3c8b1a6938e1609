"""scripts/probe_features.py: the ceiling probe pools the right cells and learns what is learnable."""
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "scripts"))
    import probe_features
    return probe_features


def test_a_box_covers_the_cells_under_it(probe):
    # 256 px, 8x8 grid: cells of 32 px. A box from x 40 to 99, y 0 to 31 covers columns 1-3, row 0.
    rows, cols = probe.box_cells([40, 0, 60, 32], 256, 8)
    assert (rows, cols) == (slice(0, 1), slice(1, 4))
    assert probe.box_cells([250, 250, 40, 40], 256, 8) == (slice(7, 8), slice(7, 8))   # clipped to the grid


def test_noun_rows_average_the_boxed_cells_only(probe):
    grid = np.zeros((8, 8, 3), np.float32)
    grid[0, 1:4] = [1.0, 2.0, 3.0]   # the boxed cells
    grid[5, 5] = 100.0               # elsewhere: must not leak in
    instances = {"categories": [{"id": 7, "name": "cow"}], "images": [{"id": 1, "file_name": "a.jpg"}],
                 "annotations": [{"image_id": 1, "category_id": 7, "bbox": [40, 0, 60, 32], "stamp": "cow.png"}]}
    pooled, nouns, stamps = probe.noun_rows(instances, lambda name: grid.reshape(64, 3), 256, 8)
    np.testing.assert_allclose(pooled, [[1.0, 2.0, 3.0]])
    assert nouns == ["cow"] and stamps == ["cow.png"]


def test_the_linear_probe_learns_separable_labels_and_not_noise(probe):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 3000)
    centres = rng.normal(size=(4, 16)) * 3
    x = centres[labels] + rng.normal(size=(3000, 16))
    names = [f"class{n}" for n in labels]
    noise = [f"class{n}" for n in rng.integers(0, 4, 3000)]
    scores = probe.linear_probe(x[:2500], names[:2500], {"same": (x[2500:], names[2500:]),
                                                         "unknown": (x[2500:], ["never seen"] * 500)})
    assert scores["same"]["accuracy"] > 0.75 and scores["same"]["rows"] == 500
    assert scores["unknown"] == {"accuracy": None, "rows": 0}   # labels it never learnt are not scored
    chance = probe.linear_probe(x[:2500], noise[:2500], {"held": (x[2500:], noise[2500:])})
    assert chance["held"]["accuracy"] < 0.35
