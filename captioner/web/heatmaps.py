"""Attention maps as pictures: per-word overlays, a grid figure (like the tutorial's
`plot_attention`) and an animated GIF. Thread-safe: no pyplot, no shared mutable state."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _check(words, attention, probs=None) -> None:
    attention = np.asarray(attention)
    if attention.ndim != 3:
        raise ValueError(f"attention must be (words, grid_h, grid_w), got shape {attention.shape}")
    if len(words) != len(attention) or (probs is not None and len(probs) != len(words)):
        raise ValueError(f"{len(words)} words but {len(attention)} attention maps"
                         + ("" if probs is None else f" and {len(probs)} probabilities"))
    if not len(words):
        raise ValueError("no words to show")


@lru_cache(maxsize=8)
def _colormap(name: str) -> np.ndarray:
    from matplotlib import colormaps
    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)   # (256, 3)


def upsample(attention_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(gh, gw) -> (height, width) in [0, 1], bicubic, so the heatmap is smooth, not blocky.

    The grid covers the whole image (it was resized whole), so stretching it over the image lines up.
    """
    grid = np.asarray(attention_map, np.float32)
    grid = grid / max(float(grid.max()), 1e-12)
    smooth = np.asarray(Image.fromarray(grid, mode="F").resize(size, Image.BICUBIC))
    return np.clip(smooth, 0.0, 1.0)


def _fit(image: Image.Image, max_side: int | None) -> Image.Image:
    """Scale so the longer side is `max_side`: big photos shrink for speed, tiny images grow to be seen."""
    image = image.convert("RGB")
    if max_side and max(image.size) != max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.BILINEAR)
    return image


def overlay(image: Image.Image, attention_map: np.ndarray, *, alpha: float = 0.55, cmap: str = "jet",
            max_side: int | None = 512) -> Image.Image:
    """The image with the word's attention as a colour heatmap blended on top."""
    base = _fit(image, max_side)
    heat = _colormap(cmap)[(upsample(attention_map, base.size) * 255).astype(np.uint8)]  # (H, W, 3)
    blended = (1 - alpha) * np.asarray(base, np.float32) + alpha * heat
    return Image.fromarray(blended.astype(np.uint8))


def _squash(image: Image.Image, max_aspect: float) -> Image.Image:
    """Stretch the short side of a very long image so that sides differ at most `max_aspect` times:
    a 3000x200 strip would otherwise make tiles a few pixels high (its heatmap stretches alike)."""
    long, short = max(image.size), min(image.size)
    if long <= max_aspect * short:
        return image
    short = round(long / max_aspect)
    return image.resize((long, short) if image.width >= image.height else (short, long), Image.BILINEAR)


def word_overlays(image, words, attention, probs, *, max_side: int = 384,
                  max_aspect: float = 3.0) -> list[tuple[Image.Image, str]]:
    """(overlay, "word (0.93)") per word, ready for a gallery; tiles never longer than `max_aspect`
    times their width (or height)."""
    _check(words, attention, probs)
    base = _squash(_fit(image, max_side), max_aspect)
    return [(overlay(base, a, max_side=None), f"{w} ({p:.2f})") for w, a, p in zip(words, attention, probs)]


def attention_figure(image, words, attention, probs=None, *, columns: int = 5) -> Image.Image:
    """One panel per word: the image with its upsampled map on top, titled with the word."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    _check(words, attention, probs)
    base = _fit(image, 384)
    columns = min(columns, len(words))
    rows = -(-len(words) // columns)
    figure = Figure(figsize=(2.6 * columns, 2.6 * rows * base.height / base.width + 0.4 * rows), dpi=100)
    canvas = FigureCanvasAgg(figure)
    for t, word in enumerate(words):
        axes = figure.add_subplot(rows, columns, t + 1)
        axes.imshow(base)
        axes.imshow(upsample(attention[t], base.size), cmap="jet", alpha=0.55,
                    extent=(0, base.width, base.height, 0), vmin=0, vmax=1)
        axes.set_title(word if probs is None else f"{word} ({probs[t]:.2f})", fontsize=11)
        axes.axis("off")
    figure.tight_layout()
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def save_attention_figure(path, image, words, attention, probs=None) -> Path:
    attention_figure(image, words, attention, probs).save(path, format="PNG")
    return Path(path)


def attention_gif(image, words, attention, probs=None, *, max_side: int = 384) -> list[Image.Image]:
    """Frames: the overlay of each word, with the caption below and the current word highlighted."""
    _check(words, attention, probs)
    base = _fit(image, max_side)
    font = ImageFont.load_default(size=16)
    frames = []
    for t in range(len(words)):
        frame = Image.new("RGB", (base.width, base.height + 56), "white")
        frame.paste(overlay(base, attention[t], max_side=None))
        _draw_caption(ImageDraw.Draw(frame), words, t, font, base.width, base.height + 6)
        frames.append(frame)
    return frames


def _draw_caption(draw, words, current, font, width, top) -> None:
    """The caption, wrapped, the current word in bold red."""
    x, y = 6, top
    for t, word in enumerate(words):
        w = draw.textlength(word + " ", font=font)
        if x + w > width - 6 and x > 6:
            x, y = 6, y + 20
        draw.text((x, y), word, fill=(200, 0, 0) if t == current else (40, 40, 40), font=font,
                  stroke_width=1 if t == current else 0, stroke_fill=(200, 0, 0))
        x += w


def save_attention_gif(path, image, words, attention, probs=None, *, frame_ms: int = 800) -> Path:
    frames = attention_gif(image, words, attention, probs)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return Path(path)
