"""The encoder's ImageNet head as extra decoder input (ModelConfig.imagenet_head)."""
import json

import numpy as np
import pytest

from captioner import Captioner
from captioner.config import CheckpointConfig, ModelConfig, TrainConfig
from captioner.model import build_model


@pytest.mark.parametrize("head", ["softmax", "logits"])
def test_the_head_is_the_encoders_and_stays_frozen(head):
    config = ModelConfig(vocab_size=20, embedding_dim=8, units=16, grid_size=2, imagenet_head=head)
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


def test_a_word_prior_config_from_before_the_scale_and_place_fields_loads_as_it_was_trained():
    old = json.loads(CheckpointConfig(ModelConfig(imagenet_head="softmax", imagenet_words=True), TrainConfig()).to_json())
    del old["model"]["word_prior"], old["model"]["word_prior_scale"]
    model = CheckpointConfig.from_dict(old).model
    assert (model.word_prior, model.word_prior_scale) == ("image", 8.0)   # the constant those checkpoints used


def test_an_unknown_head_kind_is_refused():
    data = json.loads(CheckpointConfig().to_json())
    data["model"]["imagenet_head"] = "top5"
    with pytest.raises(ValueError, match="imagenet_head"):
        CheckpointConfig.from_dict(data)


def test_the_word_map_takes_classes_to_the_nouns_they_name():
    from captioner.imagenet_words import names, word_map
    from captioner.vocab import Vocabulary
    assert names(207, "dog") and names(281, "cat") and names(504, "mug") and not names(207, "cat")
    vocab = Vocabulary.fit(["a dog and two cats", "a coffee mug", "a teddy bear"], 100)
    matrix = word_map(vocab)
    dog, cat = vocab.index["dog"], vocab.index["cats"]
    assert matrix[207, dog] == 1 and matrix[281, cat] == 1 and matrix[207, cat] == 0
    assert matrix[:, vocab.index["a"]].sum() == 0


def test_the_word_map_corrections_name_the_everyday_word_and_drop_other_senses():
    from collections import Counter
    from captioner.imagenet_words import ALSO_NAMES, NOT_NAMES, _table, names, world_nouns
    first_names = Counter(_table()[str(c)]["own"][0] for c in range(1000))
    index = {name: c for c, name in ((c, _table()[str(c)]["own"][0]) for c in range(1000))}
    nouns = {noun for noun, _ in world_nouns()}
    for table, expected in ((ALSO_NAMES, True), (NOT_NAMES, False)):
        for name, words in table.items():
            assert first_names[name] == 1, f"{name!r} must name exactly one class"
            for word in words:
                assert word in nouns, f"{word!r} is no noun of the two worlds"
                assert names(index[name], word) is expected, (name, word)
    import captioner.imagenet_words as imagenet_words
    with pytest.MonkeyPatch.context() as patch:   # each correction changes what the plain rule says
        patch.setattr(imagenet_words, "ALSO_NAMES", {})
        patch.setattr(imagenet_words, "NOT_NAMES", {})
        for table, expected in ((ALSO_NAMES, True), (NOT_NAMES, False)):
            for name, words in table.items():
                for word in words:
                    assert names(index[name], word) is not expected, (name, word)
    # The rule without corrections gets these wrong; the corrections do not touch the rest.
    assert names(index["ox"], "cow") and names(index["hen"], "chicken") and not names(index["hen"], "cow")
    assert not names(index["hippopotamus"], "horse") and names(index["sorrel"], "horse")
    assert names(index["hippopotamus"], "hippo") and not names(index["sea lion"], "lion") and names(index["lion"], "lion")


@pytest.mark.parametrize("where, counts, rules", [("image", False, False), ("attended", False, False),
                                                   ("attended", True, True)])
def test_a_model_with_the_word_prior_round_trips(coco_fixture, tmp_path, where, counts, rules):
    from captioner.checkpoint import load_checkpoint
    from captioner.train import train
    captions, images = coco_fixture
    out = tmp_path / "ckpt"
    config = TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=2,
                         batch_size=8, learning_rate=1e-2, val_fraction=0.2)
    train(config, ModelConfig(embedding_dim=16, units=32, dropout=0.0, max_length=8,
                              imagenet_head="softmax", imagenet_words=True, word_prior=where,
                              attention_count=counts, word_prior_once=rules, word_prior_first_word=not rules),
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
    assert loaded.word_map.shape == (1000, len(first.vocab))
    with pytest.raises(ValueError, match="imagenet_words needs"):
        build_model(ModelConfig(vocab_size=20, imagenet_words=True))
    with pytest.raises(ValueError, match="word_prior_once needs"):
        build_model(ModelConfig(vocab_size=20, imagenet_head="softmax", imagenet_words=True, word_prior="image",
                                word_prior_once=True))


def test_each_class_speaks_once_and_not_to_the_first_word():
    config = ModelConfig(vocab_size=20, embedding_dim=8, units=16, grid_size=2, imagenet_head="softmax",
                         imagenet_words=True, word_prior="attended", word_prior_scale=100.0,
                         word_prior_once=True, word_prior_first_word=False)
    model = build_model(config, head_weights="default")
    word_map = np.zeros((1000, 20), np.float32)
    word_map[10, [10, 11]] = 1.0    # class 10 names a noun whose two forms are words 10 and 11
    word_map[12, 12] = 1.0
    model.word_map.assign(word_map)
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
                         imagenet_words=True, word_prior="attended")
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
    model.word_map.assign(np.eye(1000, 20, dtype=np.float32))   # class k names word k (k < 20)
    logits, _, weights = model.step(np.array([1, 1]), hidden, projected, keys)
    attended = np.einsum("bn,bnk->bk", weights.numpy(), cells)
    mass = np.minimum(tf_softmax(attended) @ model.word_map.numpy(), 1.0)
    model.word_map.assign(np.zeros((1000, 20), np.float32))     # the same step without the prior
    plain, _, _ = model.step(np.array([1, 1]), hidden, projected, keys)
    prior = (logits - plain).numpy()
    assert np.all(prior >= -1e-5) and prior.max() > 0
    np.testing.assert_allclose(prior / prior.max(axis=1, keepdims=True), mass / mass.max(axis=1, keepdims=True),
                               rtol=1e-3, atol=1e-5)


def tf_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_make_model_rebuilds_a_trained_runs_word_map_and_keeps_the_rest(coco_fixture, tmp_path, monkeypatch):
    """`make_model.py --finish-only --rebuild-word-map`: the map is a fixed table, so a trained run
    can take today's; every other weight and every other file of the run stay as they were."""
    from pathlib import Path
    from captioner.checkpoint import WEIGHTS, load_checkpoint, save_checkpoint
    from captioner.imagenet_words import word_map
    from captioner.train import train
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "scripts"))
    import make_model
    captions, images = coco_fixture
    out = tmp_path / "run"
    train(TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=1, batch_size=8,
                      val_fraction=0.2),
          ModelConfig(embedding_dim=16, units=32, max_length=8, imagenet_head="softmax", imagenet_words=True),
          tmp_path / "cache", progress=False)
    stale = load_checkpoint(out)   # as if trained with a wrong table: every class names every word
    stale.model.word_map.assign(np.ones_like(stale.model.word_map.numpy()))
    save_checkpoint(out, stale.model, stale.vocab, stale.config, stale.card, train_state={"history": []})
    (out / "heldout_figures.json").write_text("{}")
    others = {p.name: p.read_bytes() for p in out.iterdir() if p.name != WEIGHTS}
    make_model.rebuild_word_map(out)
    rebuilt = load_checkpoint(out)
    expected = word_map(rebuilt.vocab)
    np.testing.assert_array_equal(rebuilt.model.word_map.numpy(), expected)
    for old, new in zip(stale.model.weights, rebuilt.model.weights):
        if old.name != "imagenet_word_map":
            np.testing.assert_array_equal(old.numpy(), new.numpy(), err_msg=old.name)
    mark = out / make_model.REBUILT_MARK
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name not in (WEIGHTS, mark.name)} == others
    rebuilds = json.loads(mark.read_text())["rebuilds"]
    assert [r["cells_changed"] for r in rebuilds] == [int((expected != 1).sum())] and rebuilds[0]["cells_changed"] > 0
    make_model.rebuild_word_map(out)   # nothing left to change: the mark keeps the first rebuild
    assert json.loads(mark.read_text())["rebuilds"] == rebuilds
    text = make_model.rebuilt_text(json.loads(mark.read_text()))
    assert "rebuilt after training" in text and f"{rebuilds[0]['cells_changed']} (class, word)" in text
    assert make_model.rebuilt_text(None) == ""


@pytest.mark.parametrize("where", ["attended", "image"])
def test_calibration_applies_the_rules_and_refuses_a_scale_that_breaks_captions(coco_fixture, tmp_path,
                                                                                monkeypatch, where):
    """make_model's calibration: the rules of speech go into the decoding config (only for the
    attended prior they apply to), the trained ones are kept, and a louder scale that names more
    photos but breaks more captions than the trained scale is not chosen."""
    from pathlib import Path
    from types import SimpleNamespace
    from captioner.checkpoint import TRAIN_STATE
    from captioner.train import train
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "scripts"))
    import make_model
    import captioner.evaluate
    import captioner.subjects
    captions, images = coco_fixture
    out = tmp_path / "run"
    train(TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=1, batch_size=8,
                      val_fraction=0.2),
          ModelConfig(embedding_dim=16, units=32, max_length=8, imagenet_head="softmax", imagenet_words=True,
                      word_prior=where),
          tmp_path / "cache", progress=False)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps([{"file": "foolbox/a.jpg", "nouns": ["cat"]}, {"file": "foolbox/b.jpg", "nouns": ["dog"]}]))
    # What each scale writes of the two photos: the louder, the more it names, and 64 and 96 break.
    said = {16.0: ("a bird", "a bird"), 32.0: ("a cat", "a bird"), 64.0: ("a cat and a cat", "a dog"),
            96.0: ("cats cats", "dogs in a dog")}
    monkeypatch.setattr(captioner.subjects, "caption_photos", lambda model, photos, folder: dict(
        zip(("foolbox/a.jpg", "foolbox/b.jpg"), said[model.config.word_prior_scale])))
    monkeypatch.setattr(captioner.evaluate, "evaluate", lambda *a, **k: {"object_recall": 0.95})
    monkeypatch.setattr(captioner.subjects, "in_vocabulary", lambda nouns, vocabulary: True)
    args = SimpleNamespace(word_prior_once=1, word_prior_first_word=0)
    result = make_model.calibrate_word_prior(out, 16.0, tmp_path, labels, tmp_path, args)
    assert [v["broken"] for v in result["candidates"].values()] == [0, 0, 1, 2]
    assert [v["photo_recall"] for v in result["candidates"].values()] == [0.0, 0.5, 1.0, 1.0]
    assert result["scale"] == 32.0                                # 64 and 96 name more, but break
    config = json.loads((out / "config.json").read_text())["model"]
    state = json.loads((out / TRAIN_STATE).read_text())
    assert config["word_prior_scale"] == 32.0 and state["trained_word_prior_scale"] == 16.0
    assert state["trained_word_prior_rules"] == {"word_prior_once": False, "word_prior_first_word": True}
    if where == "attended":
        assert config["word_prior_once"] is True and config["word_prior_first_word"] is False
        text = make_model.rules_text(result)
        assert "once per caption" in text and "silent on a caption's first word" in text and "set after training" in text
    else:   # the image prior has no rules of speech: its config stays as trained, and loads
        assert config["word_prior_once"] is False and config["word_prior_first_word"] is True
        assert result["rules"] == {} and make_model.rules_text(result) == ""
