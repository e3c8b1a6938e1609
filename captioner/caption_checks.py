"""What a caption names, and whether it is broken: the nouns it says (the longest form first,
setting phrases naming none), and the captions no world writes (a noun first, one noun twice, the
same four words twice) that a loud word prior or a looping decoder would.
"""
from __future__ import annotations

from .vocab import REPEAT_WORDS, tokenize


def noun_forms(pairs, phrases=()) -> dict[tuple[str, ...], str | None]:
    """{words of a form: noun} for (noun, plural) pairs ("tennis rackets" -> tennis racket), and
    {words of a phrase: None} for phrases that name no noun though a noun is in them (the setting
    "on the train tracks" names no train)."""
    forms = {tuple(tokenize(phrase)): None for phrase in phrases}
    forms.update({tuple(tokenize(form)): noun for noun, plural in pairs for form in (noun, plural)})
    return forms


def world_forms() -> dict[tuple[str, ...], str | None]:
    """noun_forms of every registered world's nouns, their settings' phrases as phrases that name none."""
    from .word_map import world_nouns
    from .worlds import WORLDS
    settings = [setting for world in WORLDS.values() for setting in world.settings().values()]
    return noun_forms(world_nouns(), [phrase for setting in settings for phrase in setting.phrases])


def noun_steps(words: list[str], forms: dict) -> list[tuple[int, str]]:
    """(index of the word that starts it, noun) for each noun the words name, the longest form first
    ("traffic cone" is not "cone"); a word of several tokens (a copied name, "frying pan") is one word."""
    flat = [(i, t) for i, word in enumerate(words) for t in tokenize(word)]
    found, at, longest = [], 0, max(map(len, forms), default=0)
    while at < len(flat):
        for size in range(min(longest, len(flat) - at), 0, -1):
            span = tuple(t for _, t in flat[at:at + size])
            if span in forms:
                if forms[span] is not None:
                    found.append((flat[at][0], forms[span]))
                at += size
                break
        else:
            at += 1
    return found


def nouns_said(caption: str, forms: dict) -> tuple[list[str], bool]:
    """-> (the nouns a caption names, in order; whether its first word starts one)."""
    found = noun_steps(tokenize(caption), forms)
    return [noun for _, noun in found], bool(found) and found[0][0] == 0


def broken_caption(caption: str, forms: dict) -> bool:
    """True when a caption starts with a noun, names one noun twice (either form) or says the same
    four words twice: what a word prior decoded too loud writes ("apple apple in a room", "a cat in
    a cat a cat ...") and what a decoder caught in a loop writes ("a picture of a picture of a
    picture of ..."). No caption of any world does any of these (vocab.REPEAT_WORDS). `forms`
    from noun_forms or world_forms."""
    said, starts_with_noun = nouns_said(caption, forms)
    return starts_with_noun or len(said) != len(set(said)) or repeats_words(caption)


def repeats_words(caption: str, span: int = REPEAT_WORDS) -> bool:
    """True when some `span` consecutive words come twice in the caption."""
    words = caption.lower().split()
    runs = [tuple(words[n:n + span]) for n in range(len(words) - span + 1)]
    return len(runs) != len(set(runs))
