"""What the web demo does, as plain functions: app.py only lays them out and wires events.

Nothing here holds per-request state between calls; each call gets its inputs and returns its
outputs, so concurrent users never see each other's results.
"""
from __future__ import annotations

import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .attention import overlay, save_attention_figure, save_attention_gif, word_overlays
from .images import InputError, load_image
from .urls import load_image_url

DOWNLOADS = Path(tempfile.gettempdir()) / "captioner-downloads"
KEEP_DOWNLOADS_S = 3600
MAX_SAMPLES = 10
STRATEGY_CHOICES = [("Greedy", "greedy"), ("Sampling", "sample"), ("Beam search", "beam")]
HONEST_NOTE = (
    "**What this model knows.** The default model was trained on the *scene world*: emoji scenes "
    "rendered offline (62 COCO object kinds, people doing things, 8 settings), not on photographs. "
    "It names the objects, counts them up to three and says the setting; photos get scene-world "
    "captions. For photos, run the app with a COCO-trained checkpoint: "
    "`python app.py --checkpoint DIR` or `CAPTIONER_CHECKPOINT=DIR python app.py` "
    "(`hf://owner/repo` works too).")


@dataclass
class Result:
    """Everything the page shows at once for one request (downloads come right after)."""
    caption: str
    details: dict                       # words, probs, strategy, seed, log_prob
    confidence: list                    # [(word, prob)] for a highlighted-text view
    overlays: list                      # [(PIL image, "word (0.93)")]
    samples: list                       # [[caption, log_prob]] when several samples were drawn
    seed_note: str
    best: object                        # the Caption itself, for the word view and the downloads


def visibility(strategy: str) -> dict[str, bool]:
    """Which decoding controls apply to a strategy."""
    sampling = strategy == "sample"
    return {"temperature": sampling, "top_k": sampling, "num_samples": sampling, "seed": sampling,
            "beam_size": strategy == "beam"}


def decode(captioner, image, strategy: str = "greedy", temperature: float = 1.0, top_k: int = 0,
           beam_size: int = 3, seed=None, num_samples: int = 1, max_length=None) -> list:
    """Run the model as the page's controls ask -> [Caption], most likely first (several only when
    sampling with num_samples > 1). Options arrive as the browser or an API client sent them."""
    if image is None:
        raise InputError("Please upload an image, paste one, pick an example, or give a URL")
    picture = load_image(image)
    seed, max_length = _optional_int(seed), _optional_int(max_length) or None
    top_k, beam_size, num_samples = int(top_k or 0), int(beam_size or 3), int(num_samples or 1)
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise InputError(f"The number of samples must be between 1 and {MAX_SAMPLES}")
    if strategy == "sample" and num_samples > 1:
        captions = captioner.sample_captions(picture, num_samples, float(temperature), top_k, seed, max_length)
    else:
        captions = [captioner.caption(picture, strategy, float(temperature), top_k, beam_size, seed, max_length)]
    if not captions[0].words:
        raise InputError("The model produced an empty caption for this image; try another strategy")
    return captions


def decode_url(captioner, url: str, **options) -> list:
    """Fetch the image on the server (public http(s) addresses only), then as `decode`."""
    if not url or not str(url).strip():
        raise InputError("Please enter an image URL (http or https)")
    return decode(captioner, load_image_url(str(url).strip()), **options)


def details(captions) -> dict:
    """The JSON the page and the API give: words, probs, log_prob, strategy, seed (+ every sample)."""
    out = captions[0].to_dict()
    if len(captions) > 1:
        out["samples"] = [{"caption": c.text, "log_prob": round(c.log_prob, 4)} for c in captions]
    return out


def api_outputs(captions) -> tuple[str, dict]:
    """What /caption and /caption_url return: the caption text, then `details`."""
    return captions[0].text, details(captions)


def caption_image(captioner, image, *options, **named) -> Result:
    """Everything the page shows for one image (options as `decode`)."""
    return build_result(decode(captioner, image, *options, **named))


def caption_url(captioner, url: str, **options) -> Result:
    return build_result(decode_url(captioner, url, **options))


def build_result(captions) -> Result:
    best = captions[0]
    seed_note = (f"Seed **{best.seed}**: enter it in *Seed* to draw the same sample again."
                 if best.seed is not None else "")
    return Result(
        caption=best.text, details=details(captions),
        confidence=[(w, round(float(p), 2)) for w, p in zip(best.words, best.probs)],
        overlays=word_overlays(best.image, best.words, best.attention, best.probs, max_side=320),
        samples=[[c.text, round(c.log_prob, 3)] for c in captions] if len(captions) > 1 else [],
        seed_note=seed_note, best=best)


def _optional_int(value) -> int | None:
    """Empty boxes (None, "", NaN) mean "not set"."""
    if value is None or (isinstance(value, str) and not value.strip()) or value != value:
        return None
    return int(value)


def word_view(caption, index: int = 0):
    """One word's overlay, large."""
    if caption is None or not 0 <= index < len(caption.words):
        return None
    return overlay(caption.image, caption.attention[index], max_side=640)


def downloads(caption) -> tuple[str | None, str | None]:
    """The attention grid as a PNG figure and as an animated GIF (made after the caption is shown)."""
    if caption is None:
        return None, None
    folder = _download_folder()
    stem = f"{_slug(caption.text)}-{uuid.uuid4().hex[:8]}"
    figure = save_attention_figure(folder / f"{stem}-attention.png", caption.image, caption.words,
                                   caption.attention, caption.probs)
    gif = save_attention_gif(folder / f"{stem}-attention.gif", caption.image, caption.words,
                             caption.attention, caption.probs)
    return str(figure), str(gif)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "caption"


def _download_folder() -> Path:
    """A shared folder for downloads; files older than an hour are removed as new ones arrive."""
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - KEEP_DOWNLOADS_S
    for old in DOWNLOADS.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass   # another request removed it first
    return DOWNLOADS


def model_panel(captioner) -> str:
    """Markdown for the model panel: checkpoint, encoder, vocabulary, and the model card itself."""
    config = captioner.config
    card = captioner.checkpoint.card.strip() or "_This checkpoint has no model card._"
    card = re.sub(r"^(#{1,4}) ", r"##\1 ", card, flags=re.MULTILINE)   # its headings sit under the panel's
    return (f"{HONEST_NOTE}\n\n"
            f"| Model | |\n|---|---|\n| Checkpoint | {captioner.source} |\n"
            f"| Encoder | {config.encoder} ({config.grid_size}x{config.grid_size} attention grid) |\n"
            f"| Vocabulary | {len(captioner.vocab)} words |\n"
            f"| Decoder | GRU {config.units} units, Bahdanau attention |\n\n---\n\n{card}")


def example_images(folder) -> list[str]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pictures = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]
    # What the default model knows (scenes) first; the photos that show its limits after them.
    return [str(p) for p in sorted(pictures, key=lambda p: (p.name.startswith("photo_"), p.name))]
