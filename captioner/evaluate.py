"""`python -m captioner evaluate`: caption held-out images, score them like the papers do.

BLEU-1..4 and CIDEr (METEOR where Java runs) come from pycocoevalcap, the standard COCO caption
evaluation (scores.py); with a rendered world's instances file, also that world's metrics: object
recall/precision, counts (the emoji world), setting and the pointing game (attention grounding),
as defined in the spec (worlds/metrics.py).
"""
from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from .data import load_captions


def evaluate(captioner, captions_file, images_dir, instances_file=None, limit: int = 0, batch_size: int = 32,
             progress: bool = True, world="emoji", text_scores: bool = True, **options) -> dict:
    """Caption the first `limit` images (0: all) with the given decoding options -> the figures.
    `world`: the World (or its registered name: "emoji", "photos") whose nouns and settings score
    `instances_file` (World.metrics). `text_scores`: False leaves out BLEU, CIDEr and METEOR (six
    seconds a call, most of it METEOR's Java), for callers that read only the world's metrics."""
    from .scores import caption_scores
    from .worlds import get_world
    world = get_world(world)
    captions = load_captions(captions_file, images_dir)
    count = min(limit, len(captions.files)) if limit else len(captions.files)
    references = {captions.image_ids[i]: [] for i in range(count)}
    for row, text in captions.pairs:
        if row < count:
            references[captions.image_ids[row]].append(text)
    hypotheses, predictions = {}, []
    for start in tqdm(range(0, count, batch_size), desc="evaluate", unit="batch", disable=not progress):
        rows = range(start, min(start + batch_size, count))
        results = captioner.caption_batch([Path(images_dir) / captions.files[r] for r in rows], **options)
        for row, result in zip(rows, results):
            image_id = captions.image_ids[row]
            hypotheses[image_id] = result.text
            predictions.append({"image_id": image_id, "words": result.words, "attention": result.attention})
    figures = {"images": count, "strategy": options.get("strategy", "greedy"),
               **(caption_scores(references, hypotheses) if text_scores else {})}
    if instances_file:
        figures.update(world.metrics(predictions, json.loads(Path(instances_file).read_text())))
    return figures
