"""Tokenizer and vocabulary, saved as `vocab.json` beside the weights."""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Iterable

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)   # ids 0..3; <pad> must be 0 so masks are `tokens != 0`

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def tokenize(caption: str) -> list[str]:
    """Lower-case, drop punctuation, split on whitespace (the tutorial's standardisation)."""
    return _NOT_WORD.sub(" ", caption.lower()).split()


# No training caption of either world says the same four words twice (not one of the 320,000 the
# default model trained on; "a pair of scissors and a pair of pliers" repeats three): decoding never
# does (decoding.repeats), and a caption that does is broken (caption_checks.broken_caption).
REPEAT_WORDS = 4

# Which words "an" goes before: a vowel first, but not a vowel said as a consonant ("a one",
# "a unicorn"), and "an hour". Patterns both Python's re and TensorFlow's RE2 read (export.py).
VOWEL_SOUND = r"(?:[aeiou]|hour|honest|honor|honour|heir).*"
CONSONANT_SOUND = r"(?:one|once|unicorn|unif|union|uniq|unis|unit|univ|use|usu|ute|uti|uri|usb|eu|ewe|ufo|uk).*"


def agree_articles(words: list[str]) -> list[str]:
    """"a" before a word said with a vowel first is spelt "an", and "an" before any other is "a".
    The decoder chooses the article a step before the noun, and the word prior can then pick a noun
    the article does not fit ("a insect"); only the spelling of that article changes."""
    def article(word: str) -> str:
        return "an" if re.fullmatch(VOWEL_SOUND, word) and not re.fullmatch(CONSONANT_SOUND, word) else "a"
    return [article(after) if word in ("a", "an") and after not in ("a", "an") else word
            for word, after in zip(words, words[1:])] + words[-1:]


class Vocabulary:
    def __init__(self, words: Iterable[str]):
        words = list(words)
        for position, word in enumerate(words):
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"words[{position}] is {json.dumps(word)[:40]}; every word must be a non-empty string")
        if tuple(words[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(words)) != len(words):
            raise ValueError("a vocabulary has duplicate words")
        self.words = words
        self.index = {word: i for i, word in enumerate(words)}

    pad_id, start_id, end_id, unk_id = range(4)

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def fit(cls, captions: Iterable[str], top_k: int = 5000) -> "Vocabulary":
        """Keep the `top_k` most frequent words; ties are broken alphabetically so fits repeat."""
        counts = collections.Counter(w for c in captions for w in tokenize(c))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls(list(SPECIALS) + [w for w, _ in ranked[:max(top_k - len(SPECIALS), 0)]])

    def encode(self, caption: str, max_words: int | None = None) -> list[int]:
        """Caption -> [<start>, ids..., <end>]; words beyond `max_words` are cut."""
        ids = [self.index.get(w, self.unk_id) for w in tokenize(caption)][:max_words]
        return [self.start_id, *ids, self.end_id]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words, stopping at <end> and skipping <start>/<pad>."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.start_id):
                words.append(self.words[i])
        return words

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"words": self.words}, indent=0) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("words"), list):
            raise ValueError('expected {"words": [...]}')
        return cls(data["words"])
