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
    photos = [p for p in load_labels(labels_file) if p["file"].startswith(calibration.source + "/")]
    top = LIMITS["word_prior_scale"][1]
    candidates = sorted({trained} | {min(trained * k, top) for k in calibration.multiples})
    results = {scale: measure_scale(run, config, scale, scenes, photos, photos_dir) for scale in candidates}
    chosen = choose_scale(results, trained, calibration.emoji_floor)
    config["model"]["word_prior_scale"] = chosen
    (run / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {"trained": trained, "scale": chosen, "photos": len(photos),
            "candidates": {f"{k:g}": v for k, v in results.items()}}


def choose_scale(results: dict, trained: float, emoji_floor: float) -> float:
    """{scale: {"emoji_recall", "photo_recall", "broken"}} -> the scale to decode with."""
    fit = lambda s: results[s]["emoji_recall"] >= emoji_floor and results[s]["broken"] <= results[trained]["broken"]
    return max((s for s in results if fit(s) or s == trained), key=lambda s: (results[s]["photo_recall"], -s))


def measure_scale(run: Path, config: dict, scale: float, scenes: Path, photos: list, photos_dir) -> dict:
    """The run's captions at one scale: emoji recall on the calibration scenes, main subjects named
    on the calibration photos, and how many of those captions break."""
    from .api import Captioner
    from .evaluate import evaluate
    from .caption_checks import broken_caption, world_forms
    from .subjects import caption_photos, main_subject_recall
    with tempfile.TemporaryDirectory() as folder:
        for name in (VOCAB, WEIGHTS):
            (Path(folder) / name).symlink_to((run / name).resolve())
        (Path(folder) / CONFIG).write_text(json.dumps({**config, "model": {**config["model"], "word_prior_scale": scale}}))
        model = Captioner.load(folder, use_litert=False)
        emoji = evaluate(model, scenes / "captions.json", scenes / "images", scenes / "instances.json",
                         progress=False)["object_recall"]
        captions = caption_photos(model, photos, photos_dir)
    named = main_subject_recall(captions, photos, model.vocab.words)
    forms = world_forms()
    result = {"emoji_recall": emoji, "photo_recall": named["main_subject_recall_in_vocabulary"],
              "broken": sum(broken_caption(text, forms) for text in captions.values())}
    print(f"[calibrate] word prior scale {scale:g}: {result}", flush=True)
    return result
