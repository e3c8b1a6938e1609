"""Drawing an emoji scene: a textured background per setting, and emoji glyphs placed without much overlap."""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ...boxes import overlaps

FONT_PATH = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
FONT_SIZE = 109   # the only size Noto Color Emoji's bitmaps come in


def font_path() -> str:
    path = os.environ.get("CAPTIONER_EMOJI_FONT", FONT_PATH)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"emoji font not found at {path}: `apt-get install fonts-noto-color-emoji` "
                                "(or set CAPTIONER_EMOJI_FONT)")
    return path


@lru_cache(maxsize=None)
def glyph(code: str) -> Image.Image:
    """One emoji as a tightly cropped RGBA image, drawn once per process."""
    font = ImageFont.truetype(font_path(), FONT_SIZE)
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((10, 10), chr(int(code, 16)), font=font, embedded_color=True)
    return canvas.crop(canvas.getbbox())


# --- texture families -----------------------------------------------------------------------------
# Every setting's surface is modulated by a texture field: "smooth" is the original look (bilinear
# value noise); the others replace it with another kind of surface, so that a setting has to be
# recognised by what it is (its colours, its layout: a sky band, lane markings, a wall/floor split)
# and not by one texture. One family is held out of training (HELDOUT_FAMILY) to measure exactly that.
FAMILIES = ("smooth", "mottled", "striped", "speckled", "tiled")
HELDOUT_FAMILY = "tiled"
TRAIN_FAMILIES = tuple(f for f in FAMILIES if f != HELDOUT_FAMILY)


def _smooth(rng, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: random cells upsampled bilinearly."""
    small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(small.resize((size, size), Image.BILINEAR), np.float32) / 255.0


def _mottled(rng, size: int, cells: int) -> np.ndarray:
    """Blotches with firm edges: two octaves of value noise pushed through a steep curve."""
    field = 0.65 * _smooth(rng, size, max(3, cells)) + 0.35 * _smooth(rng, size, max(6, 3 * cells))
    return 1.0 / (1.0 + np.exp(-(field - 0.5) * 14.0))


def _striped(rng, size: int, cells: int) -> np.ndarray:
    """Parallel bands at a random angle and period, lightly wobbled."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), size / rng.uniform(max(cells, 4), 3 * max(cells, 4))
    wobble = 3.0 * _smooth(rng, size, 4)
    return 0.5 + 0.5 * np.sin((x * np.cos(angle) + y * np.sin(angle)) / period * 2 * np.pi + wobble)


def _speckled(rng, size: int, cells: int) -> np.ndarray:
    """Sparse dots and flecks of random size on a flat ground."""
    field = Image.new("L", (size, size), 128)
    draw = ImageDraw.Draw(field)
    for _ in range(int(rng.integers(25, 70))):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.0, size / 40)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=int(rng.choice([0, 255])))
    return np.asarray(field, np.float32) / 255.0


def _tiled(rng, size: int, cells: int) -> np.ndarray:
    """Square tiles, each its own shade, with darker joints between them."""
    tile = int(size / rng.uniform(max(cells, 4), 2.5 * max(cells, 4))) + 2
    shades = rng.random((size // tile + 2, size // tile + 2))
    y, x = np.mgrid[0:size, 0:size]
    off = int(rng.integers(0, tile))
    field = shades[(y + off) // tile, (x + off) // tile].astype(np.float32) * 0.7 + 0.15
    field[((y + off) % tile < 2) | ((x + off) % tile < 2)] = 0.0
    return field


TEXTURES = {"smooth": _smooth, "mottled": _mottled, "striped": _striped, "speckled": _speckled, "tiled": _tiled}


def _fill(size: int, colour) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.float32), (size, size, 3)).copy()


def _shade(image, amount) -> np.ndarray:
    return image * (1.0 + amount)[..., None]


def _grass(rng, n, noise):
    image = _shade(_fill(n, (70, 150, 60) + rng.normal(0, 12, 3)), 0.25 * (noise(rng, n, 12) - 0.5))
    image += rng.normal(0, 10, (n, n, 1)) * [0.4, 1.0, 0.3]                   # blades
    if rng.random() < 0.5:                                                    # a sky band
        image[: int(n * rng.uniform(0.1, 0.22))] = (150, 200, 240)
    return image


def _beach(rng, n, noise):
    image = _shade(_fill(n, (225, 200, 150) + rng.normal(0, 8, 3)), 0.12 * (noise(rng, n, 10) - 0.5))
    image += rng.normal(0, 9, (n, n, 1))                                      # grain
    if rng.random() < 0.6:                                                    # the sea
        image[: int(n * rng.uniform(0.12, 0.25))] = (60, 140, 200)
    return image


def _water(rng, n, noise):
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    waves = np.sin(y / rng.uniform(4, 8) + np.sin(x / rng.uniform(10, 20)) * 2.0)
    image = _fill(n, (40, 110, 190) + rng.normal(0, 10, 3))
    return image + (waves[..., None] * 18 + 25 * (noise(rng, n, 6)[..., None] - 0.5))


def _snow(rng, n, noise):
    gradient = np.linspace(-0.06, 0.04, n)[:, None] + 0.08 * (noise(rng, n, 5) - 0.5)
    return _shade(_fill(n, (235, 242, 250)), gradient) + rng.normal(0, 3, (n, n, 1))


def _road(rng, n, noise):
    image = _fill(n, (105, 105, 110) + rng.normal(0, 8, 3)) + rng.normal(0, 12, (n, n, 1))
    lane = int(n * rng.uniform(0.45, 0.55))
    colour = (240, 240, 240) if rng.random() < 0.6 else (235, 200, 60)
    for start in range(int(rng.integers(0, 20)), n, 40):
        image[lane - 2: lane + 2, start: start + 22] = colour
    image[int(n * 0.06): int(n * 0.06) + 3] = (230, 230, 230)                  # the kerb lines
    image[int(n * 0.94): int(n * 0.94) + 3] = (230, 230, 230)
    return image


def _sky(rng, n, noise):
    top, bottom = np.array([70, 130, 215]), np.array([170, 210, 245])
    t = np.linspace(0, 1, n)[:, None, None]
    image = np.broadcast_to(top + (bottom - top) * t, (n, n, 3)).astype(np.float32).copy()
    clouds = np.clip((noise(rng, n, 6) - 0.55) * 4, 0, 1)[..., None]
    return image * (1 - clouds) + 250 * clouds


def _table(rng, n, noise):
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    grain = np.sin(x / rng.uniform(3, 6) + 6 * noise(rng, n, 4)) * 0.5 + 0.5
    base = np.array([150, 95, 50]) + rng.normal(0, 10, 3)
    return base * (0.8 + 0.25 * grain[..., None])


def _room(rng, n, noise):
    wall = rng.choice([(225, 215, 190), (200, 215, 225), (230, 200, 200), (215, 225, 200)])
    floor = rng.choice([(140, 100, 70), (120, 120, 125), (170, 140, 100)])
    image = _fill(n, wall) + rng.normal(0, 3, (n, n, 1))
    split = int(n * rng.uniform(0.55, 0.7))
    image[split:] = np.asarray(floor, np.float32) + rng.normal(0, 8, (n - split, n, 1))
    image[split - 2: split] = 90                                             # the skirting board
    return image


BACKGROUNDS = {"grass": _grass, "beach": _beach, "water": _water, "snow": _snow, "road": _road,
               "sky": _sky, "table": _table, "room": _room}


def _surface(rng, size: int, texture) -> np.ndarray:
    """A family's surface as a shading field around 0, at strength 0.35: strong enough to be seen."""
    return 0.35 * (texture(rng, size, int(rng.integers(4, 12))) - 0.5)


def background(setting: str, rng, size: int, family: str = "smooth") -> Image.Image:
    """A setting's background with one texture family's surface, its colours jittered per image."""
    if family not in TEXTURES:
        raise ValueError(f"unknown texture family {family!r}: choose one of {', '.join(FAMILIES)}")
    texture = TEXTURES[family]
    image = BACKGROUNDS[setting](rng, size, texture)   # the setting's own noise is the family's too
    if family != "smooth":   # the family's surface over the setting's own
        image = _shade(image, _surface(rng, size, texture))
    tint = rng.uniform(0.92, 1.08, 3) * rng.uniform(0.85, 1.15)   # colour cast and brightness
    return Image.fromarray(np.clip(image * tint, 0, 255).astype(np.uint8))


def place(image: Image.Image, codes: list[str], rng, side_range: tuple[float, float]) -> list[list[int]]:
    """Paste one glyph per code (size, small rotation, mirror vary); -> tight [x, y, w, h] boxes."""
    size, boxes = image.size[0], []
    for code in codes:
        for attempt in range(60):
            shrink = 0.985 ** attempt            # crowded scenes: smaller glyphs rather than overlap
            side = int(size * rng.uniform(*side_range) * shrink)
            sprite = glyph(code).resize((side, side), Image.LANCZOS)
            if rng.random() < 0.5:
                sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
            sprite = sprite.rotate(rng.uniform(-15, 15), Image.BICUBIC, expand=True)
            left, top, right, bottom = sprite.getbbox()
            sprite = sprite.crop((left, top, right, bottom))
            w, h = sprite.size
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            if not overlaps((x, y, w, h), boxes, 0.12) or attempt == 59:
                image.paste(sprite, (x, y), sprite)
                boxes.append([x, y, w, h])
                break
    return boxes
