"""The captioner web demo (Gradio Blocks): layout and events only; the work is in captioner.demo.

    python app.py [--checkpoint DIR | hf://owner/repo]      (or CAPTIONER_CHECKPOINT=DIR)

Serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860; 0.0.0.0 on Hugging Face
Spaces, where SPACE_ID is set). File fields take uploads only, one file of at most 10 MB a request
(captioner.serving). API: /caption (an uploaded image) and /caption_url (a URL the server fetches),
each followed by strategy, temperature, top_k, beam_size, seed, num_samples, max_length; they return
the caption, then JSON (words, probs, log_prob, strategy, seed).
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

import gradio as gr

import captioner  # noqa: F401  (quietens TensorFlow before it is imported)
from captioner import demo, serving
from captioner.images import InputError

EXAMPLES = Path(__file__).resolve().parent / "assets" / "examples"
CONCURRENCY = 4     # queued requests served at once; model calls themselves are serialised
CSS = """
#caption textarea { font-size: 1.5rem !important; font-weight: 600; line-height: 1.35; }
#words .grid-wrap { min-height: 0 !important; max-height: none !important; overflow-y: visible !important; }
"""  # a large caption; the word gallery as tall as its pictures (Gradio's default leaves a 450px box)
log = logging.getLogger("captioner.app")


class UntrustedImage(gr.Image):
    """gr.Image that passes the uploaded file on untouched, so every upload (UI or API) is read by
    captioner.images.load_image (format allowlist, pixel cap, clear errors), never by a bare PIL.open."""
    is_template = True   # the browser still renders it as a plain Image

    def preprocess(self, payload):
        if payload is not None and payload.path:
            return payload.path
        return super().preprocess(payload)


def user_errors(fn):
    """Input problems reach the user as their own message; anything else as a plain apology."""
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


def outputs_of(result: demo.Result) -> tuple:
    return (result.caption, result.details, result.confidence, result.overlays,
            demo.word_view(result.best, 0), gr.update(value=result.samples, visible=bool(result.samples)),
            result.seed_note, result.best)


def show_word(caption, event: gr.SelectData):
    """The clicked word's overlay, large (from this session's own state)."""
    return demo.word_view(caption, event.index)


def build_app(model, examples_dir=EXAMPLES) -> gr.Blocks:
    def options(strategy, temperature, top_k, beam_size, seed, num_samples, max_length) -> dict:
        return dict(strategy=strategy, temperature=temperature, top_k=top_k, beam_size=beam_size,
                    seed=seed, num_samples=num_samples, max_length=max_length)

    @user_errors
    def show_image(image, *controls):
        return outputs_of(demo.caption_image(model, image, **options(*controls)))

    @user_errors
    def show_url(url, *controls):
        return outputs_of(demo.caption_url(model, url, **options(*controls)))

    @user_errors
    def caption(image, strategy="greedy", temperature=1.0, top_k=0, beam_size=3, seed=None,
                num_samples=1, max_length=None):
        """Caption an image file: returns the caption, then JSON with words, probs, log_prob, strategy, seed."""
        return demo.api_outputs(demo.decode(model, image, **options(
            strategy, temperature, top_k, beam_size, seed, num_samples, max_length)))

    @user_errors
    def caption_url(url, strategy="greedy", temperature=1.0, top_k=0, beam_size=3, seed=None,
                    num_samples=1, max_length=None):
        """Caption the image at a public http(s) URL (fetched by the server): as /caption."""
        return demo.api_outputs(demo.decode_url(model, url, **options(
            strategy, temperature, top_k, beam_size, seed, num_samples, max_length)))

    longest = model.config.max_length
    with serving.GuardedBlocks(title="Captioner: show, attend and tell", delete_cache=serving.DELETE_CACHE) as app:
        gr.Markdown("# Captioner\nUpload, paste or drop an image (or give a URL): the model writes a "
                    "caption and shows, for every word, **where it looked**.")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image = UntrustedImage(type="filepath", label="Image", height=320,
                                       sources=["upload", "webcam", "clipboard"])
                with gr.Row():
                    url = gr.Textbox(label="…or an image URL", placeholder="https://…", scale=4)
                    url_button = gr.Button("Fetch", scale=1, min_width=60)
                strategy = gr.Radio(demo.STRATEGY_CHOICES, value="greedy", label="Decoding")
                temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature", visible=False)
                top_k = gr.Slider(0, 50, value=0, step=1, label="Top-k (0: all words)", visible=False)
                num_samples = gr.Slider(1, demo.MAX_SAMPLES, value=1, step=1, label="Number of samples",
                                        visible=False)
                beam_size = gr.Slider(1, 10, value=3, step=1, label="Beam size", visible=False)
                seed = gr.Number(value=None, precision=0, label="Seed (empty: random)", visible=False)
                max_length = gr.Slider(1, max(40, longest), value=longest, step=1,
                                       label="Max caption length (words)")
                button = gr.Button("Caption", variant="primary")
                pictures = demo.example_images(examples_dir)
                if pictures:
                    gr.Examples(pictures, inputs=[image], label="Examples (click one)", elem_id="examples",
                                examples_per_page=12, cache_examples=False)
            with gr.Column(scale=2, min_width=300):
                text = gr.Textbox(label="Caption", lines=1, elem_id="caption", buttons=["copy"])
                confidence = gr.HighlightedText(label="Confidence per word (deeper red: more probable)",
                                                show_legend=False, show_inline_category=True)
                seed_note = gr.Markdown()
                gallery = gr.Gallery(label="Where the model looked, word by word (click a word)",
                                     columns=5, height="auto", allow_preview=False, object_fit="contain",
                                     elem_id="words")
                selected = gr.Image(label="Selected word", type="pil", interactive=False, height=420,
                                    elem_id="selected")
                with gr.Row():
                    figure_file = gr.File(label="Attention grid (PNG)", elem_id="figure-file")
                    gif_file = gr.File(label="Animation (GIF)", elem_id="gif-file")
                samples = gr.Dataframe(headers=["caption", "log-probability"], label="Samples, most likely first",
                                       visible=False, interactive=False)
                with gr.Accordion("Details (JSON)", open=False):
                    details = gr.JSON(label="words, probabilities, strategy, seed")
        with gr.Accordion("About the model", open=False):
            gr.Markdown(demo.model_panel(model))
        shown = gr.State(None)   # this session's last Caption: the word view and downloads use it

        controls = [strategy, temperature, top_k, beam_size, seed, num_samples, max_length]
        outputs = [text, details, confidence, gallery, selected, samples, seed_note, shown]
        files = dict(fn=user_errors(demo.downloads), inputs=shown, outputs=[figure_file, gif_file],
                     api_visibility="private")
        # The page's own events (private: the API page lists only the two endpoints below).
        button.click(show_image, [image, *controls], outputs, api_visibility="private",
                     scroll_to_output=True).then(**files)
        gr.on([url_button.click, url.submit], show_url, [url, *controls], outputs, api_visibility="private",
              scroll_to_output=True).then(**files)
        strategy.change(lambda s: [gr.update(visible=v) for v in demo.visibility(s).values()], strategy,
                        [temperature, top_k, num_samples, seed, beam_size], api_visibility="private")
        gallery.select(user_errors(show_word), [shown], selected, api_visibility="private")
        # The API: events with no trigger on the page, through the same components (so uploads are
        # checked by Gradio), returning only the caption and its JSON.
        gr.on([], caption, [image, *controls], [text, details], api_name="caption")
        gr.on([], caption_url, [url, *controls], [text, details], api_name="caption_url")
    return app


def serve(app: gr.Blocks, **launch_options):
    """Queue and launch as `python app.py` does (tests use it too)."""
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return app.launch(css=CSS, **serving.launch_options(), **launch_options)


def main(argv=None) -> int:
    from captioner import Captioner
    from captioner.checkpoint import CheckpointError
    parser = argparse.ArgumentParser(description="Serve the captioner web demo")
    parser.add_argument("--checkpoint", default=None, help="checkpoint dir or hf://owner/repo "
                        "(default: $CAPTIONER_CHECKPOINT, else the shipped scene-world model)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        model = Captioner.load(args.checkpoint)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"captioner: cannot start: {error}", file=sys.stderr)
        return 2
    on_spaces = bool(os.environ.get("SPACE_ID"))
    serve(build_app(model.warm_up()),
          server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_spaces else "127.0.0.1"),
          server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
