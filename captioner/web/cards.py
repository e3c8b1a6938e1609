"""What the page says about the loaded model, from its checkpoint: the one line under the title
and the model panel. Cards are read as a visitor may see them: no server paths, no raw JSON."""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..assets import DEFAULT_CHECKPOINT
from ..checkpoint import CARD, RECORD


# A card line that says in a few words what the model was trained on, if the card has one.
SUMMARY_LINE = re.compile(r"^\W*(summary|trained on|training data)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
SCOPE_HEADING = re.compile(r"can|know|limit|scope|intended", re.IGNORECASE)
SERVER_PATH = re.compile(r"(?<![\w.:/])(?:~|\.{1,2})?/(?:[\w.@+-]+/)+([\w.@+-]+)")
NUMBERS_JSON = re.compile(r'\{\s*"[^{}]*\}')
CANNOT = re.compile(r"^What it cannot do:\s*(.+?)(?:\n\s*\n|\Z)", re.MULTILINE | re.DOTALL)
PANEL_CHARS = 2500                # "About the model" at most: the full card is a click further


def model_summary(captioner) -> str:
    """The one line under the title: what the loaded model was trained on and how well it does,
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
    return f"**What this model knows.** {said} (More under *About the model*.)"


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
    """Markdown for "About the model", short (PANEL_CHARS at most) and in plain words: the model's
    parts, what it is, what it learnt from, how often it is right and its limits, from its card and,
    where the checkpoint keeps one, the record of what was measured (heldout_figures.json, which the
    card's figures come from); a card with no record is cut to what fits. The card itself is one
    click further (`model_card`). Its summary line is left out: the page says it under its title."""
    config = captioner.config
    table = (f"| Model | |\n|---|---|\n| Checkpoint | {captioner.source} |\n"
             f"| Encoder | {config.encoder} ({config.grid_size}x{config.grid_size} attention grid) |\n"
             f"| Vocabulary | {vocabulary_size(captioner)} |\n"
             f"| Decoder | GRU {config.units} units, Bahdanau attention |")
    record, card = _record(captioner), _without_paths(captioner.checkpoint.card)
    parts = [table, _what_it_is(config)]
    if record:
        parts += [_learnt_from(record), _how_often_right(record), _limits(card)]
    pointer = _pointer(captioner)
    told = "\n\n".join(part for part in parts if part)
    if not record:
        room = PANEL_CHARS - len(told) - len(pointer) - 8
        told += "\n\n" + (_cut(_demoted(SUMMARY_LINE.sub("", card)), room) or "_This checkpoint has no model card._")
    return f"{told}\n\n{pointer}"


def model_card(captioner) -> str:
    """The whole model card, as a visitor may read it, its headings under the panel's."""
    return _demoted(_without_paths(captioner.checkpoint.card)) or "_This checkpoint has no model card._"


def _record(captioner) -> dict | None:
    """The checkpoint's record of what was measured (make model writes it beside the card), if any."""
    path = getattr(captioner.checkpoint, "path", None)
    try:
        record = json.loads((Path(path) / RECORD).read_text()) if path else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("validation_photos") else None


def _what_it_is(config) -> str:
    said = (f"**What it is.** A *Show, Attend and Tell* captioner: a frozen image network ({config.encoder}, "
            f"trained on ImageNet) sees the picture as {config.grid_size}x{config.grid_size} regions, and a "
            "decoder writes the caption one word at a time, choosing for each word which regions to look at "
            "(the heatmaps on this page).")
    if getattr(config, "copy_weight", 0):
        said += (" It also reads that network's own guess at what it looks at (one of 1,000 ImageNet "
                 "classes), which lets it say names its training captions never had.")
    return said


def _learnt_from(record: dict) -> str:
    scenes, composites = record.get("emoji_images"), record.get("photo_images")
    if not (scenes and composites):
        return ""
    return (f"**What it learnt from.** Rendered pictures only: {scenes:,} scenes of emoji on drawn settings "
            f"and {composites:,} photo cut-outs pasted on {record.get('train_backgrounds', 'a few')} "
            "background photos, each with five captions.")


def _how_often_right(record: dict) -> str:
    """The main measured figures, in words: real photos, emoji scenes, new cut-outs."""
    photos, emoji, cutouts = record["validation_photos"], record.get("figures") or {}, record.get("photo_composites") or {}
    unseen = photos.get("not_calibrated_photos")
    key = "not_calibrated_" if unseen else ""       # over the photos no decoding choice was made on
    lines = [f"- **{photos.get('photos', 0)} real photos**, labelled by hand: it names the main subject of "
             f"{_pc(photos.get(key + 'main_subject_recall'))}"
             + (f" of the {unseen} photos it was not tuned on" if unseen else "")
             + f", and looks at it {_pc(photos.get(key + 'pointing_game'))} of the time. But "
             f"{_pc(photos.get(key + 'chair_s'))} of its captions also name something that is not there, "
             f"and {_pc(photos.get(key + 'setting_precision'))} of the settings it names are right."]
    if photos.get(key + "noun_ece") is not None:
        lines.append(f"- The confidence it shows for a noun is off by {100 * photos[key + 'noun_ece']:.0f} "
                     "points on average on those photos.")
    if emoji.get("object_recall") is not None:
        lines.append(f"- **{emoji.get('images', 0)} emoji scenes**: it finds {_pc(emoji['object_recall'])} of the "
                     f"objects, {_pc(emoji.get('object_precision'))} of what it names is there, and the setting "
                     f"is right {_pc(emoji.get('setting_accuracy'))} of the time.")
    if cutouts.get("object_recall") is not None:
        lines.append(f"- **{cutouts.get('images', 0)} new cut-outs on new backgrounds**: it finds "
                     f"{_pc(cutouts['object_recall'])} of the objects.")
    return "**How often it is right** (one caption each, on pictures it never trained on):\n\n" + "\n".join(lines)


def _pc(value) -> str:
    return f"{100 * value:.0f}%" if isinstance(value, (int, float)) else "(not measured)"


def _limits(card: str) -> str:
    """The card's own words on what the model cannot do, where it says so."""
    found = CANNOT.search(card)
    if not found:
        return ""
    said = " ".join(found.group(1).split()).replace("the nouns above", "the nouns it can name")
    return f"**Limits.** {said[:1].upper()}{said[1:]}"


def _pointer(captioner) -> str:
    path = getattr(captioner.checkpoint, "path", None)
    shipped = path is not None and Path(path).resolve() == DEFAULT_CHECKPOINT.resolve()
    where = (f"`{DEFAULT_CHECKPOINT.parent.name}/{DEFAULT_CHECKPOINT.name}/{CARD}` in the repository" if shipped
             else f"`{CARD}` in the checkpoint")
    return (f"Every figure and how it is measured, the nouns and settings it can name, its data and their "
            f"licences: the full model card ({where}), below.")


def _demoted(card: str) -> str:
    """A card's headings under the panel's."""
    return re.sub(r"^(#{1,4}) ", r"##\1 ", card.strip(), flags=re.MULTILINE).replace("\n\n\n", "\n\n")


def _cut(text: str, room: int) -> str:
    """`text` whole if it fits in `room` characters, else its paragraphs that do, the next one cut
    after its last sentence that fits, and an ellipsis."""
    if len(text) <= room:
        return text
    kept = ""
    for paragraph in re.split(r"\n\s*\n", text):
        if len(kept) + len(paragraph) + 4 > room:
            heading, _, body = paragraph.partition("\n") if paragraph.startswith("#") else ("", "", paragraph)
            kept += f"{heading}\n" if heading else ""
            return kept + _first_sentences(" ".join(body.split()), room - len(kept) - 4) + " …"
        kept += paragraph + "\n\n"
    return kept
