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
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from .checkpoint import CONFIG, PHOTO_PROBE, SETTING_CLASSES, TRAIN_STATE, VOCAB, WEIGHTS
from .config import LIMITS


def calibrate_word_prior(run: Path, calibration, scenes: Path, labels_file, photos_dir, setting_bars) -> dict:
    """Measure each candidate scale, write the chosen one into run/config.json (the trained one is
    kept beside the training history) and return what was measured. `calibration`: the recipe's;
    `setting_bars`: the setting precision and recall the real photos are held to."""
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
    person = fit_person_probe(config, photos, photos_dir)
    copy = choose_copy_weight(run, config, calibration, scenes, photos, photos_dir)
    evidence = choose_noun_evidence(run, config, calibration, scenes, photos, photos_dir)
    settings = choose_setting_evidence(run, config, calibration, photos, photos_dir, setting_bars)
    confidence = fit_noun_confidence(run, config, photos, photos_dir)
    (run / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {"trained": trained, "scale": chosen, "photos": len(photos),
            "candidates": {f"{k:g}": v for k, v in results.items()}, "copy": copy, "evidence": evidence,
            "settings": settings, "confidence": confidence, "person": person}


def fit_person_probe(config: dict, photos: list, photos_dir) -> dict:
    """The person probe (people.py) fitted on the calibration photos against whether a person is in
    each (their labels' nouns and objects); written into `config` as person_face, _body and _bias.
    It counts from the noun gate's choice on (the gate is where the model reads it)."""
    from .people import PersonDetectors, PersonProbe, shows_person
    from .sandbox import load_untrusted_image
    config["model"].update(person_face=0.0, person_body=0.0, person_bias=0.0)   # off unless fitted now
    found = [photo for photo in photos if (Path(photos_dir) / photo["file"]).is_file()]
    truth = [shows_person(photo) for photo in found]
    if len(set(truth)) < 2:   # nothing to tell apart
        return {}
    scores = PersonDetectors()([load_untrusted_image(Path(photos_dir) / photo["file"]) for photo in found])
    probe = PersonProbe.fit(scores, truth)
    config["model"].update(person_face=probe.face, person_body=probe.body, person_bias=probe.bias)
    said = probe.probability(scores) >= 0.5
    return {"face": probe.face, "body": probe.body, "bias": probe.bias, "photos": len(found),
            "with_person": int(sum(truth)), "right_at_half": round(float(np.mean(said == np.array(truth))), 4)}


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


def choose_noun_evidence(run: Path, config: dict, calibration, scenes: Path, photos: list, photos_dir) -> dict:
    """The evidence gate's threshold (ModelConfig.noun_evidence) among the recipe's candidates and off:
    of those whose emoji recall stays at or above the floor, the one with the most main subjects named
    less captions inventing an object on the calibration photos, or the gentlest within one photo of
    it; off unless that beats off. Written into `config`."""
    if not calibration.noun_evidence or not config["model"].get("copy_weight"):
        return {}
    scale = config["model"]["word_prior_scale"]
    results = {t: measure_scale(run, config, scale, scenes, photos, photos_dir, noun_evidence=t)
               for t in (0.0, *calibration.noun_evidence)}
    fit = [t for t in results if results[t]["emoji_recall"] >= calibration.emoji_floor or t == 0.0]
    score = lambda t: results[t]["photo_recall"] - results[t]["chair_s"]
    # A difference of one photo is noise on a few dozen, and a stricter gate replaces more of the
    # decoder's right nouns: the gentlest threshold within one photo of the best.
    best = max(score(t) for t in fit)
    chosen = min((t for t in fit if t > 0 and score(t) >= best - 1 / len(photos) - 1e-3), default=0.0)   # figures: 4 places
    chosen = chosen if score(chosen) > score(0.0) else 0.0
    config["model"]["noun_evidence"] = chosen
    return {"threshold": chosen, "candidates": {f"{t:g}": v for t, v in results.items()}}


def choose_setting_evidence(run: Path, config: dict, calibration, photos: list, photos_dir, bars) -> dict:
    """The setting gate (ModelConfig.setting_evidence, settings_seen.py) among the recipe's candidates
    and off: the one nearest both bars on the calibration photos, max of min(precision / its bar,
    recall / its bar). A cut after decoding: the emoji scenes (rendered) are untouched. Ties go to off,
    then the smaller threshold. Written into `config`."""
    from .photo_figures import settings
    from .subjects import caption_photos
    if not calibration.setting_evidence or not (run / SETTING_CLASSES).is_file():
        return {}
    results = {}
    for threshold in (0.0, *calibration.setting_evidence):
        with _decoding(run, config, setting_evidence=threshold) as model:
            results[threshold] = settings(caption_photos(model, photos, photos_dir), photos)
        print(f"[calibrate] setting evidence {threshold:g}: {results[threshold]}", flush=True)
    near = lambda t: min((results[t]["setting_precision"] or 0.0) / bars[0], (results[t]["setting_recall"] or 0.0) / bars[1])
    chosen = max(results, key=lambda t: (round(near(t), 4), -t))
    config["model"]["setting_evidence"] = chosen
    return {"threshold": chosen, "bars": list(bars), "candidates": {f"{t:g}": v for t, v in results.items()}}


def fit_noun_confidence(run: Path, config: dict, photos: list, photos_dir) -> dict:
    """Platt scaling of the confidence shown for each named noun, sigmoid(a logit p + c logit e + b)
    of the decoder's probability p and, in a photograph, the head's evidence e for the noun's classes
    (api.Caption.evidence), fitted on the calibration photos against whether the noun is in the
    photo; written into `config` as noun_confidence_slope, _evidence and _bias, with the expected
    calibration error before (p itself) and after."""
    from .confidence import platt_with_evidence, scaled_confidence
    from .photo_figures import expected_calibration_error, in_photo, noun_steps
    from .subjects import caption_photos
    with _decoding(run, config, noun_confidence_slope=1.0, noun_confidence_bias=0.0,
                   noun_confidence_evidence=0.0) as model:
        results = caption_photos(model, photos, photos_dir, objects=True)
    triples = [(float(c.probs[step]), c.evidence[step], in_photo(noun, photo))
               for photo in photos if photo["file"] in results for c in [results[photo["file"]]]
               for step, noun in noun_steps(c.words) if c.evidence[step] is not None]
    slope, reads, bias = platt_with_evidence(triples) if len(triples) >= 10 else (1.0, 0.0, 0.0)
    config["model"].update(noun_confidence_slope=slope, noun_confidence_evidence=reads, noun_confidence_bias=bias)
    after = [(float(scaled_confidence(p, slope, bias, e, reads)), ok) for p, e, ok in triples]
    return {"slope": slope, "evidence_slope": reads, "bias": bias, "nouns": len(triples),
            "ece_before": expected_calibration_error([(p, ok) for p, _, ok in triples]),
            "ece_after": expected_calibration_error(after)}


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
        for name in (VOCAB, WEIGHTS, PHOTO_PROBE, SETTING_CLASSES):
            if (run / name).is_file():
                (Path(folder) / name).symlink_to((run / name).resolve())
        (Path(folder) / CONFIG).write_text(json.dumps({**config, "model": {**config["model"], **model_fields}}))
        captioner = Captioner.load(folder, use_litert=False)
        captioner.encoder = RememberedFeatures(captioner.encoder)
        yield captioner


class RememberedFeatures:
    """An encoder that encodes each image once per process: every candidate decodes the same
    calibration scenes and photos, and their features do not depend on the decoding fields that
    differ (about 4 s a candidate on two cores). Keyed by the encoder, its weights and the pixels."""

    _rows: dict = {}   # (encoder, weights digest, size, pixel digest) -> (N, C) features, shared by every instance

    def __init__(self, encoder):
        self.encoder = encoder
        first = encoder.network.weights[0].numpy()   # the stem's kernel: enough to tell weights apart
        self._weights = hashlib.sha1(first.tobytes()).hexdigest()

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def image_features(self, images):
        import tensorflow as tf
        pixels = [np.asarray(image, np.uint8) for image in images]
        engine = "litert" if self.encoder.litert is not None else "tensorflow"   # their features differ slightly
        keys = [(self.encoder.name, self._weights, engine, self.encoder.input_size, a.shape,
                 hashlib.sha1(a.tobytes()).hexdigest()) for a in pixels]
        missing = [i for i, key in enumerate(keys) if key not in self._rows]
        if missing:
            for i, row in zip(missing, self.encoder.image_features([pixels[i] for i in missing]).numpy()):
                self._rows[keys[i]] = row.astype(np.float16)   # exact: features are rounded through float16
        return tf.constant(np.stack([self._rows[key] for key in keys]).astype(np.float32))


# measure_scale's results by everything they depend on: a later stage's "off" candidate is an earlier
# stage's choice, measured already (about 40 s each on two cores).
_MEASURED: dict = {}


def measure_scale(run: Path, config: dict, scale: float, scenes: Path, photos: list, photos_dir, **fields) -> dict:
    """The run's captions at one scale (and other model fields): emoji recall on the calibration
    scenes, main subjects named on the calibration photos, how many of those captions break and how
    many invent an object (CHAIR-s)."""
    weights = (run / WEIGHTS).stat()
    key = json.dumps([str(run), weights.st_mtime_ns, weights.st_size, str(scenes), str(photos_dir),
                      sorted(p["file"] for p in photos), {**config["model"], "word_prior_scale": scale, **fields}],
                     sort_keys=True)
    if key not in _MEASURED:
        _MEASURED[key] = _measure(run, config, scale, scenes, photos, photos_dir, **fields)
    return _MEASURED[key]


def _measure(run: Path, config: dict, scale: float, scenes: Path, photos: list, photos_dir, **fields) -> dict:
    from .evaluate import evaluate
    from .caption_checks import broken_caption, world_forms
    from .photo_figures import chair
    from .subjects import caption_photos, main_subject_recall
    with _decoding(run, config, word_prior_scale=scale, **fields) as model:
        emoji = evaluate(model, scenes / "captions.json", scenes / "images", scenes / "instances.json",
                         progress=False, text_scores=False)["object_recall"]
        captions = caption_photos(model, photos, photos_dir)
    named = main_subject_recall(captions, photos, model.vocab.words)
    forms = world_forms()
    # Over every photo: with the copy path the vocabulary, and so "in vocabulary", grows.
    result = {"emoji_recall": emoji, "photo_recall": named["main_subject_recall"],
              "broken": sum(broken_caption(text, forms) for text in captions.values()),
              "chair_s": chair(captions, photos)["chair_s"]}
    print(f"[calibrate] word prior scale {scale:g} {fields or ''}: {result}", flush=True)
    return result
