"""Hostile and odd images: each is captioned-ready RGB or refused with an InputError, nothing else."""
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.images import InputError, load_image


def encoded(image, fmt="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def bomb_png(width=30000, height=30000) -> bytes:
    """A tiny PNG whose header claims a huge image (the pixels are one compressed zero run)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * ((width // 8 + 1) * 200))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize("mode", ["RGB", "L", "1", "P", "CMYK", "LA", "RGBA", "I;16", "I", "F"])
def test_every_mode_becomes_rgb_of_the_same_size(mode):
    image = Image.new("RGB", (37, 23), (200, 40, 10)).convert(mode) if mode not in ("I;16", "I", "F") \
        else Image.fromarray(np.linspace(0, {"I;16": 65535, "I": 70000, "F": 1.0}[mode], 37 * 23)
                             .reshape(23, 37).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    fmt = "TIFF" if mode in ("I", "F", "CMYK") else "PNG"
    loaded = load_image(encoded(image, fmt))
    assert loaded.mode == "RGB" and loaded.size == (37, 23)


def test_sixteen_bit_and_float_are_scaled_not_clipped():
    ramp = Image.fromarray(np.tile(np.linspace(0, 65535, 64), (4, 1)).astype(np.uint16))
    pixels = np.asarray(load_image(encoded(ramp)))[..., 0]
    assert pixels[0, 0] == 0 and pixels[0, -1] == 255 and 100 < pixels[0, 32] < 160
    floats = np.asarray(load_image(np.full((4, 4), 0.5, np.float32)))
    assert (floats == 128).all()


def test_transparency_is_composited_on_white():
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert np.asarray(load_image(encoded(clear))).min() == 255
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert np.asarray(load_image(encoded(palette, transparency=0))).min() == 255


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animations_give_their_first_frame(fmt):
    frames = [Image.new("RGB", (16, 16), c) for c in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    red, _, blue = np.asarray(load_image(data)).mean(axis=(0, 1))
    assert red > 200 and blue < 50


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6                                          # rotate 90 degrees clockwise to view
    assert load_image(encoded(image, "JPEG", exif=exif.tobytes())).size == (20, 40)


@pytest.mark.parametrize("size", [(1, 1), (10000, 10), (10, 10000)])
def test_extreme_shapes_are_accepted(size):
    assert load_image(encoded(Image.new("RGB", size, "white"))).size == size


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, I am text pretending to be a jpeg", "Not an image"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "Not an image"),
    (b"<html><body>no</body></html>", "Not an image"),
    (bomb_png(), "too large"),
])
def test_bad_bytes_are_refused_clearly(data, message):
    with pytest.raises(InputError, match=message):
        load_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"])
def test_truncated_files_are_refused_or_loaded(fmt):
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), fmt)
    for cut in (len(data) // 2, 20, 8):
        try:
            assert load_image(data[:cut]).mode == "RGB"
        except InputError as error:
            assert str(error)


def test_missing_file_and_odd_objects(tmp_path):
    with pytest.raises(InputError, match="No image file"):
        load_image(tmp_path / "missing.png")
    named = tmp_path / "photo.jpg"
    named.write_text("not a picture")
    with pytest.raises(InputError, match="Not an image"):
        load_image(named)
    with pytest.raises(InputError):
        load_image(12345)


@pytest.mark.parametrize("array", [
    np.zeros((4, 4), bool), np.zeros((4, 4, 1), np.uint8), np.zeros((4, 4, 3), np.uint16),
    np.ones((4, 4, 4), np.float64), np.full((4, 4, 3), 300, np.int32),
])
def test_arrays_of_each_kind(array):
    assert load_image(array).size == (4, 4)


@pytest.mark.parametrize("array", [np.zeros((4, 4, 2)), np.zeros((0, 4, 3)), np.zeros((2, 2, 2, 3)),
                                   np.array([["a"]])])
def test_bad_arrays_are_refused(array):
    with pytest.raises(InputError):
        load_image(array)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise_anything_but_input_error(data):
    try:
        load_image(data)
    except InputError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.sampled_from(["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16", "I", "F"]),
       width=st.integers(1, 64), height=st.integers(1, 64),
       fmt=st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"]), seed=st.integers(0, 2 ** 16))
def test_random_valid_images_load_as_rgb_or_are_refused(mode, width, height, fmt, seed):
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise).convert(mode) if mode not in ("I;16", "I", "F") else \
        Image.fromarray(noise[..., 0]).convert("I" if mode != "F" else "F")
    if image.mode == "I" and fmt == "PNG":
        fmt = "TIFF"                             # Pillow is retiring 32-bit PNG output
    try:
        data = encoded(image, fmt)
    except (OSError, ValueError, KeyError):
        return                                   # this format cannot store this mode: nothing to test
    try:
        loaded = load_image(data)
    except InputError:
        return
    assert loaded.mode == "RGB" and loaded.size == (width, height)
