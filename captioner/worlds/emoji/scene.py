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
from .render import FAMILIES, TRAIN_FAMILIES, background, place

KIND_WEIGHTS = (0.45, 0.35, 0.2)     # one, two or three kinds of object
COUNT_WEIGHTS = (0.5, 0.3, 0.2)      # one, two or three of each
ACTOR_SHARE, EXTRA_SHARE = 0.3, 0.4


def glyph_sides(instances: int) -> tuple[float, float]:
    """Glyph side as a share of the image: smaller as the scene fills up."""
    return {1: (0.32, 0.44), 2: (0.26, 0.36), 3: (0.22, 0.3), 4: (0.2, 0.28)}.get(instances, (0.17, 0.23))


def make_scene(rng, size: int, families=TRAIN_FAMILIES, varied: bool = False) -> dict:
    """-> {"image", "setting", "texture", "objects": [(coco category, box)], "captions": [5 strings]}.
    The background's texture family is drawn from `families` (render.FAMILIES); `varied`: its
    surface strength and layering vary too (render.background)."""
    setting = tables.settings()[str(rng.choice(sorted(tables.settings())))]
    family = str(families[int(rng.integers(len(families)))])
    image = background(setting.name, rng, size, family, varied)
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
    return {"image": image, "setting": setting.name, "texture": family, "varied_surfaces": varied,
            "objects": objects, "captions": captions}


def _render_one(job) -> dict:
    out, seed, index, size, families, varied = job
    scene = make_scene(np.random.default_rng([seed, index]), size, families, varied)
    name = f"scene_{seed}_{index:06d}.jpg"
    scene.pop("image").save(Path(out) / "images" / name, quality=90)
    return {"file_name": name, **scene}


def render_dataset(out_dir, n_images: int, seed: int, workers: int = 1, image_size: int = 256,
                   families=TRAIN_FAMILIES, varied_surfaces: bool = False) -> dict:
    """`families`: the background texture families to draw from; the default leaves out
    HELDOUT_FAMILY, which `families=(HELDOUT_FAMILY,)` renders alone to measure settings on it.
    `varied_surfaces`: the training recipe's surfaces of varied strength and layering
    (render.background); held-out sets are rendered without, as they always were."""
    families = tuple(families)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"texture families {unknown or '(none)'}: choose from {', '.join(FAMILIES)}")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(str(out), seed, index, image_size, families, varied_surfaces) for index in range(n_images)]
    if workers > 1:
        with get_context("fork").Pool(workers) as pool:
            scenes = pool.map(_render_one, jobs, chunksize=64)
    else:
        scenes = [_render_one(job) for job in jobs]
    _write_coco(out, scenes, image_size)
    seconds = time.perf_counter() - start
    return {"out": str(out), "n_images": n_images, "seed": seed, "families": list(families),
            "varied_surfaces": varied_surfaces, "seconds": round(seconds, 1),
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
    with_setting = [{**entry, "setting": scene["setting"], "texture": scene["texture"],
                     "varied_surfaces": scene["varied_surfaces"]}
                    for entry, scene in zip(images, scenes)]
    (out / "captions.json").write_text(json.dumps({"images": images, "annotations": captions}))
    (out / "instances.json").write_text(json.dumps({"images": with_setting, "categories": categories,
                                                    "annotations": boxes}))


def merge_datasets(out_dir, parts) -> dict:
    """Several rendered sets (scene world, photo world) -> one COCO-format set to train on.

    `out/images/` links to every part's images (file names are unique across worlds and seeds);
    image and annotation ids are renumbered; categories are merged by name (a "dog" is a dog in
    both worlds); each image keeps its `setting` (and the photo world's `background`).
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, captions, boxes, categories = [], [], [], {}
    for part in map(Path, parts):
        caps = json.loads((part / "captions.json").read_text())
        inst = json.loads((part / "instances.json").read_text())
        new_id = {}
        extra = {im["id"]: im for im in inst["images"]}
        for im in caps["images"]:
            new_id[im["id"]] = len(images) + 1
            images.append({**extra.get(im["id"], {}), **im, "id": new_id[im["id"]]})
            link = out / "images" / im["file_name"]
            if not link.exists():
                link.symlink_to((part / "images" / im["file_name"]).resolve())
        captions += [{**a, "id": len(captions) + n, "image_id": new_id[a["image_id"]]}
                     for n, a in enumerate(caps["annotations"], start=1)]
        name_of = {c["id"]: c["name"] for c in inst["categories"]}
        for c in inst["categories"]:
            categories.setdefault(c["name"], len(categories) + 1)
        boxes += [{**a, "id": len(boxes) + n, "image_id": new_id[a["image_id"]],
                   "category_id": categories[name_of[a["category_id"]]]}
                  for n, a in enumerate(inst["annotations"], start=1)]
    plain = [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in images]
    (out / "captions.json").write_text(json.dumps({"images": plain, "annotations": captions}))
    (out / "instances.json").write_text(json.dumps({
        "images": images, "categories": [{"id": i, "name": n} for n, i in categories.items()],
        "annotations": boxes}))
    return {"out": str(out), "images": len(images), "captions": len(captions)}
