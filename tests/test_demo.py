"""The functions behind the web page, called directly."""

import json

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from captioner import Captioner
from captioner.assets import example_images
from captioner.options import DecodingOptions
from captioner.web import cards
from captioner.web import page as web_page

OPTION_DEFAULTS = [knob.default for knob in DecodingOptions.knobs()]


@pytest.fixture(scope="module")
def model(trained_checkpoint):
    return Captioner.load(trained_checkpoint[0])


@pytest.fixture(scope="module")
def picture(coco_fixture):
    return Image.open(sorted(coco_fixture[1].iterdir())[0])


@pytest.fixture(scope="module")
def page(model):
    return web_page.Page(model)


def run(page, image, **options) -> dict:
    """The Caption button's event with the page's option controls (DecodingOptions order)."""
    values = [options.get(name, knob.default) for name, knob in
              zip(web_page.OPTION_NAMES, DecodingOptions.knobs())]
    return page.show_caption(image, *values)._asdict()


def api(page, image, **options):
    values = [options.get(name, knob.default) for name, knob in zip(web_page.OPTION_NAMES, DecodingOptions.knobs())]
    return page.api_caption(image, *values)


def test_controls_follow_the_strategy():
    shown = lambda strategy: [u["visible"] for u in web_page.Page.show_controls(strategy)]
    names = web_page.OPTION_NAMES[1:]
    assert dict(zip(names, shown("greedy"))) == {n: n == "max_length" for n in names}
    assert dict(zip(names, shown("sample")))["temperature"] and not dict(zip(names, shown("sample")))["beam_size"]
    assert dict(zip(names, shown("beam")))["beam_size"] and not dict(zip(names, shown("beam")))["seed"]


def test_greedy_result_has_everything_the_page_shows(page, model, picture):
    result = run(page, picture)
    assert result["caption"] == model.caption(picture).text
    assert result["error"]["visible"] is False
    assert [label.split(" (")[0] for _, label in result["overlays"]] == result["details"]["words"]
    assert len(result["overlays"]) == len(result["confidence"]["value"]) == len(result["details"]["probs"])
    assert max(result["overlays"][0][0].size) == 320 and max(result["selected"]["value"].size) == 640
    first = result["details"]["words"][0]
    assert result["selected"]["label"].startswith(f"Selected word: \u201c{first}\u201d (probability 0.")
    assert web_page.word_view(result["shown"].caption, len(result["caption"].split())) == gr.skip()
    assert result["table"]["visible"] is False and result["note"] == ""
    assert result["figure_file"] is None and result["gif_file"] is None    # no stale downloads


def test_downloads_are_a_png_grid_and_a_gif_of_every_word(page, picture):
    result = run(page, picture)
    figure, gif = page.downloads(result["shown"])
    assert Image.open(figure).format == "PNG"
    assert Image.open(gif).n_frames == len(result["details"]["words"])
    assert page.downloads(result["shown"]) == (figure, gif)               # made once per caption
    assert page.downloads(None) == (None, None)


def test_sampling_shows_and_repeats_its_seed(page, picture):
    first = run(page, picture, strategy="sample", temperature=1.5, seed="")
    seed = first["details"]["seed"]
    assert str(seed) in first["note"]
    again = run(page, picture, strategy="sample", temperature=1.5, seed=str(seed))
    assert again["caption"] == first["caption"]
    seeds = {run(page, picture, strategy="sample", seed="")["details"]["seed"] for _ in range(3)}
    assert len(seeds) == 3                                                # empty box: a new seed each time


def test_the_seed_box_starts_empty():
    seed = next(app.option_control(knob, 8) for knob in DecodingOptions.knobs() if knob.name == "seed")
    assert seed.value in ("", None)


def test_a_caption_cut_by_the_length_limit_is_marked(page, picture):
    result = run(page, picture, max_length=1)
    assert result["details"]["cut"] is True and result["caption"].endswith(web_page.CUT_MARK)
    assert "Cut at 1 words" in result["note"]
    assert run(page, picture)["details"]["cut"] is False


def test_every_word_and_sample_can_be_inspected(page, picture):
    result = run(page, picture, strategy="sample", temperature=2.0, seed=4, num_samples=3)
    shown = result["shown"]
    words = shown.captions[0].words
    last = page.show_word(shown, gr.SelectData(None, {"index": len(words) - 1, "value": None}))
    assert f"\u201c{words[-1]}\u201d" in last["label"]
    picked = page.show_caption_word(shown, gr.SelectData(None, {"index": [len(words[0]) + 1, len(result["caption"])],
                                                                "value": None}))
    if len(words) > 1:
        assert f"\u201c{words[1]}\u201d" in picked["label"]
    caption, confidence, selected, overlays, figure, gif, inspected = page.show_sample(
        shown, gr.SelectData(None, {"index": [2, 1], "value": None}))
    assert inspected.current == 2 and inspected.stamp == shown.stamp and figure is None and gif is None
    assert "(sample 3)" in confidence["label"] and caption.startswith(shown.captions[2].text)   # the caption box too
    assert [w for w, _ in confidence["value"]] == shown.captions[2].words
    assert page.downloads(inspected)[0] != page.downloads(shown)[0]


def test_compare_decodes_one_encoding_greedy_beam_and_samples(model, page, picture, monkeypatch):
    encoded = []
    features = model.features
    monkeypatch.setattr(model, "features", lambda images: encoded.append(len(images)) or features(images))
    result = run_compare(page, picture, seed=9)
    assert encoded == [1]                                                 # one image encoding for all
    rows = result["table"]["value"]
    assert all(isinstance(r[2], float) for r in rows) and result["table"]["visible"]
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)     # most likely first
    assert result["caption"] == rows[0][1] and len({r[1] for r in rows}) == len(rows)   # each caption once
    samples = [c.text for c in model.captions(picture, strategy="sample", num_samples=3, seed=9)]
    written = {"greedy": [model.caption(picture).text], "beam": [model.caption(picture, strategy="beam").text],
               "sample": samples}
    for strategy, texts in written.items():   # every decoding's caption is in the row that names it
        for text in texts:
            row = next(r for r in rows if r[1] == text)
            assert strategy in row[0], (strategy, row)
    counted = sum(int(part.split()[0]) if " of " in part else 1 for r in rows for part in r[0].split(", "))
    assert counted == 5                                                  # greedy, beam and three samples


def test_the_same_caption_written_by_several_decodings_is_one_row_with_their_names():
    from types import SimpleNamespace as Caption
    captions = [Caption(text="a cat", strategy="greedy", log_prob=-2.0), Caption(text="a dog", strategy="beam", log_prob=-1.0)]
    captions += [Caption(text=t, strategy="sample", log_prob=lp) for t, lp in
                 (("a dog", -1.0), ("a cat", -2.0), ("a cat", -2.0), ("a cow", -5.0))]
    merged, labels = web_page.merge_same(captions)
    assert [c.text for c in merged] == ["a dog", "a cat", "a cow"]
    assert labels == ["beam, sample 1", "greedy, 2 of 4 samples", "sample 4"]


def run_compare(page, image, **options) -> dict:
    values = [options.get(name, knob.default) for name, knob in zip(web_page.OPTION_NAMES, DecodingOptions.knobs())]
    return page.compare(image, *values)._asdict()


def test_several_samples_come_sorted_with_log_probabilities(page, picture):
    result = run(page, picture, strategy="sample", temperature=2.0, seed=4, num_samples=5)
    samples = result["table"]["value"]
    log_probs = [lp for *_, lp in samples]
    assert len(samples) == 5 and log_probs == sorted(log_probs, reverse=True)
    assert result["caption"] == samples[0][1] and samples[0][0] == "sample 1"
    assert [s["caption"] for s in result["details"]["samples"]] == [c for _, c, _ in samples]


def test_strategies_reach_the_model_and_other_options_are_ignored(page, model, picture):
    text, details = api(page, picture, strategy="beam", beam_size=4, temperature=0.3, num_samples=7)
    assert details["strategy"] == "beam" and details["seed"] is None and "samples" not in details
    assert text == model.caption(picture, strategy="beam", beam_size=4).text
    text, details = api(page, picture, strategy="greedy", seed=5, num_samples=3)
    assert details["seed"] is None and "samples" not in details
    assert len(api(page, picture, max_length=2)[1]["words"]) <= 2


def test_empty_boxes_from_the_browser_mean_unset(page, picture):
    assert api(page, picture, strategy="sample", seed=12.0, max_length="")[1]["seed"] == 12
    assert api(page, picture, strategy="sample", seed="", max_length=None)[1]["seed"] is not None
    assert api(page, picture, strategy="sample", seed=float("nan"))[1]["seed"] is not None


def test_api_outputs_are_the_caption_then_its_json(page, picture):
    text, details = api(page, picture, strategy="sample", seed=3, num_samples=3)
    assert text == details["caption"] == details["samples"][0]["caption"]
    assert {"words", "probs", "strategy", "seed", "log_prob"} <= set(details) and details["seed"] == 3
    assert "samples" not in api(page, picture)[1]


@pytest.mark.parametrize("call, message", [
    (lambda page: page.show_caption(None, *OPTION_DEFAULTS), "upload an image"),
    (lambda page: run_page(page, strategy="beam", beam_size=99), "Beam size"),
    (lambda page: page.show_caption_from_url("http://127.0.0.1:7860/secret.png", *OPTION_DEFAULTS), "not allowed"),
    (lambda page: page.show_caption_from_url("  ", *OPTION_DEFAULTS), "enter an image URL"),
    (lambda page: run_page(page, strategy="sample", num_samples=11), "Number of samples"),
    (lambda page: run_page(page, strategy="sample", temperature=9), "Temperature"),
    (lambda page: run_page(page, strategy="sample", max_length=0), "Max caption length"),
    (lambda page: page.compare(None, *OPTION_DEFAULTS), "upload an image"),
])
def test_bad_inputs_become_a_message_by_the_input_and_keep_the_result(page, call, message):
    error, *rest = call(page)
    assert error["visible"] and message in error["value"] and "Something went wrong" not in error["value"]
    assert all(output == gr.skip() for output in rest)                    # the previous result stays


def run_page(page, **options):
    values = [options.get(name, knob.default) for name, knob in zip(web_page.OPTION_NAMES, DecodingOptions.knobs())]
    return page.show_caption(np.zeros((8, 8, 3), np.uint8), *values)


@pytest.mark.parametrize("call, message", [
    (lambda page: api(page, None), "upload an image"),
    (lambda page: page.api_caption_url("file:///etc/passwd", *OPTION_DEFAULTS), "Only http and https"),
    (lambda page: api(page, np.zeros((8, 8, 3), np.uint8), strategy="sample", temperature=9), "Temperature"),
])
def test_bad_api_inputs_become_clear_errors(page, call, message):
    with pytest.raises(gr.Error, match=message) as caught:
        call(page)
    assert "Something went wrong" not in str(caught.value)


def test_a_file_that_is_not_an_image_is_removed_with_the_reason(page, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("this is not a picture")
    image, error = page.check_image(str(fake))
    assert image is None and error["visible"] and "Not an image" in error["value"]
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    assert page.check_image(str(good)) == (gr.skip(), {"__type__": "update", "value": "", "visible": False})


def test_bugs_become_a_plain_apology():
    @web_page.shown_to_users
    def bug():
        raise KeyError("internal detail")
    with pytest.raises(gr.Error) as caught:
        bug()
    assert "internal detail" not in str(caught.value) and "Something went wrong" in str(caught.value)


def test_model_panel_is_honest_reads_the_card_and_shows_no_server_path(model, coco_fixture):
    # A checkpoint with no record of what was measured: its card, cut to what fits.
    panel = cards.model_panel(model)
    assert "--checkpoint" not in panel and len(panel) <= cards.PANEL_CHARS
    assert str(model.checkpoint.path) not in panel and model.source in panel
    assert str(coco_fixture[0]) in model.checkpoint.card and str(coco_fixture[0].parent) not in panel
    title = model.checkpoint.card.strip().splitlines()[0]
    assert title.lstrip("# ") in panel and f"\n{title}\n" not in panel    # the card, its headings demoted
    assert f"{len(model.vocab)} words" in panel
    full = cards.model_card(model)                                         # the whole card, when asked for
    assert title.lstrip("# ") in full and str(coco_fixture[0].parent) not in full


def shipped_checkpoint(tmp_path, record_changes=None):
    """The shipped model's card, record and config (no weights), as the page reads them: in its own
    folder, or, with `record_changes`, in a copy whose record says other figures."""
    from captioner.config import CheckpointConfig
    folder = app.EXAMPLES.parent / "model"
    if record_changes:
        record = json.loads((folder / cards.RECORD).read_text())
        for key, values in record_changes.items():
            record[key].update(values)
        copy = tmp_path / "model"
        copy.mkdir()
        (copy / cards.RECORD).write_text(json.dumps(record))
        folder = copy
    config = CheckpointConfig.from_dict(json.loads((app.EXAMPLES.parent / "model" / "config.json").read_text()))
    card = (app.EXAMPLES.parent / "model" / "model_card.md").read_text()
    return type("Shipped", (), {"checkpoint": type("C", (), {"card": card, "path": folder}),
                                "vocab": range(config.model.vocab_size), "source": "the shipped default model",
                                "config": config.model})


def test_the_about_panel_is_short_and_tells_the_recorded_figures(tmp_path):
    shipped = shipped_checkpoint(tmp_path)
    record = json.loads((app.EXAMPLES.parent / "model" / cards.RECORD).read_text())
    panel, card = cards.model_panel(shipped), shipped.checkpoint.card
    assert len(card) > 10_000 and len(panel) <= cards.PANEL_CHARS                # not the whole card
    photos, emoji = record["validation_photos"], record["figures"]
    for figure in (photos["not_calibrated_main_subject_recall"], photos["not_calibrated_pointing_game"],
                   photos["not_calibrated_chair_s"], emoji["object_recall"], record["photo_composites"]["object_recall"]):
        assert f"{100 * figure:.0f}%" in panel
    assert f"{record['emoji_images']:,} scenes" in panel and "It counts up to three." in panel   # what it learnt, its limits
    assert "wildebeest" not in panel and "Stage timings" not in panel                          # no lists, no recipe
    assert "assets/model/model_card.md" in panel                                               # where the rest is
    summary = cards.model_summary(shipped).split("** ", 1)[1].split(" (")[0]
    assert summary not in panel                                                                # said under the title
    other = cards.model_panel(shipped_checkpoint(tmp_path, {"validation_photos": {
        "not_calibrated_main_subject_recall": 0.123}, "figures": {"object_recall": 0.456}}))
    assert "12%" in other and "46% of the objects" in other and "model_card.md` in the checkpoint" in other
    assert len(cards.model_card(shipped)) > 10_000


def test_examples_folder(tmp_path):
    assert example_images(tmp_path / "missing") == []
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo_c.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "composite_a.png")
    (tmp_path / "notes.txt").write_text("x")
    # Real photos first (what visitors came to try), then composites, then the rest.
    assert [p.name for p in example_images(tmp_path)] == ["photo_c.png", "composite_a.png", "b.png"]


def test_app_refuses_to_start_with_a_corrupt_checkpoint(trained_checkpoint, tmp_path, capsys):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(trained_checkpoint[0], bad)
    (bad / "vocab.json").write_text("{")
    assert app.main(["--checkpoint", str(bad)]) == 2
    assert "vocab.json" in capsys.readouterr().err


def test_the_honest_line_comes_from_the_checkpoints_card(model, monkeypatch):
    # The fixture's card names its training data ("- Training data: <path>"): said without the path.
    line = cards.model_summary(model)
    assert "Trained on captions_train2014.json." in line and "About the model" in line
    assert "/" not in line
    card = "# A photo model\n\n## What it can do\nIt was trained on MS-COCO photographs. It names 80 kinds.\n"
    monkeypatch.setattr(model.checkpoint, "card", card)
    assert "It was trained on MS-COCO photographs. It names 80 kinds." in cards.model_summary(model)
    monkeypatch.setattr(model.checkpoint, "card", card + "\nSummary: COCO 2014 photographs, 80 object kinds.\n")
    assert "COCO 2014 photographs, 80 object kinds." in cards.model_summary(model)
    shipped = cards.model_summary(type("Default", (), {
        "checkpoint": type("C", (), {"card": (app.EXAMPLES.parent / "model" / "model_card.md").read_text()}),
        "vocab": range(3)}))
    # The shipped card's own summary, one short line: what it learnt from, how often it is right on photos.
    assert "emoji" in shipped and "photo cut-outs" in shipped and "real photos it never saw" in shipped
    assert len(shipped.split()) <= 35, shipped          # a phone shows the examples below it


def test_a_very_long_image_gives_readable_tiles(page):
    strip = Image.new("RGB", (3000, 200), (200, 40, 40))
    result = run(page, strip)
    width, height = result["overlays"][0][0].size
    assert width == 320 and height >= 320 / 3 - 1


def test_live_mode_captions_each_frame_and_steps_through_the_words(page, model, coco_fixture):
    frame = str(sorted(coco_fixture[1].iterdir())[0])
    text, heat, note, live = page.live_caption(frame, None)
    assert text == model.caption(frame).text and heat is not None
    words = text.split()
    assert f"**{words[0]}**" in note and "0.0 frames per second" in note
    text, heat, note, live = page.live_caption(frame, live)
    assert f"**{words[1 % len(words)]}**" in note and len(live["times"]) == 2
    assert float(note.split(" frames per second")[0].split("· ")[-1]) > 0
    assert page.live_caption(None, live)[3] is live                              # no frame: nothing changes


def test_live_stream_has_its_own_slots_and_keeps_streaming(tiny_app):
    config = tiny_app.get_config_file()
    live = [d for d in config["dependencies"] if any(t[1] == "stream" for t in d["targets"])]
    # always_last made a real browser send one frame and stop (one request, then nothing).
    assert len(live) == 1 and live[0]["trigger_mode"] != "always_last" and live[0]["stream_every"] <= 0.2
    fn = tiny_app.fns[live[0]["id"]]
    assert fn.concurrency_id == "live" and fn.concurrency_limit == app.LIVE_STREAMS     # not the work slots


def test_every_result_event_lays_out_the_outputs_in_the_order_the_page_returns_them(tiny_app):
    # One definition (page.PageOutputs): app.py names each component, the events list them in its order.
    fns = {fn.name: fn for fn in tiny_app.fns.values()}
    slots = dict(zip(web_page.PageOutputs._fields, fns["show_caption"].outputs))
    assert {name: getattr(block, "elem_id", None) for name, block in slots.items()} == {
        "error": "error", "caption": "caption", "note": "note", "details": None, "confidence": "confidence",
        "selected": "selected", "overlays": "words", "table": "captions", "figure_file": "figure-file",
        "gif_file": "gif-file", "shown": None}
    for name in ("compare", "show_caption_from_url"):
        assert fns[name].outputs == fns["show_caption"].outputs, name
    assert fns["show_sample"].outputs == list(web_page.PageOutputs(**slots).sample_outputs())
    assert fns["downloads"].outputs == [slots["figure_file"], slots["gif_file"]]
