"""What the web page does. `Page`'s methods are the page's events and API endpoints: each takes
exactly the inputs its event sends and returns exactly its outputs, so app.py only lays them out.

Nothing here holds per-request state between calls; each call gets its inputs and returns its
outputs, so concurrent users never see each other's results.
"""
from __future__ import annotations

import functools
import inspect
import logging
import re
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

from .heatmaps import overlay, save_attention_figure, save_attention_gif, word_overlays
from .images import InputError
from .options import DecodingOptions, visibility
from .urls import fetch_url

DOWNLOADS = Path(tempfile.gettempdir()) / "captioner-downloads"
KEEP_DOWNLOADS_S = 600
OPTION_NAMES = [knob.name for knob in DecodingOptions.knobs()]   # the order of the option controls
HONEST_NOTE = (
    "**What this model knows.** The default model was trained on the *scene world*: emoji scenes "
    "rendered offline (62 COCO object kinds, people doing things, 8 settings), not on photographs. "
    "It names the objects, counts them up to three and says the setting; photos get scene-world "
    "captions. A model trained on photographs (such as a COCO checkpoint) can be served instead "
    "by whoever runs this demo.")
log = logging.getLogger("captioner.demo")


def shown_to_users(fn):
    """Input problems reach the user as their own message; anything else as a plain apology
    (the traceback goes to the server's log only)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, ValueError) as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception:
            log.exception("captioning failed")
            raise gr.Error("Something went wrong captioning this image. Please try another one.",
                           print_exception=False) from None
    return wrapper


def named_options(first: str):
    """For an API endpoint `fn(self, first, *options)`: a signature that names every option with
    its default, which Gradio reads for the API page and gradio_client's keyword arguments."""
    def decorate(fn):
        plain = inspect.Parameter.POSITIONAL_OR_KEYWORD
        signature = inspect.Signature(
            [inspect.Parameter("self", plain), inspect.Parameter(first, plain)]
            + [inspect.Parameter(knob.name, plain, default=knob.default) for knob in DecodingOptions.knobs()])

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return fn(*bound.args)
        wrapper.__signature__ = signature
        return wrapper
    return decorate


class Page:
    """The page's events over one loaded Captioner."""

    def __init__(self, captioner):
        self.captioner = captioner

    # --- the page's own events ----------------------------------------------------------------

    @shown_to_users
    def show_caption(self, image, *options) -> tuple:
        """Caption button -> caption, details, confidence, word overlays, selected word, samples,
        seed note, and the caption itself (session state for the word view and downloads)."""
        return self._page_outputs(self._captions(_required(image), options))

    @shown_to_users
    def show_caption_from_url(self, url, *options) -> tuple:
        """Fetch button or Enter in the URL box -> as `show_caption`."""
        return self._page_outputs(self._captions(_fetched(url), options))

    @staticmethod
    @shown_to_users
    def show_word(caption, event: gr.SelectData):
        """A click on a word's overlay -> that word's overlay, large."""
        return word_view(caption, event.index)

    @staticmethod
    def show_controls(strategy) -> list:
        """Strategy changed -> which option controls apply (in OPTION_NAMES order, strategy left out)."""
        shown = visibility(strategy)
        return [gr.update(visible=shown[name]) for name in OPTION_NAMES[1:]]

    @staticmethod
    @shown_to_users
    def downloads(caption) -> tuple[str | None, str | None]:
        """Right after a caption -> the attention grid as a PNG figure and as an animated GIF."""
        return save_downloads(caption)

    # --- the API ------------------------------------------------------------------------------

    @named_options("image")
    @shown_to_users
    def api_caption(self, image, *options) -> tuple[str, dict]:
        """Caption an uploaded image: returns the caption, then JSON with words, probs, log_prob,
        strategy, seed (and every sample)."""
        return _api_outputs(self._captions(_required(image), options))

    @named_options("url")
    @shown_to_users
    def api_caption_url(self, url, *options) -> tuple[str, dict]:
        """Caption the image at a public http(s) URL (fetched by the server): as /caption."""
        return _api_outputs(self._captions(_fetched(url), options))

    def _captions(self, image, options) -> list:
        """[Caption], most likely first, for options in OPTION_NAMES order as the page sent them."""
        captions = self.captioner.captions(image, **dict(zip(OPTION_NAMES, options)))
        if not captions[0].words:
            raise InputError("The model produced an empty caption for this image; try another strategy")
        return captions

    def _page_outputs(self, captions) -> tuple:
        best = captions[0]
        seed_note = (f"Seed **{best.seed}**: enter it in *Seed* to draw the same sample again."
                     if best.seed is not None else "")
        samples = [[c.text, round(c.log_prob, 3)] for c in captions] if len(captions) > 1 else []
        return (best.text, details(captions),
                [(w, round(float(p), 2)) for w, p in zip(best.words, best.probs)],
                word_overlays(best.image, best.words, best.attention, best.probs, max_side=320),
                word_view(best, 0), gr.update(value=samples, visible=bool(samples)), seed_note, best)


def _required(image):
    if image is None:
        raise InputError("Please upload an image, paste one, pick an example, or give a URL")
    return image


def _fetched(url) -> bytes:
    """The image bytes at a URL, fetched on the server (public http(s) addresses only)."""
    if not url or not str(url).strip():
        raise InputError("Please enter an image URL (http or https)")
    return fetch_url(str(url).strip())


def details(captions) -> dict:
    """The JSON the page and the API give: words, probs, log_prob, strategy, seed (+ every sample)."""
    out = captions[0].to_dict()
    if len(captions) > 1:
        out["samples"] = [{"caption": c.text, "log_prob": round(c.log_prob, 4)} for c in captions]
    return out


def _api_outputs(captions) -> tuple[str, dict]:
    return captions[0].text, details(captions)


def word_view(caption, index: int = 0):
    """One word's overlay, large."""
    if caption is None or not 0 <= index < len(caption.words):
        return None
    return overlay(caption.image, caption.attention[index], max_side=640)


def save_downloads(caption) -> tuple[str | None, str | None]:
    """The attention grid as a PNG figure and as an animated GIF, in a folder kept KEEP_DOWNLOADS_S."""
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
    """A shared folder for downloads; old files are removed as new ones arrive."""
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
