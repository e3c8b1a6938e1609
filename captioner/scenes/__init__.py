"""The scene world: images and captions rendered offline from emoji glyphs, in COCO's file formats.

`render_dataset(out, n, seed)` writes `out/images/*.jpg`, `out/captions.json` and
`out/instances.json`. Every image's randomness comes from (seed, index) alone, so the same seed
gives the same files whatever the number of worker processes.
"""
from __future__ import annotations

import json
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from . import tables
from .captions import Group, actor_captions, object_captions
from .render import background, place

KIND_WEIGHTS = (0.45, 0.35, 0.2)     # one, two or three kinds of object
COUNT_WEIGHTS = (0.5, 0.3, 0.2)      # one, two or three of each
ACTOR_SHARE, EXTRA_SHARE = 0.3, 0.4


def glyph_sides(instances: int) -> tuple[float, float]:
    """Glyph side as a share of the image: smaller as the scene fills up."""
    return {1: (0.32, 0.44), 2: (0.26, 0.36), 3: (0.22, 0.3), 4: (0.2, 0.28)}.get(instances, (0.17, 0.23))


def make_scene(rng, size: int) -> dict:
    """-> {"image", "setting", "objects": [(coco category, box)], "captions": [5 strings]}."""
    setting = tables.settings()[str(rng.choice(sorted(tables.settings())))]
    image = background(setting.name, rng, size)
    actors = [a for a in tables.actors() if setting.name in a.settings]
    kinds = [o for o in tables.objects() if setting.name in o.settings]
    if actors and rng.random() < ACTOR_SHARE:
        actor = actors[int(rng.integers(len(actors)))]
        extras = [k for k in kinds if k.noun != "person"]
        extra = extras[int(rng.integers(len(extras)))] if extras and rng.random() < EXTRA_SHARE else None
        count = int(rng.choice(3, p=COUNT_WEIGHTS)) + 1 if extra else 0
        codes = [actor.emoji] + [extra.emoji] * count if extra else [actor.emoji]
        boxes = place(image, codes, rng, (0.28, 0.38) if extra else (0.34, 0.46))
        actor_group = Group(actor, boxes[:1])
        extra_group = Group(extra, boxes[1:]) if extra else None
        captions = actor_captions(actor_group, extra_group, setting, rng, size)
        objects = [("person", boxes[0])] + [(extra.coco_category, b) for b in boxes[1:]]
    else:
        chosen = rng.choice(len(kinds), size=min(len(kinds), int(rng.choice(3, p=KIND_WEIGHTS)) + 1),
                            replace=False)
        counts = [int(rng.choice(3, p=COUNT_WEIGHTS)) + 1 for _ in chosen]
        codes = [kinds[k].emoji for k, c in zip(chosen, counts) for _ in range(c)]
        boxes = place(image, codes, rng, glyph_sides(len(codes)))
        groups, start = [], 0
        for k, c in zip(chosen, counts):
            groups.append(Group(kinds[k], boxes[start:start + c]))
            start += c
        captions = object_captions(groups, setting, rng, size)
        objects = [(g.kind.coco_category, b) for g in groups for b in g.boxes]
    return {"image": image, "setting": setting.name, "objects": objects, "captions": captions}


def _render_one(job) -> dict:
    out, seed, index, size = job
    scene = make_scene(np.random.default_rng([seed, index]), size)
    name = f"scene_{seed}_{index:06d}.jpg"
    scene.pop("image").save(Path(out) / "images" / name, quality=90)
    return {"file_name": name, **scene}


def render_dataset(out_dir, n_images: int, seed: int, workers: int = 1, image_size: int = 256) -> dict:
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(str(out), seed, index, image_size) for index in range(n_images)]
    if workers > 1:
        with get_context("fork").Pool(workers) as pool:
            scenes = pool.map(_render_one, jobs, chunksize=64)
    else:
        scenes = [_render_one(job) for job in jobs]
    _write_coco(out, scenes, image_size)
    seconds = time.perf_counter() - start
    return {"out": str(out), "n_images": n_images, "seed": seed, "seconds": round(seconds, 1),
            "images_per_second": round(n_images / max(seconds, 1e-9), 1)}


def _write_coco(out: Path, scenes: list[dict], size: int) -> None:
    images, captions, boxes = [], [], []
    for image_id, scene in enumerate(scenes, start=1):
        entry = {"id": image_id, "file_name": scene["file_name"], "width": size, "height": size}
        images.append(entry)
        # Annotation ids are unique over the whole file, as in COCO.
        captions += [{"id": len(captions) + n, "image_id": image_id, "caption": c}
                     for n, c in enumerate(scene["captions"], start=1)]
        boxes += [{"id": len(boxes) + n, "image_id": image_id, "category_id": tables.COCO_IDS[name],
                   "bbox": [int(v) for v in box]} for n, (name, box) in enumerate(scene["objects"], start=1)]
    categories = [{"id": tables.COCO_IDS[name], "name": name}
                  for name in sorted({o.coco_category for o in tables.objects()}, key=tables.COCO_IDS.get)]
    with_setting = [{**entry, "setting": scene["setting"]} for entry, scene in zip(images, scenes)]
    (out / "captions.json").write_text(json.dumps({"images": images, "annotations": captions}))
    (out / "instances.json").write_text(json.dumps({"images": with_setting, "categories": categories,
                                                    "annotations": boxes}))
