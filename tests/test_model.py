"""Layers, loss, decoding and checkpoints on features the tests make (no encoder needed)."""
import json
import time

import numpy as np
import pytest
import tensorflow as tf

from captioner.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from captioner.config import CheckpointConfig, ModelConfig
from captioner.decoding import END, HISTORY, REPEAT_WORDS, Searches, repeats
from captioner.model import build_model
from captioner.train import attention_penalty, masked_loss
from captioner.vocab import Vocabulary

CONFIG = ModelConfig(vocab_size=12, embedding_dim=16, units=32, feature_dim=24, grid_size=3, max_length=8)


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(0)
    return build_model(CONFIG)


@pytest.fixture(scope="module")
def decoder(model):
    return Searches(model)


def features(batch=2, seed=0):
    return tf.random.stateless_normal([batch, CONFIG.grid_size ** 2, CONFIG.feature_dim], [seed, 1])


def test_attention_sums_to_one_over_the_grid(model):
    projected, keys, hidden = model.encode(features(3))
    context, weights = model.attention(projected, keys, hidden)
    assert weights.shape == (3, 9) and context.shape == (3, CONFIG.embedding_dim)
    np.testing.assert_allclose(tf.reduce_sum(weights, -1).numpy(), 1.0, atol=1e-5)
    assert (weights.numpy() >= 0).all()


def test_teacher_forcing_shapes(model):
    tokens = tf.constant([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0]])
    logits, attention = model((features(2), tokens))
    assert logits.shape == (2, 5, CONFIG.vocab_size) and attention.shape == (2, 5, 9)


def test_masked_loss_ignores_pads():
    targets = tf.constant([[5, 6, 2, 0, 0], [7, 2, 0, 0, 0]])
    logits = tf.random.stateless_normal([2, 5, 12], [1, 2])
    pad = tf.cast(targets == 0, tf.float32)[..., None]
    noisy = logits + pad * tf.random.stateless_normal([2, 5, 12], [3, 4]) * 100.0
    loss_sum, words = masked_loss(targets, logits)
    noisy_sum, _ = masked_loss(targets, noisy)
    assert float(words) == 5.0
    np.testing.assert_allclose(float(loss_sum), float(noisy_sum), rtol=1e-6)
    changed_sum, _ = masked_loss(targets, logits + (1 - pad) * 3.0 * tf.one_hot(targets, 12))
    assert float(changed_sum) < float(loss_sum)   # real positions do count


def test_attention_penalty_ignores_pad_steps_and_rewards_coverage():
    targets = tf.constant([[5, 2, 0]])
    spread = tf.constant([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])      # two real steps cover both cells
    assert float(attention_penalty(spread, targets)) == pytest.approx(0.0)
    focused = tf.constant([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])     # the pad step's cell must not count
    assert float(attention_penalty(focused, targets)) == pytest.approx(1.0)


def test_decoding_outputs_are_consistent(model, decoder):
    ids, probs, attention, log_prob = [x.numpy() for x in decoder.greedy(features(2), tf.constant(6))]
    assert ids.shape[0] == 2 and ids.shape[1] <= 6 and attention.shape == ids.shape + (9,)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    assert ((probs > 0) & (probs <= 1)).all()
    assert not np.isin(ids, [0, 1]).any() or (ids == 0).any()   # <start> never produced


def test_beam_size_one_equals_greedy(decoder):
    for seed in range(3):
        f = features(1, seed)
        greedy = [x.numpy() for x in decoder.greedy(f, tf.constant(8))]
        beam = [x.numpy() for x in decoder.beam(f, tf.constant(8), tf.constant(1), tf.constant(0.7))]
        np.testing.assert_array_equal(greedy[0], beam[0])
        np.testing.assert_allclose(greedy[1], beam[1], rtol=1e-5)
        np.testing.assert_allclose(greedy[2], beam[2], atol=1e-6)


def test_beam_search_is_at_least_as_likely_as_greedy(decoder):
    f = features(1, 7)
    greedy_lp = float(decoder.greedy(f, tf.constant(8))[3][0])
    _, _, _, beam_lp = decoder.beam(f, tf.constant(8), tf.constant(4), tf.constant(0.0))
    assert float(beam_lp[0]) >= greedy_lp - 1e-4


def repeating(words, vocab_size):
    """The words that would end `words` with REPEAT_WORDS words it has already said."""
    n = REPEAT_WORDS
    return [w for w in range(vocab_size)
            if len(words) >= n and any(words[j:j + n] == words[len(words) - n + 1:] + [w]
                                       for j in range(len(words) - n + 1))]


def reference_beam(model, f, max_length, k, alpha):
    """Textbook beam search in numpy over eager decoder steps, every step run, no early stop."""
    projected, keys, hidden = model.encode(f)
    beams = [([], 0.0, hidden, False)]                           # words, log-prob, state, finished
    for _ in range(max_length):
        candidates = []
        for words, score, state, done in beams:
            if done:
                candidates.append((words + [0], score, state, True))
                continue
            token = tf.constant([words[-1] if words else 1])
            logits, new_state, _ = model.step(token, state, projected, keys)
            logits = logits.numpy()[0].astype(np.float64)
            logits[[0, 1]] = -np.inf                              # never <pad> or <start>
            if not words:
                logits[END] = -np.inf                             # and at least one word
            logits[repeating(words, len(logits))] = -np.inf       # nor four words said before
            log_probs = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
            candidates += [(words + [w], score + log_probs[w], new_state, w == END) for w in range(len(logits))]
        beams = sorted(candidates, key=lambda c: -c[1])[:k]
    normalised = [score / max(len([w for w in words if w != 0]), 1) ** alpha for words, score, _, _ in beams]
    words, score, _, _ = beams[int(np.argmax(normalised))]
    return [w for w in words if w != 0], score


@pytest.mark.parametrize("k, alpha", [(2, 0.0), (3, 0.7), (5, 1.0)])
def test_beam_search_finds_what_a_textbook_beam_search_finds(model, decoder, k, alpha):
    for seed in range(4):
        f = features(1, 20 + seed)
        ids, probs, _, log_prob = [x.numpy() for x in decoder.beam(f, tf.constant(6), tf.constant(k), tf.constant(alpha))]
        words, score = reference_beam(model, f, 6, k, alpha)
        assert [w for w in ids[0] if w != 0] == words
        assert float(log_prob[0]) == pytest.approx(score, abs=1e-4)
        assert float(np.log(probs[0]).sum()) == pytest.approx(score, abs=1e-4)   # per-word probs add up


def test_sampling_with_a_seed_repeats_and_seeds_differ(decoder):
    f = tf.repeat(features(1), 6, axis=0)
    run = lambda seed: decoder.sample(f, tf.constant(8), tf.constant(1.5), tf.constant(0), tf.constant([seed, 0]))[0].numpy()
    np.testing.assert_array_equal(run(11), run(11))
    assert any(not np.array_equal(run(11), run(s)) for s in (12, 13, 14))


def test_top_k_one_sampling_is_greedy(decoder):
    f = features(2, 3)
    greedy = decoder.greedy(f, tf.constant(8))[0].numpy()
    sampled = decoder.sample(f, tf.constant(8), tf.constant(1.0), tf.constant(1), tf.constant([5, 0]))[0].numpy()
    np.testing.assert_array_equal(greedy, sampled)


def every_search_with_end_bias(end_bias: float, max_length: int = 5) -> list:
    """Word ids (2 images, T) from greedy, beam (the first image) and sampling, for a model whose
    logit for <end> is `end_bias`."""
    tf.keras.utils.set_random_seed(1)
    model = build_model(CONFIG)
    bias = model.fc2.bias.numpy()
    bias[END] = end_bias
    model.fc2.bias.assign(bias)
    decoder, f, n = Searches(model), features(2), tf.constant(max_length)
    return [decoder.greedy(f, n)[0].numpy(),
            decoder.beam(f[:1], n, tf.constant(3), tf.constant(0.7))[0].numpy(),
            decoder.sample(f, n, tf.constant(1.0), tf.constant(0), tf.constant([1, 0]))[0].numpy()]


def test_decoding_stops_at_max_length_when_end_never_comes():
    for ids in every_search_with_end_bias(-1e4):          # this model can never say <end>
        assert ids.shape[1] == 5 and not (ids == END).any()


def test_every_search_writes_at_least_one_word():
    for ids in every_search_with_end_bias(1e4):           # this model would say <end> at once, every time
        assert ids.shape[1] == 2 and (ids[:, 0] != END).all() and (ids[:, 1] == END).all(), ids


def test_repeats_bans_the_word_that_would_say_four_words_again():
    a, picture, of, red = 4, 5, 6, 7
    said = [a, picture, of, a, picture, of]                       # "a picture of a picture of"
    history = tf.constant([said + [0] * (HISTORY - 6), [a, picture, of, red] + [0] * (HISTORY - 4)])
    banned = repeats(history, tf.constant(6), 12).numpy()
    assert banned[0].nonzero()[0].tolist() == [a] and not banned[1].any()
    # Only what is said counts: three words in, nothing can repeat yet.
    assert not repeats(history, tf.constant(3), 12).numpy().any()
    assert repeating(said, 12) == [a]


def test_no_search_says_the_same_four_words_twice():
    """A model that would say one word forever: every search says it four times, then must move on."""
    tf.keras.utils.set_random_seed(1)
    model = build_model(CONFIG)
    bias = model.fc2.bias.numpy()
    bias[END], bias[5] = -1e4, 1e4
    model.fc2.bias.assign(bias)
    decoder, f, n = Searches(model), features(2), tf.constant(8)
    for ids in (decoder.greedy(f, n)[0].numpy(), decoder.beam(f[:1], n, tf.constant(3), tf.constant(0.7))[0].numpy(),
                decoder.sample(f, n, tf.constant(1.0), tf.constant(0), tf.constant([1, 0]))[0].numpy()):
        for words in ids.tolist():
            assert words[:4] == [5] * 4 and words[4] != 5, words
            grams = [tuple(words[i:i + 4]) for i in range(len(words) - 3)]
            assert len(grams) == len(set(grams)), words


def test_compiled_decoding_does_not_retrace(decoder):
    decoder.greedy(features(1), tf.constant(8))
    decoder.beam(features(1), tf.constant(8), tf.constant(3), tf.constant(0.7))
    before = decoder.tracing_count()
    for n in range(1, 6):
        decoder.greedy(features(n, n), tf.constant(3 + n))
        decoder.beam(features(1, n), tf.constant(3 + n), tf.constant(n), tf.constant(0.5))
        decoder.beam(features(1, n + 9), tf.constant(9 - n), tf.constant(n), tf.constant(0.7))
    assert decoder.tracing_count() == before


# --- checkpoints -------------------------------------------------------------------------------

def vocab():
    return Vocabulary.fit(["a red square", "two blue circles", "a green triangle"], top_k=12)


def save(tmp_path, model):
    config = CheckpointConfig(model=CONFIG)
    return save_checkpoint(tmp_path / "ckpt", model, vocab(), config, card="# card\n")


def test_checkpoint_round_trip_gives_identical_captions(tmp_path, model, decoder):
    path = save(tmp_path, model)
    loaded = load_checkpoint(path)
    assert loaded.vocab.words == vocab().words and loaded.card == "# card\n"
    again = Searches(loaded.model)
    f = features(3, 9)
    np.testing.assert_array_equal(decoder.greedy(f, tf.constant(8))[0].numpy(),
                                  again.greedy(f, tf.constant(8))[0].numpy())


@pytest.mark.parametrize("damage, names", [
    (lambda p: (p / "model.weights.h5").write_bytes(b"not an hdf5 file"), "model.weights.h5"),
    (lambda p: (p / "model.weights.h5").unlink(), "model.weights.h5"),
    (lambda p: (p / "vocab.json").write_text("{oops"), "vocab.json"),
    (lambda p: (p / "vocab.json").write_text(json.dumps({"words": ["<pad>", "<start>", "<end>", "<unk>", "x"]})), "vocab.json"),
    (lambda p: (p / "config.json").write_text('{"model": {"units": 7, "colour": 1}}'), "config.json"),
    (lambda p: (p / "config.json").write_text(json.dumps({"model": {**json.loads((p / "config.json").read_text())["model"], "units": 64}})), "model.weights.h5"),
])
def test_a_bad_checkpoint_names_the_file(tmp_path, model, damage, names):
    path = save(tmp_path, model)
    damage(path)
    with pytest.raises(CheckpointError, match=names.replace(".", r"\.")):
        load_checkpoint(path)


def edit_json(name, section, **values):
    def damage(path):
        data = json.loads((path / name).read_text())
        (data[section] if section else data).update(values)
        (path / name).write_text(json.dumps(data))
    return damage


def replace_word(path, position, word):
    data = json.loads((path / "vocab.json").read_text())
    data["words"][position] = word
    (path / "vocab.json").write_text(json.dumps(data))


@pytest.mark.parametrize("damage, message", [
    (lambda p: replace_word(p, 5, None), r"vocab\.json: .*words\[5\] is null"),
    (lambda p: replace_word(p, 6, 17), r"vocab\.json: .*words\[6\] is 17"),
    (edit_json("config.json", "model", max_length=-3), r"config\.json: .*model\.max_length = -3 is out of range"),
    (edit_json("config.json", "model", units=2_000_000), r"config\.json: .*model\.units = 2000000 is out of range"),
    (edit_json("config.json", "model", units="512"), r"config\.json: .*model\.units must be an int"),
    (edit_json("config.json", "model", dropout=None), r"config\.json: .*model\.dropout must be a float"),
    (edit_json("config.json", "model", initial_state="random"), r"config\.json: .*model\.initial_state"),
    (edit_json("config.json", "model", initial_state="zeros"), r"config\.json: .*model\.initial_state = \"zeros\" is a retired"),
    (edit_json("config.json", "train", batch_size=0), r"config\.json: .*train\.batch_size = 0"),
    (lambda p: (p / "model_card.md").write_bytes(b"# card \xff\xfe not utf-8"), r"model_card\.md: cannot be loaded"),
])
def test_a_bad_checkpoint_field_is_refused_at_once_naming_file_and_field(tmp_path, model, damage, message):
    # Before: tracebacks (units=2,000,000 after 38 s), and a card error that named no file.
    path = save(tmp_path, model)
    damage(path)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(path)
    assert time.perf_counter() - start < 5 and "\n" not in str(caught.value)


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path, model):
    path = save(tmp_path, model)
    before = (path / "model.weights.h5").read_bytes()

    class Broken:
        def save_weights(self, _):
            raise OSError("disk full")
    with pytest.raises(OSError):
        save_checkpoint(path, Broken(), vocab(), CheckpointConfig(model=CONFIG))
    assert (path / "model.weights.h5").read_bytes() == before
    load_checkpoint(path)
