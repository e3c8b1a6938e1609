"""The encoder and the greedy loop on LiteRT (inference, feature cache) against TensorFlow's."""
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

import pytest

from captioner import Captioner, litert
from captioner.checkpoint import WEIGHTS
from captioner.assets import EXAMPLES

pytestmark = pytest.mark.skipif(not litert.available(), reason="ai-edge-litert is not installed "
                                "(requirements.txt installs it) or CAPTIONER_LITERT=0")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import os
    os.environ["CAPTIONER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    fast, plain = Captioner.load(), Captioner.load(use_litert=False)
    assert fast.encoder.litert is not None and plain.encoder.litert is None
    return fast, plain


def test_litert_features_equal_tensorflows(models):
    # XNNPACK and TensorFlow sum in other orders: raw features differ by up to ~3e-5 on values up
    # to ~6 (float32 rounding over ~1000-term sums). Both are then rounded through float16, as the
    # training cache is: they agree to that raw difference plus one float16 step of the value.
    fast, plain = models
    images = [np.asarray(fast.caption(p).image) for p in sorted(EXAMPLES.glob("*.jpg"))]
    a, b = fast.features(images).numpy(), plain.features(images).numpy()
    step = np.spacing(np.abs(b).astype(np.float16)).astype(np.float32)
    print(f"max |LiteRT - TF| {np.abs(a - b).max():.2e}; identical after float16 rounding: {np.mean(a == b):.4f}")
    assert np.all(np.abs(a - b) <= step + 1e-4)
    assert np.mean(a == b) > 0.99


def test_the_same_captions_on_the_examples(models):
    fast, plain = models
    for path in sorted(EXAMPLES.glob("*.jpg")):
        for options in ({}, {"strategy": "beam", "beam_size": 3}, {"strategy": "sample", "seed": 3}):
            assert fast.caption(path, **options).text == plain.caption(path, **options).text, (path.name, options)


def test_the_conversion_is_cached(models):
    fast, _ = models
    path = fast.encoder.litert.path
    before = path.stat().st_mtime_ns
    assert Captioner.load().encoder.litert.path == path and path.stat().st_mtime_ns == before
    greedy = fast.greedy_on_litert.path
    before = greedy.stat().st_mtime_ns
    assert Captioner.load().greedy_on_litert.path == greedy and greedy.stat().st_mtime_ns == before


def test_old_conversions_are_pruned_and_other_kinds_kept(tmp_path, monkeypatch):
    import os
    monkeypatch.setenv("CAPTIONER_CACHE", str(tmp_path))
    folder = litert.cache_folder()
    folder.mkdir(parents=True)
    old = [folder / f"greedy_{i:016x}.tflite" for i in range(litert.KEEP_PER_KIND + 2)]
    encoder = folder / f"efficientnet_lite0_256px_{0:016x}.tflite"
    for age, path in enumerate([encoder, *old]):
        path.write_bytes(b"x")
        os.utime(path, ns=(10**18 + age * 10**9,) * 2)   # the later in the list, the newer
    new = litert._cached("greedy", "a new model", lambda: b"flatbuffer", lambda path: path)
    assert new.read_bytes() == b"flatbuffer"
    kept = sorted(p.name for p in folder.glob("greedy_*.tflite"))
    assert kept == sorted([new.name] + [p.name for p in old[-(litert.KEEP_PER_KIND - 1):]])
    assert encoder.is_file()
    # Loading what is cached converts and prunes nothing.
    assert litert._cached("greedy", "a new model", lambda: pytest.fail("converted again"), lambda p: p) == new
    assert sorted(p.name for p in folder.glob("greedy_*.tflite")) == kept


def test_a_changed_decoder_source_is_converted_again(models, monkeypatch):
    """The greedy flatbuffer is traced from model.py and decoding.py too: the same weights with a
    changed step must not reuse the file traced from the old code."""
    fast, _ = models
    digest = litert._file_digest
    monkeypatch.setattr(litert, "_file_digest", lambda path: "changed" if path.name == "model.py" else digest(path))
    assert litert.litert_greedy(fast.checkpoint.model, fast.checkpoint.path / WEIGHTS).path \
        != fast.greedy_on_litert.path


def test_the_greedy_graphs_key_covers_every_module_its_step_imports(tmp_path):
    # Before: the key read model.py, decoding.py, litert.py and config.py only; the repeat ban's
    # REPEAT_WORDS lives in vocab.py, so changing it kept serving the old greedy graph.
    package = tmp_path / "captioner"
    shutil.copytree(Path(litert.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    sources = litert.graph_sources(package)
    names = {path.relative_to(package).as_posix() for path in sources}
    assert {"model.py", "decoding.py", "litert.py", "config.py", "vocab.py"} <= names
    assert not names & {"web/page.py", "web/serving.py", "api.py", "train.py"}  # not under the step
    key = [litert._file_digest(path) for path in sources]
    vocab = package / "vocab.py"
    vocab.write_text(vocab.read_text().replace("REPEAT_WORDS = 4", "REPEAT_WORDS = 5"))
    changed = [litert._file_digest(path) for path in litert.graph_sources(package)]
    assert changed != key
    (package / "web" / "page.py").write_text("# a page change\n" + (package / "web" / "page.py").read_text())
    assert [litert._file_digest(path) for path in litert.graph_sources(package)] == changed


def test_turned_off_by_the_variable(monkeypatch):
    monkeypatch.setenv("CAPTIONER_LITERT", "0")
    assert not litert.available()


def test_greedy_on_litert_matches_tensorflows_loop(models):
    # The same loop (decoding.greedy_search) with frozen weights: the words must be the same; word
    # probabilities and attention differ only by float32 sums taken in another order (~1e-5 here).
    fast, _ = models
    assert fast.greedy_on_litert is not None
    for path in sorted(EXAMPLES.glob("*.jpg")):
        features = fast.features([fast.caption(path).image])
        ids, probs, attention, log_prob = fast.greedy_on_litert(features, 24)
        ref = [x.numpy() for x in fast.searches.greedy(features, tf.constant(24))]
        assert ids.tolist() == ref[0].tolist(), path.name
        assert np.abs(probs - ref[1]).max() < 1e-3 and np.abs(attention - ref[2]).max() < 1e-3
        assert abs(float(log_prob[0] - ref[3][0])) < 1e-3
        short = fast.greedy_on_litert(features, 2)[0]        # the length limit holds, <end> or not
        assert short.tolist() == ref[0][:, :2].tolist()


def test_a_failed_greedy_conversion_falls_back_to_tensorflow(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CAPTIONER_CACHE", str(tmp_path))
    monkeypatch.setattr(litert, "convert_greedy", lambda model: (_ for _ in ()).throw(RuntimeError("no")))
    model = Captioner.load()
    assert model.greedy_on_litert is None and "LiteRT greedy unavailable" in caplog.text
    path = sorted(EXAMPLES.glob("*.jpg"))[0]
    assert model.caption(path).text == Captioner.load(use_litert=False).caption(path).text


def test_the_feature_cache_is_made_on_litert_with_the_apps_numbers(models, tmp_path):
    """Training caches features from the encoder's LiteRT twin where it has one (~2x faster than
    TensorFlow's batches on a CPU): the cache then holds exactly what the app computes at use."""
    from captioner import data
    from captioner.encoders import build_encoder
    fast, _ = models
    encoder = build_encoder(fast.config.encoder, "default", fast.config.image_size, litert=True)
    assert encoder.litert is not None
    encoder.features = lambda batch: pytest.fail("the cache was made on TensorFlow")
    assert build_encoder("efficientnet_lite0", None, litert=True).litert is None   # random weights: never cached
    files = sorted(p.name for p in EXAMPLES.glob("*.jpg"))[:3]
    index, cached = data.load_feature_cache(data.extract_features(encoder, EXAMPLES, files, tmp_path, progress=False))
    at_use = fast.features([np.asarray(fast.caption(EXAMPLES / f).image) for f in files]).numpy()
    stored = np.asarray(cached[[index[f] for f in files]], np.float32)
    np.testing.assert_allclose(stored, at_use, rtol=1e-2, atol=2e-3)
    assert np.mean(stored == at_use) > 0.99   # the same engine: equal, not merely close


def test_an_extended_feature_cache_keeps_its_rows_and_adds_the_new(models, tmp_path):
    """The cache is written into its file as it is made (data.extract_features): extending it keeps
    every row it had, in place, and adds the new images' rows, equal to a cache made at once."""
    from captioner import data
    from captioner.encoders import build_encoder
    fast, _ = models
    encoder = build_encoder(fast.config.encoder, "default", fast.config.image_size, litert=True)
    files = sorted(p.name for p in EXAMPLES.glob("*.jpg"))[:3]
    index, first = data.load_feature_cache(data.extract_features(encoder, EXAMPLES, files[:2], tmp_path, progress=False))
    first = np.array(first)
    index, grown = data.load_feature_cache(data.extract_features(encoder, EXAMPLES, files, tmp_path, progress=False))
    assert grown.shape[0] == 3 and [index[f] for f in files] == [0, 1, 2]
    np.testing.assert_array_equal(grown[:2], first)
    _, at_once = data.load_feature_cache(data.extract_features(encoder, EXAMPLES, files, tmp_path / "once", progress=False))
    np.testing.assert_array_equal(grown, at_once)
    assert not list((tmp_path).rglob("*.tmp.*"))


def test_a_conversion_prints_nothing(trained_checkpoint, capfd):
    """A first `make demo` converts the encoder and the greedy loop: Keras lists hundreds of
    captured tensors on stdout and absl and the C++ converter write to stderr; none of it shows."""
    model = Captioner.load(trained_checkpoint[0], use_litert=False)
    capfd.readouterr()
    assert litert.convert_greedy(model.checkpoint.model) and litert.convert(model.encoder)
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == "", (printed.out[:300], printed.err[:300])


def test_features_at_use_are_rounded_as_the_cache_stores_them(models):
    """At use the LiteRT features are rounded through float16 in numpy (no TensorFlow op between
    the two LiteRT calls): the very numbers TensorFlow's casts give, as the feature cache holds."""
    from captioner.encoders import as_stored
    fast, _ = models
    images = [np.asarray(fast.caption(p).image) for p in sorted(EXAMPLES.glob("*.jpg"))[:3]]
    batch = np.stack([fast.encoder.resize(image).numpy() for image in images])
    np.testing.assert_array_equal(fast.features(images).numpy(), as_stored(fast.encoder.litert(batch)).numpy())


def test_a_serving_process_holds_numpys_blas_to_one_thread(models):
    """numpy's idle BLAS threads spin after each call on the cores the next LiteRT call needs
    (docs/benchmarks.md): warm_up holds numpy's BLAS to one thread for the whole process, seen
    from every thread (requests finish in many), and captions are what they were."""
    import threading
    import threadpoolctl
    fast, plain = models
    # numpy's own BLAS (numpy.libs in its wheel): a BLAS another package loads (scipy's) is not one
    # the caption's numpy work calls.
    blas = lambda: [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                    if pool["user_api"] == "blas" and "numpy" in pool["filepath"]]
    path = sorted(EXAMPLES.glob("*.jpg"))[0]
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):   # a known start, restored after
        if blas() != [2]:
            pytest.skip(f"numpy's BLAS here: {blas()} threads (not a 2-thread OpenBLAS in numpy's wheel)")
        before = fast.caption(path).text
        fast.warm_up()
        seen = []
        request = threading.Thread(target=lambda: seen.extend(blas()))
        request.start()
        request.join()
        assert blas() == [1] and seen == [1]
        assert fast.caption(path).text == before == plain.caption(path).text
