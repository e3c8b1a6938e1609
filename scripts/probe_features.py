"""How far can anything trained on the frozen encoder's features go on the held-out sets?

A linear probe: a softmax classifier on Lite0 features, trained on a `make model` run's training
renders and scored on its held-out ones. It gets what the decoder never gets, the object's box
(features averaged over the cells under it). It is linear, so it proves no limit; it is a reference
point for naming a cut-out, or a setting on a background, it never saw, from these features and
these cut-outs:

  nouns:    box-pooled features of training composites -> noun; scored on training stamps in
            images it did not fit (seen stamps) and on the held-out composites (unseen stamps)
  settings: image-mean features -> setting; training composites -> held-out backgrounds, and
            emoji scenes alone or with the composites -> the held-out texture family

`python scripts/probe_features.py --work data/scene-model [--hidden 512]` (a finished run's folder:
its feature cache, training renders and held-out sets; --hidden: one ReLU layer first, a non-linear
reader). A few minutes on 2 cores; prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def noun_rows(instances: dict, features_of, grid: int):
    """(features pooled over each object's cells (n, C), nouns) for every annotation. The cells are
    the ones attention supervision and the pointing game use (captioner.boxes.box_cells)."""
    from captioner.boxes import box_cells
    names = {c["id"]: c["name"] for c in instances["categories"]}
    images = {im["id"]: im for im in instances["images"]}
    pooled, nouns = [], []
    for note in instances["annotations"]:
        image = images[note["image_id"]]
        cells = np.asarray(features_of(image["file_name"]), np.float32)                       # (N, C)
        under = box_cells([note["bbox"]], image["width"], image["height"], grid, grid).ravel()   # (N,)
        pooled.append(cells[under].mean(0))
        nouns.append(names[note["category_id"]])
    return np.stack(pooled), nouns


def setting_rows(instances: dict, features_of):
    """(image-mean features (n, C), settings) for every image."""
    means = [np.asarray(features_of(im["file_name"]), np.float32).mean(0) for im in instances["images"]]
    return np.stack(means), [im["setting"] for im in instances["images"]]


def fit_probe(train_x, train_y, tests: dict, seed: int = 0, epochs: int = 20, hidden: int = 0) -> dict:
    """Softmax regression (dropout 0.5 on standardised inputs, L2 1e-3): accuracy on each test set
    whose label the training set has. `hidden` > 0: one ReLU layer of that width first (then dropout
    0.5 again), a non-linear reader."""
    import keras
    labels = sorted(set(train_y))
    index = {name: n for n, name in enumerate(labels)}
    mean, spread = train_x.mean(0), train_x.std(0) + 1e-3
    keras.utils.set_random_seed(seed)
    middle = [keras.layers.Dense(hidden, "relu"), keras.layers.Dropout(0.5)] if hidden else []
    probe = keras.Sequential([keras.Input((train_x.shape[1],)), keras.layers.Dropout(0.5), *middle,
                              keras.layers.Dense(len(labels), kernel_regularizer=keras.regularizers.l2(1e-3))])
    probe.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    probe.fit((train_x - mean) / spread, np.array([index[y] for y in train_y]), epochs=epochs, batch_size=256,
              verbose=0)
    scores = {}
    for name, (x, y) in tests.items():
        known = [n for n, label in enumerate(y) if label in index]
        if not known:
            scores[name] = {"accuracy": None, "rows": 0}
            continue
        guess = np.argmax(probe.predict((x[known] - mean) / spread, verbose=0), axis=1)
        scores[name] = {"accuracy": round(float(np.mean(guess == [index[y[n]] for n in known])), 3),
                        "rows": len(known)}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="a make model run's folder")
    parser.add_argument("--hidden", type=int, default=0, help="a ReLU layer this wide before the softmax (0: linear)")
    args = parser.parse_args()
    probe = lambda x, y, tests: fit_probe(x, y, tests, hidden=args.hidden)
    import captioner
    captioner.import_tensorflow_quietly()
    from PIL import Image
    from captioner.checkpoint import load_checkpoint
    from captioner.data import load_feature_cache
    from captioner.encoders import build_encoder

    work = Path(args.work)
    config = load_checkpoint(work / "run").config.model
    grid = config.grid_size
    folder = next((work / "features").iterdir())
    index, cached = load_feature_cache(folder)
    trained = lambda name: cached[index[name]]
    encoder = build_encoder(config.encoder, "default", config.image_size, litert=True)

    def computed(split: str):
        instances = json.loads((work / split / "instances.json").read_text())
        names = [im["file_name"] for im in instances["images"]]
        features = {}
        for start in range(0, len(names), 50):
            batch = [np.asarray(Image.open(work / split / "images" / n).convert("RGB")) for n in names[start:start + 50]]
            features.update(zip(names[start:start + 50], encoder.image_features(batch).numpy()))
        return instances, features.__getitem__

    photos = json.loads((work / "photos" / "instances.json").read_text())
    scenes = json.loads((work / "scenes" / "instances.json").read_text())
    heldout_photos, heldout_features = computed("photos_heldout")
    texture, texture_features = computed("heldout_texture")

    print(json.dumps(probe_both(probe, grid, photos, scenes, trained, heldout_photos, heldout_features,
                                texture, texture_features), indent=1))


def probe_both(probe, grid, photos, scenes, trained, heldout_photos, heldout_features, texture, texture_features):
    """Nouns from the boxes' cells, settings from the whole grid: fit on training features, test on held-out sets."""
    x, nouns = noun_rows(photos, trained, grid)
    order = np.random.default_rng(0).permutation(len(nouns))
    fit, check = order[len(nouns) // 10:], order[:len(nouns) // 10]
    unseen_x, unseen_nouns = noun_rows(heldout_photos, heldout_features, grid)
    result = {"nouns": probe(x[fit], [nouns[n] for n in fit], {
        "seen_stamps_new_images": (x[check], [nouns[n] for n in check]),
        "heldout_composites": (unseen_x, unseen_nouns)})}

    photo_x, photo_settings = setting_rows(photos, trained)
    scene_x, scene_settings = setting_rows(scenes, trained)
    tests = {"heldout_composites": setting_rows(heldout_photos, heldout_features),
             "heldout_texture": setting_rows(texture, texture_features)}
    result["settings"] = {
        "composites": probe(photo_x, photo_settings, {"heldout_composites": tests["heldout_composites"]}),
        "emoji_scenes": probe(scene_x, scene_settings, {"heldout_texture": tests["heldout_texture"]}),
        "both_worlds": probe(np.concatenate([scene_x, photo_x]), scene_settings + photo_settings, tests)}
    return result


if __name__ == "__main__":
    main()
