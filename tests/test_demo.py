"""The functions behind the web page, called directly."""
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from captioner import Captioner, demo
from captioner.images import InputError


@pytest.fixture(scope="module")
def model(trained_checkpoint):
    return Captioner.load(trained_checkpoint[0])


@pytest.fixture(scope="module")
def picture(coco_fixture):
    return Image.open(sorted(coco_fixture[1].iterdir())[0])


def test_controls_follow_the_strategy():
    assert demo.visibility("greedy") == dict.fromkeys(["temperature", "top_k", "num_samples", "seed", "beam_size"], False)
    assert demo.visibility("sample")["temperature"] and not demo.visibility("sample")["beam_size"]
    assert demo.visibility("beam")["beam_size"] and not demo.visibility("beam")["seed"]


def test_greedy_result_has_everything_the_page_shows(model, picture):
    result = demo.caption_image(model, picture)
    assert result.caption == model.caption(picture).text
    assert [label.split(" (")[0] for _, label in result.overlays] == result.details["words"]
    assert len(result.overlays) == len(result.confidence) == len(result.details["probs"])
    assert max(result.overlays[0][0].size) == 320 and max(demo.word_view(result.best, 0).size) == 640
    assert demo.word_view(result.best, len(result.caption.split())) is None
    assert result.samples == [] and result.seed_note == ""


def test_downloads_are_a_png_grid_and_a_gif_of_every_word(model, picture):
    result = demo.caption_image(model, picture)
    figure, gif = demo.downloads(result.best)
    assert Image.open(figure).format == "PNG"
    assert Image.open(gif).n_frames == len(result.details["words"])
    assert demo.downloads(None) == (None, None)


def test_sampling_shows_and_repeats_its_seed(model, picture):
    first = demo.caption_image(model, picture, "sample", temperature=1.5, seed=None)
    seed = first.details["seed"]
    assert str(seed) in first.seed_note
    again = demo.caption_image(model, picture, "sample", temperature=1.5, seed=seed)
    assert again.caption == first.caption


def test_several_samples_come_sorted_with_log_probabilities(model, picture):
    result = demo.caption_image(model, picture, "sample", temperature=2.0, seed=4, num_samples=5)
    log_probs = [lp for _, lp in result.samples]
    assert len(result.samples) == 5 and log_probs == sorted(log_probs, reverse=True)
    assert result.caption == result.samples[0][0]
    assert [s["caption"] for s in result.details["samples"]] == [c for c, _ in result.samples]


def test_strategies_reach_the_model_and_other_options_are_ignored(model, picture):
    beam = demo.decode(model, picture, "beam", beam_size=4, temperature=0.3, num_samples=7)
    assert len(beam) == 1 and beam[0].strategy == "beam" and beam[0].seed is None
    assert beam[0].text == model.caption(picture, "beam", beam_size=4).text
    greedy = demo.decode(model, picture, "greedy", seed=5, num_samples=3)
    assert len(greedy) == 1 and greedy[0].seed is None
    short = demo.decode(model, picture, max_length=2)[0]
    assert len(short.words) <= 2


def test_empty_boxes_from_the_browser_mean_unset(model, picture):
    seeded = demo.decode(model, picture, "sample", seed=12.0, max_length="")[0]
    assert seeded.seed == 12
    assert demo.decode(model, picture, "sample", seed="", max_length=0)[0].seed is not None
    assert demo.decode(model, picture, "sample", seed=float("nan"))[0].seed is not None


def test_api_outputs_are_the_caption_then_its_json(model, picture):
    text, details = demo.api_outputs(demo.decode(model, picture, "sample", seed=3, num_samples=3))
    assert text == details["caption"] == details["samples"][0]["caption"]
    assert {"words", "probs", "strategy", "seed", "log_prob"} <= set(details) and details["seed"] == 3
    assert "samples" not in demo.api_outputs(demo.decode(model, picture))[1]


def test_bad_inputs_become_clear_messages(model):
    with pytest.raises(InputError, match="upload an image"):
        demo.caption_image(model, None)
    with pytest.raises(InputError, match="Beam size"):
        demo.caption_image(model, np.zeros((8, 8, 3), np.uint8), "beam", beam_size=99)
    with pytest.raises(InputError, match="not allowed"):
        demo.caption_url(model, "http://127.0.0.1:7860/secret.png")
    with pytest.raises(InputError, match="enter an image URL"):
        demo.caption_url(model, "  ")
    with pytest.raises(InputError, match="Only http and https"):
        demo.decode_url(model, "file:///etc/passwd")
    with pytest.raises(InputError, match="number of samples"):
        demo.decode(model, np.zeros((8, 8, 3), np.uint8), "sample", num_samples=11)
    with pytest.raises(InputError, match="Temperature"):
        demo.decode(model, np.zeros((8, 8, 3), np.uint8), "sample", temperature=9)


def test_app_wraps_errors_for_the_user():
    @app.user_errors
    def bad_input():
        raise InputError("The file is empty")

    @app.user_errors
    def bug():
        raise KeyError("internal detail")
    with pytest.raises(gr.Error, match="The file is empty"):
        bad_input()
    with pytest.raises(gr.Error) as caught:
        bug()
    assert "internal detail" not in str(caught.value) and "Something went wrong" in str(caught.value)


def test_model_panel_is_honest_and_reads_the_card(model):
    panel = demo.model_panel(model)
    assert "not on photographs" in panel and "--checkpoint" in panel and "CAPTIONER_CHECKPOINT" in panel
    title = model.checkpoint.card.strip().splitlines()[0]
    assert title.lstrip("# ") in panel and f"\n{title}\n" not in panel    # the card, its headings demoted
    assert f"{len(model.vocab)} words" in panel


def test_examples_folder(tmp_path):
    assert demo.example_images(tmp_path / "missing") == []
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("x")
    assert [Path(p).name for p in demo.example_images(tmp_path)] == ["b.png"]


def test_app_refuses_to_start_with_a_corrupt_checkpoint(trained_checkpoint, tmp_path, capsys):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(trained_checkpoint[0], bad)
    (bad / "vocab.json").write_text("{")
    assert app.main(["--checkpoint", str(bad)]) == 2
    assert "vocab.json" in capsys.readouterr().err
