"""Training end to end on a COCO-format fixture the test draws: features, vocab, loss, checkpoint, API."""
import json
import subprocess
import sys

import numpy as np
import pytest

from captioner import Captioner
from captioner.checkpoint import load_checkpoint
from captioner.data import load_captions, split_by_image


def test_loss_falls_and_every_artefact_is_written(trained_checkpoint):
    out, history = trained_checkpoint
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert all(v is not None for v in history["val_loss"])
    for name in ("config.json", "vocab.json", "model.weights.h5", "model_card.md", "train_state.json",
                 "optimizer.npz", "loss_curve.png"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 12 and config["model"]["encoder"] == "efficientnet_lite0"
    assert list(out.parent.glob("ckpt_logs/events.out.tfevents.*"))


def test_split_is_by_image_not_by_caption(coco_fixture):
    captions = load_captions(*coco_fixture)
    train, val = split_by_image(len(captions.files), 0.25, seed=0)
    assert len(val) == 3 and not set(train) & set(val) and len(train) + len(val) == 12


def test_captions_per_image_draws_a_few_of_each_image_with_the_seed(tmp_path):
    annotations = [{"image_id": i, "caption": f"image {i} phrasing {k}"} for i in (1, 2, 3) for k in range(5)]
    annotations.append({"image_id": 4, "caption": "the only caption of image 4"})
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"images": [{"id": i, "file_name": f"{i}.jpg"} for i in (1, 2, 3, 4)],
                                "annotations": annotations}))
    every = load_captions(path)
    drawn = load_captions(path, per_image=2, seed=0)
    assert drawn.files == every.files   # every image stays
    kept = [c for _, c in drawn.pairs]
    assert [c for _, c in every.pairs if c in kept] == kept   # a subset, in the file's order
    per_image = {i: sum(row == i for row, _ in drawn.pairs) for i in range(4)}
    assert per_image == {0: 2, 1: 2, 2: 2, 3: 1}
    assert all(c.startswith(f"image {drawn.image_ids[row]} ") or row == 3 for row, c in drawn.pairs)
    assert load_captions(path, per_image=2, seed=0).pairs == drawn.pairs
    assert any(load_captions(path, per_image=2, seed=s).pairs != drawn.pairs for s in range(1, 6))
    assert load_captions(path, per_image=0).pairs == every.pairs == load_captions(path, per_image=5).pairs


def test_api_captions_paths_pil_and_arrays_alike(trained_checkpoint, coco_fixture):
    from PIL import Image
    model = Captioner.load(trained_checkpoint[0])
    path = sorted(coco_fixture[1].iterdir())[0]
    by_path = model.caption(path)
    by_pil = model.caption(Image.open(path))
    by_array = model.caption(np.asarray(Image.open(path)))
    assert by_path.text == by_pil.text == by_array.text
    assert by_path.attention.shape == (len(by_path.words), 7, 7) and len(by_path.probs) == len(by_path.words)
    np.testing.assert_allclose(by_path.attention.sum(axis=(1, 2)), 1.0, atol=1e-4)
    batch = model.caption_batch([path, path], strategy="greedy")
    assert [c.text for c in batch] == [by_path.text] * 2


def test_checkpoint_round_trip_gives_identical_greedy_captions(trained_checkpoint, coco_fixture, tmp_path):
    from captioner.checkpoint import save_checkpoint
    first = Captioner.load(trained_checkpoint[0])
    loaded = load_checkpoint(trained_checkpoint[0])
    copy = save_checkpoint(tmp_path / "copy", loaded.model, loaded.vocab, loaded.config, loaded.card)
    second = Captioner.load(copy)
    for path in sorted(coco_fixture[1].iterdir())[:4]:
        a, b = first.caption(path), second.caption(path)
        assert a.text == b.text
        np.testing.assert_allclose(a.probs, b.probs, rtol=1e-5)


def test_seeded_sampling_repeats(trained_checkpoint, coco_fixture):
    model = Captioner.load(trained_checkpoint[0])
    path = sorted(coco_fixture[1].iterdir())[1]
    runs = [[c.text for c in model.captions(path, strategy="sample", num_samples=4, temperature=2.0, seed=3)] for _ in range(2)]
    assert runs[0] == runs[1]
    assert model.caption(path, strategy="sample", seed=9).text == model.caption(path, strategy="sample", seed=9).text
    assert model.caption(path, strategy="beam", beam_size=1).text == model.caption(path).text


def test_resume_continues_from_the_saved_epoch(trained_checkpoint, coco_fixture, tmp_path):
    import shutil
    from captioner.config import CheckpointConfig
    from captioner.train import train
    out = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint[0], out)
    saved = CheckpointConfig.from_dict(json.loads((out / "config.json").read_text()))
    train_config = saved.train
    train_config.out, train_config.epochs = str(out), 13
    history = train(train_config, saved.model, trained_checkpoint[0].parent / "cache", progress=False,
                    resume=True)
    assert len(history["loss"]) == 13 and history["loss"][:12] == trained_checkpoint[1]["loss"]
    assert json.loads((out / "train_state.json").read_text())["epoch"] == 13


def test_cli_caption_json_lines(trained_checkpoint, coco_fixture):
    paths = [str(p) for p in sorted(coco_fixture[1].iterdir())[:2]]
    result = subprocess.run([sys.executable, "-m", "captioner", "caption", *paths, "--json",
                             "--checkpoint", str(trained_checkpoint[0])], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == paths
    assert all(set(line) >= {"caption", "words", "probs"} and len(line["words"]) == len(line["probs"])
               for line in lines)
    assert "cuInit" not in result.stderr and "absl" not in result.stderr    # TensorFlow's C++ start-up log
    assert "XNNPACK delegate" not in result.stderr                         # and LiteRT's


def test_tensorflows_start_up_log_is_shown_when_asked_for(trained_checkpoint, coco_fixture):
    import os
    path = str(sorted(coco_fixture[1].iterdir())[0])
    result = subprocess.run([sys.executable, "-m", "captioner", "caption", path, "--checkpoint", str(trained_checkpoint[0])],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "CAPTIONER_TF_LOGS": "1"})
    assert result.returncode == 0 and "absl" in result.stderr


def test_cli_refuses_a_corrupt_checkpoint_naming_the_file(trained_checkpoint, coco_fixture, tmp_path):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(trained_checkpoint[0], bad)
    (bad / "model.weights.h5").write_bytes(b"\0" * 100)
    image = str(sorted(coco_fixture[1].iterdir())[0])
    result = subprocess.run([sys.executable, "-m", "captioner", "caption", image, "--checkpoint", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "model.weights.h5" in result.stderr and "Traceback" not in result.stderr


def test_training_features_equal_the_features_at_use(trained_checkpoint, coco_fixture):
    """The cache (tf.data decoding) and the API (Pillow decoding) must see the same pixels."""
    from captioner.data import load_feature_cache
    model = Captioner.load(trained_checkpoint[0])
    index, cached = load_feature_cache(trained_checkpoint[0].parent / "cache" / "efficientnet_lite0")
    for path in sorted(coco_fixture[1].iterdir())[:3]:
        at_use = model.features([model.caption(path).image]).numpy()[0]
        np.testing.assert_allclose(at_use, np.asarray(cached[index[path.name]], np.float32), rtol=1e-2, atol=2e-3)


def test_twenty_images_of_different_caption_lengths_trace_once(trained_checkpoint, coco_fixture):
    model = Captioner.load(trained_checkpoint[0])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (int(rng.integers(20, 300)), int(rng.integers(20, 300)), 3), dtype=np.uint8)
              for _ in range(16)] + [str(p) for p in sorted(coco_fixture[1].iterdir())[:4]]
    model.caption(images[0])
    model.caption(images[0], strategy="beam")
    traces = (model.searches.tracing_count(), model.encoder.features.experimental_get_tracing_count())
    # Length limits from 1 to 8 in turn: short limits cut captions, long ones let the model stop itself.
    lengths = {len(model.caption(image, max_length=1 + i % 8).words) for i, image in enumerate(images)}
    lengths |= {len(model.caption(image, strategy="beam", beam_size=int(rng.integers(1, 5))).words) for image in images[:6]}
    assert len(lengths) > 1                                  # the captions really differ in length
    assert (model.searches.tracing_count(), model.encoder.features.experimental_get_tracing_count()) == traces


def test_a_model_trained_at_another_image_size_keeps_it(coco_fixture, tmp_path):
    from captioner.config import ModelConfig, TrainConfig
    from captioner.train import train
    captions, images = coco_fixture
    out = tmp_path / "ckpt"
    config = TrainConfig(captions=str(captions), images=str(images), out=str(out), epochs=1,
                         batch_size=8, val_fraction=0.2)
    train(config, ModelConfig(embedding_dim=16, units=16, image_size=256), tmp_path / "cache", progress=False)
    assert (tmp_path / "cache" / "efficientnet_lite0_256px").is_dir()
    captioner = Captioner.load(out)
    assert (captioner.config.image_size, captioner.config.grid_size, captioner.encoder.input_size) == (256, 8, 256)
    caption = captioner.caption(sorted(images.iterdir())[0])
    assert caption.attention.shape[1:] == (8, 8)
