"""Attention pictures: heat lands where the attention is; figures, GIFs, thread safety, bad input."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from captioner.web.heatmaps import (attention_figure, attention_gif, overlay, save_attention_figure,
                                 save_attention_gif, upsample, word_overlays)

IMAGE = Image.new("RGB", (640, 480), (128, 128, 128))


def corner_map():
    grid = np.full((7, 7), 0.001)
    grid[0, 0] = 1.0
    return grid / grid.sum()


def test_upsample_is_smooth_and_normalised():
    up = upsample(corner_map(), (140, 70))
    assert up.shape == (70, 140) and up.max() == pytest.approx(1.0, abs=0.02) and up.min() >= 0
    assert len(np.unique(np.round(up[:20, :40], 3))) > 20        # graded, not blocks


def test_overlay_heat_is_where_the_attention_is():
    picture = np.asarray(overlay(IMAGE, corner_map()), np.float32)
    assert picture.shape == (384, 512, 3)                          # max_side 512 keeps the aspect
    red_minus_blue = picture[..., 0] - picture[..., 2]
    assert red_minus_blue[:40, :50].mean() > 60 > red_minus_blue[-100:, -100:].mean()


def test_word_overlays_labels_and_sizes():
    maps = np.stack([corner_map()] * 3)
    items = word_overlays(IMAGE, ["a", "red", "square"], maps, [0.9, 0.456, 1.0])
    assert [label for _, label in items] == ["a (0.90)", "red (0.46)", "square (1.00)"]
    assert all(im.size == (384, 288) and im.mode == "RGB" for im, _ in items)


def test_figure_and_gif(tmp_path):
    words = ["w"] * 12
    maps = np.stack([corner_map()] * 12)
    small, big = attention_figure(IMAGE, words[:3], maps[:3]), attention_figure(IMAGE, words, maps)
    assert big.size[1] > 2 * small.size[1] and big.size[0] >= small.size[0]
    assert Image.open(save_attention_figure(tmp_path / "f.png", IMAGE, words, maps)).format == "PNG"
    gif = Image.open(save_attention_gif(tmp_path / "a.gif", IMAGE, words[:4], maps[:4], frame_ms=500))
    assert gif.n_frames == 4 and gif.info["loop"] == 0 and gif.info["duration"] == 500
    assert len(attention_gif(IMAGE, words[:2], maps[:2])) == 2


def test_mismatched_or_empty_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="2 words but 3 attention maps"):
        word_overlays(IMAGE, ["a", "b"], np.zeros((3, 7, 7)), [0.1, 0.2])
    with pytest.raises(ValueError, match="no words"):
        attention_figure(IMAGE, [], np.zeros((0, 7, 7)))
    with pytest.raises(ValueError, match="shape"):
        attention_gif(IMAGE, ["a"], np.zeros((7, 7)))


def test_figures_made_in_threads_equal_sequential_ones():
    maps = np.random.default_rng(0).dirichlet(np.ones(49), size=5).reshape(5, 7, 7)
    make = lambda k: np.asarray(attention_figure(IMAGE, [f"w{k}"] * 5, maps))
    sequential = [make(k) for k in range(6)]
    with ThreadPoolExecutor(6) as pool:
        threaded = list(pool.map(make, range(6)))
    assert all(np.array_equal(a, b) for a, b in zip(sequential, threaded))
