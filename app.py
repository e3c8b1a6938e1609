"""The captioner web demo (Gradio Blocks): layout and events only; the work is in captioner.web.page.

    python app.py [--checkpoint DIR | hf://owner/repo] [--share]     (or CAPTIONER_CHECKPOINT=DIR)

Serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860; 0.0.0.0 on Hugging Face
Spaces, where SPACE_ID is set). File fields take uploads only, one file of at most 10 MB a request
(captioner.web.serving). API: /caption (an uploaded image) and /caption_url (a URL the server fetches),
each followed by strategy, temperature, top_k, beam_size, seed, num_samples, max_length; they return
the caption, then JSON (words, probs, log_prob, strategy, seed).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys

import gradio as gr

import captioner
from captioner.assets import EXAMPLES, example_images
from captioner.checkpoint import CARD
from captioner.options import STRATEGY_NAMES, DecodingOptions
from captioner.web import serving
from captioner.web.cards import model_panel, model_summary
from captioner.web.page import Askers, Page, PageOutputs

LIVE_EVERY_S = 0.1  # the camera sends a frame this often at most; slower captions drop the frames between
LIVE_STREAMS = 2    # live camera streams at once (a stream that sends nothing for a while is closed)
LIVE_LIMIT_S = 300  # one stream's length; the visitor starts another
# Every event that decodes, captions or draws shares one limit of requests at once; the live camera
# has its own, as a stream holds its slot between frames. Model work has one limit for all of them,
# the live camera's frames too (Captioner.batcher: one call at a time, oldest request first, greedy
# requests made together sharing a call), so a crowd on one event cannot starve another.
WORK = dict(concurrency_id="work", concurrency_limit=serving.WORK_LIMIT)
# A picture's share button posts to a Hugging Face Spaces discussion: it works on Spaces only.
PICTURE_BUTTONS = ["download", "fullscreen"] + (["share"] if os.environ.get("SPACE_ID") else [])
# Under the image box, where a refusal shows when there is one: what the box takes.
HINT = f"PNG, JPEG, GIF, WebP, BMP or TIFF, up to {serving.MAX_FILE_SIZE[:-2]} MB."
CSS = """
#caption textarea { font-size: 1.5rem !important; font-weight: 600; line-height: 1.35; }
#words .grid-wrap { min-height: 0 !important; max-height: none !important; overflow-y: visible !important; }
#words .grid-container { grid-template-columns: repeat(auto-fill, minmax(96px, 1fr)) !important; }
#words .grid-container { grid-template-rows: none !important; grid-auto-rows: auto !important; }
#words .thumbnail-item { aspect-ratio: auto !important; height: auto !important; display: flex !important;
                         flex-direction: column; }
#words .thumbnail-item > img { aspect-ratio: 1 / 1; height: auto !important; flex: none; }
#words .caption-label { position: static !important; max-width: none !important; opacity: 1 !important;
                        white-space: normal !important; overflow: visible !important; text-align: center !important;
                        border: 0 !important; border-top: 1px solid var(--border-color-primary) !important;
                        border-radius: 0 !important; }
#words .grid-wrap { padding-top: 2.2rem !important; }
#error, #type-error { border-left: 4px solid #d33; padding-left: 0.6rem; }
#error[data-hidden-text] { display: none !important; }
#hint, #error, #type-error { min-height: 3.4rem; margin: 0; }
#error ~ #hint, #type-error:not([hidden]) ~ #hint { display: none !important; }
#confidence .empty { min-height: 0 !important; height: 6.6rem !important; }
#examples .gallery-item .container { width: 80px !important; height: 80px !important; }
@media (max-width: 640px) { #image { height: 200px !important; } }
#examples .gallery-item img { width: 100% !important; height: 100% !important; object-fit: cover; }
#captions .selection-button, #captions .cell-menu-button { display: none !important; }
:root, .dark { --body-text-color-subdued: #5d5d66; --button-primary-background-fill: #c2410c;
               --button-primary-background-fill-hover: #9a3412; --button-primary-text-color: #ffffff; }
.dark { --body-text-color-subdued: #b8b8c2; }
#confidence .token .text, #confidence .token .label { color: #111 !important; }
#confidence .token { background-color: #eef2f8 !important; }
"""
# Text and buttons of at least 4.5:1 contrast in both themes (Gradio's help text is 1.9:1, its
# primary button 2.8:1); confidence chips in dark text on their light band colours.
# A large caption. The word gallery: as tall as its pictures (Gradio's default leaves a 450px box),
# and as many columns of at least 96px as fit, so no word is cut off on a phone; each tile's label
# under its picture (Gradio lays it over the picture), wrapped when long.
# Nothing moves as the page fills in: a refusal takes the hint's room under the image box, the
# empty confidence box is about as tall as a caption's, example thumbnails are sized before they
# load. On a phone the image box is shorter, so the first examples show as the page opens. The
# captions table is read-only: no handles for selecting columns or rows, or cell menus.

# Run in the browser: example pictures and word tiles get names a screen reader can say (Gradio
# leaves the examples' alt text empty and may call a tile "Thumbnail 1 of 6"): a file's name, a word.
HEAD = """<style>
html:not(.page-ready) gradio-app .gradio-container { visibility: hidden; animation: page-reveal 0s 4s forwards; }
@keyframes page-reveal { to { visibility: visible; } }
</style>
<script>
const PAGE_PARTS = ['caption', 'confidence', 'selected', 'words', 'figure-file', 'gif-file'];
new MutationObserver(() => {
  // Gradio draws each part as its code arrives, each pushing the next down: the page shows once
  // all of them are there (or after 4 s whatever happens, by the style above).
  const root = document.documentElement;
  if (!root.classList.contains('page-ready') && PAGE_PARTS.every(id => document.getElementById(id)))
    requestAnimationFrame(() => root.classList.add('page-ready'));
  // Gradio names each option of a radio group apart ("radio-1", "radio-2"...), and anew as they
  // change: one name per group makes it one stop for Tab, whose arrow keys move the choice.
  document.querySelectorAll('fieldset').forEach((group, n) => {
    group.querySelectorAll('input[type=radio]').forEach(option => {
      if (option.name !== 'radio-group-' + n) option.name = 'radio-group-' + n;
    });
  });
  document.querySelectorAll('#examples img:not([alt]), #examples img[alt=""]').forEach(img => {
    const name = decodeURIComponent(img.src.split('/').pop().split('?')[0]).replace(/\\.[a-z]+$/i, '');
    img.alt = 'Example: ' + name.replace(/^(photo|composite)_(\\d+_)?/, '$1 ').replace(/[_-]+/g, ' ');
  });
  // Gradio's empty boxes carry an aria-label on a plain div (not allowed: nothing to name).
  document.querySelectorAll('div.empty[aria-label]:not([role])').forEach(box => box.removeAttribute('aria-label'));
  // The upload box's name must contain what it shows ("Drop Image Here - or - Click to Upload").
  document.querySelectorAll('button.upload-container[aria-label]').forEach(box => box.removeAttribute('aria-label'));
  document.querySelectorAll('#selected .image-container > button:not([aria-label])').forEach(b =>
    b.setAttribute('aria-label', "The selected word's heatmap, full size"));
  // A download link is named by what it downloads, not "497.7 KB"; its name keeps the size it shows
  // (a name must contain the visible text: speech users say what they see).
  document.querySelectorAll('#figure-file a[data-testid="download-link"], #gif-file a[data-testid="download-link"]').forEach(link => {
    const name = 'Download ' + (link.getAttribute('download') || 'the file') + ', ' + link.textContent.trim();
    if (link.getAttribute('aria-label') !== name) link.setAttribute('aria-label', name);
  });
  document.querySelectorAll('#words button.thumbnail-item').forEach(tile => {
    const label = tile.querySelector('.caption-label');
    const word = label && label.textContent.trim();
    if (word && tile.getAttribute('aria-label') !== word) tile.setAttribute('aria-label', word);
  });
  // A new message from the server replaces a refusal made here (below), and shows again; either
  // is read out by a screen reader as it appears.
  const error = document.querySelector('#error');
  if (error && error.getAttribute('role') !== 'alert') error.setAttribute('role', 'alert');
  if (error && error.dataset.hiddenText !== undefined && error.dataset.hiddenText !== error.textContent) {
    delete error.dataset.hiddenText;
    showTypeError('');
  }
}).observe(document.documentElement, {childList: true, subtree: true, attributes: true,
                                      attributeFilter: ['aria-label', 'src', 'name']});
// A file that is not an image is refused by Gradio in a toast that fades; say it where the
// other refusals are, next to the image box, until the next file or message.
function showTypeError(text) {
  let box = document.querySelector('#type-error');
  const image = document.querySelector('#image');
  if (!box && image && text) {
    box = document.createElement('div');
    box.id = 'type-error';
    box.setAttribute('role', 'alert');
    image.after(box);
  }
  if (box) { box.textContent = text; box.hidden = !text; }
  const error = document.querySelector('#error');
  if (text && error) error.dataset.hiddenText = error.textContent;
}
function checkFiles(files) {
  const file = files && files[0];
  if (!file) return;
  showTypeError(file.type.startsWith('image/') ? '' : '\u201c' + file.name + '\u201d is not an image: ' +
                'choose a PNG, JPEG, GIF, WebP, BMP or TIFF file.');
}
document.addEventListener('change', e => { if (e.target.closest && e.target.closest('#image')) checkFiles(e.target.files); }, true);
document.addEventListener('drop', e => { if (e.target.closest && e.target.closest('#image')) checkFiles(e.dataTransfer && e.dataTransfer.files); }, true);
</script>"""
# After a result, bring it into view (the examples sit below the fold, the caption at the top);
# after a refusal, the message next to the input instead.
SHOW_RESULT = """() => {
  const error = document.querySelector('#error');
  const target = error && error.offsetParent !== null && error.textContent.trim() ? error
                 : document.querySelector('#caption');
  const box = target && target.getBoundingClientRect();
  if (box && (box.top < 0 || box.bottom > window.innerHeight)) window.scrollBy(0, box.top - 12);
}"""


# A control held while a result is worked on loses the keyboard's focus (a disabled control cannot
# keep it): the control that asked gets it back once the result has come, unless the visitor has
# moved on meanwhile.
NOTE_FOCUS = "() => { window.captionerAsker = document.activeElement; return []; }"
RESTORE_FOCUS = """() => setTimeout(() => {
  const asker = window.captionerAsker;
  const lost = !document.activeElement || document.activeElement === document.body;
  if (asker && asker.isConnected && lost) asker.focus({preventScroll: true});
}, 0)"""


SHOW_SELECTED = """() => {
  const view = document.querySelector('#selected');
  const box = view && view.getBoundingClientRect();
  if (box && (box.top < 0 || box.bottom > window.innerHeight)) view.scrollIntoView({block: 'nearest'});
}"""


class UntrustedImage(gr.Image):
    """gr.Image that passes the uploaded file on untouched, so every upload (UI or API) is read by
    captioner.images.load_image (format allowlist, pixel cap, clear errors), never by a bare PIL.open."""
    is_template = True   # the browser still renders it as a plain Image

    def preprocess(self, payload):
        if payload is not None and payload.path:
            return payload.path
        return super().preprocess(payload)


def option_control(knob, model_max_length: int):
    """The page's control for one decoding knob, from its one definition in captioner.options."""
    meta, visible = knob.metadata, knob.metadata["only"] is None
    if meta["choices"]:
        return gr.Radio([(STRATEGY_NAMES[c], c) for c in meta["choices"]], value=knob.default, label=meta["label"])
    if knob.name == "seed":   # a text box: a number box cannot be empty (Gradio shows and sends 0)
        return gr.Textbox(value="", placeholder=f"random ({meta['low']} to {meta['high']})",
                          label=meta["label"], info=meta["help"], visible=visible, elem_id="seed")
    default = model_max_length if knob.name == "max_length" else knob.default
    return gr.Slider(meta["low"], meta["high"], value=default, step=meta["step"], label=meta["label"],
                     info=meta["help"], visible=visible)


def build_app(model, examples_dir=EXAMPLES) -> gr.Blocks:
    page = Page(model)
    with serving.GuardedBlocks(title="Captioner: show, attend and tell", delete_cache=serving.DELETE_CACHE) as app:
        gr.Markdown("# Captioner\nUpload, paste or drop an image (or give a URL): the model writes a "
                    "caption and shows, for every word, **where it looked**.")
        gr.Markdown(model_summary(model), elem_id="honest")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image, error, askers, examples = input_panel(examples_dir)
                options = [option_control(knob, model.config.max_length) for knob in DecodingOptions.knobs()]
            with gr.Column(scale=2, min_width=300):
                results = result_panel()
        live_camera(page)
        about_panel(page)
        shown = gr.State(None)   # this session's result (page.Shown): the word views and downloads use it
        outputs = PageOutputs(error=error, shown=shown, **results)
        text, details = results["caption"], results["details"]
        page_events(page, image, askers, examples, options, outputs)
        # The API: events with no trigger on the page, through the same components (so uploads are
        # checked by Gradio), returning only the caption and its JSON.
        gr.on([], page.api_caption, [image, *options], [text, details], api_name="caption", **WORK)
        gr.on([], page.api_caption_url, [askers.url, *options], [text, details], api_name="caption_url", **WORK)
    return app


def input_panel(examples_dir) -> tuple:
    """The left-hand column's inputs: (image, error, Askers of its buttons and URL box, examples or None).
    A refusal shows right under the image, where a one-line hint on what it takes stands otherwise:
    the two take the same room, so nothing below moves when one replaces the other."""
    image = UntrustedImage(type="filepath", label="Image", height=230, buttons=PICTURE_BUTTONS,
                           sources=["upload", "webcam", "clipboard"], elem_id="image")
    error = gr.Markdown(visible=False, elem_id="error")
    gr.Markdown(HINT, elem_id="hint")
    with gr.Row():
        url = gr.Textbox(label="…or an image URL", placeholder="https://…", scale=4, elem_id="url")
        fetch = gr.Button("Fetch", scale=1, min_width=60, elem_id="fetch")
    with gr.Row():
        caption = gr.Button("Caption", variant="primary", scale=2, elem_id="caption-button")
        compare = gr.Button("Compare decodings", scale=1, min_width=120, elem_id="compare-button")
    pictures = [str(p) for p in example_images(examples_dir)]
    examples = gr.Examples(pictures, inputs=[image], label="Examples (click one to caption it)",
                           elem_id="examples", examples_per_page=12, cache_examples=False) if pictures else None
    return image, error, Askers(caption=caption, compare=compare, fetch=fetch, url=url), examples


def about_panel(page) -> None:
    """"About the model": a short account of the model from its card and record; the full card, a
    long read, only when asked for."""
    with gr.Accordion("About the model", open=False, elem_id="about"):
        gr.Markdown(model_panel(page.captioner))
        with gr.Accordion(f"The full model card ({CARD})", open=False, elem_id="full-card") as full:
            card = gr.Markdown()
    full.expand(page.model_card, None, card, queue=False, api_visibility="private")


def result_panel() -> dict:
    """The right-hand column: the caption and everything shown about it, by PageOutputs field."""
    text = gr.Textbox(label="Caption (double-click a word to see where the model looked)", lines=1,
                      elem_id="caption", buttons=["copy"])
    note = gr.Markdown(elem_id="note")
    confidence = gr.HighlightedText(label="Confidence per word", show_legend=False,
                                    show_inline_category=True, elem_id="confidence")
    selected = gr.Image(label="Selected word", type="pil", interactive=False, height=420, buttons=PICTURE_BUTTONS,
                        elem_id="selected")
    gallery = gr.Gallery(label="Where the model looked, word by word (click a word)", buttons=PICTURE_BUTTONS,
                         columns=5, height="auto", allow_preview=False, object_fit="contain",
                         elem_id="words")
    table = gr.Dataframe(headers=["decoding", "caption", "log-prob."], elem_id="captions",
                         label="Captions, most likely first (click one to inspect it)", wrap=True,
                         column_widths=["28%", "50%", "22%"], visible=False, interactive=False)
    with gr.Row():
        figure_file = gr.File(label="Attention grid (PNG)", elem_id="figure-file")
        gif_file = gr.File(label="Animation (GIF)", elem_id="gif-file")
    with gr.Accordion("Details (JSON)", open=False):
        details = gr.JSON(label="words, probabilities, strategy, seed")
    return dict(caption=text, note=note, details=details, confidence=confidence, selected=selected,
                overlays=gallery, table=table, figure_file=figure_file, gif_file=gif_file)


def live_camera(page) -> None:
    """The live camera panel: captions and the current word's heatmap as the camera streams."""
    with gr.Accordion("Live camera: captions as you move", open=False):
        with gr.Row():
            live = UntrustedImage(sources=["webcam"], streaming=True, type="filepath", label="Camera", buttons=[],
                                  height=320, elem_id="live-camera")
            with gr.Column():
                live_text = gr.Textbox(label="Live caption", elem_id="live-caption")
                live_note = gr.Markdown(elem_id="live-note")
                live_heat = gr.Image(label="Where it looks for the current word", type="pil", format="jpeg", buttons=[],
                                     interactive=False, height=320)
        live_state = gr.State(None)
    # A frame that arrives while one is captioned replaces the one waiting (Gradio keeps only the
    # latest): the stream drops frames instead of queueing them behind a slow caption.
    live.stream(page.live_caption, [live, live_state], [live_text, live_heat, live_note, live_state],
                stream_every=LIVE_EVERY_S, time_limit=LIVE_LIMIT_S, concurrency_id="live",
                concurrency_limit=LIVE_STREAMS, api_visibility="private")


def page_events(page, image, askers, examples, options, outputs):
    """The page's own events (private: the API page lists only the two endpoints). `outputs`: the
    page's PageOutputs components, in the order the result events return their values; `askers`:
    the page's Askers components, held while a result is worked on."""
    shown, selected = outputs.shown, outputs.selected
    private = dict(api_visibility="private", **WORK)
    quick = dict(queue=False, api_visibility="private")

    def result(asked, run, inputs):
        """`asked` (the askers held) -> `run`, then the askers released (whatever came), the result
        brought into view and its downloads made."""
        # While a caption is worked on, the previous result stays in view (a small timer, no blank panels).
        done = asked.then(run, inputs, list(outputs), show_progress="minimal", **private)
        done.then(Askers.released, None, list(askers), **quick).then(
            None, js=RESTORE_FOCUS, api_visibility="private")
        done.then(None, js=SHOW_RESULT, api_visibility="private").then(
            page.downloads, shown, list(outputs.downloads()), **private)

    hold = dict(fn=Askers.held, inputs=None, outputs=list(askers), js=NOTE_FOCUS, **quick)
    result(askers.caption.click(**hold), page.show_caption, [image, *options])
    result(askers.compare.click(**hold), page.compare, [image, *options])
    result(gr.on([askers.fetch.click, askers.url.submit], **hold), page.show_caption_from_url, [askers.url, *options])
    if examples is not None:    # an example is captioned as soon as it is clicked
        result(examples.load_input_event.then(**hold), page.show_caption, [image, *options])
    image.upload(page.check_image, image, [image, outputs.error], **private)
    options[0].change(page.show_controls, options[0], options[1:], api_visibility="private")
    for words in (outputs.overlays, outputs.confidence):   # on a phone the large view sits above the tiles
        words.select(page.show_word, shown, selected, **private).then(None, js=SHOW_SELECTED,
                                                                      api_visibility="private")
    outputs.caption.select(page.show_caption_word, shown, selected, **private)
    outputs.table.select(page.show_sample, shown, list(outputs.sample_outputs()),
                         **private).then(page.downloads, shown, list(outputs.downloads()), **private)


def serve(app: gr.Blocks, share: bool = False, say=print, **launch_options):
    """Queue and launch as `python app.py` does (tests use it too). With `share`, Gradio is asked for
    a public share link; where it cannot make one (offline, a firewall), one line says so and the
    local server keeps serving."""
    app.queue(default_concurrency_limit=serving.WORK_LIMIT, max_size=64)
    serving.start_sweeper()
    serving.keep_big_buffers_out_of_the_heap()
    server_name = launch_options.get("server_name") or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    options = dict(css=CSS, head=HEAD, **serving.launch_options(server_name), **launch_options)
    if not share:
        return app.launch(**options)
    blocking = not options.pop("prevent_thread_lock", False)
    with contextlib.redirect_stdout(io.StringIO()):   # Gradio's own words on a failed link run to ten lines
        launched = app.launch(share=True, prevent_thread_lock=True, **options)
    say(f"* Running on local URL: {app.local_url}")
    say(f"* Share link (public while this runs): {app.share_url}" if app.share_url else
        "* No share link: Gradio's share server cannot be reached (offline?); serving locally only.")
    if blocking:
        app.block_thread()
    return launched


def main(argv=None) -> int:
    captioner.import_tensorflow_quietly()        # CAPTIONER_TF_LOGS=1 shows TensorFlow's C++ start-up log
    from captioner import Captioner
    from captioner.checkpoint import CheckpointError
    parser = argparse.ArgumentParser(description="Serve the captioner web demo")
    parser.add_argument("--checkpoint", default=None, help="checkpoint dir or hf://owner/repo "
                        "(default: $CAPTIONER_CHECKPOINT, else the shipped model)")
    parser.add_argument("--share", action="store_true", help="also make a public share link (Gradio's "
                        "share server, *.gradio.live); where none can be made, serve locally only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        model = Captioner.load(args.checkpoint)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"captioner: cannot start: {error}", file=sys.stderr)
        return 2
    on_spaces = bool(os.environ.get("SPACE_ID"))
    serve(build_app(model.warm_up()), share=args.share,
          server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_spaces else "127.0.0.1"),
          server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
