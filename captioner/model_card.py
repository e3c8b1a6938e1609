"""The model card `make model` writes: recipes/model_card.md filled in from what was measured.

Every figure comes from the run's record (heldout_figures.json: held-out figures, calibration,
training losses, stage timings, the familiarity fit and the recipe it ran), so a card can be
rendered again from a shipped checkpoint alone and says nothing that was not measured.
"""
from __future__ import annotations

import json
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "recipes" / "model_card.md"
EMOJI_KEYS = ("bleu1", "bleu4", "cider", "meteor", "object_recall", "object_precision", "count_accuracy",
              "setting_accuracy", "pointing_game", "pointing_chance")
PHOTO_KEYS = ("bleu1", "bleu4", "cider", "object_recall", "object_precision", "setting_accuracy",
              "pointing_game", "pointing_chance")
# (card set, record key, key of the recipe's floors)
SETS = (("emoji", "figures", ""), ("texture", "heldout_texture", "held-out texture: "),
        ("photos", "photo_composites", "photo composites: "), ("validation", "validation_photos", "validation photos: "))


def render_card(config, words, measured: dict, template: Path = TEMPLATE) -> str:
    """config: the CheckpointConfig; words: the vocabulary's words; measured: the run's record."""
    recipe, names = measured["recipe"], nameable(words)
    return Path(template).read_text().format_map({
        **_what_it_is(config, measured), **_data(measured, names, config.train), **_recipe(config, measured),
        **_figures(measured, recipe["floors"]), **_familiarity(measured["familiarity"]),
        "warning": warning_section(measured.get("warning")),
        "summary": summary_line(measured["validation_photos"])})


def _what_it_is(config, measured: dict) -> dict:
    m, t = config.model, config.train
    size = m.image_size or 224
    return {"grid": m.grid_size, "feature_dim": m.feature_dim, "size": size, "units": m.units,
            "attention_lambda": t.attention_lambda, "attention_supervision": t.attention_supervision,
            "vocab_size": m.vocab_size, "calibration": calibration_text(measured.get("calibration") or {}, m,
                                                                       measured["recipe"], measured.get("photo_probe"))}


def _data(measured: dict, names: dict, train) -> dict:
    data = measured["recipe"]["data"]
    used = f", {train.captions_per_image} of them drawn per image for training" if train.captions_per_image else ""
    return {"train_family_count": len(measured["train_families"]), "train_families": ", ".join(measured["train_families"]),
            "texture_family": measured["texture_family"], "emoji_count": len(names["emoji"]),
            "emoji_nouns": ", ".join(names["emoji"]), "photo_count": len(names["photo"]),
            "photo_nouns": ", ".join(names["photo"]), "settings": ", ".join(names["settings"]),
            "train_backgrounds": measured["train_backgrounds"], "emoji_images": measured["emoji_images"],
            "photo_images": measured["photo_images"], "train_seed": data["train_seed"], "captions_used": used,
            "val_percent": f"{100 * train.val_fraction:g}",
            "validation_photos": measured["validation_photos"].get("photos", 0)}


def _recipe(config, measured: dict) -> dict:
    t, data = config.train, measured["recipe"]["data"]
    return {"minutes": f"{measured['timings']['total'] / 60:.1f}", "epochs": t.epochs, "batch_size": t.batch_size,
            "length_step": t.length_step, "learning_rate": t.learning_rate, "clip_norm": t.clip_norm,
            "max_length": config.model.max_length, "loss": f"{measured['training']['loss']:.3f}",
            "val_loss": f"{measured['training']['val_loss']:.3f}", "timings": json.dumps(measured["timings"]),
            "heldout_seed": data["heldout_seed"], "texture_seed": data["texture_seed"],
            "recipe_file": measured["recipe"]["file"]}


def _figures(measured: dict, floors: dict) -> dict:
    emoji, texture, photos = measured["figures"], measured["heldout_texture"], measured["photo_composites"]
    return {"emoji_heldout": emoji["images"], "texture_heldout": texture["images"], "photo_heldout": photos["images"],
            "emoji_rows": _rows(emoji, EMOJI_KEYS, floors, "emoji"),
            "texture_rows": _rows(texture, EMOJI_KEYS, floors, "texture"),
            "photo_rows": _rows(photos, PHOTO_KEYS, floors, "photos"),
            "validation_rows": _validation_rows(measured["validation_photos"], floors),
            "by_head": by_head_line(measured.get("composites_by_head") or {}),
            "by_background": by_background_line(photos.get("per_background") or {}),
            "shortfalls": "; ".join(shortfalls(measured, floors)) or "none"}


def floor(floors: dict, world: str, key: str, found: dict) -> float | None:
    """The bar `found[key]` is held to; the emoji pointing game must also beat chance."""
    value = floors.get(world, {}).get(key)
    if value is not None and key == "pointing_game" and "pointing_over_chance" in floors.get(world, {}):
        value = max(value, floors[world]["pointing_over_chance"] * found.get("pointing_chance", 0))
    return value


# Bars on these figures are ceilings: fewer invented objects, a smaller calibration error.
LOWER_IS_BETTER = ("chair_s", "chair_i", "noun_ece")


def lower_is_better(key: str) -> bool:
    return key.endswith(LOWER_IS_BETTER)


def misses(value, bar: float, key: str) -> bool:
    if value is None:
        return True
    return value > bar if lower_is_better(key) else value < bar


def bar_text(floors: dict, world: str, key: str) -> str:
    value = floors.get(world, {}).get(key)
    if value is None:
        return ""
    if lower_is_better(key):
        return f"<= {value:.2f}"
    times = floors[world].get("pointing_over_chance") if key == "pointing_game" else None
    return f">= {value:.2f}" + (f" and >= {times} x chance" if times else "")


def shortfalls(measured: dict, floors: dict) -> list[str]:
    """The bars this model does not reach, said plainly in its card."""
    short = []
    for world, record, name in SETS:
        found = measured.get(record) or {}
        for key in floors.get(world, {}):
            bar = floor(floors, world, key, found)
            if key != "pointing_over_chance" and misses(found.get(key), bar, key):
                sign = ">" if lower_is_better(key) else "<"
                short.append(f"{name}{key} {found.get(key) or 0:.3f} {sign} {bar:.3f}")
    return short


def _rows(found: dict, keys, floors: dict, world: str) -> str:
    return "\n".join(f"| {k} | {found[k]:.3f} | {bar_text(floors, world, k)} |" for k in keys
                     if isinstance(found.get(k), (int, float)))


def _validation_rows(v: dict, floors: dict) -> str:
    bar = lambda key: bar_text(floors, "validation", key)
    rows = [(f"main_subject_recall (all {v.get('photos', 0)} photos)", v.get("main_subject_recall"), ""),
            (f"main_subject_recall_in_vocabulary ({v.get('photos_in_vocabulary', 0)} photos)",
             v.get("main_subject_recall_in_vocabulary"), bar("main_subject_recall_in_vocabulary")),
            (f"the same, photos the calibration never saw ({v.get('not_calibrated_photos_in_vocabulary', 0)} photos)",
             v.get("not_calibrated_main_subject_recall_in_vocabulary"),
             bar("not_calibrated_main_subject_recall_in_vocabulary")),
            (f"main_subject_recall, photos the calibration never saw ({v.get('not_calibrated_photos', 0)} photos)",
             v.get("not_calibrated_main_subject_recall"), bar("not_calibrated_main_subject_recall"))]
    rows += _beyond_the_subject_rows(v, bar)
    lines = [f"| {name} | {value or 0:.3f} | {bar} |" for name, value, bar in rows]
    broken = f"{len(v.get('broken_captions', []))} of {v.get('photos', 0)}"
    return "\n".join(lines + [f"| captions that break (a noun first or twice, or four words twice) | {broken} | |"])


def _beyond_the_subject_rows(v: dict, bar) -> list[tuple]:
    """CHAIR, settings, noun confidence and pointing (captioner/photo_figures.py), each over every
    photo and over the photos the calibration never saw."""
    rows = []
    for key, name in (("chair_s", "CHAIR-s: captions naming an object not in the photo"),
                      ("chair_i", "CHAIR-i: named objects not in the photo"),
                      ("setting_precision", "setting precision (settings named that are right)"),
                      ("setting_recall", "setting recall (photos with a clear setting, named)"),
                      ("noun_ece_uncalibrated", "expected calibration error of noun probabilities, before scaling"),
                      ("noun_ece", "expected calibration error of noun confidences (shown, scaled)"),
                      ("pointing_game", "pointing game on the main subject's box")):
        for prefix, where in (("", "all photos"), ("not_calibrated_", "photos the calibration never saw")):
            if v.get(prefix + key) is not None:
                rows.append((f"{name} ({where})", v[prefix + key], bar(prefix + key)))
    return rows


def nameable(words) -> dict[str, list[str]]:
    """What the vocabulary lets the model say: nouns of both worlds' tables, and settings."""
    from .worlds import EMOJI, PHOTOS
    from .worlds.emoji import tables
    from .worlds.photos.tables import load_stamps
    words = set(words)
    says = lambda phrase: all(w in words for w in phrase.split())
    emoji = sorted({o.noun for o in tables.objects() if says(o.noun)} | {"person"} & words)
    photo = sorted({s.kind.noun for s in load_stamps() if s.split == "train" and says(s.kind.noun)})
    settings = sorted({name for name, st in {**EMOJI.settings(), **PHOTOS.settings()}.items()
                       if any(says(p) for p in st.phrases)})
    return {"emoji": emoji, "photo": photo, "settings": settings}


def summary_line(validation: dict) -> str:
    """The one short line the page shows under its title: what it learnt from and how often it is
    right on real photos no choice was made on (what it can name is in the About panel; on a phone
    a longer line pushed the examples below the fold)."""
    recall = validation.get("not_calibrated_main_subject_recall") or 0
    return (f"Trained only on rendered scenes (emoji, and photo cut-outs on photos); named the main subject "
            f"of {100 * recall:.0f}% of {validation.get('not_calibrated_photos', 0)} real photos it never saw.")


def calibration_text(calibration: dict, model, recipe: dict, probe: dict | None = None) -> str:
    if not calibration.get("scale"):
        return ""
    rows = "; ".join(f"{k}: emoji recall {v['emoji_recall']:.3f}, photos {v['photo_recall']:.3f}, {v['broken']} broken"
                     for k, v in calibration["candidates"].items())
    chosen = recipe["calibration"]
    once = "each ImageNet class speaks once per caption" if model.word_prior_once else "a class may speak again"
    first = "the prior speaks to a caption's first word" if model.word_prior_first_word else \
        "the prior is silent on a caption's first word"
    return (f"Its scale (`word_prior_scale`) was {calibration['trained']:g} in training and is "
            f"**{calibration['scale']:g}** for decoding, chosen by `make model` (captioner/calibrate.py) on the "
            f"{calibration['photos']} {_source_text(chosen['source'])} of the validation set (real photographs, never "
            f"trained on) with emoji calibration scenes (seed {chosen['seed']}) as a check: the scale whose captions "
            f"name the most photos' subjects while emoji recall stays at or above {chosen['emoji_floor']} and no "
            f"more of their captions break (a noun first or twice, or four words twice) than at the trained scale. "
            f"Per scale (photos: {_recall_name(calibration)}): {rows}. The real-photo figures below are also "
            f"given over the photos this choice never saw. Rules of the prior: {once}; {first}.{copy_text(calibration, probe)}")


def _source_text(source: str) -> str:
    return "photos (every second in file order)" if source == "alternate" else f"{source} photos"


def _recall_name(calibration: dict) -> str:
    """What a calibration record's photo figure is: every photo since the copy path, before it the
    photos whose subject the vocabulary has a word for."""
    return "main_subject_recall" if calibration.get("copy") else "main_subject_recall_in_vocabulary"


def copy_text(calibration: dict, probe: dict | None = None) -> str:
    copy, confidence = calibration.get("copy"), calibration.get("confidence")
    if not copy:
        return ""
    rows = "; ".join(f"{k}: emoji recall {v['emoji_recall']:.3f}, photos {v['photo_recall']:.3f}, {v['broken']} broken"
                     for k, v in copy["candidates"].items())
    text = (f"\n\nThe copy path (`copy_weight`, captioner/copy_path.py: a share of each step's noun mass goes to the "
            f"everyday names of the ImageNet classes the step attends to, including names no training caption has) "
            f"decodes with **{copy['weight']:g}**, chosen on the same photos by the same rule. Per share: {rows}.")
    text += evidence_text(calibration.get("evidence"), probe) + person_text(calibration.get("person"))
    text += settings_text(calibration.get("settings"))
    if confidence:
        reads = (f", and in a photograph {confidence['evidence_slope']:g} x logit of the head's probability for the "
                 f"noun's classes over the whole image" if confidence.get("evidence_slope") else "")
        text += (f" The confidence shown for each noun is Platt-scaled (slope {confidence['slope']:g}{reads}, bias "
                 f"{confidence['bias']:g}), fitted on the {confidence['nouns']} nouns those photos' captions name: "
                 f"expected calibration error {confidence['ece_before']} before, {confidence['ece_after']} after "
                 f"on them (other photos: in the table below).")
    return text


def evidence_text(evidence: dict | None, probe: dict | None) -> str:
    if not evidence:
        return ""
    held = ", ".join(f"{k} {v:.3f}" for k, v in (probe or {}).get("heldout", {}).items())
    where = (f" The gate holds in photographs: a logistic probe on the pooled features (photo_probe.py, fitted "
             f"on {probe['images_per_world']} emoji scenes and {probe['images_per_world']} photo composites of a "
             f"seed of their own) tells them from rendered scenes, whose glyphs the head cannot read (held out, "
             f"right: {held}); it calls {probe['validation_photographs']:.0%} of the validation photos "
             f"photographs.") if probe else ""
    rows = "; ".join(f"{k}: emoji recall {v['emoji_recall']:.3f}, photos {v['photo_recall']:.3f}, CHAIR-s {v['chair_s']:.3f}"
                     for k, v in evidence["candidates"].items())
    return (f" The evidence gate (`noun_evidence`, model.CopyPath.seen: a noun is said only where the encoder's "
            f"ImageNet head gives its classes at least this probability over the whole image; its mass goes to the "
            f"nouns the head does see, and with none left no further thing is brought in) is "
            f"**{evidence['threshold']:g}**: of the candidates keeping emoji recall at the floor, the one naming the "
            f"most main subjects less captions inventing an object on the same photos, or the gentlest within one "
            f"photo of it. Per threshold: "
            f"{rows}.{where}")


def person_text(person: dict | None) -> str:
    if not person:
        return ""
    return (f" A person, which no ImageNet class names, is one class more in that gate (people.py): the "
            f"probability that a photograph shows one is sigmoid({person['face']:g} x logit(face) + "
            f"{person['body']:g} x logit(body) + {person['bias']:g}) of the best scores of MediaPipe's face and "
            f"body detectors, fitted on the same {person['photos']} photos ({person['with_person']} with a "
            f"person; right on {person['right_at_half']:.0%} of them at even odds); at even odds or more the gate "
            f"sees a person, and the head's classes share what is left.")


def settings_text(settings: dict | None) -> str:
    if not settings:
        return ""
    rows = "; ".join(f"{k}: precision {v['setting_precision']}, recall {v['setting_recall']}, {v['settings_named']} named"
                     for k, v in settings["candidates"].items())
    return (f" The setting gate (`setting_evidence`, settings_seen.py: a photograph's caption keeps its setting "
            f"only where the head gives that setting's classes, read from crops of the photo world's training "
            f"backgrounds, at least this probability; otherwise it ends before the setting) is "
            f"**{settings['threshold']:g}**: of the candidates and off, the one nearest both setting bars "
            f"({settings['bars'][0]:g} precision, {settings['bars'][1]:g} recall) on the same photos. Per "
            f"threshold: {rows}.")


def by_head_line(groups: dict) -> str:
    if not groups:
        return ""
    named, other = groups["named_by_imagenet"], groups["not_named_by_imagenet"]
    return (f"Object recall by noun: {named['object_recall']:.3f} over the {len(named['nouns'])} held-out nouns an "
            f"ImageNet class names ({named['present']} objects: {', '.join(named['nouns'])}), "
            f"{other['object_recall']:.3f} over the {len(other['nouns'])} that no class names ({other['present']} objects: "
            f"{', '.join(other['nouns']) or 'none'}): those only the decoder's memory of the training cut-outs can name.")


def by_background_line(per_background: dict) -> str:
    if not per_background:
        return ""
    parts = [f"{Path(name).stem} {t['setting_right'] / t['images']:.2f}" for name, t in per_background.items()]
    return (f"Setting accuracy on each of the {len(parts)} held-out background photos (each is one scene, "
            f"so the figure moves in steps of about 1/{len(parts)}): {', '.join(parts)}.")


def _familiarity(report: dict) -> dict:
    real = next((v for k, v in report.items() if k.startswith("warned:")), None)
    return {"fam_train_images": f"{report['train_images']:,}", "fam_directions": report["directions"],
            "fam_threshold": report["threshold"], "fam_heldout_images": report["heldout_images"],
            "fam_heldout_warned": f"{100 * report['heldout_warned']:.1f}",
            "fam_train_warned": f"{100 * report['train_warned']:.1f}",
            "fam_real": f" and on {real} of the hand-labelled real photos" if real else ""}


def warning_section(warning: dict | None) -> str:
    """The warning measured as a detector (scripts/measure_warning.py): how often it fires on
    images it should flag and on images it should not."""
    if not warning:
        return ""
    rows = "\n".join(f"| {name} | {'yes' if r['should_warn'] else 'no'} | {r['warned']} of {r['images']} |"
                     for name, r in warning["rates"].items())
    return (f"\nMeasured as a detector (scripts/measure_warning.py): blank, flat and noise images are told "
            f"from their pixels that there is nothing to caption; the rest by the distance, whose threshold "
            f"({warning['threshold']}) was chosen {warning['chosen']} (the largest share of flagged images that "
            f"should be, less the share of photos it can name, while no example photo it can name is flagged).\n\n"
            f"| images | should warn | warned |\n|---|---|---|\n{rows}\n")


def recall_by_head(per_noun: dict, word_map, vocab) -> dict:
    """Held-out composites' object recall over nouns some ImageNet class names (in the model's own
    word map) and over those none does: what the classifier's prior can carry to unseen cut-outs,
    and what only the decoder's memory of one or two training cut-outs a noun can."""
    from .word_map import mapped
    groups = {"named_by_imagenet": {"nouns": [], "recalled": 0, "present": 0},
              "not_named_by_imagenet": {"nouns": [], "recalled": 0, "present": 0}}
    for noun, tally in per_noun.items():
        named = word_map is not None and mapped(word_map, vocab, noun)
        group = groups["named_by_imagenet" if named else "not_named_by_imagenet"]
        group["nouns"].append(noun)
        group["recalled"] += tally["recalled"]
        group["present"] += tally["present"]
    for group in groups.values():
        group["object_recall"] = round(group["recalled"] / group["present"], 4) if group["present"] else 0.0
    return groups
