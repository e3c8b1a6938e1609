"""Several rendered sets, of any worlds, merged into one COCO-format set to train on."""
from __future__ import annotations

import json
from pathlib import Path


def merge_datasets(out_dir, parts) -> dict:
    """Rendered sets (worlds.render's, of one world or several) -> one COCO-format set to train on.

    `out/images/` links to every part's images (file names are unique across worlds and seeds);
    image and annotation ids are renumbered; categories are merged by name (a "dog" is a dog in
    every world); each image keeps its `setting` and its world's other fields (the photo world's
    `background`).
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
