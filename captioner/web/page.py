"""What the web page does. `Page`'s methods are the page's events and API endpoints: each takes
exactly the inputs its event sends and returns exactly its outputs, so app.py only lays them out.

Nothing here holds per-request state between calls; each call gets its inputs and returns its
outputs, so concurrent users never see each other's results.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import logging
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
from PIL import Image

from ..images import InputError
from ..options import DecodingOptions, visibility
from ..people import PERSON_SEEN
from ..sandbox import load_untrusted_image
from . import timings
from .cards import model_card
from .heatmaps import overlay, save_attention_figure, save_attention_gif, word_overlays
from .urls import fetch_url

DOWNLOADS = Path(tempfile.gettempdir()) / "captioner-downloads"
KEEP_DOWNLOADS_S = 600
LIVE_SIDE = 320           # live mode's heatmap, in pixels (the large view's is 640)
LIVE_WINDOW_S = 5          # live mode's frames per second: over the last few seconds
OPTION_NAMES = [knob.name for knob in DecodingOptions.knobs()]   # the order of the option controls
APOLOGY = "Something went wrong captioning this image. Please try another one."
CUT_MARK = " …"     # after a caption the length limit stopped before the model ended it
RESULTS_BYTES = 64 * 2 ** 20   # every session's latest result together (Results): about 1,000 photos
SHOWN_SIDE = 640               # the page's largest view of an image (the selected word)
EXPIRED = ("This result is no longer kept on the server (it keeps the latest results of every "
           "visitor, for a while); caption the image again to inspect its words")
log = logging.getLogger("captioner.web.page")


class PageOutputs(NamedTuple):
    """The page's outputs for a new result, by name: the one definition of their order. The result
    events (`Page.show_caption`, `show_caption_from_url`, `compare`) return a PageOutputs of values;
    app.py fills one with its components, field by field, and gives it to those events as `outputs`
    (and picks the other events' outputs from it: `sample_outputs`, `downloads`)."""
    error: Any
    caption: Any
    note: Any
    details: Any
    confidence: Any
    selected: Any
    overlays: Any
    table: Any
    figure_file: Any
    gif_file: Any
    shown: Any

    @classmethod
    def unchanged(cls, **values) -> PageOutputs:
        """Every output left as it is on the page (gr.skip()), but those given."""
        return cls(**({name: gr.skip() for name in cls._fields} | values))

    def sample_outputs(self) -> tuple:
        """The outputs a row picked in the captions table changes (`Page.show_sample`), in order."""
        return self.caption, self.confidence, self.selected, self.overlays, self.figure_file, self.gif_file, self.shown

    def downloads(self) -> tuple:
        """The outputs `Page.downloads` fills, in order."""
        return self.figure_file, self.gif_file


class Askers(NamedTuple):
    """The controls that ask for a new result (Caption, Compare decodings, Fetch and the URL box,
    where Enter fetches): `held` while one is worked on, so that no second click or Enter queues
    another behind it, and `released` once it has come, an error included."""
    caption: Any
    compare: Any
    fetch: Any
    url: Any

    @classmethod
    def held(cls) -> Askers:
        return cls(*(gr.update(interactive=False) for _ in cls._fields))

    @classmethod
    def released(cls) -> Askers:
        return cls(*(gr.update(interactive=True) for _ in cls._fields))


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
            raise gr.Error(APOLOGY, print_exception=False) from None
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


class Results:
    """Every session's latest result, in one store of bounded size that all sessions share.

    A session's state (gr.State) keeps only a `Shown`, a key into this store: Gradio keeps up to
    10,000 sessions, closed tabs for an hour and API clients indefinitely, so an image kept in each
    session's state is memory that visitors leave behind. Here each result's picture is kept as a
    JPEG at the page's largest view (SHOWN_SIDE), and the least recently used results leave first
    once the store holds RESULTS_BYTES."""

    def __init__(self, max_bytes: int = RESULTS_BYTES):
        self.max_bytes, self.size = max_bytes, 0
        self.items: OrderedDict[str, tuple[bytes, list, int]] = OrderedDict()
        self.lock = threading.Lock()

    def put(self, key: str, captions: list) -> None:
        """Keep captions of one picture (every caption of a result shows the same image)."""
        picture, image = io.BytesIO(), captions[0].image
        if max(image.size) > SHOWN_SIDE:                       # only ever shrinks
            scale = SHOWN_SIDE / max(image.size)
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.BICUBIC)
        image.save(picture, "JPEG", quality=90)
        bare = [dataclasses.replace(c, image=None) for c in captions]
        size = picture.tell() + sum(c.attention.nbytes + c.probs.nbytes + 1024 for c in captions)
        with self.lock:
            self.items[key] = (picture.getvalue(), bare, size)
            self.size += size
            while self.size > self.max_bytes and len(self.items) > 1:
                self.size -= self.items.popitem(last=False)[1][2]

    def get(self, key: str) -> list:
        """The captions kept under `key`, with their picture; Expired if they have left."""
        with self.lock:
            if key not in self.items:
                raise Expired(EXPIRED)
            self.items.move_to_end(key)
            picture, bare, _ = self.items[key]
        image = Image.open(io.BytesIO(picture)).convert("RGB")
        return [dataclasses.replace(c, image=image) for c in bare]


class Expired(InputError):
    """A session's result has left the store."""


@dataclass(frozen=True)
class Shown:
    """This session's result as its state keeps it: where the captions are kept, the captions
    table's labels and which caption is inspected. `stamp` is the result's key in `Results` and
    names its downloads, so they are made once per caption."""
    results: Results = field(repr=False, compare=False)
    labels: list[str]
    current: int = 0
    stamp: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def captions(self) -> list:
        """Every caption on show (samples or a comparison, most likely first); Expired if gone."""
        return self.results.get(self.stamp)

    @property
    def caption(self):
        return self.captions[self.current]


class Page:
    """The page's events over one loaded Captioner.

    The page's own events never raise: a problem becomes a message next to the input (`error`)
    and every other output is left as it was, so the previous result stays on show. The API
    endpoints raise gr.Error instead, which clients receive as an error."""

    def __init__(self, captioner, results: Results | None = None):
        self.captioner = captioner
        self.results = results or Results()

    # --- the page's own events ----------------------------------------------------------------

    @timings.timed
    def show_caption(self, image, *options) -> PageOutputs:
        """Caption button (or an example clicked) -> PageOutputs: error, caption, note, details,
        confidence, selected word, word overlays, captions table, the two downloads (cleared until
        `downloads` makes the new ones) and the result itself (session state)."""
        return self._shown(lambda: self._captions(_required(image), options))

    @timings.timed
    def show_caption_from_url(self, url, *options) -> PageOutputs:
        """Fetch button or Enter in the URL box -> as `show_caption`."""
        return self._shown(lambda: self._captions(_fetched(url), options))

    @timings.timed
    def compare(self, image, *options) -> PageOutputs:
        """Compare button -> as `show_caption`, for greedy, beam search and several samples of one
        image encoding: the table lists each caption once, most likely first (the caption box holds
        that one), with every decoding that wrote it."""
        return self._shown(lambda: self._nonempty(timings.seen(
            self.captioner.compare(_required(image), **dict(zip(OPTION_NAMES, options))))))

    def check_image(self, image) -> tuple:
        """A file put in the image box -> (image, error): a file that is not a readable image is
        removed at once with the reason, rather than shown as a broken picture."""
        if image is None:
            return gr.skip(), _no_error()
        try:
            load_untrusted_image(image)
        except InputError as error:
            return None, _error(str(error))
        return gr.skip(), _no_error()

    @staticmethod
    def show_word(shown, event: gr.SelectData):
        """A click on a word's overlay or confidence chip -> that word's overlay, large, labelled."""
        try:
            return word_view(shown.caption if shown else None, event.index)
        except Expired:
            return _expired(gr.skip())

    @staticmethod
    def show_caption_word(shown, event: gr.SelectData):
        """A word picked (clicked twice or selected) in the caption box -> as `show_word`."""
        if not shown or not isinstance(event.index, (list, tuple)):
            return gr.skip()
        try:
            inspected = shown.caption            # what the caption box holds: the row picked last
        except Expired:
            return _expired(gr.skip())
        return word_view(inspected, _word_at(inspected.words, int(event.index[0])))

    @staticmethod
    def show_sample(shown, event: gr.SelectData) -> tuple:
        """A row of the captions table clicked -> that caption inspected (PageOutputs.sample_outputs):
        confidence, selected word, overlays, downloads (cleared until remade) and the result with
        its new `current`."""
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        unchanged = PageOutputs.unchanged().sample_outputs()
        if not shown or not 0 <= int(row) < len(shown.labels):
            return unchanged
        shown = dataclasses.replace(shown, current=int(row))
        try:
            picked = shown.caption
            return PageOutputs.unchanged(**_inspected(shown), caption=picked.text + (CUT_MARK if picked.cut else ""),
                                         figure_file=None, gif_file=None, shown=shown).sample_outputs()
        except Expired:
            return _expired(unchanged)

    def model_card(self) -> str:
        """"The full model card" opened -> the loaded model's card (read when asked for: it is long)."""
        return model_card(self.captioner)

    @staticmethod
    def show_controls(strategy) -> list:
        """Strategy changed -> which option controls apply (in OPTION_NAMES order, strategy left out)."""
        shown = visibility(strategy)
        return [gr.update(visible=shown[name]) for name in OPTION_NAMES[1:]]

    @staticmethod
    def downloads(shown) -> tuple[str | None, str | None]:
        """Right after a caption -> the inspected caption's attention grid as a PNG figure and as
        an animated GIF (PageOutputs.downloads)."""
        try:
            return save_downloads(shown)
        except Expired:
            return None, None
        except Exception:
            log.exception("downloads failed")
            return None, None

    @timings.timed
    def live_caption(self, frame, live) -> tuple:
        """A camera frame -> its greedy caption, the current word's heatmap (one word further each
        frame), a note with the word and the frames per second captioned, and the live state."""
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip(), live
        try:
            caption = timings.seen([self.captioner.caption(frame)])[0]
        except InputError as error:
            return gr.skip(), gr.skip(), str(error), live
        now = time.monotonic()
        times = [t for t in (live or {}).get("times", []) if now - t < LIVE_WINDOW_S] + [now]
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        if not caption.words:
            return "", None, f"{fps:.1f} frames per second", {"times": times}
        word = (len(times) - 1) % len(caption.words)
        note = (f"Now: **{caption.words[word]}** (probability {caption.probs[word]:.2f}) · "
                f"{fps:.1f} frames per second captioned; frames that come meanwhile are dropped")
        # Small and plain: each frame's picture is encoded, sent and fetched while the camera runs.
        heat = overlay(caption.image, caption.attention[word], max_side=LIVE_SIDE)
        return caption.text, heat, note, {"times": times}

    # --- the API ------------------------------------------------------------------------------

    @named_options("image")
    @timings.timed
    @shown_to_users
    def api_caption(self, image, *options) -> tuple[str, dict]:
        """Caption an uploaded image: returns the caption, then JSON with words, probs, log_prob,
        strategy, seed, cut (and every sample)."""
        return _api_outputs(self._captions(_required(image), options))

    @named_options("url")
    @timings.timed
    @shown_to_users
    def api_caption_url(self, url, *options) -> tuple[str, dict]:
        """Caption the image at a public http(s) URL (fetched by the server): as /caption."""
        return _api_outputs(self._captions(_fetched(url), options))

    def _captions(self, image, options) -> list:
        """[Caption], most likely first, for options in OPTION_NAMES order as the page sent them."""
        return self._nonempty(timings.seen(self.captioner.captions(image, **dict(zip(OPTION_NAMES, options)))))

    @staticmethod
    def _nonempty(captions) -> list:
        if not captions[0].words:
            raise InputError("The model produced an empty caption for this image; try another strategy")
        return captions

    def _shown(self, make) -> PageOutputs:
        """The page's outputs for the captions `make()` returns, or, if it fails, the reason next
        to the input and every other output unchanged."""
        try:
            captions = make()
        except (InputError, ValueError) as error:
            return PageOutputs.unchanged(error=_error(str(error)))
        except Exception:
            log.exception("captioning failed")
            return PageOutputs.unchanged(error=_error(APOLOGY))
        several = len(captions) > 1             # the table shows whenever there was more than one
        captions, labels = merge_same(captions)
        shown = Shown(self.results, labels)
        self.results.put(shown.stamp, captions)
        best = captions[0]
        rows = [[label, c.text, round(c.log_prob, 2)] for label, c in zip(shown.labels, captions)]
        return PageOutputs(error=_no_error(), caption=best.text + (CUT_MARK if best.cut else ""),
                           note=caption_note(best), details=details(captions), **_inspected(shown),
                           table=gr.update(value=rows, visible=several), figure_file=None,
                           gif_file=None, shown=shown)


def _expired(unchanged):
    """A word view of a result that has left the store: the visitor is told why (a notice) and
    every output stays as it was (`unchanged`: gr.skip() for each)."""
    gr.Warning(EXPIRED)
    return unchanged


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


def _error(message: str):
    return gr.update(value=f"**Could not caption:** {message}", visible=True)


def _no_error():
    return gr.update(value="", visible=False)


def merge_same(captions) -> tuple[list, list[str]]:
    """The captions table's rows: each caption once, most likely first, named by every decoding
    that wrote it ("greedy, beam", "3 of 10 samples")."""
    rows: dict = {}
    for caption, name in zip(captions, _labels(captions)):
        rows.setdefault(caption.text, (caption, []))[1].append(name)
    samples = sum(c.strategy == "sample" for c in captions)
    merged = sorted(rows.values(), key=lambda row: -row[0].log_prob)
    return [caption for caption, _ in merged], [_row_name(names, samples) for _, names in merged]


def _row_name(names: list[str], samples: int) -> str:
    drawn = [name for name in names if name.startswith("sample")]
    named = [name for name in names if not name.startswith("sample")]
    return ", ".join(named + ([f"{len(drawn)} of {samples} samples"] if len(drawn) > 1 else drawn))


def _labels(captions) -> list[str]:
    """How the captions table names each row: its decoding, samples numbered."""
    samples = sum(c.strategy == "sample" for c in captions)
    names, n = [], 0
    for c in captions:
        n += c.strategy == "sample"
        names.append(f"sample {n}" if c.strategy == "sample" and samples > 1 else c.strategy)
    return names


def caption_note(caption) -> str:
    """What the page says under a caption: whether the image is unlike the training data, whether
    the length limit cut it, and its seed."""
    lines = []
    if caption.warning:
        lines.append(f"⚠️ **{caption.warning}**")
    if caption.cut:
        lines.append(f"*Cut at {len(caption.words)} words by the length limit (marked …): the model "
                     "had not finished the sentence.*")
    if caption.seed is not None:
        lines.append(f"Seed **{caption.seed}**: enter it in *Seed* to draw the same sample again "
                     "(leave *Seed* empty for a new random one).")
    return "\n\n".join(lines)


def _inspected(shown) -> dict:
    """The views of the inspected caption (PageOutputs' confidence, selected and overlays):
    confidence chips, its first word large, every word's overlay."""
    caption, label = shown.caption, shown.labels[shown.current]
    which = f" ({label})" if len(shown.labels) > 1 or label != caption.strategy else ""
    chips = [(w, f"{float(p):.2f}") for w, p in zip(caption.words, caption.probs)]
    return {"confidence": gr.update(value=chips, color_map={band: confidence_colour(float(band)) for _, band in chips},
                                    label=f"Confidence per word{which}: its probability (darker, more probable); "
                                          "click a word to see where the model looked"),
            "selected": word_view(caption, 0),
            "overlays": word_overlays(caption.image, caption.words, caption.attention, caption.probs,
                                      max_side=320)}


def confidence_colour(probability: float) -> str:
    """A chip's colour: one hue, lighter for less probable words, always light enough for dark text
    (the probability itself is written in the chip: colour is not the only cue)."""
    light, dark = (239, 246, 255), (96, 165, 250)          # Tailwind blue-50 .. blue-400
    mix = [round(a + (b - a) * min(max(probability, 0.0), 1.0)) for a, b in zip(light, dark)]
    return "#%02x%02x%02x" % tuple(mix)


def _word_at(words: list[str], offset: int) -> int:
    """The index of the word at a character offset of a caption (its words joined by spaces; a
    copied name such as "frying pan" is one word with a space in it)."""
    end = 0
    for index, word in enumerate(words):
        end += len(word) + 1
        if offset < end:
            return index
    return max(len(words) - 1, 0)


def word_view(caption, index: int = 0):
    """One word's overlay, large, labelled with the word and its probability."""
    if caption is None or not 0 <= index < len(caption.words):
        return gr.skip()
    seen = caption.imagenet[index] if index < len(caption.imagenet) else None
    behind = "" if not seen else f" \u00b7 {seen[0]}: {seen[1]:.2f}" if seen[0] == PERSON_SEEN else \
        f" \u00b7 ImageNet sees: {seen[0]}, {seen[1]:.2f}"
    return gr.update(value=overlay(caption.image, caption.attention[index], max_side=640),
                     label=f"Selected word: \u201c{caption.words[index]}\u201d "
                           f"(probability {float(caption.probs[index]):.2f}){behind}")


def save_downloads(shown) -> tuple[str | None, str | None]:
    """The inspected caption's attention grid as a PNG figure and as an animated GIF, in a folder
    kept KEEP_DOWNLOADS_S; made once per caption (asked again, the same files come back)."""
    if shown is None:
        return None, None
    caption = shown.caption
    folder = _download_folder()
    stem = f"{_slug(caption.text)}-{shown.stamp}-{shown.current}"
    figure, gif = folder / f"{stem}-attention.png", folder / f"{stem}-attention.gif"
    if not figure.exists():
        save_attention_figure(figure, caption.image, caption.words, caption.attention, caption.probs)
    if not gif.exists():
        save_attention_gif(gif, caption.image, caption.words, caption.attention, caption.probs)
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
