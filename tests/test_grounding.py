"""Attention supervision from boxes: words matched to boxed objects, cells, the loss, and training."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from captioner.config import CheckpointConfig, ModelConfig, TrainConfig
from captioner.data import caption_dataset
from captioner.boxes import box_cells, match_phrases
from captioner.grounding import caption_object_cells, category_phrases
from captioner.worlds import EMOJI, render
from captioner.worlds.metrics import pointing
from captioner.train import fit, grounding_loss
from captioner.vocab import Vocabulary


def test_box_cells_are_the_pointing_games_hits():
    rng = np.random.default_rng(0)
    for _ in range(50):
        boxes = [[*rng.integers(0, 180, 2), *rng.integers(5, 80, 2)] for _ in range(rng.integers(1, 4))]
        cells = box_cells(boxes, 224, 224, 7, 7)
        for peak in range(49):
            attention = np.full(49, 0.01)
            attention[peak] = 1.0
            assert pointing(attention.reshape(7, 7), boxes, 224, 224)[0] == cells.ravel()[peak]


def test_box_cells_grow_boxes_by_half_a_cell():
    cells = box_cells([[32, 32, 32, 32]], 224, 224, 7, 7)      # exactly cell (1, 1), 32 px cells
    assert cells.sum() == 9 and cells[0:3, 0:3].all()           # grown by 16 px: centres at 16 and 80 count
    assert not box_cells([[40, 40, 8, 8]], 224, 224, 7, 7)[0, 0]


def test_phrases_match_longest_first_and_scene_plurals():
    phrases = category_phrases({"hot dog", "dog", "skis", "sports ball"}, EMOJI.category_words())
    words = "two hot dogs next to a dog and three pairs of skis and two sports balls".split()
    assert [(name, start, end) for name, start, end in match_phrases(words, phrases)] == [
        ("hot dog", 1, 2), ("dog", 6, 6), ("skis", 11, 11), ("sports ball", 14, 15)]
    generic = category_phrases({"skis", "dog"})                # without the world's table: name + "s"
    assert [name for name, *_ in match_phrases("two dogs and a pair of skis".split(), generic)] == ["dog", "skis"]


def instances_file(tmp_path):
    instances = {"images": [{"id": 7, "file_name": "a.jpg", "width": 224, "height": 224},
                            {"id": 9, "file_name": "b.jpg", "width": 224, "height": 224}],
                 "categories": [{"id": 18, "name": "dog"}, {"id": 47, "name": "cup"}],
                 "annotations": [{"id": 1, "image_id": 7, "category_id": 18, "bbox": [0, 0, 40, 40]},
                                 {"id": 2, "image_id": 7, "category_id": 18, "bbox": [180, 180, 40, 40]},
                                 {"id": 3, "image_id": 7, "category_id": 47, "bbox": [100, 100, 20, 20]},
                                 {"id": 4, "image_id": 9, "category_id": 47, "bbox": [0, 100, 30, 30]}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(instances))
    return path


def test_caption_object_cells_mark_the_step_that_says_the_noun(tmp_path):
    pairs = [(0, "Two dogs next to a cup."), (1, "a cup and a dog"), (0, "a cup a cup a cup a cup")]
    regions, cells = caption_object_cells(instances_file(tmp_path), [7, 9], pairs, max_words=6, grid=7)
    assert regions.shape == (3, 7) and cells.shape == (3, 49)
    dogs, cup, other_cup = regions[0, 1], regions[0, 5], regions[1, 1]
    assert len({dogs, cup, other_cup}) == 3 and min(dogs, cup, other_cup) >= 0
    assert regions[0].tolist() == [-1, dogs, -1, -1, -1, cup, -1]        # step i says word i
    assert regions[1].tolist() == [-1, other_cup, -1, -1, -1, -1, -1]    # no dog in image 9: not supervised
    assert regions[2].tolist() == [-1, cup, -1, cup, -1, cup, -1]        # cut at 6 words; cells shared
    np.testing.assert_array_equal(cells[dogs], box_cells([[0, 0, 40, 40], [180, 180, 40, 40]], 224, 224, 7, 7).ravel())
    np.testing.assert_array_equal(cells[other_cup], box_cells([[0, 100, 30, 30]], 224, 224, 7, 7).ravel())


def test_a_broken_instances_file_is_named(tmp_path):
    bad = tmp_path / "instances.json"
    bad.write_text('{"images": []}')
    with pytest.raises(ValueError, match="instances.json: not a COCO instances file"):
        caption_object_cells(bad, [1], [(0, "a dog")], 5, 7)


def test_grounding_loss_counts_only_supervised_steps():
    cells = np.zeros((1, 3, 4), np.float32)
    cells[0, 1, :2] = 1.0                                              # step 1 names an object in cells 0-1
    on_object = tf.constant([[[0.25] * 4, [0.5, 0.5, 0, 0], [0, 0, 0, 1.0]]])
    off_object = tf.constant([[[0.25] * 4, [0, 0, 0.5, 0.5], [0.25] * 4]])
    total, steps = grounding_loss(on_object, cells)
    assert float(steps) == 1 and float(total) == pytest.approx(0.0, abs=1e-5)
    assert float(grounding_loss(off_object, cells)[0]) > 10


def toy_world(images=96, grid=3, seed=0):
    """One of four shapes per image in one cell, and a marked target cell elsewhere that is NOT the
    shape: attention left alone goes to the shape, so landing on the target shows the supervision
    steers it."""
    rng = np.random.default_rng(seed)
    shapes = ["square", "circle", "star", "ring"]
    features = rng.normal(0, 0.3, size=(images, grid * grid, 8)).astype(np.float32)
    kinds, places = rng.integers(0, 4, images), rng.integers(0, grid * grid, images)
    features[np.arange(images), places, kinds] += 3.0
    targets = (places + rng.integers(1, grid * grid, images)) % (grid * grid)
    features[np.arange(images), targets, 7] += 3.0
    captions = [f"a {shapes[k]} here" for k in kinds]
    regions = np.full((images, 4), -1, np.int32)
    regions[:, 1] = np.arange(images)                                  # word 1 is the shape
    return features, captions, (regions, np.eye(grid * grid, dtype=np.float32)[targets]), targets


def noun_step_mass(weight, tmp_path):
    """Train on the toy world; -> mean attention on the target cell at the step that says the shape."""
    keras.utils.set_random_seed(0)
    features, captions, grounding, targets = toy_world()
    vocab = Vocabulary.fit(captions)
    tokens = [vocab.encode(c) for c in captions]
    data = caption_dataset(features, np.arange(len(captions)), tokens, 16, 3, shuffle=True, seed=0,
                           drop_remainder=True, grounding=grounding)
    model = ModelConfig(vocab_size=len(vocab), grid_size=3, feature_dim=8, embedding_dim=16, units=32, dropout=0.0)
    train = TrainConfig(out=str(tmp_path / f"w{weight}"), epochs=15, batch_size=16, learning_rate=1e-2,
                        attention_lambda=0.0, attention_supervision=weight)
    fit(CheckpointConfig(model=model, train=train), vocab, data, None, 6, progress=False)
    from captioner.checkpoint import load_checkpoint
    trained = load_checkpoint(train.out).model
    _, attention = trained((tf.constant(features), tf.constant([t[:-1] for t in tokens])))
    return float(np.mean(attention.numpy()[np.arange(len(targets)), 1, targets]))


def test_supervision_steers_the_noun_steps_attention(tmp_path):
    supervised = noun_step_mass(1.0, tmp_path)
    unsupervised = noun_step_mass(0.0, tmp_path)
    print(f"attention on the given cells at the noun step: supervised {supervised:.2f}, "
          f"unsupervised {unsupervised:.2f}")
    assert supervised > 0.8 and unsupervised < 0.3


def test_train_with_boxes_from_the_command_line(tmp_path):
    """The CLI path: scenes with boxes -> features -> training with the box loss -> a checkpoint."""
    import subprocess
    import sys
    render("emoji", tmp_path / "scenes", 12, seed=3, workers=1, image_size=128)
    scenes = tmp_path / "scenes"
    command = [sys.executable, "-m", "captioner", "train", "--captions", str(scenes / "captions.json"),
               "--images", str(scenes / "images"), "--instances", str(scenes / "instances.json"),
               "--attention-supervision", "1.0", "--out", str(tmp_path / "run"), "--epochs", "1",
               "--batch-size", "8", "--units", "32", "--embedding-dim", "16", "--cache", str(tmp_path / "cache")]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert saved["attention_supervision"] == 1.0 and saved["instances"].endswith("instances.json")
    missing = [c for c in command if c != "--instances" and not c.endswith("instances.json")]
    failed = subprocess.run(missing, capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0 and "--attention-supervision needs --instances" in failed.stderr
