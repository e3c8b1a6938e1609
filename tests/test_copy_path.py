"""The copy path: ImageNet classes reach words no training caption taught (captioner/copy_path.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from captioner.config import CheckpointConfig, ModelConfig
from captioner.copy_path import build_copy_tables
from captioner.model import CopyPath, ShowAttendTell

from conftest import class_index


@pytest.fixture(scope="module")
def vocab(shipped_vocab):
    return shipped_vocab


@pytest.fixture(scope="module")
def tables(vocab):
    return build_copy_tables(vocab)


def test_a_class_the_vocabulary_lacks_gets_its_everyday_name_as_a_new_word(vocab, tables):
    assert "cheetah" not in vocab.index
    cheetah = class_index("cheetah")
    assert tables.words[tables.singular_of[cheetah]] == "cheetah"
    assert tables.words[tables.plural_of[cheetah]] == "cheetahs"
    assert tables.words[:len(vocab)] == tuple(vocab.words)
    assert len(set(tables.words)) == len(tables.words)
    assert {"crab", "castle", "pan", "screwdriver", "tent"} <= set(tables.new_words)
    assert any(" " in word for word in tables.new_words)   # "hot dog": one word, one heatmap


def test_a_class_the_vocabulary_names_copies_into_that_word(vocab, tables):
    retriever = class_index("golden retriever")
    assert tables.words[tables.singular_of[retriever]] == "dog"
    assert tables.words[tables.plural_of[retriever]] == "dogs"


def test_each_new_word_is_read_back_as_a_known_noun_of_its_number(vocab, tables):
    size = len(vocab)
    for w in range(size, len(tables.words)):
        fed = int(tables.fed_back_as[w])
        assert fed < size
        plural_only = (tables.plural_of == w).any() and not (tables.singular_of == w).any()
        assert (tables.noun_plural if plural_only else tables.noun_singular)[fed] == 1.0, tables.words[w]


def test_no_name_goes_inside_a_noun(vocab, tables):
    # After "a pair of" a class name would write "a pair of maypole"; after "teddy", "a teddy cheetah".
    for word in ("of", "teddy", "hot", "tennis"):
        assert tables.mid_noun[vocab.index[word]] == 1, word
    for word in ("a", "two", "and", "dog"):
        assert tables.mid_noun[vocab.index[word]] == 0, word
    assert tables.noun_singular[vocab.index["dog"]] == 1 and tables.noun_plural[vocab.index["dogs"]] == 1
    # "a pair of scissors" is a noun too: its slot is the measure word's step
    assert tables.noun_singular[vocab.index["pair"]] == 1 and tables.noun_plural[vocab.index["pairs"]] == 1
    logits = np.zeros((2, len(vocab)), np.float32)
    logits[:, vocab.index["pliers"]] = 8.0
    classes = np.zeros((2, 1000), np.float32)
    classes[:, class_index("maypole")] = 12.0
    tokens = tf.constant([vocab.index["of"], vocab.index["a"]])
    chosen = tf.argmax(copy_path(tables, vocab, 0.9)(logits, classes, None, tokens), -1).numpy()
    assert [tables.words[i] for i in chosen] == ["pliers", "maypole"]


def copy_path(tables, vocab, share):
    config = ModelConfig(vocab_size=len(vocab), imagenet_head="softmax", imagenet_words=True, copy_weight=share)
    return CopyPath(config, tables)


def test_the_mixture_is_a_distribution_that_keeps_the_decoders_other_words(vocab, tables):
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(3, len(vocab))) * 3, tf.float32)
    classes = tf.constant(rng.normal(size=(3, 1000)) * 3, tf.float32)
    log_probs = copy_path(tables, vocab, 0.6)(logits, classes)
    probs = np.exp(log_probs.numpy())
    assert probs.shape == (3, len(tables.words))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    decoder = tf.nn.softmax(logits).numpy()
    named = np.isin(np.arange(len(vocab)), np.concatenate([tables.singular_of, tables.plural_of]))
    not_nouns = ((tables.noun_singular + tables.noun_plural) == 0) & ~named    # "a", "on", "room", ...
    np.testing.assert_allclose(probs[:, :len(vocab)][:, not_nouns], decoder[:, not_nouns], atol=1e-6)
    # Every class already said: nothing left to copy, the decoder's own distribution.
    spent = tf.ones((3, 1000))
    np.testing.assert_allclose(np.exp(copy_path(tables, vocab, 0.6)(logits, classes, spent).numpy())[:, :len(vocab)],
                               decoder, atol=1e-6)


def test_the_copy_path_names_what_the_decoder_has_no_word_for(vocab, tables):
    logits = np.zeros((1, len(vocab)), np.float32)
    logits[0, vocab.index["cat"]] = 8.0            # the decoder wants a singular noun: "cat"
    classes = np.zeros((1, 1000), np.float32)
    classes[0, class_index("cheetah")] = 12.0      # and looks at a cheetah
    said = lambda share: tables.words[int(tf.argmax(copy_path(tables, vocab, share)(logits, classes), -1)[0])]
    assert said(0.8) == "cheetah"
    assert said(0.2) == "cat"
    logits[0, vocab.index["cat"]], logits[0, vocab.index["cats"]] = 0.0, 8.0
    assert said(0.8) == "cheetahs"


def test_copy_weight_needs_the_word_prior_and_stays_in_range():
    with pytest.raises(ValueError, match="copy_weight needs imagenet_words"):
        ShowAttendTell(ModelConfig(vocab_size=20, copy_weight=0.5))
    with pytest.raises(ValueError, match="copy_weight = 1.5 is out of range"):
        CheckpointConfig.from_dict({"version": 2, "model": {"copy_weight": 1.5}})
    assert dataclasses.asdict(ModelConfig())["copy_weight"] == 0.0   # the plain model has no copy path


def test_clothes_copy_into_the_person_wearing_them(vocab, tables):
    # ImageNet has no people: its "suit" pictures are of men in suits, and a caption names the man.
    suit = class_index("suit")
    assert tables.words[tables.singular_of[suit]] == "person"
    assert tables.words[tables.plural_of[suit]] == "people"
