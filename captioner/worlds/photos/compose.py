"""A photo-world image: real photo cut-outs composed onto a real background photo, and five true captions.

Each cut-out is scaled, mirrored, turned a little and lit on its own, placed without much overlap,
and its box is its mask's (alpha > 127); the whole photo then gets its own lighting, colour cast,
blur and JPEG quality. Captions use the grammar every world shares (worlds/captions.py).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from ...boxes import overlaps
from ..captions import Group, object_captions
from . import sources

SUBJECT_WEIGHTS = (0.55, 0.2, 0.15, 0.1)   # 1, 2, 3 or 4 subjects: most photos are of one thing
LARGE_SHARE = 0.7                          # of single-subject images, how many show it large
MAX_UPSCALE = 3.0                          # a cut-out is never drawn larger than 3x its own pixels
OVERLAP = 0.15


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
            if not overlaps((x, y, w, h), boxes, OVERLAP) or attempt == 59:
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
    """-> {"image", "quality", "setting", "background", "objects": [{"category": noun, "bbox", "stamp": file}],
    "captions"} (World.draw's image), from `rng` alone: stamps, backgrounds (tables.py's rows),
    settings {name: Setting}, roots {"stamps", "backgrounds": folder} (sources.default_roots)."""
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
        objects += [{"category": options[0].kind.noun, "bbox": b, "stamp": f}
                    for f, b in zip(files[start:start + c], boxes[start:start + c])]
        start += c
    setting = settings[background.setting]
    captions = object_captions(groups, setting, rng, size)
    image, quality = _finish(image, rng)
    return {"image": image, "quality": quality, "setting": setting.name, "background": background.file,
            "objects": objects, "captions": captions}
