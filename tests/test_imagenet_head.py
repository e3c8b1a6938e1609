"""The encoder's ImageNet head as extra decoder input (ModelConfig.imagenet_head)."""
import dataclasses
import json

import numpy as np
import pytest

from captioner import Captioner
from captioner.config import CheckpointConfig, ModelConfig, TrainConfig
from captioner.model import build_model


def test_the_head_is_the_encoders_and_stays_frozen():
    config = ModelConfig(vocab_size=20, embedding_dim=8, units=16, grid_size=2, imagenet_head="softmax")
    model = build_model(config, head_weights="default")
    stored = np.load("assets/encoders/efficientnet_lite0.npz")
    np.testing.assert_array_equal(model.imagenet_fc.get_weights()[0], stored["fc/kernel"].astype(np.float32))
    assert not any("imagenet_fc" in v.path for v in model.trainable_variables)
    features = np.random.default_rng(0).random((2, 4, 1280)).astype(np.float32)
    projected, keys, hidden = model.encode(features)
    assert hidden.shape == (2, 16 + 8)                          # the evidence rides at the state's end
    logits, new_hidden, attention = model.step(np.array([1, 1]), hidden, projected, keys)
    assert logits.shape == (2, 20) and attention.shape == (2, 4) and new_hidden.shape == (2, 24)
    np.testing.assert_array_equal(new_hidden[:, 16:], hidden[:, 16:])


def test_a_model_with_the_head_trains_saves_loads_and_captions(coco_fixture, tmp_path):
    from captioner.train import train
    captions, images = coco_fixture
    out = tmp_path / "ckpt"
    config = TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=6,
                         batch_size=8, learning_rate=1e-2, val_fraction=0.2)
    history = train(config, ModelConfig(embedding_dim=16, units=32, dropout=0.0, max_length=8,
                                        imagenet_head="softmax"), tmp_path / "cache", progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert json.loads((out / "config.json").read_text())["model"]["imagenet_head"] == "softmax"
    captioner = Captioner.load(out)
    stored = np.load("assets/encoders/efficientnet_lite0.npz")
    np.testing.assert_allclose(captioner.checkpoint.model.imagenet_fc.get_weights()[1], stored["fc/bias"], rtol=1e-3)
    path = sorted(images.iterdir())[0]
    greedy, beam = captioner.caption(path), captioner.caption(path, strategy="beam", beam_size=3)
    assert greedy.words and greedy.attention.shape == (len(greedy.words), 7, 7)
    assert beam.words


def test_an_old_config_without_the_field_loads_as_the_plain_model():
    old = json.loads(CheckpointConfig(ModelConfig(), TrainConfig()).to_json())
    del old["model"]["imagenet_head"]
    config = CheckpointConfig.from_dict(old)
    assert config.model.imagenet_head == "none"
    model = build_model(config.model)
    assert not hasattr(model, "imagenet_fc")
    assert not any("imagenet" in v.path for v in model.weights)


def test_a_word_prior_config_from_before_the_scale_field_loads_as_it_was_trained():
    old = json.loads(CheckpointConfig(ModelConfig(imagenet_head="softmax", imagenet_words=True), TrainConfig()).to_json())
    old["version"], old["model"]["word_prior"] = 1, "attended"
    del old["model"]["word_prior_scale"]
    config = CheckpointConfig.from_dict(old)
    assert config.model.word_prior_scale == 8.0 and config.version == 2   # the constant those checkpoints used
    assert "word_prior" not in json.loads(config.to_json())["model"]
    assert CheckpointConfig.from_dict(json.loads(config.to_json())) == config   # and it saves as it loads


RETIRED_VALUES = [("attention_gate", True, False), ("attention_count", False, True), ("initial_state", "mean", "zeros"),
                  ("word_prior", "attended", "image")]


@pytest.mark.parametrize("field, built, other", RETIRED_VALUES)
def test_a_retired_knob_loads_at_the_value_built_and_is_refused_in_one_line_at_any_other(field, built, other):
    """The experiments measured and not shipped (config.RETIRED): an old checkpoint that used the
    value this code builds loads; one that used the experiment is refused, naming the field."""
    old = json.loads(CheckpointConfig(ModelConfig(imagenet_head="softmax", imagenet_words=True), TrainConfig()).to_json())
    old["version"], old["model"]["word_prior"] = 1, "attended"
    old["model"][field] = built
    assert field not in json.loads(CheckpointConfig.from_dict(old).to_json())["model"]
    old["model"][field] = other
    with pytest.raises(ValueError, match=f"^model.{field} = .* is a retired experiment") as refused:
        CheckpointConfig.from_dict(old)
    assert "\n" not in str(refused.value)
    assert field not in {f.name for f in __import__("dataclasses").fields(ModelConfig)}


def test_a_version_1_word_prior_without_its_place_meant_the_image_prior_and_is_refused():
    old = json.loads(CheckpointConfig(ModelConfig(imagenet_head="softmax", imagenet_words=True), TrainConfig()).to_json())
    old["version"] = 1
    with pytest.raises(ValueError, match='model.word_prior = "image" is a retired experiment'):
        CheckpointConfig.from_dict(old)
    old["model"]["imagenet_words"] = False   # without the prior, where it looked never mattered
    assert CheckpointConfig.from_dict(old).model.imagenet_words is False
    old["model"]["imagenet_head"] = "logits"
    with pytest.raises(ValueError, match='model.imagenet_head = "logits" is a retired experiment'):
        CheckpointConfig.from_dict(old)


def test_an_unknown_head_kind_is_refused():
    data = json.loads(CheckpointConfig().to_json())
    data["model"]["imagenet_head"] = "top5"
    with pytest.raises(ValueError, match="imagenet_head"):
        CheckpointConfig.from_dict(data)


def test_the_word_map_takes_classes_to_the_nouns_they_name():
    from captioner.word_map import names, word_map
    from captioner.vocab import Vocabulary
    assert names(207, "dog") and names(281, "cat") and names(504, "mug") and not names(207, "cat")
    vocab = Vocabulary.fit(["a dog and two cats", "a coffee mug", "a teddy bear"], 100)
    matrix = word_map(vocab)
    dog, cat = vocab.index["dog"], vocab.index["cats"]
    assert matrix[207, dog] == 1 and matrix[281, cat] == 1 and matrix[207, cat] == 0
    assert matrix[:, vocab.index["a"]].sum() == 0


def test_the_word_map_corrections_name_the_everyday_word_and_drop_other_senses():
    from collections import Counter
    from captioner.word_map import ALSO_NAMES, NOT_NAMES, _table, names, world_nouns
    first_names = Counter(_table()[str(c)]["own"][0] for c in range(1000))
    index = {name: c for c, name in ((c, _table()[str(c)]["own"][0]) for c in range(1000))}
    nouns = {noun for noun, _ in world_nouns()}
    for table, expected in ((ALSO_NAMES, True), (NOT_NAMES, False)):
        for name, words in table.items():
            assert first_names[name] == 1, f"{name!r} must name exactly one class"
            for word in words:
                assert word in nouns, f"{word!r} is no noun of the two worlds"
                assert names(index[name], word) is expected, (name, word)
    import captioner.word_map as word_map_module
    with pytest.MonkeyPatch.context() as patch:   # each correction changes what the plain rule says
        patch.setattr(word_map_module, "ALSO_NAMES", {})
        patch.setattr(word_map_module, "NOT_NAMES", {})
        for table, expected in ((ALSO_NAMES, True), (NOT_NAMES, False)):
            for name, words in table.items():
                for word in words:
                    assert names(index[name], word) is not expected, (name, word)
    # The rule without corrections gets these wrong; the corrections do not touch the rest.
    assert names(index["ox"], "cow") and names(index["hen"], "chicken") and not names(index["hen"], "cow")
    assert not names(index["hippopotamus"], "horse") and names(index["sorrel"], "horse")
    assert names(index["hippopotamus"], "hippo") and not names(index["sea lion"], "lion") and names(index["lion"], "lion")


@pytest.mark.parametrize("rules", [False, True])
def test_a_model_with_the_word_prior_round_trips(coco_fixture, tmp_path, rules):
    from captioner.checkpoint import load_checkpoint
    from captioner.train import train
    captions, images = coco_fixture
    out = tmp_path / "ckpt"
    config = TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=2,
                         batch_size=8, learning_rate=1e-2, val_fraction=0.2)
    train(config, ModelConfig(embedding_dim=16, units=32, dropout=0.0, max_length=8,
                              imagenet_head="softmax", imagenet_words=True,
                              word_prior_once=rules, word_prior_first_word=not rules),
          tmp_path / "cache", progress=False)
    first, second = Captioner.load(out), Captioner.load(out, use_litert=False)
    from captioner import litert
    if litert.available():   # the state's spent classes and the first-word mask convert too
        assert first.greedy_on_litert is not None
    path = sorted(images.iterdir())[0]
    a, b = first.caption(path), second.caption(path)   # LiteRT's greedy loop (where installed) and TF's
    assert a.text == b.text and a.words
    np.testing.assert_allclose(a.probs, b.probs, rtol=1e-3, atol=1e-4)
    beam = first.caption(path, strategy="beam", beam_size=3)
    assert beam.words and beam.attention.shape == (len(beam.words), 7, 7)
    loaded = load_checkpoint(out).model
    assert loaded.word_prior.word_map.shape == (1000, len(first.vocab))
    with pytest.raises(ValueError, match="imagenet_words needs"):
        build_model(ModelConfig(vocab_size=20, imagenet_words=True))
    with pytest.raises(ValueError, match="word_prior_once needs"):
        build_model(ModelConfig(vocab_size=20, imagenet_head="softmax", word_prior_once=True))


def test_each_class_speaks_once_and_not_to_the_first_word():
    config = ModelConfig(vocab_size=20, embedding_dim=8, units=16, grid_size=2, imagenet_head="softmax",
                         imagenet_words=True, word_prior_scale=100.0,
                         word_prior_once=True, word_prior_first_word=False)
    model = build_model(config, head_weights="default")
    word_map = np.zeros((1000, 20), np.float32)
    word_map[10, [10, 11]] = 1.0    # class 10 names a noun whose two forms are words 10 and 11
    word_map[12, 12] = 1.0
    model.word_prior.word_map.assign(word_map)
    features = np.random.default_rng(0).random((1, 4, 1280)).astype(np.float32)
    projected, keys, hidden = model.encode(features)
    assert hidden.shape == (1, 16 + 8 + 1000)                    # the spent classes ride at the end

    def prior(tokens, hidden):
        """-> what the prior added to the step's logits (1, V), and the state after the step."""
        spoken, after, _ = model.step(np.array(tokens), hidden, projected, keys)
        model.config.word_prior_scale = 0.0
        silent, _, _ = model.step(np.array(tokens), hidden, projected, keys)
        model.config.word_prior_scale = 100.0
        return (spoken - silent).numpy()[0], after

    first, hidden = prior([1], hidden)                          # <start>: the first word
    assert np.abs(first).max() < 1e-6
    later, hidden = prior([5], hidden)                          # a word no class names
    assert later[[10, 11, 12]].min() > 0 and np.abs(np.delete(later, [10, 11, 12])).max() < 1e-6
    after_noun, hidden = prior([11], hidden)                    # the plural said: class 10 is spent
    assert np.abs(after_noun[[10, 11]]).max() < 1e-6 and after_noun[12] > 0
    assert hidden.numpy()[0, -1000:][[10, 12]].tolist() == [1.0, 0.0]


def test_the_attended_prior_is_the_head_on_the_attended_cells():
    config = ModelConfig(vocab_size=20, embedding_dim=8, units=16, grid_size=2, imagenet_head="softmax",
                         imagenet_words=True)
    model = build_model(config, head_weights="default")
    features = np.random.default_rng(0).random((2, 4, 1280)).astype(np.float32)
    projected, keys, hidden = model.encode(features)
    assert keys.shape == (2, 4, 16 + 1280)                      # the cells ride on the keys
    np.testing.assert_array_equal(keys[..., 16:].numpy(), features)
    cells = model.imagenet_fc(features).numpy()                 # (2, 4, 1000): each cell's class logits
    # The head is linear: the mean of the cells' logits is the head on the mean-pooled features, so
    # uniform attention gives the "image" prior, and a peaked one the prior of the cell it looks at.
    pooled = model.imagenet_fc(features.mean(axis=1)).numpy()
    np.testing.assert_allclose(cells.mean(axis=1), pooled, rtol=1e-4, atol=1e-3)
    model.word_prior.word_map.assign(np.eye(1000, 20, dtype=np.float32))   # class k names word k (k < 20)
    logits, _, weights = model.step(np.array([1, 1]), hidden, projected, keys)
    attended = np.einsum("bn,bnk->bk", weights.numpy(), cells)
    mass = np.minimum(tf_softmax(attended) @ model.word_prior.word_map.numpy(), 1.0)
    model.word_prior.word_map.assign(np.zeros((1000, 20), np.float32))     # the same step without the prior
    plain, _, _ = model.step(np.array([1, 1]), hidden, projected, keys)
    prior = (logits - plain).numpy()
    assert np.all(prior >= -1e-5) and prior.max() > 0
    np.testing.assert_allclose(prior / prior.max(axis=1, keepdims=True), mass / mass.max(axis=1, keepdims=True),
                               rtol=1e-3, atol=1e-5)


def tf_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_calibration_keeps_the_trained_scale_unless_a_louder_one_names_more_without_breaking():
    from captioner.calibrate import choose_scale
    measured = lambda emoji, photos, broken: {"emoji_recall": emoji, "photo_recall": photos, "broken": broken}
    results = {16.0: measured(0.96, 0.5, 1), 32.0: measured(0.95, 0.6, 1), 64.0: measured(0.96, 0.8, 2),
               96.0: measured(0.90, 0.9, 0)}
    assert choose_scale(results, 16.0, 0.93) == 32.0     # 64 breaks more captions, 96 loses emoji recall
    results[32.0]["photo_recall"] = 0.5
    assert choose_scale(results, 16.0, 0.93) == 16.0     # a tie goes to the smaller scale
    assert choose_scale({16.0: measured(0.5, 0.1, 9)}, 16.0, 0.93) == 16.0   # the trained scale is always a choice


def test_calibration_writes_the_chosen_scale_and_keeps_the_trained_one(coco_fixture, tmp_path, monkeypatch):
    """captioner/calibrate.py on a trained run: each candidate scale is measured by captioning, the
    choice goes into the run's config.json and the trained scale beside the training history."""
    from captioner import calibrate
    from captioner.checkpoint import TRAIN_STATE
    from captioner.recipe import load_recipe
    from captioner.train import train
    import captioner.evaluate
    import captioner.subjects
    captions, images = coco_fixture
    out = tmp_path / "run"
    train(TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=1, batch_size=8,
                      val_fraction=0.2),
          ModelConfig(embedding_dim=16, units=32, max_length=8, imagenet_head="softmax", imagenet_words=True,
                      word_prior_scale=16.0), tmp_path / "cache", progress=False)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps([{"file": "foolbox/a.jpg", "nouns": ["cat"]}, {"file": "foolbox/b.jpg", "nouns": ["dog"]},
                                  {"file": "opencv-doc/c.jpg", "nouns": ["cow"]}]))
    # What each scale writes of the two calibration photos: the louder, the more it names; 64 and 96 break.
    said = {16.0: ("a bird", "a bird"), 32.0: ("a cat", "a bird"), 64.0: ("a cat and a cat", "a dog"),
            96.0: ("cats cats", "dogs in a dog")}
    seen = []
    # (noun confidences are fitted on captions as objects: none here, so none are fitted)
    monkeypatch.setattr(captioner.subjects, "caption_photos", lambda model, photos, folder, objects=False: seen.append(photos)
                        or ({} if objects else dict(zip(("foolbox/a.jpg", "foolbox/b.jpg"), said[model.config.word_prior_scale]))))
    monkeypatch.setattr(captioner.evaluate, "evaluate", lambda *a, **k: {"object_recall": 0.95})
    monkeypatch.setattr(captioner.subjects, "in_vocabulary", lambda nouns, vocabulary: True)
    recipe = dataclasses.replace(load_recipe().calibration, source="foolbox", copy_weights=(0.0,))
    bars = load_recipe().floors["validation"]
    result = calibrate.calibrate_word_prior(out, recipe, tmp_path, labels, tmp_path,
                                            (bars["not_calibrated_setting_precision"], bars["not_calibrated_setting_recall"]))
    assert all(p["file"].startswith("foolbox/") for photos in seen for p in photos)   # the recipe's source only
    assert [v["broken"] for v in result["candidates"].values()] == [0, 0, 1, 2]
    assert [v["photo_recall"] for v in result["candidates"].values()] == [0.0, 0.5, 1.0, 1.0]
    assert result["scale"] == 32.0                                # 64 and 96 name more, but break
    assert json.loads((out / "config.json").read_text())["model"]["word_prior_scale"] == 32.0
    assert json.loads((out / TRAIN_STATE).read_text())["trained_word_prior_scale"] == 16.0
    assert result["copy"]["weight"] == 0.0 and result["confidence"]["slope"] == 1.0   # no copy path, nothing fitted


def test_calibration_photos_are_every_second_in_file_order_or_one_source():
    from captioner.calibrate import calibration_photos
    labels = [{"file": f"{source}/{n}.jpg"} for source in ("b", "a") for n in range(3)]
    assert [p["file"] for p in calibration_photos(labels, "alternate")] == ["a/0.jpg", "a/2.jpg", "b/1.jpg"]
    assert [p["file"] for p in calibration_photos(labels, "b")] == ["b/0.jpg", "b/1.jpg", "b/2.jpg"]


def test_a_checkpoint_saved_before_the_word_prior_had_its_own_layer_loads_unchanged(tmp_path):
    """Keras files weights by attribute: before model.WordPrior the gate and map sat at
    layers/dense_5 and the model's own vars (checkpoint.LEGACY_WEIGHT_PATHS), as in every checkpoint
    saved before 2026-12. Such a file loads with every weight where it was."""
    import h5py
    from captioner.checkpoint import LEGACY_WEIGHT_PATHS, load_checkpoint, save_checkpoint
    from captioner.vocab import Vocabulary
    vocab = Vocabulary.fit(["a dog and two cats", "a coffee mug"], 100)
    config = ModelConfig(vocab_size=len(vocab), embedding_dim=8, units=16, grid_size=2, imagenet_head="softmax",
                         imagenet_words=True)
    model = build_model(config, head_weights="default", vocab=vocab)
    model.word_prior.gate.set_weights([np.full((16, 1), 0.25, np.float32), np.float32([0.5])])
    path = save_checkpoint(tmp_path / "ckpt", model, vocab, CheckpointConfig(model=config))
    with h5py.File(path / "model.weights.h5", "r+") as stored:   # back to the old layout
        for old, new in LEGACY_WEIGHT_PATHS.items():
            if old in stored:
                del stored[old]
            stored.move(new, old)
        del stored["layers/word_prior"]
        assert "layers/dense_5/vars/0" in stored and "vars/0" in stored
    loaded = load_checkpoint(path).model
    for saved, read in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(saved.numpy(), read.numpy(), err_msg=saved.path)
    assert loaded.word_prior.word_map.numpy().sum() > 0 and loaded.word_prior.gate.get_weights()[1][0] == 0.5


def test_calibration_encodes_each_image_once_for_every_candidate(monkeypatch):
    """calibrate.RememberedFeatures: the candidates decode the same images; the second asks for
    features already made and gets the very same numbers, without encoding again."""
    from captioner.calibrate import RememberedFeatures
    from captioner.encoders import build_encoder
    monkeypatch.setattr(RememberedFeatures, "_rows", {})
    encoder = build_encoder("efficientnet_lite0", None, 96)
    calls = []
    encode = encoder.image_features
    encoder.image_features = lambda images: calls.append(len(images)) or encode(images)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    first = RememberedFeatures(encoder).image_features(images[:2]).numpy()
    again = RememberedFeatures(encoder).image_features(images).numpy()    # another candidate's encoder
    assert calls == [2, 1]                                               # only the new image was encoded
    np.testing.assert_array_equal(again, np.concatenate([first, encode(images[2:]).numpy()]))
    np.testing.assert_array_equal(first, encode(images[:2]).numpy())
    assert RememberedFeatures(encoder).grid_size == encoder.grid_size == 3
