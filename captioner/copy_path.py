"""The copy path's tables: how the encoder's ImageNet classes reach words the captions never taught.

The decoder learns its words from the worlds' captions (441 of them for the default model), but the
encoder's classifier knows 1000 things. `ModelConfig.copy_weight` mixes, at each step, the decoder's
own distribution with a copy distribution read from the classifier on the cells the step attends
to (a pointer-generator, See et al. 2017, whose pointer points at classes instead of source words):

    P(w) = P_dec(w) (1 - lambda Q [w a noun]) + lambda (M_sing q . name_sing(w) + M_plur q . name_plur(w))

q (B, K): the attended classes' probabilities, less those already said (`word_prior_once`); Q = sum q;
M_sing, M_plur: the decoder's own mass on singular and plural nouns at this step. The decoder still
decides *when* a noun comes and whether one or several; the classes help decide *which*, and may name
it with a word the vocabulary lacks (captioner/class_names.py's everyday names: "cheetah", "crab").

This module builds the constant tables that formula reads, from the vocabulary and the class table:
the output words (the vocabulary, then the names it lacks), the class -> word maps, which vocabulary
tokens start a singular or a plural noun, and the vocabulary token each new word is fed back as (the
embedding has no row for a word it never saw).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .class_names import class_names


# ImageNet has no class for people, and its pictures of these are mostly of someone wearing one: a
# photo the classifier calls "suit" or "jersey" is, to a person, of a man or a woman first. These
# classes copy into "person" (the worlds' word) rather than their own names. (Class names as in
# class_names.py's `imagenet` column.)
WORN = frozenset({
    "suit", "jersey", "sweatshirt", "cardigan", "lab coat", "military uniform", "academic gown", "kimono",
    "abaya", "bikini", "maillot", "swimming trunks", "fur coat", "trench coat", "poncho", "sarong",
    "miniskirt", "gown", "vestment", "bow tie", "windsor tie", "bolo tie", "mortarboard", "cowboy hat",
    "sombrero", "wig", "jean", "pajama", "stole", "bulletproof vest", "football helmet", "apron",
    "feather boa", "bearskin", "hoopskirt", "overskirt", "bonnet", "shower cap", "bathing cap"})


@dataclass(frozen=True)
class CopyTables:
    words: tuple[str, ...]    # V' output words: the vocabulary's V, then the class names it lacks
    singular_of: np.ndarray   # (K,) int32: the output word that says class k, singular
    plural_of: np.ndarray     # (K,) int32: ... plural
    noun_singular: np.ndarray  # (V,) 1 for a token that starts a singular noun of the worlds
    noun_plural: np.ndarray    # (V,) 1 for a token that starts a plural one (and no singular)
    fed_back_as: np.ndarray   # (V',) int32: the vocabulary token the next step's input reads
    mid_noun: np.ndarray      # (V',) 1 for a word after which the next is no noun of its own
    # Which classes name which output nouns, as (class, word) pairs: the evidence a noun needs
    # (`ModelConfig.noun_evidence`) is the whole image's probability of the classes naming it.
    evidence_class: np.ndarray   # (P,) int32
    evidence_word: np.ndarray    # (P,) int32
    needs_evidence: np.ndarray   # (V',) 1 for a word that starts a noun (the setting phrases' words excepted)

    @property
    def new_words(self) -> tuple[str, ...]:
        return self.words[len(self.noun_singular):]


def _target(form: str, index: dict, world_forms: set, new: dict, words: list) -> int:
    """The output token that says `form`: a world noun the vocabulary spells starts at its first word
    (the decoder says the rest); any other name is one new token, spaces and all ("frying pan")."""
    if form in index:
        return index[form]
    if form in world_forms and all(w in index for w in form.split()):
        return index[form.split()[0]]
    if form not in new:
        new[form] = len(words)
        words.append(form)
    return new[form]


def _plural_measures() -> set[tuple[str, str]]:
    """(plural measure word, the first word of the noun it counts) of the worlds' nouns: ("pairs",
    "scissors"), ("bunches", "grapes")."""
    from .worlds import WORLDS
    return {(plural.split(" of ")[0].split()[-1], plural.split(" of ")[1].split()[0])
            for world in WORLDS.values() for _, plural in world.nouns() if " of " in plural}


def _measured() -> set[tuple[str, str]]:
    """_plural_measures, and the singular ones only the emoji world's articles have ("a piece of"
    broccoli: ("piece", "broccoli"))."""
    from .worlds.emoji.tables import objects
    return _plural_measures() | {(row.article.split()[-2], row.noun.split()[0]) for row in objects()
                                 if " of" in row.article}


def _measure_words() -> set[str]:
    """The plural measure words the worlds count some nouns with: "pairs" (of scissors), "bunches"."""
    return {measure for measure, _ in _plural_measures()}


def build_copy_tables(vocab) -> CopyTables:
    from .word_map import world_nouns
    pairs = world_nouns()
    index = {w: i for i, w in enumerate(vocab.words)}
    size = len(vocab.words)
    noun_singular, noun_plural = np.zeros(size, np.float32), np.zeros(size, np.float32)
    for noun, plural in pairs:
        for form, mask in ((noun, noun_singular), (plural, noun_plural)):
            if all(w in index for w in form.split()):
                mask[index[form.split()[0]]] = 1.0
    # "a pair of scissors": the slot is the measure word's step; after "of" there is none (mid_noun).
    for measure in _measure_words():
        for form, mask in ((measure, noun_plural), (measure[:-1], noun_singular), (measure[:-2], noun_singular)):
            if form in index and form not in ("", "a"):
                mask[index[form]] = 1.0
    noun_plural *= 1.0 - noun_singular          # "fish", "sheep": counted once, as singular
    world_forms = {form for pair in pairs for form in pair}
    words, new = list(vocab.words), {}
    targets = [(_target(row.name, index, world_forms, new, words), _target(row.plural, index, world_forms, new, words))
               if row.imagenet not in WORN else (_target("person", index, world_forms, new, words),
                                                 _target("people", index, world_forms, new, words))
               for row in class_names()]
    singular_of, plural_of = (np.array(column, np.int32) for column in zip(*targets))
    fed_back_as = np.arange(len(words), dtype=np.int32)
    fed_back_as[size:] = _stand_ins(vocab, len(words), singular_of, plural_of, noun_singular, noun_plural)
    # After "of" ("a pair of pliers": a name there writes "a pair of maypole") or a noun's first word
    # ("hot" dog, "teddy" bear) the next word finishes a noun: no slot for a name.
    mid_noun = np.zeros(len(words), np.float32)
    for word in ["of"] + [form.split()[0] for form in world_forms if " " in form]:
        if word in index:
            mid_noun[index[word]] = 1.0
    evidence_class, evidence_word, needs_evidence = _evidence(vocab, words, singular_of, plural_of,
                                                              noun_singular + noun_plural)
    return CopyTables(tuple(words), singular_of, plural_of, noun_singular, noun_plural, fed_back_as, mid_noun,
                      evidence_class, evidence_word, needs_evidence)


def _evidence(vocab, words: list, singular_of, plural_of, noun_start) -> tuple:
    """(class, word) pairs where the class names the output word: a class's own names (the copy
    path's targets), the worlds' nouns it names (word_map.py, at their first word), and a measure
    word ("pair", "pairs") for the classes naming a noun it counts ("scissors"). And which words need
    evidence: every noun start and new word, and what the emoji world's people do ("walking": no
    class sees a deed, so a photograph's caption does not say one), but not a setting phrase's words
    ("on the train tracks" names no train)."""
    from .settings_seen import setting_phrases
    from .word_map import word_map
    from .worlds.captions import DEEDS
    index = {w: i for i, w in enumerate(vocab.words)}
    pairs = {(k, int(w)) for k, w in enumerate(singular_of)} | {(k, int(w)) for k, w in enumerate(plural_of)}
    known = word_map(vocab)                                                     # (K, V)
    measures = set()
    pairs |= {(int(k), int(t)) for k, t in zip(*np.nonzero(known))}
    for measure, counted in _measured():
        if counted in index:
            named = np.nonzero(known[:, index[counted]])[0]
            for form in {measure, measure[:-1], measure[:-2]} & set(index):   # "pairs", "pair"; "bunch"
                pairs |= {(int(k), index[form]) for k in named}
                measures.add(index[form])
    needs = np.zeros(len(words), np.float32)
    needs[:len(noun_start)] = noun_start > 0
    needs[len(noun_start):] = 1.0
    needs[sorted(measures)] = 1.0
    needs[[index[w] for w in DEEDS & set(index)]] = 1.0
    for word in {w for phrase in setting_phrases() for w in phrase} & set(index):
        needs[index[word]] = 0.0
    classes, targets = (np.array(column, np.int32) for column in zip(*sorted(pairs)))
    return classes, targets, needs


def _stand_ins(vocab, outputs: int, singular_of, plural_of, noun_singular, noun_plural) -> np.ndarray:
    """For each new word, the vocabulary noun of its number that its classes name most often (WordNet:
    "cheetah" -> "cat"), else the commonest noun of that number: what the step after it reads, so the
    decoder goes on as after a word it knows."""
    from .word_map import word_map
    size = len(vocab.words)
    known = word_map(vocab)                                        # (K, V)
    stand_ins = []
    for w in range(size, outputs):
        many = (plural_of == w).any() and not (singular_of == w).any()
        mask = noun_plural if many else noun_singular
        votes = known[(plural_of if many else singular_of) == w].sum(0) * mask   # (V,)
        fallback = (known.sum(0) * mask).argmax()
        stand_ins.append(int(votes.argmax()) if votes.max() > 0 else int(fallback))
    return np.asarray(stand_ins, np.int32)


@lru_cache(maxsize=4)
def copy_tables_for(words: tuple[str, ...]) -> CopyTables:
    """Cached per vocabulary: loading the same checkpoint twice builds the tables once."""
    from .vocab import Vocabulary
    return build_copy_tables(Vocabulary(words))
