"""The functions behind the web page, called directly."""

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from captioner import Captioner, demo
from captioner.assets import example_images
from captioner.options import DecodingOptions

OPTION_DEFAULTS = [knob.default for knob in DecodingOptions.knobs()]


@pytest.fixture(scope="module")
def model(trained_checkpoint):
    return Captioner.load(trained_checkpoint[0])


@pytest.fixture(scope="module")
def picture(coco_fixture):
    return Image.open(sorted(coco_fixture[1].iterdir())[0])


OUTPUTS = ["caption", "details", "confidence", "overlays", "selected", "samples", "seed_note", "best"]


@pytest.fixture(scope="module")
def page(model):
    return demo.Page(model)


def run(page, image, **options) -> dict:
    """The Caption button's event with the page's option controls (DecodingOptions order)."""
    values = [options.get(name, knob.default) for name, knob in
              zip(demo.OPTION_NAMES, DecodingOptions.knobs())]
    return dict(zip(OUTPUTS, page.show_caption(image, *values)))


def api(page, image, **options):
    values = [options.get(name, knob.default) for name, knob in zip(demo.OPTION_NAMES, DecodingOptions.knobs())]
    return page.api_caption(image, *values)


def test_controls_follow_the_strategy():
    shown = lambda strategy: [u["visible"] for u in demo.Page.show_controls(strategy)]
    names = demo.OPTION_NAMES[1:]
    assert dict(zip(names, shown("greedy"))) == {n: n == "max_length" for n in names}
    assert dict(zip(names, shown("sample")))["temperature"] and not dict(zip(names, shown("sample")))["beam_size"]
    assert dict(zip(names, shown("beam")))["beam_size"] and not dict(zip(names, shown("beam")))["seed"]


def test_greedy_result_has_everything_the_page_shows(page, model, picture):
    result = run(page, picture)
    assert result["caption"] == model.caption(picture).text
    assert [label.split(" (")[0] for _, label in result["overlays"]] == result["details"]["words"]
    assert len(result["overlays"]) == len(result["confidence"]) == len(result["details"]["probs"])
    assert max(result["overlays"][0][0].size) == 320 and max(result["selected"].size) == 640
    assert demo.word_view(result["best"], len(result["caption"].split())) is None
    assert result["samples"]["value"] == [] and result["seed_note"] == ""


def test_downloads_are_a_png_grid_and_a_gif_of_every_word(page, picture):
    result = run(page, picture)
    figure, gif = page.downloads(result["best"])
    assert Image.open(figure).format == "PNG"
    assert Image.open(gif).n_frames == len(result["details"]["words"])
    assert page.downloads(None) == (None, None)


def test_sampling_shows_and_repeats_its_seed(page, picture):
    first = run(page, picture, strategy="sample", temperature=1.5, seed=None)
    seed = first["details"]["seed"]
    assert str(seed) in first["seed_note"]
    again = run(page, picture, strategy="sample", temperature=1.5, seed=seed)
    assert again["caption"] == first["caption"]


def test_several_samples_come_sorted_with_log_probabilities(page, picture):
    result = run(page, picture, strategy="sample", temperature=2.0, seed=4, num_samples=5)
    samples = result["samples"]["value"]
    log_probs = [lp for _, lp in samples]
    assert len(samples) == 5 and log_probs == sorted(log_probs, reverse=True)
    assert result["caption"] == samples[0][0]
    assert [s["caption"] for s in result["details"]["samples"]] == [c for c, _ in samples]


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
    (lambda page: run(page, None), "upload an image"),
    (lambda page: run(page, np.zeros((8, 8, 3), np.uint8), strategy="beam", beam_size=99), "Beam size"),
    (lambda page: page.show_caption_from_url("http://127.0.0.1:7860/secret.png", *OPTION_DEFAULTS), "not allowed"),
    (lambda page: page.show_caption_from_url("  ", *OPTION_DEFAULTS), "enter an image URL"),
    (lambda page: page.api_caption_url("file:///etc/passwd", *OPTION_DEFAULTS), "Only http and https"),
    (lambda page: run(page, np.zeros((8, 8, 3), np.uint8), strategy="sample", num_samples=11), "Number of samples"),
    (lambda page: run(page, np.zeros((8, 8, 3), np.uint8), strategy="sample", temperature=9), "Temperature"),
    (lambda page: run(page, np.zeros((8, 8, 3), np.uint8), strategy="sample", max_length=0), "Max caption length"),
])
def test_bad_inputs_become_clear_messages(page, call, message):
    with pytest.raises(gr.Error, match=message) as caught:
        call(page)
    assert "Something went wrong" not in str(caught.value)


def test_bugs_become_a_plain_apology():
    @demo.shown_to_users
    def bug():
        raise KeyError("internal detail")
    with pytest.raises(gr.Error) as caught:
        bug()
    assert "internal detail" not in str(caught.value) and "Something went wrong" in str(caught.value)


def test_model_panel_is_honest_reads_the_card_and_shows_no_server_path(model):
    panel = demo.model_panel(model)
    assert "not on photographs" in panel and "--checkpoint" not in panel
    assert str(model.checkpoint.path) not in panel and model.source in panel
    title = model.checkpoint.card.strip().splitlines()[0]
    assert title.lstrip("# ") in panel and f"\n{title}\n" not in panel    # the card, its headings demoted
    assert f"{len(model.vocab)} words" in panel


def test_examples_folder(tmp_path):
    assert example_images(tmp_path / "missing") == []
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo_a.png")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in example_images(tmp_path)] == ["b.png", "photo_a.png"]


def test_app_refuses_to_start_with_a_corrupt_checkpoint(trained_checkpoint, tmp_path, capsys):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(trained_checkpoint[0], bad)
    (bad / "vocab.json").write_text("{")
    assert app.main(["--checkpoint", str(bad)]) == 2
    assert "vocab.json" in capsys.readouterr().err
