"""`make model`: the default model from nothing, by the recipe in recipes/default.toml.

Stages: render both worlds' training and held-out sets, cache Lite0 features and train, calibrate
the word prior's scale for decoding, evaluate every held-out set and the real validation photos,
fit the familiarity statistics, write the model card from its template, and ship the checkpoint
and the page's examples. Every figure lands in RUN/heldout_figures.json, which the card reads.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "default.toml"))
    parser.add_argument("--work", default="data/scene-model", help="scratch folder (renders, feature cache, run)")
    parser.add_argument("--out", default="assets/model", help="where the checkpoint is shipped")
    parser.add_argument("--examples", default="assets/examples", help="where the page's example images go")
    parser.add_argument("--finish-only", action="store_true",
                        help="skip rendering and training: calibrate, evaluate and ship the run in --work")
    parser.add_argument("--labels", default=str(ROOT / "assets" / "validation" / "labels.json"))
    parser.add_argument("--validation-photos", default=str(ROOT / "data" / "validation"))
    args = parser.parse_args()
    import captioner
    captioner.import_tensorflow_quietly()
    from captioner.recipe import load_recipe
    recipe, work = load_recipe(args.recipe), Path(args.work)
    stages = Stages(recipe, work, args)
    if not args.finish_only:
        stages.timed("render", stages.render)
        stages.timed("features_and_train", stages.train)
        (work / "timings.json").write_text(json.dumps(stages.timings))
    stages.finish()


class Stages:
    """The recipe's stages over one scratch folder; each stage's time goes into the record."""

    def __init__(self, recipe, work: Path, args):
        self.recipe, self.work, self.args = recipe, work, args
        self.run, self.train_dir = work / "run", work / "train"
        self.timings: dict = {}
        self.start = time.perf_counter()

    def timed(self, name: str, stage):
        begin = time.perf_counter()
        result = stage()
        self.timings[name] = round(time.perf_counter() - begin, 1)
        print(f"[make model] {name}: {self.timings[name]} s", flush=True)
        return result

    def heldout(self, name: str) -> Path:
        return self.work / {"emoji": "heldout", "texture": "heldout_texture", "photos": "photos_heldout",
                            "calibration": "calibration_scenes"}[name]

    def render(self) -> None:
        from captioner.worlds import merge_datasets, render
        d, w = self.recipe.data, self.recipe.data.workers
        render("emoji", self.work / "scenes", d.emoji_images, d.train_seed, workers=w)
        render("photos", self.work / "photos", d.photo_images, d.train_seed, workers=w, split="train")
        self.render_heldout()
        # The feature cache is keyed by file name, and an earlier recipe's scenes had the same names
        # with other pixels: from nothing means from nothing.
        for stale in (self.train_dir, self.work / "features"):
            shutil.rmtree(stale, ignore_errors=True)
        merge_datasets(self.train_dir, [self.work / "scenes", self.work / "photos"])

    def render_heldout(self) -> None:
        """The held-out sets, the figures' ground: from their own seeds, so a `--finish-only` run that
        lacks them renders the very same scenes again."""
        from captioner.worlds import render
        from captioner.worlds.emoji import HELDOUT_FAMILY
        d, w = self.recipe.data, self.recipe.data.workers
        for name, world, seed, extra in (("emoji", "emoji", d.heldout_seed, {}),
                                         ("texture", "emoji", d.texture_seed, {"families": (HELDOUT_FAMILY,)}),
                                         ("photos", "photos", d.heldout_seed, {"split": "heldout"})):
            if not (self.heldout(name) / "captions.json").is_file():
                render(world, self.heldout(name), d.heldout_images, seed, workers=w, **extra)

    def train(self) -> dict:
        import dataclasses
        from captioner.train import train
        from captioner.worlds import WORLDS
        train_config = dataclasses.replace(
            self.recipe.train, captions=str(self.train_dir / "captions.json"), images=str(self.train_dir / "images"),
            instances=str(self.train_dir / "instances.json"), out=str(self.run))
        known = {k: v for world in WORLDS.values() for k, v in world.category_words().items()}   # for box supervision
        return train(train_config, self.recipe.model, self.work / "features", known_phrases=known)

    def finish(self) -> None:
        """Calibrate, evaluate, fit, write the card and ship: everything after training."""
        from captioner.api import Captioner
        self.timed("render_heldout", self.render_heldout)
        record = {"photo_probe": self.timed("photo_probe", self.photo_probe),
                  "setting_classes": self.timed("setting_classes", self.setting_classes)}
        record["calibration"] = self.timed("calibrate_word_prior", self.calibrate)
        captioner = Captioner.load(self.run)
        record.update(self.evaluate(captioner))
        record["familiarity"] = self.timed("familiarity", lambda: self.familiarity(captioner))
        captioner = Captioner.load(self.run)   # with the statistics just fitted, which the warning reads
        record["warning"] = self.timed("warning", lambda: self.warning(captioner))
        self.write_record(record, captioner)
        ship(self.run, ROOT / self.args.out)
        ship_examples(self.recipe.examples, self.work, Path(self.args.validation_photos), ROOT / self.args.examples)

    def photo_probe(self) -> dict:
        """Fit the evidence gate's photograph probe (captioner/photo_probe.py) on emoji scenes and
        photo composites of its own seed; its accuracy on the held-out sets, and the share of the
        validation photos it calls photographs (none of them fitted on)."""
        import numpy as np
        from captioner.api import Captioner
        from captioner.photo_probe import FILE, PhotoProbe
        from captioner.subjects import load_labels
        from captioner.worlds import render
        d = self.recipe.data
        for name, world, extra in (("rendered", "emoji", {}), ("photographs", "photos", {"split": "train"})):
            if not (self.work / f"probe_{name}" / "captions.json").is_file():
                render(world, self.work / f"probe_{name}", d.probe_images, d.probe_seed, workers=d.workers, **extra)
        captioner = Captioner.load(self.run)
        folder = lambda path: sorted(Path(path).iterdir())
        probe = PhotoProbe.fit(pooled_features(captioner, folder(self.work / "probe_photographs" / "images")),
                               pooled_features(captioner, folder(self.work / "probe_rendered" / "images")))
        calls = lambda files: probe.photographs(pooled_features(captioner, files))
        held = {"emoji": ~calls(folder(self.heldout("emoji") / "images")),
                "texture": ~calls(folder(self.heldout("texture") / "images")),
                "photos": calls(folder(self.heldout("photos") / "images"))}
        probe.heldout_accuracy = float(np.mean(np.concatenate(list(held.values()))))
        probe.save(self.run / FILE)
        photos = [self.validation_photos() / p["file"] for p in load_labels(self.args.labels)]
        return {"heldout_accuracy": round(probe.heldout_accuracy, 4),
                "heldout": {name: round(float(right.mean()), 4) for name, right in held.items()},
                "validation_photographs": round(float(np.mean(calls(photos))), 4),
                "images_per_world": d.probe_images}

    def setting_classes(self) -> dict:
        """Which ImageNet classes show each setting (captioner/settings_seen.py), read from crops of
        the photo world's training backgrounds (none of the validation photos)."""
        import numpy as np
        from PIL import Image
        from captioner.api import Captioner
        from captioner.settings_seen import FILE, fit_setting_classes, random_crops, save
        from captioner.worlds.photos.sources import resolve
        from captioner.worlds.photos.tables import load_backgrounds
        captioner, rng, probs = Captioner.load(self.run), np.random.default_rng(self.recipe.data.probe_seed), {}
        for background in load_backgrounds():
            if background.split == "train":
                with Image.open(resolve(background.file)) as photo:
                    crops = random_crops(photo.convert("RGB"), rng)
                probs.setdefault(background.setting, []).append(captioner.whole_image_classes(captioner.features(crops)))
        classes = fit_setting_classes(probs)
        save(classes, self.run / FILE)
        return {setting: len(found) for setting, found in classes.items()}

    def calibrate(self) -> dict:
        from captioner.calibrate import calibrate_word_prior
        from captioner.worlds import render
        c = self.recipe.calibration
        render("emoji", self.heldout("calibration"), c.images, c.seed, workers=self.recipe.data.workers)
        bars = self.recipe.floors["validation"]
        return calibrate_word_prior(self.run, c, self.heldout("calibration"), self.args.labels, self.validation_photos(),
                                    (bars["not_calibrated_setting_precision"], bars["not_calibrated_setting_recall"]))

    def evaluate(self, captioner) -> dict:
        from captioner.evaluate import evaluate
        from captioner.model_card import recall_by_head
        held = lambda name, **kw: evaluate(captioner, self.heldout(name) / "captions.json", self.heldout(name) / "images",
                                           self.heldout(name) / "instances.json", **kw)
        record = {"figures": self.timed("evaluate_emoji", lambda: held("emoji")),
                  "heldout_texture": self.timed("evaluate_texture", lambda: held("texture")),
                  "photo_composites": self.timed("evaluate_photos", lambda: held("photos", world="photos")),
                  "validation_photos": self.timed("evaluate_validation", lambda: self.validate(captioner))}
        model = captioner.checkpoint.model
        record["composites_by_head"] = recall_by_head(record["photo_composites"].get("per_noun", {}),
                                                      model.word_prior and model.word_prior.word_map.numpy(), captioner.vocab)
        return record

    def validate(self, captioner) -> dict:
        """On the hand-labelled real photos: main subjects named, objects invented (CHAIR), settings,
        noun confidence and pointing (photo_figures.py), over every photo and over those the
        calibration never saw; broken captions; per-photo captions to RUN/validation_captions.jsonl."""
        from captioner.calibrate import calibration_photos
        from captioner.caption_checks import broken_caption, world_forms
        from captioner.photo_figures import photo_figures
        from captioner.subjects import caption_photos, load_labels, main_subject_recall, write_captions
        labels = load_labels(self.args.labels)
        results = caption_photos(captioner, labels, self.validation_photos(), objects=True)
        captions = {file: result.text for file, result in results.items()}
        write_captions(self.run / "validation_captions.jsonl", captions, labels)
        tuned = {photo["file"] for photo in calibration_photos(labels, self.recipe.calibration.source)}
        unseen = [p for p in labels if p["file"] not in tuned]
        figures = {**main_subject_recall(captions, labels, captioner.vocab.words), **photo_figures(results, labels)}
        aside = {**main_subject_recall(captions, unseen, captioner.vocab.words), **photo_figures(results, unseen)}
        forms = world_forms()
        broken = sorted(file for file, text in captions.items() if broken_caption(text, forms))
        figures.update(self.uncalibrated_ece(labels, unseen))
        return {**figures, **{f"not_calibrated_{k}": v for k, v in aside.items()}, "broken_captions": broken}

    def uncalibrated_ece(self, labels: list, unseen: list) -> dict:
        """The noun confidences' calibration error before Platt scaling (the decoder's own
        probabilities: the same captions, shown unscaled), over every photo and the unseen ones."""
        from captioner.calibrate import _decoding
        from captioner.photo_figures import expected_calibration_error, noun_confidences
        from captioner.subjects import caption_photos
        config = json.loads((self.run / "config.json").read_text())
        with _decoding(self.run, config, noun_confidence_slope=1.0, noun_confidence_bias=0.0,
                       noun_confidence_evidence=0.0) as raw:
            results = caption_photos(raw, labels, self.validation_photos(), objects=True)
        ece = lambda photos: expected_calibration_error(
            [pair for p in photos if p["file"] in results for pair in noun_confidences(results[p["file"]], p)])
        return {"noun_ece_uncalibrated": ece(labels), "not_calibrated_noun_ece_uncalibrated": ece(unseen)}

    def familiarity(self, captioner) -> dict:
        """Fit the warning's statistics on the training images; a `--finish-only` run whose training
        renders are gone keeps the fit it has (features only: no decoding choice changes it)."""
        from fit_familiarity import fit_and_report
        if not (self.train_dir / "images").is_dir():
            return json.loads((self.run / "heldout_figures.json").read_text())["familiarity"]
        return fit_and_report(captioner, self.train_dir / "images",
                              [self.heldout("emoji") / "images", self.heldout("photos") / "images"],
                              photos=[self.validation_photos()])

    def warning(self, captioner) -> dict:
        from measure_warning import measure
        return measure(captioner, self.args.labels, self.validation_photos(), choose=True)

    def validation_photos(self) -> Path:
        """data/validation, fetched (scripts/fetch_validation.py) when missing."""
        photos = Path(self.args.validation_photos)
        if not photos.is_dir():
            import subprocess
            subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_validation.py"), "--labels",
                            self.args.labels, "--out", str(photos)], check=True)
        return photos

    def write_record(self, record: dict, captioner) -> None:
        """RUN/heldout_figures.json (every figure, the recipe it ran) and the card rendered from it."""
        import dataclasses
        from captioner.checkpoint import CARD, TRAIN_STATE
        from captioner.model_card import render_card
        earlier = self.work / "timings.json"   # the stages before, as the run that trained measured them
        timings = {**(json.loads(earlier.read_text()) if earlier.is_file() else {}), **self.timings}
        timings["total"] = round(sum(timings.values()), 1)
        history = json.loads((self.run / TRAIN_STATE).read_text())["history"]
        record.update(rendered(self.work), timings=timings,
                      training={"loss": history["loss"][-1], "val_loss": history["val_loss"][-1]},
                      recipe={"file": recipe_name(self.recipe.path), "data": dataclasses.asdict(self.recipe.data),
                              "floors": self.recipe.floors,
                              "calibration": dataclasses.asdict(self.recipe.calibration)})
        (self.run / "heldout_figures.json").write_text(json.dumps(record, indent=1))
        (self.run / CARD).write_text(render_card(captioner.checkpoint.config, captioner.vocab.words, record))
        print(json.dumps(record))


def pooled_features(captioner, files: list, batch: int = 32):
    """Image files -> (N, C) mean-pooled encoder features, as the model's encode pools them."""
    import numpy as np
    from captioner.sandbox import load_untrusted_image
    rows = [np.asarray(captioner.features([load_untrusted_image(f) for f in files[i:i + batch]])).mean(1)
            for i in range(0, len(files), batch)]
    return np.concatenate(rows)


def recipe_name(path: Path) -> str:
    """The recipe as the card names it: relative to the repository where it is in it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def rendered(work: Path) -> dict:
    """What the run in `work` was trained on, read from its renders rather than today's recipe, so a
    `--finish-only` card describes the run it finishes; where the training renders are gone, from
    the run's own earlier record."""
    from captioner.worlds.emoji import FAMILIES, HELDOUT_FAMILY
    from captioner.worlds.photos.tables import load_backgrounds
    keys = ("emoji_images", "photo_images", "train_families", "texture_family", "train_backgrounds")
    if not (work / "scenes" / "instances.json").is_file():
        earlier = json.loads((work / "run" / "heldout_figures.json").read_text())
        return {key: earlier[key] for key in keys}
    scenes = json.loads((work / "scenes" / "instances.json").read_text())["images"]
    used = {image.get("texture", "smooth") for image in scenes}
    return dict(zip(keys, (len(scenes), len(json.loads((work / "photos" / "captions.json").read_text())["images"]),
                           [f for f in FAMILIES if f in used] + sorted(used - set(FAMILIES)), HELDOUT_FAMILY,
                           sum(background.split == "train" for background in load_backgrounds()))))


def ship(run: Path, out: Path) -> None:
    """Copy what the app needs (no optimizer state) into assets/model."""
    from captioner.checkpoint import FILES
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(run / name, out / name)


def ship_examples(examples, work: Path, validation_photos: Path, out: Path) -> None:
    """The page's examples: the recipe's photos (photo_1_chelsea.jpg, ...), then a few held-out
    composites and emoji scenes."""
    from PIL import Image
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jpg"):
        old.unlink()
    for n, name in enumerate(examples.photos, start=1):
        with Image.open(validation_photos / name) as photo:
            photo.convert("RGB").save(out / f"photo_{n}_{Path(name).stem}.jpg", quality=90)
    for prefix, folder, count in (("composite", "photos_heldout", examples.composites),
                                  ("scene", "heldout", examples.emoji_scenes)):
        for n, path in enumerate(sorted((work / folder / "images").iterdir())[:count], start=1):
            shutil.copy2(path, out / f"{prefix}_{n}.jpg")


if __name__ == "__main__":
    main()
