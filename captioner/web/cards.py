"""What the page says about the loaded model, from its checkpoint: the one line under the title
and the model panel. Cards are read as a visitor may see them: no server paths, no raw JSON."""
from __future__ import annotations

import json
import re


# A card line that says in a few words what the model was trained on, if the card has one.
SUMMARY_LINE = re.compile(r"^\W*(summary|trained on|training data)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
SCOPE_HEADING = re.compile(r"can|know|limit|scope|intended", re.IGNORECASE)
SERVER_PATH = re.compile(r"(?<![\w.:/])(?:~|\.{1,2})?/(?:[\w.@+-]+/)+([\w.@+-]+)")
NUMBERS_JSON = re.compile(r'\{\s*"[^{}]*\}')


def model_summary(captioner) -> str:
    """The one line under the title: what the loaded model was trained on and what it can name,
    from its card (a "Summary:" or "Trained on:" line, else the first paragraph of a section on
    what it can do, else the card's first paragraph), so every checkpoint speaks for itself."""
    card = _without_paths(captioner.checkpoint.card)
    found = {m.group(1).lower(): m.group(2).strip() for m in SUMMARY_LINE.finditer(card)}
    if "summary" in found:
        said = found["summary"]
    elif found:
        said = f"Trained on {found.get('trained on') or found['training data']}."
    else:
        said = _first_sentences(_scope_paragraph(card)) or "This checkpoint has no model card."
    return f"**What this model knows.** {said} ({vocabulary_size(captioner)}; more under *About the model*.)"


def vocabulary_size(captioner) -> str:
    """"441 words" or, with the copy path, "441 words learnt from captions, 1141 more copied from
    ImageNet class names"."""
    learnt = getattr(getattr(captioner, "config", None), "vocab_size", len(captioner.vocab))
    copied = len(captioner.vocab) - learnt
    return f"{learnt} words" + (f" learnt from captions, {copied} more copied from ImageNet class names" if copied else "")


def _scope_paragraph(card: str) -> str:
    """The first paragraph under a heading about what the model can do, else the first paragraph."""
    sections = re.split(r"^#{1,6} +(.*)$", card, flags=re.MULTILINE)   # [before, heading, body, ...]
    bodies = [(heading, body) for heading, body in zip(sections[1::2], sections[2::2])]
    bodies = [b for h, b in bodies if SCOPE_HEADING.search(h)] + [sections[0]] + [b for _, b in bodies]
    for body in bodies:
        for paragraph in re.split(r"\n\s*\n", body):
            if paragraph.strip() and not paragraph.lstrip().startswith(("|", "-", "*", "#", "!")):
                return " ".join(paragraph.split())
    return ""


def _first_sentences(text: str, limit: int = 400) -> str:
    said = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if said and len(said) + len(sentence) > limit:
            break
        said = f"{said} {sentence}".strip()
    return said[:limit]


def _without_paths(text: str) -> str:
    """A card as a visitor may read it: file paths of the machine that trained it cut to their
    names, and timing JSON written out plainly."""
    text = SERVER_PATH.sub(r"\1", text)
    return NUMBERS_JSON.sub(lambda m: _plain_numbers(m.group(0)), text)


def _plain_numbers(raw: str) -> str:
    try:
        values = json.loads(raw)
    except ValueError:
        return raw
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items()) if isinstance(values, dict) else raw


def model_panel(captioner) -> str:
    """Markdown for the model panel: checkpoint, encoder, vocabulary, and the model card itself (its
    summary line left out: the page says it under its title)."""
    config = captioner.config
    card = _without_paths(captioner.checkpoint.card).strip() or "_This checkpoint has no model card._"
    card = re.sub(r"^(#{1,4}) ", r"##\1 ", card, flags=re.MULTILINE)   # its headings sit under the panel's
    card = SUMMARY_LINE.sub("", card).replace("\n\n\n", "\n\n")   # said once already, under the page's title
    return (f"| Model | |\n|---|---|\n| Checkpoint | {captioner.source} |\n"
            f"| Encoder | {config.encoder} ({config.grid_size}x{config.grid_size} attention grid) |\n"
            f"| Vocabulary | {vocabulary_size(captioner)} |\n"
            f"| Decoder | GRU {config.units} units, Bahdanau attention |\n\n---\n\n{card}")
