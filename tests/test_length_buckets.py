"""Length buckets (TrainConfig.length_step): batches unroll the decoder only as far as they need."""
import keras
import numpy as np
import tensorflow as tf

from captioner.config import ModelConfig
from captioner.data import batches_per_epoch, caption_dataset
from captioner.model import build_model
from captioner.train import make_steps

MAX_WORDS = 10


def captions(n=90, seed=0):
    """Token lists <start> w... <end> of 1..MAX_WORDS words, as Vocabulary.encode makes them."""
    rng = np.random.default_rng(seed)
    return [[1, *rng.integers(4, 30, rng.integers(1, MAX_WORDS + 1)).tolist(), 2] for _ in range(n)]


def regions_of(tokens):
    """(n, MAX_WORDS + 1): caption i names object i % 4 (a row of the 4x4 cells table) at every
    other word it has, and nothing at <end> or the pads."""
    regions = np.full((len(tokens), MAX_WORDS + 1), -1, np.int32)
    for i, ids in enumerate(tokens):
        regions[i, :len(ids) - 2:2] = i % 4
    return regions


def batches(tokens, step, **kw):
    features = np.arange(len(tokens), dtype=np.float32)[:, None, None] * np.ones((1, 4, 3), np.float32)
    grounding = (regions_of(tokens), np.eye(4, dtype=np.float32))
    return list(caption_dataset(features, np.arange(len(tokens)), tokens, 8, MAX_WORDS, shuffle=True, seed=3,
                                grounding=grounding, length_step=step, **kw))


def test_each_batch_is_cut_to_its_longest_caption_rounded_up_and_loses_no_caption():
    tokens = captions()
    regions, seen = regions_of(tokens), []
    for (features, inputs), targets, cells in batches(tokens, 4):
        steps = inputs.shape[1]
        longest = int(tf.reduce_max(tf.reduce_sum(tf.cast(targets != 0, tf.int32), axis=1)))
        assert steps == min(-(-longest // 4) * 4, MAX_WORDS + 1) and longest > steps - 4
        assert targets.shape[1] == steps and cells.shape[1] == steps
        rows = features[:, 0, 0].numpy().astype(int)
        lengths = [len(tokens[row]) - 1 for row in rows]
        assert len({-(-n // 4) for n in lengths}) == 1                     # one length bucket a batch
        cells_expected = np.eye(4, dtype=np.float32)[regions[rows]] * (regions[rows] >= 0)[..., None]
        np.testing.assert_array_equal(cells.numpy(), cells_expected[:, :steps])   # boxes stay on their words
        for row, ids in zip(rows, targets.numpy()):
            assert ids.tolist() == (tokens[row][1:] + [0] * steps)[:steps]   # every real step kept
            seen.append(row)
    assert sorted(seen) == list(range(len(tokens)))


def test_without_buckets_every_batch_has_the_full_length():
    assert {b[0][1].shape[1] for b in batches(captions(), 0)} == {MAX_WORDS + 1}


def test_batches_per_epoch_counts_what_the_dataset_makes():
    tokens = captions(133)
    for step in (0, 3, 4):
        for drop in (False, True):
            made = batches(tokens, step, drop_remainder=drop)
            assert batches_per_epoch(tokens, 8, MAX_WORDS, step, drop) == len(made)
            if drop:
                assert {len(b[1]) for b in made} == {8}


def test_cutting_the_pads_leaves_the_loss_unchanged():
    """The loss of one batch padded to the full length and cut to its longest caption: the same."""
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(vocab_size=30, grid_size=2, feature_dim=3, embedding_dim=8, units=16, dropout=0.0))
    _, eval_step = make_steps(model, keras.optimizers.Adam(), 1.0, 5.0, jit_compile=False, grounding_weight=1.0)
    tokens = [t for t in captions(80) if 5 <= len(t) <= 7][:8]   # 3 to 5 words: 4 to 6 steps, one bucket
    full, = [b for b in batches(tokens, 0) if len(b[1]) == 8]
    cut, = [b for b in batches(tokens, 3) if len(b[1]) == 8]
    assert full[0][1].shape[1] == MAX_WORDS + 1 and cut[0][1].shape[1] == 6
    order = np.argsort(full[0][0][:, 0, 0].numpy()), np.argsort(cut[0][0][:, 0, 0].numpy())
    take = lambda batch, o: tuple(tf.gather(x, o) for x in (batch[0][0], batch[0][1], batch[1], batch[2]))
    (f1, i1, t1, c1), (f2, i2, t2, c2) = take(full, order[0]), take(cut, order[1])
    loss_full, xent_full = eval_step((f1, i1), t1, c1)
    loss_cut, xent_cut = eval_step((f2, i2), t2, c2)
    np.testing.assert_allclose([loss_cut, xent_cut], [loss_full, xent_full], rtol=1e-5)
