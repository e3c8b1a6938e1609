"""scripts/probe_features.py: the probe pools the right cells and learns what is learnable."""
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "scripts"))
    import probe_features
    return probe_features


def test_noun_rows_average_the_cells_attention_is_supervised_on(probe):
    # 256 px, 8x8 grid: cells of 32 px. Grown by half a cell, the box x 40-100, y 0-32 takes the
    # cells whose centres lie in x 24-116, y -16-48: columns 1-3 of rows 0-1 (boxes.box_cells).
    grid = np.full((8, 8, 3), 100.0, np.float32)   # elsewhere: must not leak in
    grid[0:2, 1:4] = [1.0, 2.0, 3.0]
    grid[0, 1] = [3.0, 4.0, 5.0]
    instances = {"categories": [{"id": 7, "name": "cow"}],
                 "images": [{"id": 1, "file_name": "a.jpg", "width": 256, "height": 256}],
                 "annotations": [{"image_id": 1, "category_id": 7, "bbox": [40, 0, 60, 32], "stamp": "cow.png"}]}
    pooled, nouns = probe.noun_rows(instances, lambda name: grid.reshape(64, 3), 8)
    np.testing.assert_allclose(pooled, [[1 + 2 / 6, 2 + 2 / 6, 3 + 2 / 6]])
    assert nouns == ["cow"]


def test_the_probe_learns_separable_labels_and_not_noise(probe):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 3000)
    centres = rng.normal(size=(4, 16)) * 3
    x = centres[labels] + rng.normal(size=(3000, 16))
    names = [f"class{n}" for n in labels]
    noise = [f"class{n}" for n in rng.integers(0, 4, 3000)]
    scores = probe.fit_probe(x[:2500], names[:2500], {"same": (x[2500:], names[2500:]),
                                                      "unknown": (x[2500:], ["never seen"] * 500)})
    assert scores["same"]["accuracy"] > 0.75 and scores["same"]["rows"] == 500
    assert scores["unknown"] == {"accuracy": None, "rows": 0}   # labels it never learnt are not scored
    chance = probe.fit_probe(x[:2500], noise[:2500], {"held": (x[2500:], noise[2500:])})
    assert chance["held"]["accuracy"] < 0.35


def test_the_hidden_layer_reads_what_no_linear_probe_can(probe):
    rng = np.random.default_rng(1)
    signs = rng.normal(size=(4000, 2))
    names = ["same sign" if a * b > 0 else "signs differ" for a, b in signs]   # XOR: no line splits it
    x = np.repeat(signs, 8, axis=1) + 0.1 * rng.normal(size=(4000, 16))     # copies survive the input dropout
    tests = {"held": (x[3000:], names[3000:])}
    linear = probe.fit_probe(x[:3000], names[:3000], tests, epochs=30)
    deep = probe.fit_probe(x[:3000], names[:3000], tests, epochs=30, hidden=64)
    assert linear["held"]["accuracy"] < 0.65 < 0.85 < deep["held"]["accuracy"]
