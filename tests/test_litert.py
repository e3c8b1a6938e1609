"""The encoder on LiteRT (inference) against the encoder on TensorFlow (training, feature cache)."""
import numpy as np
import pytest

from captioner import Captioner, litert
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


def test_turned_off_by_the_variable(monkeypatch):
    monkeypatch.setenv("CAPTIONER_LITERT", "0")
    assert not litert.available()
