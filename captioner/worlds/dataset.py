"""Any world's images rendered into the common on-disk format, in COCO's file formats.

`render(world, out, n, seed)` writes `out/images/*.jpg`, `out/captions.json` (five true captions
an image) and `out/instances.json` (boxes, the world's categories, each image's `setting` and the
world's other image fields). Every image's randomness comes from (seed, index) alone, so the same
seed gives the same files whatever the number of worker processes.
"""
from __future__ import annotations

import io
import json
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .registry import get_world

JPEG_QUALITY = 90            # what images are saved at unless the world's draw says otherwise
_NOT_FIELDS = ("file_name", "captions", "objects")   # the keys of a drawn image that are no image field


def render(world, out_dir, n_images: int, seed: int, workers: int = 1, image_size: int = 256, **options) -> dict:
    """Draw `n_images` of a world (a World or a registered name) with `options` (its World.plan's:
    emoji `families`, photos `split`...) -> a summary: the counts, the plan's own, the time taken."""
    world = get_world(world)
    plan = world.plan(**options)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    job = (world, str(out), seed, image_size, plan)
    if workers > 1:     # forked: the workers inherit the job (a world's functions need not pickle)
        with get_context("fork").Pool(workers, _start_worker, (job,)) as pool:
            drawn = pool.map(_draw_in_worker, range(n_images), chunksize=16)
    else:
        drawn = [_draw(job, index) for index in range(n_images)]
    write_coco(out, drawn, image_size, plan.categories)
    seconds = time.perf_counter() - start
    return {"out": str(out), "n_images": n_images, "seed": seed, **plan.summary, "seconds": round(seconds, 1),
            "images_per_second": round(n_images / max(seconds, 1e-9), 1)}


_JOB = None                  # a worker process's job, set once as it starts


def _start_worker(job) -> None:
    global _JOB
    _JOB = job


def _draw_in_worker(index: int) -> dict:
    return _draw(_JOB, index)


def _draw(job, index: int) -> dict:
    """Draw image `index` and save it under images/; -> its file name, captions, objects and fields."""
    world, out, seed, size, plan = job
    drawn = dict(world.draw(np.random.default_rng([seed, index]), size, **plan.options))
    name = f"{plan.prefix}_{seed}_{index:06d}.jpg"
    buffer = io.BytesIO()
    drawn.pop("image").save(buffer, format="JPEG", quality=drawn.pop("quality", JPEG_QUALITY))
    (Path(out) / "images" / name).write_bytes(buffer.getvalue())
    return {"file_name": name, **drawn}


def write_coco(out: Path, drawn: list[dict], size: int, categories: list[dict]) -> None:
    """captions.json and instances.json of the drawn images (ids from 1, annotation ids unique over
    each file, as in COCO)."""
    category_id = {c["name"]: c["id"] for c in categories}
    images, captions, boxes, described = [], [], [], []
    for image_id, image in enumerate(drawn, start=1):
        entry = {"id": image_id, "file_name": image["file_name"], "width": size, "height": size}
        images.append(entry)
        captions += [{"id": len(captions) + n, "image_id": image_id, "caption": c}
                     for n, c in enumerate(image["captions"], start=1)]
        boxes += [{"id": len(boxes) + n, "image_id": image_id, "category_id": category_id[o["category"]],
                   "bbox": [int(v) for v in o["bbox"]], **{k: v for k, v in o.items() if k not in ("category", "bbox")}}
                  for n, o in enumerate(image["objects"], start=1)]
        described.append({**entry, **{k: v for k, v in image.items() if k not in _NOT_FIELDS}})
    (out / "captions.json").write_text(json.dumps({"images": images, "annotations": captions}))
    (out / "instances.json").write_text(json.dumps({"images": described, "categories": categories,
                                                    "annotations": boxes}))
