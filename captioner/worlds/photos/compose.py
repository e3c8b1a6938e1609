"""The photo world: real photo cut-outs composed onto real background photos, in COCO's file formats.

`render_photos(out, n, seed, split)` writes `out/images/*.jpg`, `out/captions.json` and
`out/instances.json`, like the scene world (captions.py's grammar, five true captions an image,
boxes, `images[].setting`). The sources are Debian packages fetched into data/sources/ on first
use (captioner/scenes/sources.py); the tables beside this file say which files are used:

- photo_stamps.tsv: cut-out -> noun, plural, article, COCO category (or empty), split;
- photo_backgrounds.tsv: background photo -> setting, split;
- photo_settings.tsv: setting -> the two phrases captions use.

Whole stamps and whole backgrounds are held out (`split` column): `split="heldout"` composes only
those, `split="train"` only the others. Every image's randomness comes from (seed, index) alone.

instances.json has one category per caption noun (`name` is the noun, so grounding matches it in
captions; `coco_category` says which COCO category it falls under, empty where none), and each
annotation carries the `stamp` it was cut from; each image its `background`.
"""
from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from . import sources
from .captions import Group, object_captions
from .render import _overlaps
from .tables import Setting

HERE = Path(__file__).resolve().parent
STAMPS_TSV, BACKGROUNDS_TSV, SETTINGS_TSV = (HERE / f"photo_{n}.tsv" for n in ("stamps", "backgrounds", "settings"))
SPLITS = ("train", "heldout")

SUBJECT_WEIGHTS = (0.55, 0.2, 0.15, 0.1)   # 1, 2, 3 or 4 subjects: most photos are of one thing
LARGE_SHARE = 0.7                          # of single-subject images, how many show it large
MAX_UPSCALE = 3.0                          # a cut-out is never drawn larger than 3x its own pixels
OVERLAP = 0.15


@dataclass(frozen=True)
class PhotoKind:
    """What captions call a stamp (the fields captions.counted() reads)."""
    noun: str
    plural: str
    article: str
    coco_category: str


@dataclass(frozen=True)
class Stamp:
    file: str
    kind: PhotoKind
    split: str


@dataclass(frozen=True)
class Background:
    file: str
    setting: str
    split: str


def _rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@lru_cache(maxsize=None)
def load_stamps(path=STAMPS_TSV) -> tuple[Stamp, ...]:
    return tuple(Stamp(r["file"], PhotoKind(r["noun"], r["plural"], r["article"], r["coco_category"]), r["split"])
                 for r in _rows(path))


@lru_cache(maxsize=None)
def load_backgrounds(path=BACKGROUNDS_TSV) -> tuple[Background, ...]:
    return tuple(Background(r["file"], r["setting"], r["split"]) for r in _rows(path))


@lru_cache(maxsize=None)
def photo_settings(path=SETTINGS_TSV) -> dict[str, Setting]:
    return {r["setting"]: Setting(r["setting"], tuple(r["phrases"].split("|")), r["shows"]) for r in _rows(path)}


def kinds(stamps) -> list[PhotoKind]:
    """Every noun of a stamp table, once, sorted: the categories of instances.json."""
    return sorted({s.kind for s in stamps}, key=lambda k: k.noun)


@lru_cache(maxsize=2048)
def _stamp_image(path: str) -> Image.Image:
    """A cut-out as RGBA, cropped to its mask."""
    image = Image.open(path).convert("RGBA")
    box = image.getchannel("A").point(lambda a: 255 if a > 127 else 0).getbbox()
    if box is None:
        raise ValueError(f"{path}: the alpha channel is empty")
    return image.crop(box)


@lru_cache(maxsize=256)
def _background_image(path: str) -> Image.Image:
    return Image.open(path).convert("RGB")


def _crop_background(photo: Image.Image, rng, size: int) -> Image.Image:
    """A random square crop (60-100% of the short side), maybe mirrored, resized to size."""
    w, h = photo.size
    side = int(min(w, h) * rng.uniform(0.6, 1.0))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    image = photo.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)
    return image.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def _jitter(sprite: Image.Image, rng) -> Image.Image:
    """Per-subject colour and lighting: brightness, contrast, saturation; the mask is kept."""
    alpha = sprite.getchannel("A")
    rgb = sprite.convert("RGB")
    rgb = ImageEnhance.Brightness(rgb).enhance(rng.uniform(0.8, 1.2))
    rgb = ImageEnhance.Contrast(rgb).enhance(rng.uniform(0.85, 1.15))
    rgb = ImageEnhance.Color(rgb).enhance(rng.uniform(0.75, 1.25))
    rgb.putalpha(alpha)
    return rgb


def subject_sides(count: int, rng) -> tuple[float, float]:
    """A subject's longer side as a share of the image; one subject is often large."""
    if count == 1:
        return (0.55, 0.92) if rng.random() < LARGE_SHARE else (0.3, 0.55)
    return {2: (0.32, 0.52), 3: (0.26, 0.42)}.get(count, (0.22, 0.36))


def _paste(image: Image.Image, paths: list[str], rng, sides) -> list[list[int]]:
    """Paste one cut-out per path (scale, flip, small rotation, colour vary); -> [x, y, w, h] boxes
    of each mask (alpha > 127) in image pixels, every one wholly inside the image."""
    size, boxes = image.size[0], []
    for path in paths:
        source = _stamp_image(path)
        flip, angle = rng.random() < 0.5, rng.uniform(-10, 10)
        for attempt in range(60):
            shrink = 0.985 ** attempt               # crowded images: smaller subjects rather than overlap
            longest = min(size * rng.uniform(*sides) * shrink, MAX_UPSCALE * max(source.size), size - 2)
            scale = longest / max(source.size)
            sprite = source.resize((max(2, round(source.width * scale)), max(2, round(source.height * scale))),
                                   Image.LANCZOS)
            if flip:
                sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
            sprite = sprite.rotate(angle, Image.BICUBIC, expand=True)
            mask = sprite.getchannel("A").point(lambda a: 255 if a > 127 else 0)
            left, top, right, bottom = mask.getbbox() or (0, 0, sprite.width, sprite.height)
            sprite = sprite.crop((left, top, right, bottom))
            w, h = sprite.size
            if w > size or h > size:
                continue
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            if not _overlaps((x, y, w, h), boxes, OVERLAP) or attempt == 59:
                sprite = _jitter(sprite, rng)
                soft = sprite.getchannel("A").filter(ImageFilter.GaussianBlur(0.6))   # no hard cut-out edge
                image.paste(sprite, (x, y), soft)
                boxes.append([x, y, w, h])
                break
    return boxes


def _finish(image: Image.Image, rng) -> tuple[Image.Image, int]:
    """The whole photo's lighting, colour cast and blur; -> (image, JPEG quality to save it at)."""
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))
    cast = 1.0 + rng.uniform(-0.06, 0.06)
    pixels = np.asarray(image, np.float32) * np.array([cast, 1.0, 2.0 - cast], np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if rng.random() < 0.35:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return image, int(rng.integers(55, 96))


def _counts(subjects: int, rng) -> list[int]:
    """How many of each kind: 1-3 kinds, at most three of any one (captions count to three)."""
    most_kinds = min(subjects, 3)
    least_kinds = (subjects + 2) // 3
    n_kinds = int(rng.integers(least_kinds, most_kinds + 1))
    counts = [1] * n_kinds
    for _ in range(subjects - n_kinds):
        room = [i for i, c in enumerate(counts) if c < 3]
        counts[room[int(rng.integers(len(room)))]] += 1
    return counts


def make_photo(rng, size: int, stamps, backgrounds, settings, roots) -> dict:
    """-> {"image", "quality", "setting", "background", "objects": [(noun, stamp file, box)], "captions"}."""
    background = backgrounds[int(rng.integers(len(backgrounds)))]
    image = _crop_background(_background_image(str(sources.resolve(background.file, roots))), rng, size)
    by_noun = {}
    for stamp in stamps:
        by_noun.setdefault(stamp.kind.noun, []).append(stamp)
    nouns = sorted(by_noun)
    subjects = int(rng.choice(len(SUBJECT_WEIGHTS), p=SUBJECT_WEIGHTS)) + 1
    counts = _counts(subjects, rng)
    counts = counts[:len(nouns)]
    chosen = rng.choice(len(nouns), size=len(counts), replace=False)
    picks = [(by_noun[nouns[k]], c) for k, c in zip(chosen, counts)]
    files = [options[int(rng.integers(len(options)))].file for options, c in picks for _ in range(c)]
    boxes = _paste(image, [str(sources.resolve(f, roots)) for f in files], rng, subject_sides(len(files), rng))
    groups, objects, start = [], [], 0
    for options, c in picks:
        groups.append(Group(options[0].kind, boxes[start:start + c]))
        objects += [(options[0].kind.noun, f, b) for f, b in zip(files[start:start + c], boxes[start:start + c])]
        start += c
    setting = settings[background.setting]
    captions = object_captions(groups, setting, rng, size)
    image, quality = _finish(image, rng)
    return {"image": image, "quality": quality, "setting": setting.name, "background": background.file,
            "objects": objects, "captions": captions}


def _select(split: str, stamps_tsv, backgrounds_tsv):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    stamps = [s for s in load_stamps(Path(stamps_tsv)) if s.split == split]
    backgrounds = [b for b in load_backgrounds(Path(backgrounds_tsv)) if b.split == split]
    if not stamps or not backgrounds:
        raise ValueError(f"the {split} split has {len(stamps)} stamps and {len(backgrounds)} backgrounds")
    return stamps, backgrounds


def _render_one(job) -> dict:
    out, seed, index, size, split, stamps_tsv, backgrounds_tsv, settings_tsv, roots = job
    stamps, backgrounds = _select(split, stamps_tsv, backgrounds_tsv)
    photo = make_photo(np.random.default_rng([seed, index]), size, stamps, backgrounds,
                       photo_settings(Path(settings_tsv)), roots)
    name = f"photo_{split}_{seed}_{index:06d}.jpg"
    buffer = io.BytesIO()
    photo.pop("image").save(buffer, format="JPEG", quality=photo.pop("quality"))
    (Path(out) / "images" / name).write_bytes(buffer.getvalue())
    return {"file_name": name, **photo}


def render_photos(out_dir, n_images: int, seed: int, split: str = "train", workers: int = 1, image_size: int = 256,
                  stamps_tsv=STAMPS_TSV, backgrounds_tsv=BACKGROUNDS_TSV, settings_tsv=SETTINGS_TSV,
                  roots: dict | None = None) -> dict:
    """Compose n images of the split; `roots` maps `stamps`/`backgrounds` to folders (default: the
    Debian packages, fetched into data/sources/ on first use)."""
    stamps, backgrounds = _select(split, stamps_tsv, backgrounds_tsv)
    roots = {k: str(v) for k, v in (roots or sources.default_roots()).items()}
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(str(out), seed, index, image_size, split, str(stamps_tsv), str(backgrounds_tsv), str(settings_tsv), roots)
            for index in range(n_images)]
    if workers > 1:
        with get_context("fork").Pool(workers) as pool:
            photos = pool.map(_render_one, jobs, chunksize=16)
    else:
        photos = [_render_one(job) for job in jobs]
    _write_coco(out, photos, image_size, kinds(load_stamps(Path(stamps_tsv))))
    seconds = time.perf_counter() - start
    return {"out": str(out), "n_images": n_images, "seed": seed, "split": split, "stamps": len(stamps),
            "nouns": len({s.kind.noun for s in stamps}), "backgrounds": len(backgrounds),
            "seconds": round(seconds, 1), "images_per_second": round(n_images / max(seconds, 1e-9), 1)}


def _write_coco(out: Path, photos: list[dict], size: int, all_kinds: list[PhotoKind]) -> None:
    category_id = {k.noun: i for i, k in enumerate(all_kinds, start=1)}
    images, captions, boxes = [], [], []
    for image_id, photo in enumerate(photos, start=1):
        images.append({"id": image_id, "file_name": photo["file_name"], "width": size, "height": size})
        captions += [{"id": len(captions) + n, "image_id": image_id, "caption": c}
                     for n, c in enumerate(photo["captions"], start=1)]
        boxes += [{"id": len(boxes) + n, "image_id": image_id, "category_id": category_id[noun],
                   "bbox": [int(v) for v in box], "stamp": stamp}
                  for n, (noun, stamp, box) in enumerate(photo["objects"], start=1)]
    categories = [{"id": category_id[k.noun], "name": k.noun, "coco_category": k.coco_category} for k in all_kinds]
    with_setting = [{**entry, "setting": photo["setting"], "background": photo["background"]}
                    for entry, photo in zip(images, photos)]
    (out / "captions.json").write_text(json.dumps({"images": images, "annotations": captions}))
    (out / "instances.json").write_text(json.dumps({"images": with_setting, "categories": categories,
                                                    "annotations": boxes}))
