"""Training on both worlds: merging rendered sets, and scoring photo composites."""
import json

import numpy as np

from captioner.worlds import PHOTOS, merge_datasets


def write_set(folder, prefix, category, setting):
    (folder / "images").mkdir(parents=True)
    images = [{"id": i, "file_name": f"{prefix}_{i}.jpg", "width": 64, "height": 64} for i in (1, 2)]
    for im in images:
        (folder / "images" / im["file_name"]).write_bytes(b"jpeg")
    notes = [{"id": i, "image_id": i, "caption": f"a {category['name']} {setting}"} for i in (1, 2)]
    (folder / "captions.json").write_text(json.dumps({"images": images, "annotations": notes}))
    boxes = [{"id": i, "image_id": i, "category_id": category["id"], "bbox": [0, 0, 32, 32]} for i in (1, 2)]
    (folder / "instances.json").write_text(json.dumps({
        "images": [{**im, "setting": "grass"} for im in images], "categories": [category], "annotations": boxes}))


def test_merged_sets_renumber_ids_and_merge_categories_by_name(tmp_path):
    write_set(tmp_path / "a", "scene", {"id": 18, "name": "dog"}, "on the grass")
    write_set(tmp_path / "b", "photo", {"id": 3, "name": "dog", "coco_category": "dog"}, "on the grass")
    summary = merge_datasets(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    assert summary == {"out": str(tmp_path / "m"), "images": 4, "captions": 4}
    captions = json.loads((tmp_path / "m" / "captions.json").read_text())
    instances = json.loads((tmp_path / "m" / "instances.json").read_text())
    assert [im["id"] for im in captions["images"]] == [1, 2, 3, 4]
    assert sorted(n["id"] for n in captions["annotations"]) == [1, 2, 3, 4]
    assert instances["categories"] == [{"id": 1, "name": "dog"}]
    assert {n["category_id"] for n in instances["annotations"]} == {1}
    assert all(im["setting"] == "grass" for im in instances["images"])
    assert all((tmp_path / "m" / "images" / im["file_name"]).read_bytes() == b"jpeg" for im in captions["images"])


def test_photo_metrics_use_the_photo_tables():
    instances = {"images": [{"id": 1, "width": 64, "height": 64, "setting": "garden", "background": "b/tree.jpg"},
                            {"id": 2, "width": 64, "height": 64, "setting": "shore", "background": "b/lake.jpg"}],
                 "categories": [{"id": 1, "name": "frog"}, {"id": 2, "name": "owl"}],
                 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20]},
                                 {"id": 2, "image_id": 2, "category_id": 2, "bbox": [40, 40, 20, 20]}]}
    top_left = np.zeros((5, 2, 2))
    top_left[:, 0, 0] = 1.0                                   # every step looks at the top-left cell
    predictions = [{"image_id": 1, "words": "a frog in a garden".split(), "attention": top_left},
                   {"image_id": 2, "words": "two frogs by the water".split(), "attention": top_left}]
    figures = PHOTOS.metrics(predictions, instances)
    assert figures["object_recall"] == 0.5 and figures["object_precision"] == 0.5
    assert figures["per_noun"] == {"frog": {"recalled": 1, "present": 1}, "owl": {"recalled": 0, "present": 1}}
    assert figures["setting_accuracy"] == 1.0
    assert figures["per_background"] == {"b/lake.jpg": {"setting_right": 1, "images": 1},
                                         "b/tree.jpg": {"setting_right": 1, "images": 1}}
    assert figures["pointing_game"] == 1.0 and figures["counts"]["pointed"] == 1
