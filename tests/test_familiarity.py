"""The "unlike the training data" measure: fitted on features, carried by a checkpoint, shown per caption."""
import shutil

import numpy as np
from PIL import Image
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
    blocks = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)   # 24 px patches of colour:
    caption = model.caption(np.kron(blocks, np.ones((24, 24, 1), np.uint8)))     # no noise, unlike any shape
    assert caption.unfamiliar is True and caption.to_dict()["unlike_training_data"] is True
    from captioner.web.page import caption_note
    assert "unlike anything this model was trained on" in caption_note(caption)
    assert "unlike" not in caption_note(model.caption(images[0])) and model.caption(images[0]).warning is None


@pytest.mark.parametrize("picture, said", [
    (Image.new("RGB", (300, 200), (0, 0, 0)), "flat colour"), (Image.new("RGB", (8, 8), (255, 0, 0)), "flat colour"),
    (Image.new("RGB", (64, 64), (250, 250, 248)), "flat colour"),
    (Image.fromarray(np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)), "random noise"),
    (Image.fromarray(np.random.default_rng(2).integers(0, 256, (90, 120), dtype=np.uint8)).convert("RGB"), "random noise")])
def test_nothing_to_caption_is_said_on_the_pixels(picture, said):
    """Blank and noise images: their features can sit near the training images' (the emoji world's
    plain backgrounds), so the pixels say it."""
    from captioner.familiarity import content_warning
    assert said in content_warning(picture)


def test_photos_and_drawings_are_not_flat_or_noise(coco_fixture):
    from captioner.assets import EXAMPLES
    from captioner.familiarity import content_warning
    pictures = sorted(EXAMPLES.glob("*.jpg")) + sorted(coco_fixture[1].iterdir())
    assert len(pictures) > 12
    for path in pictures:
        with Image.open(path) as picture:
            assert content_warning(picture.convert("RGB")) is None, path.name


def test_a_broken_statistics_file_is_named(trained_checkpoint, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint[0], folder)
    (folder / FILE).write_bytes(b"not numpy")
    with pytest.raises(CheckpointError, match="familiarity.npz"):
        Captioner.load(folder, use_litert=False)
