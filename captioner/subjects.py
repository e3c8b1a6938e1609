"""Does a caption name what a real photo is of? `main_subject_recall` over hand-labelled photos.

A labels file (assets/validation/labels.json) lists, per photo, `file` (relative to a photos
folder), `nouns` (any of which names the main subject), `setting` (or empty) and `licence`.
A caption names the subject when one of the nouns, or its plural, appears in it as whole words.
The recall is reported over every photo and over the photos that the model could name at all:
those with an acceptable noun whose every word is in the model's vocabulary.
"""
from __future__ import annotations

import json
from pathlib import Path

from .vocab import tokenize

IRREGULAR = {"mouse": "mice", "goose": "geese", "person": "people", "man": "men", "woman": "women",
             "sheep": "sheep", "deer": "deer", "fish": "fish", "child": "children", "knife": "knives"}


def load_labels(path) -> list[dict]:
    data = json.loads(Path(path).read_text())
    photos = data["photos"] if isinstance(data, dict) else data
    for photo in photos:
        if not photo.get("file") or not photo.get("nouns"):
            raise ValueError(f"{path}: every photo needs a file and at least one noun: {photo}")
    return photos


def plural(noun: str) -> str:
    words = noun.split()
    last = words[-1]
    if last in IRREGULAR:
        last = IRREGULAR[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in set("aeiou"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join(words[:-1] + [last])


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


def names_subject(caption: str, nouns) -> bool:
    """True when the caption names one of the nouns (singular or plural) as whole words."""
    words = tokenize(caption)
    return any(_contains(words, tokenize(form)) for noun in nouns for form in (noun, plural(noun)))


def in_vocabulary(nouns, vocabulary) -> bool:
    """True when some noun's every word (singular or plural) is a word the model can say."""
    vocabulary = set(vocabulary)
    return any(all(w in vocabulary for w in tokenize(form)) for noun in nouns for form in (noun, plural(noun)))


def main_subject_recall(captions: dict[str, str], labels: list[dict], vocabulary=None) -> dict:
    """captions: {photo file: caption}; -> recall over all labelled photos that have a caption, and
    over those whose subject is in `vocabulary` (any iterable of words) when one is given."""
    rows = [(photo, captions[photo["file"]]) for photo in labels if photo["file"] in captions]
    if not rows:
        raise ValueError("no labelled photo has a caption")
    hits = [names_subject(text, photo["nouns"]) for photo, text in rows]
    figures = {"photos": len(rows), "main_subject_recall": round(sum(hits) / len(rows), 4)}
    if vocabulary is not None:
        known = [hit for (photo, _), hit in zip(rows, hits) if in_vocabulary(photo["nouns"], vocabulary)]
        figures["photos_in_vocabulary"] = len(known)
        figures["main_subject_recall_in_vocabulary"] = round(sum(known) / len(known), 4) if known else None
    return figures


def caption_photos(captioner, labels: list[dict], photos_dir, batch_size: int = 16, objects: bool = False,
                   **decoding) -> dict:
    """{file: caption text} (objects: {file: api.Caption}) for every labelled photo found under
    photos_dir (missing ones are skipped)."""
    files = [photo["file"] for photo in labels if (Path(photos_dir) / photo["file"]).is_file()]
    if not files:
        raise FileNotFoundError(f"none of the labelled photos is under {photos_dir} "
                                "(python scripts/fetch_validation.py fetches them)")
    captions = {}
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        for file, result in zip(chunk, captioner.caption_batch([Path(photos_dir) / f for f in chunk], **decoding)):
            captions[file] = result if objects else result.text
    return captions


def evaluate_photos(captioner, labels_file, photos_dir, captions_out=None,
                    **options) -> tuple[dict, dict[str, str]]:
    """Caption the labelled photos; -> (figures, {file: caption}); also writes the captions as JSON
    lines ({"file", "caption", "nouns", "named"}) to captions_out when given."""
    labels = load_labels(labels_file)
    captions = caption_photos(captioner, labels, photos_dir, **options)
    figures = main_subject_recall(captions, labels, captioner.vocab.words)
    if captions_out:
        write_captions(captions_out, captions, labels)
    return figures, captions


def write_captions(path, captions: dict[str, str], labels: list[dict]) -> None:
    """One JSON line per captioned photo: {"file", "caption", "nouns", "named"}."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for photo in labels:
            if photo["file"] in captions:
                handle.write(json.dumps({"file": photo["file"], "caption": captions[photo["file"]],
                                         "nouns": photo["nouns"],
                                         "named": names_subject(captions[photo["file"]], photo["nouns"])}) + "\n")
