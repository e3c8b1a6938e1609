"""The "unlike the training data" measure: fitted on features, carried by a checkpoint, shown per caption."""
import shutil

import numpy as np
import pytest

from captioner import Captioner
from captioner.checkpoint import CheckpointError
from captioner.familiarity import FILE, Familiarity


def world(rng, n, shift=0.0, dims=64):
    """Features of one 'world': most variance in 8 directions, as pooled CNN features have."""
    basis = np.random.default_rng(99).normal(size=(8, dims))
    return rng.normal(size=(n, 8)) @ basis + 0.1 * rng.normal(size=(n, dims)) + shift


def test_held_out_images_pass_and_another_world_is_flagged():
    rng = np.random.default_rng(0)
    stats = Familiarity.fit(world(rng, 2000), world(rng, 500), directions=8, heldout_quantile=0.99)
    assert stats.heldout_rate <= 0.011
    assert np.mean(stats.distances(world(rng, 500)) > stats.threshold) < 0.05    # more of the same world
    assert np.mean(stats.distances(world(rng, 200, shift=1.5)) > stats.threshold) > 0.95
    off_axis = world(rng, 200) + 2.0 * rng.normal(size=(200, 64))                # new directions
    assert np.mean(stats.distances(off_axis) > stats.threshold) > 0.95


def test_saved_and_loaded_alike(tmp_path):
    rng = np.random.default_rng(1)
    stats = Familiarity.fit(world(rng, 300), world(rng, 100), directions=4)
    loaded = Familiarity.load(stats.save(tmp_path / FILE))
    probe = world(rng, 10, shift=0.5)
    np.testing.assert_allclose(loaded.distances(probe), stats.distances(probe), rtol=1e-5)
    assert loaded.threshold == stats.threshold


def test_a_checkpoint_with_statistics_marks_each_caption(trained_checkpoint, coco_fixture, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint[0], folder)
    plain = Captioner.load(folder, use_litert=False)
    images = sorted(coco_fixture[1].iterdir())
    assert plain.caption(images[0]).unfamiliar is None                      # no statistics: not measured
    pooled = plain.features([plain.caption(p).image for p in images]).numpy().mean(axis=1)
    Familiarity.fit(pooled[:8], pooled[8:], directions=4).save(folder / FILE)
    model = Captioner.load(folder, use_litert=False)
    assert model.caption(images[0]).unfamiliar is False                     # a training image
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    caption = model.caption(noise)
    assert caption.unfamiliar is True and caption.to_dict()["unlike_training_data"] is True
    from captioner.web.page import caption_note
    assert "unlike anything this model was trained on" in caption_note(caption)
    assert "unlike" not in caption_note(model.caption(images[0]))


def test_a_broken_statistics_file_is_named(trained_checkpoint, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint[0], folder)
    (folder / FILE).write_bytes(b"not numpy")
    with pytest.raises(CheckpointError, match="familiarity.npz"):
        Captioner.load(folder, use_litert=False)
