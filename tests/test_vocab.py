import pytest

from captioner.vocab import SPECIALS, Vocabulary, agree_articles, tokenize


def test_tokenize_lower_cases_and_drops_punctuation():
    assert tokenize("A Dog, running!  On the GRASS.") == ["a", "dog", "running", "on", "the", "grass"]


def test_fit_keeps_top_k_with_specials_first_and_is_repeatable():
    captions = ["a dog", "a cat", "a dog and a cat", "zebra"]
    vocab = Vocabulary.fit(captions, top_k=6)
    assert vocab.words[:4] == list(SPECIALS) and vocab.words[4:] == ["a", "cat"]
    assert Vocabulary.fit(reversed(captions), top_k=6).words == vocab.words


def test_encode_decode_with_unknown_words_and_cut():
    vocab = Vocabulary.fit(["a dog on the grass"], top_k=100)
    ids = vocab.encode("a zebra on the grass", max_words=3)
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id and len(ids) == 5
    assert vocab.decode(ids) == ["a", "<unk>", "on"]
    assert vocab.decode([vocab.start_id, vocab.index["dog"], vocab.end_id, vocab.index["a"]]) == ["dog"]


def test_save_load_round_trip_and_bad_files(tmp_path):
    vocab = Vocabulary.fit(["a dog"], top_k=10)
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").words == vocab.words
    with pytest.raises(ValueError):
        Vocabulary(["dog", "<pad>"])


def test_articles_agree_with_the_word_after_them():
    said = lambda text: " ".join(agree_articles(text.split()))
    assert said("a picture of a insect on the grass") == "a picture of an insect on the grass"
    assert said("an dog and an apple and a orange") == "a dog and an apple and an orange"
    assert said("a unicorn and a one and a hour and a uninvited an utility") == \
        "a unicorn and a one and an hour and an uninvited a utility"
    assert said("a a dog an an apple") == "a a dog an an apple"      # a stutter is left as said
    assert said("there is a") == "there is a" and said("an") == "an" and agree_articles([]) == []
