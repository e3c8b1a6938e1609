"""`python -m captioner bench`: every speed figure in one run, beside the seed tutorial's way.

The seed's way is an eager Python loop that calls the decoder once per word and an eager train
step; ours compiles the whole caption loop and the train step with `tf.function`.
"""
from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .decoding import END, START
from .train import make_steps


def _timed(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _ms(times) -> float:
    return round(1000 * statistics.median(times), 2)


def eager_greedy(model, features, max_length: int) -> list[int]:
    """The tutorial's `evaluate`: one eager decoder call per word, argmax in Python."""
    projected, keys, hidden = model.encode(features)
    token, words = tf.constant([START]), []
    for _ in range(max_length):
        logits, hidden, _ = model.step(token, hidden, projected, keys)
        predicted = int(tf.argmax(logits[0]))
        if predicted == END:
            break
        words.append(predicted)
        token = tf.constant([predicted])
    return words


def bench_decoding(captioner, images: list, repeats: int) -> dict:
    """Decode time per caption, averaged over `images`: caption lengths differ per image, and beam
    search's share of the time depends on how much longer than greedy's its caption comes out."""
    searches, steps = captioner.searches, tf.constant(captioner.config.max_length)
    model = captioner.checkpoint.model
    runs = {"greedy": lambda f: searches.greedy(f, steps),
            "sample": lambda f: searches.sample(f, steps, tf.constant(1.0), tf.constant(0), tf.constant([0, 0])),
            "beam3": lambda f: searches.beam(f, steps, tf.constant(3), tf.constant(0.7)),
            "eager_greedy": lambda f: eager_greedy(model, f, captioner.config.max_length)}
    if captioner.greedy_on_litert is not None:   # the path one image's greedy caption takes
        runs["greedy_litert"] = lambda f: captioner.greedy_on_litert(f, steps)
    ms = {name: 0.0 for name in runs}
    for image in images:
        features = captioner.features([captioner.caption(image).image])
        for name, run in runs.items():
            times = _timed(lambda: run(features), repeats if name != "eager_greedy" else max(repeats // 4, 3))
            ms[name] += _ms(times) / len(images)
    figures = {f"{name}_ms": round(value, 2) for name, value in ms.items()}
    return figures | {"decode_images": len(images),
                      "greedy_speedup": round(ms["eager_greedy"] / ms["greedy"], 2),
                      "beam3_over_greedy": round(ms["beam3"] / ms["greedy"], 2)}


def bench_end_to_end(captioner, image_path, repeats: int) -> dict:
    latencies = _timed(lambda: captioner.caption(image_path), repeats)
    batch = [image_path] * 16
    batch_times = _timed(lambda: captioner.caption_batch(batch), max(repeats // 5, 3))
    return {"end_to_end_p50_ms": _ms(latencies),
            "end_to_end_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 2),
            "batch16_images_per_s": round(16 / statistics.median(batch_times), 1)}


def bench_image_decoding(image_path, repeats: int) -> dict:
    """What decoding a visitor's file in a budgeted worker process (captioner/sandbox.py) costs
    beside decoding it in the server's own process."""
    from .images import load_image
    from .sandbox import POOL, load_untrusted_image
    POOL.warm_up()
    here = _ms(_timed(lambda: load_image(image_path), repeats))
    worker = _ms(_timed(lambda: load_untrusted_image(image_path), repeats))
    return {"decode_in_process_ms": here, "decode_in_worker_ms": worker,
            "decode_worker_overhead_ms": round(worker - here, 2)}


def bench_encoder(captioner, image_path, repeats: int) -> dict:
    from .data import image_dataset
    encoder = captioner.encoder
    one = tf.stack([encoder.resize(np.asarray(captioner.caption(image_path).image))])
    per_image = _timed(lambda: encoder.features(one).numpy(), repeats)
    fast = {}
    if encoder.litert is not None:     # the path inference takes (captioner/litert.py)
        batch = one.numpy()
        fast = {"encoder_litert_ms_per_image": _ms(_timed(lambda: encoder.litert(batch), repeats))}
        fast["litert_speedup"] = round(_ms(per_image) / fast["encoder_litert_ms_per_image"], 2)
    paths = [str(image_path)] * 256
    for batch in image_dataset(paths[:32], encoder, 32):   # the pipeline's own start-up is not throughput
        encoder.batch_features(batch).numpy()
    start = time.perf_counter()
    for batch in image_dataset(paths, encoder, 32):        # as data.extract_features: LiteRT where enabled
        encoder.batch_features(batch).numpy()
    return {"encoder": f"{encoder.name} at {encoder.input_size}x{encoder.input_size} px, "
                       f"{encoder.grid_size}x{encoder.grid_size} grid",
            "encoder_ms_per_image": _ms(per_image), **fast,
            "feature_extraction_images_per_s": round(len(paths) / (time.perf_counter() - start), 1)}


def bench_training(captioner, batch_size: int = 64, repeats: int = 10) -> dict:
    config = captioner.config
    model = captioner.checkpoint.model
    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=(batch_size, config.grid_size ** 2, config.feature_dim)), tf.float32)
    tokens = tf.constant(rng.integers(4, config.vocab_size, size=(batch_size, 16)), tf.int32)
    batch = ((features, tokens[:, :-1]), tokens[:, 1:])
    weights = model.get_weights()   # the benchmark must leave the served model as it was
    optimizer = keras.optimizers.Adam(1e-4)
    compiled, _ = make_steps(model, optimizer, 1.0, 5.0)
    eager = compiled.python_function
    compiled_times = _timed(lambda: compiled(*batch), repeats)
    eager_times = _timed(lambda: eager(*batch), max(repeats // 2, 3), warmup=1)
    model.set_weights(weights)
    step = statistics.median(compiled_times)
    return {"train_step_ms": round(1000 * step, 1), "eager_train_step_ms": _ms(eager_times),
            "train_captions_per_s": round(batch_size / step, 1),
            "train_speedup": round(statistics.median(eager_times) / step, 2), "train_batch_size": batch_size}


def run_benchmarks(captioner, image_path, repeats: int = 30, decode_images: list | None = None,
                   sections=()) -> dict:
    """Every figure; decoding is timed over `decode_images` (default: just `image_path`).
    `sections`: more figures, each `section(captioner, image_path) -> dict`, measured after the end
    to end ones (the web page's live camera: captioner.web.bench, as `make bench` runs it)."""
    figures = {"machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
               "tensorflow": tf.__version__, "date": time.strftime("%Y-%m-%d"), "image": str(image_path)}
    figures |= bench_image_decoding(image_path, repeats)
    figures |= bench_encoder(captioner, image_path, repeats)
    figures |= bench_decoding(captioner, decode_images or [image_path], repeats)
    figures |= bench_end_to_end(captioner, image_path, repeats)
    if (encoder_ms := figures.get("encoder_litert_ms_per_image")) is not None:
        figures["end_to_end_over_encoder"] = round(figures["end_to_end_p50_ms"] / encoder_ms, 2)
        plain = type(captioner)(captioner.checkpoint, use_litert=False)
        figures["end_to_end_tensorflow_p50_ms"] = _ms(_timed(lambda: plain.caption(image_path), repeats))
    if (photo := example_photo()) is not None:   # a photograph of a person: the person detectors run too
        figures["end_to_end_photo_p50_ms"] = _ms(_timed(lambda: captioner.caption(photo), repeats))
        figures["end_to_end_photo"] = photo.name
    for section in sections:
        figures |= section(captioner, image_path)
    figures |= bench_training(captioner)
    return figures


def example_photo() -> Path | None:
    """The example photograph with a person in it, where the app ships it."""
    from .assets import EXAMPLES
    path = EXAMPLES / "photo_3_astronaut.jpg"
    return path if path.is_file() else None


def example_scenes() -> list[Path]:
    """The app's example scenes (the default model's own world), else every example picture."""
    from .assets import EXAMPLES, example_images
    examples = [p for p in example_images() if p.name.startswith("scene_")] or example_images()
    if not examples:
        raise FileNotFoundError(f"no example images in {EXAMPLES.name}; pass --image")
    return examples


ROWS = [("decode_in_process_ms", "Image file decoded in the server's own process (as before the worker)", "ms"),
        ("decode_in_worker_ms", "Image file decoded in a budgeted worker process (captioner/sandbox.py, as served)", "ms"),
        ("decode_worker_overhead_ms", "What the worker adds per image", "ms"),
        ("encoder_ms_per_image", "Encoder on TensorFlow, one image", "ms"),
        ("encoder_litert_ms_per_image", "Encoder on LiteRT with XNNPACK (inference, feature cache), one image", "ms"),
        ("litert_speedup", "Encoder speed-up (TensorFlow / LiteRT)", "x"),
        ("feature_extraction_images_per_s", "Feature extraction through tf.data, batches of 32 (LiteRT where installed)", "images/s"),
        ("decode_images", "Decoding timed over this many example scenes (per-caption mean)", "images"),
        ("greedy_ms", "Greedy decode, one caption (compiled loop)", "ms"),
        ("greedy_litert_ms", "Greedy decode, one caption, on LiteRT (inference, one image)", "ms"),
        ("eager_greedy_ms", "Greedy decode, the seed's eager per-word loop", "ms"),
        ("greedy_speedup", "Greedy speed-up (eager / compiled)", "x"),
        ("sample_ms", "Sampling decode, one caption", "ms"),
        ("beam3_ms", "Beam search (3 beams as one batch), one caption", "ms"),
        ("beam3_over_greedy", "Beam-3 / greedy decode time", "x"),
        ("end_to_end_p50_ms", "End to end, one image file: decode (in the worker), encode (LiteRT where "
                              "installed), caption, attention maps (p50)", "ms"),
        ("end_to_end_p95_ms", "End to end (p95)", "ms"),
        ("end_to_end_over_encoder", "End to end p50 / LiteRT encoder time", "x"),
        ("end_to_end_tensorflow_p50_ms", "End to end on TensorFlow alone (LiteRT not installed) (p50)", "ms"),
        ("end_to_end_photo_p50_ms", "End to end, a photograph of a person (the person detectors run too) (p50)", "ms"),
        ("batch16_images_per_s", "Batch of 16 images, greedy", "images/s"),
        ("live_fps", "Live camera mode: 640x480 frames captioned back to back", "frames/s"),
        ("browser_live_fps", "Live camera mode in Chromium (fake camera, 320x240, the page's own count)", "frames/s"),
        ("browser_live_captions", "Distinct live captions the page showed in 10 s (10 pictures in turn)", "captions"),
        ("train_step_ms", "Train step, batch 64 (compiled)", "ms"),
        ("eager_train_step_ms", "Train step, batch 64 (the seed's eager step)", "ms"),
        ("train_speedup", "Train speed-up (eager / compiled)", "x"),
        ("train_captions_per_s", "Training throughput", "captions/s")]


def markdown_table(figures: dict) -> str:
    lines = [f"Measured {figures['date']} on {figures['machine']} (TensorFlow {figures['tensorflow']}) with "
             f"`make bench` (`python -m captioner.web.bench --json`), on the shipped default model "
             f"(encoder: {figures.get('encoder', '?')}).", "",
             "| Figure | Value | Unit |", "|---|---|---|"]
    lines += [f"| {label} | {figures[key]} | {unit} |" for key, label, unit in ROWS if key in figures]
    return "\n".join(lines) + "\n"
