"""The word prior's scale for decoding, chosen after training (`make model`'s calibration stage).

The gate is learnt at the training scale while the decoder learns to lean on its own words for the
cut-outs it memorises, so on things it has not seen the prior is under-used. Among multiples of the
trained scale, keep the one that names the main subject of the most calibration photos (the part of
the hand-labelled real photos the recipe names: the only real photographs there are to choose on)
whose recall on emoji calibration scenes (a seed of their own) stays at or above the recipe's floor
and whose captions break (caption_checks.broken_caption: a noun first or twice, or four words twice) no
more often than at the trained scale; ties go to the smaller scale. The model card reports
real-photo figures on the other photos too, which no choice has seen.
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from .checkpoint import CONFIG, TRAIN_STATE, VOCAB, WEIGHTS
from .config import LIMITS


def calibrate_word_prior(run: Path, calibration, scenes: Path, labels_file, photos_dir) -> dict:
    """Measure each candidate scale, write the chosen one into run/config.json (the trained one is
    kept beside the training history) and return what was measured. `calibration`: the recipe's."""
    from .subjects import load_labels
    config = json.loads((run / CONFIG).read_text())
    if not config["model"].get("imagenet_words"):
        return {}
    state = json.loads((run / TRAIN_STATE).read_text())
    trained = float(state.setdefault("trained_word_prior_scale", config["model"]["word_prior_scale"]))
    (run / TRAIN_STATE).write_text(json.dumps(state, indent=1) + "\n")
    photos = calibration_photos(load_labels(labels_file), calibration.source)
    top = LIMITS["word_prior_scale"][1]
    candidates = sorted({trained} | {min(trained * k, top) for k in calibration.multiples})
    results = {scale: measure_scale(run, config, scale, scenes, photos, photos_dir) for scale in candidates}
    chosen = choose_scale(results, trained, calibration.emoji_floor)
    config["model"]["word_prior_scale"] = chosen
    copy = choose_copy_weight(run, config, calibration, scenes, photos, photos_dir)
    confidence = fit_noun_confidence(run, config, photos, photos_dir)
    (run / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {"trained": trained, "scale": chosen, "photos": len(photos),
            "candidates": {f"{k:g}": v for k, v in results.items()}, "copy": copy, "confidence": confidence}


def choose_copy_weight(run: Path, config: dict, calibration, scenes: Path, photos: list, photos_dir) -> dict:
    """The copy path's share (model.CopyPath) among the recipe's candidates, by the scale's rule:
    most main subjects named on the calibration photos, emoji recall at or above the floor, no more
    broken captions than without the copy path; ties go to the smaller share. Written into `config`."""
    candidates = sorted(set(calibration.copy_weights) | {0.0})
    results = {w: measure_scale(run, config, config["model"]["word_prior_scale"], scenes, photos, photos_dir,
                                copy_weight=w) for w in candidates}
    chosen = choose_scale(results, 0.0, calibration.emoji_floor)
    config["model"]["copy_weight"] = chosen
    return {"weight": chosen, "candidates": {f"{k:g}": v for k, v in results.items()}}


def fit_noun_confidence(run: Path, config: dict, photos: list, photos_dir) -> dict:
    """Platt scaling (p -> sigmoid(a logit p + b)) of the probability shown for each named noun,
    fitted on the calibration photos against whether the noun is in the photo; written into
    `config` as noun_confidence_slope and _bias, with the expected calibration error before and after."""
    from .confidence import platt, scaled_confidence
    from .photo_figures import expected_calibration_error, noun_confidences
    from .subjects import caption_photos
    with _decoding(run, config) as model:
        results = caption_photos(model, photos, photos_dir, objects=True)
    pairs = [pair for photo in photos if photo["file"] in results for pair in noun_confidences(results[photo["file"]], photo)]
    slope, bias = platt(pairs) if len(pairs) >= 10 else (1.0, 0.0)
    config["model"].update(noun_confidence_slope=slope, noun_confidence_bias=bias)
    after = [(float(scaled_confidence(p, slope, bias)), ok) for p, ok in pairs]
    return {"slope": slope, "bias": bias, "nouns": len(pairs),
            "ece_before": expected_calibration_error(pairs), "ece_after": expected_calibration_error(after)}


def calibration_photos(labels: list[dict], source: str) -> list[dict]:
    """The validation photos decoding choices are made on: "alternate", every second photo in file
    order (a sample of every source: object close-ups, people, scenes), or those of one source."""
    if source == "alternate":
        return sorted(labels, key=lambda photo: photo["file"])[::2]
    return [photo for photo in labels if photo["file"].startswith(source + "/")]


def choose_scale(results: dict, trained: float, emoji_floor: float) -> float:
    """{scale: {"emoji_recall", "photo_recall", "broken"}} -> the scale to decode with."""
    fit = lambda s: results[s]["emoji_recall"] >= emoji_floor and results[s]["broken"] <= results[trained]["broken"]
    return max((s for s in results if fit(s) or s == trained), key=lambda s: (results[s]["photo_recall"], -s))


@contextlib.contextmanager
def _decoding(run: Path, config: dict, **model_fields):
    """The run's weights and vocabulary decoded with `config` (and these model fields changed)."""
    from .api import Captioner
    with tempfile.TemporaryDirectory() as folder:
        for name in (VOCAB, WEIGHTS):
            (Path(folder) / name).symlink_to((run / name).resolve())
        (Path(folder) / CONFIG).write_text(json.dumps({**config, "model": {**config["model"], **model_fields}}))
        yield Captioner.load(folder, use_litert=False)


def measure_scale(run: Path, config: dict, scale: float, scenes: Path, photos: list, photos_dir, **fields) -> dict:
    """The run's captions at one scale (and other model fields): emoji recall on the calibration
    scenes, main subjects named on the calibration photos, and how many of those captions break."""
    from .evaluate import evaluate
    from .caption_checks import broken_caption, world_forms
    from .subjects import caption_photos, main_subject_recall
    with _decoding(run, config, word_prior_scale=scale, **fields) as model:
        emoji = evaluate(model, scenes / "captions.json", scenes / "images", scenes / "instances.json",
                         progress=False)["object_recall"]
        captions = caption_photos(model, photos, photos_dir)
    named = main_subject_recall(captions, photos, model.vocab.words)
    forms = world_forms()
    # Over every photo: with the copy path the vocabulary, and so "in vocabulary", grows.
    result = {"emoji_recall": emoji, "photo_recall": named["main_subject_recall"],
              "broken": sum(broken_caption(text, forms) for text in captions.values())}
    print(f"[calibrate] word prior scale {scale:g} {fields or ''}: {result}", flush=True)
    return result
